/*
 * LLM.int8's whole product for a decode step's few rows of x, in one call per range of weight
 * rows: x quantized (outlier columns marked and zeroed, each row absmax / 127), the int8 × int8
 * product in int32, the rescale ((float) acc · row scale) · weight scale, the outlier columns'
 * float product added, the result written in x's dtype, the layer's bias added. The op-by-op
 * path (quantize, `_int_mm` or the row kernels, rescale, index_select and addmm for the
 * outliers, a cast, the bias's add) costs more in tensor allocations and calls than the product
 * itself at these row counts (figures in benchmarks/FINDINGS.md).
 *
 * Each call quantizes x itself, so ranges of weight rows run on several threads with nothing
 * shared but x: quantizing a few rows costs microseconds, reading the weight milliseconds.
 * Products go through bt_int8_vnni_int_mm where the CPU has AVX512-VNNI, else
 * bt_int8_rows_int_mm (AVX2): the integer sums equal `_int_mm`'s; the rescale is
 * bt_int8_rescale's arithmetic; outlier products are float32 sums of x · (float) w · scale, the
 * addmm of the op-by-op path up to the order of the float32 additions.
 */
#include <stdint.h>
#include <stdlib.h>

#include "llm_int8_epilogue.h"

void bt_int8_vnni_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy);
int64_t bt_int8_vnni_packed_bytes(int64_t k);
void bt_int8_vnni_pack_rows(const int8_t *x, int64_t rows, int64_t k, int64_t *xp, int32_t off[16]);
void bt_int8_vnni_packed_int_mm(const int8_t *values, const int64_t *xp, const int32_t off[16], int32_t *y, int64_t rows,
                                int64_t n, int64_t k, int64_t ldy);
void bt_int8_rows_int_mm(const int8_t *values, const int8_t *x, int32_t *y, int64_t rows, int64_t n, int64_t k, int64_t ldy);
int32_t bt_int8_vnni_supported(void);
int32_t bt_int8_rows_supported(void);

/* Rows of x this kernel takes (a decode batch), and weight rows multiplied per int32 block. */
#define MAX_ROWS 8
#define BLOCK 64

int32_t bt_llm_int8_rows_supported(void) {
    return bt_int8_vnni_supported() || bt_int8_rows_supported();
}

/*
 * x [rows, k] float32 (type 0) or bfloat16 (type 1), contiguous; values [n, k] int8 and scales [n]
 * float32 the range of weight rows; bias [n] in x's dtype or NULL; y [rows, ldy] in x's dtype,
 * columns [0, n) written. The bias is added as a separate `add` would: to the result in x's dtype,
 * the sum rounded again. Returns 0, or -1 when rows is out of range or scratch memory cannot be had
 * (nothing written).
 */
int32_t bt_llm_int8_rows_linear(const void *x, int32_t type, int64_t rows, int64_t k, float threshold,
                                const int8_t *values, const float *scales, const void *bias, int64_t n, void *y, int64_t ldy) {
    if (rows < 1 || rows > MAX_ROWS || k < 1 || (type != BT_X_F32 && type != BT_X_BF16)) return -1;
    int vnni = bt_int8_vnni_supported();
    /* x8 packed for the VNNI product of 2–8 rows, x8 [rows, k], outlier flags [k], outlier columns
     * [k], a widened row [k]. 64-byte aligned: the product loads 64 bytes of each row of x8 (or of
     * the packed x) at a time, and a load split across two cache lines costs two. */
    int packed = vnni && rows > 1;
    int64_t packedBytes = packed ? bt_int8_vnni_packed_bytes(k) : 0;
    char *scratch = aligned_alloc(64, (size_t) ((packedBytes + rows * k + 9 * k + 3 + 63) & ~(int64_t) 63));    /* + 3: cols' alignment */
    if (scratch == NULL) return -1;
    int64_t *xp = (int64_t *) scratch;
    int8_t *x8 = (int8_t *) scratch + packedBytes;
    uint8_t *flag = (uint8_t *) (x8 + rows * k);
    int32_t *cols = (int32_t *) (((uintptr_t) (flag + k) + 3) & ~(uintptr_t) 3);
    float *buf = (float *) (cols + k);
    float rowScale[MAX_ROWS];
    int32_t outliers = bt_llm_int8_prepare(x, type, rows, k, threshold, x8, rowScale, flag, cols, buf);
    int32_t off[16];
    if (packed) bt_int8_vnni_pack_rows(x8, rows, k, xp, off);

    int32_t acc[MAX_ROWS * BLOCK];
    int64_t elem = type == BT_X_F32 ? 4 : 2;
    for (int64_t j0 = 0; j0 < n; j0 += BLOCK) {
        int64_t count = n - j0 < BLOCK ? n - j0 : BLOCK;
        if (packed) bt_int8_vnni_packed_int_mm(values + j0 * k, xp, off, acc, rows, count, k, BLOCK);
        else if (vnni) bt_int8_vnni_int_mm(values + j0 * k, x8, acc, rows, count, k, BLOCK);
        else bt_int8_rows_int_mm(values + j0 * k, x8, acc, rows, count, k, BLOCK);
        bt_llm_int8_finish(acc, BLOCK, rows, count, rowScale, scales + j0, bias ? (const char *) bias + j0 * elem : NULL, x, type, k,
                           cols, outliers, (bt_llm_int8_block_weight) {values + j0 * k, k, cols}, (char *) y + j0 * elem, ldy);
    }
    free(scratch);
    return 0;
}
