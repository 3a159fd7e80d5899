/*
 * C = A · B in float32 for the training step's many-row products, by AVX-512F FMAs: y = x Wᵀ
 * (B = Wᵀ, W [n, k] as a linear layer keeps it) and dx = dy W (B = W [k, n]) — bf16_gemm.c's
 * scheme with float32 elements. libtorch's float32 products go to OpenBLAS, whose kernel is
 * whatever it picks for the CPU or OPENBLAS_CORETYPE names: on a machine that pins an AVX2 core
 * type (as some do for older OpenBLAS builds) it multiplies at half of what AVX-512 FMAs do
 * (benchmarks/FINDINGS.md). This one does not depend on that choice.
 *
 * libtorch's OpenMP threads take C's columns 64 at a time (column_blocks.h). For those 64
 * columns and up to CHUNK_K of k at a time a thread packs B into panels of 32 columns, each k's 32 elements side by
 * side — from Wᵀ a transpose, from W a copy of two row segments — then runs an 8-row × 32-column
 * tile of sixteen accumulators over the chunk for each eight rows of A: each k loads two vectors
 * of B and broadcasts one element of each of eight rows of A for sixteen FMAs. A longer k carries
 * float32 partial sums from one chunk to the next, so every output sums its k products in order.
 *
 * C is overwritten by the product plus an optional bias, or has the product added to it. Only for
 * CPUs with AVX-512F: bt_f32_gemm_supported() says whether this one has it.
 */
#include "isa_cap.h"
#include <stdint.h>
#include "column_blocks.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#include "avx512_lanes.h"
#define BT_HAVE_F32_GEMM_BUILD 1
#endif

