/*
 * Weight-only int8 panels (int8_bf16_panels.c's layout) times x written as three int8 digits a
 * value (int8_digits_panels.c), in two steps for a caller that runs one linear's panels in chunks
 * on several threads (decode_blocks.c): each thread writes x's digits once, then multiplies the
 * chunks it takes. The float32 and bfloat16 weight-only panel kernels call both steps themselves
 * when that is the way for x's dtype (bt_int8_weight_products_for).
 */
#ifndef BT_INT8_DIGITS_PANELS_H
#define BT_INT8_DIGITS_PANELS_H
#include <stdint.h>

/* How the weight-only int8 panels multiply: x widened to float32 for FMAs, or x's digits by vpdpbusd. */
enum { BT_INT8_PRODUCTS_UNSET = -1, BT_INT8_PRODUCTS_FLOATS = 0, BT_INT8_PRODUCTS_DIGITS = 1 };

/* BT_INT8_PRODUCTS_FLOATS or _DIGITS for x of `type` (0 float32, 1 bfloat16): the way set, else the CPU's for that dtype. */
int32_t bt_int8_weight_products_for(int32_t type);

/* Sets the way for both dtypes (anything but the two: each dtype's own again), between products only. */
void bt_int8_weight_set_products(int32_t which);

/* x's digits for the product: [rows][stride] int8, each word of four elements' three digits side by side; each row's step and offsets. */
typedef struct {
    char *scratch;          /* the one allocation the rest points into */
    int8_t *planes;         /* row r's word w, digit d at r · stride + (3w + d) · 4 */
    double *step;           /* [rows]: x ≈ step · (d₀·2¹⁶ + d₁·2⁸ + d₂); NaN for a row holding a NaN or an infinity */
    int32_t *offset;        /* [rows][3]: 128 · Σ of each digit's values */
    int64_t stride;
} bt_int8_digits;

/* x [rows, k] float32 (type 0) or bfloat16 (type 1) as digits in d's own scratch; 0, or -1 (nothing to free) without memory or for bad sizes. */
int32_t bt_int8_digits_prepare(const void *x, int32_t type, int64_t rows, int64_t k, bt_int8_digits *d);

/*
 * The prepared rows times n weight rows of panels (n a multiple of 32) with scales [n]; bias [n] in x's dtype or NULL; y [rows, ldy].
 * `ahead`: weight rows of panels past the n that the caller multiplies next, which this call may request into the cache (0: none).
 */
void bt_int8_digits_product(const bt_int8_digits *d, int32_t type, int64_t rows, int64_t k, const int8_t *panels, const float *scales,
                            const void *bias, int64_t n, int64_t ahead, void *y, int64_t ldy);

void bt_int8_digits_release(bt_int8_digits *d);

/* The two steps from a caller's buffer (the Java side's prompts): its size, x's digits into it, a range of panels from it. */
int64_t bt_int8_digits_bytes(int64_t rows, int64_t k);
int32_t bt_int8_digits_write(const void *x, int32_t type, int64_t rows, int64_t k, void *buffer);
void bt_int8_digits_panels(const void *buffer, int32_t type, int64_t rows, int64_t k, const int8_t *panels, const float *scales,
                           const void *bias, int64_t n, void *y, int64_t ldy);

/* Both steps in one call; 0, or -1 when scratch memory cannot be had (nothing written). */
int32_t bt_int8_digits_linear(const void *x, int32_t type, int64_t rows, int64_t k, const int8_t *panels, const float *scales,
                              const void *bias, int64_t n, void *y, int64_t ldy);
#endif
