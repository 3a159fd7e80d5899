/*
 * BLOOM's eager attention in bfloat16 for a call without cached keys — the scores, HF's masked
 * probabilities and the attended values — and its backward to the fused QKV, one (row, head) pair
 * at a time, where libtorch runs six batched products (oneDNN), the copies that split the heads out
 * of the fused projection and merge them back, and their backwards.
 *
 * The numbers are HF's chain's: each product sums in float32 and is rounded to bfloat16 once (the
 * scores after α and the ALiBi bias are applied, as baddbmm does), the probabilities and the
 * scores' gradient come from masked_softmax.c's rows, and the backward rounds dP, dV, dQ and dK
 * where libtorch's bmm backwards do (dQ and dK rounded, scaled by α = 1/√head_dim and rounded
 * again, as bmm then mul). Only the order of the float32 sums differs. The backward forms the
 * probabilities again from q, k and the bias — the same bits — rather than keep a float32 [T, T]
 * per pair and layer.
 *
 * What a mask makes zero is not computed: a probability (and a score's gradient) is exactly 0
 * wherever its key is masked, unless the whole row is (then HF's probabilities are uniform), so
 * the products over keys stop at each tile's last visible key, and scores and dP are only formed
 * where a tile of queries sees some key — under a causal mask about half of every product.
 *
 * The products run on AVX512_BF16's vdpbf16ps: B packed as pairs of k side by side in each 32-bit
 * lane, A's pair of k broadcast, a tile of six rows by 64 columns in 24 accumulators. Only for CPUs
 * with AVX512_BF16 (bt_bf16_rows_supported()); the caller keeps libtorch's ops otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "bf16.h"
#include "masked_softmax.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include "avx512_lanes.h"
#define BT_HAVE_BF16_BUILD 1
#endif

#ifdef BT_HAVE_BF16_BUILD
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define BT_BF16_INLINE BT_BF16 static inline __attribute__((always_inline))

#include "attention_visibility.h"
#define MR BT_ATTENTION_MR
#define NB BT_ATTENTION_NB

/* 16 float32 lanes rounded to bfloat16 as float_to_bf16 rounds, packed into 16 words. */
BT_BF16_INLINE __m256i to_bf16(__m512 v) { return _mm512_cvtepi32_epi16(bt_bf16_bits16(v)); }

/*
 * Where a product's tile goes: float32 into c, or into the first n columns of out in bfloat16 as
 * scale · sum (+ the bias of its column) rounded once — baddbmm's forward — or, with rounded_first,
 * the sum rounded, scaled and rounded again — libtorch's bmm then mul of its backward (the same
 * when scale is a power of two).
 */
typedef struct {
    float *c;
    int64_t ldc;
    uint16_t *out;
    int64_t ld, n;
    float scale;
    const uint16_t *bias;
    int rounded_first;
} sink;

/*
 * Rows [r0, r0 + mr) and columns [j0, j0 + 64) of the product into `to`: Σ over pairs kp in [kp0,
 * kp1) of A's pair (a[r · lda + kp], two bfloat16 in a 32-bit word) times B's 64 columns of that
 * pair (b + kp · ldb, each 32-bit lane a pair of k).
 */
