/*
 * A frozen int8 weight with row scales, for the weight-only int8 mode with bfloat16 activations,
 * laid out once at load for inference as bf16_panels.c lays out a bfloat16 weight: panels of 32
 * output rows, each panel the pairs of k of its rows side by side — panel p, pair q holds
 * W[32p + j][2q + h] at byte (p · k/2 + q) · 64 + 2j + h. Each 64-byte line is widened once to two
 * vectors of sixteen rows' bfloat16 pairs (exact: |w| ≤ 128 needs 8 bits) and met by every row of x
 * through one broadcast pair, so a decode batch of eight widens each weight byte once and sums no
 * vector across its lanes; the row-major kernel (int8_bf16_rows_linear.c) widens two weight rows at a
 * time and reduces sixteen accumulators per pair of rows (benchmarks/FINDINGS.md).
 *
 * Sums are float32 in one order whatever the rows; each output is (sum · scale) rounded to bfloat16,
 * then the bias added and rounded again — the numbers of the row-major kernel up to the order of the
 * float32 additions. n must be a multiple of 32 and k even (the callers pack only such weights).
 * Only for CPUs with AVX512_BF16 (bt_bf16_rows_supported()).
 */
#include <stdint.h>
#include <stdlib.h>
#include "bf16.h"
#include "panels.h"
#include "int8_digits_panels.h"

#define PANEL BT_PANEL    /* output rows of one panel */
#define ROWS 8            /* rows of x per pass over a panel */
#define NEAR_BYTES 1024   /* and sixteen lines ahead into L1: the line split waited on its load at one row (FINDINGS) */
#define AHEAD_BYTES 16384 /* the panels requested ahead into L2, as bf16_panels.c does */

/* W [n, k] int8 (n a multiple of 32, k even) into `panels` (n · k bytes). */
void bt_int8_bf16_panels_pack(const int8_t *w, int64_t n, int64_t k, int8_t *panels) {
    bt_panels_pack(w, n, k / 2, 2, panels);
}

/* Rows `ids` [count] (each below the packed n) of the packed values: out [count, k] int8, the row-major rows. */
void bt_int8_bf16_panels_values(const int8_t *panels, int64_t k, const int64_t *ids, int64_t count, int8_t *out) {
    bt_panels_rows(panels, k / 2, 2, ids, count, out);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include <string.h>
#include "avx512_lanes.h"
#include "widened_rows.h"
#include "int8_pair_lines.h"
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define BT_BF16_INLINE BT_BF16 static inline __attribute__((always_inline))
#define BT_WIDE __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512bf16")))
#define BT_WIDE_INLINE BT_WIDE static inline __attribute__((always_inline))

/* 32 int8 as 32 bfloat16 numbers, in order. */
BT_BF16_INLINE __m512bh widen(const int8_t *w) {
    __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) w)));
    __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) (w + 16))));
    return _mm512_cvtne2ps_pbh(hi, lo);
}

/* Sixteen sums times their rows' scales, rounded to bfloat16; plus the bias (or none), rounded again; stored. */
BT_BF16_INLINE void store16(__m512 sums, const float *scales, const uint16_t *bias, uint16_t *y) {
    __m512i rounded = bt_bf16_bits16(_mm512_mul_ps(sums, _mm512_loadu_ps(scales)));     /* bfloat16 bits in each lane's low half */
    if (bias) {
        __m512 value = _mm512_castsi512_ps(_mm512_slli_epi32(rounded, 16));
        __m512 b = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *) bias)), 16));
        rounded = bt_bf16_bits16(_mm512_add_ps(value, b));
    }
    _mm256_storeu_si256((__m256i *) y, _mm512_cvtepi32_epi16(rounded));
}

/* nr (1..ROWS) rows of x (row stride k) times one panel: y's 32 columns of those rows (row stride ldy). */
BT_BF16_INLINE void tile(const int8_t *panel, int64_t pairs, const uint16_t *x, int64_t k, const float *scales, const uint16_t *bias,
                         uint16_t *y, int64_t ldy, const int nr) {
    __m512 acc[ROWS][2];
    for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t q = 0; q < pairs; q++) {
        _mm_prefetch((const char *) (panel + q * 2 * PANEL) + AHEAD_BYTES, _MM_HINT_T1);
        __m512bh w0 = widen(panel + q * 2 * PANEL), w1 = widen(panel + q * 2 * PANEL + PANEL);
        for (int r = 0; r < nr; r++) {
            uint32_t pair;
            memcpy(&pair, x + r * k + 2 * q, sizeof pair);
            __m512bh xr = (__m512bh) _mm512_set1_epi32((int32_t) pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xr, w0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xr, w1);
        }
    }
    for (int r = 0; r < nr; r++) {
        store16(acc[r][0], scales, bias, y + r * ldy);
        store16(acc[r][1], scales + 16, bias ? bias + 16 : NULL, y + r * ldy + 16);
    }
}

BT_BF16 static void tile_rows(const int8_t *panel, int64_t pairs, const uint16_t *x, int64_t k, const float *scales, const uint16_t *bias,
                              uint16_t *y, int64_t ldy, int64_t nr) {
    switch (nr) {
        case 8: tile(panel, pairs, x, k, scales, bias, y, ldy, 8); break;
        case 7: tile(panel, pairs, x, k, scales, bias, y, ldy, 7); break;
        case 6: tile(panel, pairs, x, k, scales, bias, y, ldy, 6); break;
        case 5: tile(panel, pairs, x, k, scales, bias, y, ldy, 5); break;
        case 4: tile(panel, pairs, x, k, scales, bias, y, ldy, 4); break;
        case 3: tile(panel, pairs, x, k, scales, bias, y, ldy, 3); break;
        case 2: tile(panel, pairs, x, k, scales, bias, y, ldy, 2); break;
        default: tile(panel, pairs, x, k, scales, bias, y, ldy, 1); break;
    }
}

