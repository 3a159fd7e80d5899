/*
 * The small ops a decode step (decode_blocks.c) runs on its rows between the products: the layer norm,
 * GELU in place and the residual add, each rounding as libtorch's op does in the compute dtype. The
 * includer defines BT_INLINE (always_inline).
 */
#ifndef BT_DECODE_ROW_OPS_H
#define BT_DECODE_ROW_OPS_H
#include <math.h>
#include <stdint.h>
#include "bf16.h"
#include "fast_exp.h"
#include "gelu.h"

/*
 * The small ops below run between the products on one or both threads; each is a loop over a row
 * that the compiler vectorizes (target_clones: AVX-512, AVX2 and baseline versions, picked by the CPU
 * at load), with the compute dtype hoisted out of the loop so each version has straight-line bodies.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BT_CLONES
#endif

/* Elements a cache-friendly chunk of a row at a time (widened into a stack buffer). */
#define CHUNK 512

/* `count` ≤ CHUNK elements of x from `at`, as float into `out`. */
BT_INLINE void widen(const void *x, int64_t at, int64_t count, float *out, int bf16) {
    if (bf16) {
        const uint16_t *p = (const uint16_t *) x + at;
#pragma omp simd
        for (int64_t j = 0; j < count; j++) out[j] = bf16_to_float(p[j]);
    } else {
        const float *p = (const float *) x + at;
#pragma omp simd
        for (int64_t j = 0; j < count; j++) out[j] = p[j];
    }
}

/* `count` floats of v rounded to the compute dtype into y from `at`. */
BT_INLINE void narrow(const float *v, void *y, int64_t at, int64_t count, int bf16) {
    if (bf16) {
        uint16_t *p = (uint16_t *) y + at;
#pragma omp simd
        for (int64_t j = 0; j < count; j++) p[j] = float_to_bf16(v[j]);
    } else {
        float *p = (float *) y + at;
#pragma omp simd
        for (int64_t j = 0; j < count; j++) p[j] = v[j];
    }
}

/* Layer norm of x [rows, h] into y, with the float math libtorch's kernel does (mean and variance here in double). */
static BT_CLONES void layer_norm(const void *x, const void *weight, const void *bias, void *y, int64_t rows, int64_t h, double eps,
                                 int bf16) {
    float v[CHUNK], gamma[CHUNK], beta[CHUNK];
    for (int64_t r = 0; r < rows; r++) {
        double sum = 0, squares = 0;
        for (int64_t c = 0; c < h; c += CHUNK) {
            int64_t n = h - c < CHUNK ? h - c : CHUNK;
            widen(x, r * h + c, n, v, bf16);
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n; j++) sum += v[j];
        }
        double mean_d = sum / h;
        for (int64_t c = 0; c < h; c += CHUNK) {
            int64_t n = h - c < CHUNK ? h - c : CHUNK;
            widen(x, r * h + c, n, v, bf16);
#pragma omp simd reduction(+ : squares)
            for (int64_t j = 0; j < n; j++) squares += ((double) v[j] - mean_d) * ((double) v[j] - mean_d);
        }
        float mean = (float) mean_d, rstd = (float) (1.0 / sqrt(squares / h + eps));
        for (int64_t c = 0; c < h; c += CHUNK) {
            int64_t n = h - c < CHUNK ? h - c : CHUNK;
            widen(x, r * h + c, n, v, bf16);
            widen(weight, c, n, gamma, bf16);
            widen(bias, c, n, beta, bf16);
#pragma omp simd
            for (int64_t j = 0; j < n; j++) v[j] = (v[j] - mean) * rstd * gamma[j] + beta[j];
            narrow(v, y, r * h + c, n, bf16);
        }
    }
}

/* BLOOM's tanh GELU, 0.5·x·(1 + tanh(u)) = x · σ(2u), on columns [from, from + count) of y [rows, ld], in place. */
static BT_CLONES void gelu(void *y, int64_t rows, int64_t ld, int64_t from, int64_t count, int bf16) {
    float v[CHUNK];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < count; c += CHUNK) {
            int64_t n = count - c < CHUNK ? count - c : CHUNK;
            widen(y, r * ld + from + c, n, v, bf16);
#pragma omp simd
            for (int64_t j = 0; j < n; j++) v[j] = bt_gelu(v[j]);
            narrow(v, y, r * ld + from + c, n, bf16);
        }
}

/* y[:, from .. from + count) += residual[:, from .. from + count), each sum rounded once (a libtorch add). */
static BT_CLONES void add_residual(void *y, const void *residual, int64_t rows, int64_t h, int64_t from, int64_t count, int bf16) {
    float v[CHUNK], w[CHUNK];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < count; c += CHUNK) {
            int64_t n = count - c < CHUNK ? count - c : CHUNK;
            widen(y, r * h + from + c, n, v, bf16);
            widen(residual, r * h + from + c, n, w, bf16);
#pragma omp simd
            for (int64_t j = 0; j < n; j++) v[j] += w[j];
            narrow(v, y, r * h + from + c, n, bf16);
        }
}
#endif
