/*
 * The panel order the inference layouts share (bf16_panels.c, int8_bf16_panels.c): a weight [n, k]
 * as panels of BT_PANEL output rows, each panel its rows' "words" — the elements one lane of the
 * product multiplies, a pair of bfloat16 or of int8 — side by side: panel p, word q holds row
 * 32p + j's word q at word (p · words + q) · 32 + j.
 */
#ifndef BT_PANELS_H
#define BT_PANELS_H
#include <stdint.h>
#include <string.h>

#define BT_PANEL 32

/* TILE(args, r) for r = nr (1..8): each call a specialisation with r a constant, so the tile's loops over its rows unroll. */
#define BT_BY_ROWS(nr, TILE, ...) \
    switch (nr) { \
        case 8: TILE(__VA_ARGS__, 8); break; \
        case 7: TILE(__VA_ARGS__, 7); break; \
        case 6: TILE(__VA_ARGS__, 6); break; \
        case 5: TILE(__VA_ARGS__, 5); break; \
        case 4: TILE(__VA_ARGS__, 4); break; \
        case 3: TILE(__VA_ARGS__, 3); break; \
        case 2: TILE(__VA_ARGS__, 2); break; \
        default: TILE(__VA_ARGS__, 1); break; \
    }

/* W [n, words · word_bytes bytes a row] (n a multiple of BT_PANEL) into `panels` (as many bytes). */
static inline void bt_panels_pack(const void *w, int64_t n, int64_t words, int64_t word_bytes, void *panels) {
    const char *in = (const char *) w;
    char *out = (char *) panels;
    for (int64_t p = 0; p < n / BT_PANEL; p++)
        for (int64_t j = 0; j < BT_PANEL; j++) {
            const char *row = in + (p * BT_PANEL + j) * words * word_bytes;
            char *column = out + (p * words * BT_PANEL + j) * word_bytes;
            for (int64_t q = 0; q < words; q++) memcpy(column + q * BT_PANEL * word_bytes, row + q * word_bytes, (size_t) word_bytes);
        }
}

/* Row t's first word in panels of `words` words a row; its word q lies q · BT_PANEL words further on. */
static inline const char *bt_panels_row(const void *panels, int64_t t, int64_t words, int64_t word_bytes) {
    return (const char *) panels + ((t / BT_PANEL) * words * BT_PANEL + t % BT_PANEL) * word_bytes;
}

/* Rows `ids` [count] of a matrix in panels (`words` words a row) back in row order: out [count, words · word_bytes bytes]. */
static inline void bt_panels_rows(const void *panels, int64_t words, int64_t word_bytes, const int64_t *ids, int64_t count, void *out) {
    for (int64_t i = 0; i < count; i++) {
        const char *first = bt_panels_row(panels, ids[i], words, word_bytes);
        char *row = (char *) out + i * words * word_bytes;
        for (int64_t q = 0; q < words; q++) memcpy(row + q * word_bytes, first + q * BT_PANEL * word_bytes, (size_t) word_bytes);
    }
}
#endif
