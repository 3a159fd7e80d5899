/*
 * y = x Wᵀ + b in bfloat16 for a few rows of x (a decode step), with W streamed from memory once:
 * two rows of W at a time against eight rows of x, four against four, or, for fewer rows, each row
 * of W read against each row of x, by AVX512_BF16's vdpbf16ps (32 bf16 products summed in float32
 * per instruction), so a decode step runs at the speed of reading W. libtorch's bfloat16 linear reaches a fraction of that for a few rows (figures in
 * benchmarks/FINDINGS.md).
 *
 * Only for CPUs with AVX512_BF16: bt_bf16_rows_supported() says whether this one has it, and the
 * caller keeps libtorch's linear otherwise. The function carries its own target attribute, so the
 * library still builds and loads on any x86-64 CPU.
 */
#include "isa_cap.h"
#include <stdint.h>
#include "bf16.h"
#include "prefetch.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include <string.h>
#include "avx512_lanes.h"
#define BT_HAVE_BF16_BUILD 1
#endif

int32_t bt_bf16_rows_supported(void) {
#ifdef BT_HAVE_BF16_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
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

/*
 * Σ over the vector part of one weight row times x, the row read front to back in 256-byte steps
 * into four accumulators — one sequential stream for the hardware prefetcher, with the lines
 * BT_ROW_AHEAD bytes on requested by hand (prefetch.h).
 */
BT_BF16 static float dot_row(const uint16_t *w, int64_t kv, const uint16_t *x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 128 <= kv; i += 128) {
        const char *ahead = (const char *) (w + i) + BT_ROW_AHEAD;
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
 * Four weight rows times four rows of x in sixteen accumulators: each weight chunk loaded once
 * serves four rows, so a batch of decode rows costs little more memory traffic than one.
 * The tile two on is requested front to back meanwhile (prefetch.h).
 * Lane 4r + q of the result = Σ over the vector part of w_q · x_r.
 */
BT_BF16 static __m512 tile4x4(const uint16_t *w0, int64_t k, int64_t kv, const uint16_t *x) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 32) {
        BT_PREFETCH_TILE_AHEAD(w0, 4, 2 * k, 2 * i, 64);
        __m512bh wv[4], xv[4];
        for (int q = 0; q < 4; q++) wv[q] = (__m512bh) _mm512_loadu_si512(w0 + q * k + i);
        for (int r = 0; r < 4; r++) xv[r] = (__m512bh) _mm512_loadu_si512(x + r * k + i);
        for (int r = 0; r < 4; r++) for (int q = 0; q < 4; q++) a[4 * r + q] = _mm512_dpbf16_ps(a[4 * r + q], xv[r], wv[q]);
    }
    return bt_sum16(a);
}

/*
 * Two weight rows times eight rows of x in sixteen accumulators: the weight chunk is loaded once
 * for all eight rows (two 4 × 4 tiles load it twice and ran at about 60 % of vdpbf16ps' rate from
 * cache, this one at its rate: benchmarks/FINDINGS.md). Lane 2r + q = Σ over the vector part of w_q · x_r.
 */
BT_BF16 static __m512 tile2x8(const uint16_t *w0, int64_t k, int64_t kv, const uint16_t *x) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    for (int64_t i = 0; i < kv; i += 32) {
        BT_PREFETCH_TILE_AHEAD(w0, 2, 2 * k, 2 * i, 64);
        __m512bh w0v = (__m512bh) _mm512_loadu_si512(w0 + i), w1v = (__m512bh) _mm512_loadu_si512(w0 + k + i);
        for (int r = 0; r < 8; r++) {
            __m512bh xv = (__m512bh) _mm512_loadu_si512(x + r * k + i);
            a[2 * r] = _mm512_dpbf16_ps(a[2 * r], xv, w0v);
            a[2 * r + 1] = _mm512_dpbf16_ps(a[2 * r + 1], xv, w1v);
        }
    }
    return bt_sum16(a);
}

/*
 * A tile's sixteen sums (lane cols·t + q: row t of x, weight row j + q; cols · rows = 16) finished
 * into y: the scalar rest of k, the bias, rounding to bfloat16 — as vectors but for that rest.
 */
BT_BF16 static void store_tile(__m512 sums, int cols, const uint16_t *w0, int64_t k, int64_t kv, const uint16_t *x,
                               const uint16_t *bias, int64_t j, uint16_t *y, int64_t r0, int64_t ldy) {
    int rows = 16 / cols;
    if (kv < k) {
        float s[16];
        _mm512_storeu_ps(s, sums);
        for (int t = 0; t < rows; t++)
            for (int q = 0; q < cols; q++)
                for (int64_t i = kv; i < k; i++) s[cols * t + q] += bf16_to_float(w0[q * k + i]) * bf16_to_float(x[(r0 + t) * k + i]);
        sums = _mm512_loadu_ps(s);
    }
    if (bias) {
        uint16_t b[16];
        for (int i = 0; i < 16; i++) b[i] = bias[j + i % cols];
        sums = _mm512_add_ps(sums, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *) b)), 16)));
    }
    uint16_t out[16];
    _mm256_storeu_si256((__m256i *) out, _mm512_cvtepi32_epi16(bt_bf16_bits16(sums)));
    for (int t = 0; t < rows; t++) memcpy(y + (r0 + t) * ldy + j, out + cols * t, sizeof(uint16_t) * (size_t) cols);
}

/* Weight row wq times row xr, plus bias element b (when given), rounded to bfloat16: one output at a time. */
BT_BF16 static uint16_t one_output(const uint16_t *wq, int64_t k, int64_t kv, const uint16_t *xr, const uint16_t *bias, int64_t b) {
    float s = dot_row(wq, kv, xr);
    for (int64_t i = kv; i < k; i++) s += bf16_to_float(wq[i]) * bf16_to_float(xr[i]);
    if (bias) s += bf16_to_float(bias[b]);
    return float_to_bf16(s);
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
    if (rows == 8)
        for (; j + 2 <= n; j += 2) store_tile(tile2x8(w + j * k, k, kv, x), 2, w + j * k, k, kv, x, bias, j, y, 0, ldy);
    for (; j + 4 <= n; j += 4) {
        const uint16_t *w0 = w + j * k;
        int64_t r = 0;
        for (; r + 4 <= rows; r += 4) store_tile(tile4x4(w0, k, kv, x + r * k), 4, w0, k, kv, x, bias, j, y, r, ldy);
        for (; r < rows; r++)                                   /* one row of x: each weight row read on its own */
            for (int q = 0; q < 4; q++) y[r * ldy + j + q] = one_output(w0 + q * k, k, kv, x + r * k, bias, j + q);
    }
    for (; j < n; j++)
        for (int64_t r = 0; r < rows; r++) y[r * ldy + j] = one_output(w + j * k, k, kv, x + r * k, bias, j);
}
#else
void bt_bf16_rows_linear(const uint16_t *w, const uint16_t *x, const uint16_t *bias, uint16_t *y,
                         int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) w; (void) x; (void) bias; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