int32_t bt_f32_gemm_supported(void) {
#ifdef BT_HAVE_F32_GEMM_BUILD
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

#define PANEL 32          /* columns of one packed panel: two vectors of sixteen floats */
#define BLOCK 64          /* columns packed at a time: two panels */
#define ROWS 8            /* rows of A per tile */
#define CHUNK_K 1024      /* k packed at a time: a block (128 KiB a panel) and eight rows of A stay in L2 */
#define PACK_AHEAD 8      /* rows of W read ahead while packing B = W */

/*
 * Bytes of scratch one thread needs for an [m, k] A: a packed block of up to CHUNK_K of k, and
 * m · BLOCK float32 partial sums when k is longer than one chunk. 64-byte multiples.
 */
int64_t bt_f32_gemm_scratch_bytes(int64_t m, int64_t k) {
    int64_t chunk = k < CHUNK_K ? k : CHUNK_K;
    int64_t bytes = BLOCK * chunk * 4 + (k > chunk ? m * BLOCK * 4 : 0);
    return (bytes + 63) / 64 * 64;
}

#ifdef BT_HAVE_F32_GEMM_BUILD
#define BT_F32 __attribute__((target("avx512f")))
#define BT_F32_INLINE BT_F32 static inline __attribute__((always_inline))

/*
 * Panel p of the block, k index q: the 32 columns' B[q][j] side by side, so packed[(p · kc + q) ·
 * 32 + j] = B[q_from + q][j0 + p · 32 + j]. Columns past n are zeros.
 */

/* From W [n, k] (B = Wᵀ): sixteen rows of W (from `row`) by sixteen of k (from q0) transposed in registers. */
BT_F32_INLINE void transpose16(const float *w, int64_t ldw, int64_t row, int64_t q0, float *dst) {
    __m512i r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(w + (row + i) * ldw + q0);
    bt_transpose16(r);
    for (int i = 0; i < 16; i++) _mm512_storeu_si512(dst + i * PANEL, r[i]);
}

/* Columns [j0, j0 + cols), k [q_from, q_from + kc) of B = Wᵀ: W's rows from j0. */
BT_F32_INLINE void pack_transposed(const float *w, int64_t ldw, int64_t j0, int64_t q_from, int64_t kc, int64_t cols, float *packed) {
    for (int64_t p = 0; p * PANEL < cols; p++) {
        float *panel = packed + p * kc * PANEL;
        int64_t row = j0 + p * PANEL;
        int64_t width = cols - p * PANEL < PANEL ? cols - p * PANEL : PANEL;
        int64_t q0 = 0;
        if (width == PANEL)
            for (; q0 + 16 <= kc; q0 += 16) {
                transpose16(w, ldw, row, q_from + q0, panel + q0 * PANEL);
                transpose16(w, ldw, row + 16, q_from + q0, panel + q0 * PANEL + 16);
            }
        for (int64_t j = 0; j < PANEL; j++)
            for (int64_t q = q0; q < kc; q++) panel[q * PANEL + j] = j < width ? w[(row + j) * ldw + q_from + q] : 0.0f;
    }
}

/* The same from B = W [k, n]: each k's 32 columns copied, both panels of a row of W at once. */
BT_F32_INLINE void pack_rows(const float *w, int64_t ldw, int64_t j0, int64_t q_from, int64_t kc, int64_t cols, float *packed) {
    int64_t panels = (cols + PANEL - 1) / PANEL;
    for (int64_t q = 0; q < kc; q++) {
        /* W's rows lie a row stride apart (often a page or more): the hardware prefetcher does not
           follow steps that long, so the rows PACK_AHEAD on are asked for here. */
        if (q + PACK_AHEAD < kc) {
            const char *ahead = (const char *) (w + (q_from + q + PACK_AHEAD) * ldw + j0);
            for (int64_t line = 0; line < cols * 4; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
        }
        const float *src = w + (q_from + q) * ldw + j0;
        for (int64_t p = 0; p < panels; p++) {
            float *dst = packed + (p * kc + q) * PANEL;
            _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps(bt_lanes16(cols - p * PANEL), src + p * PANEL));
            _mm512_storeu_ps(dst + 16, _mm512_maskz_loadu_ps(bt_lanes16(cols - p * PANEL - 16), src + p * PANEL + 16));
        }
    }
}

/* Sixteen lanes of sums into C (those in m): plus the bias, or added to what C holds. */
BT_F32_INLINE void store16(__m512 sums, const float *bias, float *c, int add, __mmask16 m) {
    if (bias) sums = _mm512_add_ps(sums, _mm512_maskz_loadu_ps(m, bias));
    if (add) sums = _mm512_add_ps(sums, _mm512_maskz_loadu_ps(m, c));
    _mm512_mask_storeu_ps(c, m, sums);
}

/*
 * nr (1..ROWS) rows of A times one packed panel over kc of k. The sums start at zero, or at the
 * partial sums `part` holds from earlier k (row stride BLOCK); they end in `part` when later k
 * follow, else in C's columns [0, width).
 */
BT_F32_INLINE void tile(const float *a, int64_t lda, const float *panel, int64_t kc, const float *bias, float *c, int64_t ldc, int add,
                        int width, float *part, int first, int last, const int nr) {
    __m512 acc[ROWS][2];
    for (int r = 0; r < nr; r++) {
        acc[r][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + r * BLOCK);
        acc[r][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + r * BLOCK + 16);
    }
    for (int64_t q = 0; q < kc; q++) {
        __m512 b0 = _mm512_loadu_ps(panel + q * PANEL);
        __m512 b1 = _mm512_loadu_ps(panel + q * PANEL + 16);
        for (int r = 0; r < nr; r++) {
            __m512 x = _mm512_set1_ps(a[r * lda + q]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    if (!last) {
        for (int r = 0; r < nr; r++) {
            _mm512_storeu_ps(part + r * BLOCK, acc[r][0]);
            _mm512_storeu_ps(part + r * BLOCK + 16, acc[r][1]);
        }
        return;
    }
    __mmask16 m0 = bt_lanes16(width), m1 = bt_lanes16(width - 16);
    for (int r = 0; r < nr; r++) {
        store16(acc[r][0], bias, c + r * ldc, add, m0);
        if (m1) store16(acc[r][1], bias ? bias + 16 : bias, c + r * ldc + 16, add, m1);
    }
}

BT_F32 static void tile_rows(const float *a, int64_t lda, const float *panel, int64_t kc, const float *bias, float *c, int64_t ldc,
                             int add, int width, float *part, int first, int last, int64_t nr) {
    switch (nr) {
        case 8: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 8); break;
        case 7: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 7); break;
        case 6: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 6); break;
        case 5: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 5); break;
        case 4: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 4); break;
        case 3: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 3); break;
        case 2: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 2); break;
        default: tile(a, lda, panel, kc, bias, c, ldc, add, width, part, first, last, 1); break;
    }
}

