/*
 * A vectorizable exp for softmax numerators, shared by the kernels that need one. The includer
 * defines BT_INLINE (always_inline), so each target clone gets the function in its instruction set.
 */
#ifndef BT_FAST_EXP_H
#define BT_FAST_EXP_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/*
 * exp(x) for x <= 0 (a logit minus its row's max), vectorizable: 2^n · p(f) with n = round(x /
 * ln 2) and Cephes' degree-6 polynomial on f in [−ln2/2, ln2/2] (relative error about 1e-7).
 * Inputs below −87.3 are clamped there: e^−87.3 ≈ 1.2e-38 beside a row sum of at least 1.
 */
BT_INLINE float bt_exp(float x) {
    x = x < -87.3f ? -87.3f : x;
    float n = nearbyintf(x * 1.44269504088896341f);
    float f = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * f + 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    p = p * f * f + f + 1.0f;
    int32_t bits = ((int32_t) n + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}
#endif
