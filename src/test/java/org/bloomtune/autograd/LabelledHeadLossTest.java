package org.bloomtune.autograd;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.model.Int8Mode;
import org.bloomtune.model.Int8Options;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hand-differentiated, labelled-positions-only head with the vocabulary streamed in blocks,
 * against libtorch autograd through the full logits and HF's loss: same loss, same gradient,
 * whatever the rows per pass and the block width — on a float32 model and an int8 one.
 */
class LabelledHeadLossTest {

    @Test
    void equalsAutogradThroughFullLogitsForAnyBlocking() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf/a/model"))) {
            assertMatchesAutograd(model, 1e-5);
        }
    }

    /** The int8 embedding streams dequantized blocks; autograd's recorded int8 lm_head uses the dequantized matrix. */
    @Test
    void int8EmbeddingEqualsAutogradThroughTheDequantizedLogits() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf/a/model"), LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.WEIGHT_ONLY)))) {
            assertMatchesAutograd(model, 1e-5);
        }
    }

    /** bfloat16 logits and softmax·W products, accumulated in float32: the same rounding class as autograd in bf16. */
    @Test
    void bfloat16ModelEqualsAutogradInBfloat16() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf/a/model"), LoadOptions.defaults().withDtype(DType.BF16))) {
            assertMatchesAutograd(model, 2e-2);
        }
    }

    private static void assertMatchesAutograd(BloomModel model, double tolerance) {
        try (PointerScope scope = new PointerScope()) {
            torch.manual_seed(11);
            Tensor hidden = torch.randn(3, 9, model.config().hiddenSize()).to(model.dtype().scalarType());
            long[] l = new long[27];
            java.util.Random r = new java.util.Random(4);
            for (int i = 0; i < l.length; i++) l[i] = i % 9 < 4 ? CausalLmLoss.IGNORE_INDEX : r.nextInt(model.config().vocabSize());
            Tensor labels = Tensors.fromLongs(l, 3, 9);                 // a prompt part without labels, as the seed's loss

            double expectedLoss;
            float[] expectedGrad;
            try (GradMode on = GradMode.on()) {
                Tensor x = hidden.detach();
                x.requires_grad_(true);
                Tensor loss = CausalLmLoss.mean(model.stages().head(x), labels);
                loss.backward();
                expectedLoss = Tensors.toDouble(loss);
                expectedGrad = Tensors.toFloats(Tensors.gradient(x));
            }
            long vocab = model.config().vocabSize();
            // Rows per pass: one, a few, all; block widths: one column, an uneven split (last block
            // partial), the whole vocabulary in one block, and the budget's choice.
            for (long rows : new long[]{1, 4, 1000}) {
                for (long columns : new long[]{1, 300, vocab, 0}) {
                    HeadLoss.Result got = LabelledHeadLoss.lossAndGrad(model, hidden, labels, rows, columns);
                    double err = Reference.relativeMaxDiff(expectedGrad, Tensors.toFloats(got.grad()));
                    String what = rows + " rows per pass, " + columns + " columns";
                    System.out.printf("%s %s: loss %.6f vs %.6f, gradient relative error %.1e%n", model.dtype(), what, got.loss(), expectedLoss, err);
                    assertEquals(expectedLoss, got.loss(), tolerance, what + ": loss");
                    assertTrue(err <= tolerance, what + ": gradient relative error " + err);
                    got.grad().close();
                }
            }
        }
    }
}
