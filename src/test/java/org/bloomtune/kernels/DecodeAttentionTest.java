package org.bloomtune.kernels;

import org.bloomtune.model.Alibi;
import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DecodeAttentionTest {
    private static final double FLOAT32_MIN = -3.4028234663852886e38;

    /**
     * Against HF's eager op chain on the same tensors (baddbmm with ALiBi, float32 masked softmax,
     * bmm) in the compute dtype and in float64: the kernel must be as close to the float64 result as
     * the chain is, and in float32 equal it to float rounding. Rows: left padding, an early
     * position whose only visible key is its own, and a row with every key hidden (HF makes it
     * uniform). Cache positions past the new one hold NaN, so reading them would show. Shapes
     * cover the AVX-512 kernel's full blocks of 64 positions and 64 head elements and its narrower
     * rests; where this CPU runs that kernel, the portable one is held to the same.
     */
    @Test
    void equalsHfsEagerChainAndWritesTheNewPosition() {
        for (ScalarType type : new ScalarType[]{ScalarType.Float, ScalarType.BFloat16}) {
            for (int[] shape : new int[][]{{4, 4, 64, 0}, {4, 4, 64, 37}, {5, 16, 20, 9}, {4, 3, 80, 150}, {4, 2, 128, 63}, {3, 2, 64, 300}}) {
                check(type, shape[0], shape[1], shape[2], shape[3]);
            }
        }
    }

    private static void check(ScalarType type, int batch, int heads, int headDim, int past) {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(11 + past);
            long rows = (long) batch * heads;
            long positions = past + 1;
            long capacity = positions + 7;
            Tensor qkv = torch.randn(batch, 1, 3L * heads * headDim).mul(new Scalar(2)).to(type);
            Tensor keys = torch.full(new long[]{rows, headDim, capacity}, new Scalar(Double.NaN), new org.bytedeco.pytorch.TensorOptions(type));
            Tensor values = torch.full(new long[]{rows, capacity, headDim}, new Scalar(Double.NaN), new org.bytedeco.pytorch.TensorOptions(type));
            keys.narrow(2, 0, past).copy_(torch.randn(rows, headDim, past));
            values.narrow(1, 0, past).copy_(torch.randn(rows, past, headDim));
            Tensor mask = torch.ones(batch, positions).to(ScalarType.Long);
            if (batch > 1 && past > 2) mask.select(0, 1).narrow(0, 0, past / 2).fill_(new Scalar(0));   // left padding
            if (batch > 2) mask.select(0, 2).narrow(0, 0, past).fill_(new Scalar(0));                     // only its own key
            if (batch > 3) mask.select(0, 3).fill_(new Scalar(0));                                        // every key hidden
            Tensor alibi = Alibi.bias(mask, heads, type);
            Tensor masked = mask.eq(new Scalar(0)).view(batch, 1, 1, positions);
            Tensor[] expected = chain(qkv, keys, values, past, alibi, masked, heads, headDim, type);
            Tensor[] exact = chain(qkv, keys, values, past, alibi, masked, heads, headDim, ScalarType.Double);

            assertTrue(DecodeAttention.applies(qkv, keys, values, past, alibi, masked, heads));
            for (boolean portable : kernels()) {
                keys.narrow(2, past, 1).fill_(new Scalar(Double.NaN));                   // each kernel writes the new position itself
                values.narrow(1, past, 1).fill_(new Scalar(Double.NaN));
                Tensor out = DecodeAttention.forward(qkv, keys, values, past, alibi, masked, heads, portable);
                String where = type + (portable ? " portable" : "") + " batch " + batch + " heads " + heads + " head_dim " + headDim + " past " + past;
                checkOne(out, expected, exact, keys, values, type, batch, heads, headDim, past, capacity, where);
            }
        }
    }

    private static void checkOne(Tensor out, Tensor[] expected, Tensor[] exact, Tensor keys, Tensor values, ScalarType type,
                                 int batch, int heads, int headDim, int past, long capacity, String where) {
        long positions = past + 1;
        assertArrayEquals(new long[]{batch, 1, (long) heads * headDim}, out.sizes().vec().get(), where);
        assertTrue(out.isfinite().all().item_bool(), where + ": a NaN beyond the new position was read");

        double kernelError = maxAbs(out.to(ScalarType.Double).sub(exact[0]));
        double chainError = maxAbs(expected[0].to(ScalarType.Double).sub(exact[0]));
        assertTrue(kernelError <= Math.max(2 * chainError, 1e-6), where + ": kernel " + kernelError + " vs HF chain " + chainError + " from float64");
        if (type == ScalarType.Float) {
            double gap = maxAbs(out.sub(expected[0]).to(ScalarType.Double));
            assertTrue(gap < 1e-5, where + ": kernel vs HF chain " + gap);
        }
        assertTrue(keys.narrow(2, past, 1).equal(expected[1]), where + ": the new key at position " + past);
        assertTrue(values.narrow(1, past, 1).equal(expected[2]), where + ": the new value at position " + past);
        assertTrue(keys.narrow(2, positions, capacity - positions).isnan().all().item_bool(), where + ": keys beyond the new position untouched");
    }

    /** HF's eager attention for one query per row: merged heads, the new key [rows, hd, 1] and value [rows, 1, hd]. */
    private static Tensor[] chain(Tensor qkv, Tensor keys, Tensor values, int past, Tensor alibi, Tensor masked,
                                  int heads, int headDim, ScalarType type) {
        long batch = qkv.size(0);
        long positions = past + 1;
        Tensor perHead = qkv.to(type).view(batch, 1, heads, 3, headDim);
        Tensor query = perHead.select(3, 0).transpose(1, 2).reshape(batch * heads, 1, headDim);
        Tensor key = perHead.select(3, 1).permute(0, 2, 3, 1).reshape(batch * heads, headDim, 1);
        Tensor value = perHead.select(3, 2).transpose(1, 2).reshape(batch * heads, 1, headDim);
        Tensor allKeys = torch.cat(new TensorVector(keys.narrow(2, 0, past).to(type), key), 2);
        Tensor allValues = torch.cat(new TensorVector(values.narrow(1, 0, past).to(type), value), 1);
        ScalarType softmax = type == ScalarType.Double ? ScalarType.Double : ScalarType.Float;
        Tensor probs = alibi.to(type).view(batch * heads, 1, positions)
                .baddbmm(query, allKeys, new Scalar(1.0), new Scalar(1.0 / Math.sqrt(headDim)))
                .view(batch, heads, 1, positions).to(softmax).masked_fill(masked, new Scalar(FLOAT32_MIN)).softmax(-1).to(type);
        Tensor context = torch.bmm(probs.view(batch * heads, 1, positions), allValues)
                .view(batch, heads, 1, headDim).permute(0, 2, 1, 3).reshape(batch, 1, (long) heads * headDim);
        return new Tensor[]{context, key, value};
    }

    private static double maxAbs(Tensor t) { return t.abs().max().item_double(); }

    /** The portable kernel, and the AVX-512 one where this CPU runs it (its default then). */
    private static boolean[] kernels() {
        return DecodeAttention.hasAvx512() ? new boolean[]{false, true} : new boolean[]{false};
    }

    /**
     * A NaN in one head's query makes HF's chain NaN in exactly that (row, head)'s context; each
     * kernel must give NaN in the same places and nowhere else (an exp that clamped the NaN away
     * would hide it).
     */
    @Test
    void aNanInOneQueryStaysInItsHead() {
        for (ScalarType type : new ScalarType[]{ScalarType.Float, ScalarType.BFloat16}) {
            try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
                torch.manual_seed(3);
                int batch = 2, heads = 3, headDim = 64, past = 70;
                long positions = past + 1;
                Tensor qkv = torch.randn(batch, 1, 3L * heads * headDim).to(type);
                qkv.select(0, 1).select(0, 0).narrow(0, 3L * headDim + 5, 1).fill_(new Scalar(Double.NaN));   // row 1, head 1, q[5]
                Tensor keys = torch.randn(batch * heads, headDim, positions).to(type);
                Tensor values = torch.randn(batch * heads, positions, headDim).to(type);
                Tensor mask = torch.ones(batch, positions).to(ScalarType.Long);
                Tensor alibi = Alibi.bias(mask, heads, type);
                Tensor masked = mask.eq(new Scalar(0)).view(batch, 1, 1, positions);
                Tensor expectedNan = chain(qkv, keys, values, past, alibi, masked, heads, headDim, type)[0].isnan();
                assertTrue(expectedNan.any().item_bool(), "the chain propagates the NaN");
                for (boolean portable : kernels()) {
                    Tensor out = DecodeAttention.forward(qkv, keys, values, past, alibi, masked, heads, portable);
                    assertTrue(out.isnan().equal(expectedNan), type + (portable ? " portable" : "") + ": NaN where HF has it, and only there");
                }
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            int heads = 2;
            int headDim = 8;
            Tensor qkv = torch.randn(1, 1, 3L * heads * headDim);
            Tensor keys = torch.zeros(heads, headDim, 4);
            Tensor values = torch.zeros(heads, 4, headDim);
            Tensor alibi = torch.zeros(heads, 1, 3);
            Tensor masked = torch.zeros(1, 1, 1, 3).to(ScalarType.Bool);
            assertTrue(DecodeAttention.applies(qkv, keys, values, 2, alibi, masked, heads));
            assertFalse(DecodeAttention.applies(qkv, keys, values, 4, torch.zeros(heads, 1, 5), torch.zeros(1, 5).to(ScalarType.Bool), heads),
                    "no room for the new position");
            assertFalse(DecodeAttention.applies(qkv, keys, values, 1, alibi, masked, heads), "alibi and mask of another length");
            assertFalse(DecodeAttention.applies(qkv.to(ScalarType.Double), keys, values, 2, alibi, masked, heads), "float64");
            assertFalse(DecodeAttention.applies(qkv, keys.to(ScalarType.BFloat16), values, 2, alibi, masked, heads), "mixed dtypes");
            assertFalse(DecodeAttention.applies(qkv, keys.transpose(1, 2).contiguous().transpose(1, 2), values, 2, alibi, masked, heads),
                    "non-contiguous cache");
            assertFalse(DecodeAttention.applies(torch.randn(1, 2, 3L * heads * headDim), keys, values, 2, alibi, masked, heads), "two queries");
            assertFalse(DecodeAttention.applies(qkv, keys, values, 2, alibi, torch.zeros(1, 1, 1, 3), heads), "a float mask");
            assertFalse(DecodeAttention.applies(qkv, keys, values, 2, alibi, masked, 3), "heads that do not divide the projection");
            assertThrows(IllegalArgumentException.class, () -> DecodeAttention.forward(qkv, keys, values, 1, alibi, masked, heads));
        }
    }
}
