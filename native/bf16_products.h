/*
 * How this process multiplies bfloat16 (bf16_products.c; used by bf16_gemm.c, bf16_panels.c and
 * int8_bf16_panels.c).
 */
#ifndef BT_BF16_PRODUCTS_H
#define BT_BF16_PRODUCTS_H
#include <stdint.h>

/*
 * The two ways: by vdpbf16ps on pairs of bfloat16, or by float32 FMAs on the same numbers widened
 * — each bfloat16 is the top half of a float32, so the widened products are exact and summed into
 * float32 in vdpbf16ps's order (a pair's odd element first). Where a vdpbf16ps takes four FMAs' time
 * (Intel's AVX512_BF16 cores without AMX: half the float32 FLOPs) the widened products win despite
 * the widening; where it takes one (AMD's Zen 4) a vdpbf16ps does twice an FMA's work and wins.
 */
enum { BT_BF16_PRODUCTS_UNSET = -1, BT_BF16_PRODUCTS_PAIRS = 0, BT_BF16_PRODUCTS_WIDENED = 1 };

/* BT_BF16_PRODUCTS_PAIRS or _WIDENED: measured on the first call unless set. */
int32_t bt_bf16_gemm_products(void);

/* Sets the way (anything but the two measures again at the next call), between products only. */
void bt_bf16_gemm_set_products(int32_t which);
#endif
