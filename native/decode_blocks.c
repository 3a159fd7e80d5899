/*
 * Every block of a decode step (one new position for each of up to sixteen rows) in one native
 * call per thread: layer norm, fused QKV, attention over the cache, output projection and residual,
 * layer norm, H → 4H with GELU, 4H → H and residual, 24 times over, with the threads meeting at a
 * spin barrier between the parts; for greedy decoding also ln_f, the lm_head and each row's argmax
 * (the head), so that a step's threads are handed work once rather than again for the lm_head. The
 * products are the row kernels the Java path calls one by one (each linear's function, weights and
 * split are chosen on the Java side, by the same checks), so the step reads the same weights; what
 * goes is the time between the kernels — the small ops' dispatch and allocations, a thread hand-off
 * per kernel, the Java between them and its warm-up (benchmarks/FINDINGS.md).
 *
 * The small ops round as libtorch's do in the compute dtype: a residual add is one rounding of the
 * float sum; the layer norm and the tanh GELU are computed in float and rounded once (libtorch's
 * own float steps differ in the last bits: the mean and variance here are summed in double, and
 * tanh comes from exp).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bf16.h"

#define BT_INLINE static inline __attribute__((always_inline))
#include "decode_row_ops.h"
#include "llm_int8_panels.h"
#include "int8_digits_panels.h"
#include "bf16_panels.h"

/* How a linear's function is called (its C signature). */
/* CALL_LLM_INT8_PANELS: bt_llm_int8_panels_linear's signature, and the decode step may call its two halves (llm_int8_panels.h) instead;
 * CALL_INT8_PANELS: the weight-only panels' signature (CALL_INT8's), and where they multiply by digits the step calls
 * int8_digits_panels.h's two halves instead;
 * CALL_BF16_PANELS: bt_bf16_panels_linear (CALL_DENSE's signature), and where it widens x the step widens x once per linear
 * and calls bt_bf16_panels_widened_linear instead (bf16_panels.h) */
enum { CALL_DENSE = 0, CALL_INT8 = 1, CALL_LLM_INT8 = 2, CALL_LLM_INT8_PANELS = 3, CALL_INT8_PANELS = 4, CALL_BF16_PANELS = 5 };

typedef void (*dense_fn)(const void *w, const void *x, const void *bias, void *y, int64_t rows, int64_t n, int64_t k, int64_t ldy);
typedef void (*int8_fn)(const int8_t *values, const float *scales, const void *x, const void *bias, void *y, int64_t rows, int64_t n,
                        int64_t k, int64_t ldy);
typedef int32_t (*llm_int8_fn)(const void *x, int32_t type, int64_t rows, int64_t k, float threshold, const int8_t *values,
                               const float *scales, const void *bias, int64_t n, void *y, int64_t ldy);
typedef int32_t (*attention_fn)(const void *qkv, void *keys, void *values, const void *alibi, const uint8_t *masked, void *out,
                                int64_t from, int64_t count, int64_t heads, int64_t head_dim, int64_t past, int64_t cap,
                                float alpha, int32_t bf16);

/* One linear layer: y [rows, n] = x [rows, k] · Wᵀ + bias, by `fn` (every field 8 bytes: the Java side writes them by index). */
typedef struct {
    int64_t call;               /* CALL_* */
    void *fn;
    const void *weight;         /* [n, k] in the compute dtype, or int8 values */
    const float *scales;        /* [n] for int8 weights, else NULL */
    const void *bias;           /* [n] in the compute dtype, or NULL */
    int64_t n, k;
    int64_t weight_bytes;       /* bytes of one weight element: 1 (int8), 2 or 4 */
    double threshold;           /* LLM.int8's outlier threshold */
} bt_linear;

/* One block's parameters and its KV cache buffers. */
typedef struct {
    const void *ln1_weight, *ln1_bias, *ln2_weight, *ln2_bias;
    bt_linear qkv, dense, h_to_4h, h4_to_h;
    void *keys;                 /* [rows · heads, head_dim, capacity] */
    void *values;               /* [rows · heads, capacity, head_dim] */
} bt_decode_layer;

