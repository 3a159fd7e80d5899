/*
 * Weight tiles requested ahead, in memory order. A multi-row kernel walks a tile of a few
 * contiguous weight rows column by column, which reads one interleaved stream per row; the
 * hardware prefetcher picks those up late. Asking, at each column step, for the matching share of
 * the tile two on, front to back, into L2 (locality 2: prefetcht1) hands the memory system one
 * sequential stream instead. For the int8 × bfloat16 kernel at 4 and 8 rows that read faster than
 * asking for the next tile's rows at the same column; the float32 kernels read faster with the
 * latter and keep it, as do the packed tiles of sixteen rows (packed_rows.h) (figures in
 * benchmarks/FINDINGS.md). A macro: GCC 12 dropped
 * prefetches written in a static inline function.
 */
#ifndef BT_PREFETCH_H
#define BT_PREFETCH_H

#define BT_TILES_AHEAD 2

/*
 * How far ahead of its loads a one-row kernel, reading a weight row front to back, requests the
 * stream (rows of a matrix are contiguous, so this runs into the next rows): a memory latency at two
 * threads' read rate. The VNNI one-row kernel reads a little faster with it and the int8 × bfloat16
 * one no slower; on EPYC the bfloat16 and float32-activation ones (bf16_rows_linear.c,
 * f32_rows_linear.c) read faster without it, on Intel Xeon the int8 × float32 one far slower
 * (bt_requests_single_stream below; benchmarks/FINDINGS.md).
 */
#define BT_ROW_AHEAD 2048

/*
 * Whether a kernel that reads a single weight stream front to back (one row of x, or a few against
 * panels) should still request it ahead by hand. Measured per vendor, each on its own VM
 * (benchmarks/FINDINGS.md): on AMD EPYC (Zen 4) the hardware prefetcher keeps such a stream fed and
 * the requests only slowed it; on Intel Xeon (Emerald Rapids) the same loops read far below the
 * memory's rate without them and near it with them. Kernels with several streams request always.
 */
static inline int bt_requests_single_stream(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
#else
    return 0;
#endif
}

/*
 * Inside a loop over the columns of a tile of `rows` weight rows of `row_bytes` bytes starting at
 * `tile`: at column byte offset `col`, stepping `step` bytes per iteration, requests rows × step
 * bytes of the tile BT_TILES_AHEAD on, so that one pass over the columns requests all of it.
 * Requests past the end of the weight are harmless: prefetches never fault.
 */
#define BT_PREFETCH_TILE_AHEAD(tile, rows, row_bytes, col, step) do { \
        const char *bt_ahead = (const char *) (tile) + BT_TILES_AHEAD * (int64_t) (rows) * (row_bytes) + (int64_t) (col) * (rows); \
        for (int bt_line = 0; bt_line < (rows) * (step); bt_line += 64) __builtin_prefetch(bt_ahead + bt_line, 0, 2); \
    } while (0)
#endif
