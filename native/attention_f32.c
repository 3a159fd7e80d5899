/*
 * BLOOM's eager attention in float32 for a call without cached keys, forward and backward to the
 * fused QKV: attention_bf16.c's scheme with float32 elements, where libtorch runs six batched
 * products (on its BLAS, one small product per (row, head) pair), the copies that split the heads
 * out of the fused projection and merge them back, a [B·heads, T, T] tensor of scores and one of
 * probabilities per layer, and their backwards.
 *
 * The numbers are HF's float32 chain's up to the order of the float32 sums: the scores α q kᵀ +
 * alibi, float32's lowest where masked, softmax over the keys, the attended values p v; the
 * backward's dV = pᵀ dc, dP = dc vᵀ, the scores' gradient p (dP − Σ p dP), dQ = α dS k and
 * dK = α dSᵀ q. The backward forms the probabilities again from q, k and the bias — the same
 * bits — rather than keep a [T, T] per pair and layer.
 *
 * What a mask makes zero is not computed (attention_visibility.h): products over keys stop at each
 * tile's last visible key, and scores and dP are only formed where a tile of queries sees some key
 * — under a causal mask about half of every product.
 *
 * The products run a tile of six rows by 64 columns in 24 AVX-512 accumulators: B packed with 64
 * columns per row of k, each step four loads of B and one broadcast of A per row. Only for CPUs
 * with AVX-512F (bt_f32_gemm_supported()); the caller keeps libtorch's ops otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "masked_softmax.h"
#include "attention_visibility.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include "avx512_lanes.h"
#define BT_HAVE_F32_BUILD 1
#endif

#ifdef BT_HAVE_F32_BUILD
#define BT_F32 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define BT_F32_INLINE BT_F32 static inline __attribute__((always_inline))
#define MR BT_ATTENTION_MR
#define NB BT_ATTENTION_NB

/* Where a product's tile goes: as it is into c, or into the first n columns of out as scale · sum (+ the bias of its column). */
typedef struct {
    float *c;
    int64_t ldc;
    float *out;
    int64_t ld, n;
    float scale;
    const float *bias;
} sink;

/*
 * Rows [r0, r0 + mr) and columns [j0, j0 + 64) of the product into `to`: Σ over k in [k0, k1) of
 * a[r · lda + k] times B's 64 columns of row k (b + k · ldb).
 */
BT_F32_INLINE void tile(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t k0, int64_t k1, sink to, int64_t r0,
                        int64_t j0, const int mr) {
    __m512 acc[MR][4];
    for (int r = 0; r < mr; r++) for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t k = k0; k < k1; k++) {
        const float *bk = b + k * ldb;
        __m512 b0 = _mm512_loadu_ps(bk), b1 = _mm512_loadu_ps(bk + 16), b2 = _mm512_loadu_ps(bk + 32), b3 = _mm512_loadu_ps(bk + 48);
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + k]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(av, b2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(av, b3, acc[r][3]);
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
        __m512 bias = to.bias ? _mm512_maskz_loadu_ps(m, to.bias + j) : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++) _mm512_mask_storeu_ps(to.out + (r0 + r) * to.ld + j, m, _mm512_fmadd_ps(scale, acc[r][q], bias));
    }
}

BT_F32 static void tile_rows(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t k0, int64_t k1, sink to, int64_t r0,
                             int64_t j0, int64_t mr) {
    switch (mr) {
        case 1: tile(a, lda, b, ldb, k0, k1, to, r0, j0, 1); break;
        case 2: tile(a, lda, b, ldb, k0, k1, to, r0, j0, 2); break;
        case 3: tile(a, lda, b, ldb, k0, k1, to, r0, j0, 3); break;
        case 4: tile(a, lda, b, ldb, k0, k1, to, r0, j0, 4); break;
        case 5: tile(a, lda, b, ldb, k0, k1, to, r0, j0, 5); break;
        default: tile(a, lda, b, ldb, k0, k1, to, r0, j0, MR); break;
    }
}

