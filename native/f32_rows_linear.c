/*
 * Decode batches of float32 rows of x (1–8) against a weight streamed from memory once: four
 * weight rows at a time are multiplied with up to four rows of x in sixteen AVX-512 accumulators,
 * so each loaded weight chunk serves every row (rows beyond four re-read the block from cache);
 * from five rows a float32 weight instead meets all rows packed side by side (packed_rows.h), and
 * one row reads each weight row front to back in a single stream.
 *
 * - bt_f32_rows_linear: y = x Wᵀ + b with a float32 W; for a few rows libtorch's linear goes to a
 *   GEMM that reads W far slower, and one row, read as BLAS's gemv reads it, lets a decode step run
 *   without BLAS threads beside its own (decode_blocks.c).
 * - bt_int8_f32_rows_linear: y = (x · valuesᵀ) · scales with a row-scaled int8 W (the weight-only
 *   mode): each 16-weight chunk is widened to float32 once for all rows, where the AVX2 kernel
 *   (int8_rows_linear.c) widens it again for every pair of rows and is bound by arithmetic at eight.
 * (Figures in benchmarks/FINDINGS.md.)
 *
 * Sums are float32 in a fixed order (sixteen lanes, then the lanes added); a scale is applied once
 * per output: the product's value up to float32 rounding.
 *
 * Only for CPUs with AVX-512F: bt_f32_rows_supported() says whether this one has it, and the caller
 * keeps its other path otherwise. The functions carry their own target attribute, so the library
 * still builds and loads on any x86-64 CPU.
 */
#include "isa_cap.h"
#include "packed_rows.h"
#include "prefetch.h"
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define BT_HAVE_AVX512_BUILD 1
#endif

int32_t bt_f32_rows_supported(void) {
#ifdef BT_HAVE_AVX512_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef BT_HAVE_AVX512_BUILD
#define BT_AVX512 __attribute__((target("avx512f")))
#define BT_AVX512_INLINE BT_AVX512 static inline __attribute__((always_inline))

#define W_ROWS 4
#define X_ROWS 4

/* Element i of a weight as float32: `int8` is a constant at every (inlined) call site. */
BT_AVX512_INLINE float weight(const void *w, int64_t i, const int int8) {
    return int8 ? (float) ((const int8_t *) w)[i] : ((const float *) w)[i];
}

/* Sixteen weights from element i on, as float32. */
BT_AVX512_INLINE __m512 weights16(const void *w, int64_t i, const int int8) {
    if (int8) return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) ((const int8_t *) w + i))));
    return _mm512_loadu_ps((const float *) w + i);
}

BT_AVX512_INLINE const char *address(const void *w, int64_t i, const int int8) {
    return int8 ? (const char *) w + i : (const char *) ((const float *) w + i);
}

/*
 * W_ROWS weight rows times nr (1..X_ROWS) rows of x: s[r][q] = Σ over the first kv columns. Prefetches
 * the next block's rows a line at a time: the hardware prefetcher picks the row streams up late.
 */
BT_AVX512_INLINE void block(const void *w, const float *x, int64_t k, int64_t kv, const int nr, float s[X_ROWS][W_ROWS],
                            const int int8) {
    __m512 acc[X_ROWS][W_ROWS];
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 16) {
        __m512 xv[X_ROWS];
        for (int r = 0; r < nr; r++) xv[r] = _mm512_loadu_ps(x + r * k + i);
        for (int q = 0; q < W_ROWS; q++) {
            _mm_prefetch(address(w, (q + W_ROWS) * k + i, int8), _MM_HINT_T0);
            __m512 wv = weights16(w, q * k + i, int8);
            for (int r = 0; r < nr; r++) acc[r][q] = _mm512_fmadd_ps(xv[r], wv, acc[r][q]);
        }
    }
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) s[r][q] = _mm512_reduce_add_ps(acc[r][q]);
}

/* Weight row j's product with row xr over columns [from, k). */
BT_AVX512_INLINE float tail(const void *w, int64_t j, const float *xr, int64_t from, int64_t k, const int int8) {
    float s = 0.0f;
    for (int64_t i = from; i < k; i++) s += weight(w, j * k + i, int8) * xr[i];
    return s;
}

