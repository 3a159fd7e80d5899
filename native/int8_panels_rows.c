/*
 * Rows of an int8 weight kept in panels (panels.h), dequantized as the word embedding's lookup
 * does in libtorch: the values and the row's scale made the compute dtype, then multiplied. An
 * inference-only model's word embedding lives in its tied lm_head's panels, so a decode step's
 * input rows come from there; one call instead of the gather, two casts, a scale lookup and a
 * product as separate libtorch ops.
 *
 * `word_bytes` is the layout's word: 2 for the weight-only panels (int8_bf16_panels.c, also read by
 * int8_f32_panels.c), 4 for LLM.int8's (llm_int8_panels.c). float32: each value times the scale,
 * rounded once. bfloat16: the scale first rounded to bfloat16 (the value is exact), the product
 * rounded once — libtorch's bfloat16 product.
 */
#include <stdint.h>
#include <string.h>
#include "bf16.h"
#include "panels.h"

/* Values a pass gathers before widening them: a pass's bytes sit on the stack. */
#define CHUNK 1024

/*
 * One row of `words` words of W bytes from its panel (word q at q · W · BT_PANEL bytes), each value
 * times `scale`, into out: a chunk's words gathered first (independent loads, many in flight: each
 * word is a line of its own), then widened and scaled front to back.
 */
static inline __attribute__((always_inline)) void scaled_row(const int8_t *first, int64_t words, const int64_t W, float scale,
                                                             int32_t bf16, void *out) {
    int8_t values[CHUNK];
    for (int64_t q0 = 0; q0 < words; q0 += CHUNK / W) {
        int64_t n = words - q0 < CHUNK / W ? words - q0 : CHUNK / W;
        for (int64_t q = 0; q < n; q++) memcpy(values + q * W, first + (q0 + q) * W * BT_PANEL, (size_t) W);
        int64_t at = q0 * W;
        if (bf16) for (int64_t c = 0; c < n * W; c++) ((uint16_t *) out)[at + c] = float_to_bf16((float) values[c] * scale);
        else for (int64_t c = 0; c < n * W; c++) ((float *) out)[at + c] = (float) values[c] * scale;
    }
}

/* Rows `ids` [count] (each below the packed n) of panels [n, k] with row `scales` [n]: out [count, k] float32, or bfloat16 bits when bf16. */
void bt_int8_panels_rows(const int8_t *panels, const float *scales, int64_t k, int64_t word_bytes, const int64_t *ids, int64_t count,
                         int32_t bf16, void *out) {
    int64_t words = k / word_bytes, element = bf16 ? 2 : 4;
    for (int64_t i = 0; i < count; i++) {
        int64_t t = ids[i];
        const int8_t *first = (const int8_t *) bt_panels_row(panels, t, words, word_bytes);
        float scale = bf16 ? bf16_to_float(float_to_bf16(scales[t])) : scales[t];
        void *row = (char *) out + i * k * element;
        /* The word size as a constant, so the inner loop unrolls without a division per element. */
        if (word_bytes == 2) scaled_row(first, words, 2, scale, bf16, row);
        else scaled_row(first, words, 4, scale, bf16, row);
    }
}
