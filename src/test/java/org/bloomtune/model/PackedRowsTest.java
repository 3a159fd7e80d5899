package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.data.Batch;
import org.bloomtune.data.Example;
import org.bloomtune.data.Packing;
import org.bloomtune.data.Records;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Packed rows against the same records each in a row of its own (the unpacked path, itself checked
 * against HF): every record's logits, the loss and the prompt gradient must agree, for prompt and
 * prefix tuning, both attention kernels and both reverse passes.
 */
class PackedRowsTest {
    static final int VIRTUAL = 4;

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({
            "PROMPT_TUNING, EAGER, F32", "PROMPT_TUNING, SDPA, F32", "PROMPT_TUNING, EAGER, F64",
            "PREFIX_TUNING, EAGER, F32", "PREFIX_TUNING, SDPA, F32", "PREFIX_TUNING, EAGER, F64"})
    void eachRecordComputesWhatItWouldAlone(PeftType type, AttentionKernel kernel, DType dtype) {
        double tolerance = dtype == DType.F64 ? 1e-10 : 2e-5;
        try (BloomModel model = BloomModel.load(Reference.reference("hf/b/model"), LoadOptions.defaults().withDtype(dtype).withAttention(kernel));
             SoftPrompt prompt = prompt(type, model.config());
             PointerScope scope = new PointerScope()) {
            List<Example> records = records(model.config().vocabSize(), 7, 5, 4, 3, 2);
            List<Example> rows = Packing.pack(records, 11);
            assertEquals(2, rows.size(), "best fit decreasing puts 7+4 and 5+3+2 together");
            try (Batch packed = Batch.collate(rows, model.config().padTokenId());
                 Batch alone = Batch.collate(records, model.config().padTokenId())) {
                compareLogits(model, prompt, rows, records, packed, alone, tolerance);
                for (ReversePass pass : List.of(ReversePass.AUTOGRAD, ReversePass.RECOMPUTE_BLOCKS)) {
                    prompt.zeroGrad();
                    float packedLoss = PromptBackward.lossAndGrad(model, input(model, prompt, packed), pass);
                    float[] packedGrad = Tensors.toFloats(prompt.grad());
                    prompt.zeroGrad();
                    float aloneLoss = PromptBackward.lossAndGrad(model, input(model, prompt, alone), pass);
                    float[] aloneGrad = Tensors.toFloats(prompt.grad());
                    System.out.printf("%s %s %s %s: loss packed %.8f, alone %.8f%n", type, kernel, dtype, pass, packedLoss, aloneLoss);
                    assertEquals(aloneLoss, packedLoss, 1e-5 * Math.abs(aloneLoss), pass + " loss");
                    double scale = 0, diff = 0;
                    for (int i = 0; i < aloneGrad.length; i++) {
                        scale = Math.max(scale, Math.abs(aloneGrad[i]));
                        diff = Math.max(diff, Math.abs(aloneGrad[i] - packedGrad[i]));
                    }
                    System.out.printf("  prompt gradient: largest entry %.3e, largest difference %.3e%n", scale, diff);
                    assertTrue(scale > 0 && diff <= 1e-4 * scale, pass + ": gradient differs by " + diff + " of " + scale);
                }
            }
        }
    }

    @Test
    void withoutTheRecordMaskRecordsSeeEachOther() {
        // The same packed row with every token marked 1 (one long sequence): the later records'
        // logits change, so the comparison above can fail.
        try (BloomModel model = BloomModel.load(Reference.reference("hf/b/model"));
             SoftPrompt prompt = prompt(PeftType.PROMPT_TUNING, model.config());
             PointerScope scope = new PointerScope()) {
            List<Example> records = records(model.config().vocabSize(), 6, 5);
            List<Example> rows = Packing.pack(records, 11);
            try (Batch packed = Batch.collate(rows, model.config().padTokenId());
                 GradMode off = GradMode.off()) {
                Tensor ones = packed.attentionMask().clamp_max(new org.bytedeco.pytorch.Scalar(1));
                Tensor asPacked = logits(model, prompt, packed.inputIds(), packed.attentionMask());
                Tensor asOne = logits(model, prompt, packed.inputIds(), ones);
                double first = Reference.maxAbsDiff(asPacked.narrow(1, 0, VIRTUAL + 6), asOne.narrow(1, 0, VIRTUAL + 6));
                double second = Reference.maxAbsDiff(asPacked.narrow(1, VIRTUAL + 6, 5), asOne.narrow(1, VIRTUAL + 6, 5));
                assertTrue(first < 1e-5, "the first record sees nothing of the second either way: " + first);
                assertTrue(second > 1e-2, "the second record must see the first without the record mask: " + second);
            }
        }
    }

