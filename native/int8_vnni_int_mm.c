/*
 * LLM.int8's int32 product y = x · valuesᵀ for a few int8 rows of x (a decode step) with
 * AVX512-VNNI's vpdpbusd: 64 byte products summed into sixteen int32 lanes per instruction, no
 * widening. The AVX2 kernel (int8_rows_linear.c) widens both operands to int16 for vpmaddwd, a
 * third of the products per instruction and a widening per load, and so runs below the speed of
 * reading the weights.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so one operand is offset by 128 (a flip of its top
 * bit) and 128 · Σ of the other is taken off each sum: for one row x is flipped and Σ values comes
 * from the same loads, by a vpdpbusd with ones; for 2–8 rows the weight is flipped and Σ x[r] is
 * taken once, as x is packed (eight bytes of each row side by side, so one weight line loaded serves
 * every row). All arithmetic is modulo 2³², so the result is exact — equal to `_int_mm`'s —
 * whenever the true sum fits int32 (|sum| ≤ 127² · k), however large the offset sums grow.
 *
 * bt_int8_vnni_supported() says whether this CPU has AVX512-VNNI and AVX512BW; the caller uses the
 * AVX2 kernel or `_int_mm` otherwise. The functions carry their own target attribute, so the
 * library still builds and loads on any x86-64 CPU.
 */
#include "isa_cap.h"
#include "packed_rows.h"
#include <stdint.h>
#include <stdlib.h>

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

/* Bytes of x packed for the 2–8-row product (bt_int8_vnni_pack_rows). */
int64_t bt_int8_vnni_packed_bytes(int64_t k) { return bt_packed_rows_bytes(k); }

#ifdef BT_HAVE_VNNI_BUILD
#define BT_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define BT_VNNI_INLINE BT_VNNI static inline __attribute__((always_inline))

/* Weight rows per tile of the packed kernel: sixteen accumulators, each weight row's line loaded once for all rows of x. */
#define TILE_ROWS 16

/* off[2j] = off[2j + 1] = 128 · Σ x[j] (modulo 2³²) for rows j < rows, else 0: the offset the flipped weight adds to row j's sums. */
BT_VNNI_INLINE void row_offsets(const int8_t *x, int64_t rows, int64_t k, int32_t off[16]) {
    for (int j = 0; j < BT_PACKED_ROWS; j++) {
        uint32_t sum = 0;
        for (int64_t i = 0; j < rows && i < k; i++) sum += (uint32_t) (int32_t) x[j * k + i];
        off[2 * j] = off[2 * j + 1] = (int32_t) (128u * sum);
    }
}

/*
 * Up to eight rows of x into xp (packed_rows.h; bt_int8_vnni_packed_bytes(k) bytes, 64-byte
 * aligned), and their offsets (row_offsets).
 */
BT_VNNI
void bt_int8_vnni_pack_rows(const int8_t *x, int64_t rows, int64_t k, int64_t *xp, int32_t off[16]) {
    bt_pack_rows(x, rows, k, xp);
    row_offsets(x, rows, k, off);
}

/*
 * nw (≤ TILE_ROWS) weight rows against the packed rows of x. Per 64 columns each weight row is
 * loaded once and flipped to w + 128 (vpdpbusd's unsigned operand), and each of its eight qwords is
 * spread across the vector to meet the eight rows' qwords of one packed group: one vpdpbusd
 * per weight row and group, lane 2j + h summing row j's bytes 4h .. 4h + 3 of each group. Rows of
 * the tile two tiles on are requested at the same column. Loads are masked past k (zero bytes, as
 * the packed x's columns there are zero).
 */
