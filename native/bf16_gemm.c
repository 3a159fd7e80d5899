/*
 * C = A · B in bfloat16 for the training step's many-row products, by AVX512_BF16's vdpbf16ps:
 * y = x Wᵀ (B = Wᵀ, W [n, k] as a linear layer keeps it) and dx = dy W (B = W [k, n]). libtorch's
 * oneDNN GEMMs run below the instruction's rate at these shapes (benchmarks/FINDINGS.md).
 *
 * libtorch's OpenMP threads take C's columns 64 at a time (column_blocks.h). For those 64 columns
 * and up to 2048 of k at a time a thread packs B into a buffer in which every pair of k (what one
 * vdpbf16ps lane multiplies) is adjacent for 32 columns — from Wᵀ a transpose of 32-bit pairs,
 * from W an interleave of two rows — then runs an 8-row × 32-column tile of sixteen float32
 * accumulators over that chunk of k for each eight rows of A: each step loads two vectors of B
 * and broadcasts one pair of each of eight rows of A for sixteen vdpbf16ps. The packed columns
 * stay in L2 while every row of A passes them; a longer k (a 4H → H layer of a wide model, or its
 * input gradient) would overflow L2, so its chunks carry float32 partial sums from one to the
 * next — the same sums in the same order. Where vdpbf16ps is slow (bt_bf16_gemm_products) the packed
 * chunk is widened to float32 and the tiles run FMAs over it and A's rows widened likewise.
 *
 * C is bfloat16 (overwritten by the product plus an optional bias, rounded as bf16.h rounds) or
 * float32 (the product added to it, for a sum over blocks kept in float32). k must be even. Only for CPUs with AVX512_BF16:
 * bt_bf16_gemm_supported() says whether this one has it. bt_bf16_gemm_int8 takes W as int8 with
 * row scales and dequantizes it while packing, so an int8 layer's product reads its int8 weight
 * once and no bfloat16 copy of it is written.
 */
#include "isa_cap.h"
#include <stdint.h>
#include "bf16.h"
#include "bf16_products.h"
#include "column_blocks.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include "avx512_lanes.h"
#include "widened_rows.h"
#define BT_HAVE_BF16_GEMM_BUILD 1
#endif

int32_t bt_bf16_gemm_supported(void) {
#ifdef BT_HAVE_BF16_GEMM_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
#else
    return 0;
#endif
}

#define PANEL 32          /* columns of one packed panel: two vectors of sixteen pairs */
#define BLOCK 64          /* columns packed at a time: two panels */
#define ROWS 8            /* rows of A per tile */
#define CHUNK_PAIRS 1024  /* pairs of k packed at a time: a block (128 KiB a panel) and eight rows of A stay in L2 */
#define PACK_AHEAD 16     /* pairs of W's rows read ahead while packing B = W */


/*
 * Bytes of scratch one thread needs for an [m, k] A: a packed block of up to CHUNK_PAIRS pairs,
 * m · BLOCK float32 partial sums when k is longer than one chunk and, for the widened products,
 * the block and eight rows of A's chunk as float32. 64-byte multiples.
 */
int64_t bt_bf16_gemm_scratch_bytes(int64_t m, int64_t k) {
    int64_t pairs = k / 2, chunk = pairs < CHUNK_PAIRS ? pairs : CHUNK_PAIRS;
    int64_t bytes = BLOCK * chunk * 4 + (pairs > chunk ? m * BLOCK * 4 : 0) + BLOCK * chunk * 8 + ROWS * chunk * 8;
    return (bytes + 63) / 64 * 64;
}

#ifdef BT_HAVE_BF16_GEMM_BUILD
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define BT_BF16_INLINE BT_BF16 static inline __attribute__((always_inline))

/* A pair of bf16 read as one 32-bit word: A's and W's rows need only 2-byte alignment. */
typedef uint32_t bf16_pair __attribute__((aligned(2), may_alias));


/*
 * Panel p of the block, pair q: the 32 columns' (B[2q][j], B[2q + 1][j]) in 64 elements, so
 * packed[(p · k/2 + q) · 64 + 2j + h] = B[2q + h][p · 32 + j]. Columns past n are zeros.
 */

/*
 * Where B's numbers come from: a bfloat16 W, or an int8 W with a float32 scale per row (of W as
 * stored: a linear layer's output feature) dequantized as it is packed — int8_dequantize.c's
 * numbers (the scale rounded to bfloat16, the float32 product rounded to nearest even), so the
 * product equals the bfloat16 GEMM of the dequantized copy without that copy being written and read.
 */
