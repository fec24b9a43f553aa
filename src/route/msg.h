/*
 * msg.h - an application message as the broker holds it: immutable after msg_new(), shared by
 * reference between the retained store, subscriber queues and inflight windows.
 *
 * One allocation holds the struct, the topic, the payload and a copy of the MQTT 5 property
 * block; fan-out to many subscribers copies nothing.
 */
#ifndef PETREL_ROUTE_MSG_H
#define PETREL_ROUTE_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/slice.h"
#include "mqtt/packet.h"

struct msg_home;

struct msg {
    _Atomic uint32_t refs;    /* messages cross worker threads: atomic */
    uint8_t qos;              /* as published */
    bool retain;              /* as published */
    bool is_block;            /* a MSG_BLOCK-byte block, reusable for another message */
    uint64_t origin;          /* serial of the publishing session (no-local), 0: the broker */
    uint64_t expiry_at;       /* monotonic ms when it expires, 0: never */
    /* Its id in the durable store, 0: not stored yet. Set once by whichever worker stores it
     * first (compare-and-swap), so every queue entry and the retained index share one copy. */
    _Atomic uint64_t store_id;
    struct slice topic;
    struct slice payload;
    /* Forwarded properties. MESSAGE_EXPIRY is recomputed at each send from expiry_at, and
     * TOPIC_ALIAS and SUBSCRIPTION_ID never travel with the message (both are per-hop). */
    struct mqtt_props props;
    /* The worker thread that allocated it (NULL: none), and the link in that thread's list of
     * messages freed elsewhere (msg_home_collect). */
    struct msg_home *home;
    struct msg *next_returned;
};

/*
 * Messages go back to the thread that allocated them, which keeps their blocks for new ones.
 * A message is allocated by the worker that read it and often freed by another (the
 * subscriber's): glibc would then free into the allocating thread's arena under that arena's
 * lock, which the allocating thread keeps taking for its own messages, and a batch of messages
 * allocated and freed together overflows glibc's small per-thread cache. Instead the last
 * msg_unref on another worker thread pushes the message onto its home's list (one
 * compare-and-swap); the home thread takes the list back (msg_home_collect) and reuses the
 * blocks of small messages for its next ones. Threads without a home (start-up, shutdown, the
 * storage thread) free at once.
 */
struct msg_home {
    _Atomic(struct msg *) returned; /* pushed by other threads */
    struct msg *free;               /* blocks for reuse, the home thread's only */
    uint32_t n_free;
    uint32_t n_used;                /* blocks taken since the last trim */
};

/* Make `home` (NULL: none) the calling thread's: messages it allocates from now on return to
 * it. `home` must outlive every worker thread that could still drop a reference. */
void msg_home_enter(struct msg_home *home);
/* On the home's thread: take back the messages returned so far. Cheap when there are none. */
void msg_home_collect(struct msg_home *home);
/* On the home's thread, now and then: give blocks kept for reuse back to the allocator when
 * few were used since the last call (an idle worker keeps none). */
void msg_home_trim(struct msg_home *home);
/* Free every block (the home is going away; no thread uses it any more). */
void msg_home_fini(struct msg_home *home);

/*
 * Copy topic, payload and `props` (may be NULL) into a new message with one reference.
 * `now` (monotonic ms) anchors the message expiry interval when props carry one.
 * Returns NULL when memory runs out: sizes here are chosen by clients.
 */
struct msg *msg_new(struct slice topic, struct slice payload, const struct mqtt_props *props,
                    uint8_t qos, bool retain, uint64_t origin, uint64_t now);

/* Returns `m` with one more reference. */
static inline struct msg *
msg_ref(struct msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

/* Returns `m` with `n` more references (one atomic operation for a batch of deliveries). */
static inline struct msg *
msg_ref_n(struct msg *m, uint32_t n)
{
    atomic_fetch_add_explicit(&m->refs, n, memory_order_relaxed);
    return m;
}

/* Drop `n` references; frees the message at the last one. Accepts NULL (or n 0). */
void msg_unref_n(struct msg *m, uint32_t n);

/* Drop a reference; frees the message at the last one. Accepts NULL. */
static inline void
msg_unref(struct msg *m)
{
    msg_unref_n(m, 1);
}

/* Has it expired at `now`? */
static inline bool
msg_expired(const struct msg *m, uint64_t now)
{
    return m->expiry_at != 0 && now >= m->expiry_at;
}

/* Seconds of the message expiry interval left at `now` (at least 1 while not expired). */
uint32_t msg_expiry_left(const struct msg *m, uint64_t now);

/* Bytes this message accounts for in queue limits. */
static inline uint64_t
msg_size(const struct msg *m)
{
    return m->topic.len + m->payload.len + m->props.raw.len;
}

#endif
