/*
 * Weight-only int8 panels (int8_bf16_panels.c's layout: 32 output rows, each pair of k side by side)
 * times x written as three signed int8 digits a value, by vpdpbusd: x ≈ step · (d₀·2¹⁶ + d₁·2⁸ + d₂)
 * with step = 2^(e − 21) for each row, 2^e ≤ max|x| < 2^(e+1), so |d₀| ≤ 64. Two lines of pairs interleaved by 16-bit words are
 * two vectors of sixteen rows' words of four k, vpdpbusd's layout; each meets a digit plane's word
 * broadcast from memory. A line of 64 weights then costs three vpdpbusd a row and one shuffle, where
 * the float32 FMAs (int8_f32_panels.c, the widened tile of int8_bf16_panels.c) take four FMAs a row
 * and nine widening instructions: on an Intel core vpdpbusd retires four times the FMAs'
 * multiply-adds (benchmarks/FINDINGS.md), and a decode batch of eight is bound by those.
 *
 * The numbers: each row's integer sums are exact (int32, k ≤ 65536), combined exactly in double and
 * scaled once, so the only error beyond the final rounding is x's representation — at most half a
 * step, 2⁻²² of the row's largest |x|; the step a power of two, every bfloat16 within 2¹⁴ of that
 * largest value is a whole number of steps and held exactly. A row holding a NaN or an infinity gives NaN in each of its outputs. Nothing depends
 * on the other rows: a row's bits are the same alone as in any batch, on one thread or two.
 * float32 outputs are sum · step · scale + bias computed in double and rounded to float32 once;
 * bfloat16 ones as the other bfloat16 kernels round them (the scaled sum, then with the bias). Only for CPUs with AVX-512 F/BW/VL and VNNI.
 */
#include "int8_digits_panels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf16_products.h"
#include "panels.h"
#include "prefetch.h"

#define PANEL BT_PANEL    /* output rows of one panel */
#define ROWS 4            /* rows of x per pass: three digits × two vectors × four rows fill 24 of 32 registers */
#define DIGITS 3
#define MAX_K 65536       /* int32 sums stay exact: k / 4 vpdpbusd of four products ≤ 255 · 128 */
#define NEAR_BYTES 1024   /* requests as int8_f32_panels.c makes them, on Intel only (bt_int8_digits_product) */
#define AHEAD_BYTES 16384
#define STEP_BITS 21      /* the step's power of two below the largest |x|'s: |x| / step < 2²², its top digit ≤ 64 */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>
#include "avx512_lanes.h"
#define BT_HAVE_DIGITS_BUILD 1
#define BT_DIGITS __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define BT_DIGITS_INLINE BT_DIGITS static inline __attribute__((always_inline))
#endif

int32_t bt_int8_vnni_supported(void);

/* The VNNI kernels' CPU (int8_vnni_int_mm.c) with AVX512VL, which the digits' 256-bit masked loads take. */
static int32_t digits_supported(void) {
#ifdef BT_HAVE_DIGITS_BUILD
    return bt_int8_vnni_supported() && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static int32_t products = BT_INT8_PRODUCTS_UNSET;     /* a way set for both dtypes, or unset: chosen per dtype */

/*
 * Digits for float32 x wherever the CPU has VNNI: widening each weight to float32 costs more than
 * three vpdpbusd a word on Intel's cores and on AMD's (benchmarks/FINDINGS.md). For bfloat16 x only
 * where its bfloat16 products are widened — a core whose vdpbf16ps is slow and whose vpdpbusd is fast
 * (Intel's); on AMD's Zen cores vdpbf16ps does two FMAs' work and the float kernel multiplies faster.
 */
int32_t bt_int8_weight_products_for(int32_t type) {
    int32_t way = __atomic_load_n(&products, __ATOMIC_ACQUIRE);
    if (way != BT_INT8_PRODUCTS_UNSET) return way;
    return digits_supported() && (type == 0 || bt_bf16_gemm_products() == BT_BF16_PRODUCTS_WIDENED) ? BT_INT8_PRODUCTS_DIGITS
                                                                                                      : BT_INT8_PRODUCTS_FLOATS;
}

void bt_int8_weight_set_products(int32_t which) {
    int32_t way = which == BT_INT8_PRODUCTS_FLOATS || (which == BT_INT8_PRODUCTS_DIGITS && digits_supported()) ? which : BT_INT8_PRODUCTS_UNSET;
    __atomic_store_n(&products, way, __ATOMIC_RELEASE);
}

void bt_int8_digits_release(bt_int8_digits *d) {
    free(d->scratch);
    d->scratch = NULL;
}

#ifdef BT_HAVE_DIGITS_BUILD
/* Sixteen elements of x from `at` (count ≤ 16 of them, the rest 0) as float32. */
BT_DIGITS_INLINE __m512 load16(const void *x, int32_t type, int64_t at, int64_t count) {
    __mmask16 m = count >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << count) - 1);
    if (type == 0) return _mm512_maskz_loadu_ps(m, (const float *) x + at);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *) x + at)), 16));
}

