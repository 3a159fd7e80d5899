package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.kernels.Bf16Gemm;
import org.bloomtune.kernels.F32Gemm;
import org.bloomtune.kernels.Gelu;
import org.bloomtune.kernels.MaskedSoftmax;
import org.bloomtune.kernels.WholeAttention;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.HeapOutsideTheJvm;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bfloat16 linears and GELUs recorded through the native kernels and node hooks, against libtorch's autograd of
 * the same function in float64 (the independent truth) and in bfloat16 (the rounding to match).
 */
class NativeOpGraphTest {
    private static final long IN = 64;
    private static final long HIDDEN = 128;
    /** The node of a joined output: the in-place add of the zero into its first column. */
    private static final String JOIN = "torch::autograd::CopySlices";

    /**
     * Two layers, a GELU, a residual and the first layer used twice (x reaches the loss along four
     * paths): the input gradient through the hooks is as close to the float64 one as libtorch's
     * bfloat16 autograd is, and a second traversal of a retained graph adds the same again.
     */
    @Test
    void inputGradientMatchesAutogradThroughResidualsAndReuse() {
        if (!Bf16Gemm.supported()) return;          // no AVX512_BF16: the graph never applies (refusesWhatItCannotTake)
        Gradients g = gradients(ScalarType.BFloat16, 7);
        double libtorchError = relative(g.exact(), g.libtorch());
        double hookedError = relative(g.exact(), g.hooked());
        System.out.printf("bf16 input gradient vs float64: libtorch %.2e, native through hooks %.2e, between them %.2e%n",
                libtorchError, hookedError, relative(g.libtorch(), g.hooked()));
        assertTrue(hookedError <= 1.5 * libtorchError + 1e-3, "native " + hookedError + " vs libtorch " + libtorchError);
        for (int i = 0; i < g.twice().length; i++) {
            assertEquals(2 * g.hooked()[i], g.twice()[i], 1e-2 * Math.abs(g.hooked()[i]) + 1e-3, "retained graph, element " + i);
        }
    }

    /**
     * The same in float32 ({@link org.bloomtune.kernels.F32Gemm}): through the hooks as close to the
     * float64 gradient as libtorch's float32 autograd, to within float32 sums of other orders.
     */
    @Test
    void float32InputGradientMatchesAutograd() {
        if (!F32Gemm.supported()) return;           // no AVX-512F: float32 linears stay libtorch's (refusesWhatItCannotTake)
        Gradients g = gradients(ScalarType.Float, 8);
        double libtorchError = relative(g.exact(), g.libtorch());
        double hookedError = relative(g.exact(), g.hooked());
        System.out.printf("fp32 input gradient vs float64: libtorch %.2e, native through hooks %.2e%n", libtorchError, hookedError);
        assertTrue(hookedError <= 4 * libtorchError + 1e-6, "native " + hookedError + " vs libtorch " + libtorchError);
        for (int i = 0; i < g.twice().length; i++) {
            assertEquals(2 * g.hooked()[i], g.twice()[i], 1e-5 * Math.abs(g.hooked()[i]) + 1e-6, "retained graph, element " + i);
        }
    }

