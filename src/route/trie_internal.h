/*
 * trie_internal.h - the hash tables the trie is built from, shared by trie.c and trie_tables.c.
 */
#ifndef PETREL_ROUTE_TRIE_INTERNAL_H
#define PETREL_ROUTE_TRIE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/trie.h"

/* The key of an entry in a `ktab`: a literal level, a group name or an owner pointer. Its
 * bytes follow it in memory (see key_bytes()), which saves a pointer per node. */
struct key {
    uint32_t hash;
    uint32_t len;
};

/* Open addressing with linear probing over pointers to keys; deletion shifts entries back
 * instead of leaving tombstones. Capacity is 0, 1 (the one slot lives in the struct itself:
 * most nodes have one child or one subscriber) or a power of two at most 3/4 full. */
struct ktab {
    union {
        struct key **slot;
        struct key *one;
    } u;
    uint32_t cap;
    uint32_t n;
};

struct sub {
    void *owner; /* NULL marks a free slot */
    struct sub_opts opts;
};

/* The same scheme for plain subscribers, their options inline (16 bytes each). */
struct subtab {
    union {
        struct sub *slot;
        struct sub one;
    } u;
    uint32_t cap;
    uint32_t n;
};

#define CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr) - offsetof(type, field)))

static inline const uint8_t *
key_bytes(const struct key *k)
{
    return (const uint8_t *)(k + 1);
}

/* A table's slots, wherever they live (inline at capacity 1). */
static inline struct key **
ktab_slots(struct ktab *kt)
{
    return kt->cap == 1 ? &kt->u.one : kt->u.slot;
}

static inline struct sub *
subtab_slots(struct subtab *st)
{
    return st->cap == 1 ? &st->u.one : st->u.slot;
}

/* SipHash-1-3 of level and group-name bytes, keyed per trie by `seed`. */
uint32_t trie_hash_bytes(const uint64_t seed[2], const uint8_t *p, size_t len);
/* Owners are our own pointers, not client input: a plain mixer spreads their aligned bits. */
uint32_t trie_hash_owner(const void *owner);

/* ktab: open addressing over pointers to keys, linear probing, backward-shift deletion. */
struct key *ktab_find(struct ktab *kt, uint32_t hash, const void *p, size_t len);
void ktab_add(struct ktab *kt, struct key *k);
void ktab_del(struct ktab *kt, const struct key *k);
void ktab_fini(struct ktab *kt);
/* subtab: the same for plain subscribers keyed by owner. */
struct sub *subtab_find(struct subtab *st, const void *owner);
int subtab_put(struct subtab *st, void *owner, const struct sub_opts *opts);
int subtab_del(struct subtab *st, const void *owner);
void subtab_fini(struct subtab *st);

#endif
