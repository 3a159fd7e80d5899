/*
 * One row of masked_softmax.c's probabilities and their backward, for kernels that form the scores
 * themselves (attention_bf16.c, attention_f32.c).
 */
#ifndef BT_MASKED_SOFTMAX_H
#define BT_MASKED_SOFTMAX_H
#include <stdint.h>

/*
 * p = softmax(masked ? float32's lowest : score) over s keys, in float, into p (float) and out
 * (bfloat16). A row with every key masked comes out uniform, as HF's does; exp of anything below
 * −87.3 is 0.
 */
void bt_masked_softmax_row(const uint16_t *score, const uint8_t *masked, float *p, uint16_t *out, int64_t s);

/* One row of the scores' gradient: masked ? 0 : p · (g − Σ p·g), rounded to bfloat16. */
void bt_masked_softmax_row_backward(const uint16_t *g, const float *p, const uint8_t *masked, uint16_t *out, int64_t s);
/* bt_masked_softmax_row in float32 throughout: score and p float32 (p may be score). */
void bt_masked_softmax_row_f32(const float *score, const uint8_t *masked, float *p, int64_t s);

/* One row of the scores' gradient in float32, in place of the probabilities p: masked ? 0 : p · (g − Σ p·g). */
void bt_masked_softmax_row_backward_f32(const float *g, const uint8_t *masked, float *p, int64_t s);
#endif