/* Output j of a row from its sum: times the row's scale (int8), plus the bias (when given). */
BT_AVX512_INLINE float finish(float sum, int64_t j, const float *scales, const float *bias) {
    float v = scales ? sum * scales[j] : sum;
    return bias ? v + bias[j] : v;
}

/* w [n, k] float32 or int8, x [rows, k] float32, y [rows, ldy] float32: columns [0, n) are written. */
BT_AVX512_INLINE void rows_linear(const void *w, const float *scales, const float *x, const float *bias, float *y,
                                  int64_t rows, int64_t n, int64_t k, int64_t ldy, const int int8) {
    int64_t kv = k - k % 16;
    int64_t j = 0;
    for (; j + W_ROWS <= n; j += W_ROWS) {
        const void *wj = address(w, j * k, int8);
        for (int64_t r = 0; r < rows; r += X_ROWS) {
            const float *xr = x + r * k;
            int nr = rows - r < X_ROWS ? (int) (rows - r) : X_ROWS;
            float s[X_ROWS][W_ROWS];
            switch (nr) {
                case 1: block(wj, xr, k, kv, 1, s, int8); break;
                case 2: block(wj, xr, k, kv, 2, s, int8); break;
                case 3: block(wj, xr, k, kv, 3, s, int8); break;
                default: block(wj, xr, k, kv, 4, s, int8); break;
            }
            for (int t = 0; t < nr; t++) {
                for (int q = 0; q < W_ROWS; q++) {
                    float sum = s[t][q] + tail(w, j + q, xr + t * k, kv, k, int8);
                    y[(r + t) * ldy + j + q] = finish(sum, j + q, scales, bias);
                }
            }
        }
    }
    for (; j < n; j++) {                                        /* the last rows of W: plain sums */
        for (int64_t r = 0; r < rows; r++) y[r * ldy + j] = finish(tail(w, j, x + r * k, 0, k, int8), j, scales, bias);
    }
}

/*
 * One weight row (int8 or float32) times one row of x over the first kv columns (a multiple of 16),
 * the row read front to back 128 weights a step into four accumulators: one sequential stream, left
 * to the hardware prefetcher as in the bfloat16 kernel's one row (bf16_rows_linear.c), which on EPYC
 * follows it faster than lines requested by hand. The block loop's four interleaved row streams read
 * one row slower. An int8 row is requested BT_ROW_AHEAD bytes on where `ahead` says so (prefetch.h's
 * bt_requests_single_stream: on Intel Xeon it read far slower without); a float32 one is read as fast
 * either way there.
 */
BT_AVX512_INLINE float row_dot(const void *w, const float *x, int64_t kv, int ahead, const int int8) {
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    int64_t i = 0;
    for (; i + 128 <= kv; i += 128) {
        if (int8 && ahead) {
            _mm_prefetch(address(w, i, int8) + BT_ROW_AHEAD, _MM_HINT_T0);
            _mm_prefetch(address(w, i, int8) + BT_ROW_AHEAD + 64, _MM_HINT_T0);
        }
        for (int c = 0; c < 8; c++) acc[c & 3] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16 * c), weights16(w, i + 16 * c, int8), acc[c & 3]);
    }
    for (; i < kv; i += 16) acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), weights16(w, i, int8), acc[0]);
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

/* One row of x: y[j] for each weight row j by row_dot. */
BT_AVX512_INLINE void one_row(const void *w, const float *scales, const float *x, const float *bias, float *y, int64_t n, int64_t k,
                              const int int8) {
    int64_t kv = k - k % 16;
    int ahead = bt_requests_single_stream();
    for (int64_t j = 0; j < n; j++)
        y[j] = finish(row_dot(address(w, j * k, int8), x, kv, ahead, int8) + tail(w, j, x, kv, k, int8), j, scales, bias);
}

/* Weight rows per tile of the packed path: sixteen accumulators, each weight row's line loaded once for all rows of x. */
#define TILE_ROWS 16

