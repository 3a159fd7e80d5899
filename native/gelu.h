/*
 * BLOOM's tanh GELU, 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³), as x · σ(2u) from one
 * exp of −2|u| (never above 1, so nothing overflows for any x), and its slope for the backward.
 * Below float's range that exp is 0, not bt_exp's clamped 1.2e-38, so the far negative tail is
 * the exact −0 rather than a tiny number x times too large. The includer defines BT_INLINE and
 * includes fast_exp.h first.
 */
#ifndef BT_GELU_H
#define BT_GELU_H
#include <math.h>

#define BT_GELU_BETA 0.7978845608028654f     /* √(2/π) */
#define BT_GELU_KAPPA 0.044715f

BT_INLINE float bt_gelu_u(float x) { return BT_GELU_BETA * x * (1.0f + BT_GELU_KAPPA * x * x); }

/* e^(−2|u|), 0 where it is below float's normal range. */
BT_INLINE float bt_gelu_t(float u) {
    float a = 2.0f * fabsf(u);
    return a > 87.3f ? 0.0f : bt_exp(-a);
}

BT_INLINE float bt_gelu(float x) {
    float u = bt_gelu_u(x);
    float t = bt_gelu_t(u);
    return x * ((u >= 0 ? 1.0f : t) / (1.0f + t));
}

/*
 * d gelu / dx = s + 2x · s(1 − s) · β(1 + 3κx²) with s = σ(2u) — libtorch's
 * 0.5(1 + tanh) + 0.5x(1 − tanh²)·β(1 + 3κx²) — with s and 1 − s each from t = e^(−2|u|), so
 * neither is a difference of nearly equal numbers.
 */
BT_INLINE float bt_gelu_slope(float x) {
    float u = bt_gelu_u(x);
    float t = bt_gelu_t(u);
    float inv = 1.0f / (1.0f + t);
    float s = (u >= 0 ? 1.0f : t) * inv;
    float rest = (u >= 0 ? t : 1.0f) * inv;
    float tail = 2.0f * x * s * rest * BT_GELU_BETA * (1.0f + 3.0f * BT_GELU_KAPPA * x * x);
    return s + (t > 0 ? tail : 0.0f);             /* t = 0 only for |x| > 9: s(1 − s) is 0, x² may be inf */
}
#endif
