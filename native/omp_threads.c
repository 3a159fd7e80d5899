/*
 * The calling thread's OpenMP thread count — libtorch's intra-op count, which libtorch reads back
 * as omp_get_max_threads() — set in the libgomp libtorch loaded (this library binds to
 * it: NativeLibrary loads libtorch first). omp_set_num_threads changes the calling thread's count
 * alone, so other threads' ops keep theirs.
 */
#include <omp.h>
#include <stdint.h>

void bt_omp_set_num_threads(int32_t n) { omp_set_num_threads(n < 1 ? 1 : n); }
