/*
 * sys.c - the $SYS topics: broker counters published as retained messages every
 * sys_interval seconds, under the names Mosquitto uses.
 */
#include <stdio.h>

#include "session/internal.h"

#ifndef PETREL_VERSION
#define PETREL_VERSION "0.1.0"
#endif

static void
publish_str(struct hub *h, const char *topic, const char *value)
{
    struct msg *m = msg_new(slice_cstr(topic), slice_cstr(value), NULL, 0, true, 0, h->now);

    if (!m)
        return;
    hub_route(h, NULL, m);
    msg_unref(m);
}

static void
publish_u64(struct hub *h, const char *topic, uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    publish_str(h, topic, buf);
}

void
sys_publish(struct hub *h)
{
    const struct hub_stats *st = &h->stats;
    char buf[64];
    uint64_t subs = trie_count(h->trie);

    snprintf(buf, sizeof(buf), "%llu seconds",
             (unsigned long long)((h->now - h->started_at) / 1000u));
    publish_str(h, "$SYS/broker/uptime", buf);
    publish_str(h, "$SYS/broker/version", "petrel version " PETREL_VERSION);
    publish_u64(h, "$SYS/broker/clients/connected", h->n_connected);
    publish_u64(h, "$SYS/broker/clients/active", h->n_connected);
    publish_u64(h, "$SYS/broker/clients/total", h->sessions.n);
    publish_u64(h, "$SYS/broker/clients/disconnected", h->sessions.n - h->n_connected);
    publish_u64(h, "$SYS/broker/clients/maximum", st->clients_maximum);
    publish_u64(h, "$SYS/broker/messages/received", st->msgs_received);
    publish_u64(h, "$SYS/broker/messages/sent", st->msgs_sent);
    publish_u64(h, "$SYS/broker/messages/dropped", st->msgs_dropped);
    publish_u64(h, "$SYS/broker/publish/messages/received", st->msgs_received);
    publish_u64(h, "$SYS/broker/publish/messages/sent", st->msgs_sent);
    publish_u64(h, "$SYS/broker/publish/messages/dropped", st->msgs_dropped);
    publish_u64(h, "$SYS/broker/bytes/received", h->pool->bytes_in);
    publish_u64(h, "$SYS/broker/bytes/sent", h->pool->bytes_out);
    publish_u64(h, "$SYS/broker/retained messages/count", retain_count(&h->retained));
    publish_u64(h, "$SYS/broker/subscriptions/count", subs);
    publish_u64(h, "$SYS/broker/p2p/messages/routed", st->p2p_routed);
    publish_u64(h, "$SYS/broker/p2p/messages/queued", st->p2p_queued);
    publish_u64(h, "$SYS/broker/p2p/messages/dropped", st->p2p_dropped);
    publish_u64(h, "$SYS/broker/p2p/messages/refused", st->p2p_refused);
}
