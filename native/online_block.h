/*
 * The online softmax's recurrence over a block's rows, shared by online_softmax.c and its AVX-512
 * twin. The includer defines BT_INLINE (so the loop takes the includer's target) and, before
 * including, its row_max(row, n, bf16) and exp_in_place(row, n, max, bf16).
 */
#ifndef BT_ONLINE_BLOCK_H
#define BT_ONLINE_BLOCK_H
#include <math.h>
#include <stdint.h>
#include <stddef.h>

BT_INLINE void online_block(void *block, const int bf16, int64_t m, int64_t n, float *runMax, double *runSum, float *rescale) {
    size_t width = bf16 ? sizeof(uint16_t) : sizeof(float);
    for (int64_t r = 0; r < m; r++) {
        void *row = (char *) block + (size_t) (r * n) * width;
        float blockMax = row_max(row, n, bf16);
        float newMax = blockMax > runMax[r] ? blockMax : runMax[r];
        float factor = runMax[r] == -INFINITY ? 0.0f : (float) exp((double) runMax[r] - newMax);
        runSum[r] = runSum[r] * factor + exp_in_place(row, n, newMax, bf16);
        runMax[r] = newMax;
        rescale[r] = factor;
    }
}
#endif
