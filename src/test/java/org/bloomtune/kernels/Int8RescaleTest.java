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

/** The native LLM.int8 epilogue equals libtorch's {@code acc.to(float).mul_(row).mul_(col).to(dtype)} bit for bit. */
class Int8RescaleTest {
    static {
        LibTorch.init();
    }

    @ParameterizedTest
    @CsvSource({"Float,1,1", "Float,5,33", "Float,266,1031", "BFloat16,1,7", "BFloat16,64,128", "BFloat16,266,1031"})
    void equalsLibtorchBitForBit(String dtype, long m, long n) {
        ScalarType type = ScalarType.valueOf(dtype);
        try (PointerScope scope = new PointerScope()) {
            Generator g = torch.createCPUGenerator(m * 131 + n);
            // int8 · int8 sums over a few thousand terms reach a few hundred thousand
            Tensor acc = torch.randint(-400_000, 400_000, new long[]{m, n}, new GeneratorOptional(g), new TensorOptions(ScalarType.Int));
            Tensor row = torch.rand(new long[]{m, 1}, new GeneratorOptional(g), new TensorOptions(ScalarType.Float)).mul(new Scalar(0.05));
            Tensor col = torch.rand(new long[]{n}, new GeneratorOptional(g), new TensorOptions(ScalarType.Float)).mul(new Scalar(1e-3));
            assertTrue(Int8Rescale.applies(acc, row, col, type), "the native kernels are built on this platform");
            Tensor expected = acc.to(ScalarType.Float).mul_(row).mul_(col.unsqueeze(0)).to(type);
            assertTrue(torch.equal(expected, Int8Rescale.apply(acc, row, col, type)), dtype + " " + m + "x" + n);
        }
    }
}