/* The step: shapes, the per-step tensors, the scratch rows, and the barrier's state. */
typedef struct {
    int64_t layers, rows, hidden, heads, head_dim, past, capacity;
    int64_t bf16;               /* 1: the compute dtype is bfloat16, 0: float32 */
    int64_t residual_from_layernorm;
    int64_t attention_parts;    /* threads that share the attention (1 when it is too small to split) */
    int64_t min_weight_rows;    /* weight rows a thread takes at least */
    double eps, alpha;
    const bt_decode_layer *layer;
    void *attention;            /* attention_fn */
    void *hidden_state;         /* [rows, hidden] in and out */
    const void *alibi;          /* [rows · heads, past + 1] */
    const uint8_t *masked;      /* [rows, past + 1] */
    void *normed, *qkv, *merged, *attended, *normed2, *mlp;     /* scratch rows: H (a copy per thread), 3H, H, H, H (a copy per thread), 4H */
    int64_t threads;            /* set by the caller before `ready` */
    int64_t ready;
    int64_t arrived;
    int64_t release;
    int64_t error;
    int64_t abandoned;          /* set when a thread could not enter: the others stop waiting for it */
    int64_t *claims;            /* zeroed: for each linear of the step (layer · 4 + j, the head's layers · 4), each layer's attention
                                   (layers · 4 + 1 + layer) and each thread, a CLAIM_STRIDE-word slot */
    /* The head, or head NULL: ln_f's parameters [hidden], the lm_head, its logits [rows, head->n] (scratch), and
       picks [rows], zeroed: each row's argmax as rows_argmax.c's merge keys. */
    const void *lnf_weight, *lnf_bias;
    const bt_linear *head;
    void *logits;
    uint64_t *picks;
} bt_decode_step;

void bt_rows_argmax_merge_f32(const float *y, int64_t ldy, int64_t rows, int64_t from, int64_t count, uint64_t *best);
void bt_rows_argmax_merge_bf16(const uint16_t *y, int64_t ldy, int64_t rows, int64_t from, int64_t count, uint64_t *best);

/*
 * One turn of a wait for another thread: a pause for the first SPINS_BEFORE_NAPS turns (a few
 * hundred microseconds, far longer than the parts' usual waits), then a nap that halts this vCPU.
 * A wait that long means the other thread is not running: a VM's host stops a vCPU that has been
 * busy for a while, and while this one spins (or only yields, which keeps it busy) the stopped one
 * stays off its core for a tenth of a second; while this one halts, the stopped one runs again
 * within milliseconds (benchmarks/FINDINGS.md).
 */
#define SPINS_BEFORE_NAPS 20000
#define NAP_NANOS 200000

static void wait_turn(long spins) {
    if (spins < SPINS_BEFORE_NAPS) {
        __builtin_ia32_pause();
        return;
    }
    struct timespec nap = { 0, NAP_NANOS };
    nanosleep(&nap, NULL);
}

/*
 * Sense-reversing barrier of `threads` threads (see wait_turn). Returns at once when the step is
 * abandoned (its result is then discarded by the caller).
 */
static void barrier(bt_decode_step *s, int64_t threads, int64_t *sense) {
    if (threads == 1) return;
    *sense = !*sense;
    if (__atomic_add_fetch(&s->arrived, 1, __ATOMIC_ACQ_REL) == threads) {
        __atomic_store_n(&s->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->release, *sense, __ATOMIC_RELEASE);
        return;
    }
    for (long spins = 0; __atomic_load_n(&s->release, __ATOMIC_ACQUIRE) != *sense; spins++) {
        if (__atomic_load_n(&s->abandoned, __ATOMIC_RELAXED)) return;
        wait_turn(spins);
    }
}

/*
 * Weight rows a thread's range starts at a multiple of: a panel of packed weights (bf16_panels.c),
 * which the other row kernels, whose outputs are each one weight row's, do not mind.
 */
#define SHARE_ALIGN 32

/* Where part `part` of `parts` of n weight rows starts: a multiple of SHARE_ALIGN, or n. */
static int64_t share_start(int64_t n, int64_t part, int64_t parts) {
    if (part >= parts) return n;
    int64_t start = n * part / parts / SHARE_ALIGN * SHARE_ALIGN;
    return start < n ? start : n;
}

/* Threads that share a linear of n weight rows (1 when it is too small to split). */
static int64_t parts_of(int64_t n, int64_t min_rows, int64_t threads) {
    int64_t parts = n / min_rows < threads ? n / min_rows : threads;
    return parts < 1 ? 1 : parts;
}

/* This thread's range of a linear's n weight rows: *from, *count (count 0 when it has none). */
static void share(int64_t n, int64_t min_rows, int64_t tid, int64_t threads, int64_t *from, int64_t *count) {
    int64_t parts = parts_of(n, min_rows, threads);
    if (tid >= parts) { *from = 0; *count = 0; return; }
    *from = share_start(n, tid, parts);
    *count = share_start(n, tid + 1, parts) - *from;
}

