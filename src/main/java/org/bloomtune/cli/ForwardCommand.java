package org.bloomtune.cli;

import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.tensor.DType;
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
@Command(name = "forward", mixinStandardHelpOptions = true,
        description = "Run the model on input_ids [B,T] (optional attention_mask, labels) and write "
                + "logits F32 [B,T,V] and, with labels, loss F32 [].")
final class ForwardCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--input", required = true, paramLabel = "IN.safetensors",
            description = "input_ids I64 [B,T]; optional attention_mask I64 [B,T], labels I64 [B,T]")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors", description = "where to write logits (and loss)")
    Path output;

    @Override
    public void run() {
        try (BloomModel model = modelOptions.load(); SafetensorsFile in = SafetensorsFile.open(input);
             PointerScope scope = new PointerScope()) {
            CausalLmInput batch = CausalLmInput.ids(int64(in, "input_ids"));
            if (in.contains("attention_mask")) batch = batch.mask(int64(in, "attention_mask"));
            if (in.contains("labels")) batch = batch.labels(int64(in, "labels"));
            try (CausalLmOutput out = model.forward(batch)) {
                Map<String, Tensor> tensors = new LinkedHashMap<>();
                tensors.put("logits", out.logits().to(ScalarType.Float));
                if (out.hasLoss()) tensors.put("loss", out.loss().reshape());
                SafetensorsWriter.write(output, tensors);
            }
        }
    }

    private Tensor int64(SafetensorsFile in, String name) {
        DType dtype = in.info(name).dtype();
        if (dtype != DType.I64) {
            throw new IllegalArgumentException(input + ": " + name + " must be I64, is " + dtype);
        }
        if (in.info(name).shape().length != 2) {
            throw new IllegalArgumentException(input + ": " + name + " must be [B, T], is "
                    + java.util.Arrays.toString(in.info(name).shape()));
        }
        return in.tensor(name);
    }
}
