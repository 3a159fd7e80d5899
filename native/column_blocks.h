/*
 * How the GEMMs (bf16_gemm.c, f32_gemm.c) split C over libtorch's OpenMP threads (the same libgomp,
 * so no second set of threads competes for the cores): blocks of columns taken one at a time from a
 * shared counter, so that a thread held back (the hypervisor's steal, another process) leaves the
 * rest to the others instead of keeping them waiting at the end. Each block is one thread's alone,
 * so C does not depend on who took it.
 */
#ifndef BT_COLUMN_BLOCKS_H
#define BT_COLUMN_BLOCKS_H
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* One block: columns [from, from + count) by `thread` (0 .. threads − 1), with the caller's `context`. */
typedef void (*bt_column_block)(void *context, int64_t from, int64_t count, int thread);

/* Columns [0, n) in blocks of `width` (the last may be narrower) by up to `threads` threads. */
static inline void bt_column_blocks(int64_t n, int64_t width, int32_t threads, bt_column_block run, void *context) {
    int64_t blocks = (n + width - 1) / width;
    int64_t next = 0;   /* the next block not yet taken */
#ifdef _OPENMP
    #pragma omp parallel num_threads(threads > blocks ? (int) blocks : threads)
    {
        int t = omp_get_thread_num();
#else
    {
        int t = 0;
        (void) threads;
#endif
        for (int64_t block = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED); block < blocks;
             block = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED)) {
            int64_t from = block * width;
            run(context, from, from + width < n ? width : n - from, t);
        }
    }
}
#endif
