package org.bloomtune.model;

import org.bloomtune.kernels.Bf16Gemm;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.FunctionPostHook;
import org.bytedeco.pytorch.FunctionPreHook;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.List;

/**
 * bfloat16 linear layers whose product and input gradient both run on {@link Bf16Gemm} inside
 * libtorch's graph, while one of these is open on the thread (the reverse passes open one around a
 * forward and its backward). libtorch's autograd cannot call a backward written in Java as an op,
 * so the product is formed outside the graph and joined to x by a zero that depends on x — y plus
 * the sum over an empty slice of x, exactly 0 whatever x holds. Two node hooks carry the gradient:
 * the one before the join's add takes dy, forms dy · W and hands the add an undefined gradient, so
 * nothing runs down the join; the one after the slice's backward gives dy · W to x in its place.
 *
 * <p>The hooks are owned by the graph's nodes (they die with it); their Java halves, and the
 * gradients handed back to libtorch, are kept here until {@link #close}, after the backward.
 */
public final class NativeLinearGraph implements AutoCloseable {
    private static final ThreadLocal<NativeLinearGraph> ACTIVE = new ThreadLocal<>();

    private final NativeLinearGraph previous;
    private final List<Pointer> hooks = new ArrayList<>();
    /** What a hook returned to libtorch: freed at the next hook call, once libtorch holds its own copy. */
    private final List<Pointer> returned = new ArrayList<>();

    private NativeLinearGraph(NativeLinearGraph previous) {
        this.previous = previous;
    }

    /** Records this thread's bfloat16 linears through the native products until {@link #close}. */
    public static NativeLinearGraph open() {
        NativeLinearGraph graph = new NativeLinearGraph(ACTIVE.get());
        ACTIVE.set(graph);
        return graph;
    }

    /** True when one is open on this thread and {@code x} records into a bfloat16 product the kernel takes both ways. */
    static boolean applies(Tensor x, Tensor weight, Tensor bias) {
        if (ACTIVE.get() == null || !x.requires_grad() || !GradMode.is_enabled()) return false;
        try (Tensor detached = x.detach()) {
            return Bf16Gemm.appliesToLinear(detached, weight, bias) && weight.size(0) % 2 == 0;     // dy · W sums over out
        }
    }

    /** {@code x} [..., in] → [..., out], recorded; call where {@link #applies}. */
    static Tensor forward(Tensor x, Tensor weight, Tensor bias) {
        NativeLinearGraph graph = ACTIVE.get();
        Tensor y;
        try (Tensor detached = x.detach()) {
            y = Bf16Gemm.linear(detached, weight, bias);
        }
        Tensor slice = x.narrow(-1, 0, 0);
        try (Tensor zero = slice.sum(new long[]{-1}, true, new ScalarTypeOptional())) {
            y.add_(zero);
        }
        Tensor[] dx = new Tensor[1];
        graph.own(new FunctionPreHook() {                       // before the add: dy → dy · W; the add gets nothing
            @Override
            public TensorVector apply(TensorVector gradients) {
                graph.freeReturned();
                try (Tensor dy = gradients.get(0)) {
                    if (dx[0] != null) dx[0].deallocate();
                    dx[0] = dy.defined() ? inputGradient(dy, weight) : null;
                }
                return graph.handBack(new TensorVector(new Tensor()));
            }
        }, hook -> y.grad_fn().add_pre_hook(hook));
        graph.own(new FunctionPostHook() {                      // after the slice's backward: x's gradient is dy · W
            @Override
            public TensorVector apply(TensorVector outputs, TensorVector inputs) {
                graph.freeReturned();
                if (dx[0] == null) return graph.handBack(new TensorVector(new Tensor()));
                Tensor gradient = dx[0];
                dx[0] = null;
                graph.returned.add(gradient);
                return graph.handBack(new TensorVector(gradient));
            }
        }, hook -> slice.grad_fn().add_post_hook(hook));
        return y;
    }

    /** {@code dy} [..., out] · W → [..., in], by the kernel where it takes dy, else by libtorch. */
    static Tensor inputGradient(Tensor dy, Tensor weight) {
        try (Tensor grad = dy.contiguous()) {
            return Bf16Gemm.applies(grad, weight, false) ? Bf16Gemm.inputGradient(grad, weight) : grad.matmul(weight);
        }
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
        ACTIVE.set(previous);
    }
}
