/*
 * LLM.int8 over a frozen int8 weight laid out once at load for inference (panels.h's order with
 * 4-byte words: panel p, word q holds W[32p + j][4q .. 4q + 3] at byte (p · k/4 + q) · 128 + 4j).
 * Each 64-byte line is sixteen weight rows' words side by side, so one vpdpbusd per line and row of
 * x — that row's word broadcast from memory — adds four products into each of sixteen outputs: no
 * shuffle and no sum across lanes. The row-major kernel (int8_vnni_int_mm.c) spends a vpermq beside
 * every vpdpbusd to meet packed rows of x, and reads slower (benchmarks/FINDINGS.md).
 *
 * The same one call as bt_llm_int8_rows_linear — quantize x, product, rescale, outlier columns,
 * bias (llm_int8_epilogue.h) — for any number of rows: a prefill's rows pass over a panel eight at a
 * time while it sits in L2. Each call quantizes all of x, so ranges of panels run on several threads
 * with nothing shared; that costs a few operations per element of x against n / threads
 * multiply-adds. The native decode step calls the two halves (llm_int8_panels.h): each thread
 * quantizes x once, then multiplies the chunks of the shares it takes. The integer sums are exact
 * (equal to `_int_mm`'s: arithmetic modulo 2³², the true sum within int32), the rest is the row-major
 * kernel's arithmetic in its order, so the two give the same bits. Only for CPUs with AVX512-VNNI
 * (bt_int8_vnni_supported()).
 */
#include <stdint.h>
#include <stdlib.h>

#include "llm_int8_epilogue.h"
#include "llm_int8_panels.h"
#include "panels.h"
#include "prefetch.h"

int32_t bt_int8_vnni_supported(void);

#define PANEL BT_PANEL    /* output rows of one panel */
#define ROWS 8            /* rows of x per pass over a panel */
/*
 * The panels requested this far ahead into L2: past six rows of x everywhere, and at one to six
 * where a single stream needs it (prefetch.h: the Xeon of benchmarks/FINDINGS.md read far below the
 * memory's rate without). On the Zen 5 EPYC the hardware prefetcher alone kept one to six rows fed
 * better than the requests did, and eight rows worse (FINDINGS: "no panels requested ahead for a
 * few rows of x on AMD").
 */
#define REQUEST_ROWS_PAST 6
#define AHEAD_BYTES 16384

/* W [n, k] int8 (n a multiple of 32, k of 4) into `panels` (n · k bytes). */
void bt_llm_int8_panels_pack(const int8_t *w, int64_t n, int64_t k, int8_t *panels) {
    bt_panels_pack(w, n, k / 4, 4, panels);
}

