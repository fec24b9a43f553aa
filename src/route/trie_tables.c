/*
 * trie_tables.c - the two hash tables of the trie: `ktab` (pointers to keys: literal children,
 * group names, group members by owner) and `subtab` (plain subscribers by owner, options
 * inline), and the hashing they use. See trie.c for how they fit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/xalloc.h"
#include "route/trie_internal.h"

/* ---- hashing: SipHash-1-3 (base/hash.h), keyed per trie ---- */

uint32_t
trie_hash_bytes(const uint64_t seed[2], const uint8_t *p, size_t len)
{
    uint64_t h = hash_keyed(seed, p, len);
    return (uint32_t)(h ^ (h >> 32));
}

/* Owners are our own pointers, not client input: a plain mixer spreads their aligned bits. */
uint32_t
trie_hash_owner(const void *owner)
{
    uint64_t x = (uint64_t)(uintptr_t)owner;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* The capacity for n entries: 0, 1 (inline), or a power of two at most 3/4 full. */
static uint32_t
cap_for(uint32_t n)
{
    if (n <= 1)
        return n;
    uint32_t cap = 4;
    while ((uint64_t)n * 4 > (uint64_t)cap * 3)
        cap *= 2;
    return cap;
}

static bool
cap_fits(uint32_t n, uint32_t cap)
{
    return cap == 1 ? n <= 1 : (uint64_t)n * 4 <= (uint64_t)cap * 3;
}

/* After a deletion: back inline at one entry, halved when below 1/8 full. */
static uint32_t
cap_after_del(uint32_t n, uint32_t cap)
{
    if (n <= 1)
        return n;
    return cap > 8 && (uint64_t)n * 8 < cap ? cap / 2 : cap;
}

/* ---- ktab ---- */


struct key *
ktab_find(struct ktab *kt, uint32_t hash, const void *p, size_t len)
{
    struct key **slot = ktab_slots(kt);
    uint32_t mask = kt->cap - 1;
    /* Bounded by cap: the inline table of one may be full. */
    for (uint32_t i = hash & mask, left = kt->cap; left > 0; i = (i + 1) & mask, left--) {
        struct key *k = slot[i];
        if (!k)
            return NULL;
        if (k->hash == hash && k->len == len && memcmp(key_bytes(k), p, len) == 0)
            return k;
    }
    return NULL;
}

static void
ktab_place(struct key **slot, uint32_t cap, struct key *k)
{
    uint32_t mask = cap - 1, i = k->hash & mask;
    while (slot[i])
        i = (i + 1) & mask;
    slot[i] = k;
}

static void
ktab_resize(struct ktab *kt, uint32_t cap)
{
    struct key *one = NULL, **old = kt->u.slot;
    uint32_t old_cap = kt->cap;
    if (old_cap == 1) {
        one = kt->u.one;
        old = &one;
    }

    kt->u.slot = cap > 1 ? xcalloc(cap, sizeof(*kt->u.slot)) : NULL;
    kt->cap = cap;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i])
            ktab_place(ktab_slots(kt), cap, old[i]);
    }
    if (old_cap > 1)
        free(old);
}

/* Add `k`, which must not be there yet. */
void
ktab_add(struct ktab *kt, struct key *k)
{
    if (!cap_fits(kt->n + 1, kt->cap))
        ktab_resize(kt, cap_for(kt->n + 1));
    ktab_place(ktab_slots(kt), kt->cap, k);
    kt->n++;
}

/* Remove `k`, which must be there. */
void
ktab_del(struct ktab *kt, const struct key *k)
{
    struct key **slot = ktab_slots(kt);
    uint32_t mask = kt->cap - 1, i = k->hash & mask;
    while (slot[i] != k)
        i = (i + 1) & mask;
    slot[i] = NULL;
    /* Shift back each following entry of the run that may live at `i`: one whose home slot
     * is no further from it than `i` is. */
    for (uint32_t j = (i + 1) & mask; slot[j]; j = (j + 1) & mask) {
        uint32_t home = slot[j]->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            slot[i] = slot[j];
            slot[j] = NULL;
            i = j;
        }
    }
    kt->n--;
    if (cap_after_del(kt->n, kt->cap) != kt->cap)
        ktab_resize(kt, cap_after_del(kt->n, kt->cap));
}

void
ktab_fini(struct ktab *kt)
{
    if (kt->cap > 1)
        free(kt->u.slot);
}

/* ---- subtab ---- */


struct sub *
subtab_find(struct subtab *st, const void *owner)
{
    struct sub *slot = subtab_slots(st);
    uint32_t mask = st->cap - 1;
    for (uint32_t i = trie_hash_owner(owner) & mask, left = st->cap; left > 0 && slot[i].owner;
         i = (i + 1) & mask, left--) {
        if (slot[i].owner == owner)
            return &slot[i];
    }
    return NULL;
}

static void
subtab_place(struct sub *slot, uint32_t cap, struct sub s)
{
    uint32_t mask = cap - 1, i = trie_hash_owner(s.owner) & mask;
    while (slot[i].owner)
        i = (i + 1) & mask;
    slot[i] = s;
}

static void
subtab_resize(struct subtab *st, uint32_t cap)
{
    struct sub one = {0}, *old = st->u.slot;
    uint32_t old_cap = st->cap;
    if (old_cap == 1) {
        one = st->u.one;
        old = &one;
    }

    if (cap > 1)
        st->u.slot = xcalloc(cap, sizeof(*st->u.slot));
    else
        st->u.one = (struct sub){0};
    st->cap = cap;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].owner)
            subtab_place(subtab_slots(st), cap, old[i]);
    }
    if (old_cap > 1)
        free(old);
}

/* Add or replace. Returns 1 when new, 0 when replaced. */
int
subtab_put(struct subtab *st, void *owner, const struct sub_opts *opts)
{
    struct sub *s = subtab_find(st, owner);
    if (s) {
        s->opts = *opts;
        return 0;
    }
    if (!cap_fits(st->n + 1, st->cap))
        subtab_resize(st, cap_for(st->n + 1));
    subtab_place(subtab_slots(st), st->cap, (struct sub){owner, *opts});
    st->n++;
    return 1;
}

int
subtab_del(struct subtab *st, const void *owner)
{
    struct sub *s = subtab_find(st, owner);
    if (!s)
        return -ENOENT;
    struct sub *slot = subtab_slots(st);
    uint32_t mask = st->cap - 1, i = (uint32_t)(s - slot);
    slot[i].owner = NULL;
    for (uint32_t j = (i + 1) & mask; slot[j].owner; j = (j + 1) & mask) {
        uint32_t home = trie_hash_owner(slot[j].owner) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            slot[i] = slot[j];
            slot[j].owner = NULL;
            i = j;
        }
    }
    st->n--;
    if (cap_after_del(st->n, st->cap) != st->cap)
        subtab_resize(st, cap_after_del(st->n, st->cap));
    return 0;
}

void
subtab_fini(struct subtab *st)
{
    if (st->cap > 1)
        free(st->u.slot);
}
