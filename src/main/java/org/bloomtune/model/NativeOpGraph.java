package org.bloomtune.model;

import org.bloomtune.kernels.DenseGemm;
import org.bloomtune.kernels.Gelu;
import org.bloomtune.kernels.MaskedSoftmax;
import org.bloomtune.kernels.WholeAttention;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.FunctionPostHook;
import org.bytedeco.pytorch.FunctionPreHook;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Linear layers (bfloat16 and float32), bfloat16 GELUs, attention probabilities and whole attentions
 * whose forward and input gradient run on native kernels ({@link DenseGemm}, {@link Gelu}, {@link MaskedSoftmax},
 * {@link WholeAttention}) inside libtorch's graph, while one of these is open on the thread (the
 * reverse passes open one around a forward and its backward). libtorch's autograd cannot call a
 * backward written in Java as an op, so the output is formed outside the graph and joined to x by
 * a zero that depends on x — the sum over an empty slice of x, exactly 0 whatever x holds, added
 * into y's first column. Two node hooks carry the gradient: the one before the join takes dy,
 * forms x's gradient from it and hands the join an undefined gradient, so nothing runs down it;
 * the one after the slice's backward gives that gradient to x in its place.
 *
 * <p>The hooks are owned by the graph's nodes (they die with it); their Java halves, the inputs a
 * GELU's, a softmax's and an attention's backward read, and the gradients handed back to libtorch
 * are kept here until {@link #close}, after the backward (a retained graph may be traversed again).
 */
public final class NativeOpGraph implements AutoCloseable {
    private static final ThreadLocal<NativeOpGraph> ACTIVE = new ThreadLocal<>();

    private final NativeOpGraph previous;
    private final List<Pointer> hooks = new ArrayList<>();
    private final List<Tensor> saved = new ArrayList<>();
    /** What a hook returned to libtorch: freed at the next hook call, once libtorch holds its own copy. */
    private final List<Pointer> returned = new ArrayList<>();

    private NativeOpGraph(NativeOpGraph previous) {
        this.previous = previous;
    }

    /** Records this thread's linears, GELUs and attentions through the native kernels until {@link #close}. */
    public static NativeOpGraph open() {
        NativeOpGraph graph = new NativeOpGraph(ACTIVE.get());
        ACTIVE.set(graph);
        return graph;
    }

    /** True when one is open on this thread and {@code x} records into a product the native GEMM takes both ways. */
    static boolean applies(Tensor x, Tensor weight, Tensor bias) {
        if (!recording(x)) return false;
        try (Tensor detached = x.detach()) {
            return DenseGemm.appliesBothWays(detached, weight, bias);
        }
    }

    /** {@code x} [..., in] → [..., out], recorded; call where {@link #applies}. */
    static Tensor forward(Tensor x, Tensor weight, Tensor bias) {
        Tensor y;
        try (Tensor detached = x.detach()) {
            y = DenseGemm.linear(detached, weight, bias);
        }
        return ACTIVE.get().join(x, y, dy -> inputGradient(dy, weight));
    }

    /** True when one is open on this thread and {@code x} records into a GELU the native kernel takes. */
    static boolean appliesToGelu(Tensor x) {
        if (!recording(x)) return false;
        try (Tensor detached = x.detach()) {
            return Gelu.applies(detached);
        }
    }

    /** BLOOM's tanh GELU of {@code x}, recorded; call where {@link #appliesToGelu}. */
    static Tensor gelu(Tensor x) {
        NativeOpGraph graph = ACTIVE.get();
        Tensor input = Tensors.escape(x.detach());               // the backward reads it; freed at close
        graph.saved.add(input);
        return graph.join(x, Gelu.forward(input), dy -> {
            try (Tensor grad = dy.contiguous()) {
                return Gelu.backward(grad, input);
            }
        });
    }

    /** True when one is open on this thread and {@code scores} record into attention probabilities the native kernel takes. */
    static boolean appliesToMaskedSoftmax(Tensor scores, Tensor mask, long heads) {
        if (!recording(scores)) return false;
        try (Tensor detached = scores.detach()) {
            return MaskedSoftmax.applies(detached, mask, heads);
        }
    }

    /** HF's bfloat16 attention probabilities of {@code scores} under {@code mask}, recorded; call where {@link #appliesToMaskedSoftmax}. */
    static Tensor maskedSoftmax(Tensor scores, Tensor mask, long heads) {
        NativeOpGraph graph = ACTIVE.get();
        MaskedSoftmax.Probabilities p;
        try (Tensor detached = scores.detach()) {
            p = MaskedSoftmax.forward(detached, mask, heads);
        }
        Tensor probs = Tensors.escape(p.float32());               // the backward reads them and the mask; both held until close
        graph.saved.add(probs);
        graph.saved.add(Tensors.escape(mask));
        return graph.join(scores, p.bfloat16(), dy -> {
            try (Tensor grad = dy.contiguous()) {
                return MaskedSoftmax.backward(grad, probs, mask, heads);
            }
        });
    }

    /** True when one is open on this thread and {@code fusedQkv} records into an attention the native kernel takes. */
    static boolean appliesToAttention(Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        if (!recording(fusedQkv)) return false;
        try (Tensor detached = fusedQkv.detach()) {
            return WholeAttention.applies(detached, alibi, mask, heads);
        }
    }

    /** BLOOM's eager attention (bfloat16 or float32) from the fused QKV to the merged heads, recorded; call where {@link #appliesToAttention}. */
    static Tensor attention(Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        NativeOpGraph graph = ACTIVE.get();
        Tensor input = Tensors.escape(fusedQkv.detach());          // the backward reads it, the ALiBi bias and the mask; all held until close
        Tensor heldAlibi = Tensors.escape(alibi);
        Tensor heldMask = Tensors.escape(mask);
        graph.saved.add(input);
        graph.saved.add(heldAlibi);
        graph.saved.add(heldMask);
        return graph.join(fusedQkv, WholeAttention.forward(input, alibi, mask, heads), dy -> {
            try (Tensor grad = dy.contiguous()) {
                return WholeAttention.backward(grad, input, heldAlibi, heldMask, heads);
            }
        });
    }

    /** True when autograd records what is computed from {@code x}. */
    static boolean records(Tensor x) {
        return x.requires_grad() && GradMode.is_enabled();
    }

    /** {@code dy} [..., out] · W → [..., in], by the kernel where it takes dy, else by libtorch. */
    static Tensor inputGradient(Tensor dy, Tensor weight) {
        try (Tensor grad = dy.contiguous()) {
            return DenseGemm.applies(grad, weight, false) ? DenseGemm.inputGradient(grad, weight) : grad.matmul(weight);
        }
    }

    private static boolean recording(Tensor x) {
        return ACTIVE.get() != null && records(x);
    }

    /** {@code y}, formed from x outside the graph, joined to it; x's gradient will be {@code inputGradient}(dy). */
    private Tensor join(Tensor x, Tensor y, Function<Tensor, Tensor> inputGradient) {
        Tensor slice = x.narrow(-1, 0, 0);
        // Added into y's first column only (a view, in place): y's node becomes the slice-copy that
        // wraps the add, and the join costs a column instead of a pass over all of y.
        try (Tensor zero = slice.sum(new long[]{-1}, true, new ScalarTypeOptional()); Tensor column = y.narrow(-1, 0, 1)) {
            column.add_(zero);
        }
        Tensor[] dx = new Tensor[1];
        own(new FunctionPreHook() {                             // before the join: dy → x's gradient; the join gets nothing
            @Override
            public TensorVector apply(TensorVector gradients) {
                freeReturned();
                try (Tensor dy = gradients.get(0)) {
                    if (dx[0] != null) dx[0].deallocate();
                    dx[0] = dy.defined() ? inputGradient.apply(dy) : null;
                }
                return handBack(new TensorVector(new Tensor()));
            }
        }, hook -> y.grad_fn().add_pre_hook(hook));
        own(new FunctionPostHook() {                            // after the slice's backward: x's gradient is the one formed above
            @Override
            public TensorVector apply(TensorVector outputs, TensorVector inputs) {
                freeReturned();
                if (dx[0] == null) return handBack(new TensorVector(new Tensor()));
                Tensor gradient = dx[0];
                dx[0] = null;
                returned.add(gradient);
                return handBack(new TensorVector(gradient));
            }
        }, hook -> slice.grad_fn().add_post_hook(hook));
        return y;
    }

    /** Hands {@code hook} to its node, which now owns the native half; the Java half stays reachable here. */
    private <P extends Pointer> void own(P hook, java.util.function.Consumer<P> install) {
        install.accept(hook);
        hook.deallocate(false);
        hooks.add(hook);
    }

    private TensorVector handBack(TensorVector vector) {
        returned.add(vector);
        return vector;
    }

    private void freeReturned() {
        returned.forEach(Pointer::deallocate);
        returned.clear();
    }

    @Override
    public void close() {
        freeReturned();
        hooks.clear();
        saved.forEach(Tensor::close);
        saved.clear();
        ACTIVE.set(previous);
    }
}
