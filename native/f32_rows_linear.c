/*
 * y = x Wᵀ + b in float32 for 2–8 rows of x (a decode batch), with W streamed from memory once:
 * four weight rows at a time are multiplied with four rows of x in sixteen AVX-512 accumulators, so
 * each loaded weight chunk serves every row (rows beyond four re-read the block from cache). One
 * row goes to BLAS's gemv, which reads at the memory's rate; for a few rows libtorch's linear goes
 * to a GEMM that reads W far slower (figures in benchmarks/FINDINGS.md).
 *
 * Sums are float32 in a fixed order (sixteen lanes, then the lanes added): the product's value up
 * to float32 rounding, as BLAS gives it in another order.
 *
 * Only for CPUs with AVX-512F: bt_f32_rows_supported() says whether this one has it, and the caller
 * keeps libtorch's linear otherwise. The function carries its own target attribute, so the library
 * still builds and loads on any x86-64 CPU.
 */
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define BT_HAVE_AVX512_BUILD 1
#endif

int32_t bt_f32_rows_supported(void) {
#ifdef BT_HAVE_AVX512_BUILD
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef BT_HAVE_AVX512_BUILD
#define BT_AVX512 __attribute__((target("avx512f")))
#define BT_AVX512_INLINE BT_AVX512 static inline __attribute__((always_inline))

#define W_ROWS 4
#define X_ROWS 4

/*
 * W_ROWS weight rows times nr (1..X_ROWS) rows of x: s[r][q] = Σ over the first kv columns. Prefetches
 * the next block's rows a line at a time: the hardware prefetcher picks the row streams up late.
 */
BT_AVX512_INLINE void block(const float *w, const float *x, int64_t k, int64_t kv, const int nr, float s[X_ROWS][W_ROWS]) {
    __m512 acc[X_ROWS][W_ROWS];
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 16) {
        __m512 xv[X_ROWS];
        for (int r = 0; r < nr; r++) xv[r] = _mm512_loadu_ps(x + r * k + i);
        for (int q = 0; q < W_ROWS; q++) {
            _mm_prefetch((const char *) (w + (q + W_ROWS) * k + i), _MM_HINT_T0);
            __m512 wv = _mm512_loadu_ps(w + q * k + i);
            for (int r = 0; r < nr; r++) acc[r][q] = _mm512_fmadd_ps(xv[r], wv, acc[r][q]);
        }
    }
    for (int r = 0; r < nr; r++) for (int q = 0; q < W_ROWS; q++) s[r][q] = _mm512_reduce_add_ps(acc[r][q]);
}

/* One weight row's product with row xr over columns [from, k). */
static float tail(const float *wq, const float *xr, int64_t from, int64_t k) {
    float s = 0.0f;
    for (int64_t i = from; i < k; i++) s += wq[i] * xr[i];
    return s;
}

/*
 * w [n, k] float32 row-major, x [rows, k] float32 row-major, bias [n] or NULL,
 * y [rows, ldy] float32: columns [0, n) are written.
 */
BT_AVX512
void bt_f32_rows_linear(const float *w, const float *x, const float *bias, float *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t kv = k - k % 16;
    int64_t j = 0;
    for (; j + W_ROWS <= n; j += W_ROWS) {
        const float *wj = w + j * k;
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
                    y[(r + t) * ldy + j + q] = bias ? sum + bias[j + q] : sum;
                }
            }
        }
    }
    for (; j < n; j++) {                                        /* the last rows of W: plain sums */
        for (int64_t r = 0; r < rows; r++) {
            float sum = tail(w + j * k, x + r * k, 0, k);
            y[r * ldy + j] = bias ? sum + bias[j] : sum;
        }
    }
}
#else
void bt_f32_rows_linear(const float *w, const float *x, const float *bias, float *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) w; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
