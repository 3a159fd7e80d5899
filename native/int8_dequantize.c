/*
 * Row-scaled int8 → float32 or bfloat16: out[r, c] = values[r, c] · scales[r]. The reverse pass
 * turns every int8 weight back into floats for each recomputed block, and libtorch's int8 → float
 * conversion runs at a small fraction of memory speed on the CPUs measured (figures in
 * benchmarks/FINDINGS.md); these loops vectorize and stream. Results equal libtorch's
 * `values.to(dtype).mul_(scales.to(dtype))` bit for bit: the float32 product is the same single
 * multiplication, and for bfloat16 the scale is rounded to bfloat16 first and the float32 product
 * rounded to nearest even, as libtorch's bfloat16 multiply does.
 */
#include <stdint.h>
#include "bf16.h"

/* values [rows, k] int8 row-major, scales [rows] float32, out [rows, k] float32 row-major */
void bt_int8_dequantize_f32(const int8_t *values, const float *scales, float *out, int64_t rows, int64_t k) {
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *v = values + r * k;
        float *o = out + r * k;
        const float s = scales[r];
#pragma omp simd
        for (int64_t c = 0; c < k; c++) o[c] = (float) v[c] * s;
    }
}

/* the same into bfloat16 (out holds the raw 16-bit patterns) */
void bt_int8_dequantize_bf16(const int8_t *values, const float *scales, uint16_t *out, int64_t rows, int64_t k) {
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *v = values + r * k;
        uint16_t *o = out + r * k;
        const float s = bf16_to_float(float_to_bf16(scales[r]));
#pragma omp simd
        for (int64_t c = 0; c < k; c++) {
            union { float f; uint32_t u; } p = { (float) v[c] * s };
            /* products of int8 and a finite scale are finite: plain round to nearest even */
            o[c] = (uint16_t) ((p.u + 0x7fffu + ((p.u >> 16) & 1u)) >> 16);
        }
    }
}
