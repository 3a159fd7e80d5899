/*
 * What llm_int8_quantize.c and its AVX-512 twin (llm_int8_quantize_avx512.c) share: the element
 * types of x, as the twin's `type` names them, and the twin's entry points.
 */
#ifndef BT_LLM_INT8_QUANTIZE_H
#define BT_LLM_INT8_QUANTIZE_H
#include <stdint.h>

/* The element type of x: float32, or 16-bit patterns (bfloat16, float16) widened as they are read. */
enum { BT_QUANTIZE_F32 = 0, BT_QUANTIZE_BF16 = 1, BT_QUANTIZE_F16 = 2 };

/* Whether this build has the twin and this CPU runs it (AVX-512 F/BW/VL). */
int32_t bt_llm_int8_quantize_avx512_supported(void);

/* bt_llm_int8_quantize's arguments and result for x of `type`, x's rows as they are; -1 where the twin is not built. */
int32_t bt_llm_int8_quantize_avx512(const void *x, int32_t type, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale,
                                    uint8_t *outlier);
#endif