/* What follows a linear on the columns it wrote, chunk by chunk: nothing, GELU in place, a residual added, or the columns merged into the picks. */
enum { AFTER_NONE = 0, AFTER_GELU = 1, AFTER_RESIDUAL = 2, AFTER_ARGMAX = 3 };

typedef struct {
    const bt_linear *l;
    const void *x;
    void *y;
    int after;
    const void *residual;       /* AFTER_RESIDUAL: rows [rows, n] added to y */
    const bt_llm_int8_prepared *prepared;   /* LLM.int8 panels: this thread's quantized copy of x, else NULL */
    const bt_int8_digits *digits;           /* weight-only panels by digits: this thread's digits of x, else NULL */
    const float *widened;                   /* bfloat16 panels that widen x: this thread's widened copy of x, else NULL */
} bt_linear_call;

/*
 * This thread's weight rows of the call's linear: y[:, from .. from + count) of x · Wᵀ + bias, from
 * what the call holds prepared of x where it does (quantized, digits, widened). Returns the
 * function's status.
 */
static int32_t linear_part(const bt_linear_call *c, int64_t rows, int64_t from, int64_t count, int bf16) {
    const bt_linear *l = c->l;
    const void *x = c->x;
    const bt_llm_int8_prepared *prepared = c->prepared;
    if (count == 0) return 0;
    int64_t element = bf16 ? 2 : 4;
    const char *w = (const char *) l->weight + from * l->k * l->weight_bytes;
    const void *bias = l->bias ? (const char *) l->bias + from * element : NULL;
    void *out = (char *) c->y + from * element;
    switch (l->call) {
    case CALL_BF16_PANELS:
        if (c->widened) {
            bt_bf16_panels_widened_linear((const uint16_t *) w, (const uint16_t *) x, c->widened, (const uint16_t *) bias, (uint16_t *) out,
                                          rows, count, l->k, l->n);
            return 0;
        }
        /* fall through: the kernel widens x itself */
    case CALL_DENSE:
        ((dense_fn) l->fn)(w, x, bias, out, rows, count, l->k, l->n);
        return 0;
    case CALL_INT8_PANELS:
        if (c->digits) {
            /* the panel past this chunk: the owner's next chunk, taken front to back */
            bt_int8_digits_product(c->digits, bf16 ? 1 : 0, rows, l->k, (const int8_t *) w, l->scales + from, bias, count,
                                   l->n - from - count, out, l->n);
            return 0;
        }
        /* fall through: the kernel multiplies as the process's way says */
    case CALL_INT8:
        ((int8_fn) l->fn)((const int8_t *) w, l->scales + from, x, bias, out, rows, count, l->k, l->n);
        return 0;
    case CALL_LLM_INT8:
    case CALL_LLM_INT8_PANELS:
        if (prepared) {
            bt_llm_int8_panels_product(prepared, x, bf16 ? 1 : 0, rows, l->k, (const int8_t *) w, l->scales + from, bias, count, out, l->n);
            return 0;
        }
        return ((llm_int8_fn) l->fn)(x, bf16 ? 1 : 0, rows, l->k, (float) l->threshold, (const int8_t *) w, l->scales + from, bias,
                                     count, out, l->n);
    default:
        return -2;
    }
}

/* Rows [from, from + count) of the call: the product, then what follows it there. */
static void run_rows(bt_decode_step *s, const bt_linear_call *c, int64_t from, int64_t count) {
    int bf16 = (int) s->bf16;
    int32_t status = linear_part(c, s->rows, from, count, bf16);
    if (status != 0) __atomic_store_n(&s->error, status, __ATOMIC_RELAXED);
    if (c->after == AFTER_GELU) gelu(c->y, s->rows, c->l->n, from, count, bf16);
    else if (c->after == AFTER_RESIDUAL) add_residual(c->y, c->residual, s->rows, c->l->n, from, count, bf16);
    else if (c->after == AFTER_ARGMAX && count > 0) {
        if (bf16) bt_rows_argmax_merge_bf16((const uint16_t *) c->y, c->l->n, s->rows, from, count, s->picks);
        else bt_rows_argmax_merge_f32((const float *) c->y, c->l->n, s->rows, from, count, s->picks);
    }
}

