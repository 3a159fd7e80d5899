package org.bloomtune.model;

import org.bloomtune.kernels.DecodeAttention;
import org.bloomtune.kernels.MaskedSoftmax;
import org.bloomtune.kernels.WholeAttention;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** BLOOM self-attention: fused QKV projection, ALiBi-biased scores, output projection. */
public final class BloomAttention implements AutoCloseable {
    /** {@code torch.finfo(torch.float32).min}: HF replaces masked scores with it, not with -inf. */
    static final double FLOAT32_MIN = -3.4028234663852886e38;

    private final Linear queryKeyValue;
    private final Linear dense;
    private final int numHeads;
    private final int headDim;

    public BloomAttention(Linear queryKeyValue, Linear dense, int numHeads) {
        this.queryKeyValue = queryKeyValue;
        this.dense = dense;
        this.numHeads = numHeads;
        this.headDim = Math.toIntExact(dense.inFeatures() / numHeads);
    }

    public Linear queryKeyValue() { return queryKeyValue; }

    public Linear dense() { return dense; }

    /**
     * @param x        [B, T, H] the input layer norm's output
     * @param residual [B, T, H] added to the output projection
     * @param cache    keys and values of earlier positions (extended here), or null
     */
    public Tensor forward(Tensor x, Tensor residual, AttentionContext ctx, KvCache cache, int layer) {
        long batch = x.size(0);
        long queries = x.size(1);
        Tensor fusedQkv = queryKeyValue.forward(x);
        Tensor merged = decodeStep(fusedQkv, ctx, cache, layer, batch, queries);
        if (merged == null) merged = whole(fusedQkv, ctx, cache, layer, batch, queries);
        if (merged == null) {
            Tensor[] qkv = splitHeads(fusedQkv, batch, queries);
            merged = ctx.kernel() == AttentionKernel.SDPA ? fused(qkv, ctx, cache, layer, batch, queries)
                    : eager(qkv, ctx, cache, layer, batch, queries, x.scalar_type());
        }
        return dense.forward(merged).add(residual);
    }

    /**
     * The eager kernel's merged heads [B, 1, H] for one new position per row by {@link DecodeAttention}
     * (which writes the cache in place), or null where it does not apply: more than one query, no
     * cache, a prefix to put ahead, autograd recording, or tensors it does not take.
     */
    private Tensor decodeStep(Tensor fusedQkv, AttentionContext ctx, KvCache cache, int layer, long batch, long queries) {
        if (queries != 1 || cache == null || ctx.kernel() != AttentionKernel.EAGER || ctx.prefix() != null || fusedQkv.requires_grad()) return null;
        // Reserving is what append would do for the op chain too, so a refusal below costs nothing.
        Tensor[] buffers = cache.buffersWithRoom(layer, batch * numHeads, headDim, fusedQkv.options(), 1);
        if (!DecodeAttention.applies(fusedQkv, buffers[0], buffers[1], cache.length(), ctx.alibi(), ctx.mask(), numHeads)) return null;
        return DecodeAttention.forward(fusedQkv, buffers[0], buffers[1], cache.length(), ctx.alibi(), ctx.mask(), numHeads);
    }

    /**
     * The eager kernel's merged heads [B, T, H] straight from the fused QKV by {@link WholeAttention}
     * (through {@link NativeOpGraph} while a reverse pass records), or null where it does not apply:
     * cached or prefix keys, the SDPA kernel, or tensors it does not take. It reads the ALiBi bias and
     * the mask, not a float32 context's folded bias.
     */
    private Tensor whole(Tensor fusedQkv, AttentionContext ctx, KvCache cache, int layer, long batch, long queries) {
        if (ctx.kernel() != AttentionKernel.EAGER || ctx.prefix() != null) return null;
        if (cache != null) return prefill(fusedQkv, ctx, cache, layer, batch, queries);
        if (NativeOpGraph.appliesToAttention(fusedQkv, ctx.alibi(), ctx.mask(), numHeads)) {
            return NativeOpGraph.attention(fusedQkv, ctx.alibi(), ctx.mask(), numHeads);
        }
        if (NativeOpGraph.records(fusedQkv) || !WholeAttention.applies(fusedQkv, ctx.alibi(), ctx.mask(), numHeads)) return null;
        return WholeAttention.forward(fusedQkv, ctx.alibi(), ctx.mask(), numHeads);
    }

    /**
     * A generation's prefill (an empty cache) by {@link WholeAttention}, its keys and values then
     * entering the cache; null where it does not apply. The kernel sums each row over its own keys
     * in one order wherever the row's left padding puts them, where libtorch's batched products
     * (OpenBLAS's AVX-512 kernels on Intel) group the sums by position: a prompt's logits come out
     * the same bits alone as in a batch of longer prompts.
     */
    private Tensor prefill(Tensor fusedQkv, AttentionContext ctx, KvCache cache, int layer, long batch, long queries) {
        if (cache.length() != 0 || fusedQkv.requires_grad() || !WholeAttention.applies(fusedQkv, ctx.alibi(), ctx.mask(), numHeads)) return null;
        Tensor merged = WholeAttention.forward(fusedQkv, ctx.alibi(), ctx.mask(), numHeads);
        Tensor[] qkv = splitHeads(fusedQkv, batch, queries);
        cache.append(layer, qkv[1], qkv[2]);
        return merged;
    }

