/*
 * y = x Wᵀ + b in bfloat16 for a few rows of x (a decode step), with W streamed from memory once:
 * sixteen rows of W at a time against up to eight rows of x packed side by side (packed_rows.h),
 * or, for one row, each row of W read front to back, by AVX512_BF16's vdpbf16ps (32 bf16 products summed in float32
 * per instruction), so a decode step runs at the speed of reading W. libtorch's bfloat16 linear reaches a fraction of that for a few rows (figures in
 * benchmarks/FINDINGS.md).
 *
 * Only for CPUs with AVX512_BF16: bt_bf16_rows_supported() says whether this one has it, and the
 * caller keeps libtorch's linear otherwise. The function carries its own target attribute, so the
 * library still builds and loads on any x86-64 CPU.
 */
#include "isa_cap.h"
#include <stdint.h>
#include <stdlib.h>
#include "bf16.h"
#include "packed_rows.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include <string.h>
#include "avx512_lanes.h"
#define BT_HAVE_BF16_BUILD 1
#endif

int32_t bt_bf16_rows_supported(void) {
#ifdef BT_HAVE_BF16_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef BT_HAVE_BF16_BUILD
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define BT_BF16_INLINE BT_BF16 static inline __attribute__((always_inline))

/* Σ over a row of k bf16 products, k a multiple of 32 handled by the vector loop, the rest by scalars. */
BT_BF16 static inline __m512 dot_chunk(__m512 acc, const uint16_t *w, const uint16_t *x) {
    return _mm512_dpbf16_ps(acc, (__m512bh) _mm512_loadu_si512(x), (__m512bh) _mm512_loadu_si512(w));
}

/*
 * Σ over the vector part of one weight row times x, the row read front to back in 256-byte steps
 * into four accumulators — one sequential stream, left to the hardware prefetcher: lines requested
 * by hand ahead of it (prefetch.h's BT_ROW_AHEAD) made this loop read slower (benchmarks/FINDINGS.md).
 */
BT_BF16 static float dot_row(const uint16_t *w, int64_t kv, const uint16_t *x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 128 <= kv; i += 128) {
        a0 = dot_chunk(a0, w + i, x + i);
        a1 = dot_chunk(a1, w + i + 32, x + i + 32);
        a2 = dot_chunk(a2, w + i + 64, x + i + 64);
        a3 = dot_chunk(a3, w + i + 96, x + i + 96);
    }
    for (; i < kv; i += 32) a0 = dot_chunk(a0, w + i, x + i);
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* Weight rows per tile of the packed kernel: sixteen accumulators, each weight row's line loaded once for all rows of x. */
#define TILE_ROWS 16

/*
 * nw (≤ TILE_ROWS) weight rows against up to eight rows of x packed (packed_rows.h: four columns of
 * each row per group), plus the bias, rounded to bfloat16. Per 32 columns each weight row's line
 * is spread four columns at a time over the vector and met with one group: one vdpbf16ps per
 * weight row and group, lane 2j + h summing row j's columns 2h, 2h + 1 of each group. Rows of the
 * tile two tiles on are requested at the same column. Loads are masked past k (zero, as the
 * packed x's columns there are zero).
 */
BT_BF16_INLINE void packed_tile(const uint16_t *w, const int64_t *xp, const uint16_t *bias, uint16_t *y, int64_t rows,
                                int64_t k, int64_t ldy, const int nw) {
    __m512 acc[TILE_ROWS];
    for (int q = 0; q < nw; q++) acc[q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 32) {
        __mmask32 m = k - i >= 32 ? ~(__mmask32) 0 : ((__mmask32) 1 << (k - i)) - 1;
        for (int q = 0; q < nw; q++) _mm_prefetch((const char *) (w + (q + 2 * TILE_ROWS) * k + i), _MM_HINT_T0);
        for (int q = 0; q < nw; q++) {
            __m512i wq = _mm512_maskz_loadu_epi16(m, w + q * k + i);
            for (int t = 0; t < 8; t++)                          /* the line's eight qwords against groups i/4 .. i/4 + 7 */
                acc[q] = _mm512_dpbf16_ps(acc[q], (__m512bh) _mm512_permutexvar_epi64(_mm512_set1_epi64(t), wq),
                                          (__m512bh) _mm512_load_si512(xp + 8 * (i / 4 + t)));
        }
    }
    uint16_t out[16];
    for (int q = 0; q < nw; q++) {
        __m512 sum = _mm512_add_ps(acc[q], _mm512_permute_ps(acc[q], 0xB1));
        if (bias) sum = _mm512_add_ps(sum, _mm512_set1_ps(bf16_to_float(bias[q])));
        _mm256_storeu_si256((__m256i *) out, _mm512_cvtepi32_epi16(bt_bf16_bits16(sum)));
        for (int64_t j = 0; j < rows; j++) y[j * ldy + q] = out[2 * j];
    }
}

/* Weight row wq times row xr, plus bias element b (when given), rounded to bfloat16: one output at a time. */
BT_BF16 static uint16_t one_output(const uint16_t *wq, int64_t k, int64_t kv, const uint16_t *xr, const uint16_t *bias, int64_t b) {
    float s = dot_row(wq, kv, xr);
    for (int64_t i = kv; i < k; i++) s += bf16_to_float(wq[i]) * bf16_to_float(xr[i]);
    if (bias) s += bf16_to_float(bias[b]);
    return float_to_bf16(s);
}

/* Weight row j's output for every row of x, one at a time: one row of x, or no packed form to be had. */
BT_BF16 static void by_rows(const uint16_t *w, const uint16_t *x, const uint16_t *bias, uint16_t *y, int64_t rows, int64_t n,
                            int64_t k, int64_t ldy) {
    int64_t kv = k - k % 32;
    for (int64_t j = 0; j < n; j++)
        for (int64_t r = 0; r < rows; r++) y[r * ldy + j] = one_output(w + j * k, k, kv, x + r * k, bias, j);
}

/*
 * w [n, k] bf16 row-major, x [rows, k] bf16 row-major, bias [n] bf16 or NULL,
 * y [rows, ldy] bf16: columns [0, n) are written. One row of x reads each weight row front to
 * back; 2–8 rows are packed and met by tiles of sixteen weight rows.
 */
BT_BF16
void bt_bf16_rows_linear(const uint16_t *w, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                         int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t *xp = rows > 1 ? bt_packed_copy(x, rows, 2 * k) : NULL;
    if (xp == NULL) {
        by_rows(w, x, bias, y, rows, n, k, ldy);
        return;
    }
    int64_t j = 0;
    for (; j + TILE_ROWS <= n; j += TILE_ROWS) packed_tile(w + j * k, xp, bias ? bias + j : NULL, y + j, rows, k, ldy, TILE_ROWS);
    for (; j < n; j++) packed_tile(w + j * k, xp, bias ? bias + j : NULL, y + j, rows, k, ldy, 1);
    free(xp);
}
#else
void bt_bf16_rows_linear(const uint16_t *w, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                         int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) w; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
