/*
 * What a mask lets each query of one batch row see, and the tables the attention kernels
 * (attention_bf16.c, attention_f32.c) take from it to skip what the mask makes zero: per query its
 * first and last visible key, per tile of BT_ATTENTION_MR query rows the keys its rows see and the
 * blocks of BT_ATTENTION_NB keys that hold them, per block of keys the queries that see any of it.
 * Ranges of keys and of queries are counted in pairs (what one vdpbf16ps lane multiplies); the
 * float32 kernel doubles them and pads its buffers to even lengths with zeros.
 */
#ifndef BT_ATTENTION_VISIBILITY_H
#define BT_ATTENTION_VISIBILITY_H
#include <stdint.h>
#include <stdlib.h>

/* Rows of A per tile; the tile's columns are one block of 64. */
#define BT_ATTENTION_MR 6
#define BT_ATTENTION_NB 64

static inline int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

/* A query's visible keys [lo, hi): its first and last unmasked ones; every key where all are masked (uniform probabilities). */
static inline void visible_keys(const uint8_t *mask, int64_t t, int64_t s, int64_t *lo, int64_t *hi) {
    for (int64_t i = 0; i < t; i++) {
        const uint8_t *row = mask + i * s;
        int64_t a = 0, b = s;
        while (a < s && row[a]) a++;
        while (b > a && row[b - 1]) b--;
        if (a == s) { a = 0; b = s; }
        lo[i] = a;
        hi[i] = b;
    }
}

/* Per tile of query rows: the pairs of keys its rows see (kp) and the 64-key blocks that hold them (blocks). */
static inline void query_tiles(const int64_t *lo, const int64_t *hi, int64_t t, int64_t *kp, int64_t *blocks) {
    for (int64_t i = 0; i * BT_ATTENTION_MR < t; i++) {
        int64_t a = INT64_MAX, b = 0;
        for (int64_t r = i * BT_ATTENTION_MR; r < t && r < (i + 1) * BT_ATTENTION_MR; r++) {
            if (lo[r] < a) a = lo[r];
            if (hi[r] > b) b = hi[r];
        }
        kp[2 * i] = a / 2;
        kp[2 * i + 1] = (b + 1) / 2;
        blocks[2 * i] = a / BT_ATTENTION_NB;
        blocks[2 * i + 1] = (b + BT_ATTENTION_NB - 1) / BT_ATTENTION_NB;
    }
}

/* Per block of 64 keys: the pairs of queries that see any key of it. */
static inline void key_blocks(const int64_t *lo, const int64_t *hi, int64_t t, int64_t s, int64_t *kp) {
    for (int64_t j = 0; j * BT_ATTENTION_NB < s; j++) {
        int64_t k0 = j * BT_ATTENTION_NB, k1 = k0 + BT_ATTENTION_NB, a = t, b = 0;
        for (int64_t r = 0; r < t; r++) {
            if (lo[r] < k1 && hi[r] > k0) {
                if (r < a) a = r;
                b = r + 1;
            }
        }
        kp[2 * j] = a < b ? a / 2 : 0;
        kp[2 * j + 1] = a < b ? (b + 1) / 2 : 0;
    }
}

/* What one batch row's mask lets each query see, and the tables the products take from it. */
typedef struct {
    int64_t *lo, *hi;           /* [t]: visible_keys */
    int64_t *qkp, *qblocks;     /* per tile of query rows: query_tiles */
    int64_t *kkp;               /* per block of 64 keys: key_blocks */
} visibility;

static inline void visibility_free(visibility *v, int64_t batch) {
    for (int64_t b = 0; v && b < batch; b++) {
        free(v[b].lo); free(v[b].hi); free(v[b].qkp); free(v[b].qblocks); free(v[b].kkp);
    }
    free(v);
}

/* Each batch row's visibility under mask [batch, 1, t, s], or NULL without memory. */
static inline visibility *visibility_of(const uint8_t *mask, int64_t batch, int64_t t, int64_t s) {
    visibility *v = calloc(batch, sizeof(visibility));
    if (v == NULL) return NULL;
    int64_t tiles = round_up(t, BT_ATTENTION_MR) / BT_ATTENTION_MR, blocks = round_up(s, BT_ATTENTION_NB) / BT_ATTENTION_NB;
    for (int64_t b = 0; b < batch; b++) {
        v[b].lo = malloc(t * sizeof(int64_t));
        v[b].hi = malloc(t * sizeof(int64_t));
        v[b].qkp = malloc(2 * tiles * sizeof(int64_t));
        v[b].qblocks = malloc(2 * tiles * sizeof(int64_t));
        v[b].kkp = malloc(2 * blocks * sizeof(int64_t));
        if (!v[b].lo || !v[b].hi || !v[b].qkp || !v[b].qblocks || !v[b].kkp) {
            visibility_free(v, batch);
            return NULL;
        }
        visible_keys(mask + b * t * s, t, s, v[b].lo, v[b].hi);
        query_tiles(v[b].lo, v[b].hi, t, v[b].qkp, v[b].qblocks);
        key_blocks(v[b].lo, v[b].hi, t, s, v[b].kkp);
    }
    return v;
}

#endif
