/* isa_cap.h's cap: every level allowed until the Java side lowers it. */
#include "isa_cap.h"

static int32_t cap = BT_ISA_AVX512;

void bt_set_isa_cap(int32_t level) { cap = level; }

int32_t bt_isa_allows(int32_t level) { return level <= cap; }
