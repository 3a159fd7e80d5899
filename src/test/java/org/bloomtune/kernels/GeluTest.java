package org.bloomtune.kernels;

import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native bfloat16 GELU and its input gradient against the closed form in double (x σ(2u) and
 * its derivative, written here): within one bfloat16 step of the exact value everywhere, from the
 * far tails to ±1e4, and correctly rounded nearly everywhere. libtorch's own bfloat16 op is
 * printed beside it (its tanh form loses the negative tail to cancellation).
 */
class GeluTest {
    private static final double BETA = Math.sqrt(2 / Math.PI);
    private static final double KAPPA = 0.044715;
    private static final double[] SPECIAL = {0, -0.0, 1e-30, -1e-30, 0.5, -0.75, 3, -3, 5, -5, 9.5, -9.5, 10, -10, 88, -88, 1e4, -1e4};

    static {
        LibTorch.init();
    }

    /** Sizes with tails of a vector and of a thread's span of 16,384 elements. */
    @ParameterizedTest
    @ValueSource(longs = {1, 15, 16_385, 1_000_003})
    void forwardIsWithinOneStepOfTheExactValue(long n) {
        assertTrue(Gelu.applies(torch.zeros(1).to(ScalarType.BFloat16)), "the native kernels are built on this platform");
        try (PointerScope scope = new PointerScope()) {
            Tensor x = inputs(n, 1);
            double[] exact = Arrays.stream(Tensors.toDoubles(x.to(ScalarType.Double))).map(GeluTest::gelu).toArray();
            double[] got = Tensors.toDoubles(Gelu.forward(x).to(ScalarType.Double));
            double[] libtorch = Tensors.toDoubles(torch.gelu(x, "tanh").to(ScalarType.Double));
            Steps ours = Steps.of(exact, got, null);
            System.out.printf("gelu forward, %d elements: native %s; libtorch %s%n", n, ours, Steps.of(exact, libtorch, null));
            assertTrue(ours.max <= 1.0, "native forward " + ours);
            assertTrue(ours.notRounded <= 1e-4 * exact.length + 1, "native forward " + ours);
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 15, 16_385, 1_000_003})
    void gradientIsWithinOneStepOfTheExactValue(long n) {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor x = inputs(n, 2);
            double[] xs = Tensors.toDoubles(x.to(ScalarType.Double));
            Tensor dy = torch.randn(new long[]{n}, new GeneratorOptional(torch.createCPUGenerator(n + 3)), new TensorOptions(ScalarType.Float))
                    .to(ScalarType.BFloat16);
            double[] dys = Tensors.toDoubles(dy.to(ScalarType.Double));
            double[] exact = new double[xs.length];
            for (int i = 0; i < xs.length; i++) exact[i] = dys[i] * slope(xs[i]);
            double[] got = Tensors.toDoubles(Gelu.backward(dy, x).to(ScalarType.Double));
            Tensor narrow = x.clone().requires_grad_(true);
            Autograd.backward(torch.gelu(narrow, "tanh"), dy);
            double[] libtorch = Tensors.toDoubles(Tensors.gradient(narrow).to(ScalarType.Double));
            // Where the slope crosses 0 (x ≈ −0.75) its two terms cancel; float leaves ~1e-7 of |dy| there.
            double[] floor = Tensors.toDoubles(dy.to(ScalarType.Double).abs().mul(new Scalar(1e-6)));
            Steps ours = Steps.of(exact, got, floor);
            System.out.printf("gelu gradient, %d elements: native %s; libtorch %s%n", n, ours, Steps.of(exact, libtorch, floor));
            assertTrue(ours.max <= 1.0, "native gradient " + ours);
            assertTrue(ours.notRounded <= 1e-4 * exact.length + 1, "native gradient " + ours);
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = torch.randn(4, 6).to(ScalarType.BFloat16);
            assertTrue(!Gelu.applies(x.to(ScalarType.Float)), "float32 stays with libtorch");
            assertTrue(!Gelu.applies(x.t()), "not contiguous");
            assertThrows(IllegalArgumentException.class, () -> Gelu.forward(x.t()));
            assertThrows(IllegalArgumentException.class, () -> Gelu.backward(torch.randn(4, 5).to(ScalarType.BFloat16), x), "shapes differ");
        }
    }

    /** 0.5x(1 + tanh u) as x σ(2u) in double: no cancellation in the negative tail, where the tanh form loses every digit. */
    static double gelu(double x) {
        return x / (1 + Math.exp(-2 * u(x)));
    }

    /** d gelu / dx = s + 2x s(1 − s) β(1 + 3κx²), s = σ(2u), each of s and 1 − s from its own exp. */
    static double slope(double x) {
        double u = u(x);
        double s = 1 / (1 + Math.exp(-2 * u));
        double rest = 1 / (1 + Math.exp(2 * u));
        return s + (rest == 0 || s == 0 ? 0 : 2 * x * s * rest * BETA * (1 + 3 * KAPPA * x * x));
    }

    private static double u(double x) { return BETA * (x + KAPPA * x * x * x); }

    /** n bfloat16 inputs: normal with σ = 3 (where BLOOM's pre-activations are), then the special values. */
    private static Tensor inputs(long n, long seed) {
        Generator g = torch.createCPUGenerator(n * 7 + seed);
        Tensor x = torch.randn(new long[]{n}, new GeneratorOptional(g), new TensorOptions(ScalarType.Float)).mul(new Scalar(3.0));
        long k = Math.min(n, SPECIAL.length);
        x.narrow(0, 0, k).copy_(Tensors.fromDoubles(Arrays.copyOf(SPECIAL, (int) k), k));
        return x.to(ScalarType.BFloat16);
    }

    /**
     * Errors in bfloat16 steps (ulps) of the exact values, beyond an absolute {@code floor} per
     * element and at least 1e-36: below that, at the bottom of float's range, the kernel's exp is 0.
     */
    private record Steps(double max, long notRounded, int n) {
        static Steps of(double[] exact, double[] got, double[] floor) {
            double max = 0;
            long notRounded = 0;
            for (int i = 0; i < exact.length; i++) {
                double excess = Math.max(0, Math.abs(got[i] - exact[i]) - (floor == null ? 1e-36 : Math.max(1e-36, floor[i])));
                double steps = excess / step(exact[i]);
                max = Math.max(max, steps);
                if (steps > 0.5) notRounded++;
            }
            return new Steps(max, notRounded, exact.length);
        }

        /** The spacing of bfloat16 numbers at |v| (8 significant bits). */
        private static double step(double v) {
            double a = Math.max(Math.abs(v), Float.MIN_NORMAL);
            return Math.scalb(1.0, Math.getExponent(a) - 7);
        }

        @Override
        public String toString() {
            return String.format("max %.3f steps, %d of %d not correctly rounded", max, notRounded, n);
        }
    }
}
