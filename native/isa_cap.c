/* isa_cap.h's cap: every level allowed until the Java side lowers it. */
#include "isa_cap.h"

static int32_t cap = BT_ISA_AVX512;

void bt_set_isa_cap(int32_t level) { cap = level; }

int32_t bt_isa_allows(int32_t level) { return level <= cap; }

int32_t bt_isa_avx512_fma(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return bt_isa_allows(BT_ISA_AVX512) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma") ? 1 : 0;
#else
    return 0;
#endif
}