/* One row of k elements as digits, each word of four elements' three digits side by side (zero past k, to `padded`), its step and offsets. */
BT_DIGITS static void row_digits(const void *x, int32_t type, int64_t k, int64_t padded, int8_t *digits, double *step, int32_t *offset) {
    __m512 top = _mm512_setzero_ps(), special = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 16) {
        __m512 v = load16(x, type, i, k - i);
        top = _mm512_max_ps(top, _mm512_abs_ps(v));
        special = _mm512_add_ps(special, _mm512_mul_ps(v, _mm512_setzero_ps()));   /* NaN once an element is NaN or infinite */
    }
    float largest = _mm512_reduce_max_ps(top), flag = _mm512_reduce_add_ps(special);
    int finite = flag == 0.0f;
    int e = finite && largest > 0 ? ilogbf(largest) : 0;
    *step = !finite ? NAN : largest > 0 ? ldexp(1.0, e - STEP_BITS) : 0.0;
    __m512d scale = _mm512_set1_pd(finite && largest > 0 ? ldexp(1.0, STEP_BITS - e) : 0.0);     /* exact in double, subnormal x too */
    __m512i sums[DIGITS] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    /* the three digits' bytes of four words in one vector, then word j's three side by side */
    const __m512i sideBySide = _mm512_set_epi32(15, 14, 13, 12, 11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0);
    for (int64_t i = 0; i < padded; i += 16) {
        __m512 v = i < k ? load16(x, type, i, k - i) : _mm512_setzero_ps();
        __m256i lo = _mm512_cvtpd_epi32(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), scale));
        __m256i hi = _mm512_cvtpd_epi32(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), scale));
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        /* balanced digits: the low byte as a signed value, then the rest shifted down exactly */
        __m512i d2 = _mm512_srai_epi32(_mm512_slli_epi32(q, 24), 24);
        __m512i q1 = _mm512_srai_epi32(_mm512_sub_epi32(q, d2), 8);
        __m512i d1 = _mm512_srai_epi32(_mm512_slli_epi32(q1, 24), 24);
        __m512i d0 = _mm512_srai_epi32(_mm512_sub_epi32(q1, d1), 8);
        __m512i bytes = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(_mm512_cvtepi32_epi8(d0)), _mm512_cvtepi32_epi8(d1), 1),
                                           _mm512_cvtepi32_epi8(d2), 2);
        _mm512_mask_storeu_epi32(digits + i * DIGITS, (__mmask16) 0x0fff, _mm512_permutexvar_epi32(sideBySide, bytes));
        sums[0] = _mm512_add_epi32(sums[0], d0), sums[1] = _mm512_add_epi32(sums[1], d1), sums[2] = _mm512_add_epi32(sums[2], d2);
    }
    for (int d = 0; d < DIGITS; d++) offset[d] = (int32_t) (128u * (uint32_t) _mm512_reduce_add_epi32(sums[d]));
}
#endif

/* Bytes of a buffer for x's digits (bt_int8_digits_write): the digits, then each row's step and offsets; 0 for sizes out of range. */
int64_t bt_int8_digits_bytes(int64_t rows, int64_t k) {
    if (rows < 1 || k < 2 || k % 2 != 0 || k > MAX_K) return 0;
    int64_t padded = (k + 63) & ~(int64_t) 63;
    return (rows * DIGITS * padded + rows * (int64_t) (sizeof(double) + DIGITS * sizeof(int32_t)) + 63) & ~(int64_t) 63;
}

/* The digits of a buffer of bt_int8_digits_bytes(rows, k) bytes from a 64-byte boundary, as the product reads them. */
static bt_int8_digits view(void *buffer, int64_t rows, int64_t k) {
    int64_t stride = DIGITS * ((k + 63) & ~(int64_t) 63);
    bt_int8_digits d = {NULL, (int8_t *) buffer, (double *) ((char *) buffer + rows * stride), NULL, stride};
    d.offset = (int32_t *) (d.step + rows);
    return d;
}