typedef struct {
    const uint16_t *w;          /* bfloat16 W, or NULL */
    const int8_t *values;       /* int8 W, or NULL */
    const float *scales;        /* per row of W, with values */
    int64_t ldw;
} b_source;

BT_BF16_INLINE __m512 row_scale(const b_source *b, int64_t row) {
    return _mm512_set1_ps(bf16_to_float(float_to_bf16(b->scales[row])));
}

/*
 * Sixteen int8 times the scale, each float32 product rounded to nearest even at bit 16 (in the
 * high half of its lane): the products of int8 and a finite scale are finite, so no NaN case.
 */
BT_BF16_INLINE __m512i scaled16(__m128i v, __m512 s) {
    __m512i u = _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)), s));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
}

/* 32 elements of W's row `row` from column `col` as bfloat16 (lanes outside m zero). */
BT_BF16_INLINE __m512i row32(const b_source *b, int64_t row, int64_t col, __mmask32 m, const int int8) {
    if (!int8) return _mm512_maskz_loadu_epi16(m, b->w + row * b->ldw + col);
    const __m512i high_halves = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                                 31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    __m256i v = _mm256_maskz_loadu_epi8(m, b->values + row * b->ldw + col);
    __m512 s = row_scale(b, row);
    __m512i lo = scaled16(_mm256_castsi256_si128(v), s), hi = scaled16(_mm256_extracti128_si256(v, 1), s);
    return _mm512_permutex2var_epi16(lo, high_halves, hi);
}

/* W[row][2q], W[row][2q + 1] as one 32-bit word of two bfloat16. */
BT_BF16_INLINE uint32_t pair_at(const b_source *b, int64_t row, int64_t q, const int int8) {
    if (!int8) return *(const bf16_pair *) (b->w + row * b->ldw + 2 * q);
    const int8_t *v = b->values + row * b->ldw + 2 * q;
    float s = bf16_to_float(float_to_bf16(b->scales[row]));
    return (uint32_t) float_to_bf16((float) v[0] * s) | (uint32_t) float_to_bf16((float) v[1] * s) << 16;
}

/*
 * From W [n, k] (B = Wᵀ): B[2q + h][j] = W[j][2q + h], so each column's pairs are a row of W's
 * 32-bit words and a panel is those rows transposed — sixteen rows (from `row`) by sixteen words
 * (from pair q0) at a time in registers, the rest (a panel past n, pairs past a multiple of 16)
 * word by word.
 */
BT_BF16_INLINE void transpose16(const b_source *b, int64_t row, int64_t q0, uint32_t *dst, const int int8) {
    __m512i r[16];
    for (int i = 0; i < 16; i++) r[i] = row32(b, row + i, 2 * q0, ~(__mmask32) 0, int8);
    bt_transpose16(r);
    for (int i = 0; i < 16; i++) _mm512_storeu_si512(dst + i * PANEL, r[i]);
}

/* Columns [j0, j0 + cols), pairs [q_from, q_from + pairs) of B = Wᵀ: W's rows from j0. */
BT_BF16_INLINE void pack_transposed(const b_source *b, int64_t j0, int64_t q_from, int64_t pairs, int64_t cols, uint32_t *packed,
                                    const int int8) {
    for (int64_t p = 0; p * PANEL < cols; p++) {
        uint32_t *panel = packed + p * pairs * PANEL;
        int64_t row = j0 + p * PANEL;
        int64_t width = cols - p * PANEL < PANEL ? cols - p * PANEL : PANEL;
        int64_t q0 = 0;
        if (width == PANEL)
            for (; q0 + 16 <= pairs; q0 += 16) {
                transpose16(b, row, q_from + q0, panel + q0 * PANEL, int8);
                transpose16(b, row + 16, q_from + q0, panel + q0 * PANEL + 16, int8);
            }
        for (int64_t j = 0; j < PANEL; j++)
            for (int64_t q = q0; q < pairs; q++) panel[q * PANEL + j] = j < width ? pair_at(b, row + j, q_from + q, int8) : 0;
    }
}

