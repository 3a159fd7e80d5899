/*
 * llm_int8_quantize.c's float32, bfloat16 and float16 rows written for AVX-512 by hand. A decode
 * step quantizes its few rows of x for every LLM.int8 linear on each thread, and GCC's clones of the
 * portable loops (256-bit, with scalar steps for the outlier flags and the clamp) took some seven
 * cycles an element there (benchmarks/FINDINGS.md); loading a float16 checkpoint in an int8 mode
 * quantizes every weight row once, through the same loops. Here each pass is sixteen lanes with a
 * masked last step: the outlier columns over all rows, then for each row its absmax over the
 * regular columns and its quantized values. float16 is widened by vcvtph2ps, exact for every
 * finite value, subnormals included (they become normal float32 values).
 *
 * The same bits as the portable loops, which equal the libtorch chain (abs, amax, ge, masked_fill,
 * div, round, clamp): a max is exact in any order, the quotient is IEEE division, the rounding
 * nearest-even as nearbyintf's. Where the portable loops leave a NaN's int8 to the conversion's
 * whim, here a NaN quantizes to 0 (as an outlier column does) and is left out of the row's absmax.
 * Only for CPUs with AVX-512 F/BW/VL (bt_llm_int8_quantize_avx512_supported()).
 */
#include "avx512_twin.h"
#include "llm_int8_quantize.h"
#include <stdint.h>

int32_t bt_llm_int8_quantize_avx512_supported(void) { return bt_avx512_twin_supported(); }

#ifdef BT_HAVE_AVX512_BUILD

/* Sixteen elements of row-major x from element i (lanes in m; the others 0) as float32. */
BT_ZI __m512 load16(const void *x, int64_t i, __mmask16 m, const int type) {
    if (type == BT_QUANTIZE_BF16) return bt_bf16_widen16(_mm256_maskz_loadu_epi16(m, (const uint16_t *) x + i));
    if (type == BT_QUANTIZE_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *) x + i));
    return _mm512_maskz_loadu_ps(m, (const float *) x + i);
}

/* outlier [k] = 1 where some row's |x| ≥ threshold in that column, else 0 (none where threshold ≤ 0); returns how many. */
BT_ZI int32_t outlier_columns(const void *x, int64_t m, int64_t k, float threshold, uint8_t *outlier, const int type) {
    int32_t outliers = 0;
    __m512 limit = _mm512_set1_ps(threshold);
    for (int64_t c = 0; c < k; c += 16) {
        __mmask16 lanes = bt_lanes16(k - c), any = 0;
        if (threshold > 0)
            for (int64_t r = 0; r < m; r++) any |= _mm512_mask_cmp_ps_mask(lanes, _mm512_abs_ps(load16(x, r * k + c, lanes, type)), limit, _CMP_GE_OQ);
        _mm_mask_storeu_epi8(outlier + c, lanes, _mm_maskz_set1_epi8(any, 1));
        outliers += __builtin_popcount(any);
    }
    return outliers;
}

/* The lanes of `lanes` whose column is regular (not an outlier). */
BT_ZI __mmask16 regular16(const uint8_t *outlier, int64_t c, __mmask16 lanes) {
    __m128i flags = _mm_maskz_loadu_epi8(lanes, outlier + c);
    return _mm_mask_testn_epi8_mask(lanes, flags, flags);
}

/* Row r: its scale (absmax of the regular columns / 127, at least 1e-12) and its int8 values, 0 in outlier columns. */
BT_ZI void quantize_row(const void *x, int64_t r, int64_t k, const uint8_t *outlier, int8_t *x8, float *rowScale, const int type) {
    __m512 top = _mm512_setzero_ps();
    for (int64_t c = 0; c < k; c += 16) {
        __mmask16 regular = regular16(outlier, c, bt_lanes16(k - c));
        top = _mm512_max_ps(_mm512_abs_ps(load16(x, r * k + c, regular, type)), top);   /* outlier lanes load 0; a NaN lane keeps top */
    }
    float scale = _mm512_reduce_max_ps(top) / 127.0f;
    if (scale < 1e-12f) scale = 1e-12f;
    rowScale[r] = scale;
    __m512 divisor = _mm512_set1_ps(scale), high = _mm512_set1_ps(127.0f), low = _mm512_set1_ps(-127.0f);
    for (int64_t c = 0; c < k; c += 16) {
        __mmask16 lanes = bt_lanes16(k - c), regular = regular16(outlier, c, lanes);
        __m512 q = _mm512_roundscale_ps(_mm512_div_ps(load16(x, r * k + c, regular, type), divisor), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __mmask16 number = _mm512_cmp_ps_mask(q, q, _CMP_ORD_Q);
        q = _mm512_maskz_mov_ps(regular & number, _mm512_max_ps(_mm512_min_ps(q, high), low));
        _mm_mask_storeu_epi8(x8 + r * k + c, lanes, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q)));
    }
}

BT_ZI int32_t quantize(const void *x, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale, uint8_t *outlier, const int type) {
    int32_t outliers = outlier_columns(x, m, k, threshold, outlier, type);
    for (int64_t r = 0; r < m; r++) quantize_row(x, r, k, outlier, x8, rowScale, type);
    return outliers;
}

/* bt_llm_int8_quantize's, bt_llm_int8_quantize_bf16's or bt_llm_int8_quantize_f16's arguments and result, by `type`. */
BT_Z
int32_t bt_llm_int8_quantize_avx512(const void *x, int32_t type, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale,
                                    uint8_t *outlier) {
    if (type == BT_QUANTIZE_BF16) return quantize(x, m, k, threshold, x8, rowScale, outlier, BT_QUANTIZE_BF16);
    if (type == BT_QUANTIZE_F16) return quantize(x, m, k, threshold, x8, rowScale, outlier, BT_QUANTIZE_F16);
    return quantize(x, m, k, threshold, x8, rowScale, outlier, BT_QUANTIZE_F32);
}
#else
int32_t bt_llm_int8_quantize_avx512(const void *x, int32_t type, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale,
                                    uint8_t *outlier) {
    (void) x; (void) type; (void) m; (void) k; (void) threshold; (void) x8; (void) rowScale; (void) outlier;
    return -1;
}
#endif
