/*
 * The widest instruction set the kernels' *_supported() checks may report, below what the CPU
 * has: set once by the Java side from -Dbloomtune.kernels before any kernel is bound
 * (KernelSelection), so that a process can take the paths a CPU without AVX-512 or without
 * AVX2 takes. target_clones resolvers still pick by the CPU (their clones are one C function
 * vectorized differently, not other algorithms).
 */
#ifndef BT_ISA_CAP_H
#define BT_ISA_CAP_H
#include <stdint.h>

enum { BT_ISA_PORTABLE = 0, BT_ISA_AVX2 = 1, BT_ISA_AVX512 = 2 };

/* Whether kernels needing `level` may run (before the CPU's own check). */
int32_t bt_isa_allows(int32_t level);

/* Whether AVX-512 kernels may run and this CPU has AVX-512 F/BW/VL and FMA (the hand-written twins' needs). */
int32_t bt_isa_avx512_fma(void);
#endif