/*
 * The k a product needs, as attention_visibility.h's pair ranges doubled: by tile of rows (rows),
 * by block of 64 columns (cols), or, with neither, all `k`. Where only some column blocks are
 * wanted (blocks), a tile of rows i forms blocks [blocks[2i], blocks[2i + 1]) and leaves the others
 * unwritten.
 */
typedef struct {
    const int64_t *rows, *cols, *blocks;
    int64_t k;
} k_ranges;

/* The product A · B [m, n64] (n64 a multiple of 64) over the k that ranges give, into `to`; B has a zero row past an odd k. */
BT_F32 static void product(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t m, int64_t n64, k_ranges ranges, sink to) {
    for (int64_t i = 0; i * MR < m; i++) {
        int64_t r0 = i * MR, mr = m - r0 < MR ? m - r0 : MR;
        for (int64_t j = 0; j < n64 / NB; j++) {
            if (ranges.blocks && (j < ranges.blocks[2 * i] || j >= ranges.blocks[2 * i + 1])) continue;
            const int64_t *k = ranges.cols ? ranges.cols + 2 * j : ranges.rows ? ranges.rows + 2 * i : NULL;
            tile_rows(a + r0 * lda, lda, b + j * NB, ldb, k ? 2 * k[0] : 0, k ? 2 * k[1] : ranges.k, to, r0, j * NB, mr);
        }
    }
}

/*
 * dst's first k rows (row stride ld), columns [0, width) = scale · the transpose of n rows of k floats
 * (row stride `stride`), 0 in columns n .. width; sixteen by sixteen. A scale of 1 copies the bits.
 */
BT_F32 static void transpose(const float *src, int64_t stride, int64_t n, int64_t k, float scale, float *dst, int64_t ld, int64_t width) {
    __m512 sc = _mm512_set1_ps(scale);
    for (int64_t s0 = 0; s0 < width; s0 += 16) {
        __mmask16 out = bt_lanes16(width - s0);
        for (int64_t p0 = 0; p0 < k; p0 += 16) {
            __mmask16 m = bt_lanes16(k - p0);
            __m512i v[16];
            for (int i = 0; i < 16; i++) {
                __m512 row = s0 + i < n ? _mm512_maskz_loadu_ps(m, src + (s0 + i) * stride + p0) : _mm512_setzero_ps();
                v[i] = _mm512_castps_si512(scale == 1.0f ? row : _mm512_mul_ps(sc, row));
            }
            bt_transpose16(v);
            for (int64_t p = 0; p < 16 && p0 + p < k; p++) _mm512_mask_storeu_epi32(dst + (p0 + p) * ld + s0, out, v[p]);
        }
    }
}

/* dst [rows][ld] = n rows of k floats (row stride `stride`), 0 past k columns and in rows n .. rows. */
static void copy_rows(const float *src, int64_t stride, int64_t n, int64_t rows, int64_t k, float *dst, int64_t ld) {
    for (int64_t p = 0; p < rows; p++) {
        float *d = dst + p * ld;
        if (p < n) {
            memcpy(d, src + p * stride, k * sizeof(float));
            memset(d + k, 0, (ld - k) * sizeof(float));
        } else {
            memset(d, 0, ld * sizeof(float));
        }
    }
}

/* One thread's buffers, sized for t queries, s keys and head size hd, carved from its share of the caller's scratch. */
typedef struct {
    int64_t s2, s64, t2, hd64;
    float *pack_a, *pack_b;
    float *p, *g;               /* [t, s2]: a pair's probabilities (then the scores' gradient), its scores (then dP) */
    float *c;                   /* [hd, s64]: dVᵀ and dKᵀ before they are transposed into place */
} scratch;

