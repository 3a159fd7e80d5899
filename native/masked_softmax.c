/*
 * The probabilities of BLOOM's eager attention in bfloat16, as HF computes them — the scores widened
 * to float32, masked scores set to float32's lowest value, softmax over the keys, rounded to
 * bfloat16 — and the scores' gradient from the probabilities', in one pass over each row instead
 * of libtorch's four ops (a cast, a masked fill, the softmax and a cast back, each writing the whole
 * [B·heads, T, S] tensor) and their backwards. The float32 probabilities are kept for the backward,
 * as libtorch's softmax keeps its output. Rows are split over libtorch's OpenMP threads. On a CPU
 * with AVX-512 and FMA the bfloat16 rows run as masked_softmax_avx512.c's twins.
 */
#include <stdint.h>
#include <omp.h>
#include "bf16.h"
#include "level_clones.h"
#include "masked_softmax.h"

int32_t bt_masked_softmax_avx512_supported(void);
void bt_masked_softmax_row_avx512(const uint16_t *score, const uint8_t *masked, float *p, uint16_t *out, int64_t s);
void bt_masked_softmax_row_backward_avx512(const uint16_t *g, const float *p, const uint8_t *masked, uint16_t *out, int64_t s);

#define BT_INLINE static inline __attribute__((always_inline))
#include "fast_exp.h"


#define FLOAT32_LOWEST (-3.4028234663852886e38f)

/* The score HF's chain feeds its softmax: float32's lowest where masked. Both operands are read, so the select vectorizes. */
BT_INLINE float masked_score(const uint16_t *score, const uint8_t *masked, int64_t j) {
    float v = bf16_to_float(score[j]);
    return masked[j] ? FLOAT32_LOWEST : v;
}

/* exp(p[j] − max) into p, the max being over p; returns 1 / their sum. Inlined into each caller's clones. */
BT_INLINE float exp_in_place(float *p, float max, int64_t s) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < s; j++) {
        float d = p[j] - max;
        float e = d < -87.3f ? 0.0f : bt_exp(d);
        p[j] = e;
        sum += e;
    }
    return 1.0f / sum;
}

/*
 * Loops over one element type each: GCC 12 vectorized the widening, the select and the max in one
 * loop, and the scaling with the rounding in another, four floats at a time even in the AVX-512
 * clone; apart, each runs sixteen. The same operations in the same order.
 */
static BT_LEVEL_CLONES void row_portable(const uint16_t *score, const uint8_t *masked, float *p, uint16_t *out, int64_t s) {
#pragma omp simd
    for (int64_t j = 0; j < s; j++) p[j] = masked_score(score, masked, j);
    float max = FLOAT32_LOWEST;
#pragma omp simd reduction(max : max)
    for (int64_t j = 0; j < s; j++) max = p[j] > max ? p[j] : max;
    float inv = exp_in_place(p, max, s);
#pragma omp simd
    for (int64_t j = 0; j < s; j++) p[j] *= inv;
#pragma omp simd
    for (int64_t j = 0; j < s; j++) out[j] = float_to_bf16(p[j]);
}

static BT_LEVEL_CLONES void row_backward_portable(const uint16_t *g, const float *p, const uint8_t *masked, uint16_t *out, int64_t s) {
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < s; j++) dot += p[j] * bf16_to_float(g[j]);
#pragma omp simd
    for (int64_t j = 0; j < s; j++) out[j] = masked[j] ? 0 : float_to_bf16(p[j] * (bf16_to_float(g[j]) - dot));
}

/* Whether the rows run as masked_softmax_avx512.c's twins: asked once (the ISA cap is set before any kernel runs). */
static int avx512_rows(void) {
    static int state = -1;
    int known = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (known < 0) {
        known = bt_masked_softmax_avx512_supported() ? 1 : 0;
        __atomic_store_n(&state, known, __ATOMIC_RELAXED);
    }
    return known;
}

void bt_masked_softmax_row(const uint16_t *score, const uint8_t *masked, float *p, uint16_t *out, int64_t s) {
    if (avx512_rows()) bt_masked_softmax_row_avx512(score, masked, p, out, s);
    else row_portable(score, masked, p, out, s);
}

