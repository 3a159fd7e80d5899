/*
 * masked_softmax.c's bfloat16 rows written for AVX-512 by hand. The attention kernel calls them
 * for every query row of every (row, head) pair, twice a training step (the backward forms the
 * probabilities again), over the visible keys only — rows of a few hundred, and under a causal
 * mask of every length: GCC's loops spent as long in their 8-, 4- and 1-wide tails as in their
 * sixteen-wide bodies. Here every pass is sixteen lanes with a masked last step, and the select of
 * the masked scores is done again in the exp pass rather than stored and read back.
 *
 * Same contract as the portable rows: float32's lowest where masked, the max over the row,
 * bt_exp's range reduction and polynomial (exp16.h), 0 below −87.3, the float32 sum, the
 * probabilities scaled by its inverse and rounded to nearest even. The sum adds sixteen lane sums
 * and FMA rounds the polynomial's steps once: the results differ from the portable rows' in the
 * last float bits. Only for CPUs with AVX-512 F/BW/VL and FMA
 * (bt_masked_softmax_avx512_supported()); masked_softmax.c takes the portable rows otherwise.
 */
#include "avx512_twin.h"
#include <stdint.h>

int32_t bt_masked_softmax_avx512_supported(void) { return bt_avx512_twin_supported(); }

#ifdef BT_HAVE_AVX512_BUILD

#define FLOAT32_LOWEST (-3.4028234663852886e38f)

/* Sixteen bfloat16 from `h` (lanes in m; the others 0) as float32. */
BT_ZI __m512 widen16(const uint16_t *h, __mmask16 m) {
    return bt_bf16_widen16(_mm256_maskz_loadu_epi16(m, h));
}

/* The lanes of m whose key is masked. */
BT_ZI __mmask16 hidden16(const uint8_t *masked, __mmask16 m) {
    __m128i b = _mm_maskz_loadu_epi8(m, masked);
    return _mm_mask_test_epi8_mask(m, b, b);
}

/* Sixteen scores as HF's softmax sees them: float32's lowest where masked (lanes outside m are 0: never to be used). */
BT_ZI __m512 scores16(const uint16_t *score, const uint8_t *masked, __mmask16 m) {
    return _mm512_mask_mov_ps(widen16(score, m), hidden16(masked, m), _mm512_set1_ps(FLOAT32_LOWEST));
}

BT_Z
void bt_masked_softmax_row_avx512(const uint16_t *score, const uint8_t *masked, float *p, uint16_t *out, int64_t s) {
    __m512 top = _mm512_set1_ps(FLOAT32_LOWEST);
    for (int64_t j = 0; j < s; j += 16) {
        __mmask16 m = bt_lanes16(s - j);
        top = _mm512_mask_max_ps(top, m, scores16(score + j, masked + j, m), top);    /* a NaN score never becomes the max */
    }
    __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(top)), sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < s; j += 16) {
        __mmask16 m = bt_lanes16(s - j);
        __m512 d = _mm512_sub_ps(scores16(score + j, masked + j, m), max);
        __mmask16 kept = _mm512_mask_cmp_ps_mask(m, d, _mm512_set1_ps(-87.3f), _CMP_NLT_UQ);
        __m512 e = _mm512_maskz_mov_ps(kept, bt_exp16(d));
        _mm512_mask_storeu_ps(p + j, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int64_t j = 0; j < s; j += 16) {
        __mmask16 m = bt_lanes16(s - j);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), inv);
        _mm512_mask_storeu_ps(p + j, m, v);
        _mm256_mask_storeu_epi16(out + j, m, _mm512_cvtepi32_epi16(bt_bf16_bits16(v)));
    }
}

BT_Z
void bt_masked_softmax_row_backward_avx512(const uint16_t *g, const float *p, const uint8_t *masked, uint16_t *out, int64_t s) {
    __m512 dot = _mm512_setzero_ps();
    for (int64_t j = 0; j < s; j += 16) {
        __mmask16 m = bt_lanes16(s - j);
        dot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + j), widen16(g + j, m), dot);
    }
    __m512 total = _mm512_set1_ps(_mm512_reduce_add_ps(dot));
    for (int64_t j = 0; j < s; j += 16) {
        __mmask16 m = bt_lanes16(s - j);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), _mm512_sub_ps(widen16(g + j, m), total));
        v = _mm512_mask_mov_ps(v, hidden16(masked + j, m), _mm512_setzero_ps());
        _mm256_mask_storeu_epi16(out + j, m, _mm512_cvtepi32_epi16(bt_bf16_bits16(v)));
    }
}
#else
void bt_masked_softmax_row_avx512(const uint16_t *score, const uint8_t *masked, float *p, uint16_t *out, int64_t s) {
    (void) score; (void) masked; (void) p; (void) out; (void) s;
}
void bt_masked_softmax_row_backward_avx512(const uint16_t *g, const float *p, const uint8_t *masked, uint16_t *out, int64_t s) {
    (void) g; (void) p; (void) masked; (void) out; (void) s;
}
#endif