/* Lays out w over base (NULL: only counts); returns the bytes it takes, each buffer 64-byte aligned. */
static int64_t scratch_layout(scratch *w, char *base, int64_t t, int64_t s, int64_t hd) {
    w->s2 = round_up(s, 2);
    w->s64 = round_up(s, NB);
    w->t2 = round_up(t, 2);
    w->hd64 = round_up(hd, NB);
    int64_t keys_by_head = w->s2 * w->hd64, head_by_keys = hd * w->s64, queries_by_keys = w->t2 * w->s64;
    int64_t widest = keys_by_head > head_by_keys ? keys_by_head : head_by_keys;
    widest = widest > queries_by_keys ? widest : queries_by_keys;
    int64_t at = 0;
#define BT_CARVE(field, count) do { w->field = base ? (float *) (base + at) : NULL; at += round_up((int64_t) (count) * (int64_t) sizeof(float), 64); } while (0)
    BT_CARVE(pack_a, hd * w->t2);
    BT_CARVE(pack_b, widest);
    BT_CARVE(p, t * w->s2);
    BT_CARVE(g, t * w->s2);
    BT_CARVE(c, hd * w->s64);
#undef BT_CARVE
    return at;
}

/*
 * A pair's probabilities into w->p (rows of s2, 0 outside each query's visible keys): the scores
 * α q kᵀ + alibi where a tile of queries sees keys, then the masked softmax row by row. The
 * backward calls it again: the same inputs give the same bits.
 */
BT_F32 static void probabilities(const float *q, const float *k, int64_t qkv_ld, const float *alibi, const uint8_t *mask,
                                 const visibility *vis, int64_t t, int64_t s, int64_t hd, float alpha, scratch *w) {
    transpose(k, qkv_ld, s, hd, 1.0f, w->pack_b, w->s64, w->s64);
    product(q, qkv_ld, w->pack_b, w->s64, t, w->s64, (k_ranges) {.blocks = vis->qblocks, .k = hd},
            (sink) {.out = w->g, .ld = w->s2, .n = s, .scale = alpha, .bias = alibi});
    for (int64_t i = 0; i < t; i++) {
        float *p = w->p + i * w->s2;
        int64_t lo = vis->lo[i], hi = vis->hi[i];
        memset(p, 0, lo * sizeof(float));
        bt_masked_softmax_row_f32(w->g + i * w->s2 + lo, mask + i * s + lo, p + lo, hi - lo);
        memset(p + hi, 0, (w->s2 - hi) * sizeof(float));
    }
}

/* One pair's forward: the attended values into merged. q, k and v point at the pair's first position in the fused QKV (row stride qkv_ld). */
BT_F32 static void pair_forward(const float *q, const float *k, const float *v, int64_t qkv_ld, const float *alibi, const uint8_t *mask,
                                const visibility *vis, float *merged, int64_t merged_ld, int64_t t, int64_t s, int64_t hd, float alpha,
                                scratch *w) {
    probabilities(q, k, qkv_ld, alibi, mask, vis, t, s, hd, alpha, w);
    /* context = p v */
    copy_rows(v, qkv_ld, s, w->s2, hd, w->pack_b, w->hd64);
    product(w->p, w->s2, w->pack_b, w->hd64, t, w->hd64, (k_ranges) {vis->qkp, NULL, NULL, 0},
            (sink) {.out = merged, .ld = merged_ld, .n = hd, .scale = 1.0f});
}