/* The same from B = W [k, n]: rows 2q and 2q + 1 interleaved element by element, 32 columns per step. */
BT_BF16_INLINE void pack_interleaved(const b_source *b, int64_t j0, int64_t q_from, int64_t pairs, int64_t cols, uint32_t *packed,
                                     const int int8) {
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                        39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    int64_t panels = (cols + PANEL - 1) / PANEL;
    __mmask32 mask[BLOCK / PANEL];
    for (int64_t p = 0; p < panels; p++) {
        int64_t width = cols - p * PANEL < PANEL ? cols - p * PANEL : PANEL;
        mask[p] = width == PANEL ? ~(__mmask32) 0 : ((__mmask32) 1 << width) - 1;
    }
    /* Both panels of a pair of rows at once: W's rows lie a row stride apart (often a page or
       more), so each is reached once per chunk rather than once per panel. The hardware prefetcher
       does not follow steps that long, so the rows PACK_AHEAD pairs on are asked for here. */
    int64_t bytes = b->values ? 1 : 2;
    const char *source = b->values ? (const char *) b->values : (const char *) b->w;
    for (int64_t q = 0; q < pairs; q++) {
        if (q + PACK_AHEAD < pairs) {
            const char *ahead = source + (2 * (q_from + q + PACK_AHEAD) * b->ldw + j0) * bytes;
            for (int64_t line = 0; line < cols * bytes; line += 64) {
                _mm_prefetch(ahead + line, _MM_HINT_T0);
                _mm_prefetch(ahead + b->ldw * bytes + line, _MM_HINT_T0);
            }
        }
        for (int64_t p = 0; p < panels; p++) {
            uint32_t *panel = packed + p * pairs * PANEL;
            __m512i r0 = row32(b, 2 * (q_from + q), j0 + p * PANEL, mask[p], int8);
            __m512i r1 = row32(b, 2 * (q_from + q) + 1, j0 + p * PANEL, mask[p], int8);
            _mm512_storeu_si512(panel + q * PANEL, _mm512_permutex2var_epi16(r0, lo, r1));
            _mm512_storeu_si512(panel + q * PANEL + 16, _mm512_permutex2var_epi16(r0, hi, r1));
        }
    }
}

/* B's columns [j0, j0 + cols) and pairs [q_from, q_from + pairs) packed into panels, for each source and layout its own straight-line loop. */
BT_BF16 static void pack(const b_source *b, int32_t transposed, int64_t j0, int64_t q_from, int64_t pairs, int64_t cols, uint32_t *packed) {
    if (transposed) {
        if (b->values) pack_transposed(b, j0, q_from, pairs, cols, packed, 1);
        else pack_transposed(b, j0, q_from, pairs, cols, packed, 0);
    } else {
        if (b->values) pack_interleaved(b, j0, q_from, pairs, cols, packed, 1);
        else pack_interleaved(b, j0, q_from, pairs, cols, packed, 0);
    }
}

/* Sixteen bfloat16 bias values (those in m, the rest zero) widened to float32. */
BT_BF16_INLINE __m512 bias16(const uint16_t *bias, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, bias)), 16));
}

/* Sixteen lanes of float32 sums into C (those in m): plus the bias and rounded to bfloat16, or added to float32. */
BT_BF16_INLINE void store16(__m512 sums, const uint16_t *bias, void *c, int64_t at, int c_f32, __mmask16 m) {
    if (bias) sums = _mm512_add_ps(sums, bias16(bias, m));
    if (c_f32) {
        float *out = (float *) c + at;
        _mm512_mask_storeu_ps(out, m, _mm512_add_ps(sums, _mm512_maskz_loadu_ps(m, out)));
    } else {
        _mm256_mask_storeu_epi16((uint16_t *) c + at, m, _mm512_cvtepi32_epi16(bt_bf16_bits16(sums)));
    }
}

/*
 * A panel's 32 sums of one row into C whole, without masks: two masked halves per row ran measurably
 * slower where C's rows lie a multiple of 4 KiB apart (a layer of 4096 outputs; benchmarks/FINDINGS.md).
 */
BT_BF16_INLINE void store32(const __m512 sums[2], const uint16_t *bias, void *c, int64_t at, int c_f32) {
    __m512 s0 = sums[0], s1 = sums[1];
    if (c_f32) {
        float *out = (float *) c + at;
        _mm512_storeu_ps(out, _mm512_add_ps(s0, _mm512_loadu_ps(out)));
        _mm512_storeu_ps(out + 16, _mm512_add_ps(s1, _mm512_loadu_ps(out + 16)));
        return;
    }
    if (bias) {
        s0 = _mm512_add_ps(s0, bias16(bias, (__mmask16) 0xffff));
        s1 = _mm512_add_ps(s1, bias16(bias + 16, (__mmask16) 0xffff));
    }
    __m512i low = _mm512_castsi256_si512(_mm512_cvtepi32_epi16(bt_bf16_bits16(s0)));
    _mm512_storeu_si512((uint16_t *) c + at, _mm512_inserti64x4(low, _mm512_cvtepi32_epi16(bt_bf16_bits16(s1)), 1));
}

