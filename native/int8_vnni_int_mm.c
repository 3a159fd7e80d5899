/*
 * LLM.int8's int32 product y = x · valuesᵀ for a few int8 rows of x (a decode step) with
 * AVX512-VNNI's vpdpbusd: 64 byte products summed into sixteen int32 lanes per instruction, no
 * widening. The AVX2 kernel (int8_rows_linear.c) widens both operands to int16 for vpmaddwd, a
 * third of the products per instruction and a widening per load, and so runs below the speed of
 * reading the weights.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so one operand is offset by 128 (a flip of its top
 * bit) and 128 · Σ of the other is taken off each sum: for one to four rows x is flipped and Σ values
 * comes from the same loads, by a vpdpbusd with ones; for eight rows the weight is flipped and
 * Σ x[r] is taken once per call. All arithmetic is modulo 2³², so the result is exact — equal to `_int_mm`'s —
 * whenever the true sum fits int32 (|sum| ≤ 127² · k), however large the offset sums grow.
 *
 * bt_int8_vnni_supported() says whether this CPU has AVX512-VNNI and AVX512BW; the caller uses the
 * AVX2 kernel or `_int_mm` otherwise. The functions carry their own target attribute, so the
 * library still builds and loads on any x86-64 CPU.
 */
#include "isa_cap.h"
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include "avx512_lanes.h"
#include "prefetch.h"
#define BT_HAVE_VNNI_BUILD 1
#endif

int32_t bt_int8_vnni_supported(void) {
#ifdef BT_HAVE_VNNI_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef BT_HAVE_VNNI_BUILD
#define BT_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define BT_VNNI_INLINE BT_VNNI static inline __attribute__((always_inline))

/* Weight rows per block, each read once for up to X_ROWS rows of x. */
#define W_ROWS 4
#define X_ROWS 4

/*
 * One 64-byte column chunk of W_ROWS weight rows against nr rows of x. Prefetches the next block's
 * rows at the same column, a line each: the hardware prefetcher picks the row streams up late.
 */
BT_VNNI_INLINE void chunk(const int8_t *w, const int8_t *x, int64_t k, int64_t i, __mmask64 m, const int nr,
                          __m512i acc[X_ROWS][W_ROWS], __m512i sums[W_ROWS]) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i xs[X_ROWS];
    for (int r = 0; r < nr; r++) xs[r] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + r * k + i), flip);
    for (int q = 0; q < W_ROWS; q++) {
        _mm_prefetch((const char *) (w + (q + W_ROWS) * k + i), _MM_HINT_T0);
        __m512i wv = _mm512_maskz_loadu_epi8(m, w + q * k + i);          /* masked-off bytes are 0: no product */
        sums[q] = _mm512_dpbusd_epi32(sums[q], ones, wv);
        for (int r = 0; r < nr; r++) acc[r][q] = _mm512_dpbusd_epi32(acc[r][q], xs[r], wv);
    }
}

/* W_ROWS weight rows times nr (1..X_ROWS) rows of x into y (row stride ldy). */
BT_VNNI_INLINE void block(const int8_t *w, const int8_t *x, int32_t *y, int64_t k, int64_t ldy, const int nr) {
    __m512i acc[X_ROWS][W_ROWS];
    __m512i sums[W_ROWS];
    for (int q = 0; q < W_ROWS; q++) {
        sums[q] = _mm512_setzero_si512();
        for (int r = 0; r < nr; r++) acc[r][q] = _mm512_setzero_si512();
    }
    int64_t kv = k - k % 64;
    for (int64_t i = 0; i < kv; i += 64) chunk(w, x, k, i, ~(__mmask64) 0, nr, acc, sums);
    if (kv < k) chunk(w, x, k, kv, ((__mmask64) 1 << (k - kv)) - 1, nr, acc, sums);
    for (int q = 0; q < W_ROWS; q++) {
        uint32_t offset = 128u * (uint32_t) _mm512_reduce_add_epi32(sums[q]);
        for (int r = 0; r < nr; r++) y[r * ldy + q] = (int32_t) ((uint32_t) _mm512_reduce_add_epi32(acc[r][q]) - offset);
    }
}

