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
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native bfloat16 attention, forward and backward to the fused QKV, against the exact
 * attention (libtorch in float64 on the same bfloat16 inputs, no rounding between the ops) — it
 * must be as close to it as HF's bfloat16 chain run by libtorch (split heads, baddbmm, cast, masked
 * fill, softmax, cast, bmm, merge, and autograd's backward of all of them) — and against that chain
 * itself; with causal and left-padding masks (padding queries see no key and attend uniformly, as
 * in HF), odd lengths, one position, and head sizes of 64 and 16.
 */
class Bf16AttentionTest {
    private static final double FLOAT32_LOWEST = -3.4028234663852886e38;

    static {
        LibTorch.init();
    }

    /** batch, heads, positions, head_dim, left padding of row 0. */
    @ParameterizedTest
    @CsvSource({"1,1,1,64,0", "2,3,37,64,5", "2,2,70,16,0", "3,4,130,64,130", "4,16,266,64,0"})
    void asCloseToTheExactAttentionAsHfsBfloat16Chain(long batch, long heads, long t, long headDim, long pad) {
        assertTrue(available(), "the native kernels are built on this platform and the CPU has AVX512_BF16");
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            var g = new GeneratorOptional(torch.createCPUGenerator(batch * 1000 + heads * 100 + t + headDim));
            Tensor qkv = torch.randn(new long[]{batch, t, heads * 3 * headDim}, g, new TensorOptions(ScalarType.Float)).mul(new Scalar(1.5)).to(ScalarType.BFloat16);
            Tensor alibi = torch.randn(new long[]{batch * heads, 1, t}, g, new TensorOptions(ScalarType.Float)).to(ScalarType.BFloat16);
            Tensor attention = torch.ones(batch, t);
            if (pad > 0) attention.select(0, 0).narrow(0, 0, Math.min(pad, t)).zero_();
            Tensor mask = AttentionMask.build(attention, t);                          // [B, 1, T, T]
            Tensor grad = torch.randn(new long[]{batch, t, heads * headDim}, g, new TensorOptions(ScalarType.Float)).to(ScalarType.BFloat16);

            double[][] exact = chain(qkv, alibi, mask, grad, heads, headDim, ScalarType.Double);
            double[][] hf = chain(qkv, alibi, mask, grad, heads, headDim, ScalarType.BFloat16);
            double[][] ours = {Tensors.toDoubles(Bf16Attention.forward(qkv, alibi, mask, heads).to(ScalarType.Double)),
                    Tensors.toDoubles(Bf16Attention.backward(grad, qkv, alibi, mask, heads).to(ScalarType.Double))};
            for (int part = 0; part < 2; part++) {
                String what = part == 0 ? "merged heads" : "fused QKV gradient";
                double oursRms = rmsError(exact[part], ours[part]), hfRms = rmsError(exact[part], hf[part]);
                double oursMax = maxError(exact[part], ours[part]), hfMax = maxError(exact[part], hf[part]);
                double apart = rmsError(hf[part], ours[part]);
                System.out.printf("attention %d×%d heads×%d (head_dim %d, %d padded), %s: error against exact rms %.2e (HF's chain %.2e), "
                        + "max %.2e (%.2e); rms from HF's chain %.2e%n", batch, heads, t, headDim, pad, what, oursRms, hfRms, oursMax, hfMax, apart);
                assertTrue(oursRms <= 1.25 * hfRms + 1e-12 && oursMax <= 2 * hfMax + 1e-12, what + ": further from the exact attention than HF's chain");
                assertTrue(apart <= 1.5 * hfRms + 1e-12, what + ": apart from HF's chain by more than that chain's own error");
            }
        }
    }

    @Test
    void aQueryThatSeesNoKeyAttendsUniformlyAsInHf() {
        try (PointerScope scope = new PointerScope()) {
            long heads = 2, headDim = 16, t = 6;
            Tensor attention = torch.ones(1, t);
            attention.select(0, 0).narrow(0, 0, 3).zero_();                             // three pad positions on the left
            Tensor mask = AttentionMask.build(attention, t);
            Tensor qkv = torch.randn(1, t, heads * 3 * headDim).to(ScalarType.BFloat16);
            Tensor alibi = torch.zeros(heads, 1, t).to(ScalarType.BFloat16);
            Tensor merged = Bf16Attention.forward(qkv, alibi, mask, heads);
            Tensor values = qkv.view(1, t, heads, 3, headDim).select(3, 2).to(ScalarType.Float);     // [1, T, heads, hd]
            Tensor mean = values.mean(new long[]{1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()).view(1, heads * headDim);
            for (int q = 0; q < 3; q++) {
                Tensor row = merged.select(1, q).to(ScalarType.Float);
                double off = Tensors.toDouble(row.sub(mean).abs().max());
                assertTrue(off <= 1e-2 * (1 + Tensors.toDouble(mean.abs().max())), "pad query " + q + " is the mean of all values, off by " + off);
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope()) {
            Tensor qkv = torch.randn(2, 5, 2 * 3 * 4).to(ScalarType.BFloat16);
            Tensor alibi = torch.zeros(4, 1, 5).to(ScalarType.BFloat16);
            Tensor mask = AttentionMask.build(torch.ones(2, 5), 5);
            assertTrue(Bf16Attention.applies(qkv, alibi, mask, 2));
            assertTrue(!Bf16Attention.applies(qkv, alibi, mask, 3), "the width is not heads · 3 · head_dim");
            assertTrue(!Bf16Attention.applies(torch.randn(2, 5, 2 * 3 * 3).to(ScalarType.BFloat16), alibi, mask, 2), "odd head_dim");
            assertTrue(!Bf16Attention.applies(qkv.to(ScalarType.Float), alibi, mask, 2), "float32 adds the mask into the bias");
            assertTrue(!Bf16Attention.applies(qkv.transpose(0, 1), alibi, mask, 2), "not contiguous");
            assertTrue(!Bf16Attention.applies(qkv, torch.zeros(4, 1, 6).to(ScalarType.BFloat16), mask, 2), "ALiBi over other keys");
            assertThrows(IllegalArgumentException.class, () -> Bf16Attention.forward(qkv, alibi, mask, 3));
            assertEquals(2 * 5 * 2 * 4, Bf16Attention.forward(qkv, alibi, mask, 2).numel());
            assertThrows(IllegalArgumentException.class, () -> Bf16Attention.backward(qkv, qkv, alibi, mask, 2), "a gradient of the merged heads' shape");
        }
    }

    private static boolean available() {
        try (PointerScope scope = new PointerScope()) {
            return Bf16Attention.applies(torch.zeros(1, 1, 6).to(ScalarType.BFloat16), torch.zeros(1, 1, 1).to(ScalarType.BFloat16),
                    torch.zeros(new long[]{1, 1, 1, 1}, new TensorOptions(ScalarType.Bool)), 1);
        }
    }

    /**
     * HF's eager attention from the fused QKV in {@code dtype} (bfloat16: every op rounds as HF's;
     * float64: the exact attention of the same inputs) → {merged heads, the fused QKV's gradient for
     * {@code grad}}, flattened.
     */
    private static double[][] chain(Tensor qkv, Tensor alibi, Tensor mask, Tensor grad, long heads, long headDim, ScalarType dtype) {
        long batch = qkv.size(0), t = qkv.size(1);
        Tensor fused = qkv.to(dtype).requires_grad_(true);
        TensorVector parts = fused.view(batch, t, heads, 3, headDim).unbind(3);
        Tensor q = parts.get(0).transpose(1, 2).reshape(batch * heads, t, headDim);
        Tensor k = parts.get(1).permute(0, 2, 3, 1).reshape(batch * heads, headDim, t);
        Tensor v = parts.get(2).transpose(1, 2).reshape(batch * heads, t, headDim);
        Tensor scores = alibi.to(dtype).baddbmm(q, k, new Scalar(1.0), new Scalar(1.0 / Math.sqrt(headDim)));
        ScalarType softmax = dtype == ScalarType.Double ? ScalarType.Double : ScalarType.Float;
        Tensor probs = scores.view(batch, heads, t, t).to(softmax).masked_fill(mask, new Scalar(FLOAT32_LOWEST)).softmax(-1).to(dtype);
        Tensor merged = torch.bmm(probs.view(batch * heads, t, t), v).view(batch, heads, t, headDim).permute(0, 2, 1, 3).reshape(batch, t, heads * headDim);
        Autograd.backward(merged, grad.to(dtype));
        return new double[][]{Tensors.toDoubles(merged.detach().to(ScalarType.Double)), Tensors.toDoubles(Tensors.gradient(fused).to(ScalarType.Double))};
    }

    /** Root-mean-square of got − exact, relative to the root-mean-square of exact. */
    private static double rmsError(double[] exact, double[] got) {
        double err = 0, norm = 0;
        for (int i = 0; i < exact.length; i++) {
            err += (got[i] - exact[i]) * (got[i] - exact[i]);
            norm += exact[i] * exact[i];
        }
        return Math.sqrt(err / Math.max(norm, 1e-300));
    }

    /** The largest |got − exact|, relative to the largest |exact|. */
    private static double maxError(double[] exact, double[] got) {
        double err = 0, norm = 0;
        for (int i = 0; i < exact.length; i++) {
            err = Math.max(err, Math.abs(got[i] - exact[i]));
            norm = Math.max(norm, Math.abs(exact[i]));
        }
        return err / Math.max(norm, 1e-300);
    }
}
