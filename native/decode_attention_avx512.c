/*
 * decode_attention.c's pass written for AVX-512 by hand, for the many positions × heads of a
 * batched decode step. GCC's `avx512f` clone of the portable loop uses 256-bit vectors without FMA
 * and adds each key row into the whole score row in memory; here a block of 64 positions' scores
 * stays in four registers while every key row of the block is read, each (row, head) requests the
 * next pair's keys and values as it reads its own (key rows lie a cache capacity apart, a gap the
 * hardware prefetcher does not cross; KvCache makes that capacity whole lines, so no vector load
 * straddles two), and the softmax runs sixteen lanes at a time.
 *
 * Same contract and the same rounding points as bt_decode_attention (decode_attention.c): a
 * score is rounded to D after the ALiBi bias is added, masked keys take float32's lowest value,
 * probabilities are rounded to D, a probability of zero adds nothing, each context element is
 * summed in float32 and rounded once. Only the order of the float32 sums differs.
 *
 * Only for CPUs with AVX-512 F/BW/VL and FMA: bt_decode_attention_avx512_supported() says whether
 * this one has them, and the caller binds the portable kernel otherwise.
 */
#include "avx512_twin.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "bf16.h"

int32_t bt_decode_attention_avx512_supported(void) { return bt_avx512_twin_supported(); }

#ifdef BT_HAVE_AVX512_BUILD

/* torch.finfo(torch.float32).min: HF's value for masked scores, not -inf. */
#define BT_MASKED (-3.40282347e38f)

/* Positions whose scores one pass over the key rows keeps in registers: four vectors. */
#define BLOCK 64

/* 16 elements of D from element i of p (masked-off lanes read nothing and are 0), as float32. */
BT_ZI __m512 load16(const void *p, int64_t i, __mmask16 m, const int bf16) {
    if (!bf16) return _mm512_maskz_loadu_ps(m, (const float *) p + i);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *) p + i);
    return bt_bf16_widen16(h);
}

/* v rounded to D and back: where HF's ops hand a D tensor to the next. */
BT_ZI __m512 in_dtype(__m512 v, const int bf16) {
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(bt_bf16_bits16(v), 16)) : v;
}

BT_ZI void store16(void *p, int64_t i, __mmask16 m, __m512 v, const int bf16) {
    if (bf16) _mm256_mask_storeu_epi16((uint16_t *) p + i, m, _mm512_cvtepi32_epi16(bt_bf16_bits16(v)));
    else _mm512_mask_storeu_ps((float *) p + i, m, v);
}

/* bt_exp16 with lanes below −87.3 giving 0, as the portable kernel's caller does. */
BT_ZI __m512 exp16(__m512 x) {
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
    return _mm512_maskz_mov_ps((__mmask16) ~tiny, bt_exp16(x));
}

/*
 * Requests the bytes [at, at + bytes) into L2: the next pair's share of what is read now. A pair's
 * keys and values are tens of KiB at a few hundred positions, more than L1 holds beside the pair
 * being read; requested into L1 they pushed out lines not yet used.
 */
BT_ZI void request(const void *base, int64_t at, int64_t bytes) {
    for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch((const char *) base + at + b, _MM_HINT_T1);
}

/*
 * scores[s] = q · key s for s < n, a block of BLOCK positions at a time, every key row of the
 * block added into four accumulators; the next pair's rows of the block are requested meanwhile.
 * The last, narrower block goes a vector at a time: loads of masked-off lanes still fetch their
 * lines here (Zen 4), past what the block needs.
 */