/*
 * A thread's share of a linear is taken in chunks, so that a thread that finishes first takes what
 * is left of the other's: the two vCPUs of a VM often run at different speeds for a while, and with
 * fixed halves the faster one waited at the barrier for the slower (benchmarks/FINDINGS.md). The
 * owner takes its chunks front to back — one stream through memory, as with fixed halves — and a
 * helper takes them from the back. A chunk is whole panels (SHARE_ALIGN rows); a vocabulary's
 * share is cut finer, as RowSplit cuts the lm_head's on the Java side.
 */
#define CHUNKS_PER_SHARE 16
#define VOCABULARY_CHUNKS_PER_SHARE 64
#define VOCABULARY_SHARE_ROWS 32768
#define CHUNK_MIN_ROWS 64
#define CLAIM_STRIDE 8          /* words between two threads' claim slots: a cache line each */

static int64_t chunk_rows(int64_t share_rows) {
    int64_t chunks = share_rows >= VOCABULARY_SHARE_ROWS ? VOCABULARY_CHUNKS_PER_SHARE : CHUNKS_PER_SHARE;
    int64_t rows = share_rows / chunks / SHARE_ALIGN * SHARE_ALIGN;
    return rows < CHUNK_MIN_ROWS ? CHUNK_MIN_ROWS : rows;
}

/*
 * Takes the next chunk of a share of `chunks` from its front (the owner) or its back (a helper): the
 * slot counts taken chunks, front ones in its high half and back ones in its low half (zero: none
 * taken). Returns 0 when none is left.
 */