/* One pair's backward from the attended values' gradient dc (row stride dc_ld) into the fused QKV's gradient dq, dk, dv. */
BT_F32 static void pair_backward(const float *q, const float *k, const float *v, int64_t qkv_ld, const float *alibi, const uint8_t *mask,
                                 const visibility *vis, const float *dc, int64_t dc_ld, float *dq, float *dk, float *dv, int64_t t,
                                 int64_t s, int64_t hd, float alpha, scratch *w) {
    probabilities(q, k, qkv_ld, alibi, mask, vis, t, s, hd, alpha, w);
    /* dvᵀ = dcᵀ p: [hd, s], each block of keys over the queries that see it */
    transpose(dc, dc_ld, t, hd, 1.0f, w->pack_a, w->t2, w->t2);
    copy_rows(w->p, w->s2, t, w->t2, s, w->pack_b, w->s64);
    product(w->pack_a, w->t2, w->pack_b, w->s64, hd, w->s64, (k_ranges) {NULL, vis->kkp, NULL, 0}, (sink) {.c = w->c, .ldc = w->s64});
    transpose(w->c, w->s64, hd, s, 1.0f, dv, qkv_ld, hd);
    /* dp = dc vᵀ where a tile of queries sees keys, then the scores' gradient in place of p */
    transpose(v, qkv_ld, s, hd, 1.0f, w->pack_b, w->s64, w->s64);
    product(dc, dc_ld, w->pack_b, w->s64, t, w->s64, (k_ranges) {.blocks = vis->qblocks, .k = hd},
            (sink) {.out = w->g, .ld = w->s2, .n = s, .scale = 1.0f});
    for (int64_t i = 0; i < t; i++) {
        int64_t lo = vis->lo[i], hi = vis->hi[i];
        bt_masked_softmax_row_backward_f32(w->g + i * w->s2 + lo, mask + i * s + lo, w->p + i * w->s2 + lo, hi - lo);
    }
    /* dq = α ds k */
    copy_rows(k, qkv_ld, s, w->s2, hd, w->pack_b, w->hd64);
    product(w->p, w->s2, w->pack_b, w->hd64, t, w->hd64, (k_ranges) {vis->qkp, NULL, NULL, 0},
            (sink) {.out = dq, .ld = qkv_ld, .n = hd, .scale = alpha});
    /* dkᵀ = α qᵀ ds: [hd, s] */
    transpose(q, qkv_ld, t, hd, 1.0f, w->pack_a, w->t2, w->t2);
    copy_rows(w->p, w->s2, t, w->t2, s, w->pack_b, w->s64);
    product(w->pack_a, w->t2, w->pack_b, w->s64, hd, w->s64, (k_ranges) {NULL, vis->kkp, NULL, 0}, (sink) {.c = w->c, .ldc = w->s64});
    transpose(w->c, w->s64, hd, s, alpha, dk, qkv_ld, hd);
}
#endif

/* The forward (dqkv NULL: merged is written) or the backward (merged holds the gradient read), pairs split over the threads. */
static int32_t run(const float *qkv, const float *alibi, const uint8_t *mask, float *merged, float *dqkv, void *scratch_base,
                   int64_t batch, int64_t heads, int64_t t, int64_t hd, float alpha, int32_t threads) {
#ifdef BT_HAVE_F32_BUILD
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
            const float *q = qkv + at;
            float *m = merged + b * t * heads * hd + h * hd;
            if (dqkv == NULL) {
                pair_forward(q, q + hd, q + 2 * hd, qkv_ld, alibi + bh * t, mask + b * t * t, vis + b, m, heads * hd, t, t, hd, alpha, &w);
            } else {
                float *dq = dqkv + at;
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
int64_t bt_attention_f32_scratch_bytes(int64_t t, int64_t hd) {
#ifdef BT_HAVE_F32_BUILD
    scratch none;
    return scratch_layout(&none, NULL, t, t, hd);
#else
    (void) t; (void) hd;
    return 0;
#endif
}

/*
 * qkv [batch, t, heads, 3, hd] float32 (q, k, v of each head side by side), alibi [batch · heads,
 * 1, t] float32, mask [batch, 1, t, t] (1 = masked) → merged [batch, t, heads · hd] float32.
 * scratch: threads × bt_attention_f32_scratch_bytes(t, hd) bytes, 64-byte aligned. Returns 0, or
 * -1 without memory for the masks' tables.
 */
int32_t bt_attention_f32_forward(const float *qkv, const float *alibi, const uint8_t *mask, float *merged, void *scratch, int64_t batch,
                                 int64_t heads, int64_t t, int64_t hd, float alpha, int32_t threads) {
    return run(qkv, alibi, mask, merged, NULL, scratch, batch, heads, t, hd, alpha, threads);
}

/*
 * The backward of bt_attention_f32_forward from its inputs: the merged output's gradient dmerged
 * [batch, t, heads · hd] → the fused QKV's gradient dqkv [batch, t, heads, 3, hd] (float32).
 */
int32_t bt_attention_f32_backward(const float *qkv, const float *alibi, const uint8_t *mask, const float *dmerged, float *dqkv,
                                  void *scratch, int64_t batch, int64_t heads, int64_t t, int64_t hd, float alpha, int32_t threads) {
    return run(qkv, alibi, mask, (float *) dmerged, dqkv, scratch, batch, heads, t, hd, alpha, threads);
}