/* Rows `ids` [count] (each below the packed n) of the packed values: out [count, k] int8, the row-major rows. */
void bt_llm_int8_panels_values(const int8_t *panels, int64_t k, const int64_t *ids, int64_t count, int8_t *out) {
    bt_panels_rows(panels, k / 4, 4, ids, count, out);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include <string.h>
#define BT_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define BT_VNNI_INLINE BT_VNNI static inline __attribute__((always_inline))

/* Row r's word q of x8 broadcast, met by both halves of the panel's line: two vpdpbusd into row r's pair of sums. */
#define BT_ROW_WORDS(r) \
    if (nr > r) { \
        int32_t word; \
        memcpy(&word, x8 + r * k + 4 * q, 4); \
        __m512i b = _mm512_set1_epi32(word); \
        a##r##0 = _mm512_dpbusd_epi32(a##r##0, w0, b); \
        a##r##1 = _mm512_dpbusd_epi32(a##r##1, w1, b); \
    }
#define BT_ROW_STORE(r) \
    if (nr > r) { \
        _mm512_storeu_si512(acc[r], a##r##0); \
        _mm512_storeu_si512(acc[r] + 16, a##r##1); \
    }

/*
 * nr (1..ROWS) rows of x8 (row stride k) against one panel: acc [nr][32] = Σ (w + 128) · x over the
 * panel's 32 weight rows. The weight is flipped to w + 128, vpdpbusd's unsigned operand; the caller
 * takes 128 · Σ x off. The sixteen sums are named variables, not an array: GCC kept an array's
 * elements moving between registers and the stack at every step.
 */
BT_VNNI_INLINE void tile(const int8_t *panel, int64_t words, const int8_t *x8, int64_t k, int32_t acc[ROWS][PANEL], const int nr,
                         const int request) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    __m512i a40 = a00, a41 = a00, a50 = a00, a51 = a00, a60 = a00, a61 = a00, a70 = a00, a71 = a00;
    for (int64_t q = 0; q < words; q++) {
        const int8_t *line = panel + q * 2 * 64;
        if (request) {
            _mm_prefetch((const char *) line + AHEAD_BYTES, _MM_HINT_T1);
            _mm_prefetch((const char *) line + AHEAD_BYTES + 64, _MM_HINT_T1);
        }
        __m512i w0 = _mm512_xor_si512(_mm512_loadu_si512(line), flip);
        __m512i w1 = _mm512_xor_si512(_mm512_loadu_si512(line + 64), flip);
        BT_ROW_WORDS(0) BT_ROW_WORDS(1) BT_ROW_WORDS(2) BT_ROW_WORDS(3) BT_ROW_WORDS(4) BT_ROW_WORDS(5) BT_ROW_WORDS(6) BT_ROW_WORDS(7)
    }
    BT_ROW_STORE(0) BT_ROW_STORE(1) BT_ROW_STORE(2) BT_ROW_STORE(3) BT_ROW_STORE(4) BT_ROW_STORE(5) BT_ROW_STORE(6) BT_ROW_STORE(7)
}

/* tile() with nr a constant in each branch, so its loops unroll and its accumulators stay in registers. */
BT_VNNI static void tile_rows(const int8_t *panel, int64_t words, const int8_t *x8, int64_t k, int32_t acc[ROWS][PANEL], int nr,
                              int request) {
    switch (nr) {
    case 1: tile(panel, words, x8, k, acc, 1, request); break;
    case 2: tile(panel, words, x8, k, acc, 2, request); break;
    case 3: tile(panel, words, x8, k, acc, 3, request); break;
    case 4: tile(panel, words, x8, k, acc, 4, request); break;
    case 5: tile(panel, words, x8, k, acc, 5, request); break;
    case 6: tile(panel, words, x8, k, acc, 6, request); break;
    case 7: tile(panel, words, x8, k, acc, 7, request); break;
    default: tile(panel, words, x8, k, acc, 8, request); break;
    }
}

/* Outlier columns whose weights finish_f32 holds for a panel; past this many the per-element path takes the panel. */
#define VECTOR_OUTLIERS 64

/*
 * The panel's weights in outlier column cols[o], times each output's scale: wv[o][j] = (float) w[j, cols[o]] · scales[j].
 * Column c's bytes are byte c % 4 of the panel's 32 words for columns c - c % 4 ... (panels.h).
 */
BT_VNNI __attribute__((optimize("fp-contract=off")))
static void outlier_weights(const int8_t *panel, const int32_t *cols, int32_t outliers, const float *scales, float wv[][PANEL]) {
    __m512 s0 = _mm512_loadu_ps(scales), s1 = _mm512_loadu_ps(scales + 16);
    for (int32_t o = 0; o < outliers; o++) {
        const int8_t *words = panel + (int64_t) (cols[o] / 4) * 4 * PANEL;
        int up = 24 - 8 * (cols[o] % 4);      /* the column's byte to the top, then down with its sign */
        __m512i w0 = _mm512_srai_epi32(_mm512_sll_epi32(_mm512_loadu_si512(words), _mm_cvtsi32_si128(up)), 24);
        __m512i w1 = _mm512_srai_epi32(_mm512_sll_epi32(_mm512_loadu_si512(words + 64), _mm_cvtsi32_si128(up)), 24);
        _mm512_storeu_ps(wv[o], _mm512_mul_ps(_mm512_cvtepi32_ps(w0), s0));
        _mm512_storeu_ps(wv[o] + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(w1), s1));
    }
}

/*
 * The panel's float32 results for nr rows of x [nr, k]: y = ((float) (acc − offset) · rowScale) · scale + Σ_o x[r, cols[o]]
 * · wv[o] + bias, rounded as bt_llm_int8_finish rounds them (the outliers summed in their order, no fused multiply-add),
 * 32 outputs a row at once instead of a call per row and a sum per output.
 */
BT_VNNI __attribute__((optimize("fp-contract=off")))
static void finish_f32(int32_t acc[ROWS][PANEL], int nr, const int32_t *offset, const float *rowScale, const float *scales,
                       const float *bias, const float *x, int64_t k, const int32_t *cols, int32_t outliers, const float wv[][PANEL],
                       float *y, int64_t ldy) {
    __m512 s0 = _mm512_loadu_ps(scales), s1 = _mm512_loadu_ps(scales + 16);
    for (int r = 0; r < nr; r++) {
        __m512i o = _mm512_set1_epi32(offset[r]);
        __m512 rs = _mm512_set1_ps(rowScale[r]);
        __m512 v0 = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(acc[r]), o)), rs), s0);
        __m512 v1 = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(acc[r] + 16), o)), rs), s1);
        if (outliers > 0) {
            __m512 t0 = _mm512_setzero_ps(), t1 = t0;
            for (int32_t q = 0; q < outliers; q++) {
                __m512 xq = _mm512_set1_ps(x[r * k + cols[q]]);
                t0 = _mm512_add_ps(t0, _mm512_mul_ps(xq, _mm512_loadu_ps(wv[q])));
                t1 = _mm512_add_ps(t1, _mm512_mul_ps(xq, _mm512_loadu_ps(wv[q] + 16)));
            }
            v0 = _mm512_add_ps(v0, t0);
            v1 = _mm512_add_ps(v1, t1);
        }
        if (bias) {
            v0 = _mm512_add_ps(v0, _mm512_loadu_ps(bias));
            v1 = _mm512_add_ps(v1, _mm512_loadu_ps(bias + 16));
        }
        _mm512_storeu_ps(y + r * ldy, v0);
        _mm512_storeu_ps(y + r * ldy + 16, v1);
    }
}