/* x [rows, k] float32 (type 0) or bfloat16 (type 1) as digits into `buffer` (bt_int8_digits_bytes, 64-byte aligned); 0, or -1 for bad sizes. */
int32_t bt_int8_digits_write(const void *x, int32_t type, int64_t rows, int64_t k, void *buffer) {
#ifdef BT_HAVE_DIGITS_BUILD
    if (bt_int8_digits_bytes(rows, k) == 0 || (type != 0 && type != 1) || ((uintptr_t) buffer & 63) != 0) return -1;
    bt_int8_digits d = view(buffer, rows, k);
    int64_t element = type == 0 ? 4 : 2, padded = d.stride / DIGITS;
    for (int64_t r = 0; r < rows; r++)
        row_digits((const char *) x + r * k * element, type, k, padded, d.planes + r * d.stride, d.step + r, d.offset + r * DIGITS);
    return 0;
#else
    (void) x; (void) type; (void) rows; (void) k; (void) buffer;
    return -1;
#endif
}

int32_t bt_int8_digits_prepare(const void *x, int32_t type, int64_t rows, int64_t k, bt_int8_digits *d) {
    int64_t bytes = bt_int8_digits_bytes(rows, k);
    char *scratch = bytes > 0 ? aligned_alloc(64, (size_t) bytes) : NULL;
    if (scratch == NULL) return -1;
    if (bt_int8_digits_write(x, type, rows, k, scratch) != 0) {
        free(scratch);
        return -1;
    }
    *d = view(scratch, rows, k);
    d->scratch = scratch;
    return 0;
}

#ifdef BT_HAVE_DIGITS_BUILD
/*
 * Row r's word of digits (three side by side at `word`) broadcast from memory, each met by both
 * vectors of the interleaved lines, into the row's six named sums. In assembly: GCC's vpdpbusd
 * intrinsic copied every sum to another register and back, and spilled them to the stack at three
 * and four rows; an array of sums stayed in memory. The digits are written before the product's
 * call and not while it runs, so the asm names no memory operand.
 */
