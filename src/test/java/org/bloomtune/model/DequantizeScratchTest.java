package org.bloomtune.model;

import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pooled dequantization buffers are handed out again only when nothing references them: a weight
 * an autograd graph saved for its backward keeps its values while later weights are dequantized.
 */
class DequantizeScratchTest {
    static {
        LibTorch.init();
    }

    @Test
    void aBufferAGraphStillHoldsIsNeverReused() {
        try (PointerScope scope = new PointerScope()) {
            torch.manual_seed(17);              // the draws no longer depend on the tests that ran before in this JVM
            Int8Weight a = Int8Weight.quantize(torch.randn(64, 32));
            Int8Weight b = Int8Weight.quantize(torch.randn(64, 32).mul(new Scalar(3)));
            Tensor x = torch.randn(5, 32);
            x.requires_grad_(true);
            Tensor y = a.matmul(x, null, null);                      // records: the graph saves a's float weight
            for (int i = 0; i < 3 * DequantizeScratch.BUFFERS; i++) {
                try (Tensor other = DequantizeScratch.weight(b, ScalarType.Float)) {
                    assertTrue(torch.equal(other, b.dequantize(ScalarType.Float)));
                }
            }
            y.sum().backward();
            // d sum(x Wᵀ) / dx = column sums of W: a's, not b's that went through the pool meanwhile
            Tensor expected = a.dequantize(ScalarType.Float).sum(new long[]{0}, false, new org.bytedeco.pytorch.ScalarTypeOptional()).expand(5, 32);
            // Sums of 64 floats in two orders (GEMM, sum): a column summing near zero still carries the
            // rounding of its ~1-sized terms, so the bound scales with the largest sum, not each one.
            // b's sums differ from a's by order one.
            double bound = 1e-5 * expected.abs().max().item_double();
            double diff = Tensors.gradient(x).sub(expected).abs().max().item_double();
            assertTrue(diff <= bound, "the saved weight was overwritten: max difference " + diff + " > " + bound);
        }
    }

    @Test
    void aBufferIsFreeOnceItsHandlesAreClosed() {
        try (PointerScope scope = new PointerScope()) {
            Int8Weight w = Int8Weight.quantize(torch.randn(16, 8));
            Tensor first = DequantizeScratch.weight(w, ScalarType.Float);
            long address = first.data_ptr().address();
            first.close();
            try (Tensor second = DequantizeScratch.weight(w, ScalarType.Float)) {
                assertTrue(second.data_ptr().address() == address, "the closed weight's buffer is handed out again");
                try (Tensor third = DequantizeScratch.weight(w, ScalarType.Float)) {
                    assertFalse(third.data_ptr().address() == address, "a buffer still in use is not");
                }
            }
        }
    }
}
