/*
 * track.c - per-stream sequence bitmap (see track.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "petrel-bench/track.h"

void
track_init(struct track *t)
{
    memset(t, 0, sizeof(*t));
}

void
track_fini(struct track *t)
{
    free(t->bits);
    track_init(t);
}

static void
grow(struct track *t, uint32_t seq)
{
    uint64_t cap = t->cap ? t->cap : 4096;
    while (cap <= seq)
        cap *= 2;
    if (cap > (uint64_t)UINT32_MAX + 1)
        cap = (uint64_t)UINT32_MAX + 1;
    uint64_t *bits = realloc(t->bits, (size_t)(cap / 64) * sizeof(uint64_t));
    if (!bits) {
        fprintf(stderr, "petrel-bench: out of memory (sequence bitmap)\n");
        abort();
    }
    memset(bits + t->cap / 64, 0, (size_t)((cap - t->cap) / 64) * sizeof(uint64_t));
    t->bits = bits;
    /* A cap of 2^32 does not fit: store the largest multiple of 64 below it, which still
     * covers every uint32_t sequence but the last 63 - never reached in a bounded run. */
    t->cap = cap > UINT32_MAX ? UINT32_MAX - 63 : (uint32_t)cap;
}

int
track_add(struct track *t, uint32_t seq)
{
    if (seq >= t->cap)
        grow(t, seq);
    uint64_t mask = UINT64_C(1) << (seq % 64);
    uint64_t *w = &t->bits[seq / 64];
    if (*w & mask) {
        t->n_dup++;
        return 0;
    }
    *w |= mask;
    t->n_unique++;
    if (seq + 1 > t->hi)
        t->hi = seq + 1;
    else
        t->n_ooo++;
    return 1;
}

int
track_has(const struct track *t, uint32_t seq)
{
    return seq < t->cap && (t->bits[seq / 64] >> (seq % 64) & 1);
}

uint64_t
track_missing(const struct track *t, uint32_t n_sent, const uint32_t *exempt, size_t n_exempt)
{
    uint64_t got = 0;
    uint32_t upto = n_sent < t->cap ? n_sent : t->cap;
    uint32_t full = upto / 64;
    for (uint32_t i = 0; i < full; i++)
        got += (uint64_t)__builtin_popcountll(t->bits[i]);
    if (upto % 64)
        got += (uint64_t)__builtin_popcountll(t->bits[full] & ((UINT64_C(1) << (upto % 64)) - 1));
    uint64_t expected = n_sent;
    for (size_t i = 0; i < n_exempt; i++) {
        if (exempt[i] >= n_sent)
            continue;
        expected--;
        if (track_has(t, exempt[i]))
            got--;
    }
    return expected - got;
}

void
track_union(struct track *into, const struct track *from)
{
    if (from->hi == 0)
        return;
    if (from->hi - 1 >= into->cap)
        grow(into, from->hi - 1);
    uint32_t words = (from->hi + 63) / 64;
    uint64_t n = 0;
    for (uint32_t i = 0; i < words; i++)
        into->bits[i] |= from->bits[i];
    for (uint32_t i = 0; i < into->cap / 64; i++)
        n += (uint64_t)__builtin_popcountll(into->bits[i]);
    into->n_unique = n;
    if (from->hi > into->hi)
        into->hi = from->hi;
}
