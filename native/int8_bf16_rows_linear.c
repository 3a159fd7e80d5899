/*
 * y = (x · valuesᵀ) · scales for up to eight bfloat16 rows of x and a row-scaled int8 weight — a
 * decode batch of the weight-only int8 mode with bf16 activations. Each 32-column chunk of a weight
 * row is widened once to bfloat16 (exact: |value| ≤ 127 needs 7 bits) and multiplied with every row
 * of x by AVX512_BF16's vdpbf16ps, whose products of two bfloat16 numbers are exact in float32. The
 * float32 kernel (int8_rows_linear.c) instead widens to float32 and spends one FMA per eight
 * products per row, so at a batch of eight it is bound by arithmetic, not by reading the weight.
 *
 * Sums are float32, the scale is applied once per output and the result rounded to bfloat16 once:
 * the dequantized product's value up to float32 rounding, as the float32 kernel gives it.
 *
 * Only for CPUs with AVX512_BF16 (bt_bf16_rows_supported() in bf16_rows_linear.c); the caller keeps
 * the other paths otherwise. The function carries its own target attribute, so the library still
 * builds and loads on any x86-64 CPU.
 */
#include <stdint.h>
#include "bf16.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include <string.h>
#include "avx512_lanes.h"
#include "prefetch.h"
#define BT_HAVE_BF16_BUILD 1
#endif

#ifdef BT_HAVE_BF16_BUILD
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define BT_BF16_INLINE BT_BF16 static inline __attribute__((always_inline))

/* Weight rows per block (each read from memory once) and rows of x per pass over it. */
#define W_ROWS 4
#define X_ROWS 4

/* 32 int8 weights as 32 bfloat16 numbers, in order. */
BT_BF16_INLINE __m512bh widen(const int8_t *w) {
    __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) w)));
    __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) (w + 16))));
    return _mm512_cvtne2ps_pbh(hi, lo);
}

/*
 * W_ROWS weight rows times nr (1..X_ROWS) rows of x: s[r][q] = Σ over the first kv columns, with the
 * block two on requested front to back (prefetch.h).
 */
BT_BF16_INLINE void block(const int8_t *w, const uint16_t *x, int64_t k, int64_t kv, const int nr, float s[X_ROWS][W_ROWS]) {
    __m512 acc[X_ROWS][W_ROWS];
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 32) {
        __m512bh xv[X_ROWS];
        for (int r = 0; r < nr; r++) xv[r] = (__m512bh) _mm512_loadu_si512(x + r * k + i);
        BT_PREFETCH_TILE_AHEAD(w, W_ROWS, k, i, 32);
        for (int q = 0; q < W_ROWS; q++) {
            __m512bh wv = widen(w + q * k + i);
            for (int r = 0; r < nr; r++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], xv[r], wv);
        }
    }
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) s[r][q] = _mm512_reduce_add_ps(acc[r][q]);
}

/*
 * Two weight rows times eight rows of x in sixteen accumulators: each weight chunk is widened once
 * for all eight rows (two passes of block() widen it twice, and widening costs more than the
 * products: benchmarks/FINDINGS.md). Lane 2r + q = Σ over the first kv columns of w_q · x_r.
 */
BT_BF16 static __m512 block2x8(const int8_t *w, const uint16_t *x, int64_t k, int64_t kv) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 32) {
        BT_PREFETCH_TILE_AHEAD(w, 2, k, i, 32);
        __m512bh w0 = widen(w + i), w1 = widen(w + k + i);
        for (int r = 0; r < 8; r++) {
            __m512bh xv = (__m512bh) _mm512_loadu_si512(x + r * k + i);
            acc[2 * r] = _mm512_dpbf16_ps(acc[2 * r], xv, w0);
            acc[2 * r + 1] = _mm512_dpbf16_ps(acc[2 * r + 1], xv, w1);
        }
    }
    return bt_sum16(acc);
}

/*
 * One weight row times one row of x over the first kv columns, the row read front to back in
 * 128-byte steps into four accumulators: one sequential stream for the hardware prefetcher, with
 * the lines BT_ROW_AHEAD bytes on requested by hand (prefetch.h).
 */
