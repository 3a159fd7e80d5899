package org.bloomtune.cli;

import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.train.ReversePassChoice;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.EncoderConfig;
import org.bloomtune.peft.EncoderType;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.tensor.PeakAboveLoad;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Random;

/**
 * Times one prompt-tuning step (forward + backward to the soft prompt) on random token ids and
 * reports the peak resident memory it adds above the loaded model. Run it once per reverse pass
 * (separate processes) to compare their time and memory.
 */
@Command(name = "profile-step", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = "Time one prompt-tuning step on random ids and report its peak memory above the loaded weights.")
final class ProfileStepCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--batch-size", defaultValue = "4", paramLabel = "B", description = "rows of random token ids")
    int batch;

    @Option(names = "--max-length", defaultValue = "256", paramLabel = "T", description = "tokens per row (every one labelled)")
    int seqLen;

    @Option(names = "--virtual-tokens", defaultValue = "10", paramLabel = "N", description = "soft prompt length")
    int virtualTokens;

    @Option(names = "--reverse-pass", defaultValue = "RECOMPUTE_BLOCKS", paramLabel = "auto|AUTOGRAD|RECOMPUTE_BLOCKS",
            converter = ReversePassFlag.class,
            description = "AUTOGRAD keeps every block's activations; RECOMPUTE_BLOCKS recomputes one block at a time; auto picks by memory")
    ReversePass reversePass;

    @Option(names = "--peft-type", defaultValue = "prompt", paramLabel = "prompt|p-tuning|prefix",
            description = "what is trained: a soft prompt, P-tuning's MLP encoder or a prefix (no projection); encoders as wide as the model")
    String peftType;

    @Option(names = "--steps", defaultValue = "2", paramLabel = "S", description = "steps to run; the last is reported, then each one's time")
    int steps;

    @Override
    public void run() {
        if (batch < 1 || seqLen < 2 || virtualTokens < 1 || steps < 1) {
            throw new IllegalArgumentException("--batch-size, --virtual-tokens and --steps must be >= 1 and --max-length >= 2");
        }
        PeftType type = PeftType.parse(peftType);
        try (BloomModel model = modelOptions.load();
             SoftPrompt prompt = SoftPrompt.init(model, adapter(type, model), null, 0);
             Tensor ids = randomIds(model.config().vocabSize())) {
            ReversePassChoice choice = ReversePassChoice.choose(reversePass, model, batch, seqLen + virtualTokens, ReversePassChoice.defaultBudget());
            ReversePass pass = choice.pass();
            PeakAboveLoad memory = PeakAboveLoad.start();
            double seconds = 0;
            StringBuilder each = new StringBuilder();
            float loss = 0;
            for (int s = 0; s < steps; s++) {
                prompt.zeroGrad();
                long start = System.nanoTime();
                try (PointerScope scope = new PointerScope()) {
                    loss = PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, ids, null, ids), pass);
                }
                seconds = (System.nanoTime() - start) / 1e9;
                each.append(each.isEmpty() ? "" : " ").append(String.format("%.2f", seconds));
            }
            long tokens = (long) batch * (seqLen + virtualTokens);
            System.out.printf("%s %s %s B=%d T=%d N=%d: loss %.4f, step %.2f s (%.1f tokens/s), RSS after load %.0f MiB, "
                            + "step peak %s; every step: %s s%n",
                    type, pass, model.dtype(), batch, seqLen, virtualTokens, loss, seconds, tokens / seconds,
                    PeakAboveLoad.mib(memory.loaded()), memory.describe(choice.estimate().working()), each);
        }
    }

    private AdapterConfig adapter(PeftType type, BloomModel model) {
        int hidden = model.config().hiddenSize();
        return switch (type) {
            case PROMPT_TUNING -> AdapterConfig.forModel(model.config(), virtualTokens, PromptInit.RANDOM, null, null);
            case P_TUNING -> AdapterConfig.withEncoder(model.config(), type, virtualTokens, EncoderConfig.pTuning(EncoderType.MLP, hidden), null);
            case PREFIX_TUNING -> AdapterConfig.withEncoder(model.config(), type, virtualTokens, EncoderConfig.prefix(false, hidden), null);
        };
    }

    private Tensor randomIds(int vocab) {
        Random random = new Random(1);
        long[] ids = new long[batch * seqLen];
        for (int i = 0; i < ids.length; i++) ids[i] = random.nextInt(vocab);
        return Tensors.fromLongs(ids, batch, seqLen);
    }
}
