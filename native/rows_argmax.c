/*
 * Each row's argmax with torch.argmax's rules: the first index of the largest value, a NaN counting
 * as larger than any number (so the first NaN wins). Greedy decoding takes this from the logits of
 * every row and step; libtorch's bfloat16 argmax runs a scalar loop, and copying B × V logits out
 * as floats cost more than the decision. A row is taken in blocks: a vectorized maximum per block,
 * and a scalar search for its first index only in a block that beats the best so far (rarely after
 * the first few).
 */
#include <math.h>
#include <stdint.h>
#include "bf16.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BT_CLONES
#endif

enum { BLOCK = 4096 };

/* The block's largest value, or NaN when it holds one. */
BT_CLONES static float block_max(const float *v, int64_t n) {
    float max = -INFINITY;
    int nan = 0;
#pragma omp simd reduction(max:max) reduction(|:nan)
    for (int64_t j = 0; j < n; j++) {
        max = v[j] > max ? v[j] : max;
        nan |= v[j] != v[j];
    }
    return nan ? NAN : max;
}

/* The running argmax of a row after one more block (at row index `from`). */
static void take_block(const float *v, int64_t n, int64_t from, int64_t *best, float *best_value, int *found) {
    float max = block_max(v, n);
    int beats = !*found || (!isnan(*best_value) && (isnan(max) || max > *best_value));
    if (!beats) return;
    int64_t j = 0;
    while (j < n - 1 && !(isnan(max) ? isnan(v[j]) : v[j] == max)) j++;
    *best = from + j;
    *best_value = max;
    *found = 1;
}

/* logits [rows, v] float32 → out [rows] int64 */
void bt_rows_argmax_f32(const float *logits, int64_t *out, int64_t rows, int64_t v) {
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        float best_value = -INFINITY;
        int found = 0;
        for (int64_t from = 0; from < v; from += BLOCK) {
            take_block(logits + r * v + from, v - from < BLOCK ? v - from : BLOCK, from, &best, &best_value, &found);
        }
        out[r] = best;
    }
}

BT_CLONES static void widen(const uint16_t *x, float *wide, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) wide[j] = bf16_to_float(x[j]);
}

/* the same for bfloat16 logits (raw 16-bit patterns), widened exactly a block at a time */
void bt_rows_argmax_bf16(const uint16_t *logits, int64_t *out, int64_t rows, int64_t v) {
    float wide[BLOCK];
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        float best_value = -INFINITY;
        int found = 0;
        for (int64_t from = 0; from < v; from += BLOCK) {
            int64_t n = v - from < BLOCK ? v - from : BLOCK;
            widen(logits + r * v + from, wide, n);
            take_block(wide, n, from, &best, &best_value, &found);
        }
        out[r] = best;
    }
}

/*
 * A candidate (value, index) as one key that orders as torch.argmax chooses: a NaN above every
 * number, otherwise the larger value, and between equals the smaller index. Zeros of either sign
 * are one value to argmax, so −0 counts as +0. 0 is below every key (no candidate yet).
 */
static uint64_t key_of(float v, int64_t index) {
    uint32_t ordered;
    if (isnan(v)) {
        ordered = 0xFFFFFFFFu;
    } else {
        union { float f; uint32_t u; } bits = { v == 0.0f ? 0.0f : v };
        ordered = (bits.u & 0x80000000u) ? ~bits.u : (bits.u | 0x80000000u);
    }
    return (uint64_t) ordered << 32 | (uint64_t) (0xFFFFFFFFu - (uint32_t) index);
}

/* best = max(best, key), atomically: threads scanning other columns of the row may merge at once. */
static void merge_key(uint64_t *best, uint64_t key) {
    uint64_t seen = __atomic_load_n(best, __ATOMIC_RELAXED);
    while (key > seen && !__atomic_compare_exchange_n(best, &seen, key, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/*
 * Columns [from, from + count) of each of `rows` rows of y (row stride ldy) merged into best[row]
 * (keys as key_of; the index is in 32 bits): what a product's thread calls on the columns it has
 * just written, so that every row's argmax is known when the product is (rows_argmax on the whole
 * row gives the same index).
 */
void bt_rows_argmax_merge_f32(const float *y, int64_t ldy, int64_t rows, int64_t from, int64_t count, uint64_t *best) {
    for (int64_t r = 0; r < rows && count > 0; r++) {
        int64_t at = from;
        float value = -INFINITY;
        int found = 0;
        for (int64_t b = from; b < from + count; b += BLOCK) {
            take_block(y + r * ldy + b, from + count - b < BLOCK ? from + count - b : BLOCK, b, &at, &value, &found);
        }
        merge_key(best + r, key_of(value, at));
    }
}

void bt_rows_argmax_merge_bf16(const uint16_t *y, int64_t ldy, int64_t rows, int64_t from, int64_t count, uint64_t *best) {
    float wide[BLOCK];
    for (int64_t r = 0; r < rows && count > 0; r++) {
        int64_t at = from;
        float value = -INFINITY;
        int found = 0;
        for (int64_t b = from; b < from + count; b += BLOCK) {
            int64_t n = from + count - b < BLOCK ? from + count - b : BLOCK;
            widen(y + r * ldy + b, wide, n);
            take_block(wide, n, b, &at, &value, &found);
        }
        merge_key(best + r, key_of(value, at));
    }
}