BT_BF16_INLINE void tile(const uint32_t *a, int64_t lda, const uint32_t *b, int64_t ldb, int64_t kp0, int64_t kp1,
                         sink to, int64_t r0, int64_t j0, const int mr) {
    __m512 acc[MR][4];
    for (int r = 0; r < mr; r++) for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t kp = kp0; kp < kp1; kp++) {
        const uint32_t *bk = b + kp * ldb;
        __m512bh b0 = (__m512bh) _mm512_loadu_si512(bk), b1 = (__m512bh) _mm512_loadu_si512(bk + 16);
        __m512bh b2 = (__m512bh) _mm512_loadu_si512(bk + 32), b3 = (__m512bh) _mm512_loadu_si512(bk + 48);
        for (int r = 0; r < mr; r++) {
            __m512bh av = (__m512bh) _mm512_set1_epi32((int) a[r * lda + kp]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], av, b2);
            acc[r][3] = _mm512_dpbf16_ps(acc[r][3], av, b3);
        }
    }
    if (to.c) {
        for (int r = 0; r < mr; r++) for (int q = 0; q < 4; q++) _mm512_storeu_ps(to.c + (r0 + r) * to.ldc + j0 + 16 * q, acc[r][q]);
        return;
    }
    __m512 scale = _mm512_set1_ps(to.scale);
    for (int q = 0; q < 4; q++) {
        int64_t j = j0 + 16 * q;
        __mmask16 m = bt_lanes16(to.n - j);
        if (!m) break;
        __m512 bias = to.bias ? bt_bf16_widen16(_mm256_maskz_loadu_epi16(m, to.bias + j)) : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++) {
            __m512 sum = to.rounded_first ? bt_bf16_widen16(to_bf16(acc[r][q])) : acc[r][q];
            _mm256_mask_storeu_epi16(to.out + (r0 + r) * to.ld + j, m, to_bf16(_mm512_fmadd_ps(scale, sum, bias)));
        }
    }
}

BT_BF16 static void tile_rows(const uint32_t *a, int64_t lda, const uint32_t *b, int64_t ldb, int64_t kp0, int64_t kp1,
                              sink to, int64_t r0, int64_t j0, int64_t mr) {
    switch (mr) {
        case 1: tile(a, lda, b, ldb, kp0, kp1, to, r0, j0, 1); break;
        case 2: tile(a, lda, b, ldb, kp0, kp1, to, r0, j0, 2); break;
        case 3: tile(a, lda, b, ldb, kp0, kp1, to, r0, j0, 3); break;
        case 4: tile(a, lda, b, ldb, kp0, kp1, to, r0, j0, 4); break;
        case 5: tile(a, lda, b, ldb, kp0, kp1, to, r0, j0, 5); break;
        default: tile(a, lda, b, ldb, kp0, kp1, to, r0, j0, MR); break;
    }
}

/*
 * The pairs of k a product needs, and where: by tile of rows (rows[2i], rows[2i + 1] for the rows
 * from i · MR), by block of 64 columns (cols[2j], cols[2j + 1]), or, with neither, all `pairs`; an
 * empty range gives zeros. Where only some column blocks are wanted, a tile of rows i forms blocks
 * [blocks[2i], blocks[2i + 1]) and leaves the others unwritten.
 */
typedef struct {
    const int64_t *rows, *cols, *blocks;
    int64_t pairs;
} k_ranges;

/* The product A · B [m, n64] (n64 a multiple of 64) over the pairs of k that ranges give, into `to`. */
BT_BF16 static void product(const uint32_t *a, int64_t lda, const uint32_t *b, int64_t ldb, int64_t m, int64_t n64, k_ranges ranges,
                            sink to) {
    for (int64_t i = 0; i * MR < m; i++) {
        int64_t r0 = i * MR, mr = m - r0 < MR ? m - r0 : MR;
        for (int64_t j = 0; j < n64 / NB; j++) {
            if (ranges.blocks && (j < ranges.blocks[2 * i] || j >= ranges.blocks[2 * i + 1])) continue;
            const int64_t *k = ranges.cols ? ranges.cols + 2 * j : ranges.rows ? ranges.rows + 2 * i : NULL;
            tile_rows(a + r0 * lda, lda, b + j * NB, ldb, k ? k[0] : 0, k ? k[1] : ranges.pairs, to, r0, j * NB, mr);
        }
    }
}

