/*
 * y = x Wᵀ + b in bfloat16 for a few rows of x (a decode step), with W streamed from memory once:
 * four rows of W at a time are multiplied with four rows of x (or, for fewer rows, read one after
 * the other against each) by AVX512_BF16's vdpbf16ps (32 bf16 products summed in float32 per
 * instruction), so a decode step runs at the speed of reading W. libtorch's bfloat16 linear reaches a fraction of that for a few rows (figures in
 * benchmarks/FINDINGS.md).
 *
 * Only for CPUs with AVX512_BF16: bt_bf16_rows_supported() says whether this one has it, and the
 * caller keeps libtorch's linear otherwise. The function carries its own target attribute, so the
 * library still builds and loads on any x86-64 CPU.
 */
#include <stdint.h>
#include "bf16.h"
#include "prefetch.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#define BT_HAVE_BF16_BUILD 1
#endif

int32_t bt_bf16_rows_supported(void) {
#ifdef BT_HAVE_BF16_BUILD
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef BT_HAVE_BF16_BUILD
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* Σ over a row of k bf16 products, k a multiple of 32 handled by the vector loop, the rest by scalars. */
BT_BF16 static inline __m512 dot_chunk(__m512 acc, const uint16_t *w, const uint16_t *x) {
    return _mm512_dpbf16_ps(acc, (__m512bh) _mm512_loadu_si512(x), (__m512bh) _mm512_loadu_si512(w));
}

/* How far ahead of the loads the weight stream is prefetched: a memory latency at two threads' read rate. */
#define PREFETCH_AHEAD 2048

/*
 * Σ over the vector part of one weight row times x, the row read front to back in 256-byte steps
 * into four accumulators — one sequential stream for the hardware prefetcher, with the lines
 * PREFETCH_AHEAD bytes on requested by hand (rows of a matrix are contiguous, so this runs into
 * the next rows).
 */
BT_BF16 static float dot_row(const uint16_t *w, int64_t kv, const uint16_t *x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 128 <= kv; i += 128) {
        const char *ahead = (const char *) (w + i) + PREFETCH_AHEAD;
        _mm_prefetch(ahead, _MM_HINT_T0);
        _mm_prefetch(ahead + 64, _MM_HINT_T0);
        _mm_prefetch(ahead + 128, _MM_HINT_T0);
        _mm_prefetch(ahead + 192, _MM_HINT_T0);
        a0 = dot_chunk(a0, w + i, x + i);
        a1 = dot_chunk(a1, w + i + 32, x + i + 32);
        a2 = dot_chunk(a2, w + i + 64, x + i + 64);
        a3 = dot_chunk(a3, w + i + 96, x + i + 96);
    }
    for (; i < kv; i += 32) a0 = dot_chunk(a0, w + i, x + i);
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/*
 * Four weight rows times one row of x, one row after the other: s[0][q] = Σ over the vector part
 * of w_q · x. (Four rows side by side, one line of each per step, read slower at two threads:
 * benchmarks/FINDINGS.md.)
 */
BT_BF16 static void tile4x1(const uint16_t *w0, int64_t k, int64_t kv, const uint16_t *x, float s[4][4]) {
    for (int q = 0; q < 4; q++) s[0][q] = dot_row(w0 + q * k, kv, x);
}

/*
 * Four weight rows times four rows of x in sixteen accumulators: each weight chunk loaded once
 * serves four rows, so a batch of decode rows costs little more memory traffic than one.
 * The tile two on is requested front to back meanwhile (prefetch.h).
 * s[r][q] = Σ over the vector part of w_q · x_r.
 */
BT_BF16 static void tile4x4(const uint16_t *w0, int64_t k, int64_t kv, const uint16_t *x, float s[4][4]) {
    __m512 a[4][4];
    for (int r = 0; r < 4; r++) for (int q = 0; q < 4; q++) a[r][q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 32) {
        BT_PREFETCH_TILE_AHEAD(w0, 4, 2 * k, 2 * i, 64);
        __m512bh wv[4], xv[4];
        for (int q = 0; q < 4; q++) wv[q] = (__m512bh) _mm512_loadu_si512(w0 + q * k + i);
        for (int r = 0; r < 4; r++) xv[r] = (__m512bh) _mm512_loadu_si512(x + r * k + i);
        for (int r = 0; r < 4; r++) for (int q = 0; q < 4; q++) a[r][q] = _mm512_dpbf16_ps(a[r][q], xv[r], wv[q]);
    }
    for (int r = 0; r < 4; r++) for (int q = 0; q < 4; q++) s[r][q] = _mm512_reduce_add_ps(a[r][q]);
}

/*
 * w [n, k] bf16 row-major, x [rows, k] bf16 row-major, bias [n] bf16 or NULL,
 * y [rows, ldy] bf16: columns [0, n) are written.
 */
BT_BF16
void bt_bf16_rows_linear(const uint16_t *w, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                         int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t kv = k - k % 32;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const uint16_t *w0 = w + j * k;
        for (int64_t r = 0; r < rows;) {
            int tile = rows - r >= 4 ? 4 : 1;
            float s[4][4];
            if (tile == 4) tile4x4(w0, k, kv, x + r * k, s);
            else tile4x1(w0, k, kv, x + r * k, s);
            for (int t = 0; t < tile; t++) {
                const uint16_t *xr = x + (r + t) * k;
                for (int q = 0; q < 4; q++) {
                    const uint16_t *wq = w0 + q * k;
                    for (int64_t i = kv; i < k; i++) s[t][q] += bf16_to_float(wq[i]) * bf16_to_float(xr[i]);
                    if (bias) s[t][q] += bf16_to_float(bias[j + q]);
                    y[(r + t) * ldy + j + q] = float_to_bf16(s[t][q]);
                }
            }
            r += tile;
        }
    }
    for (; j < n; j++) {
        const uint16_t *wj = w + j * k;
        for (int64_t r = 0; r < rows; r++) {
            const uint16_t *xr = x + r * k;
            float s = dot_row(wj, kv, xr);
            for (int64_t i = kv; i < k; i++) s += bf16_to_float(wj[i]) * bf16_to_float(xr[i]);
            if (bias) s += bf16_to_float(bias[j]);
            y[r * ldy + j] = float_to_bf16(s);
        }
    }
}
#else
void bt_bf16_rows_linear(const uint16_t *w, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                         int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) w; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