static int claim(int64_t *slot, int64_t chunks, int from_back, int64_t *chunk) {
    int64_t taken = __atomic_load_n(slot, __ATOMIC_RELAXED);
    for (;;) {
        int64_t front = taken >> 32, back = taken & 0xffffffff;
        if (front + back >= chunks) return 0;
        int64_t next = taken + (from_back ? 1 : (int64_t) 1 << 32);
        if (__atomic_compare_exchange_n(slot, &taken, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            *chunk = from_back ? chunks - 1 - back : front;
            return 1;
        }
    }
}

/* Runs every chunk of `owner`'s share this thread can claim, from the front (its own) or the back. */
static void run_share(bt_decode_step *s, const bt_linear_call *c, int64_t *slots, int64_t owner, int64_t parts, int from_back) {
    int64_t start = share_start(c->l->n, owner, parts), end = share_start(c->l->n, owner + 1, parts);
    int64_t rows = chunk_rows(end - start), chunks = (end - start + rows - 1) / rows, chunk;
    while (claim(slots + owner * CLAIM_STRIDE, chunks, from_back, &chunk)) {
        int64_t from = start + chunk * rows;
        run_rows(s, c, from, (end - from < rows ? end - from : rows));
    }
}

/* x [rows, k] bfloat16 widened into memory of its own (bf16_panels.h); NULL without memory, and the kernel widens x itself. */
static float *widened_copy(const void *x, int64_t rows, int64_t k) {
    float *xw = aligned_alloc(64, ((size_t) (rows * k) * sizeof(float) + 63) & ~(size_t) 63);
    if (xw) bt_bf16_panels_widen((const uint16_t *) x, rows, k, xw);
    return xw;
}

/*
 * This thread's part of linear `index` of the step (layer · 4 + j). LLM.int8 over panels first
 * quantizes x into this thread's own copy, then takes chunks like the rest, weight-only panels
 * multiplying by digits write x's digits once likewise, and bfloat16 panels that widen x widen it
 * once (without memory for them each chunk's call does it itself: the same bits); the row-major
 * LLM.int8 kernel quantizes x on every call, so its shares stay whole.
 */
static void linear(bt_decode_step *s, int64_t index, const bt_linear_call *c, int64_t tid, int64_t threads) {
    int64_t parts = parts_of(c->l->n, s->min_weight_rows, threads);
    if (tid >= parts) return;
    int panels = c->l->call == CALL_LLM_INT8_PANELS;
    if (parts == 1 || c->l->call == CALL_LLM_INT8) {
        int64_t from, count;
        share(c->l->n, s->min_weight_rows, tid, threads, &from, &count);
        run_rows(s, c, from, count);
        return;
    }
    bt_llm_int8_prepared prepared;
    bt_int8_digits digits;
    bt_linear_call mine = *c;
    if (panels) {
        if (bt_llm_int8_panels_prepare(c->x, (int32_t) s->bf16, s->rows, c->l->k, (float) c->l->threshold, &prepared) != 0) {
            __atomic_store_n(&s->error, -1, __ATOMIC_RELAXED);
            return;
        }
        mine.prepared = &prepared;
    }
    if (c->l->call == CALL_INT8_PANELS && bt_int8_weight_products_for((int32_t) s->bf16) == BT_INT8_PRODUCTS_DIGITS
            && bt_int8_digits_prepare(c->x, (int32_t) s->bf16, s->rows, c->l->k, &digits) == 0) mine.digits = &digits;
    float *widened = c->l->call == CALL_BF16_PANELS && bt_bf16_panels_widened() ? widened_copy(c->x, s->rows, c->l->k) : NULL;
    mine.widened = widened;
    int64_t *slots = s->claims + index * threads * CLAIM_STRIDE;
    run_share(s, &mine, slots, tid, parts, 0);
    for (int64_t i = 1; i < parts; i++) run_share(s, &mine, slots, (tid + i) % parts, parts, 1);
    if (panels) bt_llm_int8_panels_release(&prepared);
    if (mine.digits) bt_int8_digits_release(&digits);
    free(widened);
}

/* Pairs of (row, head) a chunk of an attention share holds: a batch of eight's share of 64 pairs in sixteen chunks. */
#define ATTENTION_CHUNK_PAIRS 4

/* Runs every chunk of `owner`'s share of the (row, head) pairs this thread can claim, from the front (its own) or the back. */
static void attend_share(bt_decode_step *s, const bt_decode_layer *L, int64_t *slots, int64_t owner, int64_t parts, int from_back) {
    int64_t pairs = s->rows * s->heads, start = pairs * owner / parts, end = pairs * (owner + 1) / parts;
    int64_t chunks = (end - start + ATTENTION_CHUNK_PAIRS - 1) / ATTENTION_CHUNK_PAIRS, chunk;
    while (claim(slots + owner * CLAIM_STRIDE, chunks, from_back, &chunk)) {
        int64_t from = start + chunk * ATTENTION_CHUNK_PAIRS, count = end - from < ATTENTION_CHUNK_PAIRS ? end - from : ATTENTION_CHUNK_PAIRS;
        int32_t status = ((attention_fn) s->attention)(s->qkv, L->keys, L->values, s->alibi, s->masked, s->merged, from, count, s->heads,
                                                        s->head_dim, s->past, s->capacity, (float) s->alpha, (int32_t) s->bf16);
        if (status != 0) __atomic_store_n(&s->error, status, __ATOMIC_RELAXED);
    }
}

/*
 * This thread's part of layer `layer`'s attention over the cache: its share of the (row, head) pairs
 * in chunks, then what it can take of the others' from their back, as the linears' shares go (a
 * vCPU slowed for a while no longer keeps the other waiting at the barrier after it).
 */
static void attention(bt_decode_step *s, int64_t layer, int64_t tid, int64_t threads) {
    int64_t parts = s->attention_parts < threads ? s->attention_parts : threads;
    if (tid >= parts) return;
    int64_t *slots = s->claims + (s->layers * 4 + 1 + layer) * threads * CLAIM_STRIDE;
    attend_share(s, &s->layer[layer], slots, tid, parts, 0);
    for (int64_t i = 1; i < parts; i++) attend_share(s, &s->layer[layer], slots, (tid + i) % parts, parts, 1);
}

static void block(bt_decode_step *s, int64_t layer, int64_t tid, int64_t threads, int64_t *sense) {
    const bt_decode_layer *L = &s->layer[layer];
    int bf16 = (int) s->bf16;
    int64_t rows = s->rows, h = s->hidden;
    /* Each thread normalizes every row into its own copy and reads only that copy: no barrier after a layer norm. */
    int64_t copy = tid * rows * h * (bf16 ? 2 : 4);
    void *normed = (char *) s->normed + copy, *normed2 = (char *) s->normed2 + copy;
    layer_norm(s->hidden_state, L->ln1_weight, L->ln1_bias, normed, rows, h, s->eps, bf16);
    linear(s, layer * 4, &(bt_linear_call){&L->qkv, normed, s->qkv, AFTER_NONE, NULL}, tid, threads);
    barrier(s, threads, sense);
    attention(s, layer, tid, threads);
    barrier(s, threads, sense);
    linear(s, layer * 4 + 1, &(bt_linear_call){&L->dense, s->merged, s->attended, AFTER_RESIDUAL,
                                                 s->residual_from_layernorm ? normed : s->hidden_state}, tid, threads);
    barrier(s, threads, sense);
    layer_norm(s->attended, L->ln2_weight, L->ln2_bias, normed2, rows, h, s->eps, bf16);
    linear(s, layer * 4 + 2, &(bt_linear_call){&L->h_to_4h, normed2, s->mlp, AFTER_GELU, NULL}, tid, threads);
    barrier(s, threads, sense);
    /* The block's output overwrites its input: every read of the input is behind the barriers above. */
    linear(s, layer * 4 + 3, &(bt_linear_call){&L->h4_to_h, s->mlp, s->hidden_state, AFTER_RESIDUAL,
                                                 s->residual_from_layernorm ? normed2 : s->attended}, tid, threads);
    barrier(s, threads, sense);
}

/*
 * ln_f and the lm_head after the last block (whose barrier every thread has passed): each thread
 * normalizes every row into its own copy, as the blocks do, and merges the logits it writes into the
 * picks while they are in its cache. The caller waits for every thread's return, not a barrier.
 */
static void head(bt_decode_step *s, int64_t tid, int64_t threads) {
    int bf16 = (int) s->bf16;
    void *normed = (char *) s->normed + tid * s->rows * s->hidden * (bf16 ? 2 : 4);
    layer_norm(s->hidden_state, s->lnf_weight, s->lnf_bias, normed, s->rows, s->hidden, s->eps, bf16);
    linear(s, s->layers * 4, &(bt_linear_call){s->head, normed, s->logits, AFTER_ARGMAX, NULL}, tid, threads);
}

/*
 * Thread `tid`'s share of the step. Every thread waits for `ready` (the caller sets `threads` once it
 * knows how many helpers took a part), and one past the count returns at once. Returns 0, or the
 * first failing function's status (the other threads still pass every barrier, so none is left waiting).
 */
int32_t bt_decode_blocks(bt_decode_step *s, int64_t tid) {
    for (long spins = 0; !__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE); spins++) {
        if (__atomic_load_n(&s->abandoned, __ATOMIC_RELAXED)) return -3;
        wait_turn(spins);
    }
    int64_t threads = s->threads;
    if (tid >= threads) return 0;
    int64_t sense = 0;
    for (int64_t i = 0; i < s->layers; i++) block(s, i, tid, threads, &sense);
    if (s->head) head(s, tid, threads);
    return (int32_t) __atomic_load_n(&s->error, __ATOMIC_RELAXED);
}