    @Test
    void sharedTokensAfterARecordAreRefused() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf/b/model"));
             PointerScope scope = new PointerScope()) {
            Tensor ids = Tensors.fromLongs(new long[]{5, 6, 7, 8}, 1, 4);
            Tensor mask = Tensors.fromLongs(new long[]{2, 2, 1, 1}, 1, 4);
            var e = assertThrows(IllegalArgumentException.class, () -> model.forward(CausalLmInput.ids(ids).mask(mask)).close());
            assertTrue(e.getMessage().contains("shared tokens must come first"), e.getMessage());
            Tensor interleaved = Tensors.fromLongs(new long[]{2, 3, 2, 3}, 1, 4);
            e = assertThrows(IllegalArgumentException.class, () -> model.forward(CausalLmInput.ids(ids).mask(interleaved)).close());
            assertTrue(e.getMessage().contains("increasing order"), e.getMessage());
        }
    }

    private static void compareLogits(BloomModel model, SoftPrompt prompt, List<Example> rows, List<Example> records,
                                      Batch packed, Batch alone, double tolerance) {
        try (GradMode off = GradMode.off()) {
            Tensor p = logits(model, prompt, packed.inputIds(), packed.attentionMask());
            Tensor a = logits(model, prompt, alone.inputIds(), alone.attentionMask());
            long lead = p.size(1) - packed.inputIds().size(1);          // virtual tokens, or 0 for a prefix
            int compared = 0;
            for (int row = 0; row < rows.size(); row++) {
                Example e = rows.get(row);
                for (int r = 0; r < e.records(); r++) {
                    int start = e.recordStarts()[r];
                    int length = (r + 1 < e.records() ? e.recordStarts()[r + 1] : e.length()) - start;
                    int record = indexOf(records, e, start, length);
                    double d = Reference.maxAbsDiff(p.select(0, row).narrow(0, lead + start, length),
                            a.select(0, record).narrow(0, lead, length));
                    assertTrue(d <= tolerance, "row " + row + " record " + r + ": logits differ by " + d);
                    compared++;
                }
            }
            assertEquals(records.size(), compared);
        }
    }

    private static Tensor logits(BloomModel model, SoftPrompt prompt, Tensor ids, Tensor mask) {
        try (CausalLmOutput out = model.forward(PromptedInput.of(model, prompt, ids, mask, null))) {
            return out.logits().clone();
        }
    }

    private static CausalLmInput input(BloomModel model, SoftPrompt prompt, Batch b) {
        return PromptedInput.of(model, prompt, b.inputIds(), b.attentionMask(), b.labels());
    }

    /** The unpacked record whose ids are {@code packed}'s ids from {@code start}. */
    private static int indexOf(List<Example> records, Example packed, int start, int length) {
        for (int i = 0; i < records.size(); i++) {
            Example r = records.get(i);
            if (r.length() == length && java.util.Arrays.equals(r.ids(), 0, length, packed.ids(), start, start + length)) return i;
        }
        throw new AssertionError("record at " + start + " not found");
    }

    private static SoftPrompt prompt(PeftType type, BloomConfig config) {
        if (type == PeftType.PROMPT_TUNING) return SoftPrompt.random(VIRTUAL, config.hiddenSize(), 11);
        try (SoftPrompt plain = SoftPrompt.random(VIRTUAL, config.prefixWidth(), 12); PointerScope scope = new PointerScope()) {
            return SoftPrompt.of(PeftType.PREFIX_TUNING, plain.weight().mul(new org.bytedeco.pytorch.Scalar(0.5)));
        }
    }

    /** Random records; the first two tokens are the prompt (no loss), the rest the response. */
    static List<Example> records(long vocab, int... lengths) {
        return Records.responseOnly(vocab, 2, 5, lengths);
    }
}
