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

/* Sum every hub's last snapshot (this hub's is fresh: hub_tick just took it). */
static struct hub_stats
total_stats(struct hubs *hs)
{
    struct hub_stats t = {0};

    pthread_mutex_lock(&hs->stats_lock);
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        const struct hub_stats *s = &hs->snapshots[k];
        t.msgs_received += s->msgs_received;
        t.msgs_sent += s->msgs_sent;
        t.msgs_dropped += s->msgs_dropped;
        t.clients_total += s->clients_total;
        t.p2p_routed += s->p2p_routed;
        t.p2p_queued += s->p2p_queued;
        t.p2p_dropped += s->p2p_dropped;
        t.p2p_refused += s->p2p_refused;
        t.bytes_in += s->bytes_in;
        t.bytes_out += s->bytes_out;
        t.n_sessions += s->n_sessions;
        t.conns_rate_refused += s->conns_rate_refused;
        t.conns_full_refused += s->conns_full_refused;
        t.conns_mem_refused += s->conns_mem_refused;
        t.connect_timeouts += s->connect_timeouts;
        t.slow_senders += s->slow_senders;
        t.msgs_mem_dropped += s->msgs_mem_dropped;
        t.msgs_mem_refused += s->msgs_mem_refused;
        t.dropped_qos0_offline += s->dropped_qos0_offline;
        t.dropped_qos0_slow += s->dropped_qos0_slow;
        t.dropped_queue_full += s->dropped_queue_full;
        t.dropped_queue_oldest += s->dropped_queue_oldest;
        t.publish_refused_full += s->publish_refused_full;
        t.write_stalls += s->write_stalls;
    }
    pthread_mutex_unlock(&hs->stats_lock);
    return t;
}

void
sys_publish(struct hub *h)
{
    struct hubs *hs = h->all;
    struct hub_stats st = total_stats(hs);
    size_t connected = atomic_load_explicit(&hs->n_connected, memory_order_relaxed);
    size_t retained;
    char buf[64];

    pthread_mutex_lock(&hs->retained_lock);
    retained = retain_count(&hs->retained);
    pthread_mutex_unlock(&hs->retained_lock);
    snprintf(buf, sizeof(buf), "%llu seconds",
             (unsigned long long)((h->now - hs->started_at) / 1000u));
    publish_str(h, "$SYS/broker/uptime", buf);
    publish_str(h, "$SYS/broker/version", "petrel version " PETREL_VERSION);
    publish_u64(h, "$SYS/broker/clients/connected", connected);
    publish_u64(h, "$SYS/broker/clients/active", connected);
    publish_u64(h, "$SYS/broker/clients/total", st.n_sessions);
    publish_u64(h, "$SYS/broker/clients/disconnected",
                st.n_sessions > connected ? st.n_sessions - connected : 0);
    publish_u64(h, "$SYS/broker/clients/maximum",
                atomic_load_explicit(&hs->max_connected, memory_order_relaxed));
    publish_u64(h, "$SYS/broker/messages/received", st.msgs_received);
    publish_u64(h, "$SYS/broker/messages/sent", st.msgs_sent);
    publish_u64(h, "$SYS/broker/messages/dropped", st.msgs_dropped);
    publish_u64(h, "$SYS/broker/publish/messages/received", st.msgs_received);
    publish_u64(h, "$SYS/broker/publish/messages/sent", st.msgs_sent);
    publish_u64(h, "$SYS/broker/publish/messages/dropped", st.msgs_dropped);
    publish_u64(h, "$SYS/broker/bytes/received", st.bytes_in);
    publish_u64(h, "$SYS/broker/bytes/sent", st.bytes_out);
    publish_u64(h, "$SYS/broker/retained messages/count", retained);
    /* Every hub's trie holds every subscription, so any one of them counts them all. */
    publish_u64(h, "$SYS/broker/subscriptions/count", trie_count(h->trie));
    /* Petrel's: drops by reason (docs/design.md "Delivery"). */
    publish_u64(h, "$SYS/broker/messages/dropped/qos0_offline", st.dropped_qos0_offline);
    publish_u64(h, "$SYS/broker/messages/dropped/qos0_slow", st.dropped_qos0_slow);
    publish_u64(h, "$SYS/broker/messages/dropped/queue_full", st.dropped_queue_full);
    publish_u64(h, "$SYS/broker/messages/dropped/queue_oldest", st.dropped_queue_oldest);
    publish_u64(h, "$SYS/broker/publish/messages/refused/queue_full", st.publish_refused_full);
    publish_u64(h, "$SYS/broker/clients/write_stalled", st.write_stalls);
    publish_u64(h, "$SYS/broker/p2p/messages/routed", st.p2p_routed);
    publish_u64(h, "$SYS/broker/p2p/messages/queued", st.p2p_queued);
    publish_u64(h, "$SYS/broker/p2p/messages/dropped", st.p2p_dropped);
    publish_u64(h, "$SYS/broker/p2p/messages/refused", st.p2p_refused);
    /* Hostile clients and overload (overload.c); the heap topics are named as in Mosquitto. */
    publish_u64(h, "$SYS/broker/heap/current", atomic_load(&hs->mem_used));
    publish_u64(h, "$SYS/broker/heap/maximum", atomic_load(&hs->mem_peak));
    publish_u64(h, "$SYS/broker/heap/limit", h->cfg->memory_limit);
    publish_u64(h, "$SYS/broker/heap/level", (uint64_t)overload_level(h));
    publish_u64(h, "$SYS/broker/connections/refused/rate", st.conns_rate_refused);
    publish_u64(h, "$SYS/broker/connections/refused/full", st.conns_full_refused);
    publish_u64(h, "$SYS/broker/connections/refused/memory", st.conns_mem_refused);
    publish_u64(h, "$SYS/broker/connections/closed/connect_timeout", st.connect_timeouts);
    publish_u64(h, "$SYS/broker/connections/closed/slow_sender", st.slow_senders);
    publish_u64(h, "$SYS/broker/messages/dropped/memory", st.msgs_mem_dropped);
    publish_u64(h, "$SYS/broker/messages/refused/memory", st.msgs_mem_refused);
    if (hs->store) {
        /* The durable store (docs/design.md "Durability"): the same figures as /metrics. */
        struct store_stats ss;
        store_stats(hs->store, &ss);
        publish_u64(h, "$SYS/broker/store/batches", ss.batches_ok);
        publish_u64(h, "$SYS/broker/store/failed", ss.batches_failed);
        publish_u64(h, "$SYS/broker/store/commits", ss.commits);
        publish_u64(h, "$SYS/broker/store/pending", ss.pending);
        publish_u64(h, "$SYS/broker/store/used_bytes", ss.used_bytes);
        publish_u64(h, "$SYS/broker/store/map_bytes", ss.map_size);
        publish_u64(h, "$SYS/broker/store/full", atomic_load(&hs->store_full) ? 1 : 0);
    }
}
