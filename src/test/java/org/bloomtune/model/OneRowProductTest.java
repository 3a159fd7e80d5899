package org.bloomtune.model;

import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OneRowProductTest {
    @Test
    void oneRowEqualsTheFloat64ProductAndOtherInputsKeepLinear() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(5);
            DenseLinear layer = new DenseLinear(torch.randn(300, 128), torch.randn(300));
            Tensor row = torch.randn(1, 1, 128);                                     // [B, T, H] of a decode step
            assertTrue(OneRowProduct.applies(row, layer.weight()));
            Tensor y = layer.forward(row);
            assertArrayEquals(new long[]{1, 1, 300}, y.sizes().vec().get());
            Tensor exact = torch.linear(row.to(ScalarType.Double), layer.weight().to(ScalarType.Double),
                    new org.bytedeco.pytorch.TensorOptional(layer.bias().to(ScalarType.Double)));
            double err = y.to(ScalarType.Double).sub(exact).abs().max().item_double();
            assertTrue(err <= 1e-5 * exact.abs().max().item_double(), "error " + err);
            assertFalse(OneRowProduct.applies(torch.randn(2, 128), layer.weight()), "two rows: linear");
            assertFalse(OneRowProduct.applies(row.to(ScalarType.BFloat16), layer.weight().to(ScalarType.BFloat16)), "bf16: linear");
            DenseWordEmbedding head = new DenseWordEmbedding(torch.randn(500, 128));
            Tensor logits = head.logits(torch.randn(1, 128));
            assertArrayEquals(new long[]{1, 500}, logits.sizes().vec().get());
        }
    }
}