/* Rows of x from which a float32 weight goes through the packed path (below it, the block loop reads as fast). */
#define PACKED_FROM_ROWS 5

/*
 * nw (≤ TILE_ROWS) float32 weight rows against up to eight rows of x packed (packed_rows.h: two
 * columns of each row per group), plus the bias. Per 16 columns each weight row's line is spread two
 * columns at a time over the vector and met with one group: one FMA per weight row and group, lane
 * 2j + h summing row j's column h of each group. Rows of the tile two tiles on are requested at the
 * same column; loads are masked past k (zero, as the packed x's columns there are zero).
 */
BT_AVX512_INLINE void packed_tile(const float *w, const int64_t *xp, const float *bias, float *y, int64_t rows, int64_t k,
                                  int64_t ldy, const int nw) {
    __m512 acc[TILE_ROWS];
    for (int q = 0; q < nw; q++) acc[q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 16) {
        __mmask16 m = k - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (k - i)) - 1);
        for (int q = 0; q < nw; q++) _mm_prefetch((const char *) (w + (q + 2 * TILE_ROWS) * k + i), _MM_HINT_T0);
        for (int q = 0; q < nw; q++) {
            __m512i wq = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, w + q * k + i));
            for (int t = 0; t < 8; t++)                          /* the line's eight qwords against groups i/2 .. i/2 + 7 */
                acc[q] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_permutexvar_epi64(_mm512_set1_epi64(t), wq)),
                                         _mm512_load_ps((const float *) (xp + 8 * (i / 2 + t))), acc[q]);
        }
    }
    float out[16];
    for (int q = 0; q < nw; q++) {
        _mm512_storeu_ps(out, _mm512_add_ps(acc[q], _mm512_permute_ps(acc[q], 0xB1)));
        for (int64_t j = 0; j < rows; j++) y[j * ldy + q] = finish(out[2 * j], q, NULL, bias);
    }
}

/*
 * w [n, k] float32, x [rows, k] float32, bias [n] or NULL, y [rows, ldy] float32. From
 * PACKED_FROM_ROWS to eight rows, x is packed and met by tiles of sixteen weight rows; the block
 * loop there re-reads each block from cache for rows past four while the memory waits
 * (benchmarks/FINDINGS.md).
 */
BT_AVX512
void bt_f32_rows_linear(const float *w, const float *x, const float *bias, float *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    if (rows == 1) {
        one_row(w, NULL, x, bias, y, n, k, 0);
        return;
    }
    int64_t *xp = rows >= PACKED_FROM_ROWS ? bt_packed_copy(x, rows, 4 * k) : NULL;
    if (xp == NULL) {
        rows_linear(w, NULL, x, bias, y, rows, n, k, ldy, 0);
        return;
    }
    int64_t j = 0;
    for (; j + TILE_ROWS <= n; j += TILE_ROWS) packed_tile(w + j * k, xp, bias ? bias + j : NULL, y + j, rows, k, ldy, TILE_ROWS);
    for (; j < n; j++) packed_tile(w + j * k, xp, bias ? bias + j : NULL, y + j, rows, k, ldy, 1);
    free(xp);
}

/* values [n, k] int8, scales [n] float32, x [rows, k] float32, bias [n] or NULL, y [rows, ldy] float32. */
BT_AVX512
void bt_int8_f32_rows_linear(const int8_t *values, const float *scales, const float *x, const float *bias, float *y, int64_t rows,
                             int64_t n, int64_t k, int64_t ldy) {
    if (rows == 1) {
        one_row(values, scales, x, bias, y, n, k, 1);
        return;
    }
    rows_linear(values, scales, x, bias, y, rows, n, k, ldy, 1);
}
#else
void bt_f32_rows_linear(const float *w, const float *x, const float *bias, float *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) w; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
void bt_int8_f32_rows_linear(const int8_t *values, const float *scales, const float *x, const float *bias, float *y, int64_t rows,
                             int64_t n, int64_t k, int64_t ldy) {
    (void) values; (void) scales; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