/* dst [k / 2][ld] from n rows of k bfloat16 (row stride `stride`): dst[p][s] = row s's pair p, 0 for s ≥ n; sixteen by sixteen. */
BT_BF16 static void pack_row_pairs_transposed(const uint16_t *src, int64_t stride, int64_t n, int64_t k, uint32_t *dst, int64_t ld) {
    int64_t pairs = k / 2;
    for (int64_t s0 = 0; s0 < ld; s0 += 16) {
        __mmask16 out = bt_lanes16(ld - s0);
        for (int64_t p0 = 0; p0 < pairs; p0 += 16) {
            __mmask16 m = bt_lanes16(pairs - p0);
            __m512i v[16];
            for (int i = 0; i < 16; i++)
                v[i] = s0 + i < n ? _mm512_maskz_loadu_epi32(m, (const uint32_t *) (src + (s0 + i) * stride) + p0) : _mm512_setzero_si512();
            bt_transpose16(v);
            for (int64_t p = 0; p < 16 && p0 + p < pairs; p++) _mm512_mask_storeu_epi32(dst + (p0 + p) * ld + s0, out, v[p]);
        }
    }
}

/* dst [ceil(n / 2)][ld] from n rows of k bfloat16: dst[p][j] = (row 2p's j, row 2p + 1's j), 0 past n rows and k columns. */
BT_BF16 static void pack_rows_interleaved(const uint16_t *src, int64_t stride, int64_t n, int64_t k, uint32_t *dst, int64_t ld) {
    for (int64_t p = 0; 2 * p < n; p++) {
        const uint16_t *even = src + 2 * p * stride, *odd = even + stride;
        int have_odd = 2 * p + 1 < n;
        uint32_t *d = dst + p * ld;
        for (int64_t j = 0; j < ld; j += 16) {
            __mmask16 m = bt_lanes16(k - j);
            __m512i e = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, even + j));
            __m512i o = have_odd ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, odd + j)) : _mm512_setzero_si512();
            _mm512_storeu_si512(d + j, _mm512_or_si512(e, _mm512_slli_epi32(o, 16)));
        }
    }
}

/* dst [k][ld] from n rows of k bfloat16: dst[j][p] = (row 2p's j, row 2p + 1's j) for p < ceil(n / 2); sixteen by sixteen. */
BT_BF16 static void pack_columns_pairs(const uint16_t *src, int64_t stride, int64_t n, int64_t k, uint32_t *dst, int64_t ld) {
    int64_t pairs = (n + 1) / 2;
    for (int64_t p0 = 0; p0 < pairs; p0 += 16) {
        __mmask16 out = bt_lanes16(pairs - p0);
        for (int64_t j0 = 0; j0 < k; j0 += 16) {
            __mmask16 m = bt_lanes16(k - j0);
            __m512i w[16];
            for (int i = 0; i < 16; i++) {
                int64_t even = 2 * (p0 + i);
                __m512i e = even < n ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + even * stride + j0)) : _mm512_setzero_si512();
                __m512i o = even + 1 < n ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + (even + 1) * stride + j0)) : _mm512_setzero_si512();
                w[i] = _mm512_or_si512(e, _mm512_slli_epi32(o, 16));
            }
            bt_transpose16(w);
            for (int64_t j = 0; j < 16 && j0 + j < k; j++) _mm512_mask_storeu_epi32(dst + (j0 + j) * ld + p0, out, w[j]);
        }
    }
}

/*
 * out [n, rows] (bfloat16, row stride ld) = cᵀ for c [rows, n] (float32), sixteen by sixteen, each
 * element rounded, times scale and rounded again (as sink's rounded_first).
 */
BT_BF16 static void store_transposed(const float *c, int64_t ldc, int64_t rows, int64_t n, float scale, uint16_t *out, int64_t ld) {
    __m512 sc = _mm512_set1_ps(scale);
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        __mmask16 width = bt_lanes16(rows - r0);
        for (int64_t j0 = 0; j0 < n; j0 += 16) {
            __mmask16 m = bt_lanes16(n - j0);
            __m512i v[16];
            for (int i = 0; i < 16; i++)
                v[i] = r0 + i < rows ? _mm512_castps_si512(_mm512_mul_ps(sc, bt_bf16_widen16(to_bf16(_mm512_maskz_loadu_ps(m, c + (r0 + i) * ldc + j0)))))
                                     : _mm512_setzero_si512();
            bt_transpose16(v);
            for (int64_t j = 0; j < 16 && j0 + j < n; j++)
                _mm256_mask_storeu_epi16(out + (j0 + j) * ld + r0, width, to_bf16(_mm512_castsi512_ps(v[j])));
        }
    }
}