BT_ZI void dot_keys(const float *q, const void *keys, float *scores, int64_t bh, int64_t head_dim, int64_t n,
                    int64_t cap, const int bf16) {
    int64_t element = bf16 ? 2 : 4;
    int64_t s0 = 0;
    for (; s0 + BLOCK <= n; s0 += BLOCK) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t d = 0; d < head_dim; d++) {
            int64_t row = (bh * head_dim + d) * cap + s0;
            request(keys, (row + head_dim * cap) * element, BLOCK * element);
            __m512 qd = _mm512_set1_ps(q[d]);
            a0 = _mm512_fmadd_ps(qd, load16(keys, row, 0xffff, bf16), a0);
            a1 = _mm512_fmadd_ps(qd, load16(keys, row + 16, 0xffff, bf16), a1);
            a2 = _mm512_fmadd_ps(qd, load16(keys, row + 32, 0xffff, bf16), a2);
            a3 = _mm512_fmadd_ps(qd, load16(keys, row + 48, 0xffff, bf16), a3);
        }
        _mm512_storeu_ps(scores + s0, a0);
        _mm512_storeu_ps(scores + s0 + 16, a1);
        _mm512_storeu_ps(scores + s0 + 32, a2);
        _mm512_storeu_ps(scores + s0 + 48, a3);
    }
    for (; s0 < n; s0 += 16) {
        __mmask16 m = bt_lanes16(n - s0);
        __m512 a = _mm512_setzero_ps();
        for (int64_t d = 0; d < head_dim; d++) {
            int64_t row = (bh * head_dim + d) * cap + s0;
            request(keys, (row + head_dim * cap) * element, (n - s0 < 16 ? n - s0 : 16) * element);
            a = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), load16(keys, row, m, bf16), a);
        }
        _mm512_mask_storeu_ps(scores + s0, m, a);
    }
}

/* scores → probabilities in D's rounding, in place, after the ALiBi bias and the mask (HF's eager softmax). */
BT_ZI void softmax(float *scores, const void *alibi, const uint8_t *masked, int64_t bh, int64_t b, int64_t n,
                   float alpha, const int bf16) {
    __m512 max = _mm512_set1_ps(BT_MASKED);
    for (int64_t s = 0; s < n; s += 16) {
        __mmask16 m = bt_lanes16(n - s);
        __m512 x = in_dtype(_mm512_fmadd_ps(_mm512_set1_ps(alpha), _mm512_maskz_loadu_ps(m, scores + s), load16(alibi, bh * n + s, m, bf16)), bf16);
        __m128i hidden = _mm_maskz_loadu_epi8(m, masked + b * n + s);
        x = _mm512_mask_mov_ps(x, _mm_test_epi8_mask(hidden, hidden), _mm512_set1_ps(BT_MASKED));
        _mm512_mask_storeu_ps(scores + s, m, x);
        max = _mm512_mask_max_ps(max, m, max, x);
    }
    __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(max));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t s = 0; s < n; s += 16) {
        __mmask16 m = bt_lanes16(n - s);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + s), top));
        _mm512_mask_storeu_ps(scores + s, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    __m512 total = _mm512_set1_ps(_mm512_reduce_add_ps(sum));
    for (int64_t s = 0; s < n; s += 16) {
        __mmask16 m = bt_lanes16(n - s);
        _mm512_mask_storeu_ps(scores + s, m, in_dtype(_mm512_div_ps(_mm512_maskz_loadu_ps(m, scores + s), total), bf16));
    }
}

/*
 * out[bh] = Σ_s p_s · value s, 64 elements of head_dim at a time in four accumulators (the rest a
 * vector at a time, as in dot_keys); positions with p = 0 are skipped; the next pair's value rows
 * are requested meanwhile.
 */
