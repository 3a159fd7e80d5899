package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * A one-position step's context built in Java ({@link DecodeContext}) against HuggingFace's ALiBi
 * and 4-D mask (the last query's row of hf/a and hf/b) and against the op-by-op path it replaces,
 * bit for bit, in every compute dtype.
 */
class DecodeContextTest {

    @ParameterizedTest
    @ValueSource(strings = {"a/lp", "a/rp", "b/lp", "b/rp"})
    void theBiasAndTheLastQuerysMaskAreHuggingFaces(String c) {
        String set = c.substring(0, 1);
        String pad = c.substring(2);
        Map<String, Tensor> g = Reference.read(Reference.reference("hf").resolve(set).resolve("goldens.safetensors"));
        try (PointerScope scope = new PointerScope()) {
            Tensor mask2d = g.get("inputs." + pad + ".attention_mask");
            int heads = (int) (g.get("base." + pad + ".alibi").size(0) / mask2d.size(0));
            AttentionContext ctx = DecodeContext.of(Tensors.toLongs(mask2d), mask2d.size(0), mask2d.size(1), heads, ScalarType.Float,
                    AttentionKernel.EAGER);
            assertArrayEquals(Tensors.toFloats(g.get("base." + pad + ".alibi")), Tensors.toFloats(ctx.alibi()), c + " ALiBi");
            Tensor hfLastQuery = g.get("base." + pad + ".causal_mask_4d").select(2, mask2d.size(1) - 1);
            assertArrayEquals(Tensors.toLongs(hfLastQuery), Tensors.toLongs(ctx.mask()), c + " mask");
        } finally {
            g.values().forEach(Tensor::close);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Float", "BFloat16", "Half", "Double"})
    void everyTensorIsTheOpByOpPathsBitForBit(String type) {
        ScalarType dtype = ScalarType.valueOf(type);
        Random random = new Random(17);
        for (int trial = 0; trial < 20; trial++) {
            int batch = 1 + random.nextInt(8), keys = 1 + random.nextInt(300), heads = 1 + random.nextInt(16);
            long[] values = new long[batch * keys];
            for (int b = 0; b < batch; b++) {
                int padding = random.nextInt(keys);     // left padding, as generation has it; a row may be all padding but its last key
                for (int j = 0; j < keys; j++) values[b * keys + j] = j < padding && random.nextInt(8) > 0 ? 0 : 1;
            }
            try (PointerScope scope = new PointerScope()) {
                Tensor mask = Tensors.fromLongs(values, batch, keys);
                AttentionContext fast = DecodeContext.of(values, batch, keys, heads, dtype, AttentionKernel.EAGER);
                Tensor alibi = Alibi.bias(mask, heads, dtype);
                Tensor masked = AttentionMask.build(mask, 1);
                String at = type + " trial " + trial + " (" + batch + " × " + keys + ", " + heads + " heads)";
                assertBitEqual(alibi, fast.alibi(), at + " ALiBi");
                assertBitEqual(masked, fast.mask(), at + " mask");
                assertNull(fast.bias(), at + ": the additive bias is left to the blocks run one by one");
            }
        }
    }

    @Test
    void aPackedRowIsLeftToTheOpByOpPath() {
        assertNull(DecodeContext.of(new long[]{1, 1, 2, 2, 1}, 1, 5, 4, ScalarType.Float, AttentionKernel.EAGER));
    }

    private static void assertBitEqual(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.sizes().vec().get(), actual.sizes().vec().get(), what + ": shape");
        assertEquals(expected.scalar_type().value, actual.scalar_type().value, what + ": dtype");
        try (Tensor a = expected.contiguous().view(-1); Tensor b = actual.contiguous().view(-1)) {
            Tensor aBits = a.scalar_type().value == ScalarType.Bool.value ? a.to(ScalarType.Long) : a.to(ScalarType.Double);
            Tensor bBits = b.scalar_type().value == ScalarType.Bool.value ? b.to(ScalarType.Long) : b.to(ScalarType.Double);
            assertArrayEquals(Tensors.toDoubles(aBits), Tensors.toDoubles(bBits), what);
            assertEquals(torch.equal(a, b), true, what);
        }
    }
}
