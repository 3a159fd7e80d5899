package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.tensor.HugePages;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decoding with the cache equals recomputing the whole sequence every step (≤ 1e-5), and each
 * step's logits equal HF generate's per-step scores (≤ 1e-4), for a left-padded batch — with the
 * default room and with room for exactly the generation (never reallocated); and a cache with too
 * little room grows mid-way, the cached positions copied over, still equal to the recompute.
 */
class KvCacheTest {

    @ParameterizedTest
    @CsvSource({"a, DEFAULT", "b, DEFAULT", "a, EXACT", "b, EXACT"})
    void cachedStepsEqualFullRecomputeAndHfScores(String set, Room room) {
        Path dir = Reference.reference("hf").resolve(set);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        Tensor sequences = g.get("gen.base.lp.sequences");          // [2, 7 + 8]
        Tensor scores = g.get("gen.base.lp.scores");                // [8, 2, V]
        Tensor promptMask = g.get("gen.lp.attention_mask");         // [2, 7]
        long batch = sequences.size(0);
        long promptLength = promptMask.size(1);
        int steps = (int) scores.size(0);
        long generation = promptLength + steps - 1;                 // positions the last step leaves cached
        long expected = room == Room.EXACT ? generation : 0;
        try (BloomModel model = BloomModel.load(dir.resolve("model")); KvCache cache = new KvCache(model.config().numLayers(), expected)) {
            for (int s = 0; s < steps; s++) {
                long total = promptLength + s;
                Tensor fullMask = torch.cat(new TensorVector(promptMask, torch.ones(batch, s).to(promptMask.scalar_type())), 1);
                Tensor fullIds = sequences.narrow(1, 0, total);
                Tensor newIds = s == 0 ? fullIds : sequences.narrow(1, total - 1, 1);
                try (CausalLmOutput cached = model.forward(CausalLmInput.ids(newIds).mask(fullMask), cache);
                     CausalLmOutput full = model.forward(CausalLmInput.ids(fullIds).mask(fullMask))) {
                    Tensor cachedLast = cached.logits().select(1, cached.logits().size(1) - 1);
                    Tensor fullLast = full.logits().select(1, total - 1);
                    // The same float32 numbers summed in other orders (a decode step's rows kernels, the
                    // recompute's GEMM): a few units in the last place of the largest logit; a wrong
                    // cache is off by far more.
                    double drift = Reference.maxAbsDiff(cachedLast, fullLast);
                    double scale = fullLast.abs().max().item_double();
                    assertTrue(drift <= 3e-6 * scale, "step " + s + ": cache vs recompute " + drift + " with logits up to " + scale);
                    double hf = Reference.maxAbsDiff(cachedLast, scores.select(0, s));
                    assertTrue(hf <= 1e-4, "step " + s + ": vs HF scores " + hf);
                }
                assertEquals(total, cache.length());
                if (room == Room.EXACT) assertEquals(wholeLines(generation), cache.capacity(), "step " + s + ": capacity");
            }
        }
    }

    enum Room { DEFAULT, EXACT }

    /**
     * Room for the prompt and two more positions is one line of positions; decoding on past it (the
     * goldens' generated tokens, cycled) grows the buffers once, and every step before and after
     * equals the full recompute.
     */
    @ParameterizedTest
    @CsvSource({"a", "b"})
    void aCacheGrownMidwayKeepsItsPositions(String set) {
        Path dir = Reference.reference("hf").resolve(set);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        Tensor sequences = g.get("gen.base.lp.sequences");
        Tensor promptMask = g.get("gen.lp.attention_mask");
        long batch = sequences.size(0);
        long promptLength = promptMask.size(1);
        long generated = sequences.size(1) - promptLength;
        int steps = 40;
        Tensor ids = sequences.narrow(1, 0, promptLength);
        for (int s = 0; s < steps; s++) ids = torch.cat(new TensorVector(ids, sequences.narrow(1, promptLength + s % generated, 1)), 1);
        try (BloomModel model = BloomModel.load(dir.resolve("model")); KvCache cache = new KvCache(model.config().numLayers(), promptLength + 2)) {
            for (int s = 0; s <= steps; s++) {
                long total = promptLength + s;
                Tensor mask = torch.cat(new TensorVector(promptMask, torch.ones(batch, s).to(promptMask.scalar_type())), 1);
                Tensor newIds = s == 0 ? ids.narrow(1, 0, total) : ids.narrow(1, total - 1, 1);
                try (CausalLmOutput cached = model.forward(CausalLmInput.ids(newIds).mask(mask), cache);
                     CausalLmOutput full = model.forward(CausalLmInput.ids(ids.narrow(1, 0, total)).mask(mask))) {
                    Tensor cachedLast = cached.logits().select(1, cached.logits().size(1) - 1);
                    Tensor fullLast = full.logits().select(1, total - 1);
                    double drift = Reference.maxAbsDiff(cachedLast, fullLast);
                    double scale = fullLast.abs().max().item_double();
                    assertTrue(drift <= 3e-6 * scale, "step " + s + ": cache vs recompute " + drift + " with logits up to " + scale);
                }
                long capacity = cache.capacity();
                if (total <= 32) assertEquals(32, capacity, "step " + s + ": one line of positions");
                else assertTrue(capacity > 32 && capacity % 32 == 0, "step " + s + ": grown to " + capacity);
            }
        }
    }

    /** Positions rounded up so that a key row fills whole 64-byte lines in bfloat16 (32 positions a line). */
    private static long wholeLines(long positions) {
        return (positions + 31) / 32 * 32;
    }

    /** Reserved for a long generation and written a position at a time, the cache is resident only where written. */
    @Test
    void aCacheReservedForALongGenerationStaysOffHugePages() throws Exception {
        Path dir = Reference.reference("hf").resolve("a");
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        Tensor promptMask = g.get("gen.lp.attention_mask");
        Tensor prompt = g.get("gen.base.lp.sequences").narrow(1, 0, promptMask.size(1));
        try (BloomModel model = BloomModel.load(dir.resolve("model")); KvCache cache = new KvCache(model.config().numLayers(), 1 << 20)) {
            model.forward(CausalLmInput.ids(prompt).mask(promptMask), cache).close();
            Tensor key = cache.buffersWithRoom(0, 0, 0, null, 0)[0];      // room enough: the buffer as it is
            long bytes = key.numel() * key.element_size();
            assertTrue(bytes > 2L << 20, "a reservation that would hold a whole 2 MiB page: " + bytes + " bytes");
            long kb = HugePages.backingKb(key.data_ptr().address());
            // Under THP 'always' the kernel backs any aligned region itself; otherwise only what asks.
            if (!HugePages.setting().equals("always")) assertEquals(0, kb, "huge pages under the key buffer");
        }
    }
}
