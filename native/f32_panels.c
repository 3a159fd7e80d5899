/*
 * A frozen float32 linear weight laid out once, at load, for inference: W [n, k] as panels of 32
 * output rows, each panel its rows' elements side by side — panel p, column q holds W[32p + j][q]
 * at element (p · k + q) · 32 + j (panels.h). A product then reads W once front to back: each 128
 * bytes are two vectors of sixteen output columns at one k, and each row of x meets them through
 * one broadcast element and two FMAs.
 *
 * What it replaces is libtorch's float32 linear (OpenBLAS), which packs the whole weight before a
 * product of more than a few rows and so spends as long copying it as multiplying a short prompt's
 * rows (benchmarks/FINDINGS.md). Here a prefill's rows pass eight at a time over each panel, which
 * stays in L2 while they do; a decode step's rows (any number) read the weight once as one stream a
 * thread. Every output sums its k products in order from k = 0 in one float32 accumulator, and the
 * bias is added last, so a row's result does not depend on the batch it is in.
 *
 * n must be a multiple of 32 (the callers pack only such weights). Only for CPUs with AVX-512F
 * (bt_f32_rows_supported() in f32_rows_linear.c); the functions carry their own target attribute.
 */
#include <stdint.h>
#include "panels.h"

#define PANEL BT_PANEL    /* output rows of one panel: two vectors of sixteen floats */
#define ROWS 8            /* rows of x per pass over a panel */

/*
 * How far ahead of its loads the kernel requests the panels, into L2, when it multiplies more than
 * AHEAD_ROWS rows of x (bf16_panels.c's reasons: a slow multi-row pass falls behind the hardware's
 * prefetch, a one-row pass does not).
 */
#define AHEAD_BYTES 16384
#define AHEAD_ROWS 4

/* W [n, k] (n a multiple of 32) into `panels` (n · k elements). */
void bt_f32_panels_pack(const float *w, int64_t n, int64_t k, float *panels) {
    bt_panels_pack(w, n, k, 4, panels);
}

/* Rows `ids` [count] (each below the packed n) of the packed weight: out [count, k], the word embedding's lookup. */
void bt_f32_panels_rows(const float *panels, int64_t k, const int64_t *ids, int64_t count, float *out) {
    bt_panels_rows(panels, k, 4, ids, count, out);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define BT_AVX512 __attribute__((target("avx512f")))
#define BT_AVX512_INLINE BT_AVX512 static inline __attribute__((always_inline))

/* nr (1..ROWS) rows of x (row stride k) times one panel: y's 32 columns of those rows (row stride ldy). */
BT_AVX512_INLINE void tile(const float *panel, const float *x, int64_t k, const float *bias, float *y, int64_t ldy, const int nr) {
    __m512 acc[ROWS][2];
    for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t q = 0; q < k; q++) {
        if (nr > AHEAD_ROWS) {
            const char *ahead = (const char *) (panel + q * PANEL) + AHEAD_BYTES;
            _mm_prefetch(ahead, _MM_HINT_T1);
            _mm_prefetch(ahead + 64, _MM_HINT_T1);
        }
        __m512 b0 = _mm512_loadu_ps(panel + q * PANEL);
        __m512 b1 = _mm512_loadu_ps(panel + q * PANEL + 16);
        for (int r = 0; r < nr; r++) {
            __m512 xr = _mm512_set1_ps(x[r * k + q]);
            acc[r][0] = _mm512_fmadd_ps(xr, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(xr, b1, acc[r][1]);
        }
    }
    __m512 bias0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < nr; r++) {
        _mm512_storeu_ps(y + r * ldy, bias ? _mm512_add_ps(acc[r][0], bias0) : acc[r][0]);
        _mm512_storeu_ps(y + r * ldy + 16, bias ? _mm512_add_ps(acc[r][1], bias1) : acc[r][1]);
    }
}

BT_AVX512 static void tile_rows(const float *panel, const float *x, int64_t k, const float *bias, float *y, int64_t ldy, int64_t nr) {
    switch (nr) {
        case 8: tile(panel, x, k, bias, y, ldy, 8); break;
        case 7: tile(panel, x, k, bias, y, ldy, 7); break;
        case 6: tile(panel, x, k, bias, y, ldy, 6); break;
        case 5: tile(panel, x, k, bias, y, ldy, 5); break;
        case 4: tile(panel, x, k, bias, y, ldy, 4); break;
        case 3: tile(panel, x, k, bias, y, ldy, 3); break;
        case 2: tile(panel, x, k, bias, y, ldy, 2); break;
        default: tile(panel, x, k, bias, y, ldy, 1); break;
    }
}

/*
 * panels: n output rows of a packed weight from a panel boundary (n a multiple of 32), x [rows, k],
 * bias [n] or NULL, y [rows, ldy], all float32: columns [0, n) are written, x Wᵀ + bias. The
 * signature of the other dense row kernels, so a decode step calls it as it calls them.
 */
BT_AVX512
void bt_f32_panels_linear(const float *panels, const float *x, const float *bias, float *y, int64_t rows, int64_t n, int64_t k,
                          int64_t ldy) {
    for (int64_t p = 0; p < n / PANEL; p++) {
        const float *panel = panels + p * k * PANEL;
        const float *b = bias ? bias + p * PANEL : NULL;
        for (int64_t i = 0; i < rows; i += ROWS)
            tile_rows(panel, x + i * k, k, b, y + i * ldy + p * PANEL, ldy, rows - i < ROWS ? rows - i : ROWS);
    }
}
#else
void bt_f32_panels_linear(const float *panels, const float *x, const float *bias, float *y, int64_t rows, int64_t n, int64_t k,
                          int64_t ldy) {
    (void) panels; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