/*
 * C's columns [from, from + count) by one thread, k in chunks of at most CHUNK_K; its scratch holds
 * a packed block of one chunk and, when k has more than one, partial sums of every row of A for
 * the block (bt_f32_gemm_scratch_bytes).
 */
BT_F32 static void columns(const float *a, int64_t lda, const float *w, int64_t ldw, int32_t transposed, const float *bias, float *c,
                           int64_t ldc, int32_t add, int64_t m, int64_t k, int64_t from, int64_t count, float *scratch) {
    float *packed = scratch;
    float *partial = scratch + BLOCK * (k < CHUNK_K ? k : CHUNK_K);
    for (int64_t j = from; j < from + count; j += BLOCK) {
        int64_t cols = from + count - j < BLOCK ? from + count - j : BLOCK;
        for (int64_t q_from = 0; q_from < k; q_from += CHUNK_K) {
            int64_t kc = k - q_from < CHUNK_K ? k - q_from : CHUNK_K;
            int first = q_from == 0, last = q_from + kc == k;
            if (transposed) pack_transposed(w, ldw, j, q_from, kc, cols, packed);
            else pack_rows(w, ldw, j, q_from, kc, cols, packed);
            for (int64_t i = 0; i < m; i += ROWS) {
                int64_t nr = m - i < ROWS ? m - i : ROWS;
                for (int64_t p = 0; p * PANEL < cols; p++) {
                    int width = (int) (cols - p * PANEL < PANEL ? cols - p * PANEL : PANEL);
                    tile_rows(a + i * lda + q_from, lda, packed + p * kc * PANEL, kc, bias ? bias + j + p * PANEL : bias,
                              c + i * ldc + j + p * PANEL, ldc, add, width, partial + i * BLOCK + p * PANEL, first, last, nr);
                }
            }
        }
    }
}

/* One call's operands, for the threads' blocks of columns. */
typedef struct {
    const float *a;
    int64_t lda;
    const float *w;
    int64_t ldw;
    int32_t transposed;
    const float *bias;
    float *c;
    int64_t ldc;
    int32_t add;
    int64_t m, k;
    float *packed;
    int64_t scratch;            /* floats of packed per thread */
} product;

BT_F32 static void column_block(void *context, int64_t from, int64_t count, int thread) {
    const product *p = context;
    columns(p->a, p->lda, p->w, p->ldw, p->transposed, p->bias, p->c, p->ldc, p->add, p->m, p->k, from, count, p->packed + thread * p->scratch);
}
#endif

/*
 * a [m, k] (row stride lda); w with row stride ldw, transposed = 1 for B = Wᵀ with W [n, k], 0 for
 * B = W with W [k, n]; bias [n] or NULL; c [m, n] (row stride ldc) overwritten, or added to when
 * `add`; all float32. packed: scratch for this call alone, bt_f32_gemm_scratch_bytes(m, k) for each
 * of up to `threads` threads.
 */
void bt_f32_gemm(const float *a, int64_t lda, const float *w, int64_t ldw, int32_t transposed, const float *bias, float *c, int64_t ldc,
                 int32_t add, int64_t m, int64_t n, int64_t k, float *packed, int32_t threads) {
#ifdef BT_HAVE_F32_GEMM_BUILD
    product p = { a, lda, w, ldw, transposed, bias, c, ldc, add, m, k, packed, bt_f32_gemm_scratch_bytes(m, k) / (int64_t) sizeof(float) };
    bt_column_blocks(n, BLOCK, threads, column_block, &p);
#else
    (void) a; (void) lda; (void) w; (void) ldw; (void) transposed; (void) bias; (void) c; (void) ldc; (void) add;
    (void) m; (void) n; (void) k; (void) packed; (void) threads;
#endif
}
