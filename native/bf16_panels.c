/*
 * A frozen bfloat16 linear weight laid out once, at load, for inference (as llama.cpp repacks its
 * CPU weights): W [n, k] as panels of 32 output rows, each panel the pairs of k of its rows side by
 * side — panel p, pair q holds W[32p + j][2q + h] at element (p · k/2 + q) · 64 + 2j + h. That is
 * the order bf16_gemm.c packs B = Wᵀ into before each product; here it is the stored order, so a
 * product reads W once front to back with nothing to pack or shuffle: each 128 bytes are two
 * vectors of sixteen output columns' pairs, and each row of x meets them through one broadcast
 * pair and two vdpbf16ps. A decode batch of eight rows then costs two loads and sixteen products
 * per 128 bytes, where the row-major eight-row tile (bf16_rows_linear.c) also spends a vpermq per
 * product and reads the weight more slowly than memory delivers (benchmarks/FINDINGS.md).
 *
 * The same kernel takes any number of rows (a prefill: eight at a time against each panel, which
 * stays in L2 while they pass), and every output sums its pairs in the same order whatever the rows,
 * so a row's result does not depend on the batch it is in. n must be a multiple of 32 and k even
 * (the callers pack only such weights). Only for CPUs with AVX512_BF16 (bt_bf16_rows_supported()).
 */
#include <stdint.h>
#include "panels.h"
#include "bf16.h"
#include "prefetch.h"
#include "bf16_panels.h"

#define PANEL BT_PANEL    /* output rows of one panel: two vectors of sixteen pairs */

#define ROWS 8            /* rows of x per pass over a panel */

/*
 * How far ahead of its loads the kernel requests the panels, into L2, when it multiplies more than
 * AHEAD_ROWS rows of x: at eight rows a stream read more slowly than memory delivers without the
 * requests; at one to four rows it depends on the CPU (prefetch.h's bt_requests_single_stream):
 * on EPYC faster without them (the hardware keeps ahead of a kernel that waits on nothing but
 * loads), on Intel Xeon far slower (benchmarks/FINDINGS.md).
 */
#define AHEAD_BYTES 16384
#define AHEAD_ROWS 4

/* W [n, k] (n a multiple of 32, k even) into `panels` (n · k elements). */
void bt_bf16_panels_pack(const uint16_t *w, int64_t n, int64_t k, uint16_t *panels) {
    bt_panels_pack(w, n, k / 2, 4, panels);
}

/* Rows `ids` [count] (each below the packed n) of the packed weight: out [count, k], the word embedding's lookup. */
void bt_bf16_panels_rows(const uint16_t *panels, int64_t k, const int64_t *ids, int64_t count, uint16_t *out) {
    bt_panels_rows(panels, k / 2, 4, ids, count, out);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include <string.h>
#include "avx512_lanes.h"
#include "widened_rows.h"
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define BT_BF16_INLINE BT_BF16 static inline __attribute__((always_inline))

/* Sixteen float32 sums plus sixteen bfloat16 biases (or none), rounded to bfloat16 and stored. */
BT_BF16_INLINE void store16(__m512 sums, const uint16_t *bias, uint16_t *y) {
    if (bias) sums = _mm512_add_ps(sums, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *) bias)), 16)));
    _mm256_storeu_si256((__m256i *) y, _mm512_cvtepi32_epi16(bt_bf16_bits16(sums)));
}

