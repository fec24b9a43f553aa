/*
 * overload.c - defences against hostile clients and against running out of memory
 * (docs/design.md, "Hostile clients and overload").
 *
 *   accept   max_connection_rate: a token bucket per source address, shared by all workers
 *            (net/addr_rate.c); over it, the socket is closed before a byte is read.
 *   timers   connect_timeout: accept to a complete CONNECT; packet_timeout: first byte to
 *            last byte of any later packet (slow senders cannot pin a half-read packet).
 *   memory   memory_limit: hub 0 samples the heap every tick, and any hub that has read
 *            1/64 of the limit (at least 1 MiB) since its last sample samples it again (a
 *            publisher on loopback fills 24 MiB in well under a tick). A sample sets
 *            mem_used and mem_level, which every hub reads with one relaxed load:
 *
 *     used <  90 %:  MEM_OK
 *     used >= 90 %:  MEM_HIGH
 *     used >= 100 %: MEM_FULL      (each sample decides afresh: recovery is automatic)
 *
 *     MEM_HIGH: CONNECTs that would create a session are refused (CONNACK 0x97, 3.1.1: 3);
 *               inbound QoS 0 publishes are dropped. A client resuming its session may still
 *               connect: draining its queue is how memory comes back.
 *     MEM_FULL: inbound QoS 1/2 publishes are refused too (MQTT 5: PUBACK/PUBREC 0x97; 3.1.1
 *               has no code for it, so the connection is closed and the client resends later).
 */
#include "base/log.h"
#include "base/memstat.h"
#include "session/internal.h"

void
overload_init(struct hubs *hs)
{
    if (hs->cfg->max_connection_rate)
        hs->conn_rate = addr_rate_new(hs->cfg->max_connection_rate);
}

void
overload_fini(struct hubs *hs)
{
    addr_rate_free(hs->conn_rate);
    hs->conn_rate = NULL;
}

bool
overload_accept(struct hub *h, const char *peer)
{
    static struct log_ratelimit rl;

    if (!h->all->conn_rate || addr_rate_allow(h->all->conn_rate, peer, h->now))
        return true;
    h->stats.conns_rate_refused++;
    if (log_ratelimit(&rl, 5))
        log_notice("connection refused, rate exceeded addr=%s max_connection_rate=%u", peer,
                   h->cfg->max_connection_rate);
    return false;
}

static enum mem_level
level_for(uint64_t used, uint64_t limit)
{
    if (used >= limit)
        return MEM_FULL;
    /* Compared as used * 100 >= limit * 90, without overflow for any sane limit. */
    if (used / MEM_HIGH_PERCENT >= limit / 100)
        return MEM_HIGH;
    return MEM_OK;
}

void
overload_sample(struct hub *h)
{
    struct hubs *hs = h->all;
    uint64_t limit = h->cfg->memory_limit;
    uint64_t used = memstat_heap_used();

    h->mem_sampled_in = h->pool->bytes_in;
    atomic_store_explicit(&hs->mem_used, used, memory_order_relaxed);
    uint64_t peak = atomic_load_explicit(&hs->mem_peak, memory_order_relaxed);
    while (used > peak &&
           !atomic_compare_exchange_weak_explicit(&hs->mem_peak, &peak, used, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    if (!limit)
        return;
    enum mem_level was = overload_level(h), now = level_for(used, limit);
    if (now == was)
        return;
    /* Stored only on a change, so the line every PUBLISH reads stays in the readers' caches. */
    atomic_store_explicit(&hs->mem_level, (int)now, memory_order_relaxed);
    log_notice("memory %s used=%llu limit=%llu",
               now == MEM_FULL   ? "full: refusing QoS 1/2 publishes and new sessions"
               : now == MEM_HIGH ? "high: refusing new sessions, dropping QoS 0 publishes"
                                 : "back to normal",
               (unsigned long long)used, (unsigned long long)limit);
}

bool
overload_sweep_client(struct client *c)
{
    struct hub *h = c->hub;
    const struct config *cfg = h->cfg;

    if (c->state == CLIENT_NEW && h->now - c->connected_at > cfg->connect_timeout * 1000ull) {
        /* MQTT 5 section 3.1.4: a server SHOULD close a connection that sends no CONNECT
         * in reasonable time. Without CONNECT there is no version to answer in. */
        h->stats.connect_timeouts++;
        c->state = CLIENT_CLOSING;
        conn_close(c->conn);
        return true;
    }
    if (c->state == CLIENT_CONNECTED && cfg->packet_timeout && c->partial_since &&
        h->now - c->partial_since > cfg->packet_timeout * 1000ull) {
        static struct log_ratelimit rl;
        h->stats.slow_senders++;
        if (log_ratelimit(&rl, 5))
            log_notice("slow sender closed client=%s addr=%s packet_timeout=%u", client_id_str(c),
                       conn_peer(c->conn), cfg->packet_timeout);
        /* No whole packet within the limit: to MQTT 5 clients, as a keepalive timeout. */
        client_kick(c, MQTT_RC_KEEP_ALIVE_TIMEOUT);
        return true;
    }
    return false;
}
