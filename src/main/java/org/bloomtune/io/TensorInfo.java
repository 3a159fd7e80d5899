package org.bloomtune.io;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;

import java.util.Arrays;

/** One safetensors header entry: dtype, shape and byte range within the data section. */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

    public long byteSize() { return end - begin; }

    public long numel() { return Tensors.numel(shape); }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
    }
}
