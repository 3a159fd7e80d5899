/*
 * Up to eight rows of x side by side, eight bytes of each row per 64-byte group, for the 2–8-row
 * kernels (int8_vnni_int_mm.c, bf16_rows_linear.c, f32_rows_linear.c). Each loaded line of a weight row is spread over
 * a vector eight bytes at a time (vpermq) and multiplied against one group: every row of x at once,
 * so sixteen weight rows can be read side by side, a whole line each, with one accumulator each.
 * Tiles of whole 64-byte columns against each row of x in turn (2 × 8, 4 × 4) read the weight more
 * slowly than a plain read; these reach it (benchmarks/FINDINGS.md).
 */
#ifndef BT_PACKED_ROWS_H
#define BT_PACKED_ROWS_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Rows of x per group: eight qwords, one 64-byte vector. */
#define BT_PACKED_ROWS 8

/* Bytes of the packed form of rows of row_bytes bytes: eight rows, row_bytes rounded up to 64. */
static inline int64_t bt_packed_rows_bytes(int64_t row_bytes) {
    return BT_PACKED_ROWS * ((row_bytes + 63) & ~(int64_t) 63);
}

/*
 * x [rows ≤ 8, row_bytes] into xp (bt_packed_rows_bytes(row_bytes) bytes): qword j of group s holds
 * bytes 8s .. 8s + 7 of row j. Rows past `rows` and bytes past row_bytes are zero, so they add no
 * product.
 */
static inline void bt_pack_rows(const void *x, int64_t rows, int64_t row_bytes, int64_t *xp) {
    const char *bytes = (const char *) x;
    int64_t full = row_bytes / 8;
    memset(xp, 0, (size_t) bt_packed_rows_bytes(row_bytes));
    for (int64_t j = 0; j < rows; j++) {
        const char *row = bytes + j * row_bytes;
        for (int64_t s = 0; s < full; s++) memcpy(&xp[BT_PACKED_ROWS * s + j], row + 8 * s, 8);
        if (row_bytes > 8 * full) memcpy(&xp[BT_PACKED_ROWS * full + j], row + 8 * full, (size_t) (row_bytes - 8 * full));
    }
}

/*
 * x [rows, row_bytes] packed into a fresh 64-byte-aligned buffer the caller frees; NULL when rows
 * is not 1–8 or the memory cannot be had (the caller then takes its other path).
 */
static inline int64_t *bt_packed_copy(const void *x, int64_t rows, int64_t row_bytes) {
    if (rows < 1 || rows > BT_PACKED_ROWS) return NULL;
    int64_t *xp = aligned_alloc(64, (size_t) bt_packed_rows_bytes(row_bytes));
    if (xp != NULL) bt_pack_rows(x, rows, row_bytes, xp);
    return xp;
}
#endif
