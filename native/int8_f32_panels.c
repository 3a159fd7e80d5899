/*
 * The weight-only int8 mode with float32 activations against int8_bf16_panels.c's panels (32 output
 * rows, each pair of k side by side): each 64-byte line split once into its rows' even and odd
 * elements as float32 (int8_pair_lines.h) and met by every row of x through one broadcast element
 * and two FMAs per element, so a decode batch of eight widens each weight byte once and sums no
 * vector across its lanes, where the row-major kernel (int8_rows_linear.c) reduces its lanes for
 * every output of every row (benchmarks/FINDINGS.md). x needs no widening: it is float32 already.
 *
 * Sums are float32 in one order whatever the rows (each pair's odd element, then its even one:
 * the widened bfloat16 tile's order), so a row's result does not depend on its batch; each output
 * is sum · scale + bias rounded once — the dequantized product's value up to float32 rounding.
 * n must be a multiple of 32 and k even (the callers pack only such weights). Only for CPUs with
 * AVX-512 F/BW/VL and VBMI (bt_int8_f32_panels_supported()).
 */
#include "isa_cap.h"
#include <stdint.h>
#include <stdlib.h>
#include "panels.h"
#include "int8_digits_panels.h"

#define PANEL BT_PANEL    /* output rows of one panel */
#define ROWS 8            /* rows of x per pass over a panel */
#define NEAR_BYTES 1024   /* and sixteen lines ahead into L1: the line split waited on its load at one row (FINDINGS) */
#define AHEAD_BYTES 16384 /* the panels requested ahead into L2, as int8_bf16_panels.c does */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include "widened_rows.h"
#include "int8_pair_lines.h"
#define BT_HAVE_INT8_F32_PANELS_BUILD 1
#define BT_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
#define BT_VBMI_INLINE BT_VBMI static inline __attribute__((always_inline))
#endif

int32_t bt_int8_f32_panels_supported(void) {
#ifdef BT_HAVE_INT8_F32_PANELS_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef BT_HAVE_INT8_F32_PANELS_BUILD
/*
 * Sixteen sums times their rows' scales plus the bias (or none), rounded once, stored. One FMA, not a
 * product and a sum: GCC contracts those into an FMA in some of the tile's row counts and not in
 * others, and a row's bits then depended on its batch.
 */
BT_VBMI_INLINE void store16(__m512 sums, const float *scales, const float *bias, float *y) {
    __m512 s = _mm512_loadu_ps(scales);
    _mm512_storeu_ps(y, bias ? _mm512_fmadd_ps(sums, s, _mm512_loadu_ps(bias)) : _mm512_mul_ps(sums, s));
}

/*
 * nr (1..ROWS) rows of x (row stride k) times one panel: y's 32 columns of those rows (row stride
 * ldy). The panel's lines come split and widened already from `wide` (bt_int8_pair_panel) where it is not
 * NULL, else each is split here: the same float32 values and the same sums either way.
 */
BT_VBMI_INLINE void tile(const int8_t *panel, const float *wide, int64_t pairs, const float *x, int64_t k, const float *scales,
                         const float *bias, float *y, int64_t ldy, const int nr) {
    int8_t halves[64] __attribute__((aligned(64)));
    __m512 acc[ROWS][2];
    for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t q = 0; q < pairs; q++) {
        __m512 even0, even1, odd0, odd1;
        if (wide) {
            bt_int8_pair_wide(wide, q, &even0, &even1, &odd0, &odd1);
        } else {
            const int8_t *line = panel + q * 2 * PANEL;
            _mm_prefetch((const char *) line + AHEAD_BYTES, _MM_HINT_T1);
            _mm_prefetch((const char *) line + NEAR_BYTES, _MM_HINT_T0);
            bt_int8_pair_line(line, halves, &even0, &even1, &odd0, &odd1);
        }
        bt_widened_pair(acc, x, k, q, odd0, odd1, even0, even1, nr);
    }
    for (int r = 0; r < nr; r++) {
        store16(acc[r][0], scales, bias, y + r * ldy);
        store16(acc[r][1], scales + 16, bias ? bias + 16 : NULL, y + r * ldy + 16);
    }
}

/* The tile for nr rows, its loop specialised for lines split here or read widened (GCC does not unswitch it itself). */
BT_VBMI static void tile_rows(const int8_t *panel, const float *wide, int64_t pairs, const float *x, int64_t k, const float *scales,
                              const float *bias, float *y, int64_t ldy, int64_t nr) {
    if (wide) BT_BY_ROWS(nr, tile, panel, wide, pairs, x, k, scales, bias, y, ldy)
    else BT_BY_ROWS(nr, tile, panel, NULL, pairs, x, k, scales, bias, y, ldy)
}

/*
 * panels: n output rows of a packed weight (bt_int8_bf16_panels_pack) from a panel boundary (n a
 * multiple of 32), scales [n] float32, x [rows, k] float32, bias [n] float32 or NULL, y [rows, ldy]
 * float32: columns [0, n) are written. The signature of the other weight-only row kernels, so a
 * decode step calls it as it calls them.
 */
BT_VBMI
void bt_int8_f32_panels_linear(const int8_t *panels, const float *scales, const float *x, const float *bias, float *y, int64_t rows,
                               int64_t n, int64_t k, int64_t ldy) {
    if (bt_int8_weight_products_for(0) == BT_INT8_PRODUCTS_DIGITS && bt_int8_digits_linear(x, 0, rows, k, panels, scales, bias, n, y, ldy) == 0) return;
    int64_t pairs = k / 2;
    /* past one pass of rows each panel is widened once, into L2, for all the passes: their loops then hold loads and FMAs
     * only (without the memory each pass splits the lines itself: the same bits) */
    float *wide = rows > ROWS ? aligned_alloc(64, (size_t) (pairs * 64 * (int64_t) sizeof(float))) : NULL;
    for (int64_t p = 0; p < n / PANEL; p++) {
        const int8_t *panel = panels + p * pairs * 2 * PANEL;
        const float *b = bias ? bias + p * PANEL : NULL;
        if (wide) bt_int8_pair_panel(panel, pairs, wide);
        for (int64_t i = 0; i < rows; i += ROWS) {
            int64_t nr = rows - i < ROWS ? rows - i : ROWS;
            tile_rows(panel, wide, pairs, x + i * k, k, scales + p * PANEL, b, y + i * ldy + p * PANEL, ldy, nr);
        }
    }
    free(wide);
}
#else
void bt_int8_f32_panels_linear(const int8_t *panels, const float *scales, const float *x, const float *bias, float *y, int64_t rows,
                               int64_t n, int64_t k, int64_t ldy) {
    (void) panels; (void) scales; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