/*
 * x [rows, k] float32 (type 0) or bfloat16 (type 1), contiguous, quantized into p's own scratch:
 * x8, row scales, outlier columns (and their bytes' places in a panel row), and each row's offset
 * for the flipped weight. Returns 0, or -1 when an argument is out of range or scratch memory cannot
 * be had (nothing to free then).
 */
int32_t bt_llm_int8_panels_prepare(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, bt_llm_int8_prepared *p) {
    if (rows < 1 || k < 4 || k % 4 != 0 || (type != BT_X_F32 && type != BT_X_BF16)) return -1;
    /* x8 [rows, k] (from a 64-byte boundary), then the outlier columns and their bytes' places in a panel row [k]
     * int32 each, a widened row [k] float32, row scales and offsets [rows], outlier flags [k] bytes. */
    int64_t x8Bytes = (rows * k + 63) & ~(int64_t) 63;
    char *scratch = aligned_alloc(64, (size_t) ((x8Bytes + 13 * k + 8 * rows + 63) & ~(int64_t) 63));
    if (scratch == NULL) return -1;
    p->scratch = scratch;
    p->x8 = (int8_t *) scratch;
    p->cols = (int32_t *) (scratch + x8Bytes);
    p->column_at = p->cols + k;
    float *buf = (float *) (p->column_at + k);
    p->row_scale = buf + k;
    p->offset = (int32_t *) (p->row_scale + rows);
    uint8_t *flag = (uint8_t *) (p->offset + rows);
    p->outliers = bt_llm_int8_prepare(x, type, rows, k, threshold, p->x8, p->row_scale, flag, p->cols, buf);
    for (int32_t o = 0; o < p->outliers; o++) p->column_at[o] = (p->cols[o] / 4) * 4 * PANEL + p->cols[o] % 4;
    for (int64_t r = 0; r < rows; r++) {                    /* 128 · Σ x8[r], modulo 2³²: what the flipped weight adds */
        uint32_t sum = 0;
        for (int64_t i = 0; i < k; i++) sum += (uint32_t) (int32_t) p->x8[r * k + i];
        p->offset[r] = (int32_t) (128u * sum);
    }
    return 0;
}

void bt_llm_int8_panels_release(bt_llm_int8_prepared *p) {
    free(p->scratch);
    p->scratch = NULL;
}

/*
 * x as p prepared it times the packed values of a range of n weight rows (n a multiple of 32) with
 * their scales [n]; bias [n] in x's dtype or NULL; y [rows, ldy] in x's dtype, columns [0, n)
 * written. Each panel's outputs depend on nothing else, so ranges cut anywhere on panels give the
 * bits of one call over them all.
 */