/*
 * A tile's float32 sums (nr rows, 32 columns) at its end: kept in `part` when later pairs of k
 * follow, else into C's columns [0, width).
 */
BT_BF16_INLINE void finish(__m512 acc[ROWS][2], const uint16_t *bias, void *c, int64_t ldc, int c_f32, int width, float *part,
                           int last, const int nr) {
    if (!last) {
        for (int r = 0; r < nr; r++) {
            _mm512_storeu_ps(part + r * BLOCK, acc[r][0]);
            _mm512_storeu_ps(part + r * BLOCK + 16, acc[r][1]);
        }
        return;
    }
    if (width == PANEL) {
        for (int r = 0; r < nr; r++) store32(acc[r], bias, c, r * ldc, c_f32);
        return;
    }
    __mmask16 m0 = width >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << width) - 1);
    __mmask16 m1 = width >= 32 ? (__mmask16) 0xffff : width <= 16 ? 0 : (__mmask16) ((1u << (width - 16)) - 1);
    for (int r = 0; r < nr; r++) {
        store16(acc[r][0], bias, c, r * ldc, c_f32, m0);
        if (m1) store16(acc[r][1], bias ? bias + 16 : bias, c, r * ldc + 16, c_f32, m1);
    }
}

/* A tile's sums at its start: zero, or the float32 partial sums `part` holds from earlier pairs (row stride BLOCK). */
BT_BF16_INLINE void start(__m512 acc[ROWS][2], const float *part, int first, const int nr) {
    for (int r = 0; r < nr; r++) {
        acc[r][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + r * BLOCK);
        acc[r][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + r * BLOCK + 16);
    }
}

/* nr (1..ROWS) rows of A times one packed panel over `pairs` pairs of k, by vdpbf16ps. */
BT_BF16_INLINE void tile(const uint16_t *a, int64_t lda, const uint32_t *panel, int64_t pairs, const uint16_t *bias,
                         void *c, int64_t ldc, int c_f32, int width, float *part, int first, int last, const int nr) {
    __m512 acc[ROWS][2];
    start(acc, part, first, nr);
    for (int64_t q = 0; q < pairs; q++) {
        __m512bh b0 = (__m512bh) _mm512_loadu_si512(panel + q * PANEL);
        __m512bh b1 = (__m512bh) _mm512_loadu_si512(panel + q * PANEL + 16);
        for (int r = 0; r < nr; r++) {
            __m512bh x = (__m512bh) _mm512_set1_epi32((int32_t) *(const bf16_pair *) (a + r * lda + 2 * q));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
    finish(acc, bias, c, ldc, c_f32, width, part, last, nr);
}

/*
 * The same by float32 FMAs: `wide` is the panel widened (wide_panel), `aw` the rows of A's chunk
 * widened (row stride 2 · pairs). Each k's 32 columns are two vectors; each row's element is
 * broadcast from memory, so no instruction besides the loads competes with the FMAs.
 */
BT_BF16_INLINE void tile_widened(const float *aw, const float *wide, int64_t pairs, const uint16_t *bias, void *c, int64_t ldc,
                                 int c_f32, int width, float *part, int first, int last, const int nr) {
    __m512 acc[ROWS][2];
    start(acc, part, first, nr);
    int64_t ldaw = 2 * pairs;
    for (int64_t q = 0; q < pairs; q++) {
        for (int h = 1; h >= 0; h--) {
            int64_t kk = 2 * q + h;
            __m512 b0 = _mm512_loadu_ps(wide + kk * PANEL);
            __m512 b1 = _mm512_loadu_ps(wide + kk * PANEL + 16);
            for (int r = 0; r < nr; r++) {
                __m512 x = _mm512_set1_ps(aw[r * ldaw + kk]);
                acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
            }
        }
    }
    finish(acc, bias, c, ldc, c_f32, width, part, last, nr);
}

BT_BF16 static void tile_widened_rows(const float *aw, const float *wide, int64_t pairs, const uint16_t *bias, void *c, int64_t ldc,
                                      int c_f32, int width, float *part, int first, int last, int64_t nr) {
    switch (nr) {
        case 8: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 8); break;
        case 7: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 7); break;
        case 6: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 6); break;
        case 5: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 5); break;
        case 4: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 4); break;
        case 3: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 3); break;
        case 2: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 2); break;
        default: tile_widened(aw, wide, pairs, bias, c, ldc, c_f32, width, part, first, last, 1); break;
    }
}

