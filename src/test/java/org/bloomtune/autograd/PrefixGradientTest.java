package org.bloomtune.autograd;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefix tuning's gradient on RECOMPUTE_BLOCKS, where every block's backward yields its own layer's
 * share: against central finite differences of the float64 model's loss, at the largest entry of
 * each layer's key and value slice, for both rows of a left-padded batch (each row its own prefix).
 */
class PrefixGradientTest {

    @Test
    void recomputedBlocksMatchFloat64FiniteDifferences() {
        Map<String, Tensor> g = Reference.read(Reference.reference("hf-ptuning/b/prefix/goldens.safetensors"));
        Tensor ids = g.get("inputs.lp.input_ids"), mask = g.get("inputs.lp.attention_mask"), labels = g.get("inputs.lp.labels");
        try (BloomModel model = BloomModel.load(Reference.reference("hf/b/model"), LoadOptions.defaults().withDtype(DType.F64));
             PointerScope scope = new PointerScope()) {
            int layers = model.config().numLayers();
            long hidden = model.config().hiddenSize();
            Tensor raw = g.get("prefix_raw").to(torch.ScalarType.Double);                   // [N, 2·L·H]
            long n = raw.size(0);
            // Two rows with different prefixes, so a gradient landing on the wrong row shows.
            Tensor base = torch.stack(new TensorVector(raw, raw.flip(0).mul(new Scalar(0.5))), 0).contiguous();
            Tensor fullMask = torch.cat(new TensorVector(torch.ones(new long[]{2, n}, Tensors.options(DType.I64, model.device())), mask), 1);
            Tensor leaf = Autograd.leaf(base);
            float loss = PromptBackward.lossAndGrad(model, CausalLmInput.ids(ids).mask(fullMask).labels(labels).prefix(leaf), ReversePass.RECOMPUTE_BLOCKS);
            assertTrue(Float.isFinite(loss));
            double[] grad = Tensors.toDoubles(Tensors.gradient(leaf));
            double[] values = Tensors.toDoubles(base);
            long width = raw.size(1);
            int checked = 0;
            for (int row = 0; row < 2; row++) {
                for (int slice = 0; slice < 2 * layers; slice++) {
                    int at = largestIn(grad, row, n, width, slice * hidden, hidden);
                    double fd = central(model, values, at, 1e-4, base, ids, fullMask, labels);
                    double rel = Math.abs(fd - grad[at]) / Math.abs(grad[at]);
                    System.out.printf("prefix row %d %s of layer %d: grad %.9f, finite difference %.9f, relative error %.1e%n",
                            row, slice < layers ? "key" : "value", slice % layers, grad[at], fd, rel);
                    assertTrue(rel <= 1e-6, "row " + row + " slice " + slice + ": " + grad[at] + " vs " + fd);
                    checked++;
                }
            }
            assertTrue(checked == 4 * layers);
        }
    }

    /** The flat index of the largest |grad| in row {@code row}'s columns [from, from + count) over all N positions. */
    private static int largestIn(double[] grad, int row, long n, long width, long from, long count) {
        int best = -1;
        for (long p = 0; p < n; p++) {
            for (long c = from; c < from + count; c++) {
                int i = (int) ((row * n + p) * width + c);
                if (best < 0 || Math.abs(grad[i]) > Math.abs(grad[best])) best = i;
            }
        }
        return best;
    }

    private static double central(BloomModel model, double[] values, int i, double h, Tensor like, Tensor ids, Tensor mask, Tensor labels) {
        return (loss(model, values, i, h, like, ids, mask, labels) - loss(model, values, i, -h, like, ids, mask, labels)) / (2 * h);
    }

    private static double loss(BloomModel model, double[] values, int i, double delta, Tensor like, Tensor ids, Tensor mask, Tensor labels) {
        double[] moved = values.clone();
        moved[i] += delta;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor prefix = Tensors.fromDoubles(moved, Tensors.shape(like));
            try (CausalLmOutput out = model.forward(CausalLmInput.ids(ids).mask(mask).labels(labels).prefix(prefix))) {
                return Tensors.toDouble(out.loss());
            }
        }
    }
}