/* nr (1..ROWS) rows of x (row stride k) times one panel: y's 32 columns of those rows (row stride ldy). */
BT_BF16_INLINE void tile(const uint32_t *panel, int64_t pairs, const uint16_t *x, int64_t k, const uint16_t *bias, uint16_t *y,
                         int64_t ldy, int ahead, const int nr) {
    __m512 acc[ROWS][2];
    for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t q = 0; q < pairs; q++) {
        if (ahead) {
            const char *at = (const char *) (panel + q * PANEL) + AHEAD_BYTES;
            _mm_prefetch(at, _MM_HINT_T1);
            _mm_prefetch(at + 64, _MM_HINT_T1);
        }
        __m512bh b0 = (__m512bh) _mm512_loadu_si512(panel + q * PANEL);
        __m512bh b1 = (__m512bh) _mm512_loadu_si512(panel + q * PANEL + 16);
        for (int r = 0; r < nr; r++) {
            uint32_t pair;
            memcpy(&pair, x + r * k + 2 * q, sizeof pair);
            __m512bh xr = (__m512bh) _mm512_set1_epi32((int32_t) pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xr, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xr, b1);
        }
    }
    for (int r = 0; r < nr; r++) {
        store16(acc[r][0], bias, y + r * ldy);
        store16(acc[r][1], bias ? bias + 16 : NULL, y + r * ldy + 16);
    }
}

/*
 * Where vdpbf16ps is slow (bf16_gemm.c's bt_bf16_gemm_products), the same tile by float32 FMAs: each
 * panel vector's pairs widened into their odd and even elements (exact, the sums in vdpbf16ps's
 * order), x's rows widened BT_WIDE_PAIRS pairs at a time (widened_rows.h) — or, where the caller
 * has widened them once for every panel (`wide`, row stride k), read from there. Every row count
 * takes this path then, so a row's bits still do not depend on its batch.
 */
BT_BF16_INLINE void tile_widened(const uint32_t *panel, int64_t pairs, const uint16_t *x, const float *wide, int64_t k, const uint16_t *bias,
                                 uint16_t *y, int64_t ldy, int ahead, const int nr) {
    float buffer[ROWS * 2 * BT_WIDE_PAIRS] __attribute__((aligned(64)));
    const __m512i high = _mm512_set1_epi32((int32_t) 0xffff0000u);
    __m512 acc[ROWS][2];
    for (int r = 0; r < nr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t q0 = 0; q0 < pairs; q0 += BT_WIDE_PAIRS) {
        int64_t span = pairs - q0 < BT_WIDE_PAIRS ? pairs - q0 : BT_WIDE_PAIRS;
        const float *xw = wide ? wide + 2 * q0 : buffer;
        int64_t ldxw = wide ? k : 2 * BT_WIDE_PAIRS;
        if (!wide) bt_widen_rows(x + 2 * q0, k, nr, 2 * span, buffer, ldxw);
        for (int64_t q = 0; q < span; q++) {
            const uint32_t *at = panel + (q0 + q) * PANEL;
            if (ahead) {
                _mm_prefetch((const char *) at + AHEAD_BYTES, _MM_HINT_T1);
                _mm_prefetch((const char *) at + AHEAD_BYTES + 64, _MM_HINT_T1);
            }
            __m512i v0 = _mm512_loadu_si512(at), v1 = _mm512_loadu_si512(at + 16);
            __m512 odd0 = _mm512_castsi512_ps(_mm512_and_si512(v0, high)), odd1 = _mm512_castsi512_ps(_mm512_and_si512(v1, high));
            __m512 even0 = _mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), even1 = _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16));
            bt_widened_pair(acc, xw, ldxw, q, odd0, odd1, even0, even1, nr);
        }
    }
    for (int r = 0; r < nr; r++) {
        store16(acc[r][0], bias, y + r * ldy);
        store16(acc[r][1], bias ? bias + 16 : NULL, y + r * ldy + 16);
    }
}

BT_BF16 static void tile_widened_rows(const uint32_t *panel, int64_t pairs, const uint16_t *x, const float *wide, int64_t k,
                                      const uint16_t *bias, uint16_t *y, int64_t ldy, int ahead, int64_t nr) {
    switch (nr) {
        case 8: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 8); break;
        case 7: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 7); break;
        case 6: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 6); break;
        case 5: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 5); break;
        case 4: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 4); break;
        case 3: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 3); break;
        case 2: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 2); break;
        default: tile_widened(panel, pairs, x, wide, k, bias, y, ldy, ahead, 1); break;
    }
}