/* Bytes of the structs and words of a claim slot, so the Java side can check its layout (and the claims it allocates) against this build's. */
int64_t bt_decode_blocks_sizes(void) {
    return (int64_t) CLAIM_STRIDE << 48 | (int64_t) sizeof(bt_linear) << 32 | (int64_t) sizeof(bt_decode_layer) << 16
           | (int64_t) sizeof(bt_decode_step);
}

/*
 * A greedy loop's input for its next step, in the native memory the step then reads (GreedySteps):
 * the embeddings' layer norm of the gathered rows x [rows, h] in place, and one key more in the
 * ALiBi bias [rows · heads, positions] and the mask [rows, positions] — each (row, head) line and
 * each mask row moved to its place at width positions + 1, last first, and the new key written
 * after it: unmasked, at the row's next position seen[row] (then counted), slope × position rounded
 * once to the compute dtype as libtorch casts the float32 product.
 */
void bt_decode_greedy_input(void *x, const void *weight, const void *bias, int64_t rows, int64_t h, double eps, int32_t bf16,
                            void *alibi, uint8_t *masked, int64_t heads, int64_t positions, const float *slopes, int64_t *seen) {
    layer_norm(x, weight, bias, x, rows, h, eps, bf16);
    int64_t width = positions + 1, element = bf16 ? 2 : 4;
    for (int64_t pair = rows * heads - 1; pair >= 0; pair--) {
        memmove((char *) alibi + pair * width * element, (char *) alibi + pair * positions * element, (size_t) (positions * element));
        float bias_value = slopes[pair % heads] * (float) seen[pair / heads];
        if (bf16) ((uint16_t *) alibi)[pair * width + positions] = float_to_bf16(bias_value);
        else ((float *) alibi)[pair * width + positions] = bias_value;
    }
    for (int64_t row = rows - 1; row >= 0; row--) {
        memmove(masked + row * width, masked + row * positions, (size_t) positions);
        masked[row * width + positions] = 0;
        seen[row]++;
    }
}