/* A packed panel's pairs widened to float32, k by k: wide[kk · 32 + j] = B[2q + h][j] for kk = 2q + h. */
BT_BF16 static void wide_panel(const uint32_t *panel, int64_t pairs, float *wide) {
    const __m512i high = _mm512_set1_epi32((int32_t) 0xffff0000u);
    for (int64_t q = 0; q < pairs; q++) {
        __m512i v0 = _mm512_loadu_si512(panel + q * PANEL), v1 = _mm512_loadu_si512(panel + q * PANEL + 16);
        _mm512_storeu_si512(wide + 2 * q * PANEL, _mm512_slli_epi32(v0, 16));
        _mm512_storeu_si512(wide + 2 * q * PANEL + 16, _mm512_slli_epi32(v1, 16));
        _mm512_storeu_si512(wide + (2 * q + 1) * PANEL, _mm512_and_si512(v0, high));
        _mm512_storeu_si512(wide + (2 * q + 1) * PANEL + 16, _mm512_and_si512(v1, high));
    }
}

BT_BF16 static void tile_rows(const uint16_t *a, int64_t lda, const uint32_t *panel, int64_t pairs, const uint16_t *bias,
                              void *c, int64_t ldc, int c_f32, int width, float *part, int first, int last, int64_t nr) {
    switch (nr) {
        case 8: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 8); break;
        case 7: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 7); break;
        case 6: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 6); break;
        case 5: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 5); break;
        case 4: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 4); break;
        case 3: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 3); break;
        case 2: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 2); break;
        default: tile(a, lda, panel, pairs, bias, c, ldc, c_f32, width, part, first, last, 1); break;
    }
}

/*
 * C's columns [from, from + count) by one thread, k in chunks of at most CHUNK_PAIRS pairs; its
 * scratch holds a packed block of one chunk and, when k has more than one, float32 partial sums
 * of every row of A for the block (bt_bf16_gemm_scratch_bytes).
 */
BT_BF16 static void columns(const uint16_t *a, int64_t lda, const b_source *b, int32_t transposed, const uint16_t *bias,
                            void *c, int64_t ldc, int32_t c_f32, int64_t m, int64_t k, int64_t from, int64_t count, uint32_t *scratch,
                            int widened) {
    size_t elem = c_f32 ? sizeof(float) : sizeof(uint16_t);
    int64_t all_pairs = k / 2, chunk = all_pairs < CHUNK_PAIRS ? all_pairs : CHUNK_PAIRS;
    uint32_t *packed = scratch;
    float *partial = (float *) (scratch + BLOCK * chunk);
    float *wide = partial + (all_pairs > chunk ? m * BLOCK : 0);
    float *aw = wide + BLOCK * chunk * 2;
    for (int64_t j = from; j < from + count; j += BLOCK) {
        int64_t cols = from + count - j < BLOCK ? from + count - j : BLOCK;
        for (int64_t q_from = 0; q_from < all_pairs; q_from += CHUNK_PAIRS) {
            int64_t pairs = all_pairs - q_from < CHUNK_PAIRS ? all_pairs - q_from : CHUNK_PAIRS;
            int first = q_from == 0, last = q_from + pairs == all_pairs;
            pack(b, transposed, j, q_from, pairs, cols, packed);
            if (widened)
                for (int64_t p = 0; p * PANEL < cols; p++) wide_panel(packed + p * pairs * PANEL, pairs, wide + p * pairs * 2 * PANEL);
            for (int64_t i = 0; i < m; i += ROWS) {
                int64_t nr = m - i < ROWS ? m - i : ROWS;
                if (widened) bt_widen_rows(a + i * lda + 2 * q_from, lda, nr, 2 * pairs, aw, 2 * pairs);
                for (int64_t p = 0; p * PANEL < cols; p++) {
                    int width = (int) (cols - p * PANEL < PANEL ? cols - p * PANEL : PANEL);
                    char *out = (char *) c + ((size_t) (i * ldc + j + p * PANEL)) * elem;
                    const uint16_t *bias_p = bias ? bias + j + p * PANEL : bias;
                    float *part = partial + i * BLOCK + p * PANEL;
                    if (widened)
                        tile_widened_rows(aw, wide + p * pairs * 2 * PANEL, pairs, bias_p, out, ldc, c_f32, width, part, first, last, nr);
                    else
                        tile_rows(a + i * lda + 2 * q_from, lda, packed + p * pairs * PANEL, pairs, bias_p, out, ldc, c_f32, width, part,
                                  first, last, nr);
                }
            }
        }
    }
}

