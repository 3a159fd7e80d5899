/*
 * LLM.int8 over panels in two steps (llm_int8_panels.c), for a caller that runs one linear's panels
 * in chunks on several threads (decode_blocks.c): each thread quantizes x once into its own copy,
 * then multiplies whatever chunks it takes, so a thread can finish another's share without
 * quantizing x again for every chunk. bt_llm_int8_panels_linear does both steps in one call.
 */
#ifndef BT_LLM_INT8_PANELS_H
#define BT_LLM_INT8_PANELS_H
#include <stdint.h>

/* x quantized for the product: x8, row scales, outlier columns and where their bytes lie in a panel row, row offsets. */
typedef struct {
    char *scratch;          /* the one allocation the rest points into */
    int8_t *x8;
    float *row_scale;
    int32_t *offset;
    int32_t *cols;
    int32_t *column_at;
    int32_t outliers;
} bt_llm_int8_prepared;

int32_t bt_llm_int8_panels_prepare(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, bt_llm_int8_prepared *p);
void bt_llm_int8_panels_product(const bt_llm_int8_prepared *p, const void *x, int32_t type, int64_t rows, int64_t k,
                                const int8_t *panels, const float *scales, const void *bias, int64_t n, void *y, int64_t ldy);
void bt_llm_int8_panels_release(bt_llm_int8_prepared *p);
int32_t bt_llm_int8_panels_linear(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, const int8_t *panels,
                                  const float *scales, const void *bias, int64_t n, void *y, int64_t ldy);
#endif
