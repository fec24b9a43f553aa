/*
 * map.h - a hash map from byte-string keys to pointers (open addressing, linear probing,
 * backward-shift deletion: no tombstones, so lookups stay short under churn).
 *
 * The map borrows each key: the caller keeps the key bytes alive and unchanged while the entry
 * exists (usually the key points into the value object itself). Keys are shorter than 4 GiB.
 */
#ifndef PETREL_BASE_MAP_H
#define PETREL_BASE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"

/* 24 bytes: the client registry has one per session in every worker (docs/design.md). */
struct map_entry {
    const uint8_t *key;
    uint32_t key_len;
    uint32_t hash;       /* the keyed hash of the key (map_key_random) */
    void *val;           /* NULL marks an empty slot */
};

struct map {
    struct map_entry *slots;
    size_t cap;          /* a power of two, or 0 */
    size_t n;
};

void map_init(struct map *m);
void map_fini(struct map *m);

/* Slots are placed by a keyed hash (base/hash.h), so clients cannot choose keys that collide.
 * Call once at start-up, before any map holds an entry (the key is shared by all maps and the
 * entries keep their hash): afterwards the key is random. Without the call it is fixed, which
 * keeps unit tests and fuzzers reproducible. */
void map_key_random(void);

/* The value stored under `key`, or NULL. */
void *map_get(const struct map *m, struct slice key);

/* Store `val` (not NULL) under `key`, replacing any value there. Returns the value replaced, or
 * NULL. Aborts when memory runs out (the map grows by doubling). */
void *map_put(struct map *m, struct slice key, void *val);

/* Remove `key`. Returns the value removed, or NULL. */
void *map_del(struct map *m, struct slice key);

/* Iteration: `*pos` starts at 0; returns the next value or NULL at the end. The map must not
 * change during the walk except through map_iter_del-free patterns: collect first, then
 * remove. */
void *map_next(const struct map *m, size_t *pos);

#endif