BT_VNNI_INLINE void packed_tile(const int8_t *w, const int64_t *xp, __m512i off, int32_t *y, int64_t rows, int64_t k,
                                int64_t ldy, const int nw) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    __m512i acc[TILE_ROWS];
    for (int q = 0; q < nw; q++) acc[q] = _mm512_setzero_si512();
    for (int64_t i = 0; i < k; i += 64) {
        __mmask64 m = k - i >= 64 ? ~(__mmask64) 0 : ((__mmask64) 1 << (k - i)) - 1;
        for (int q = 0; q < nw; q++) _mm_prefetch((const char *) (w + (q + 2 * TILE_ROWS) * k + i), _MM_HINT_T0);
        for (int q = 0; q < nw; q++) {
            __m512i wq = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, w + q * k + i), flip);
            for (int t = 0; t < 8; t++)                          /* the line's eight qwords against groups i/8 .. i/8 + 7 */
                acc[q] = _mm512_dpbusd_epi32(acc[q], _mm512_permutexvar_epi64(_mm512_set1_epi64(t), wq),
                                             _mm512_load_si512(xp + 8 * (i / 8 + t)));
        }
    }
    int32_t lanes[16];
    for (int q = 0; q < nw; q++) {
        _mm512_storeu_si512(lanes, _mm512_sub_epi32(_mm512_add_epi32(acc[q], _mm512_shuffle_epi32(acc[q], _MM_PERM_CDAB)), off));
        for (int64_t j = 0; j < rows; j++) y[j * ldy + q] = lanes[2 * j];
    }
}

/*
 * values [n, k] int8 against x packed by bt_int8_vnni_pack_rows (rows ≤ 8): y [rows, ldy] int32,
 * columns [0, n). Tiles of sixteen weight rows, the last rows a narrower tile.
 */
BT_VNNI
void bt_int8_vnni_packed_int_mm(const int8_t *values, const int64_t *xp, const int32_t off[16], int32_t *y, int64_t rows,
                                int64_t n, int64_t k, int64_t ldy) {
    __m512i o = _mm512_loadu_si512(off);
    int64_t j = 0;
    for (; j + TILE_ROWS <= n; j += TILE_ROWS) packed_tile(values + j * k, xp, o, y + j, rows, k, ldy, TILE_ROWS);
    for (; j < n; j++) packed_tile(values + j * k, xp, o, y + j, rows, k, ldy, 1);
}

/*
 * One row of x: each weight row read front to back — the weight is one sequential stream, which
 * the hardware prefetcher follows, where rows side by side are several — BT_ROW_AHEAD bytes
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
 * values [n, k] int8, x [rows, k] int8, y [rows, ldy] int32: columns [0, n) are written. Each weight
 * row is read from memory once: one row front to back, 2–8 rows through the packed layout (more
 * rows one at a time) (benchmarks/FINDINGS.md: the tiles that read each weight line for all rows at once
 * reach the plain read rate; 4 × 4 tiles and 2 × 8 tiles of whole 64-byte columns did not).
 */
BT_VNNI
void bt_int8_vnni_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    if (rows == 1) {
        for (int64_t j = 0; j < n; j += 16) rows16x1(values + j * k, x, y + j, k, n - j < 16 ? (int) (n - j) : 16);
        return;
    }
    int64_t *xp = bt_packed_copy(x, rows, k);
    if (xp == NULL) {                                           /* more than eight rows, or no memory: one row at a time, the same sums */
        for (int64_t r = 0; r < rows; r++) bt_int8_vnni_int_mm(values, x + r * k, y + r * ldy, 1, n, k, ldy);
        return;
    }
    int32_t off[16];
    row_offsets(x, rows, k, off);
    bt_int8_vnni_packed_int_mm(values, xp, off, y, rows, n, k, ldy);
    free(xp);
}
#else
void bt_int8_vnni_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy) {
    (void) values; (void) x; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
void bt_int8_vnni_pack_rows(const int8_t *x, int64_t rows, int64_t k, int64_t *xp, int32_t off[16]) {
    (void) x; (void) rows; (void) k; (void) xp; (void) off;
}
void bt_int8_vnni_packed_int_mm(const int8_t *values, const int64_t *xp, const int32_t off[16], int32_t *y, int64_t rows,
                                int64_t n, int64_t k, int64_t ldy) {
    (void) values; (void) xp; (void) off; (void) y; (void) rows; (void) n; (void) k; (void) ldy;
}
#endif
