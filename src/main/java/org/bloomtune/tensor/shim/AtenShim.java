package org.bloomtune.tensor.shim;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * ATen ops JavaCPP does not map (names starting with '_'), called through libtorch's C shim.
 * An {@code AtenTensorHandle} is an {@code at::Tensor*}, which is exactly what a JavaCPP
 * {@link Tensor}'s address is, so tensors go in without conversion. Every tensor the shim returns
 * is copied into a JavaCPP tensor the caller owns and its handle deleted exactly once.
 */
public final class AtenShim {
    private static final FunctionDescriptor TWO_IN_ONE_OUT = FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS);
    private static final MethodHandle WEIGHT_INT8PACK_MM = ShimSymbols.bind("aoti_torch_cpu__weight_int8pack_mm", TWO_IN_ONE_OUT);
    private static final MethodHandle INT_MM_OUT = ShimSymbols.bind("aoti_torch_cpu__int_mm_out",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final MethodHandle DELETE = ShimSymbols.bind("aoti_torch_delete_tensor_object",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));

    private AtenShim() {}

    /**
     * {@code _weight_int8pack_mm}: {@code x [M, K] · (weight [N, K] int8 × scales [N])ᵀ → [M, N]} in
     * x's dtype. Checked here: CPU tensors, x float32/bf16/fp16 contiguous 2-D, weight int8
     * contiguous [N, K], scales [N] of x's dtype.
     */
    public static Tensor weightInt8PackMm(Tensor x, Tensor weight, Tensor scales) {
        ShimChecks.weightInt8PackMm(x, weight, scales);
        try (Arena call = Arena.ofConfined()) {        // lives for this call: the out-pointer slot
            MemorySegment out = call.allocate(ValueLayout.ADDRESS);
            int rc = invoke(WEIGHT_INT8PACK_MM, handle(x), handle(weight), handle(scales), out);
            if (rc != 0) throw new ShimException("_weight_int8pack_mm", rc);
            return adopt(out.get(ValueLayout.ADDRESS, 0));
        }
    }

    /**
     * {@code _int_mm}: {@code a [M, K] int8 · b [K, N] int8 → out [M, N] int32}, written into
     * {@code out}. Checked here: CPU, dtypes, 2-D shapes that agree.
     */
    public static void intMm(Tensor out, Tensor a, Tensor b) {
        ShimChecks.intMm(out, a, b);
        int rc;
        try {
            rc = (int) INT_MM_OUT.invokeExact(handle(out), handle(a), handle(b));
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to _int_mm failed", t);
        }
        if (rc != 0) throw new ShimException("_int_mm_out", rc);
    }

    private static int invoke(MethodHandle op, MemorySegment a, MemorySegment b, MemorySegment c, MemorySegment out) {
        try {
            return (int) op.invokeExact(a, b, c, out);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call into libtorch's C shim failed", t);
        }
    }

    static MemorySegment handle(Tensor t) {
        return MemorySegment.ofAddress(t.address());
    }

    /** Takes over a tensor handle the shim allocated: our own reference first, then the handle goes. */
    private static Tensor adopt(MemorySegment handle) {
        if (handle.address() == 0) throw new ShimException("(null result)", -1);
        Tensor owned = new Tensor(new TensorView(handle.address()));    // at::Tensor copy: refcount + 1
        try {
            int rc = (int) DELETE.invokeExact(handle);                   // the shim's at::Tensor: refcount - 1
            if (rc != 0) throw new ShimException("delete_tensor_object", rc);
        } catch (ShimException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to aoti_torch_delete_tensor_object failed", t);
        }
        return owned;
    }

    /** A non-owning JavaCPP view of an {@code at::Tensor*}, only used to copy-construct from it. */
    private static final class TensorView extends Tensor {
        TensorView(long address) {
            super((Pointer) null);
            this.address = address;
        }
    }

    static String describe(Tensor t) { return t.scalar_type() + Tensors.shapeString(t); }
}