    /** HF's eager attention → the merged heads [B, T, H]. */
    private Tensor eager(Tensor[] qkv, AttentionContext ctx, KvCache cache, int layer, long batch, long queries, ScalarType compute) {
        Tensor query = qkv[0];                                                   // [B*nh, T, hd]
        Tensor[] kv = keysAndValues(qkv, ctx, cache, layer);
        Tensor key = kv[0];                                                      // [B*nh, hd, S]
        Tensor value = kv[1];                                                    // [B*nh, S, hd]
        long keys = key.size(2);
        Scalar alpha = new Scalar(1.0 / Math.sqrt(headDim));
        Tensor probs;
        if (ctx.bias() != null) {
            // ALiBi and the mask in one bias shared by all blocks: one pass (and one [B, nh, T, S]
            // copy) less per block than adding ALiBi and masking here.
            probs = ctx.bias().view(batch * numHeads, queries, keys).baddbmm(query, key, new Scalar(1.0), alpha).softmax(-1);
        } else {
            probs = maskedSoftmax(ctx.alibi().baddbmm(query, key, new Scalar(1.0), alpha), ctx.mask(), batch, queries, keys, compute);
        }
        Tensor context = torch.bmm(probs.view(batch * numHeads, queries, keys), value); // [B*nh, T, hd]
        return context.view(batch, numHeads, queries, headDim)
                .permute(0, 2, 1, 3)
                .reshape(batch, queries, (long) numHeads * headDim);                 // [B, T, H]
    }

    /**
     * HF's probabilities of the scores [B*nh, T, S] where the mask is not in the bias: cast to
     * float32, masked, softmax, cast back — by one native pass where it takes them (bfloat16; through
     * {@link NativeOpGraph} while a reverse pass records), else by libtorch's ops.
     */
    private Tensor maskedSoftmax(Tensor scores, Tensor mask, long batch, long queries, long keys, ScalarType compute) {
        if (NativeOpGraph.appliesToMaskedSoftmax(scores, mask, numHeads)) return NativeOpGraph.maskedSoftmax(scores, mask, numHeads);
        if (!NativeOpGraph.records(scores) && MaskedSoftmax.applies(scores, mask, numHeads)) return MaskedSoftmax.forwardOnly(scores, mask, numHeads);
        return scores.view(batch, numHeads, queries, keys)                      // [B, nh, T, S]
                .to(softmaxType(compute))
                .masked_fill(mask, new Scalar(FLOAT32_MIN))
                .softmax(-1)
                .to(compute);
    }

    /** libtorch's fused attention with the shared additive bias → the merged heads [B, T, H]. */
    private Tensor fused(Tensor[] qkv, AttentionContext ctx, KvCache cache, int layer, long batch, long queries) {
        Tensor[] kv = keysAndValues(qkv, ctx, cache, layer);
        Tensor key = kv[0];
        Tensor value = kv[1];
        long keys = key.size(2);
        Tensor q = qkv[0].view(batch, numHeads, queries, headDim);
        Tensor k = key.view(batch, numHeads, headDim, keys).transpose(2, 3);            // [B, nh, S, hd]
        Tensor v = value.view(batch, numHeads, keys, headDim);
        Tensor context = torch.scaled_dot_product_attention(q, k, v, new TensorOptional(ctx.bias()), 0.0, false,
                new DoubleOptional(1.0 / Math.sqrt(headDim)), false);                   // [B, nh, T, hd]
        return context.transpose(1, 2).reshape(batch, queries, (long) numHeads * headDim);
    }

    /**
     * This call's keys [B*nh, hd, T] and values [B*nh, T, hd], behind a prefix's (prefix tuning) and
     * the cached ones when there are (S = past + N + T). A prefix given with a cache enters it.
     */
    private static Tensor[] keysAndValues(Tensor[] qkv, AttentionContext ctx, KvCache cache, int layer) {
        Tensor key = qkv[1];
        Tensor value = qkv[2];
        if (ctx.prefix() != null) {
            key = torch.cat(new TensorVector(ctx.prefix().key(layer), key), 2);
            value = torch.cat(new TensorVector(ctx.prefix().value(layer), value), 1);
        }
        return cache == null ? new Tensor[]{key, value} : cache.append(layer, key, value);
    }

    /** Softmax runs in float32 (as in HF) unless the model computes in float64. */
    static ScalarType softmaxType(ScalarType compute) {
        return compute.value == ScalarType.Double.value ? ScalarType.Double : ScalarType.Float;
    }

    /**
     * The fused projection is laid out per head — {@code [B, T, heads, 3, head_dim]}, q/k/v
     * interleaved inside each head — not as three blocked thirds. Returns query [B*nh, T, hd], key
     * already transposed for the score product [B*nh, hd, T], and value [B*nh, T, hd].
     */
    Tensor[] splitHeads(Tensor fused, long batch, long queries) {
        // unbind, not three selects: its backward stacks the three gradients into the fused one in one
        // pass, where each select's would fill a zero tensor of the fused size and autograd add them.
        TensorVector qkv = fused.view(batch, queries, numHeads, 3, headDim).unbind(3);  // 3 × [B, T, nh, hd]
        Tensor query = qkv.get(0).transpose(1, 2).reshape(batch * numHeads, queries, headDim);
        Tensor key = qkv.get(1).permute(0, 2, 3, 1).reshape(batch * numHeads, headDim, queries);
        Tensor value = qkv.get(2).transpose(1, 2).reshape(batch * numHeads, queries, headDim);
        return new Tensor[]{query, key, value};
    }

    @Override
    public void close() {
        queryKeyValue.close();
        dense.close();
    }
}
