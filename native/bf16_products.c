/*
 * Which way bfloat16 products multiply in this process (bf16_products.h): measured once by timing
 * the two instructions, or set by the Java side (Bf16Products, -Dbloomtune.bf16.products).
 */
#include <stdint.h>
#include "bf16_products.h"

int32_t bt_bf16_gemm_supported(void);   /* bf16_gemm.c: the CPU has AVX512_BF16 and the kernels may use it */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#define BT_HAVE_BF16_PRODUCTS_BUILD 1
#define BT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/*
 * Cycles (the TSC's) for PROBE_ROUNDS × 16 independent vdpbf16ps, or as many float32 FMAs: each
 * instruction's throughput with no dependency between neighbours. Sixteen named accumulators and
 * empty asms over them every round keep the sums in registers and the loop from being folded away.
 */
#define PROBE_ROUNDS 4096
#define PROBE_KEEP(a) \
    __asm__ volatile("" : "+v"(a##0), "+v"(a##1), "+v"(a##2), "+v"(a##3), "+v"(a##4), "+v"(a##5), "+v"(a##6), "+v"(a##7)); \
    __asm__ volatile("" : "+v"(a##8), "+v"(a##9), "+v"(a##10), "+v"(a##11), "+v"(a##12), "+v"(a##13), "+v"(a##14), "+v"(a##15))
#define PROBE_LOOP(op) \
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0, s8 = s0, s9 = s0, s10 = s0, \
           s11 = s0, s12 = s0, s13 = s0, s14 = s0, s15 = s0; \
    uint64_t t = __builtin_ia32_rdtsc(); \
    for (int round = 0; round < PROBE_ROUNDS; round++) { \
        op(s0); op(s1); op(s2); op(s3); op(s4); op(s5); op(s6); op(s7); \
        op(s8); op(s9); op(s10); op(s11); op(s12); op(s13); op(s14); op(s15); \
        PROBE_KEEP(s); \
    } \
    return __builtin_ia32_rdtsc() - t

BT_BF16 static uint64_t pair_cycles(void) {
    __m512bh x = (__m512bh) _mm512_set1_epi32(0x3f803f80);
#define PAIR_OP(acc) acc = _mm512_dpbf16_ps(acc, x, x)
    PROBE_LOOP(PAIR_OP);
}

BT_BF16 static uint64_t fma_cycles(void) {
    __m512 x = _mm512_set1_ps(1.0f);
#define FMA_OP(acc) acc = _mm512_fmadd_ps(x, x, acc)
    PROBE_LOOP(FMA_OP);
}

/*
 * Widened when a vdpbf16ps (two multiply-adds a lane) takes more than 1.6 FMAs' time: the fastest
 * of seven alternating runs of each, so that a run the hypervisor interrupted does not decide.
 */
static int32_t measured_products(void) {
    uint64_t pairs = UINT64_MAX, fmas = UINT64_MAX;
    for (int run = 0; run < 7; run++) {
        uint64_t p = pair_cycles(), f = fma_cycles();
        if (p < pairs) pairs = p;
        if (f < fmas) fmas = f;
    }
    return pairs * 10 > fmas * 16 ? BT_BF16_PRODUCTS_WIDENED : BT_BF16_PRODUCTS_PAIRS;
}
#endif

static int32_t products = BT_BF16_PRODUCTS_UNSET;

/* The Java side calls it when it binds the kernels, before any product runs. */
int32_t bt_bf16_gemm_products(void) {
    int32_t way = __atomic_load_n(&products, __ATOMIC_ACQUIRE);
    if (way != BT_BF16_PRODUCTS_UNSET) return way;
#ifdef BT_HAVE_BF16_PRODUCTS_BUILD
    way = bt_bf16_gemm_supported() ? measured_products() : BT_BF16_PRODUCTS_PAIRS;
#else
    way = BT_BF16_PRODUCTS_PAIRS;
#endif
    /* threads that measured at once publish one answer: the first, which all of them then use */
    int32_t unset = BT_BF16_PRODUCTS_UNSET;
    return __atomic_compare_exchange_n(&products, &unset, way, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ? way : unset;
}

void bt_bf16_gemm_set_products(int32_t which) {
    __atomic_store_n(&products, which == BT_BF16_PRODUCTS_PAIRS || which == BT_BF16_PRODUCTS_WIDENED ? which : BT_BF16_PRODUCTS_UNSET,
                     __ATOMIC_RELEASE);
}
