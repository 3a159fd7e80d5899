/*
 * bfloat16 panels (bf16_panels.c) for a caller that runs one linear's panels in chunks on several
 * threads (decode_blocks.c): where the product widens x to float32 (vdpbf16ps is slow on this CPU),
 * each thread widens its rows once for the linear, not once for every panel, and multiplies the
 * chunks it takes from that copy. The same sums in the same order: the same bits.
 */
#ifndef BT_BF16_PANELS_H
#define BT_BF16_PANELS_H
#include <stdint.h>

int32_t bt_bf16_rows_supported(void);

/* 1 where the panels' product widens x (then a caller may widen it once), else 0. */
int32_t bt_bf16_panels_widened(void);

/* x [rows, k] bfloat16 widened into xw [rows, k] float32 (exact). */
void bt_bf16_panels_widen(const uint16_t *x, int64_t rows, int64_t k, float *xw);

/* bt_bf16_panels_linear with x's rows also given widened (xw, from bt_bf16_panels_widen). */
void bt_bf16_panels_widened_linear(const uint16_t *panels, const uint16_t *x, const float *xw, const uint16_t *bias, uint16_t *y,
                                   int64_t rows, int64_t n, int64_t k, int64_t ldy);
#endif
