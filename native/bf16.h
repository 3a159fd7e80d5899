/*
 * bfloat16 as raw 16-bit patterns: widening is a shift; narrowing rounds to nearest even, as
 * libtorch's float → bfloat16 does, and keeps a NaN a NaN (a scale can overflow to inf, and
 * inf · 0 is NaN). Shared by the kernels that read or write bfloat16.
 */
#ifndef BT_BF16_H
#define BT_BF16_H
#include <stdint.h>

static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } v = { (uint32_t) h << 16 };
    return v.f;
}

static inline uint16_t float_to_bf16(float f) {
    union { float f; uint32_t u; } v = { f };
    uint32_t rounded = (v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16;
    return (uint16_t) (((v.u & 0x7f800000u) == 0x7f800000u) ? (v.u >> 16 | ((v.u & 0xffffu) ? 0x40u : 0u)) : rounded);
}
#endif
