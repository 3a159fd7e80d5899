/*
 * y = (x · valuesᵀ) · scales for 2–8 float32 rows of x and a row-scaled int8 weight — a decode batch
 * of the weight-only int8 mode with float32 activations. Each 16-weight chunk of four weight rows
 * is widened once to float32 (AVX-512) and multiplied with up to four rows of x in sixteen
 * accumulators; rows beyond four re-read the block from cache. The AVX2 kernel
 * (int8_rows_linear.c) widens each chunk again for every pair of rows, so at a batch of eight it is
 * bound by arithmetic (figures in benchmarks/FINDINGS.md).
 *
 * Sums are float32, the scale is applied once per output: the dequantized product's value up to
 * float32 rounding, as the AVX2 kernel gives it.
 *
 * Only for CPUs with AVX-512F (bt_f32_rows_supported() in f32_rows_linear.c). The function carries
 * its own target attribute, so the library still builds and loads on any x86-64 CPU.
 */
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define BT_HAVE_AVX512_BUILD 1
#endif

#ifdef BT_HAVE_AVX512_BUILD
#define BT_AVX512 __attribute__((target("avx512f")))
#define BT_AVX512_INLINE BT_AVX512 static inline __attribute__((always_inline))

#define W_ROWS 4
#define X_ROWS 4

/*
 * W_ROWS weight rows times nr (1..X_ROWS) rows of x: s[r][q] = Σ over the first kv columns. Prefetches
 * the next block's rows a line at a time: the hardware prefetcher picks the row streams up late.
 */
/* 16 int8 weights as float32. */
BT_AVX512_INLINE __m512 widen(const int8_t *w) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) w)));
}

BT_AVX512_INLINE void block(const int8_t *w, const float *x, int64_t k, int64_t kv, const int nr, float s[X_ROWS][W_ROWS]) {
    __m512 acc[X_ROWS][W_ROWS];
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 16) {
        __m512 xv[X_ROWS];
        for (int r = 0; r < nr; r++) xv[r] = _mm512_loadu_ps(x + r * k + i);
        for (int q = 0; q < W_ROWS; q++) {
            _mm_prefetch((const char *) (w + (q + W_ROWS) * k + i), _MM_HINT_T0);
            __m512 wv = widen(w + q * k + i);
            for (int r = 0; r < nr; r++) acc[r][q] = _mm512_fmadd_ps(xv[r], wv, acc[r][q]);
        }
    }
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) s[r][q] = _mm512_reduce_add_ps(acc[r][q]);
}

/* One weight row's product with row xr over columns [from, k). */
static float tail(const int8_t *wq, const float *xr, int64_t from, int64_t k) {
    float s = 0.0f;
    for (int64_t i = from; i < k; i++) s += (float) wq[i] * xr[i];
    return s;
}

/*
 * values [n, k] int8, scales [n] float32, x [rows, k] float32, y [rows, ldy] float32: columns [0, n)
 * are written.
 */
BT_AVX512
void bt_int8_f32_rows_linear(const int8_t *w, const float *scales, const float *x, float *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t kv = k - k % 16;
    int64_t j = 0;
    for (; j + W_ROWS <= n; j += W_ROWS) {
        const int8_t *wj = w + j * k;
        for (int64_t r = 0; r < rows; r += X_ROWS) {
            const float *xr = x + r * k;
            int nr = rows - r < X_ROWS ? (int) (rows - r) : X_ROWS;
            float s[X_ROWS][W_ROWS];
            switch (nr) {
                case 1: block(wj, xr, k, kv, 1, s); break;
                case 2: block(wj, xr, k, kv, 2, s); break;
                case 3: block(wj, xr, k, kv, 3, s); break;
                default: block(wj, xr, k, kv, 4, s); break;
            }
            for (int t = 0; t < nr; t++) {
                for (int q = 0; q < W_ROWS; q++) {
                    float sum = s[t][q] + tail(wj + q * k, xr + t * k, kv, k);
                    y[(r + t) * ldy + j + q] = sum * scales[j + q];
                }
            }
        }
    }
    for (; j < n; j++) {                                        /* the last rows of W: plain sums */
        for (int64_t r = 0; r < rows; r++) {
            y[r * ldy + j] = tail(w + j * k, x + r * k, 0, k) * scales[j];
        }
    }
}
#else
void bt_int8_f32_rows_linear(const int8_t *w, const float *scales, const float *x, float *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) w; (void) scales; (void) x; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
