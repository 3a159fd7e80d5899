/*
 * online_softmax.c's block written for AVX-512 by hand: GCC's `avx512f` clone of the portable
 * loops uses 256-bit vectors and no FMA, and the exp's degree-6 polynomial is most of the work
 * (the head runs it over every logit of every labelled row). Here the max, the exp and the sum run
 * sixteen lanes at a time with fused multiply-adds.
 *
 * Same contract as bt_online_softmax_block(_bf16): the same recurrence, bt_exp's range reduction
 * and polynomial (FMA rounds its steps once instead of twice: the results differ from the portable
 * kernel's in the last bits), float32 sums per 4096 elements carried in double, bfloat16 blocks
 * widened, exp'd in float32, summed before rounding and stored rounded to nearest even.
 *
 * Only for CPUs with AVX-512 F/BW/VL and FMA: bt_online_softmax_avx512_supported() says whether
 * this one has them, and the caller binds the portable kernel otherwise.
 */
#include "avx512_twin.h"
#include <math.h>
#include <stdint.h>
#include "bf16.h"

int32_t bt_online_softmax_avx512_supported(void) { return bt_avx512_twin_supported(); }

#ifdef BT_HAVE_AVX512_BUILD

/* Elements summed in float before the running total moves to double (as the portable kernel). */
#define SUM_BLOCK 4096

/* Sixteen elements of a row from c (lanes outside m: zero), as float32. */
BT_ZI __m512 load16(const void *row, int64_t c, __mmask16 m, const int bf16) {
    if (!bf16) return _mm512_maskz_loadu_ps(m, (const float *) row + c);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *) row + c);
    return bt_bf16_widen16(h);
}

BT_ZI void store16(void *row, int64_t c, __m512 v, __mmask16 m, const int bf16) {
    if (!bf16) _mm512_mask_storeu_ps((float *) row + c, m, v);
    else _mm256_mask_storeu_epi16((uint16_t *) row + c, m, _mm512_cvtepi32_epi16(bt_bf16_bits16(v)));
}

BT_ZI __mmask16 lanes(int64_t c, int64_t n) {
    return n - c >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (n - c)) - 1);
}

BT_ZI float row_max(const void *row, int64_t n, const int bf16) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    int64_t c = 0;
    for (; c + 32 <= n; c += 32) {
        m0 = _mm512_max_ps(m0, load16(row, c, 0xffff, bf16));
        m1 = _mm512_max_ps(m1, load16(row, c + 16, 0xffff, bf16));
    }
    for (; c < n; c += 16) {
        __mmask16 k = lanes(c, n);
        m0 = _mm512_mask_max_ps(m0, k, m0, load16(row, c, k, bf16));
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

/* Overwrites row with exp(row − max) and returns the sum (float per SUM_BLOCK elements, then double). */
BT_ZI double exp_in_place(void *row, int64_t n, float max, const int bf16) {
    __m512 shift = _mm512_set1_ps(max);
    double total = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        int64_t end = start + SUM_BLOCK < n ? start + SUM_BLOCK : n;
        __m512 s = _mm512_setzero_ps();
        int64_t c = start;
        for (; c + 16 <= end; c += 16) {
            __m512 e = bt_exp16(_mm512_sub_ps(load16(row, c, 0xffff, bf16), shift));
            store16(row, c, e, 0xffff, bf16);
            s = _mm512_add_ps(s, e);
        }
        if (c < end) {
            __mmask16 k = lanes(c, end);
            __m512 e = bt_exp16(_mm512_sub_ps(load16(row, c, k, bf16), shift));
            store16(row, c, e, k, bf16);
            s = _mm512_add_ps(s, _mm512_maskz_mov_ps(k, e));
        }
        total += _mm512_reduce_add_ps(s);
    }
    return total;
}

#define BT_INLINE BT_ZI
#include "online_block.h"

BT_Z void bt_online_softmax_block_avx512(float *block, int64_t m, int64_t n, float *runMax, double *runSum, float *rescale) {
    online_block(block, 0, m, n, runMax, runSum, rescale);
}

BT_Z void bt_online_softmax_block_bf16_avx512(uint16_t *block, int64_t m, int64_t n, float *runMax, double *runSum, float *rescale) {
    online_block(block, 1, m, n, runMax, runSum, rescale);
}
#else
void bt_online_softmax_block_avx512(float *block, int64_t m, int64_t n, float *runMax, double *runSum, float *rescale) {
    (void) block; (void) m; (void) n; (void) runMax; (void) runSum; (void) rescale;
}

void bt_online_softmax_block_bf16_avx512(uint16_t *block, int64_t m, int64_t n, float *runMax, double *runSum, float *rescale) {
    (void) block; (void) m; (void) n; (void) runMax; (void) runSum; (void) rescale;
}
#endif