void bt_masked_softmax_row_backward(const uint16_t *g, const float *p, const uint8_t *masked, uint16_t *out, int64_t s) {
    if (avx512_rows()) bt_masked_softmax_row_backward_avx512(g, p, masked, out, s);
    else row_backward_portable(g, p, masked, out, s);
}

BT_LEVEL_CLONES void bt_masked_softmax_row_f32(const float *score, const uint8_t *masked, float *p, int64_t s) {
    float max = FLOAT32_LOWEST;
#pragma omp simd reduction(max : max)
    for (int64_t j = 0; j < s; j++) {
        float v = masked[j] ? FLOAT32_LOWEST : score[j];
        p[j] = v;
        max = v > max ? v : max;
    }
    float inv = exp_in_place(p, max, s);
#pragma omp simd
    for (int64_t j = 0; j < s; j++) p[j] *= inv;
}

BT_LEVEL_CLONES void bt_masked_softmax_row_backward_f32(const float *g, const uint8_t *masked, float *p, int64_t s) {
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < s; j++) dot += p[j] * g[j];
#pragma omp simd
    for (int64_t j = 0; j < s; j++) p[j] = masked[j] ? 0.0f : p[j] * (g[j] - dot);
}

/* Row r of [batch · heads, t, s] reads mask [batch, 1, t, s] at batch r / (heads · t), query r % t. */
static const uint8_t *mask_row(const uint8_t *mask, int64_t r, int64_t heads, int64_t t, int64_t s) {
    return mask + ((r / (heads * t)) * t + r % t) * s;
}

/* scores [batch · heads, t, s] bfloat16 and mask [batch, 1, t, s] (1 = masked) → probs float32 and out bfloat16, of the scores' shape. */
void bt_masked_softmax_bf16(const uint16_t *scores, const uint8_t *mask, float *probs, uint16_t *out,
                            int64_t batch, int64_t heads, int64_t t, int64_t s, int32_t threads) {
    int64_t rows = batch * heads * t;
#pragma omp parallel for schedule(static) num_threads(threads < 1 ? 1 : threads)
    for (int64_t r = 0; r < rows; r++)
        bt_masked_softmax_row(scores + r * s, mask_row(mask, r, heads, t, s), probs + r * s, out + r * s, s);
}

/* Floats between two threads' scratch rows: whole cache lines, so no line is written by both. */
int64_t bt_masked_softmax_scratch_row(int64_t s) {
    return (s + 15) / 16 * 16;
}

/*
 * As bt_masked_softmax_bf16 where no backward will run: the float32 probabilities are not kept, each
 * thread's rows pass through its own row of scratch [threads, bt_masked_softmax_scratch_row(s)] instead of a [batch · heads, t, s]
 * tensor written and thrown away.
 */
void bt_masked_softmax_bf16_forward_only(const uint16_t *scores, const uint8_t *mask, float *scratch, uint16_t *out,
                                         int64_t batch, int64_t heads, int64_t t, int64_t s, int32_t threads) {
    int64_t rows = batch * heads * t;
#pragma omp parallel num_threads(threads < 1 ? 1 : threads)
    {
        float *p = scratch + (int64_t) omp_get_thread_num() * bt_masked_softmax_scratch_row(s);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) bt_masked_softmax_row(scores + r * s, mask_row(mask, r, heads, t, s), p, out + r * s, s);
    }
}

/* grad_probs bfloat16 and probs float32 [batch · heads, t, s], mask as above → grad_scores bfloat16. */
void bt_masked_softmax_backward_bf16(const uint16_t *grad_probs, const uint8_t *mask, const float *probs, uint16_t *grad_scores,
                                     int64_t batch, int64_t heads, int64_t t, int64_t s, int32_t threads) {
    int64_t rows = batch * heads * t;
#pragma omp parallel for schedule(static) num_threads(threads < 1 ? 1 : threads)
    for (int64_t r = 0; r < rows; r++)
        bt_masked_softmax_row_backward(grad_probs + r * s, probs + r * s, mask_row(mask, r, heads, t, s), grad_scores + r * s, s);
}
