package org.bloomtune.kernels;

import org.bloomtune.model.AttentionMask;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native attention probabilities and the scores' gradient against HF's chain (cast, masked fill
 * with float32's lowest value, softmax) run by libtorch in float64 on the same bfloat16 scores, with
 * causal and left-padding masks — padding query rows masked throughout come out uniform; the
 * forward-only kernel gives the forward's bfloat16 probabilities bit for bit.
 */
class MaskedSoftmaxTest {
    private static final double FLOAT32_LOWEST = -3.4028234663852886e38;

    static {
        LibTorch.init();
    }

    /** batch, heads, new positions, cached positions ahead of them, left padding of row 0. */
    @ParameterizedTest
    @CsvSource({"1,1,1,0,0", "2,3,37,0,5", "2,2,16,9,3", "3,4,70,0,70", "1,16,266,0,0"})
    void probabilitiesAndGradientMatchTheChainInFloat64(long batch, long heads, long t, long past, long pad) {
        assertTrue(MaskedSoftmax.applies(torch.zeros(1, 1, 1).to(ScalarType.BFloat16), torch.zeros(new long[]{1, 1, 1, 1},
                new TensorOptions(ScalarType.Bool)), 1), "the native kernels are built on this platform");
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            long s = past + t;
            var g = new GeneratorOptional(torch.createCPUGenerator(batch * 1000 + heads * 100 + t + past));
            Tensor scores = torch.randn(new long[]{batch * heads, t, s}, g, new TensorOptions(ScalarType.Float)).mul(new Scalar(4.0)).to(ScalarType.BFloat16);
            Tensor attention = torch.ones(batch, s);
            if (pad > 0) attention.select(0, 0).narrow(0, 0, Math.min(pad, s)).zero_();
            Tensor mask = AttentionMask.build(attention, t);                          // [B, 1, T, S]
            Tensor grad = torch.randn(new long[]{batch * heads, t, s}, g, new TensorOptions(ScalarType.Float)).to(ScalarType.BFloat16);

            Tensor wide = scores.to(ScalarType.Double).requires_grad_(true);
            Tensor exact = wide.view(batch, heads, t, s).masked_fill(mask, new Scalar(FLOAT32_LOWEST)).softmax(-1).view(batch * heads, t, s);
            Autograd.backward(exact, grad.to(ScalarType.Double));
            double[] p64 = Tensors.toDoubles(exact.detach());
            double[] d64 = Tensors.toDoubles(Tensors.gradient(wide));

            MaskedSoftmax.Probabilities p = MaskedSoftmax.forward(scores, mask, heads);
            double[] p32 = Tensors.toDoubles(p.float32().to(ScalarType.Double));
            double[] p16 = Tensors.toDoubles(p.bfloat16().to(ScalarType.Double));
            double[] d16 = Tensors.toDoubles(MaskedSoftmax.backward(grad, p.float32(), mask, heads).to(ScalarType.Double));
            assertTrue(torch.equal(MaskedSoftmax.forwardOnly(scores, mask, heads), p.bfloat16()), "forward-only: the same bfloat16 probabilities");
            double[] floor = new double[p64.length];
            double worst32 = 0;
            for (int i = 0; i < p64.length; i++) {
                worst32 = Math.max(worst32, Math.abs(p32[i] - p64[i]) / Math.max(p64[i], 1e-30));
                floor[i] = 1e-6;                 // p·(g − Σ p·g) cancels where g is near Σ p·g: float keeps ~1e-7 of it
            }
            double[] noFloor = new double[p64.length];
            String probs = BfloatSteps.of(p64, p16, noFloor), grads = BfloatSteps.of(d64, d16, floor);
            System.out.printf("masked softmax %d×%d×%d (+%d cached, %d padded): float32 probabilities within %.1e relative; bfloat16 %s; gradient %s%n",
                    batch * heads, t, s, past, pad, worst32, probs, grads);
            assertTrue(worst32 <= 2e-6, "float32 probabilities off by " + worst32);
            assertTrue(BfloatSteps.max(p64, p16, noFloor) <= 1.0 && BfloatSteps.max(d64, d16, floor) <= 1.0, probs + "; " + grads);
        }
    }

    @Test
    void aQueryWithEveryKeyMaskedIsUniformAsInHf() {
        try (PointerScope scope = new PointerScope()) {
            Tensor attention = torch.ones(1, 6);
            attention.select(0, 0).narrow(0, 0, 3).zero_();                             // three pad positions on the left
            Tensor mask = AttentionMask.build(attention, 6);
            Tensor p = MaskedSoftmax.forward(torch.randn(2, 6, 6).to(ScalarType.BFloat16), mask, 2).float32();
            for (int q = 0; q < 3; q++) {
                assertTrue(torch.allclose(p.select(1, q), torch.full(new long[]{2, 6}, new Scalar(1.0 / 6))), "pad query " + q + " uniform");
            }
            assertTrue(Tensors.toDouble(p.select(1, 4).narrow(1, 0, 3).abs().sum()) == 0.0, "a real query gives the pad keys 0");
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope()) {
            Tensor scores = torch.randn(4, 5, 5).to(ScalarType.BFloat16);
            Tensor mask = AttentionMask.build(torch.ones(2, 5), 5);
            assertTrue(MaskedSoftmax.applies(scores, mask, 2));
            assertTrue(!MaskedSoftmax.applies(scores, mask, 3), "B·heads must be the scores' rows");
            assertTrue(!MaskedSoftmax.applies(scores.to(ScalarType.Float), mask, 2), "float32 adds the mask into the bias");
            assertTrue(!MaskedSoftmax.applies(scores.transpose(1, 2), mask, 2), "not contiguous");
            assertTrue(!MaskedSoftmax.applies(torch.randn(4, 5, 6).to(ScalarType.BFloat16), mask, 2), "keys differ");
            assertThrows(IllegalArgumentException.class, () -> MaskedSoftmax.forward(scores, mask, 3));
            Tensor probs = MaskedSoftmax.forward(scores, mask, 2).float32();
            assertThrows(IllegalArgumentException.class, () -> MaskedSoftmax.backward(scores, probs.to(ScalarType.BFloat16), mask, 2));
        }
    }

    /** Errors in bfloat16 steps (ulps) of the exact values beyond an absolute floor per element (at least 1e-36). */
    static final class BfloatSteps {
        static double max(double[] exact, double[] got, double[] floor) {
            double max = 0;
            for (int i = 0; i < exact.length; i++) max = Math.max(max, steps(exact[i], got[i], floor[i]));
            return max;
        }

        static String of(double[] exact, double[] got, double[] floor) {
            long notRounded = 0;
            for (int i = 0; i < exact.length; i++) if (steps(exact[i], got[i], floor[i]) > 0.5) notRounded++;
            return String.format("max %.3f steps, %d of %d not correctly rounded", max(exact, got, floor), notRounded, exact.length);
        }

        private static double steps(double exact, double got, double floor) {
            double excess = Math.max(0, Math.abs(got - exact) - Math.max(1e-36, floor));
            return excess / Math.scalb(1.0, Math.getExponent(Math.max(Math.abs(exact), Float.MIN_NORMAL)) - 7);
        }
    }
}
