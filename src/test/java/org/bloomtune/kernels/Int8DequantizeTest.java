package org.bloomtune.kernels;

import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The native dequantizer equals libtorch's {@code values.to(dtype).mul_(scales)} bit for bit, at odd shapes too. */
class Int8DequantizeTest {
    static {
        LibTorch.init();
    }

    @ParameterizedTest
    @CsvSource({"Float,1,1", "Float,7,33", "Float,300,1027", "BFloat16,1,5", "BFloat16,129,64", "BFloat16,300,1027"})
    void equalsLibtorchBitForBit(String dtype, long rows, long k) {
        assertTrue(Int8Dequantize.applies(torch.zeros(new long[]{1, 1}, new TensorOptions(ScalarType.Char)), torch.ones(1), ScalarType.Float),
                "the native kernels are built on this platform");
        ScalarType type = ScalarType.valueOf(dtype);
        try (PointerScope scope = new PointerScope()) {
            Generator g = torch.createCPUGenerator(rows * 31 + k);
            Tensor values = torch.randint(-127, 128, new long[]{rows, k}, new GeneratorOptional(g), new TensorOptions(ScalarType.Char));
            // scales across magnitudes, as absmax / 127 of real weights and of large activations
            Tensor scales = torch.rand(new long[]{rows}, new GeneratorOptional(g), new TensorOptions(ScalarType.Float))
                    .mul(new Scalar(8.0)).sub(new Scalar(6.0)).exp();
            Tensor expected = values.to(type).mul_(scales.unsqueeze(1).to(type));
            Tensor got = Int8Dequantize.dequantize(values, scales, type);
            assertTrue(got.scalar_type().value == type.value);
            assertTrue(torch.equal(expected, got), dtype + " " + rows + "x" + k + ": differs from libtorch");
        }
    }
}
