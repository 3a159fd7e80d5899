package org.bloomtune.kernels;

import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native decode layer norm against the float64 layer norm (the closed form, computed by
 * libtorch in double) and libtorch's own in the same dtype: float32 within a few units in the last
 * place, bfloat16 within one rounding of libtorch's; a few rows only, outside autograd.
 */
class DecodeLayerNormTest {
    @BeforeAll
    static void load() {
        LibTorch.init();
    }

    @Test
    void matchesTheDoublePrecisionLayerNormInFloat32AndLibtorchsInBfloat16() {
        assertTrue(DecodeLayerNorm.applies(torch.zeros(1, 64), torch.ones(64), torch.zeros(64)), "the kernels are built for this machine");
        torch.manual_seed(3);
        for (long h : new long[]{64, 1024, 1100}) {
            for (long rows : new long[]{1, 3, 8}) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor x = torch.randn(rows, 1, h).mul(new Scalar(3)).add(new Scalar(0.5));
                    Tensor w = torch.randn(h);
                    Tensor b = torch.randn(h);
                    long[] shape = {h};
                    Tensor exact = torch.layer_norm(x.to(ScalarType.Double), shape, new TensorOptional(w.to(ScalarType.Double)),
                            new TensorOptional(b.to(ScalarType.Double)), 1e-5, false);
                    Tensor f32 = DecodeLayerNorm.forward(x, w, b, 1e-5);
                    double err = f32.to(ScalarType.Double).sub(exact).abs().max().item_double();
                    double scale = exact.abs().max().item_double();
                    assertTrue(err <= 4e-7 * scale, "float32 h " + h + " rows " + rows + ": " + err + " of " + scale);

                    Tensor xb = x.to(ScalarType.BFloat16), wb = w.to(ScalarType.BFloat16), bb = b.to(ScalarType.BFloat16);
                    Tensor ours = DecodeLayerNorm.forward(xb, wb, bb, 1e-5).to(ScalarType.Float);
                    Tensor theirs = torch.layer_norm(xb, shape, new TensorOptional(wb), new TensorOptional(bb), 1e-5, false).to(ScalarType.Float);
                    // one bfloat16 rounding apart at most: 2^-8 of the value
                    Tensor apart = ours.sub(theirs).abs().sub(theirs.abs().mul(new Scalar(1.0 / 128)));
                    assertTrue(apart.max().item_double() <= 1e-6, "bfloat16 h " + h + " rows " + rows + ": more than a rounding from libtorch's");
                }
            }
        }
    }

    @Test
    void leavesToLibtorchWhatItDoesNotTake() {
        try (PointerScope scope = new PointerScope()) {
            Tensor w = torch.ones(64), b = torch.zeros(64);
            assertFalse(DecodeLayerNorm.applies(torch.zeros(9, 64), w, b), "nine rows");
            assertFalse(DecodeLayerNorm.applies(torch.zeros(2, 64).requires_grad_(true), w, b), "a recorded input");
            assertFalse(DecodeLayerNorm.applies(torch.zeros(2, 64).to(ScalarType.Double), w, b), "float64");
            assertFalse(DecodeLayerNorm.applies(torch.zeros(2, 64), torch.ones(32), torch.zeros(32)), "a weight of another width");
            assertFalse(DecodeLayerNorm.applies(torch.zeros(64, 2).t(), torch.ones(2), torch.zeros(2)), "a strided input");
        }
    }
}
