package org.bloomtune.cli;

import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.train.ReversePassChoice;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.MemoryEstimate;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** One forward pass from a safetensors file of inputs to a safetensors file of logits (and loss). */
@Command(name = "forward", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = "Run the model on input_ids [B,T] (optional attention_mask, labels) and write "
                + "logits F32 [B,T,V] and, with labels, loss F32 []. With --adapter (prompt tuning, P-tuning or prefix tuning) "
                + "the prompt goes in front: virtual tokens are covered by the logits ([B,N+T,V]), a prefix is not ([B,T,V]). "
                + "With --grad also grad.<name> F32 for every trainable tensor (the encoder's, from prompt_encoder.safetensors, "
                + "else prompt_embeddings), and for prompt tuning prompt_grad F32 [N,H].")
final class ForwardCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--input", required = true, paramLabel = "IN.safetensors",
            description = "input_ids I64 [B,T]; optional attention_mask I64 [B,T], labels I64 [B,T]")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors", description = "where to write logits (and loss)")
    Path output;

    @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT adapter (PROMPT_TUNING, P_TUNING, PREFIX_TUNING) to put in front")
    Path adapter;

    @Option(names = "--grad", description = "also write grad.<name> = d loss / d each trainable tensor (needs --adapter and labels)")
    boolean grad;

    @Option(names = "--reverse-pass", defaultValue = "RECOMPUTE_BLOCKS", paramLabel = "auto|AUTOGRAD|RECOMPUTE_BLOCKS",
            converter = ReversePassFlag.class, description = "how --grad computes the gradient")
    ReversePass reversePass;

    @Override
    public void run() {
        if (grad && adapter == null) throw new IllegalArgumentException("--grad needs --adapter (the gradient is the soft prompt's)");
        try (SafetensorsFile in = SafetensorsFile.open(input)) {
            long[] shape = shape(in, "input_ids");
            for (String name : new String[]{"attention_mask", "labels"}) {
                if (in.contains(name) && !java.util.Arrays.equals(shape(in, name), shape)) {
                    throw new IllegalArgumentException(input + ": " + name + " must have input_ids' shape " + java.util.Arrays.toString(shape));
                }
            }
            checkMemory(shape);
            run(in);
        }
    }

    private void checkMemory(long[] shape) {
        BloomConfig config = BloomConfig.read(HfCheckpoint.config(modelOptions.dir()));
        int rows = (int) Math.min(Integer.MAX_VALUE, shape[0]);
        int virtual = adapter == null ? 0 : AdapterConfig.read(adapter.resolve(AdapterConfig.FILE)).numVirtualTokens();
        int positions = (int) Math.min(Integer.MAX_VALUE, shape[1] + virtual);
        MemoryEstimate estimate = grad
                ? MemoryEstimate.trainingStep(config, modelOptions.loadOptions(), rows, positions, reversePass == ReversePass.AUTOGRAD)
                : MemoryEstimate.forward(config, modelOptions.loadOptions(), rows, positions);
        estimate.requireFits("a forward over " + rows + " × " + positions + " positions", "the batch or sequence in " + input);
    }

    private void run(SafetensorsFile in) {
        try (BloomModel model = modelOptions.load(); PointerScope scope = new PointerScope()) {
            Tensor ids = int64(in, "input_ids");
            Tensor mask = in.contains("attention_mask") ? int64(in, "attention_mask") : null;
            Tensor labels = in.contains("labels") ? int64(in, "labels") : null;
            if (grad && labels == null) throw new IllegalArgumentException(input + ": --grad needs labels in the input file");
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            if (adapter == null) {
                outputs(model, CausalLmInput.ids(ids).mask(mask).labels(labels), tensors);
            } else {
                try (PeftAdapter.Loaded a = PeftAdapter.load(adapter, model.config())) {
                    try (GradMode off = GradMode.off()) {
                        outputs(model, PromptedInput.of(model, a.prompt(), ids, mask, labels), tensors);
                    }
                    if (grad) {
                        ReversePass pass = ReversePassChoice.choose(reversePass, model, (int) ids.size(0),
                                (int) ids.size(1) + a.prompt().numVirtualTokens(), ReversePassChoice.defaultBudget()).pass();
                        PromptBackward.lossAndGrad(model, PromptedInput.of(model, a.prompt(), ids, mask, labels), pass);
                        if (a.prompt().type() == PeftType.PROMPT_TUNING) tensors.put("prompt_grad", a.prompt().grad());
                        a.prompt().namedGradients().forEach((name, g) -> tensors.put("grad." + name, g));
                    }
                }
            }
            SafetensorsWriter.write(output, tensors);
        }
    }

    /** Adds logits (float32) and, with labels, the scalar loss to {@code tensors}. */
    private static void outputs(BloomModel model, CausalLmInput batch, Map<String, Tensor> tensors) {
        // The converted handles belong to the open scope and keep the values alive after `out` closes.
        try (CausalLmOutput out = model.forward(batch)) {
            tensors.put("logits", out.logits().to(ScalarType.Float));
            if (out.hasLoss()) tensors.put("loss", out.loss().to(ScalarType.Float).reshape());
        }
    }

    private Tensor int64(SafetensorsFile in, String name) {
        shape(in, name);
        return in.tensor(name);
    }

    /** {@code name}'s shape, which must be I64 [B, T] with B, T >= 1. */
    private long[] shape(SafetensorsFile in, String name) {
        if (!in.contains(name)) throw new IllegalArgumentException(input + ": no tensor " + name + " (has " + in.names() + ")");
        DType dtype = in.info(name).dtype();
        if (dtype != DType.I64) throw new IllegalArgumentException(input + ": " + name + " must be I64, is " + dtype);
        long[] shape = in.info(name).shape();
        if (shape.length != 2 || shape[0] < 1 || shape[1] < 1) {
            throw new IllegalArgumentException(input + ": " + name + " must be [B, T] with B, T >= 1, is " + java.util.Arrays.toString(shape));
        }
        return shape;
    }
}
