package org.bloomtune.tensor;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;

import java.lang.foreign.MemorySegment;

/** Bridges FFM memory segments to the JavaCPP pointers libtorch's bindings take. */
public final class NativeMemory {
    private NativeMemory() {}

    /** A non-owning JavaCPP pointer to the bytes of {@code segment}; the segment must outlive it. */
    public static Pointer pointer(MemorySegment segment) {
        return new SegmentPointer(segment);
    }

    /** The bytes behind a tensor's data pointer, as a segment of {@code byteSize} bytes. */
    public static MemorySegment segment(Pointer dataPtr, long byteSize) {
        return MemorySegment.ofAddress(dataPtr.address()).reinterpret(byteSize);
    }

    /** A tensor's data as a segment of its {@code nbytes()}: what a native kernel is handed. */
    public static MemorySegment of(Tensor t) {
        return segment(t.data_ptr(), t.nbytes());
    }

    /** {@link #of}, or {@link MemorySegment#NULL} for a null tensor (an optional operand, such as a bias). */
    public static MemorySegment ofNullable(Tensor t) {
        return t == null ? MemorySegment.NULL : of(t);
    }

    private static final class SegmentPointer extends Pointer {
        SegmentPointer(MemorySegment segment) {
            // No deallocator: the memory belongs to the segment's arena.
            this.address = segment.address();
            this.limit = segment.byteSize();
            this.capacity = segment.byteSize();
        }
    }
}