/*
 * Two weight rows times eight rows of x into columns 0, 1 of y's eight rows. Here the weight is the
 * unsigned operand, flipped to w + 128 as it is loaded, and x the signed one, so the offset is
 * 128 · Σ x[r]: one number per row of x for the whole call (xoff, lane 2r + q), and the loop
 * spends no instruction on sums of the weights or flips of x — per 64 columns two weight loads,
 * two flips, eight loads of x and sixteen products, the sixteen sums reduced as one vector. (The
 * previous form, x flipped at every load and Σ w by a product with ones, ran 1.5× the
 * instructions and spilled accumulators: benchmarks/FINDINGS.md.) The rows two tiles on are
 * requested at the same column, a line each.
 */
BT_VNNI_INLINE void block2x8(const int8_t *w, const int8_t *x, int32_t *y, int64_t k, int64_t ldy, __m512i xoff) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    __m512i acc[16];                                            /* lane 2r + q: row r of x, weight row q */
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_si512();
    int64_t kv = k - k % 64;
    for (int64_t i = 0; i < kv; i += 64) {
        _mm_prefetch((const char *) (w + 4 * k + i), _MM_HINT_T0);
        _mm_prefetch((const char *) (w + 5 * k + i), _MM_HINT_T0);
        __m512i w0 = _mm512_xor_si512(_mm512_loadu_si512(w + i), flip), w1 = _mm512_xor_si512(_mm512_loadu_si512(w + k + i), flip);
        for (int r = 0; r < 8; r++) {
            __m512i xs = _mm512_loadu_si512(x + r * k + i);
            acc[2 * r] = _mm512_dpbusd_epi32(acc[2 * r], w0, xs);
            acc[2 * r + 1] = _mm512_dpbusd_epi32(acc[2 * r + 1], w1, xs);
        }
    }
    if (kv < k) {
        __mmask64 m = ((__mmask64) 1 << (k - kv)) - 1;          /* masked-off bytes of x are 0: no product */
        __m512i w0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, w + kv), flip);
        __m512i w1 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, w + k + kv), flip);
        for (int r = 0; r < 8; r++) {
            __m512i xs = _mm512_maskz_loadu_epi8(m, x + r * k + kv);
            acc[2 * r] = _mm512_dpbusd_epi32(acc[2 * r], w0, xs);
            acc[2 * r + 1] = _mm512_dpbusd_epi32(acc[2 * r + 1], w1, xs);
        }
    }
    int32_t lanes[16];
    _mm512_storeu_si512(lanes, _mm512_sub_epi32(bt_sum16_epi32(acc), xoff));
    for (int r = 0; r < 8; r++) {
        y[r * ldy] = lanes[2 * r];
        y[r * ldy + 1] = lanes[2 * r + 1];
    }
}

/* 128 · Σ x[r] for each of eight rows of x (modulo 2³²), each twice: lanes 2r and 2r + 1, as block2x8 lays out its sums. */
BT_VNNI_INLINE __m512i row_offsets_x8(const int8_t *x, int64_t k) {
    int32_t offsets[16];
    for (int r = 0; r < 8; r++) {
        uint32_t s = 0;
        for (int64_t i = 0; i < k; i++) s += (uint32_t) (int32_t) x[r * k + i];
        offsets[2 * r] = offsets[2 * r + 1] = (int32_t) (128u * s);
    }
    return _mm512_loadu_si512(offsets);
}

/*
 * One row of x: each weight row read front to back — the weight is one sequential stream, which
 * the hardware prefetcher follows, where W_ROWS rows side by side are four — BT_ROW_AHEAD bytes
 * requested ahead. Sixteen rows' sums (two accumulators each, to hide vpdpbusd's latency) are
 * reduced by one tree. Σ values comes from the same loads; at one row the products leave the
 * vector units idle most of the time, so it costs no time.
 */
