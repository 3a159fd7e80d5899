/*
 * y = (x · valuesᵀ) · scales for a few rows of float32 x and a row-scaled int8 weight — a decode
 * step of the weight-only int8 mode. A decode step reads every weight once, so its speed is the
 * speed of reading the int8 values: each group of four weight rows is loaded once, widened to
 * float32 in registers and multiplied with every row of x there, never written back as floats.
 * libtorch's `_weight_int8pack_mm` float32 path is not vectorized, and dequantizing blocks for
 * a BLAS gemv writes and reads every weight again as float32 (figures in benchmarks/FINDINGS.md).
 *
 * Sums are float32 in a fixed order (eight lanes, then the lanes added pairwise), the scale is
 * applied once per output: the dequantized product's value up to float32 rounding.
 *
 * AVX2 with FMA: bt_int8_rows_supported() says whether this CPU has them; the caller keeps the
 * libtorch path otherwise. The functions carry their own target attribute, so the library still
 * builds and loads on any x86-64 CPU.
 */
#include "isa_cap.h"
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BT_HAVE_AVX2_BUILD 1
#endif

int32_t bt_int8_rows_supported(void) {
#ifdef BT_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX2) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef BT_HAVE_AVX2_BUILD
#define BT_AVX2 __attribute__((target("avx2,fma")))

/*
 * Each pass streams a few weight rows that the hardware prefetcher picks up late, so the loads
 * wait on memory; prefetching the next block's rows while this block is multiplied keeps the
 * reads in flight (one prefetch per 64-byte line; past the last row it touches nothing: prefetches
 * never fault). A macro, because GCC 12 dropped the prefetches of the same code as an inline
 * function (none in the object code).
 */
#define PREFETCH_NEXT(w, k, i, block) \
    if (((i) & 63) == 0) for (int pq = 0; pq < (block); pq++) _mm_prefetch((const char *) ((w) + (pq + (block)) * (k) + (i)), _MM_HINT_T0)

BT_AVX2 static inline __m256 widen(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *) p)));
}

BT_AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four weight rows times two rows of x: eight independent sums, so the FMAs never wait on each other. */
BT_AVX2 static void block4x2(const int8_t *w, const float *x0, const float *x1, int64_t k, int64_t kv, float out[2][4]) {
    const int8_t *w0 = w, *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    for (int64_t i = 0; i < kv; i += 8) {
        PREFETCH_NEXT(w, k, i, 4);
        __m256 v0 = widen(w0 + i), v1 = widen(w1 + i), v2 = widen(w2 + i), v3 = widen(w3 + i);
        __m256 p = _mm256_loadu_ps(x0 + i), q = _mm256_loadu_ps(x1 + i);
        a00 = _mm256_fmadd_ps(v0, p, a00); a01 = _mm256_fmadd_ps(v1, p, a01);
        a02 = _mm256_fmadd_ps(v2, p, a02); a03 = _mm256_fmadd_ps(v3, p, a03);
        a10 = _mm256_fmadd_ps(v0, q, a10); a11 = _mm256_fmadd_ps(v1, q, a11);
        a12 = _mm256_fmadd_ps(v2, q, a12); a13 = _mm256_fmadd_ps(v3, q, a13);
    }
    out[0][0] = hsum(a00); out[0][1] = hsum(a01); out[0][2] = hsum(a02); out[0][3] = hsum(a03);
    out[1][0] = hsum(a10); out[1][1] = hsum(a11); out[1][2] = hsum(a12); out[1][3] = hsum(a13);
}

/* Eight weight rows times one row of x: eight independent sums, each weight vector used once. */
BT_AVX2 static void block8x1(const int8_t *w, const float *x0, int64_t k, int64_t kv, float out[8]) {
    __m256 a[8];
    for (int q = 0; q < 8; q++) a[q] = _mm256_setzero_ps();
    for (int64_t i = 0; i < kv; i += 8) {
        PREFETCH_NEXT(w, k, i, 8);
        __m256 p = _mm256_loadu_ps(x0 + i);
        for (int q = 0; q < 8; q++) a[q] = _mm256_fmadd_ps(widen(w + q * k + i), p, a[q]);
    }
    for (int q = 0; q < 8; q++) out[q] = hsum(a[q]);
}

BT_AVX2 static void int8_rows_linear(const int8_t *values, const float *scales, const float *x, float *y,
                                     int64_t rows, int64_t n, int64_t k, int64_t ldy);

