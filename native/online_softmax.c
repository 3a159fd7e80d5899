/*
 * One vocabulary block of an online (streamed) softmax — flash attention's recurrence, run over
 * the lm_head's vocabulary instead of the keys. The cross-entropy head (FusedLinearCrossEntropy)
 * receives its logits a block of columns at a time, so the [rows, 250880] logits of bloom's
 * vocabulary never exist; this kernel turns a block into exp(x − running max) in place and keeps
 * each row's running max and sum, in two passes over a row that stays in cache. libtorch's op
 * chain for the same (amax, maximum, sub, exp, sum) walks the whole block four times.
 *
 * A bfloat16 model's block arrives as bfloat16 (its GEMM's output) and leaves as bfloat16 (the
 * next GEMM's input): the kernel widens each logit, takes exp in float32, sums the float32 values
 * and rounds each to bfloat16 in place — what converting the block to float32, running the float
 * kernel and converting back gives, without the two conversion passes and the float32 block.
 *
 * Built by the Maven build with gcc -fopenmp-simd (the simd pragmas only; no OpenMP runtime);
 * target_clones compiles AVX-512, AVX2 and baseline versions and the loader picks one at run time.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BT_CLONES
#endif

/* Inlined into each clone, so the helpers get its instruction set too. */
#define BT_INLINE static inline __attribute__((always_inline))
#include "fast_exp.h"
#include "bf16.h"

/* Elements summed in float before the running total moves to double. */
#define BT_SUM_BLOCK 4096

/* Element c of a float32 row, or of a bfloat16 row widened; `bf16` is a constant where inlined. */
BT_INLINE float load(const void *row, int64_t c, int bf16) {
    return bf16 ? bf16_to_float(((const uint16_t *) row)[c]) : ((const float *) row)[c];
}

BT_INLINE void store(void *row, int64_t c, float v, int bf16) {
    if (bf16) ((uint16_t *) row)[c] = float_to_bf16(v);
    else ((float *) row)[c] = v;
}

BT_INLINE float row_max(const void *row, int64_t n, int bf16) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < n; c++) {
        float x = load(row, c, bf16);
        m = x > m ? x : m;
    }
    return m;
}

/*
 * Overwrites row with exp(row − max) and returns the sum, in float per BT_SUM_BLOCK, then double;
 * a bfloat16 row sums the float32 values and stores each rounded.
 */
BT_INLINE double exp_in_place(void *row, int64_t n, float max, int bf16) {
    double total = 0.0;
    for (int64_t start = 0; start < n; start += BT_SUM_BLOCK) {
        int64_t end = start + BT_SUM_BLOCK < n ? start + BT_SUM_BLOCK : n;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t c = start; c < end; c++) {
            float e = bt_exp(load(row, c, bf16) - max);
            store(row, c, e, bf16);
            s += e;
        }
        total += s;
    }
    return total;
}

#include "online_block.h"

/*
 * block   [m, n] float32, row-major, finite; overwritten with exp(x − newMax)
 * runMax  [m] in/out: each row's max over the columns seen so far (−inf before the first block)
 * runSum  [m] in/out: Σ exp(x − runMax) over the columns seen so far
 * rescale [m] out: exp(oldMax − newMax), by which whatever was accumulated against the old max
 *         (the input gradient's Σ exp(x − max) · W) must be multiplied; 0 on the first block
 */
BT_CLONES
void bt_online_softmax_block(float *block, int64_t m, int64_t n, float *runMax, double *runSum, float *rescale) {
    online_block(block, 0, m, n, runMax, runSum, rescale);
}

/* The same for a bfloat16 block [m, n]; the running state stays float32 / double. */
BT_CLONES
void bt_online_softmax_block_bf16(uint16_t *block, int64_t m, int64_t n, float *runMax, double *runSum, float *rescale) {
    online_block(block, 1, m, n, runMax, runSum, rescale);
}
