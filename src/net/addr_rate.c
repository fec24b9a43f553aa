/*
 * addr_rate.c - per-address token buckets for new connections; see addr_rate.h.
 *
 * Tokens are counted in thousandths, so that refilling `per_sec` per second is an integer
 * `per_sec` per millisecond.
 */
#include "net/addr_rate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/xalloc.h"

#define SHARDS 16
#define SLOTS 256 /* per shard, a power of two */
#define PROBE 8
#define ADDR_MAX 48

struct bucket {
    char addr[ADDR_MAX]; /* "" when free */
    uint64_t last;       /* monotonic ms of the last refill */
    uint64_t milli;      /* tokens x 1000 as of `last` */
};

struct shard {
    pthread_mutex_t lock;
    struct bucket slots[SLOTS];
} __attribute__((aligned(64)));

struct addr_rate {
    uint64_t cap;    /* per_sec x 1000 */
    uint64_t refill; /* thousandths of a token per ms: per_sec */
    struct shard shards[SHARDS];
};

struct addr_rate *
addr_rate_new(uint32_t per_sec)
{
    struct addr_rate *r = xcalloc(1, sizeof(*r));

    r->refill = per_sec ? per_sec : 1;
    r->cap = r->refill * 1000;
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&r->shards[i].lock, NULL);
    return r;
}

void
addr_rate_free(struct addr_rate *r)
{
    if (!r)
        return;
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_destroy(&r->shards[i].lock);
    free(r);
}

/* The address part of "addr:port" or "[v6]:port" into out (ADDR_MAX bytes). */
static size_t
peer_address(const char *peer, char *out)
{
    const char *p = peer;
    size_t len;

    if (*p == '[') {
        p++;
        const char *end = strchr(p, ']');
        len = end ? (size_t)(end - p) : strlen(p);
    } else {
        const char *colon = strrchr(p, ':');
        len = colon ? (size_t)(colon - p) : strlen(p);
    }
    if (len >= ADDR_MAX)
        len = ADDR_MAX - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    return len;
}

static uint64_t
tokens_at(const struct addr_rate *r, const struct bucket *b, uint64_t now)
{
    uint64_t elapsed = now > b->last ? now - b->last : 0;
    /* A second refills the whole bucket (cap = refill x 1000), which also bounds the product. */
    uint64_t t = b->milli + (elapsed >= 1000 ? r->cap : elapsed * r->refill);
    return t > r->cap ? r->cap : t;
}

bool
addr_rate_allow(struct addr_rate *r, const char *peer, uint64_t now)
{
    char addr[ADDR_MAX];
    size_t len = peer_address(peer, addr);
    uint64_t h = hash_fixed(addr, len);
    struct shard *sh = &r->shards[h % SHARDS];
    size_t at = (size_t)(h >> 32);
    struct bucket *b = NULL, *idle = NULL, *oldest = NULL;
    bool ok;

    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < PROBE; i++) {
        struct bucket *e = &sh->slots[(at + i) & (SLOTS - 1)];
        if (e->addr[0] && strcmp(e->addr, addr) == 0) {
            b = e;
            break;
        }
        /* A free slot, or one whose bucket is full again (as good as unknown); else the
         * least recently seen address is forgotten. */
        if (!idle && (!e->addr[0] || tokens_at(r, e, now) == r->cap))
            idle = e;
        if (!oldest || e->last < oldest->last)
            oldest = e;
    }
    if (!b) {
        b = idle ? idle : oldest;
        memcpy(b->addr, addr, len + 1);
        b->milli = r->cap;
        b->last = now;
    }
    b->milli = tokens_at(r, b, now);
    b->last = now;
    ok = b->milli >= 1000;
    if (ok)
        b->milli -= 1000;
    pthread_mutex_unlock(&sh->lock);
    return ok;
}
