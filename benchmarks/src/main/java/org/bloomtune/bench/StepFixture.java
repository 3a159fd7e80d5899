package org.bloomtune.bench;

import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.AttentionKernel;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Random;

/**
 * A loaded model, soft prompt and batch for one step benchmark row
 * {@code "shape mode pass batch labels attention"}: labels {@code all} (every token, the peer's
 * measurement) or {@code response} (the last half of each row, as the seed's response-only loss).
 */
final class StepFixture implements AutoCloseable {
    static final int SEQ = 256;
    static final int VIRTUAL_TOKENS = 10;

    record Row(String shape, String mode, ReversePass pass, int batch, boolean responseOnly, AttentionKernel attention) {
        static Row parse(String row) {
            String[] p = row.split(" ");
            return new Row(p[0], p[1], ReversePass.valueOf(p[2]), Integer.parseInt(p[3]), p[4].equals("response"),
                    AttentionKernel.parse(p[5]));
        }
    }

    private final Row row;
    private final BloomModel model;
    private final SoftPrompt prompt;
    private final Tensor ids;
    private final Tensor labels;
    private final long loadedRss;
    long stepPeakMiB;

    StepFixture(String spec) {
        row = Row.parse(spec);
        model = BloomModel.load(Checkpoints.random(row.shape()), Modes.options(row.mode()).withAttention(row.attention()));
        prompt = SoftPrompt.random(VIRTUAL_TOKENS, model.config().hiddenSize(), 0);
        Random random = new Random(1);
        long[] values = new long[row.batch() * SEQ];
        long[] targets = new long[values.length];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextInt(model.config().vocabSize());
            targets[i] = row.responseOnly() && i % SEQ < SEQ / 2 ? CausalLmLoss.IGNORE_INDEX : values[i];
        }
        ids = Tensors.fromLongs(values, row.batch(), SEQ);
        labels = Tensors.fromLongs(targets, row.batch(), SEQ);
        loadedRss = ProcessMemory.residentBytes();
    }

    /** One step; records its peak resident memory above the loaded model. */
    float step() {
        ProcessMemory.resetPeak();
        prompt.zeroGrad();
        float loss;
        try (PointerScope scope = new PointerScope()) {
            loss = PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, ids, null, labels), row.pass());
        }
        stepPeakMiB = (ProcessMemory.peakResidentBytes() - loadedRss) >> 20;
        return loss;
    }

    long loadedMiB() { return loadedRss >> 20; }

    @Override
    public void close() {
        labels.close();
        ids.close();
        prompt.close();
        model.close();
    }
}
