package org.bloomtune.autograd;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.HeapOutsideTheJvm;
import org.bloomtune.tensor.ProcessMemory;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Many training steps in a row leave resident memory flat: every step's native temporaries are freed. */
class StepMemoryTest {

    @ParameterizedTest
    @EnumSource(value = ReversePass.class, names = "AUTO", mode = EnumSource.Mode.EXCLUDE)   // the two passes; AUTO picks one of them
    void hundredStepsKeepResidentMemoryFlat(ReversePass pass) {
        try (BloomModel model = BloomModel.load(Path.of("models/bloom-tiny"));
             SoftPrompt prompt = SoftPrompt.random(10, model.config().hiddenSize(), 1);
             Tensor ids = Reference.randomIds(4, 64, model.config().vocabSize(), 5)) {
            for (int i = 0; i < 20; i++) step(model, prompt, ids, pass);
            long heap = HeapOutsideTheJvm.bytes();
            long rss = ProcessMemory.residentBytes();
            for (int i = 0; i < 100; i++) step(model, prompt, ids, pass);
            long growth = HeapOutsideTheJvm.bytes() - heap;
            System.out.printf("%s, 100 steps: native heap %+.2f MiB, RSS %.1f -> %.1f MiB%n", pass,
                    growth / 1048576.0, rss / 1048576.0, ProcessMemory.residentBytes() / 1048576.0);
            // One step's activations are tens of MB; a leak of 80 KB a step adds 8 MiB. Leak-free, the heap
            // outside the JVM moved by a few hundredths of a MiB (with the JVM's share, by up to ~20).
            assertTrue(growth < 8L << 20, pass + ": native heap grew by " + growth / 1024 + " KiB over 100 steps");
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
