package org.bloomtune.autograd;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hand-differentiated, labelled-positions-only, chunked head against libtorch autograd through
 * the full logits and HF's loss: same loss, same gradient, whatever the chunk size.
 */
class LabelledHeadLossTest {

    @Test
    void equalsAutogradThroughFullLogitsForAnyChunkSize() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf/a/model")); PointerScope scope = new PointerScope()) {
            torch.manual_seed(11);
            Tensor hidden = torch.randn(3, 9, model.config().hiddenSize());
            long[] l = new long[27];
            java.util.Random r = new java.util.Random(4);
            for (int i = 0; i < l.length; i++) l[i] = i % 9 < 4 ? CausalLmLoss.IGNORE_INDEX : r.nextInt(model.config().vocabSize());
            Tensor labels = Tensors.fromLongs(l, 3, 9);                 // a prompt part without labels, as the seed's loss

            double expectedLoss;
            float[] expectedGrad;
            try (GradMode on = GradMode.on()) {
                Tensor x = hidden.detach();
                x.requires_grad_(true);
                Tensor loss = CausalLmLoss.mean(model.head(x), labels);
                loss.backward();
                expectedLoss = Tensors.toDouble(loss);
                expectedGrad = Tensors.toFloats(Tensors.gradient(x));
            }
            for (long chunk : new long[]{1, 4, 1000}) {
                HeadLoss.Result got = LabelledHeadLoss.lossAndGrad(model, hidden, labels, chunk);
                double err = Reference.relativeMaxDiff(expectedGrad, Tensors.toFloats(got.grad()));
                assertEquals(expectedLoss, got.loss(), 1e-5, "chunk " + chunk + " loss");
                assertTrue(err <= 1e-5, "chunk " + chunk + ": gradient relative error " + err);
                got.grad().close();
            }
        }
    }
}
