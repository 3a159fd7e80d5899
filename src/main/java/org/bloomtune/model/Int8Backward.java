package org.bloomtune.model;

import org.bloomtune.kernels.Bf16Gemm;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The input gradients of int8 linears, formed by the reverse pass instead of libtorch's graph —
 * as bitsandbytes' {@code MatMul8bitLt} keeps the int8 weight for its backward and dequantizes it
 * again there for {@code dx = dy · W}. Recorded through libtorch, a product would keep its
 * dequantized float weight until the graph dies: four per block, a block's largest transient.
 *
 * <p>While one is open on a thread, {@link Int8Weight#matmul} of an input that records goes
 * through {@link #record}: the product is computed without a graph and returned as a leaf.
 * After the output's gradient has been pushed into those leaves, {@link #backward} takes the
 * products latest first — each output gradient is complete by then, since only later operations
 * use a product — and pushes {@code dy · W} into the product's input, whose graph carries it on
 * to earlier products and to the leaves the caller reads.
 *
 * <p>A node reached from two products (a residual add; with
 * {@code apply_residual_connection_post_layernorm}, a layer norm) is traversed once per product,
 * so the graph is kept until the caller drops it ({@link #retainsGraph}): meant for one
 * recomputed block at a time, whose graph dies with it.
 */
public final class Int8Backward implements AutoCloseable {
    private static final ThreadLocal<Int8Backward> ACTIVE = new ThreadLocal<>();

    private final Int8Backward previous;
    private final List<Product> products = new ArrayList<>();

    private record Product(Tensor input, Tensor output, Int8Weight weight) {
        void close() {
            input.close();
            output.close();
        }
    }

    private Int8Backward(Int8Backward previous) {
        this.previous = previous;
    }

    /** Starts recording int8 products on this thread until {@link #close}. */
    public static Int8Backward open() {
        Int8Backward tape = new Int8Backward(ACTIVE.get());
        ACTIVE.set(tape);
        return tape;
    }

    /** The one open on this thread, or null. */
    static Int8Backward active() { return ACTIVE.get(); }

    /**
     * {@code x [..., in] · Wᵀ (+ bias)} by {@code kernel}, outside libtorch's graph, as a leaf that
     * records: the product the unrecorded forward formed, so a recomputed block reproduces the first
     * pass (for LLM.int8 the quantized product, as bitsandbytes' forward; its backward multiplies
     * the dequantized weight, as bitsandbytes' does).
     */
    Tensor record(Tensor x, Int8Weight weight, Int8Kernel kernel, Tensor bias) {
        Tensor y;
        try (GradMode off = GradMode.off(); Tensor detached = x.detach()) {
            y = weight.matmul(detached, kernel, bias);
        }
        y.requires_grad_(true);
        products.add(new Product(Tensors.escape(new Tensor(x)), Tensors.escape(new Tensor(y)), weight));
        return y;
    }

    /** True once a product was recorded: the caller's first backward must then keep the graph. */
    public boolean retainsGraph() { return !products.isEmpty(); }

    /** Pushes each recorded product's output gradient through its weight into its input, latest first. */
    public void backward() {
        for (int i = products.size() - 1; i >= 0; i--) {
            Product p = products.get(i);
            try (PointerScope scope = new PointerScope()) {
                Tensor dy = Tensors.gradient(p.output());
                p.output().mutable_grad().reset();          // the leaf outlives this; its gradient need not
                if (dy.defined()) Autograd.backward(p.input(), inputGradient(dy, p.weight()), true);
            }
            p.close();
            products.remove(i);
        }
    }

    /**
     * {@code dy [..., out] · W [out, in] → [..., in]}: bfloat16 by the GEMM that dequantizes the
     * weight as it packs it, else the weight dequantized into a reused buffer for this product only.
     */
    private static Tensor inputGradient(Tensor dy, Int8Weight w) {
        try (Tensor grad = dy.contiguous()) {
            if (Bf16Gemm.appliesInt8(grad, w.values(), w.scales(), false)) return Bf16Gemm.int8InputGradient(grad, w.values(), w.scales());
            try (Tensor weight = DequantizeScratch.weight(w, grad.scalar_type())) {
                return NativeOpGraph.inputGradient(grad, weight);
            }
        }
    }

    @Override
    public void close() {
        products.forEach(Product::close);
        products.clear();
        ACTIVE.set(previous);
    }
}
