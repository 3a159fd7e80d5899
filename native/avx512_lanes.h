/*
 * bf16.h's rounding and widening, a lane mask, a 16 × 16 transpose and a sum of sixteen
 * accumulators (float32 or int32), sixteen lanes at a time, for the AVX-512 kernels. The includer includes immintrin.h and builds these into
 * functions whose targets include AVX-512 F (each carries its own target, so they inline there).
 */
#ifndef BT_AVX512_LANES_H
#define BT_AVX512_LANES_H

#define BT_AVX512F_INLINE static inline __attribute__((always_inline, target("avx512f")))

/*
 * Each lane rounded to bfloat16 as float_to_bf16 rounds (nearest even; a NaN stays a NaN), the
 * pattern in the low half of its 32 bits. Not vcvtneps2bf16: that flushes subnormals to zero.
 */
BT_AVX512F_INLINE __m512i bt_bf16_bits16(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __m512i exponent = _mm512_set1_epi32(0x7f800000);
    __mmask16 special = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, exponent), exponent);
    __mmask16 payload = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0xffff));
    __m512i kept = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_maskz_mov_epi32(payload, _mm512_set1_epi32(0x40)));
    return _mm512_mask_mov_epi32(rounded, special, kept);
}

/* Sixteen bfloat16 numbers as float32 (exact: the pattern in each lane's high half). */
BT_AVX512F_INLINE __m512 bt_bf16_widen16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

/* The first n of 16 lanes (n may be ≤ 0 or ≥ 16). */
BT_AVX512F_INLINE __mmask16 bt_lanes16(int64_t n) { return n >= 16 ? (__mmask16) 0xffff : n <= 0 ? 0 : (__mmask16) ((1u << n) - 1); }

/* r[j][i] ← r[i][j] for sixteen vectors of sixteen 32-bit lanes. */
BT_AVX512F_INLINE void bt_transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {                 /* u[i + m], 128-bit lane L: rows i..i+3 of column 4L + m */
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int m = 0; m < 4; m++) {                     /* column 4L + m: lane L of u[m], u[4 + m], u[8 + m], u[12 + m] */
        __m512i v0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x88), v1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xdd);
        __m512i v2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x88), v3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xdd);
        r[m] = _mm512_shuffle_i32x4(v0, v2, 0x88);
        r[8 + m] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
        r[4 + m] = _mm512_shuffle_i32x4(v1, v3, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
    }
}

/* Lane i = Σ of a[i]'s sixteen lanes: a transpose-and-add tree, 15 shuffle pairs for all sixteen sums. */
BT_AVX512F_INLINE __m512 bt_sum16(const __m512 a[16]) {
    __m512 b[8], c[4], d[2];
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(b[2 * i]), _mm512_castps_pd(b[2 * i + 1]));
        __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(b[2 * i]), _mm512_castps_pd(b[2 * i + 1]));
        c[i] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
    }
    for (int i = 0; i < 2; i++)
        d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88), _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], 0x88), _mm512_shuffle_f32x4(d[0], d[1], 0xdd));
}

/* bt_sum16 for int32 lanes (sums modulo 2³², as the VNNI kernel's offset arithmetic needs). */
BT_AVX512F_INLINE __m512i bt_sum16_epi32(const __m512i a[16]) {
    __m512i b[8], c[4], d[2];
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(b[2 * i], b[2 * i + 1]), _mm512_unpackhi_epi64(b[2 * i], b[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        d[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(c[2 * i], c[2 * i + 1], 0x88), _mm512_shuffle_i32x4(c[2 * i], c[2 * i + 1], 0xdd));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(d[0], d[1], 0x88), _mm512_shuffle_i32x4(d[0], d[1], 0xdd));
}
#endif