/* One thread's buffers, sized for t queries, s keys and head size hd, carved from its share of the caller's scratch. */
typedef struct {
    int64_t s2, s64, t2, hd64;
    uint32_t *pack_a, *pack_b;
    uint16_t *p16, *g16;
    float *c, *p32;             /* p32: a pair's float32 probabilities [t, s], rows within their visible keys */
} scratch;

/* Lays out w over base (NULL: only counts); returns the bytes it takes, each buffer 64-byte aligned. */
static int64_t scratch_layout(scratch *w, char *base, int64_t t, int64_t s, int64_t hd) {
    w->s2 = round_up(s, 2);
    w->s64 = round_up(s, NB);
    w->t2 = round_up(t, 2);
    w->hd64 = round_up(hd, NB);
    int64_t widest = w->s64 > w->hd64 ? w->s64 : w->hd64;
    int64_t pairs = (w->s2 > w->t2 ? w->s2 : w->t2) / 2;
    int64_t at = 0;
#define BT_CARVE(field, type, count) do { w->field = base ? (type *) (base + at) : NULL; at += round_up((int64_t) (count) * (int64_t) sizeof(type), 64); } while (0)
    BT_CARVE(pack_a, uint32_t, w->hd64 * (w->t2 / 2));
    BT_CARVE(pack_b, uint32_t, (pairs > hd / 2 ? pairs : hd / 2) * widest);
    BT_CARVE(p16, uint16_t, t * w->s2);
    BT_CARVE(g16, uint16_t, t * w->s2);
    BT_CARVE(c, float, hd * w->s64);
    BT_CARVE(p32, float, t * s);
#undef BT_CARVE
    return at;
}

/*
 * The masked softmax of one row over its visible keys [lo, hi): the same numbers as over all s (a
 * masked key's exp is 0). out (bfloat16, s2 wide) is 0 around them; p (float32) is written only
 * within them, all the backward reads of it.
 */
static void softmax_row(const uint16_t *score, const uint8_t *mask, float *p, uint16_t *out, int64_t lo, int64_t hi, int64_t s2) {
    memset(out, 0, lo * sizeof(uint16_t));
    bt_masked_softmax_row(score + lo, mask + lo, p + lo, out + lo, hi - lo);
    memset(out + hi, 0, (s2 - hi) * sizeof(uint16_t));
}

/*
 * A pair's probabilities: the scores α q kᵀ + alibi, rounded once, where a tile of queries sees keys,
 * then the masked softmax row by row into w->p32 (float32) and w->p16 (bfloat16, rows of s2). The
 * backward calls it again rather than keep the float32 probabilities of every layer: the same
 * inputs give the same bits.
 */
BT_BF16 static void probabilities(const uint16_t *q, const uint16_t *k, int64_t qkv_ld, const uint16_t *alibi, const uint8_t *mask,
                                  const visibility *vis, int64_t t, int64_t s, int64_t hd, float alpha, scratch *w) {
    pack_row_pairs_transposed(k, qkv_ld, s, hd, w->pack_b, w->s64);
    product((const uint32_t *) q, qkv_ld / 2, w->pack_b, w->s64, t, w->s64, (k_ranges) {.blocks = vis->qblocks, .pairs = hd / 2},
            (sink) {.out = w->g16, .ld = w->s2, .n = s, .scale = alpha, .bias = alibi});
    for (int64_t i = 0; i < t; i++)
        softmax_row(w->g16 + i * w->s2, mask + i * s, w->p32 + i * s, w->p16 + i * w->s2, vis->lo[i], vis->hi[i], w->s2);
}

