/*
 * BLOOM's eager attention for one new position per row (a decode step), straight from the fused
 * query/key/value projection into the KV cache and the merged heads. libtorch's op chain for the
 * same (split heads, two cache writes, baddbmm, cast, masked_fill, softmax, cast, bmm, merge) makes
 * a dozen calls per layer, and its matrix products copy the narrowed cache views into fresh
 * buffers every step; here each (row, head) is one pass over its cached keys and values.
 *
 * Rounding follows HF's eager path in the compute dtype D (float32 or bfloat16): a score is
 * alibi + α·q·k summed in float32 and rounded to D once (baddbmm), masked keys take float32's
 * lowest value, the softmax runs in float32 and its probabilities are rounded to D, and each
 * context element is summed in float32 and rounded to D once (bmm).
 *
 * Built with gcc -fopenmp-simd (the simd pragmas only); target_clones compiles AVX-512, AVX2 and
 * baseline versions and the loader picks one at run time.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "bf16.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BT_CLONES
#endif

#define BT_INLINE static inline __attribute__((always_inline))
#include "fast_exp.h"

/* How many key rows ahead of the one being read are requested: a memory latency's worth of rows. */
#define KEY_ROWS_AHEAD 8

/* torch.finfo(torch.float32).min: HF's value for masked scores, not -inf. */
#define BT_MASKED (-3.40282347e38f)

/* Element i of a D array as float; `bf16` is a constant at every (inlined) call site. */
BT_INLINE float load(const void *base, int64_t i, const int bf16) {
    return bf16 ? bf16_to_float(((const uint16_t *) base)[i]) : ((const float *) base)[i];
}

BT_INLINE void store(void *base, int64_t i, float v, const int bf16) {
    if (bf16) ((uint16_t *) base)[i] = float_to_bf16(v);
    else ((float *) base)[i] = v;
}

/* v rounded to D and back: where HF's ops hand a D tensor to the next. */
BT_INLINE float in_dtype(float v, const int bf16) { return bf16 ? bf16_to_float(float_to_bf16(v)) : v; }

BT_INLINE void copy_elements(void *dst, int64_t dst_at, int64_t dst_step, const void *src, int64_t src_at, int64_t n, const int bf16) {
    for (int64_t i = 0; i < n; i++) {
        if (bf16) ((uint16_t *) dst)[dst_at + i * dst_step] = ((const uint16_t *) src)[src_at + i];
        else ((float *) dst)[dst_at + i * dst_step] = ((const float *) src)[src_at + i];
    }
}

/*
 * One (row, head) pair bh = b·heads + h. scores holds past + 1 floats, context head_dim floats.
 * Keys are [B·heads, head_dim, cap], values [B·heads, cap, head_dim]; position `past` is written here.
 */
BT_INLINE void attend(const void *qkv, void *keys, void *values, const void *alibi, const uint8_t *masked, void *out,
                      float *scores, float *context, int64_t bh, int64_t heads, int64_t head_dim, int64_t past, int64_t cap,
                      float alpha, const int bf16) {
    int64_t b = bh / heads;
    int64_t n = past + 1;
    int64_t q_at = bh * 3 * head_dim;                     /* [B, 1, heads, 3, head_dim]: q, k, v per head */
    copy_elements(keys, bh * head_dim * cap + past, cap, qkv, q_at + head_dim, head_dim, bf16);
    copy_elements(values, (bh * cap + past) * head_dim, 1, qkv, q_at + 2 * head_dim, head_dim, bf16);

    for (int64_t s = 0; s < n; s++) scores[s] = 0.0f;
    int64_t row_bytes = n * (bf16 ? 2 : 4);
    for (int64_t d = 0; d < head_dim; d++) {
        float q = load(qkv, q_at + d, bf16);
        int64_t row = (bh * head_dim + d) * cap;
        /* The key row KEY_ROWS_AHEAD on (into the next pair's rows at the end): rows are cap apart, a gap the hardware prefetcher does not cross. */
        const char *ahead = (const char *) keys + (row + KEY_ROWS_AHEAD * cap) * (bf16 ? 2 : 4);
        for (int64_t at = 0; at < row_bytes; at += 64) __builtin_prefetch(ahead + at, 0, 3);
#pragma omp simd
        for (int64_t s = 0; s < n; s++) scores[s] += q * load(keys, row + s, bf16);
    }
    float max = BT_MASKED;
#pragma omp simd reduction(max : max)                 /* a max is exact in any order */
    for (int64_t s = 0; s < n; s++) {
        float x = masked[b * n + s] ? BT_MASKED : in_dtype(load(alibi, bh * n + s, bf16) + alpha * scores[s], bf16);
        scores[s] = x;
        max = x > max ? x : max;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t s = 0; s < n; s++) {
        float x = scores[s] - max;
        float e = x < -87.3f ? 0.0f : bt_exp(x);           /* below float32's normal range beside a sum ≥ 1 */
        scores[s] = e;
        sum += e;
    }
    for (int64_t d = 0; d < head_dim; d++) context[d] = 0.0f;
    for (int64_t s = 0; s < n; s++) {
        float p = in_dtype(scores[s] / sum, bf16);
        if (p == 0.0f) continue;
        int64_t row = (bh * cap + s) * head_dim;
#pragma omp simd
        for (int64_t d = 0; d < head_dim; d++) context[d] += p * load(values, row + d, bf16);
    }
    for (int64_t d = 0; d < head_dim; d++) store(out, bh * head_dim + d, context[d], bf16);
}

/*
 * Rows bh in [from, from + count) of B·heads, for one layer.
 *
 * qkv     [B, 1, heads, 3, head_dim] the fused projection of the new position, D
 * keys    [B·heads, head_dim, cap] the key cache, D; position `past` is written
 * values  [B·heads, cap, head_dim] the value cache, D; position `past` is written
 * alibi   [B·heads, past + 1] ALiBi bias, D
 * masked  [B, past + 1] 1 where a key is hidden (padding), 0 elsewhere
 * out     [B, 1, heads·head_dim] the merged heads, D
 * bf16    1 when D is bfloat16, 0 for float32
 * Returns 0, or -1 when the scratch rows could not be allocated (nothing is then written).
 */
BT_CLONES
int32_t bt_decode_attention(const void *qkv, void *keys, void *values, const void *alibi, const uint8_t *masked, void *out,
                            int64_t from, int64_t count, int64_t heads, int64_t head_dim, int64_t past, int64_t cap,
                            float alpha, int32_t bf16) {
    float *scratch = malloc(sizeof(float) * (size_t) (past + 1 + head_dim));
    if (scratch == NULL) return -1;
    for (int64_t bh = from; bh < from + count; bh++) {
        if (bf16) attend(qkv, keys, values, alibi, masked, out, scratch, scratch + past + 1, bh, heads, head_dim, past, cap, alpha, 1);
        else attend(qkv, keys, values, alibi, masked, out, scratch, scratch + past + 1, bh, heads, head_dim, past, cap, alpha, 0);
    }
    free(scratch);
    return 0;
}