BT_BF16 static float row_dot(const int8_t *w, const uint16_t *x, int64_t kv) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 128 <= kv; i += 128) {
        _mm_prefetch((const char *) (w + i) + BT_ROW_AHEAD, _MM_HINT_T0);
        _mm_prefetch((const char *) (w + i) + BT_ROW_AHEAD + 64, _MM_HINT_T0);
        a0 = _mm512_dpbf16_ps(a0, (__m512bh) _mm512_loadu_si512(x + i), widen(w + i));
        a1 = _mm512_dpbf16_ps(a1, (__m512bh) _mm512_loadu_si512(x + i + 32), widen(w + i + 32));
        a2 = _mm512_dpbf16_ps(a2, (__m512bh) _mm512_loadu_si512(x + i + 64), widen(w + i + 64));
        a3 = _mm512_dpbf16_ps(a3, (__m512bh) _mm512_loadu_si512(x + i + 96), widen(w + i + 96));
    }
    for (; i < kv; i += 32) a0 = _mm512_dpbf16_ps(a0, (__m512bh) _mm512_loadu_si512(x + i), widen(w + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* One weight row's product with row xr over columns [from, k), in float32. */
static float tail(const int8_t *wq, const uint16_t *xr, int64_t from, int64_t k) {
    float s = 0.0f;
    for (int64_t i = from; i < k; i++) s += (float) wq[i] * bf16_to_float(xr[i]);
    return s;
}

/* block2x8's sums plus the rest of k, times the two rows' scales, rounded to bfloat16 into columns j, j + 1 of y's eight rows. */
BT_BF16 static void store2x8(__m512 sums, const int8_t *w, const float *scales, const uint16_t *x, int64_t k, int64_t kv,
                             int64_t j, uint16_t *y, int64_t ldy) {
    if (kv < k) {
        float s[16];
        _mm512_storeu_ps(s, sums);
        for (int t = 0; t < 16; t++) s[t] += tail(w + (t % 2) * k, x + (t / 2) * k, kv, k);
        sums = _mm512_loadu_ps(s);
    }
    uint64_t both;                                           /* the two scales' bits, side by side in every pair of lanes */
    memcpy(&both, scales + j, sizeof both);
    __m512 scale = _mm512_castsi512_ps(_mm512_set1_epi64((long long) both));
    uint32_t out[8];
    _mm256_storeu_si256((__m256i *) out, _mm512_cvtepi32_epi16(bt_bf16_bits16(_mm512_mul_ps(sums, scale))));
    for (int t = 0; t < 8; t++) memcpy(y + t * ldy + j, &out[t], sizeof out[t]);
}

BT_BF16 static void int8_bf16_rows_linear(const int8_t *values, const float *scales, const uint16_t *x, uint16_t *y,
                                          int64_t rows, int64_t n, int64_t k, int64_t ldy);

/*
 * values [n, k] int8, scales [n] float32, x [rows, k] bf16, bias [n] bf16 or NULL, y [rows, ldy]
 * bf16: columns [0, n) are written. The bias is added to the rounded product and the sum rounded
 * again — the numbers of a bfloat16 add after the product.
 */
BT_BF16
void bt_int8_bf16_rows_linear(const int8_t *values, const float *scales, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                              int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int8_bf16_rows_linear(values, scales, x, y, rows, n, k, ldy);
    if (bias)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) y[r * ldy + j] = float_to_bf16(bf16_to_float(y[r * ldy + j]) + bf16_to_float(bias[j]));
}

BT_BF16
static void int8_bf16_rows_linear(const int8_t *values, const float *scales, const uint16_t *x, uint16_t *y,
                                  int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t kv = k - k % 32;
    int64_t j = 0;
    if (rows == 1) {
        for (; j < n; j++) y[j] = float_to_bf16((row_dot(values + j * k, x, kv) + tail(values + j * k, x, kv, k)) * scales[j]);
        return;
    }
    if (rows == 8)
        for (; j + 2 <= n; j += 2) store2x8(block2x8(values + j * k, x, k, kv), values + j * k, scales, x, k, kv, j, y, ldy);
    for (; j + W_ROWS <= n; j += W_ROWS) {
        const int8_t *w = values + j * k;
        for (int64_t r = 0; r < rows; r += X_ROWS) {
            const uint16_t *xr = x + r * k;
            int nr = rows - r < X_ROWS ? (int) (rows - r) : X_ROWS;
            float s[X_ROWS][W_ROWS];
            switch (nr) {
                case 1: block(w, xr, k, kv, 1, s); break;
                case 2: block(w, xr, k, kv, 2, s); break;
                case 3: block(w, xr, k, kv, 3, s); break;
                default: block(w, xr, k, kv, 4, s); break;
            }
            for (int t = 0; t < nr; t++) {
                for (int q = 0; q < W_ROWS; q++) {
                    float sum = s[t][q] + tail(w + q * k, xr + t * k, kv, k);
                    y[(r + t) * ldy + j + q] = float_to_bf16(sum * scales[j + q]);
                }
            }
        }
    }
    for (; j < n; j++) {                                        /* the last rows of W: plain sums */
        for (int64_t r = 0; r < rows; r++) y[r * ldy + j] = float_to_bf16(tail(values + j * k, x + r * k, 0, k) * scales[j]);
    }
}
#else
void bt_int8_bf16_rows_linear(const int8_t *values, const float *scales, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                              int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) values; (void) scales; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
