/*
 * LLM.int8's epilogue in one pass: the int32 accumulator of int8 × int8 products, scaled by each
 * row's and each column's scale, written straight into the output dtype. libtorch needs four
 * passes (convert, two scalings, a cast), each with a fresh [M, N] buffer. The operations are
 * libtorch's, in its order: ((float) acc · row) · col in float32, then rounded to nearest even for
 * bfloat16, so the results are bit for bit the same.
 */
#include <stdint.h>
#include "bf16.h"

/* acc [m, n] int32, row [m], col [n] float32 → out [m, n] float32 */
void bt_int8_rescale_f32(const int32_t *acc, const float *row, const float *col, float *out, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        const int32_t *a = acc + i * n;
        float *o = out + i * n;
        const float r = row[i];
#pragma omp simd
        for (int64_t j = 0; j < n; j++) o[j] = ((float) a[j] * r) * col[j];
    }
}

/* the same into bfloat16 (raw 16-bit patterns) */
void bt_int8_rescale_bf16(const int32_t *acc, const float *row, const float *col, uint16_t *out, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        const int32_t *a = acc + i * n;
        uint16_t *o = out + i * n;
        const float r = row[i];
#pragma omp simd
        for (int64_t j = 0; j < n; j++) o[j] = float_to_bf16(((float) a[j] * r) * col[j]);
    }
}
