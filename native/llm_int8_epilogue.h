/*
 * What LLM.int8's native kernels do after the int8 × int8 product, whatever the weight's layout
 * (llm_int8_rows_linear.c row-major, llm_int8_panels.c in panels): x quantized (outlier columns
 * marked and zeroed, each row absmax / 127), and each block of int32 sums rescaled
 * ((float) acc · row scale) · weight scale, the outlier columns' float product added, the result
 * written in x's dtype and the layer's bias added to it there. Contraction off: a fused
 * multiply-add would round once where the op-by-op path (LlmInt8.opByOp) rounds twice.
 */
#ifndef BT_LLM_INT8_EPILOGUE_H
#define BT_LLM_INT8_EPILOGUE_H
#include <stdint.h>
#include <stdlib.h>

#include "bf16.h"

int32_t bt_llm_int8_quantize(const float *x, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale, uint8_t *outlier);
int32_t bt_llm_int8_quantize_bf16(const uint16_t *x, int64_t m, int64_t k, float threshold, int8_t *x8, float *rowScale,
                                  uint8_t *outlier, float *buf);

/* x's element type, as the caller passes it. */
enum { BT_X_F32 = 0, BT_X_BF16 = 1 };

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BT_EPILOGUE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BT_EPILOGUE_CLONES
#endif

/*
 * x [rows, k] quantized: x8 [rows, k], rowScale [rows], the outlier columns' indices into cols
 * (k int32 of room) in ascending order; flag [k] and buf [k] float32 are scratch. Returns how many
 * columns are outliers.
 */
static inline int32_t bt_llm_int8_prepare(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, int8_t *x8,
                                          float *rowScale, uint8_t *flag, int32_t *cols, float *buf) {
    int32_t outliers = type == BT_X_F32
            ? bt_llm_int8_quantize((const float *) x, rows, k, threshold, x8, rowScale, flag)
            : bt_llm_int8_quantize_bf16((const uint16_t *) x, rows, k, threshold, x8, rowScale, flag, buf);
    for (int64_t c = 0, o = 0; c < k && o < outliers; c++) if (flag[c]) cols[o++] = (int32_t) c;
    return outliers;
}

static inline float bt_llm_int8_x_at(const void *x, int32_t type, int64_t i) {
    return type == BT_X_F32 ? ((const float *) x)[i] : bf16_to_float(((const uint16_t *) x)[i]);
}

/*
 * One row's block of results: y[j] = ((float) acc[j] · rowScale) · scales[j] for count columns, in
 * x's dtype, the bias added to the result in x's dtype. No branch inside the loops, so they
 * vectorize (the clones pick the CPU's widest vectors).
 */
BT_EPILOGUE_CLONES __attribute__((optimize("fp-contract=off")))
static void bt_llm_int8_rescale_row(const int32_t *acc, float rowScale, const float *scales, const void *bias, int32_t type,
                                    int64_t count, void *y) {
    if (type == BT_X_F32) {
        float *out = (float *) y;
        const float *b = (const float *) bias;
        if (b) for (int64_t j = 0; j < count; j++) out[j] = ((float) acc[j] * rowScale) * scales[j] + b[j];
        else for (int64_t j = 0; j < count; j++) out[j] = ((float) acc[j] * rowScale) * scales[j];
    } else {
        uint16_t *out = (uint16_t *) y;
        const uint16_t *b = (const uint16_t *) bias;
        if (b) for (int64_t j = 0; j < count; j++) out[j] = float_to_bf16(bf16_to_float(float_to_bf16(((float) acc[j] * rowScale) * scales[j])) + bf16_to_float(b[j]));
        else for (int64_t j = 0; j < count; j++) out[j] = float_to_bf16(((float) acc[j] * rowScale) * scales[j]);
    }
}

/*
 * Where the weight's bytes of one block are: weight row j of the block starts at w + j · row_step,
 * and its column cols[o] lies column_at[o] bytes on (for a row-major weight column_at is cols).
 */
typedef struct {
    const int8_t *w;
    int64_t row_step;
    const int32_t *column_at;
} bt_llm_int8_block_weight;

/*
 * Rows [0, rows) of x against a block of count weight rows: acc [rows, ldacc] their int32 sums with
 * the outlier columns zeroed in x8; scales, bias (or NULL) and y (row stride ldy) start at the block's
 * first column. The outlier columns' sums x[r, c] · ((float) w[j, c] · scale[j]) are float32, added
 * before the bias and rounding — the op-by-op path's addmm up to the order of the additions.
 */
__attribute__((optimize("fp-contract=off")))
static inline void bt_llm_int8_finish(const int32_t *acc, int64_t ldacc, int64_t rows, int64_t count, const float *rowScale,
                                      const float *scales, const void *bias, const void *x, int32_t type, int64_t k,
                                      const int32_t *cols, int32_t outliers, bt_llm_int8_block_weight w, void *y, int64_t ldy) {
    int64_t elem = type == BT_X_F32 ? 4 : 2;
    for (int64_t r = 0; r < rows; r++) {
        if (outliers == 0) {
            bt_llm_int8_rescale_row(acc + r * ldacc, rowScale[r], scales, bias, type, count, (char *) y + r * ldy * elem);
            continue;
        }
        for (int64_t j = 0; j < count; j++) {
            const int8_t *row = w.w + j * w.row_step;
            float s = 0.0f;
            for (int32_t o = 0; o < outliers; o++) s += bt_llm_int8_x_at(x, type, r * k + cols[o]) * ((float) row[w.column_at[o]] * scales[j]);
            float v = ((float) acc[r * ldacc + j] * rowScale[r]) * scales[j] + s;
            if (type == BT_X_F32) {
                ((float *) y)[r * ldy + j] = bias ? v + ((const float *) bias)[j] : v;
            } else {
                uint16_t h = float_to_bf16(v);
                if (bias) h = float_to_bf16(bf16_to_float(h) + bf16_to_float(((const uint16_t *) bias)[j]));
                ((uint16_t *) y)[r * ldy + j] = h;
            }
        }
    }
}
#endif