BT_ZI void weigh_values(const float *probs, const void *values, void *out, int64_t bh, int64_t head_dim, int64_t n,
                        int64_t cap, const int bf16) {
    int64_t element = bf16 ? 2 : 4;
    int64_t d0 = 0;
    for (; d0 + 64 <= head_dim; d0 += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t s = 0; s < n; s++) {
            int64_t row = (bh * cap + s) * head_dim + d0;
            request(values, (row + cap * head_dim) * element, 64 * element);
            if (probs[s] == 0.0f) continue;
            __m512 p = _mm512_set1_ps(probs[s]);
            a0 = _mm512_fmadd_ps(p, load16(values, row, 0xffff, bf16), a0);
            a1 = _mm512_fmadd_ps(p, load16(values, row + 16, 0xffff, bf16), a1);
            a2 = _mm512_fmadd_ps(p, load16(values, row + 32, 0xffff, bf16), a2);
            a3 = _mm512_fmadd_ps(p, load16(values, row + 48, 0xffff, bf16), a3);
        }
        int64_t at = bh * head_dim + d0;
        store16(out, at, 0xffff, a0, bf16);
        store16(out, at + 16, 0xffff, a1, bf16);
        store16(out, at + 32, 0xffff, a2, bf16);
        store16(out, at + 48, 0xffff, a3, bf16);
    }
    for (; d0 < head_dim; d0 += 16) {
        __mmask16 m = bt_lanes16(head_dim - d0);
        __m512 a = _mm512_setzero_ps();
        for (int64_t s = 0; s < n; s++) {
            int64_t row = (bh * cap + s) * head_dim + d0;
            request(values, (row + cap * head_dim) * element, (head_dim - d0 < 16 ? head_dim - d0 : 16) * element);
            if (probs[s] != 0.0f) a = _mm512_fmadd_ps(_mm512_set1_ps(probs[s]), load16(values, row, m, bf16), a);
        }
        store16(out, bh * head_dim + d0, m, a, bf16);
    }
}

/* One (row, head) pair bh: the new key and value into the cache at `past`, then attention over past + 1 positions. */
BT_ZI void attend(const void *qkv, void *keys, void *values, const void *alibi, const uint8_t *masked, void *out,
                  float *scores, float *q, int64_t bh, int64_t heads, int64_t head_dim, int64_t past, int64_t cap,
                  float alpha, const int bf16) {
    int64_t n = past + 1;
    int64_t q_at = bh * 3 * head_dim;                     /* [B, 1, heads, 3, head_dim]: q, k, v per head */
    size_t element = bf16 ? 2 : 4;
    for (int64_t d = 0; d < head_dim; d++) {
        q[d] = bf16 ? bf16_to_float(((const uint16_t *) qkv)[q_at + d]) : ((const float *) qkv)[q_at + d];
        memcpy((char *) keys + ((bh * head_dim + d) * cap + past) * element, (const char *) qkv + (q_at + head_dim + d) * element, element);
    }
    memcpy((char *) values + (bh * cap + past) * head_dim * element, (const char *) qkv + (q_at + 2 * head_dim) * element, head_dim * element);
    dot_keys(q, keys, scores, bh, head_dim, n, cap, bf16);
    softmax(scores, alibi, masked, bh, bh / heads, n, alpha, bf16);
    weigh_values(scores, values, out, bh, head_dim, n, cap, bf16);
}

/* bt_decode_attention's arguments and result (decode_attention.c). */
BT_Z
int32_t bt_decode_attention_avx512(const void *qkv, void *keys, void *values, const void *alibi, const uint8_t *masked, void *out,
                                   int64_t from, int64_t count, int64_t heads, int64_t head_dim, int64_t past, int64_t cap,
                                   float alpha, int32_t bf16) {
    float *scratch = malloc(sizeof(float) * (size_t) (past + 1 + head_dim));
    if (scratch == NULL) return -1;
    float *q = scratch + past + 1;
    for (int64_t bh = from; bh < from + count; bh++) {
        if (bf16) attend(qkv, keys, values, alibi, masked, out, scratch, q, bh, heads, head_dim, past, cap, alpha, 1);
        else attend(qkv, keys, values, alibi, masked, out, scratch, q, bh, heads, head_dim, past, cap, alpha, 0);
    }
    free(scratch);
    return 0;
}
#else
int32_t bt_decode_attention_avx512(const void *qkv, void *keys, void *values, const void *alibi, const uint8_t *masked, void *out,
                                   int64_t from, int64_t count, int64_t heads, int64_t head_dim, int64_t past, int64_t cap,
                                   float alpha, int32_t bf16) {
    (void) qkv; (void) keys; (void) values; (void) alibi; (void) masked; (void) out; (void) from; (void) count;
    (void) heads; (void) head_dim; (void) past; (void) cap; (void) alpha; (void) bf16;
    return -1;
}
#endif
