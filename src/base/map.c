/*
 * map.c - see map.h.
 */
#include "base/map.h"

#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/xalloc.h"

void
map_init(struct map *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}

void
map_fini(struct map *m)
{
    free(m->slots);
    map_init(m);
}

/* One key for every map of the process: per map it would cost 16 bytes in every session. */
static uint64_t map_key[2] = {0x70657472656c2d6dull, 0x61702d6b65792d30ull};

void
map_key_random(void)
{
    hash_key_random(map_key);
}

static uint32_t
slot_hash(struct slice key)
{
    return (uint32_t)hash_keyed(map_key, key.p, key.len);
}

static size_t
find_slot(const struct map *m, const uint8_t *key, size_t key_len, uint32_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;

    while (m->slots[i].val) {
        const struct map_entry *e = &m->slots[i];
        if (e->hash == h && e->key_len == key_len &&
            (key_len == 0 || memcmp(e->key, key, key_len) == 0))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

void *
map_get(const struct map *m, struct slice key)
{
    if (m->n == 0)
        return NULL;
    return m->slots[find_slot(m, key.p, key.len, slot_hash(key))].val;
}

static void
grow(struct map *m)
{
    struct map_entry *old = m->slots;
    size_t old_cap = m->cap;

    m->cap = old_cap ? old_cap * 2 : 16;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].val)
            m->slots[find_slot(m, old[i].key, old[i].key_len, old[i].hash)] = old[i];
    }
    free(old);
}

void *
map_put(struct map *m, struct slice key, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        grow(m);
    uint32_t h = slot_hash(key);
    size_t i = find_slot(m, key.p, key.len, h);
    void *old = m->slots[i].val;

    m->slots[i] = (struct map_entry){key.p, (uint32_t)key.len, h, val};
    if (!old)
        m->n++;
    return old;
}

void *
map_del(struct map *m, struct slice key)
{
    if (m->n == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find_slot(m, key.p, key.len, slot_hash(key));
    void *old = m->slots[i].val;

    if (!old)
        return NULL;
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t j = i;
    for (;;) {
        m->slots[i].val = NULL;
        for (;;) {
            j = (j + 1) & mask;
            if (!m->slots[j].val)
                goto done;
            size_t home = (size_t)m->slots[j].hash & mask;
            /* Move j into i unless its home lies cyclically in (i, j]. */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        m->slots[i] = m->slots[j];
        i = j;
    }
done:
    m->n--;
    return old;
}

void *
map_next(const struct map *m, size_t *pos)
{
    while (*pos < m->cap) {
        void *v = m->slots[(*pos)++].val;
        if (v)
            return v;
    }
    return NULL;
}
