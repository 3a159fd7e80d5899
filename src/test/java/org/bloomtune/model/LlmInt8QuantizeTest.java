package org.bloomtune.model;

import org.bloomtune.kernels.Int8Quantize;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fused C kernel, from float32, bfloat16 or float16 rows, is bit-identical to the libtorch op chain it replaces. */
class LlmInt8QuantizeTest {

    @ParameterizedTest
    @CsvSource({"1,64,6.0,0", "7,96,6.0,3", "33,1024,6.0,5", "5,70,0,2", "4,16,6.0,16", "8,4096,6.0,7", "3,1001,6.0,1"})
    void nativeKernelEqualsLibtorchChain(int m, int k, double threshold, int outlierColumns) {
        assertTrue(Int8Quantize.available(), "the native kernel was not built");
        Random r = new Random(m * 31L + k);
        float[] x = new float[m * k];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (int o = 0; o < outlierColumns; o++) x[(o % m) * k + (o * 7) % k] = 9f + o;   // a big entry in some column
        try (PointerScope scope = new PointerScope()) {
            Tensor xf = Tensors.fromFloats(x, m, k);
            Int8Quantize.Result chain = LlmInt8.quantize(xf, threshold, LlmInt8.Quantizer.LIBTORCH);
            assertSame(chain, LlmInt8.quantize(xf, threshold, LlmInt8.Quantizer.NATIVE));
            // bfloat16 and float16 rows, read by the kernel as they are, against the chain on their float32 copy
            for (ScalarType half : new ScalarType[]{ScalarType.BFloat16, ScalarType.Half}) {
                Tensor h = xf.to(half);
                assertSame(LlmInt8.quantize(h.to(ScalarType.Float), threshold, LlmInt8.Quantizer.LIBTORCH),
                        LlmInt8.quantize(h, threshold, LlmInt8.Quantizer.NATIVE));
            }
        }
    }

    /**
     * Every finite float16 value — subnormals, both zeros, the largest — in rows of 1,024, in order
     * (rows of subnormals alone) and shuffled, as a float16 checkpoint's weights are quantized at load
     * (no threshold) and with one.
     */
    @ParameterizedTest
    @CsvSource({"false,0", "true,0", "true,6.0"})
    void everyFiniteFloat16IsQuantizedAsTheChainQuantizesItsFloat32Copy(boolean shuffled, double threshold) {
        float[] values = new float[62 * 1024];
        int n = 0;
        for (int bits = 0; bits < 1 << 16; bits++) {
            float v = Float.float16ToFloat((short) bits);
            if (Float.isFinite(v)) values[n++] = v;
        }
        assertEquals(values.length, n, "finite float16 values");
        if (shuffled) {
            Random r = new Random(16);
            for (int i = values.length - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                float t = values[i];
                values[i] = values[j];
                values[j] = t;
            }
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor half = Tensors.fromFloats(values, 62, 1024).to(ScalarType.Half);
            assertSame(LlmInt8.quantize(half.to(ScalarType.Float), threshold, LlmInt8.Quantizer.LIBTORCH),
                    LlmInt8.quantize(half, threshold, LlmInt8.Quantizer.NATIVE));
        }
    }

    private static void assertSame(Int8Quantize.Result chain, Int8Quantize.Result fused) {
        assertEquals(chain.outliers(), fused.outliers());
        assertArrayEquals(Tensors.toLongs(chain.outlier()), Tensors.toLongs(fused.outlier()));
        assertArrayEquals(Tensors.toFloats(chain.rowScale()), Tensors.toFloats(fused.rowScale()));
        assertArrayEquals(Tensors.toLongs(chain.x8()), Tensors.toLongs(fused.x8()));
    }
}