/* One call's operands, for the threads' blocks of columns. */
typedef struct {
    const uint16_t *a;
    int64_t lda;
    const b_source *b;
    int32_t transposed;
    const uint16_t *bias;
    void *c;
    int64_t ldc;
    int32_t c_f32;
    int64_t m, k;
    uint32_t *packed;
    int64_t scratch;            /* words of packed per thread */
    int widened;                /* BT_BF16_PRODUCTS_WIDENED */
} product;

BT_BF16 static void column_block(void *context, int64_t from, int64_t count, int thread) {
    const product *p = context;
    columns(p->a, p->lda, p->b, p->transposed, p->bias, p->c, p->ldc, p->c_f32, p->m, p->k, from, count, p->packed + thread * p->scratch,
            p->widened);
}

static void gemm(const uint16_t *a, int64_t lda, const b_source *b, int32_t transposed, const uint16_t *bias, void *c, int64_t ldc,
                 int32_t c_f32, int64_t m, int64_t n, int64_t k, uint32_t *packed, int32_t threads) {
    product p = { a, lda, b, transposed, bias, c, ldc, c_f32, m, k, packed, bt_bf16_gemm_scratch_bytes(m, k) / (int64_t) sizeof(uint32_t),
                  bt_bf16_gemm_products() == BT_BF16_PRODUCTS_WIDENED };
    bt_column_blocks(n, BLOCK, threads, column_block, &p);
}
#endif

/*
 * a [m, k] bf16 (row stride lda); w as described above (row stride ldw), transposed = 1 for
 * B = Wᵀ with W [n, k], 0 for B = W with W [k, n]; bias [n] bf16 or NULL (bfloat16 C only);
 * c [m, n] (row stride ldc) bfloat16, or float32 added to when c_f32; packed: scratch for this
 * call alone, bt_bf16_gemm_scratch_bytes(m, k) for each of up to `threads` threads.
 */
void bt_bf16_gemm(const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw, int32_t transposed, const uint16_t *bias,
                  void *c, int64_t ldc, int32_t c_f32, int64_t m, int64_t n, int64_t k, uint32_t *packed, int32_t threads) {
#ifdef BT_HAVE_BF16_GEMM_BUILD
    b_source b = { w, NULL, NULL, ldw };
    gemm(a, lda, &b, transposed, bias, c, ldc, c_f32, m, n, k, packed, threads);
#else
    (void) a; (void) lda; (void) w; (void) ldw; (void) transposed; (void) bias; (void) c; (void) ldc; (void) c_f32;
    (void) m; (void) n; (void) k; (void) packed; (void) threads;
#endif
}

/*
 * bt_bf16_gemm with W int8 (`values`, row stride ldw) and `scales` one float32 per row of W as
 * stored ([n] when transposed, [k] otherwise): the product of the dequantized weight, dequantized
 * as it is packed.
 */
void bt_bf16_gemm_int8(const uint16_t *a, int64_t lda, const int8_t *values, const float *scales, int64_t ldw, int32_t transposed,
                       const uint16_t *bias, void *c, int64_t ldc, int32_t c_f32, int64_t m, int64_t n, int64_t k, uint32_t *packed,
                       int32_t threads) {
#ifdef BT_HAVE_BF16_GEMM_BUILD
    b_source b = { NULL, values, scales, ldw };
    gemm(a, lda, &b, transposed, bias, c, ldc, c_f32, m, n, k, packed, threads);
#else
    (void) a; (void) lda; (void) values; (void) scales; (void) ldw; (void) transposed; (void) bias; (void) c; (void) ldc;
    (void) c_f32; (void) m; (void) n; (void) k; (void) packed; (void) threads;
#endif
}