#define BT_ROW_WORD(r, word) \
    if (nr > r) \
        __asm__("vpdpbusd (%[p])%{1to16%}, %[w0], %[a00]\n\t" \
                "vpdpbusd (%[p])%{1to16%}, %[w1], %[a01]\n\t" \
                "vpdpbusd 4(%[p])%{1to16%}, %[w0], %[a10]\n\t" \
                "vpdpbusd 4(%[p])%{1to16%}, %[w1], %[a11]\n\t" \
                "vpdpbusd 8(%[p])%{1to16%}, %[w0], %[a20]\n\t" \
                "vpdpbusd 8(%[p])%{1to16%}, %[w1], %[a21]" \
                : [a00] "+v"(a##r##00), [a01] "+v"(a##r##01), [a10] "+v"(a##r##10), [a11] "+v"(a##r##11), \
                  [a20] "+v"(a##r##20), [a21] "+v"(a##r##21) \
                : [w0] "v"(w0), [w1] "v"(w1), [p] "r"(word));
/* Row r's sums of digit d back in output order (unpacklo took rows 8L..8L+3 of each 128-bit lane L, unpackhi 8L+4..8L+7). */
#define BT_DIGIT_STORE(r, d) \
    _mm512_storeu_si512(acc[r][d], _mm512_permutex2var_epi32(a##r##d##0, first16, a##r##d##1)); \
    _mm512_storeu_si512(acc[r][d] + 16, _mm512_permutex2var_epi32(a##r##d##0, second16, a##r##d##1));
#define BT_ROW_STORE(r) if (nr > r) { BT_DIGIT_STORE(r, 0) BT_DIGIT_STORE(r, 1) BT_DIGIT_STORE(r, 2) }

/*
 * nr (1..ROWS) rows' digits (row stride `stride`) against one panel of `pairs` lines:
 * acc [nr][3][32] = Σ (w + 128) · digit for the panel's 32 weight rows. The weight is flipped to
 * w + 128, vpdpbusd's unsigned operand; the caller takes each digit's offset off. Two lines of
 * pairs, interleaved by 16-bit words, are sixteen rows' words of four k in each of two vectors.
 */
BT_DIGITS_INLINE void tile(const int8_t *panel, int64_t pairs, const int8_t *planes, int64_t stride, int32_t acc[ROWS][DIGITS][PANEL],
                           const int nr, const char *base, int64_t ahead, int64_t aheadEnd, int64_t aheadStep, int near) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    __m512i a000 = _mm512_setzero_si512(), a001 = a000, a010 = a000, a011 = a000, a020 = a000, a021 = a000;
    __m512i a100 = a000, a101 = a000, a110 = a000, a111 = a000, a120 = a000, a121 = a000;
    __m512i a200 = a000, a201 = a000, a210 = a000, a211 = a000, a220 = a000, a221 = a000;
    __m512i a300 = a000, a301 = a000, a310 = a000, a311 = a000, a320 = a000, a321 = a000;
    for (int64_t w = 0; 2 * w < pairs; w++) {
        const int8_t *line = panel + 2 * w * 2 * PANEL;
        if (ahead < aheadEnd) {
            _mm_prefetch(base + ahead, _MM_HINT_T1);
            if (aheadStep > 64) _mm_prefetch(base + ahead + 64, _MM_HINT_T1);
            ahead += aheadStep;
        }
        if (near) {
            _mm_prefetch((const char *) line + NEAR_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *) line + NEAR_BYTES + 64, _MM_HINT_T0);
        }
        /* k / 2 odd: the last word's second pair is zero here, as in x's digits */
        __m512i first = _mm512_loadu_si512(line), second = 2 * w + 1 < pairs ? _mm512_loadu_si512(line + 64) : _mm512_setzero_si512();
        __m512i w0 = _mm512_xor_si512(_mm512_unpacklo_epi16(first, second), flip);
        __m512i w1 = _mm512_xor_si512(_mm512_unpackhi_epi16(first, second), flip);
        const int8_t *word = planes + w * DIGITS * 4;
        BT_ROW_WORD(0, word) BT_ROW_WORD(1, word + stride) BT_ROW_WORD(2, word + 2 * stride) BT_ROW_WORD(3, word + 3 * stride)
    }
    const __m512i first16 = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i second16 = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
    BT_ROW_STORE(0) BT_ROW_STORE(1) BT_ROW_STORE(2) BT_ROW_STORE(3)
}

BT_DIGITS static void tile_rows(const int8_t *panel, int64_t pairs, const int8_t *planes, int64_t stride, int32_t acc[ROWS][DIGITS][PANEL],
                                int64_t nr, const char *base, int64_t ahead, int64_t aheadEnd, int64_t aheadStep, int near) {
    switch (nr) {
    case 1: tile(panel, pairs, planes, stride, acc, 1, base, ahead, aheadEnd, aheadStep, near); break;
    case 2: tile(panel, pairs, planes, stride, acc, 2, base, ahead, aheadEnd, aheadStep, near); break;
    case 3: tile(panel, pairs, planes, stride, acc, 3, base, ahead, aheadEnd, aheadStep, near); break;
    default: tile(panel, pairs, planes, stride, acc, 4, base, ahead, aheadEnd, aheadStep, near); break;
    }
}

/* Sixteen outputs of one row: the digits' sums (offsets off) combined exactly in double, times step and scales (a NaN step: NaN). */
BT_DIGITS_INLINE void scaled(const int32_t sums[DIGITS][PANEL], const int32_t *offset, int j, double step, const float *scales,
                             __m512d *lo, __m512d *hi) {
    __m512d s[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    for (int d = 0; d < DIGITS; d++) {
        __m512i v = _mm512_sub_epi32(_mm512_loadu_si512(sums[d] + j), _mm512_set1_epi32(offset[d]));
        __m512d radix = _mm512_set1_pd(d == 0 ? 1.0 : 256.0);
        s[0] = _mm512_fmadd_pd(s[0], radix, _mm512_cvtepi32_pd(_mm512_castsi512_si256(v)));      /* exact: integers below 2⁵³ */
        s[1] = _mm512_fmadd_pd(s[1], radix, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1)));
    }
    __m512d st = _mm512_set1_pd(step);
    *lo = _mm512_mul_pd(_mm512_mul_pd(s[0], st), _mm512_cvtps_pd(_mm256_loadu_ps(scales + j)));
    *hi = _mm512_mul_pd(_mm512_mul_pd(s[1], st), _mm512_cvtps_pd(_mm256_loadu_ps(scales + j + 8)));
}

/* One row's 32 outputs of a panel into y, in x's dtype, the bias added (or none). */
BT_DIGITS static void finish(const int32_t sums[DIGITS][PANEL], const int32_t *offset, double step, const float *scales, const void *bias,
                             int32_t type, void *y) {
    for (int j = 0; j < PANEL; j += 16) {
        __m512d lo, hi;
        scaled(sums, offset, j, step, scales, &lo, &hi);
        if (type == 0) {
            if (bias) {
                const float *b = (const float *) bias + j;
                lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm256_loadu_ps(b)));
                hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_loadu_ps(b + 8)));
            }
            _mm256_storeu_ps((float *) y + j, _mm512_cvtpd_ps(lo));
            _mm256_storeu_ps((float *) y + j + 8, _mm512_cvtpd_ps(hi));
        } else {
            __m512 v = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(_mm512_cvtpd_ps(lo))),
                                                           _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
            __m512i rounded = bt_bf16_bits16(v);
            if (bias) {
                __m512 b = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *) ((const uint16_t *) bias + j))), 16));
                rounded = bt_bf16_bits16(_mm512_add_ps(_mm512_castsi512_ps(_mm512_slli_epi32(rounded, 16)), b));
            }
            _mm256_storeu_si256((__m256i *) ((uint16_t *) y + j), _mm512_cvtepi32_epi16(rounded));
        }
    }
}
#endif

