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

struct msg {
    _Atomic uint32_t refs;    /* messages cross worker threads: atomic */
    uint8_t qos;              /* as published */
    bool retain;              /* as published */
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
};

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

/* Drop a reference; frees the message at the last one. Accepts NULL. */
void msg_unref(struct msg *m);

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
