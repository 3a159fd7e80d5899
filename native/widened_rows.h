/*
 * Rows of bfloat16 widened to float32 for the widened products (bf16_gemm.c, bf16_panels.c,
 * int8_bf16_panels.c: where bf16_gemm.c's bt_bf16_gemm_products says vdpbf16ps is slow). A tile
 * broadcasts each row's elements from the buffer, so its loop holds nothing but loads and FMAs.
 * Include after <immintrin.h>, in code built for AVX-512 F/BW/VL.
 */
#ifndef BT_WIDENED_ROWS_H
#define BT_WIDENED_ROWS_H
#include <stdint.h>

#define BT_WIDE_PAIRS 256   /* pairs of k widened at a time: eight rows' 16 KiB on the stack */

#include "bf16_products.h"

/*
 * nr rows of x's elements [0, count) (row stride ldx) widened to float32 rows of xw (row stride
 * ldxw). Not inlined: its masked loads inside a tile's loop made GCC keep the accumulators in memory.
 */
__attribute__((target("avx512f,avx512bw,avx512vl"), noinline, unused))
static void bt_widen_rows(const uint16_t *x, int64_t ldx, int64_t nr, int64_t count, float *xw, int64_t ldxw) {
    for (int64_t r = 0; r < nr; r++)
        for (int64_t e = 0; e < count; e += 16) {
            __mmask16 m = count - e >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (count - e)) - 1);
            __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + r * ldx + e));
            _mm512_mask_storeu_ps(xw + r * ldxw + e, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
        }
}

/*
 * One pair of k for nr rows' 32 outputs: each row's odd element (from xw, row stride ldxw, at 2q + 1)
 * times the odd products' vectors, then its even element times the even ones — vdpbf16ps's order.
 */
__attribute__((target("avx512f"), always_inline, unused))
static inline void bt_widened_pair(__m512 acc[][2], const float *xw, int64_t ldxw, int64_t q, __m512 odd0, __m512 odd1, __m512 even0,
                                   __m512 even1, const int nr) {
    for (int r = 0; r < nr; r++) {
        __m512 xo = _mm512_set1_ps(xw[r * ldxw + 2 * q + 1]);
        acc[r][0] = _mm512_fmadd_ps(xo, odd0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(xo, odd1, acc[r][1]);
        __m512 xe = _mm512_set1_ps(xw[r * ldxw + 2 * q]);
        acc[r][0] = _mm512_fmadd_ps(xe, even0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(xe, even1, acc[r][1]);
    }
}
#endif