    /** A recorded GELU hands x exactly the kernel's gradient, and libtorch's graph runs nothing of its own for it. */
    @Test
    void geluRecordsThroughTheKernel() {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor x = torch.randn(3, 40, 96).mul(new Scalar(2.0)).to(ScalarType.BFloat16).requires_grad_(true);
            Tensor dy = torch.randn(3, 40, 96).to(ScalarType.BFloat16);
            assertTrue(!NativeOpGraph.appliesToGelu(x), "none open on this thread");
            try (NativeOpGraph graph = NativeOpGraph.open()) {
                boolean built = Gelu.applies(x.detach());
                assertEquals(built, NativeOpGraph.appliesToGelu(x), "recorded natively exactly where the kernel is built");
                if (!built) return;                             // BloomMlp keeps libtorch's GELU
                assertTrue(!NativeOpGraph.appliesToGelu(x.detach()), "nothing to record");
                Tensor y = NativeOpGraph.gelu(x);
                assertEquals(JOIN, y.grad_fn().name().getString(), "joined, not libtorch's GeluBackward");
                assertTrue(torch.equal(Gelu.forward(x.detach()), y.detach()));
                Autograd.backward(y, dy);
                assertTrue(torch.equal(Gelu.backward(dy, x.detach()), Tensors.gradient(x)), "x's gradient is the kernel's dy · gelu'(x)");
            }
        }
    }

    /** Recorded attention probabilities hand the scores exactly the kernel's gradient. */
    @Test
    void attentionProbabilitiesRecordThroughTheKernel() {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor attention = torch.ones(2, 30);
            attention.select(0, 1).narrow(0, 0, 4).zero_();
            Tensor mask = AttentionMask.build(attention, 30);
            Tensor scores = torch.randn(6, 30, 30).mul(new Scalar(3.0)).to(ScalarType.BFloat16).requires_grad_(true);
            Tensor dy = torch.randn(6, 30, 30).to(ScalarType.BFloat16);
            try (NativeOpGraph graph = NativeOpGraph.open()) {
                boolean built = MaskedSoftmax.applies(scores.detach(), mask, 3);
                assertEquals(built, NativeOpGraph.appliesToMaskedSoftmax(scores, mask, 3), "recorded natively exactly where the kernel is built");
                if (!built) return;                             // BloomAttention keeps libtorch's chain
                Tensor probs = NativeOpGraph.maskedSoftmax(scores, mask, 3);
                assertEquals(JOIN, probs.grad_fn().name().getString(), "joined, not libtorch's softmax");
                MaskedSoftmax.Probabilities direct = MaskedSoftmax.forward(scores.detach(), mask, 3);
                assertTrue(torch.equal(direct.bfloat16(), probs.detach()));
                Autograd.backward(probs, dy);
                assertTrue(torch.equal(MaskedSoftmax.backward(dy, direct.float32(), mask, 3), Tensors.gradient(scores)),
                        "the scores' gradient is the kernel's");
            }
        }
    }

    /** A recorded attention hands the fused QKV exactly the kernel's gradient, in bfloat16 and in float32. */
    @ParameterizedTest
    @ValueSource(strings = {"BFloat16", "Float"})
    void wholeAttentionRecordsThroughTheKernel(String type) {
        ScalarType dtype = ScalarType.valueOf(type);
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            long heads = 3, headDim = 16, t = 30;
            Tensor attention = torch.ones(2, t);
            attention.select(0, 1).narrow(0, 0, 4).zero_();
            Tensor mask = AttentionMask.build(attention, t);
            Tensor alibi = torch.randn(2 * heads, 1, t).to(dtype);
            Tensor qkv = torch.randn(2, t, heads * 3 * headDim).mul(new Scalar(2.0)).to(dtype).requires_grad_(true);
            Tensor dy = torch.randn(2, t, heads * headDim).to(dtype);
            try (NativeOpGraph graph = NativeOpGraph.open()) {
                boolean built = WholeAttention.applies(qkv.detach(), alibi, mask, heads);
                assertEquals(built, NativeOpGraph.appliesToAttention(qkv, alibi, mask, heads), "recorded natively exactly where the kernel is built");
                if (!built) return;                             // BloomAttention keeps libtorch's chain
                Tensor merged = NativeOpGraph.attention(qkv, alibi, mask, heads);
                assertEquals(JOIN, merged.grad_fn().name().getString(), "joined, not libtorch's ops");
                assertTrue(torch.equal(WholeAttention.forward(qkv.detach(), alibi, mask, heads), merged.detach()));
                Autograd.backward(merged, dy);
                assertTrue(torch.equal(WholeAttention.backward(dy, qkv.detach(), alibi, mask, heads), Tensors.gradient(qkv)),
                        "the fused QKV's gradient is the kernel's");
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor w = torch.randn(HIDDEN, IN).to(ScalarType.BFloat16);
            Tensor x = torch.randn(Bf16Gemm.MIN_ROWS, IN).to(ScalarType.BFloat16).requires_grad_(true);
            assertTrue(!NativeOpGraph.applies(x, w, null), "none open on this thread: libtorch records");
            try (NativeOpGraph graph = NativeOpGraph.open()) {
                assertEquals(Bf16Gemm.supported(), NativeOpGraph.applies(x, w, null));
                assertTrue(!NativeOpGraph.applies(x.detach(), w, null), "nothing to record");
                assertTrue(!NativeOpGraph.applies(x, torch.randn(HIDDEN - 1, IN).to(ScalarType.BFloat16), null), "odd out: dy · W sums over it");
                assertEquals(F32Gemm.supported(), NativeOpGraph.applies(x.to(ScalarType.Float), w.to(ScalarType.Float), null), "float32");
                assertTrue(!NativeOpGraph.applies(x.to(ScalarType.Double), w.to(ScalarType.Double), null), "float64");
                assertTrue(!NativeOpGraph.applies(x.to(ScalarType.Float).narrow(0, 0, F32Gemm.MIN_ROWS - 1), w.to(ScalarType.Float), null),
                        "a decode step's few rows");
                try (GradMode off = GradMode.off()) {
                    assertTrue(!NativeOpGraph.applies(x, w, null), "grad mode off");
                }
            }
        }
    }

    /** A bfloat16 model's prompt gradient, both reverse passes, against the float32 model's. */
    @Test
    void bfloat16PromptGradientMatchesTheFloat32Model() {
        try (BloomModel fp32 = BloomModel.load(Reference.reference("hf/b/model"));
             BloomModel bf16 = BloomModel.load(Reference.reference("hf/b/model"), LoadOptions.defaults().withDtype(DType.BF16));
             SoftPrompt prompt = SoftPrompt.random(8, fp32.config().hiddenSize(), 3);
             PointerScope scope = new PointerScope()) {
            Tensor ids = Reference.randomIds(3, 40, fp32.config().vocabSize(), 5);            // 3 × 48 rows: the native GEMM's
            PromptBackward.lossAndGrad(fp32, PromptedInput.of(fp32, prompt, ids, null, ids), ReversePass.AUTOGRAD);
            float[] expected = Tensors.toFloats(prompt.grad());
            for (ReversePass pass : new ReversePass[]{ReversePass.AUTOGRAD, ReversePass.RECOMPUTE_BLOCKS}) {
                prompt.zeroGrad();
                PromptBackward.lossAndGrad(bf16, PromptedInput.of(bf16, prompt, ids, null, ids), pass);
                double err = Reference.relativeMaxDiff(expected, Tensors.toFloats(prompt.grad()));
                System.out.printf("bf16 %s: prompt_grad relative error vs the float32 model %.2e%n", pass, err);
                assertTrue(err <= 5e-2, pass + ": relative error " + err);
            }
        }
    }

    /**
     * Many recorded steps: the hooks, dy · W, the GELU's saved input, the probabilities, an
     * attention's saved QKV and the gradients handed back are all released.
     */
    @Test
    void manyStepsHoldNoMemory() {
        if (!Bf16Gemm.supported()) return;
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            DenseLinear layer = new DenseLinear(torch.randn(1024, 1024).mul(new Scalar(0.03)).to(ScalarType.BFloat16), torch.randn(1024).to(ScalarType.BFloat16));
            BloomMlp mlp = new BloomMlp(layer, layer);
            Tensor mask = AttentionMask.build(torch.ones(2, 256), 256);
            Tensor x = torch.randn(512, 1024).to(ScalarType.BFloat16);
            Tensor alibi = torch.randn(2 * 4, 1, 256).to(ScalarType.BFloat16);
            long start = 0;
            for (int step = 0; step < 60; step++) {
                if (step == 10) start = HeapOutsideTheJvm.bytes();
                try (PointerScope stepScope = new PointerScope(); NativeOpGraph graph = NativeOpGraph.open()) {
                    Tensor leaf = x.clone().requires_grad_(true);
                    Tensor h = mlp.forward(leaf, leaf);                                   // two products and a GELU
                    Tensor scores = h.view(4, 256, 512).narrow(2, 0, 256).contiguous();  // 2 rows × 2 heads of scores
                    Tensor probs = NativeOpGraph.appliesToMaskedSoftmax(scores, mask, 2) ? NativeOpGraph.maskedSoftmax(scores, mask, 2) : scores;
                    Tensor qkv = h.view(2, 256, 1024).narrow(2, 0, 768);                 // 2 rows × 4 heads of 64 through a whole attention
                    Tensor attended = NativeOpGraph.appliesToAttention(qkv.contiguous(), alibi, mask, 4)
                            ? NativeOpGraph.attention(qkv.contiguous(), alibi, mask, 4) : qkv;
                    Autograd.backward(probs.sum().add(h.sum()).add(attended.sum()));
                    assertTrue(Tensors.gradient(leaf).defined());
                }
            }
            // The native heap outside the JVM (tensors included), not RSS, which also moves as the Java heap is committed.
            long grown = HeapOutsideTheJvm.bytes() - start;
            System.out.printf("50 recorded steps of two 512 × 1024 × 1024 products, a GELU, 4 × 256 × 256 probabilities and an attention of 8 × 256 positions: "
                    + "native heap %+d KiB%n", grown >> 10);
            assertTrue(grown < 16L << 20, "the native heap grew by " + (grown >> 20) + " MiB");
        }
    }

    /** One function's input gradient in float64, by libtorch in {@code type}, through the hooks in {@code type}, and through them twice. */
    private record Gradients(double[] exact, double[] libtorch, double[] hooked, double[] twice) {}

    /** {@link Gradients} of {@link #gradient}'s function at random layers, x and r drawn from {@code seed}. */
    private static Gradients gradients(ScalarType type, long seed) {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            torch.manual_seed(seed);
            Tensor w1 = torch.randn(HIDDEN, IN).mul(new Scalar(0.1)), b1 = torch.randn(HIDDEN).mul(new Scalar(0.1));
            Tensor w2 = torch.randn(IN, HIDDEN).mul(new Scalar(0.1)), b2 = torch.randn(IN).mul(new Scalar(0.1));
            Tensor x0 = torch.randn(2, 48, IN);
            Tensor r = torch.randn(2, 48, HIDDEN);
            return new Gradients(gradient(x0, r, ScalarType.Double, w1, b1, w2, b2, false, 1), gradient(x0, r, type, w1, b1, w2, b2, false, 1),
                    gradient(x0, r, type, w1, b1, w2, b2, true, 1), gradient(x0, r, type, w1, b1, w2, b2, true, 2));
        }
    }

    /**
     * d Σ(r ⊙ l1(l2(gelu(l1(x))) + x)) / dx in {@code type}, through the hooks when {@code hooked};
     * {@code passes} backward traversals of one graph.
     */
    private static double[] gradient(Tensor x0, Tensor r, ScalarType type, Tensor w1, Tensor b1, Tensor w2, Tensor b2,
                                     boolean hooked, int passes) {
        try (PointerScope scope = new PointerScope(); NativeOpGraph graph = hooked ? NativeOpGraph.open() : null) {
            DenseLinear l1 = new DenseLinear(w1.to(type), b1.to(type));
            DenseLinear l2 = new DenseLinear(w2.to(type), b2.to(type));
            Tensor x = x0.to(type).clone().requires_grad_(true);      // a leaf of its own: to() of the same dtype returns x0 itself
            BloomMlp mlp = new BloomMlp(l1, l2);                 // the GELU through the graph too when hooked
            Function<Tensor, Tensor> block = t -> mlp.forward(t, t);
            Tensor h = l1.forward(block.apply(x));
            if (hooked && type != ScalarType.Double) assertEquals(JOIN, h.grad_fn().name().getString(), "the native path");
            Tensor loss = h.mul(r.to(type)).sum();
            for (int p = 0; p < passes; p++) Autograd.backward(loss, torch.ones_like(loss), p + 1 < passes);
            Tensor g = Tensors.gradient(x).to(ScalarType.Double).flatten();
            return Tensors.toDoubles(g);
        }
    }

    private static double relative(double[] expected, double[] got) {
        double num = 0, den = 0;
        for (int i = 0; i < expected.length; i++) {
            num += (got[i] - expected[i]) * (got[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        return Math.sqrt(num / den);
    }
}