/* One pair's forward: the attended values into merged. q, k and v point at the pair's first position in the fused QKV (row stride qkv_ld). */
BT_BF16 static void pair_forward(const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t qkv_ld, const uint16_t *alibi,
                                 const uint8_t *mask, const visibility *vis, uint16_t *merged, int64_t merged_ld,
                                 int64_t t, int64_t s, int64_t hd, float alpha, scratch *w) {
    probabilities(q, k, qkv_ld, alibi, mask, vis, t, s, hd, alpha, w);
    /* context = p v */
    pack_rows_interleaved(v, qkv_ld, s, hd, w->pack_b, w->hd64);
    product((const uint32_t *) w->p16, w->s2 / 2, w->pack_b, w->hd64, t, w->hd64, (k_ranges) {vis->qkp, NULL, NULL},
            (sink) {.out = merged, .ld = merged_ld, .n = hd, .scale = 1.0f});
}

/* One pair's backward from the attended values' gradient dc (row stride dc_ld) into the fused QKV's gradient dq, dk, dv. */
BT_BF16 static void pair_backward(const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t qkv_ld, const uint16_t *alibi,
                                  const uint8_t *mask, const visibility *vis, const uint16_t *dc, int64_t dc_ld, uint16_t *dq,
                                  uint16_t *dk, uint16_t *dv, int64_t t, int64_t s, int64_t hd, float alpha, scratch *w) {
    probabilities(q, k, qkv_ld, alibi, mask, vis, t, s, hd, alpha, w);
    /* dvᵀ = dcᵀ p: [hd, s], each block of keys over the queries that see it */
    pack_columns_pairs(dc, dc_ld, t, hd, w->pack_a, w->t2 / 2);
    pack_rows_interleaved(w->p16, w->s2, t, s, w->pack_b, w->s64);
    product(w->pack_a, w->t2 / 2, w->pack_b, w->s64, hd, w->s64, (k_ranges) {NULL, vis->kkp, NULL}, (sink) {.c = w->c, .ldc = w->s64});
    store_transposed(w->c, w->s64, hd, s, 1.0f, dv, qkv_ld);
    /* dp = dc vᵀ where a tile of queries sees keys, then the scores' gradient in place of p */
    pack_row_pairs_transposed(v, qkv_ld, s, hd, w->pack_b, w->s64);
    product((const uint32_t *) dc, dc_ld / 2, w->pack_b, w->s64, t, w->s64, (k_ranges) {.blocks = vis->qblocks, .pairs = hd / 2},
            (sink) {.out = w->g16, .ld = w->s2, .n = s, .scale = 1.0f});
    for (int64_t i = 0; i < t; i++) {
        uint16_t *ds = w->p16 + i * w->s2;
        int64_t lo = vis->lo[i], hi = vis->hi[i];
        memset(ds, 0, lo * sizeof(uint16_t));
        bt_masked_softmax_row_backward(w->g16 + i * w->s2 + lo, w->p32 + i * s + lo, mask + i * s + lo, ds + lo, hi - lo);
        memset(ds + hi, 0, (w->s2 - hi) * sizeof(uint16_t));
    }
    /* dq = α ds k */
    pack_rows_interleaved(k, qkv_ld, s, hd, w->pack_b, w->hd64);
    product((const uint32_t *) w->p16, w->s2 / 2, w->pack_b, w->hd64, t, w->hd64, (k_ranges) {vis->qkp, NULL, NULL},
            (sink) {.out = dq, .ld = qkv_ld, .n = hd, .scale = alpha, .rounded_first = 1});
    /* dkᵀ = α qᵀ ds: [hd, s] */
    pack_columns_pairs(q, qkv_ld, t, hd, w->pack_a, w->t2 / 2);
    pack_rows_interleaved(w->p16, w->s2, t, s, w->pack_b, w->s64);
    product(w->pack_a, w->t2 / 2, w->pack_b, w->s64, hd, w->s64, (k_ranges) {NULL, vis->kkp, NULL}, (sink) {.c = w->c, .ldc = w->s64});
    store_transposed(w->c, w->s64, hd, s, alpha, dk, qkv_ld);
}
#endif

