/*
 * BLOOM's tanh GELU over a bfloat16 tensor and its input gradient, for the training step's MLP:
 * libtorch's bfloat16 GELU widens, calls Sleef's tanh and narrows, forward and backward, at several
 * times the cost of these loops (benchmarks/FINDINGS.md). Each element is computed in float from
 * gelu.h's exp form and rounded once to bfloat16, as libtorch rounds its float result; the
 * elements are split over libtorch's OpenMP threads (the same libgomp: no second pool).
 */
#include <stdint.h>
#include <omp.h>
#include "bf16.h"
#include "level_clones.h"

#define BT_INLINE static inline __attribute__((always_inline))
#include "fast_exp.h"
#include "gelu.h"


/* Elements a thread takes at a time: big enough to amortize the loop, small enough to balance. */
#define SPAN 16384

static BT_LEVEL_CLONES void forward_span(const uint16_t *x, uint16_t *y, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) y[j] = float_to_bf16(bt_gelu(bf16_to_float(x[j])));
}

static BT_LEVEL_CLONES void backward_span(const uint16_t *dy, const uint16_t *x, uint16_t *dx, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) dx[j] = float_to_bf16(bf16_to_float(dy[j]) * bt_gelu_slope(bf16_to_float(x[j])));
}

static int32_t threads_for(int64_t n, int32_t threads) {
    int64_t spans = (n + SPAN - 1) / SPAN;
    return threads < 1 ? 1 : spans < threads ? (int32_t) (spans < 1 ? 1 : spans) : threads;
}

/* y = gelu(x), n contiguous bfloat16 elements each. */
void bt_gelu_tanh_bf16(const uint16_t *x, uint16_t *y, int64_t n, int32_t threads) {
#pragma omp parallel for schedule(static) num_threads(threads_for(n, threads))
    for (int64_t at = 0; at < n; at += SPAN) forward_span(x + at, y + at, n - at < SPAN ? n - at : SPAN);
}

/* dx = dy · gelu'(x), n contiguous bfloat16 elements each. */
void bt_gelu_tanh_backward_bf16(const uint16_t *dy, const uint16_t *x, uint16_t *dx, int64_t n, int32_t threads) {
#pragma omp parallel for schedule(static) num_threads(threads_for(n, threads))
    for (int64_t at = 0; at < n; at += SPAN) backward_span(dy + at, x + at, dx + at, n - at < SPAN ? n - at : SPAN);
}