void bt_llm_int8_panels_product(const bt_llm_int8_prepared *p, const void *x, int32_t type, int64_t rows, int64_t k,
                                const int8_t *panels, const float *scales, const void *bias, int64_t n, void *y, int64_t ldy) {
    int64_t words = k / 4, elem = type == BT_X_F32 ? 4 : 2;
    int32_t acc[ROWS][PANEL];
    float wv[VECTOR_OUTLIERS][PANEL];
    const int request = rows > REQUEST_ROWS_PAST || bt_requests_single_stream();
    const int vector = type == BT_X_F32 && p->outliers <= VECTOR_OUTLIERS;
    for (int64_t j0 = 0; j0 < n; j0 += PANEL) {
        const int8_t *panel = panels + j0 * k;
        if (vector && p->outliers > 0) outlier_weights(panel, p->cols, p->outliers, scales + j0, wv);
        for (int64_t r0 = 0; r0 < rows; r0 += ROWS) {
            int nr = rows - r0 < ROWS ? (int) (rows - r0) : ROWS;
            tile_rows(panel, words, p->x8 + r0 * k, k, acc, nr, request);
            if (vector) {
                finish_f32(acc, nr, p->offset + r0, p->row_scale + r0, scales + j0, bias ? (const float *) bias + j0 : NULL,
                           (const float *) x + r0 * k, k, p->cols, p->outliers, (const float (*)[PANEL]) wv, (float *) y + r0 * ldy + j0, ldy);
                continue;
            }
            for (int r = 0; r < nr; r++)
                for (int j = 0; j < PANEL; j++) acc[r][j] -= p->offset[r0 + r];
            bt_llm_int8_finish(&acc[0][0], PANEL, nr, PANEL, p->row_scale + r0, scales + j0, bias ? (const char *) bias + j0 * elem : NULL,
                               (const char *) x + r0 * k * elem, type, k, p->cols, p->outliers,
                               (bt_llm_int8_block_weight) {panel, 4, p->column_at}, (char *) y + (r0 * ldy + j0) * elem, ldy);
        }
    }
}

/*
 * x [rows, k] float32 (type 0) or bfloat16 (type 1), contiguous; panels the packed values of a range
 * of n weight rows (n a multiple of 32, k of 4) and scales [n] float32 theirs; bias [n] in x's dtype or
 * NULL; y [rows, ldy] in x's dtype, columns [0, n) written. Returns 0, or -1 when an argument is out
 * of range or scratch memory cannot be had (nothing written).
 */
int32_t bt_llm_int8_panels_linear(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, const int8_t *panels,
                                  const float *scales, const void *bias, int64_t n, void *y, int64_t ldy) {
    if (n % PANEL != 0) return -1;
    bt_llm_int8_prepared p;
    if (bt_llm_int8_panels_prepare(x, type, rows, k, threshold, &p) != 0) return -1;
    bt_llm_int8_panels_product(&p, x, type, rows, k, panels, scales, bias, n, y, ldy);
    bt_llm_int8_panels_release(&p);
    return 0;
}
#else
int32_t bt_llm_int8_panels_prepare(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, bt_llm_int8_prepared *p) {
    (void) x; (void) type; (void) rows; (void) k; (void) threshold; (void) p;
    return -1;
}

void bt_llm_int8_panels_release(bt_llm_int8_prepared *p) { (void) p; }

void bt_llm_int8_panels_product(const bt_llm_int8_prepared *p, const void *x, int32_t type, int64_t rows, int64_t k,
                                const int8_t *panels, const float *scales, const void *bias, int64_t n, void *y, int64_t ldy) {
    (void) p; (void) x; (void) type; (void) rows; (void) k; (void) panels; (void) scales; (void) bias; (void) n; (void) y; (void) ldy;
}

int32_t bt_llm_int8_panels_linear(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, const int8_t *panels,
                                  const float *scales, const void *bias, int64_t n, void *y, int64_t ldy) {
    (void) x; (void) type; (void) rows; (void) k; (void) threshold; (void) panels; (void) scales; (void) bias; (void) n; (void) y;
    (void) ldy;
    return -1;
}
#endif

/* Whether bt_llm_int8_panels_linear runs here: a CPU with AVX512-VNNI and a build that has the kernel. */
int32_t bt_llm_int8_panels_supported(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
    return bt_int8_vnni_supported();
#else
    return 0;
#endif
}
