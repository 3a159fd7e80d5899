/*
 * The preamble the AVX-512 twins of portable kernels share (masked_softmax_avx512.c,
 * decode_attention_avx512.c, online_softmax_avx512.c): BT_HAVE_AVX512_BUILD where this compiler
 * builds them, their target attributes BT_Z and BT_ZI (AVX-512 F/BW/VL and FMA; BT_ZI inlined),
 * exp16.h, and bt_avx512_twin_supported() — whether this build has the twins and this CPU (as
 * isa_cap.h lets it report) runs them, what each twin's exported *_supported() answers.
 */
#ifndef BT_AVX512_TWIN_H
#define BT_AVX512_TWIN_H
#include <stdint.h>
#include "isa_cap.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include "avx512_lanes.h"
#define BT_HAVE_AVX512_BUILD 1
#define BT_Z __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define BT_ZI BT_Z static inline __attribute__((always_inline))
#include "exp16.h"
#endif

static inline int32_t bt_avx512_twin_supported(void) {
#ifdef BT_HAVE_AVX512_BUILD
    return bt_isa_avx512_fma();
#else
    return 0;
#endif
}
#endif
