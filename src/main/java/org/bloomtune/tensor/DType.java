package org.bloomtune.tensor;

import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Locale;

/**
 * The element types BloomTune reads and writes, with their safetensors spelling and libtorch type.
 */
public enum DType {
    F32("F32", ScalarType.Float, 4),
    F16("F16", ScalarType.Half, 2),
    BF16("BF16", ScalarType.BFloat16, 2),
    F64("F64", ScalarType.Double, 8),
    I64("I64", ScalarType.Long, 8),
    I32("I32", ScalarType.Int, 4),
    I16("I16", ScalarType.Short, 2),
    I8("I8", ScalarType.Char, 1),
    U8("U8", ScalarType.Byte, 1),
    BOOL("BOOL", ScalarType.Bool, 1);

    private final String safetensorsName;
    private final ScalarType scalarType;
    private final int byteSize;

    DType(String safetensorsName, ScalarType scalarType, int byteSize) {
        this.safetensorsName = safetensorsName;
        this.scalarType = scalarType;
        this.byteSize = byteSize;
    }

    public String safetensorsName() { return safetensorsName; }

    public ScalarType scalarType() { return scalarType; }

    public int byteSize() { return byteSize; }

    public boolean isFloatingPoint() { return this == F32 || this == F16 || this == BF16 || this == F64; }

    /** The safetensors dtype string ("F32", "BF16", ...), or null when BloomTune does not know it. */
    public static DType fromSafetensors(String name) {
        for (DType d : values()) {
            if (d.safetensorsName.equals(name)) return d;
        }
        return null;
    }

    public static DType of(ScalarType type) {
        for (DType d : values()) {
            if (d.scalarType.value == type.value) return d;
        }
        throw new IllegalArgumentException("unsupported libtorch scalar type " + type);
    }

    /** Parses a user-facing compute dtype: fp32/float32/f32, bf16/bfloat16, fp16/float16/half. */
    public static DType parseCompute(String text) {
        return switch (text.toLowerCase(Locale.ROOT)) {
            case "fp32", "float32", "f32", "float" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "fp16", "float16", "f16", "half" -> F16;
            default -> throw new IllegalArgumentException(
                    "unknown dtype '" + text + "' (expected fp32, bf16 or fp16)");
        };
    }
}