BT_VNNI_INLINE void rows16x1(const int8_t *w, const int8_t *x, int32_t *y, int64_t k, const int nw) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i total[16];
    for (int q = 0; q < 16; q++) {
        if (q >= nw) { total[q] = _mm512_setzero_si512(); continue; }
        const int8_t *wq = w + q * k;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, s0 = a0, s1 = a0;
        int64_t i = 0;
        for (; i + 128 <= k; i += 128) {
            _mm_prefetch((const char *) (wq + i + BT_ROW_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *) (wq + i + BT_ROW_AHEAD + 64), _MM_HINT_T0);
            __m512i w0 = _mm512_loadu_si512(wq + i), w1 = _mm512_loadu_si512(wq + i + 64);
            s0 = _mm512_dpbusd_epi32(s0, ones, w0);
            s1 = _mm512_dpbusd_epi32(s1, ones, w1);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512(x + i), flip), w0);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_xor_si512(_mm512_loadu_si512(x + i + 64), flip), w1);
        }
        for (; i < k; i += 64) {
            __mmask64 m = k - i >= 64 ? ~(__mmask64) 0 : ((__mmask64) 1 << (k - i)) - 1;
            __m512i w0 = _mm512_maskz_loadu_epi8(m, wq + i);       /* masked-off bytes are 0: no product */
            s0 = _mm512_dpbusd_epi32(s0, ones, w0);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), flip), w0);
        }
        /* Σ (x + 128) · w − 128 · Σ w, lane by lane: the lanes' sum is the row's product. */
        total[q] = _mm512_sub_epi32(_mm512_add_epi32(a0, a1), _mm512_slli_epi32(_mm512_add_epi32(s0, s1), 7));
    }
    int32_t lanes[16];
    _mm512_storeu_si512(lanes, bt_sum16_epi32(total));
    for (int q = 0; q < nw; q++) y[q] = lanes[q];
}

/*
 * values [n, k] int8, x [rows, k] int8, y [rows, ldy] int32: columns [0, n) are written. Each block
 * of weight rows is read from memory once: one row front to back against one row of x, two rows
 * against eight rows of x, else four against up to four, rows of x beyond four re-reading it from
 * cache.
 */
BT_VNNI
void bt_int8_vnni_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    int64_t j = 0;
    if (rows == 1) {
        for (; j < n; j += 16) rows16x1(values + j * k, x, y + j, k, n - j < 16 ? (int) (n - j) : 16);
        return;
    }
    if (rows == 8) {
        __m512i xoff = row_offsets_x8(x, k);
        for (; j + 2 <= n; j += 2) block2x8(values + j * k, x, y + j, k, ldy, xoff);
    }
    for (; j + W_ROWS <= n; j += W_ROWS) {
        const int8_t *w = values + j * k;
        for (int64_t r = 0; r < rows; r += X_ROWS) {
            const int8_t *xr = x + r * k;
            int32_t *yr = y + r * ldy + j;
            switch (rows - r < X_ROWS ? rows - r : X_ROWS) {
                case 1: block(w, xr, yr, k, ldy, 1); break;
                case 2: block(w, xr, yr, k, ldy, 2); break;
                case 3: block(w, xr, yr, k, ldy, 3); break;
                default: block(w, xr, yr, k, ldy, 4); break;
            }
        }
    }
    for (; j < n; j++) {                                        /* the last rows of W: plain sums */
        const int8_t *w = values + j * k;
        for (int64_t r = 0; r < rows; r++) {
            int32_t s = 0;
            for (int64_t i = 0; i < k; i++) s += (int32_t) w[i] * x[r * k + i];
            y[r * ldy + j] = s;
        }
    }
}
#else
void bt_int8_vnni_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) values; (void) x; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