void bt_int8_digits_product(const bt_int8_digits *d, int32_t type, int64_t rows, int64_t k, const int8_t *panels, const float *scales,
                            const void *bias, int64_t n, int64_t ahead, void *y, int64_t ldy) {
#ifdef BT_HAVE_DIGITS_BUILD
    int64_t pairs = k / 2, element = type == 0 ? 4 : 2;
    int32_t acc[ROWS][DIGITS][PANEL] __attribute__((aligned(64)));
    /*
     * Over several passes of rows the next panel is requested while this one is multiplied, a line an
     * iteration of every pass: with the lines requested a fixed distance ahead in each pass, a batch of
     * eight read memory in one pass and only computed in the other. One pass requests two lines an
     * iteration a fixed distance ahead, as the other panel kernels do. The lines sixteen on are asked into L1
     * besides only on Intel: on AMD's Zen 5 a batch of one reads faster without them and eight no slower
     * (benchmarks/FINDINGS.md). One row of x on Zen 5 reads faster with no requests at all, where four rows
     * read far slower without them: one row requests only where single streams need it (prefetch.h).
     */
    int near = bt_requests_single_stream();
    int request = rows > 1 || near;
    int64_t panelBytes = pairs * 2 * PANEL, passes = (rows + ROWS - 1) / ROWS, iterations = (pairs + 1) / 2;
    int64_t aheadStep = passes == 1 ? 128 : 64, limit = (n + ahead) / PANEL * panelBytes;   /* bytes from `panels` the requests may reach */
    for (int64_t p = 0; p < n / PANEL; p++) {
        const int8_t *panel = panels + p * panelBytes;
        int64_t next = p * panelBytes + (passes == 1 ? AHEAD_BYTES : panelBytes);
        int64_t nextEnd = !request ? next : next + panelBytes < limit ? next + panelBytes : limit;
        const void *b = bias ? (const char *) bias + p * PANEL * element : NULL;
        for (int64_t r0 = 0; r0 < rows; r0 += ROWS) {
            int64_t nr = rows - r0 < ROWS ? rows - r0 : ROWS;
            tile_rows(panel, pairs, d->planes + r0 * d->stride, d->stride, acc, nr, (const char *) panels, next + (r0 / ROWS) * iterations * aheadStep,
                      nextEnd, aheadStep, near);
            for (int64_t r = 0; r < nr; r++)
                finish((const int32_t (*)[PANEL]) acc[r], d->offset + (r0 + r) * DIGITS, d->step[r0 + r], scales + p * PANEL, b, type,
                       (char *) y + ((r0 + r) * ldy + p * PANEL) * element);
        }
    }
#else
    (void) d; (void) type; (void) rows; (void) k; (void) panels; (void) scales; (void) bias; (void) n; (void) ahead; (void) y; (void) ldy;
#endif
}

/* bt_int8_digits_product from a buffer bt_int8_digits_write filled for these rows and k. */
void bt_int8_digits_panels(const void *buffer, int32_t type, int64_t rows, int64_t k, const int8_t *panels, const float *scales,
                           const void *bias, int64_t n, void *y, int64_t ldy) {
    bt_int8_digits d = view((void *) buffer, rows, k);
    bt_int8_digits_product(&d, type, rows, k, panels, scales, bias, n, 0, y, ldy);
}

int32_t bt_int8_digits_linear(const void *x, int32_t type, int64_t rows, int64_t k, const int8_t *panels, const float *scales,
                              const void *bias, int64_t n, void *y, int64_t ldy) {
    bt_int8_digits d;
    if (n % PANEL != 0 || bt_int8_digits_prepare(x, type, rows, k, &d) != 0) return -1;
    bt_int8_digits_product(&d, type, rows, k, panels, scales, bias, n, 0, y, ldy);
    bt_int8_digits_release(&d);
    return 0;
}