/*
 * Where vdpbf16ps is slow (bf16_gemm.c's bt_bf16_gemm_products) and the CPU has AVX512_VBMI, the same
 * tile by float32 FMAs: each 64-byte line split into its 32 rows' even and odd elements as float32
 * (int8_pair_lines.h) and met by every row's odd, then even, element broadcast from x widened
 * (widened_rows.h) — the sums in vdpbf16ps's order, and every row count takes this path, so a row's
 * bits do not depend on its batch. The lines come split and widened already from `wide`
 * (bt_int8_pair_panel) where it is not NULL: the same float32 values and sums.
 */
BT_WIDE_INLINE void tile_widened(const int8_t *panel, const float *wide, int64_t pairs, const uint16_t *x, int64_t k, const float *scales,
                                 const uint16_t *bias, uint16_t *y, int64_t ldy, const int nr) {
    float xw[ROWS * 2 * BT_WIDE_PAIRS] __attribute__((aligned(64)));
    int8_t halves[64] __attribute__((aligned(64)));
    __m512 acc[ROWS][2];
    for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t q0 = 0; q0 < pairs; q0 += BT_WIDE_PAIRS) {
        int64_t span = pairs - q0 < BT_WIDE_PAIRS ? pairs - q0 : BT_WIDE_PAIRS;
        bt_widen_rows(x + 2 * q0, k, nr, 2 * span, xw, 2 * BT_WIDE_PAIRS);
        for (int64_t q = 0; q < span; q++) {
            __m512 even0, even1, odd0, odd1;
            if (wide) {
                bt_int8_pair_wide(wide, q0 + q, &even0, &even1, &odd0, &odd1);
            } else {
                const int8_t *line = panel + (q0 + q) * 2 * PANEL;
                _mm_prefetch((const char *) line + AHEAD_BYTES, _MM_HINT_T1);
                _mm_prefetch((const char *) line + NEAR_BYTES, _MM_HINT_T0);
                bt_int8_pair_line(line, halves, &even0, &even1, &odd0, &odd1);
            }
            bt_widened_pair(acc, xw, 2 * BT_WIDE_PAIRS, q, odd0, odd1, even0, even1, nr);
        }
    }
    for (int r = 0; r < nr; r++) {
        store16(acc[r][0], scales, bias, y + r * ldy);
        store16(acc[r][1], scales + 16, bias ? bias + 16 : NULL, y + r * ldy + 16);
    }
}

/* The widened tile for nr rows, its loop specialised for lines split here or read widened (GCC does not unswitch it itself). */
BT_WIDE static void tile_widened_rows(const int8_t *panel, const float *wide, int64_t pairs, const uint16_t *x, int64_t k,
                                      const float *scales, const uint16_t *bias, uint16_t *y, int64_t ldy, int64_t nr) {
    if (wide) BT_BY_ROWS(nr, tile_widened, panel, wide, pairs, x, k, scales, bias, y, ldy)
    else BT_BY_ROWS(nr, tile_widened, panel, NULL, pairs, x, k, scales, bias, y, ldy)
}

/*
 * panels: n output rows of a packed weight from a panel boundary (n a multiple of 32), scales [n]
 * float32, x [rows, k] bf16, bias [n] bf16 or NULL, y [rows, ldy] bf16: columns [0, n) are
 * written. The signature of the other weight-only row kernels, so a decode step calls it as it calls them.
 */
BT_BF16
void bt_int8_bf16_panels_linear(const int8_t *panels, const float *scales, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                                int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    if (bt_int8_weight_products_for(1) == BT_INT8_PRODUCTS_DIGITS && bt_int8_digits_linear(x, 1, rows, k, panels, scales, bias, n, y, ldy) == 0) return;
    int64_t pairs = k / 2;
    int widened = bt_bf16_gemm_products() == BT_BF16_PRODUCTS_WIDENED && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vl");
    /* widened, past one pass of rows, each panel is widened once into L2 for all the passes (int8_f32_panels.c does the same;
     * without the memory each pass splits the lines itself: the same bits) */
    float *wide = widened && rows > ROWS ? aligned_alloc(64, (size_t) (pairs * 64 * (int64_t) sizeof(float))) : NULL;
    for (int64_t p = 0; p < n / PANEL; p++) {
        const int8_t *panel = panels + p * pairs * 2 * PANEL;
        const uint16_t *b = bias ? bias + p * PANEL : NULL;
        if (wide) bt_int8_pair_panel(panel, pairs, wide);
        for (int64_t i = 0; i < rows; i += ROWS) {
            int64_t nr = rows - i < ROWS ? rows - i : ROWS;
            uint16_t *yt = y + i * ldy + p * PANEL;
            if (widened) tile_widened_rows(panel, wide, pairs, x + i * k, k, scales + p * PANEL, b, yt, ldy, nr);
            else tile_rows(panel, pairs, x + i * k, k, scales + p * PANEL, b, yt, ldy, nr);
        }
    }
    free(wide);
}
#else
void bt_int8_bf16_panels_linear(const int8_t *panels, const float *scales, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                                int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) panels; (void) scales; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
