/*
 * LLM.int8 vector-wise activation quantization with outlier-column extraction, fused into two
 * passes over the activation (what bitsandbytes does in its own CUDA kernels). The libtorch op
 * chain it replaces (abs, amax, ge, masked_fill, abs, amax, div, round, clamp, to int8) makes
 * eight passes and as many temporaries.
 *
 * Built by the Maven build with gcc; target_clones compiles AVX-512, AVX2 and baseline versions
 * and the loader picks the best one for the CPU at run time, so the library builds and runs on
 * machines without AVX-512. Where the CPU has AVX-512 F/BW/VL, rows of every type go to the
 * hand-written twin (llm_int8_quantize_avx512.c) instead: the same bits, several times faster.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bf16.h"
#include "llm_int8_quantize.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BT_CLONES
#endif

/*
 * float16 → float32, exactly: a normal value's exponent and mantissa moved to float32's fields (the
 * exponent rebased by 112), a subnormal's mantissa converted as an integer times 2^-24 — never a
 * float32 subnormal operand, so a caller's denormals-are-zero mode cannot flush it; infinities and
 * NaNs keep their payload. Selects rather than branches, so the row loop vectorizes.
 */
static inline float f16_to_float(uint16_t h) {
    uint32_t exponent = h & 0x7c00u, mantissa = h & 0x3ffu;
    union { uint32_t u; float f; } v = { ((uint32_t) (h & 0x7fffu) << 13) + (112u << 23) };
    union { float f; uint32_t u; } sub = { (float) mantissa * 0x1p-24f };
    if (exponent == 0) v.u = sub.u;
    if (exponent == 0x7c00u) v.u = 0x7f800000u | mantissa << 13;
    v.u |= (uint32_t) (h & 0x8000u) << 16;
    return v.f;
}

/*
 * Row r of x as float32: x itself for float32 input; for bfloat16 or float16 the row widened into
 * buf (exact), so the loops below stay the float32 ones and vectorize the same.
 */
static inline __attribute__((always_inline)) const float *row_f32(const void *x, int type, int64_t r, int64_t k, float *buf) {
    if (type == BT_QUANTIZE_F32) return (const float *) x + r * k;
    const uint16_t *h = (const uint16_t *) x + r * k;
    if (type == BT_QUANTIZE_BF16) for (int64_t c = 0; c < k; c++) buf[c] = bf16_to_float(h[c]);
    else for (int64_t c = 0; c < k; c++) buf[c] = f16_to_float(h[c]);
    return buf;
}

/*
 * x        [m, k] float32, bfloat16 or float16 (type says which), row-major
 * x8       [m, k] int8 out: round(x / row_scale) clamped to ±127; outlier columns are 0
 * rowScale [m] float32 out: absmax of the row's regular columns / 127 (at least 1e-12)
 * outlier  [k] uint8 out: 1 where some |x[:, c]| >= threshold (threshold <= 0: none)
 * buf      [k] float32 scratch for a widened 16-bit row (unused for float32)
 * returns the number of outlier columns
 *
 * Always inlined into the three entry points below, so each is compiled for its own input type.
 */
static inline __attribute__((always_inline)) int32_t quantize(const void *x, int type, int64_t m, int64_t k, float threshold,
                                                              int8_t *x8, float *rowScale, uint8_t *outlier, float *buf) {
    for (int64_t c = 0; c < k; c++) outlier[c] = 0;
    if (threshold > 0) {
        for (int64_t r = 0; r < m; r++) {
            const float *row = row_f32(x, type, r, k, buf);
            for (int64_t c = 0; c < k; c++) outlier[c] |= fabsf(row[c]) >= threshold;
        }
    }
    int32_t outliers = 0;
    for (int64_t c = 0; c < k; c++) outliers += outlier[c];

    for (int64_t r = 0; r < m; r++) {
        const float *row = row_f32(x, type, r, k, buf);
        int8_t *q = x8 + r * k;
        float absmax = 0.0f;
#pragma omp simd reduction(max : absmax)             /* a max is exact in any order: the vector form is free to take it */
        for (int64_t c = 0; c < k; c++) {
            float a = outlier[c] ? 0.0f : fabsf(row[c]);
            absmax = a > absmax ? a : absmax;
        }
        float scale = absmax / 127.0f;
        if (scale < 1e-12f) scale = 1e-12f;
        rowScale[r] = scale;
        for (int64_t c = 0; c < k; c++) {
            /* Division (not a reciprocal multiply) and round-half-even: bit-identical to the
             * libtorch chain x.div(scale).round(). */
            float v = outlier[c] ? 0.0f : nearbyintf(row[c] / scale);
            v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
            q[c] = (int8_t) v;
        }
    }
    return outliers;
}

BT_CLONES
static int32_t quantize_f32(const float *x, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale, uint8_t *outlier) {
    return quantize(x, BT_QUANTIZE_F32, m, k, threshold, x8, rowScale, outlier, NULL);
}

int32_t bt_llm_int8_quantize(const float *x, int64_t m, int64_t k, float threshold,
                             int8_t *x8, float *rowScale, uint8_t *outlier) {
    if (bt_llm_int8_quantize_avx512_supported()) return bt_llm_int8_quantize_avx512(x, BT_QUANTIZE_F32, m, k, threshold, x8, rowScale, outlier);
    return quantize_f32(x, m, k, threshold, x8, rowScale, outlier);
}

/*
 * The same from bfloat16 activations (raw 16-bit patterns), without a float32 copy of all of
 * them; buf is [k] float32 scratch.
 */
BT_CLONES
static int32_t quantize_bf16(const uint16_t *x, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale, uint8_t *outlier,
                             float *buf) {
    return quantize(x, BT_QUANTIZE_BF16, m, k, threshold, x8, rowScale, outlier, buf);
}

int32_t bt_llm_int8_quantize_bf16(const uint16_t *x, int64_t m, int64_t k, float threshold,
                                  int8_t *x8, float *rowScale, uint8_t *outlier, float *buf) {
    if (bt_llm_int8_quantize_avx512_supported()) return bt_llm_int8_quantize_avx512(x, BT_QUANTIZE_BF16, m, k, threshold, x8, rowScale, outlier);
    return quantize_bf16(x, m, k, threshold, x8, rowScale, outlier, buf);
}

/*
 * The same from float16 (raw 16-bit patterns): a checkpoint's weights as the hub ships them,
 * quantized at load with no threshold; buf is [k] float32 scratch.
 */
BT_CLONES
static int32_t quantize_f16(const uint16_t *x, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale, uint8_t *outlier,
                            float *buf) {
    return quantize(x, BT_QUANTIZE_F16, m, k, threshold, x8, rowScale, outlier, buf);
}

int32_t bt_llm_int8_quantize_f16(const uint16_t *x, int64_t m, int64_t k, float threshold,
                                 int8_t *x8, float *rowScale, uint8_t *outlier, float *buf) {
    if (bt_llm_int8_quantize_avx512_supported()) return bt_llm_int8_quantize_avx512(x, BT_QUANTIZE_F16, m, k, threshold, x8, rowScale, outlier);
    return quantize_f16(x, m, k, threshold, x8, rowScale, outlier, buf);
}
