package org.bloomtune.tensor;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Arrays;

/**
 * Small conversions between Java arrays and libtorch tensors. Every tensor returned here is owned
 * by the caller, or by the innermost open {@link org.bytedeco.javacpp.PointerScope}.
 */
public final class Tensors {
    static {
        LibTorch.init();
    }

    private Tensors() {}

    public static long[] shape(Tensor t) {
        long[] dims = new long[(int) t.dim()];
        for (int i = 0; i < dims.length; i++) dims[i] = t.size(i);
        return dims;
    }

    public static String shapeString(Tensor t) { return Arrays.toString(shape(t)); }

    /** {@code t}'s shape with its last size replaced by {@code last}: a product's output over the same leading axes. */
    public static long[] shapeWithLast(Tensor t, long last) {
        long[] dims = shape(t);
        dims[dims.length - 1] = last;
        return dims;
    }

    public static long numel(long... shape) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    public static TensorOptions options(DType dtype, Device device) {
        return new TensorOptions(dtype.scalarType()).device(new DeviceOptional(device));
    }

    /** A CPU float32 tensor holding a copy of {@code data}. */
    public static Tensor fromFloats(float[] data, long... shape) {
        checkSize(data.length, shape);
        Tensor t = empty(shape, ScalarType.Float);
        if (data.length > 0) new FloatPointer(t.data_ptr()).put(data);   // an empty tensor has no data pointer
        return t;
    }

    /** A CPU boolean tensor holding a copy of {@code data}. */
    public static Tensor fromBooleans(boolean[] data, long... shape) {
        checkSize(data.length, shape);
        Tensor t = empty(shape, ScalarType.Bool);
        if (data.length == 0) return t;
        byte[] bytes = new byte[data.length];
        for (int i = 0; i < data.length; i++) bytes[i] = (byte) (data[i] ? 1 : 0);
        new BytePointer(t.data_ptr()).put(bytes);
        return t;
    }

    /** A CPU float64 tensor holding a copy of {@code data}. */
    public static Tensor fromDoubles(double[] data, long... shape) {
        checkSize(data.length, shape);
        Tensor t = empty(shape, ScalarType.Double);
        if (data.length > 0) new DoublePointer(t.data_ptr()).put(data);
        return t;
    }

    /** A CPU int64 tensor holding a copy of {@code data}. */
    public static Tensor fromLongs(long[] data, long... shape) {
        checkSize(data.length, shape);
        Tensor t = empty(shape, ScalarType.Long);
        if (data.length > 0) new LongPointer(t.data_ptr()).put(data);
        return t;
    }

    /** The elements of {@code t} as float32 in row-major order (copied to the CPU first if needed). */
    public static float[] toFloats(Tensor t) {
        try (Tensor c = cpuContiguous(t, ScalarType.Float)) {
            float[] out = new float[Math.toIntExact(c.numel())];
            if (out.length > 0) new FloatPointer(c.data_ptr()).get(out);
            return out;
        }
    }

    /** The elements of {@code t} as float64 in row-major order. */
    public static double[] toDoubles(Tensor t) {
        try (Tensor c = cpuContiguous(t, ScalarType.Double)) {
            double[] out = new double[Math.toIntExact(c.numel())];
            if (out.length > 0) new DoublePointer(c.data_ptr()).get(out);
            return out;
        }
    }

    /** The elements of {@code t} as int64 in row-major order. */
    public static long[] toLongs(Tensor t) {
        if (t.is_cpu() && t.is_contiguous() && t.scalar_type().value == ScalarType.Long.value) {
            long[] out = new long[Math.toIntExact(t.numel())];     // read in place, without the three calls a conversion makes
            if (out.length > 0) new LongPointer(t.data_ptr()).get(out);
            return out;
        }
        try (Tensor c = cpuContiguous(t, ScalarType.Long)) {
            long[] out = new long[Math.toIntExact(c.numel())];
            if (out.length > 0) new LongPointer(c.data_ptr()).get(out);
            return out;
        }
    }

    /** The single element of {@code scalar} in double precision. */
    public static double toDouble(Tensor scalar) {
        if (scalar.numel() != 1) {
            throw new IllegalArgumentException("expected one element, got shape " + shapeString(scalar));
        }
        try (Tensor c = cpuContiguous(scalar, ScalarType.Double)) {
            return new DoublePointer(c.data_ptr()).get();
        }
    }

    public static float toFloat(Tensor scalar) {
        if (scalar.numel() != 1) {
            throw new IllegalArgumentException("expected one element, got shape " + shapeString(scalar));
        }
        return toFloats(scalar)[0];
    }

    /**
     * A contiguous CPU view of {@code t} in {@code type}: a new handle (sharing storage when no
     * conversion is needed) that the caller closes.
     */
    static Tensor cpuContiguous(Tensor t, ScalarType type) {
        try (Device cpu = new Device(torch.DeviceType.CPU); Tensor detached = t.detach();
             Tensor moved = detached.to(cpu, type)) {
            return moved.contiguous();
        }
    }

    /**
     * A handle of its own to {@code t}'s accumulated gradient (undefined when there is none).
     * {@code Tensor.grad()} returns a reference into {@code t}'s autograd metadata, which dies
     * with {@code t}; this copy shares the gradient's storage but not that lifetime.
     */
    public static Tensor gradient(Tensor t) {
        return new Tensor(t.grad());
    }

    /** True when both tensors start at the same memory, i.e. one is a view of the other. */
    public static boolean sameData(Tensor a, Tensor b) {
        return a.data_ptr().address() == b.data_ptr().address();
    }

    /**
     * Lets {@code t} outlive the innermost open scope: the scope's close no longer frees it, and
     * the caller becomes its owner (it frees it with {@code close()}).
     */
    public static <T extends Pointer> T escape(T t) {
        t.retainReference();
        return t;
    }

    private static Tensor empty(long[] shape, ScalarType type) {
        try (TensorOptions options = new TensorOptions(type)) {
            return torch.empty(shape, options, new MemoryFormatOptional());
        }
    }


    private static void checkSize(int length, long[] shape) {
        if (numel(shape) != length) {
            throw new IllegalArgumentException(
                    "data of " + length + " elements does not fill shape " + Arrays.toString(shape));
        }
    }
}