/*
 * values [n, k] int8 row-major, scales [n] float32, x [rows, k] float32 row-major, bias [n] or NULL
 * (added after the scale, as an add after the product would), y [rows, ldy] float32: columns
 * [0, n) are written.
 */
BT_AVX2
void bt_int8_rows_linear(const int8_t *values, const float *scales, const float *x, const float *bias, float *y,
                         int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int8_rows_linear(values, scales, x, y, rows, n, k, ldy);
    if (bias)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) y[r * ldy + j] += bias[j];
}

BT_AVX2
static void int8_rows_linear(const int8_t *values, const float *scales, const float *x, float *y,
                             int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t kv = k - k % 8;
    int64_t j0 = 0;
    if (rows == 1) {                                            /* a batch-1 decode step */
        for (; j0 + 8 <= n; j0 += 8) {
            float s[8];
            block8x1(values + j0 * k, x, k, kv, s);
            for (int q = 0; q < 8; q++) {
                const int8_t *wq = values + (j0 + q) * k;
                for (int64_t i = kv; i < k; i++) s[q] += (float) wq[i] * x[i];
                y[j0 + q] = s[q] * scales[j0 + q];
            }
        }
    }
    int64_t j = j0;
    for (; j + 4 <= n; j += 4) {
        for (int64_t r = 0; r < rows; r += 2) {
            const float *x0 = x + r * k;
            const float *x1 = r + 1 < rows ? x0 + k : x0;       /* an odd last row pairs with itself */
            float s[2][4];
            block4x2(values + j * k, x0, x1, k, kv, s);
            for (int q = 0; q < 4; q++) {
                const int8_t *wq = values + (j + q) * k;
                for (int64_t i = kv; i < k; i++) { s[0][q] += (float) wq[i] * x0[i]; s[1][q] += (float) wq[i] * x1[i]; }
                y[r * ldy + j + q] = s[0][q] * scales[j + q];
                if (r + 1 < rows) y[(r + 1) * ldy + j + q] = s[1][q] * scales[j + q];
            }
        }
    }
    for (; j < n; j++) {                                        /* the last rows of W: plain sums */
        const int8_t *wj = values + j * k;
        for (int64_t r = 0; r < rows; r++) {
            float s = 0;
            for (int64_t i = 0; i < k; i++) s += (float) wj[i] * x[r * k + i];
            y[r * ldy + j] = s * scales[j];
        }
    }
}

/* Σ of the eight int32 lanes. */
BT_AVX2 static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

BT_AVX2 static inline __m256i widen16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) p));
}

/*
 * LLM.int8's product for a few rows: y[r, j] = Σ_i x[r, i] · values[j, i] in int32, exactly what
 * `_int_mm` computes (integer sums do not depend on their order; |sum| ≤ 127² · k fits int32 for
 * k < 133,000). Both operands are widened to int16 and multiplied pairwise by vpmaddwd, sixteen
 * products per instruction; each block of eight weight rows is read once for every row of x.
 * values [n, k] int8, x [rows, k] int8, y [rows, ldy] int32: columns [0, n) are written.
 */
BT_AVX2
void bt_int8_rows_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t kv = k - k % 16;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const int8_t *w = values + j * k;
        for (int64_t r = 0; r < rows; r++) {
            const int8_t *xr = x + r * k;
            __m256i a[8];
            for (int q = 0; q < 8; q++) a[q] = _mm256_setzero_si256();
            for (int64_t i = 0; i < kv; i += 16) {
                PREFETCH_NEXT(w, k, i, 8);
                __m256i p = widen16(xr + i);
                for (int q = 0; q < 8; q++) a[q] = _mm256_add_epi32(a[q], _mm256_madd_epi16(widen16(w + q * k + i), p));
            }
            for (int q = 0; q < 8; q++) {
                int32_t s = hsum_i32(a[q]);
                for (int64_t i = kv; i < k; i++) s += (int32_t) w[q * k + i] * xr[i];
                y[r * ldy + j + q] = s;
            }
        }
    }
    for (; j < n; j++) {
        const int8_t *w = values + j * k;
        for (int64_t r = 0; r < rows; r++) {
            int32_t s = 0;
            for (int64_t i = 0; i < k; i++) s += (int32_t) w[i] * x[r * k + i];
            y[r * ldy + j] = s;
        }
    }
}
#else
void bt_int8_rows_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) values; (void) x; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
void bt_int8_rows_linear(const int8_t *values, const float *scales, const float *x, const float *bias, float *y,
                         int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) values; (void) scales; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