/* The forward (dqkv NULL: merged is written) or the backward (merged holds the gradient read), pairs split over the threads. */
static int32_t run(const uint16_t *qkv, const uint16_t *alibi, const uint8_t *mask, uint16_t *merged, uint16_t *dqkv, void *scratch_base,
                   int64_t batch, int64_t heads, int64_t t, int64_t hd, float alpha, int32_t threads) {
#ifdef BT_HAVE_BF16_BUILD
    int64_t qkv_ld = heads * 3 * hd;
    visibility *vis = visibility_of(mask, batch, t, t);
    if (vis == NULL) return -1;
    scratch none;
    int64_t share = scratch_layout(&none, NULL, t, t, hd);
#pragma omp parallel num_threads(threads < 1 ? 1 : threads)
    {
        scratch w;
        scratch_layout(&w, (char *) scratch_base + omp_get_thread_num() * share, t, t, hd);
#pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < batch * heads; bh++) {
            int64_t b = bh / heads, h = bh % heads, at = b * t * qkv_ld + h * 3 * hd;
            const uint16_t *q = qkv + at;
            uint16_t *m = merged + b * t * heads * hd + h * hd;
            if (dqkv == NULL) {
                pair_forward(q, q + hd, q + 2 * hd, qkv_ld, alibi + bh * t, mask + b * t * t, vis + b, m, heads * hd, t, t, hd, alpha, &w);
            } else {
                uint16_t *dq = dqkv + at;
                pair_backward(q, q + hd, q + 2 * hd, qkv_ld, alibi + bh * t, mask + b * t * t, vis + b, m, heads * hd, dq, dq + hd, dq + 2 * hd,
                              t, t, hd, alpha, &w);
            }
        }
    }
    visibility_free(vis, batch);
    return 0;
#else
    (void) qkv; (void) alibi; (void) mask; (void) merged; (void) dqkv; (void) scratch_base; (void) batch; (void) heads; (void) t; (void) hd;
    (void) alpha; (void) threads;
    return -1;
#endif
}


/* Bytes of scratch each thread takes for t positions and head size hd: the caller passes threads times as many. */
int64_t bt_attention_bf16_scratch_bytes(int64_t t, int64_t hd) {
#ifdef BT_HAVE_BF16_BUILD
    scratch none;
    return scratch_layout(&none, NULL, t, t, hd);
#else
    (void) t; (void) hd;
    return 0;
#endif
}

/*
 * qkv [batch, t, heads, 3, hd] bfloat16 (q, k, v of each head side by side), alibi [batch · heads,
 * 1, t] bfloat16, mask [batch, 1, t, t] (1 = masked) → merged [batch, t, heads · hd] bfloat16. hd
 * even; scratch: threads × bt_attention_bf16_scratch_bytes(t, hd) bytes, 64-byte aligned. Returns
 * 0, or -1 without memory for the masks' tables.
 */
int32_t bt_attention_bf16_forward(const uint16_t *qkv, const uint16_t *alibi, const uint8_t *mask, uint16_t *merged, void *scratch,
                                  int64_t batch, int64_t heads, int64_t t, int64_t hd, float alpha, int32_t threads) {
    return run(qkv, alibi, mask, merged, NULL, scratch, batch, heads, t, hd, alpha, threads);
}

/*
 * The backward of bt_attention_bf16_forward from its inputs: the merged output's gradient dmerged
 * [batch, t, heads · hd] → the fused QKV's gradient dqkv [batch, t, heads, 3, hd] (bfloat16).
 */
int32_t bt_attention_bf16_backward(const uint16_t *qkv, const uint16_t *alibi, const uint8_t *mask, const uint16_t *dmerged,
                                   uint16_t *dqkv, void *scratch, int64_t batch, int64_t heads, int64_t t, int64_t hd, float alpha,
                                   int32_t threads) {
    return run(qkv, alibi, mask, (uint16_t *) dmerged, dqkv, scratch, batch, heads, t, hd, alpha, threads);
}
