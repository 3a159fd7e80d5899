package org.bloomtune.kernels;

import org.bloomtune.tensor.CpuFeatures;
import org.bloomtune.tensor.DType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code --dtype auto} follows how this CPU's bfloat16 products run: bfloat16 exactly where the GEMM
 * multiplies by {@code vdpbf16ps} (measured at full rate, or set so), float32 where it widens, and
 * float32 on CUDA whatever the CPU.
 */
class AutoDtypeTest {
    @Test
    void autoIsBf16ExactlyWhereBf16ProductsRunAsPairs() {
        Bf16Products measured = Bf16Gemm.products();
        try {
            for (Bf16Products way : Bf16Products.values()) {
                Bf16Gemm.useProducts(way);
                boolean pairs = Bf16Gemm.supported() && way == Bf16Products.PAIRS;
                assertEquals(pairs && CpuFeatures.nativeBf16() ? DType.BF16 : DType.F32, AutoDtype.compute("cpu"), way.toString());
                assertEquals(AutoDtype.compute("cpu"), AutoDtype.compute(null), "no device is the CPU");
                assertEquals(DType.F32, AutoDtype.compute("cuda:0"));
            }
        } finally {
            Bf16Gemm.useProducts(measured);
        }
    }
}