BT_BF16 static void tile_rows(const uint32_t *panel, int64_t pairs, const uint16_t *x, int64_t k, const uint16_t *bias, uint16_t *y,
                              int64_t ldy, int ahead, int64_t nr) {
    switch (nr) {
        case 8: tile(panel, pairs, x, k, bias, y, ldy, ahead, 8); break;
        case 7: tile(panel, pairs, x, k, bias, y, ldy, ahead, 7); break;
        case 6: tile(panel, pairs, x, k, bias, y, ldy, ahead, 6); break;
        case 5: tile(panel, pairs, x, k, bias, y, ldy, ahead, 5); break;
        case 4: tile(panel, pairs, x, k, bias, y, ldy, ahead, 4); break;
        case 3: tile(panel, pairs, x, k, bias, y, ldy, ahead, 3); break;
        case 2: tile(panel, pairs, x, k, bias, y, ldy, ahead, 2); break;
        default: tile(panel, pairs, x, k, bias, y, ldy, ahead, 1); break;
    }
}

/* The product of both entry points: x's rows widened per panel where `wide` is NULL, else read from it. */
BT_BF16 static void product(const uint16_t *panels, const uint16_t *x, const float *wide, const uint16_t *bias, uint16_t *y, int64_t rows,
                            int64_t n, int64_t k, int64_t ldy) {
    int64_t pairs = k / 2;
    int widened = wide || bt_bf16_gemm_products() == BT_BF16_PRODUCTS_WIDENED;
    int single = bt_requests_single_stream();
    for (int64_t p = 0; p < n / PANEL; p++) {
        const uint32_t *panel = (const uint32_t *) panels + p * pairs * PANEL;
        const uint16_t *b = bias ? bias + p * PANEL : NULL;
        for (int64_t i = 0; i < rows; i += ROWS) {
            int64_t nr = rows - i < ROWS ? rows - i : ROWS;
            int ahead = nr > AHEAD_ROWS || single;
            if (widened) tile_widened_rows(panel, pairs, x + i * k, wide ? wide + i * k : NULL, k, b, y + i * ldy + p * PANEL, ldy, ahead, nr);
            else tile_rows(panel, pairs, x + i * k, k, b, y + i * ldy + p * PANEL, ldy, ahead, nr);
        }
    }
}

/*
 * panels: n output rows of a packed weight from a panel boundary (n a multiple of 32), x [rows, k]
 * bf16, bias [n] bf16 or NULL, y [rows, ldy] bf16: columns [0, n) are written, x Wᵀ + bias rounded
 * once. The signature of the other dense row kernels, so a decode step calls it as it calls them.
 */
BT_BF16
void bt_bf16_panels_linear(const uint16_t *panels, const uint16_t *x, const uint16_t *bias, uint16_t *y, int64_t rows, int64_t n,
                           int64_t k, int64_t ldy) {
    product(panels, x, NULL, bias, y, rows, n, k, ldy);
}

int32_t bt_bf16_panels_widened(void) {
    return bt_bf16_rows_supported() && bt_bf16_gemm_products() == BT_BF16_PRODUCTS_WIDENED;
}

BT_BF16
void bt_bf16_panels_widen(const uint16_t *x, int64_t rows, int64_t k, float *xw) {
    bt_widen_rows(x, k, rows, k, xw, k);
}

BT_BF16
void bt_bf16_panels_widened_linear(const uint16_t *panels, const uint16_t *x, const float *xw, const uint16_t *bias, uint16_t *y,
                                   int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    product(panels, x, xw, bias, y, rows, n, k, ldy);
}
#else
void bt_bf16_panels_linear(const uint16_t *panels, const uint16_t *x, const uint16_t *bias, uint16_t *y, int64_t rows, int64_t n,
                           int64_t k, int64_t ldy) {
    (void) panels; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}

int32_t bt_bf16_panels_widened(void) { return 0; }

void bt_bf16_panels_widen(const uint16_t *x, int64_t rows, int64_t k, float *xw) {
    (void) x; (void) rows; (void) k; (void) xw;
}

void bt_bf16_panels_widened_linear(const uint16_t *panels, const uint16_t *x, const float *xw, const uint16_t *bias, uint16_t *y,
                                   int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) panels; (void) x; (void) xw; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
