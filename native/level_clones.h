/*
 * BT_LEVEL_CLONES: target_clones by x86-64 level (v4, v3, baseline) rather than by one extension.
 * v3 and v4 bring FMA, which an "avx512f" clone lacks (its polynomials then run as separate
 * multiplies and adds, at several times the cost); the contraction moves results by float rounding
 * only. For kernels whose float results are rounded to bfloat16 or held to a tolerance, not to
 * libtorch's bits.
 */
#ifndef BT_LEVEL_CLONES_H
#define BT_LEVEL_CLONES_H
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BT_LEVEL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BT_LEVEL_CLONES
#endif
#endif
