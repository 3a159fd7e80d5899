package org.bloomtune.train;

import org.bloomtune.Reference;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.data.Batch;
import org.bloomtune.data.Example;
import org.bloomtune.data.Records;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Padding-free rows against padded ones (each example in a row of its own, the layout HF's collator
 * gives and the goldens check): the same loss, prompt gradient and evaluation, on fewer positions.
 */
class CausalLmTaskTest {

    @Test
    void lossTermsAreTheLabelsTheLossCounts() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf/b/model"));
             SoftPrompt tuning = SoftPrompt.random(4, model.config().hiddenSize(), 3);
             SoftPrompt plain = SoftPrompt.random(4, model.config().prefixWidth(), 4);
             SoftPrompt prefix = SoftPrompt.of(PeftType.PREFIX_TUNING, plain.weight());
             PointerScope scope = new PointerScope()) {
            CausalLmTask task = new CausalLmTask(model, false);
            for (int promptTokens : new int[]{0, 3}) {                   // every token labelled (label 0 too), response only
                List<Example> batch = Records.responseOnly(model.config().vocabSize(), promptTokens, 2, 9, 6, 4);
                for (SoftPrompt prompt : List.of(tuning, prefix)) {
                    try (Batch b = Batch.collate(batch, model.config().padTokenId())) {
                        long counted = CausalLmLoss.countedLabels(
                                PromptedInput.of(model, prompt, b.inputIds(), b.attentionMask(), b.labels()).labels());
                        assertEquals(counted, task.lossTerms(prompt, batch), prompt.type() + ", " + promptTokens + " prompt tokens");
                    }
                }
            }
            // Label 0 counts only where virtual tokens precede the text.
            List<Example> labelled = Records.responseOnly(model.config().vocabSize(), 0, 2, 9, 6, 4);
            assertEquals(task.lossTerms(prefix, labelled) + 3, task.lossTerms(tuning, labelled));
        }
    }

    /**
     * Evaluation streams the head at labelled positions only; its summed loss is HF's shifted
     * cross-entropy over the full [B, T, V] logits of {@code model.forward} times the labels counted,
     * in float32 and in bfloat16, with the prompt's virtual tokens ahead and response-only labels.
     */
    @Test
    void evaluationIsTheCrossEntropyOfTheFullLogits() {
        for (DType dtype : List.of(DType.F32, DType.BF16)) {
            try (BloomModel model = BloomModel.load(Reference.reference("hf/b/model"), LoadOptions.defaults().withDtype(dtype));
                 SoftPrompt prompt = SoftPrompt.random(4, model.config().hiddenSize(), 3);
                 PointerScope scope = new PointerScope()) {
                List<Example> eval = Records.responseOnly(model.config().vocabSize(), 3, 9, 12, 5, 4, 3, 11);
                double full = 0;
                long counted = 0;
                try (Batch b = Batch.collate(eval, model.config().padTokenId()); GradMode off = GradMode.off()) {
                    var input = PromptedInput.of(model, prompt, b.inputIds(), b.attentionMask(), b.labels());
                    counted = CausalLmLoss.countedLabels(input.labels());
                    try (CausalLmOutput out = model.forward(input)) {
                        full = Tensors.toDouble(out.loss()) * counted;
                    }
                }
                double[] sums = new CausalLmTask(model, false).evaluationSums(prompt, eval, eval.size());
                System.out.printf("%s evaluation: streamed %.8f, full logits %.8f over %d labels%n", dtype, sums[0], full, counted);
                assertEquals(counted, (long) sums[1]);
                assertEquals(full, sums[0], (dtype == DType.F32 ? 2e-6 : 2e-3) * full, dtype + " summed loss");
            }
        }
    }

    @Test
    void paddingFreeRowsGiveThePaddedLossAndGradient() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf/b/model"));
             SoftPrompt prompt = SoftPrompt.random(4, model.config().hiddenSize(), 3);
             PointerScope scope = new PointerScope()) {
            List<Example> batch = Records.responseOnly(model.config().vocabSize(), 3, 9, 12, 5, 4, 3);
            CausalLmTask paddingFree = new CausalLmTask(model);
            CausalLmTask padded = new CausalLmTask(model, false);
            assertEquals(4 * 12, padded.computedPositions(batch));
            assertEquals(2 * 12, paddingFree.computedPositions(batch), "12 | 5 + 4 + 3: two rows of 12");
            for (ReversePass pass : List.of(ReversePass.AUTOGRAD, ReversePass.RECOMPUTE_BLOCKS)) {
                prompt.zeroGrad();
                double paddedLoss = padded.lossAndGrad(prompt, batch, pass);
                float[] paddedGrad = Tensors.toFloats(prompt.grad());
                prompt.zeroGrad();
                double freeLoss = paddingFree.lossAndGrad(prompt, batch, pass);
                float[] freeGrad = Tensors.toFloats(prompt.grad());
                double scale = 0;
                double diff = 0;
                for (int i = 0; i < paddedGrad.length; i++) {
                    scale = Math.max(scale, Math.abs(paddedGrad[i]));
                    diff = Math.max(diff, Math.abs(paddedGrad[i] - freeGrad[i]));
                }
                System.out.printf("%s: loss padded %.8f, padding-free %.8f; gradient largest %.3e, difference %.3e%n",
                        pass, paddedLoss, freeLoss, scale, diff);
                assertEquals(paddedLoss, freeLoss, 1e-5 * paddedLoss, pass + " loss");
                assertTrue(scale > 0 && diff <= 1e-4 * scale, pass + ": gradient differs by " + diff + " of " + scale);
            }
            double[] paddedEval = padded.evaluationSums(prompt, batch, 4);
            double[] freeEval = paddingFree.evaluationSums(prompt, batch, 4);
            assertEquals(paddedEval[1], freeEval[1], "the same labelled tokens counted");
            assertEquals(paddedEval[0], freeEval[0], 1e-5 * paddedEval[0]);
            assertEquals("padding-free", paddingFree.settings().get("batch_rows"));
            assertEquals("padded", padded.settings().get("batch_rows"));
        }
    }
}
