/*
 * One 64-byte line of weight-only int8 panels (int8_bf16_panels.c's order: 32 output rows' pairs of
 * k side by side) as float32 vectors for the widened products (int8_bf16_panels.c where vdpbf16ps is
 * slow, int8_f32_panels.c): one vpermb splits the line into its rows' even and odd bytes, and each
 * quarter is widened to float32 (exact). Include after <immintrin.h>, in code built for AVX-512
 * F/BW/VL with VBMI.
 */
#ifndef BT_INT8_PAIR_LINES_H
#define BT_INT8_PAIR_LINES_H
#include <stdint.h>

/* Rows 0–15 and 16–31's even elements of `line` (even0, even1), then their odd ones; `halves`: 64 aligned bytes of scratch. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi"), always_inline, unused))
static inline void bt_int8_pair_line(const int8_t *line, int8_t *halves, __m512 *even0, __m512 *even1, __m512 *odd0, __m512 *odd1) {
    /* byte i of the split line: row i's even byte (i < 32), row i − 32's odd byte */
    const __m512i split = _mm512_set_epi8(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                          31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1,
                                          62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32,
                                          30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    /* through memory: a widening load of each quarter takes a load port where an extract took the shuffle port */
    _mm512_store_si512(halves, _mm512_permutexvar_epi8(split, _mm512_loadu_si512(line)));
    const int8_t *h = halves;
    __asm__("" : "+r"(h));      /* else GCC forwards the store and extracts again */
    *even0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *) h)));
    *even1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *) (h + 16))));
    *odd0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *) (h + 32))));
    *odd1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *) (h + 48))));
}

/*
 * A whole panel's `pairs` lines split and widened once into `wide` [pairs][even0, even1, odd0, odd1][16]
 * float32 (64-byte aligned), for a product of more rows than one pass: every pass then reads them
 * with plain loads, where each would split and widen the lines again on the FMAs' ports.
 */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi"), unused))
static void bt_int8_pair_panel(const int8_t *panel, int64_t pairs, float *wide) {
    int8_t halves[64] __attribute__((aligned(64)));
    for (int64_t q = 0; q < pairs; q++) {
        __m512 even0, even1, odd0, odd1;
        bt_int8_pair_line(panel + q * 64, halves, &even0, &even1, &odd0, &odd1);
        float *at = wide + q * 64;
        _mm512_store_ps(at, even0), _mm512_store_ps(at + 16, even1), _mm512_store_ps(at + 32, odd0), _mm512_store_ps(at + 48, odd1);
    }
}

/* A line's four vectors as bt_int8_pair_panel stored them for pair q. */
__attribute__((target("avx512f"), always_inline, unused))
static inline void bt_int8_pair_wide(const float *wide, int64_t q, __m512 *even0, __m512 *even1, __m512 *odd0, __m512 *odd1) {
    const float *at = wide + q * 64;
    *even0 = _mm512_load_ps(at), *even1 = _mm512_load_ps(at + 16), *odd0 = _mm512_load_ps(at + 32), *odd1 = _mm512_load_ps(at + 48);
}
#endif
