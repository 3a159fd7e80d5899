package org.bloomtune.autograd;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Many training steps in a row leave resident memory flat: every step's native temporaries are freed. */
class StepMemoryTest {

    @ParameterizedTest
    @EnumSource(ReversePass.class)
    void hundredStepsKeepResidentMemoryFlat(ReversePass pass) {
        try (BloomModel model = BloomModel.load(Path.of("models/bloom-tiny"));
             SoftPrompt prompt = SoftPrompt.random(10, model.config().hiddenSize(), 1);
             Tensor ids = Reference.randomIds(4, 64, model.config().vocabSize(), 5)) {
            for (int i = 0; i < 20; i++) step(model, prompt, ids, pass);
            long before = ProcessMemory.residentBytes();
            long peak = before;
            for (int i = 0; i < 100; i++) {
                step(model, prompt, ids, pass);
                peak = Math.max(peak, ProcessMemory.residentBytes());
            }
            long growth = peak - before;
            System.out.printf("%s: RSS %.1f MiB, peak over 100 steps %.1f MiB (+%.1f MiB)%n", pass,
                    before / 1048576.0, peak / 1048576.0, growth / 1048576.0);
            assertTrue(growth < 24L << 20, pass + ": resident memory grew by " + growth / 1048576 + " MiB over 100 steps");
        }
    }

    private static void step(BloomModel model, SoftPrompt prompt, Tensor ids, ReversePass pass) {
        prompt.zeroGrad();
        try (PointerScope scope = new PointerScope()) {
            float loss = PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, ids, null, ids), pass);
            assertTrue(Float.isFinite(loss));
        }
    }
}
