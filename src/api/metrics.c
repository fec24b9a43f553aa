/*
 * metrics.c - GET /metrics in the Prometheus text exposition format (version 0.0.4), and the
 * health checks GET /healthz (the worker answers: it is alive) and GET /readyz (it can take
 * work: the store accepts writes and memory is below 90 % of memory_limit).
 *
 * Counters are the hubs' snapshots, refreshed every tick (250 ms), so a reading may trail the
 * traffic by that much. Names follow Prometheus conventions: `_total` for counters, base
 * units (bytes, seconds).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/buf.h"
#include "base/clock.h"

static void
out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out(struct buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
    out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
one(struct buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    head(b, name, type, help);
    out(b, "%s %llu\n", name, (unsigned long long)v);
}

static void
labelled(struct buf *b, const char *name, const char *label, const char *value, uint64_t v)
{
    out(b, "%s{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long)v);
}

static void
by_qos(struct buf *b, const char *name, const char *help, const uint64_t v[3])
{
    head(b, name, "counter", help);
    for (int q = 0; q < 3; q++)
        out(b, "%s{qos=\"%d\"} %llu\n", name, q, (unsigned long long)v[q]);
}

void
api_metrics(struct api_ctx *ctx)
{
    struct app_metrics m;
    struct buf b;

    app_metrics_read(ctx->w->api->hubs, &m);
    buf_init(&b);
    one(&b, "petrel_connections", "gauge", "MQTT connections open now (past CONNACK).",
        m.connections);
    one(&b, "petrel_connections_total", "counter", "MQTT connections accepted with CONNACK 0.",
        m.clients_total);
    one(&b, "petrel_sessions", "gauge", "Sessions, connected or not.", m.sessions);
    by_qos(&b, "petrel_messages_received_total", "PUBLISH packets received from clients.",
           m.msgs_received);
    by_qos(&b, "petrel_messages_sent_total", "PUBLISH packets sent to clients.", m.msgs_sent);
    by_qos(&b, "petrel_message_bytes_received_total",
           "Payload bytes of the PUBLISH packets received from clients.", m.payload_in);
    by_qos(&b, "petrel_message_bytes_sent_total",
           "Payload bytes of the PUBLISH packets sent to clients.", m.payload_out);
    one(&b, "petrel_received_bytes_total", "counter",
        "Bytes read from client connections (MQTT and HTTP).", m.bytes_in);
    one(&b, "petrel_sent_bytes_total", "counter",
        "Bytes written to client connections (MQTT and HTTP).", m.bytes_out);
    one(&b, "petrel_api_messages_published_total", "counter",
        "Messages published through the HTTP API.", m.api_published);
    one(&b, "petrel_p2p_routed_total", "counter",
        "P2P messages to a known client ID (sent now or queued).", m.p2p_routed);
    one(&b, "petrel_p2p_queued_total", "counter",
        "P2P messages queued for an offline session (part of routed).", m.p2p_queued);
    one(&b, "petrel_p2p_dropped_total", "counter", "P2P messages to an unknown client ID.",
        m.p2p_dropped);
    one(&b, "petrel_p2p_refused_total", "counter", "P2P messages under a parent not allowed.",
        m.p2p_refused);
    head(&b, "petrel_messages_dropped_total", "counter",
         "Deliveries dropped, by reason (one message may be dropped for several sessions).");
    uint64_t known = m.dropped_qos0_offline + m.dropped_qos0_slow + m.dropped_queue_full +
                     m.dropped_queue_oldest;
    labelled(&b, "petrel_messages_dropped_total", "reason", "qos0_offline",
             m.dropped_qos0_offline);
    labelled(&b, "petrel_messages_dropped_total", "reason", "qos0_slow", m.dropped_qos0_slow);
    labelled(&b, "petrel_messages_dropped_total", "reason", "queue_full", m.dropped_queue_full);
    labelled(&b, "petrel_messages_dropped_total", "reason", "queue_oldest",
             m.dropped_queue_oldest);
    /* Too large for the client's Maximum Packet Size, expired, or its connection gone. */
    labelled(&b, "petrel_messages_dropped_total", "reason", "other",
             m.dropped > known ? m.dropped - known : 0);
    head(&b, "petrel_publishes_refused_total", "counter",
         "Inbound QoS 1/2 publishes refused (MQTT 5: 0x97), by reason.");
    labelled(&b, "petrel_publishes_refused_total", "reason", "queue_full",
             m.publish_refused_full);
    labelled(&b, "petrel_publishes_refused_total", "reason", "memory", m.publish_mem_refused);
    head(&b, "petrel_publishes_dropped_total", "counter",
         "Inbound QoS 0 publishes dropped, by reason.");
    labelled(&b, "petrel_publishes_dropped_total", "reason", "memory", m.publish_mem_dropped);
    head(&b, "petrel_connections_refused_total", "counter", "Connections refused, by reason.");
    labelled(&b, "petrel_connections_refused_total", "reason", "rate", m.conns_rate_refused);
    labelled(&b, "petrel_connections_refused_total", "reason", "full", m.conns_full_refused);
    labelled(&b, "petrel_connections_refused_total", "reason", "memory", m.conns_mem_refused);
    head(&b, "petrel_connections_closed_total", "counter",
         "Connections closed by the broker's limits, by reason.");
    labelled(&b, "petrel_connections_closed_total", "reason", "connect_timeout",
             m.connect_timeouts);
    labelled(&b, "petrel_connections_closed_total", "reason", "slow_sender", m.slow_senders);
    labelled(&b, "petrel_connections_closed_total", "reason", "write_stall", m.write_stalls);
    one(&b, "petrel_heap_bytes", "gauge", "Heap bytes in use at the latest sample.",
        m.heap_bytes);
    one(&b, "petrel_heap_peak_bytes", "gauge", "The most heap bytes sampled.", m.heap_peak_bytes);
    one(&b, "petrel_heap_limit_bytes", "gauge", "memory_limit; 0: none.", m.heap_limit_bytes);
    one(&b, "petrel_memory_level", "gauge",
        "0 normal, 1 from 90 % of memory_limit (no new sessions, QoS 0 shed), 2 full.",
        m.memory_level);
    one(&b, "petrel_queued_messages", "gauge", "Messages waiting in session queues.", m.queued);
    one(&b, "petrel_inflight_messages", "gauge", "Messages sent, not yet acknowledged.",
        m.inflight);
    one(&b, "petrel_retained_messages", "gauge", "Retained messages stored.", m.retained);
    if (m.store) {
        one(&b, "petrel_store_used_bytes", "gauge", "Bytes in use in the store's data file.",
            m.store_stats.used_bytes);
        one(&b, "petrel_store_map_bytes", "gauge", "Bytes the store may grow to before resizing.",
            m.store_stats.map_size);
        head(&b, "petrel_store_batches_total", "counter", "Store batches, by result.");
        out(&b, "petrel_store_batches_total{result=\"ok\"} %llu\n",
            (unsigned long long)m.store_stats.batches_ok);
        out(&b, "petrel_store_batches_total{result=\"failed\"} %llu\n",
            (unsigned long long)m.store_stats.batches_failed);
        one(&b, "petrel_store_commits_total", "counter", "Store write transactions.",
            m.store_stats.commits);
        one(&b, "petrel_store_pending_batches", "gauge", "Batches waiting for the store.",
            m.store_stats.pending);
        one(&b, "petrel_store_full", "gauge", "1 while the store refuses writes (disk full).",
            m.store_full);
    }
    head(&b, "petrel_worker_loop_lag_seconds", "gauge",
         "How late the worker's latest periodic tick ran (its event loop's latency).");
    for (unsigned k = 0; k < m.n_workers; k++)
        out(&b, "petrel_worker_loop_lag_seconds{worker=\"%u\"} %.3f\n", k,
            m.loop_lag_ms[k] / 1000.0);
    head(&b, "petrel_worker_loop_lag_max_seconds", "gauge",
         "The largest tick lateness of the worker over its latest snapshot period.");
    for (unsigned k = 0; k < m.n_workers; k++)
        out(&b, "petrel_worker_loop_lag_max_seconds{worker=\"%u\"} %.3f\n", k,
            m.loop_lag_max_ms[k] / 1000.0);
    app_metrics_fini(&m);
    http_respond(ctx->x, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, NULL);
    buf_fini(&b);
}

void
api_healthz(struct api_ctx *ctx)
{
    api_reply_json(ctx->x, 200, json_pack("{s:s}", "status", "ok"));
}

void
api_readyz(struct api_ctx *ctx)
{
    struct app_metrics m;
    const char *why = NULL;

    app_metrics_read(ctx->w->api->hubs, &m);
    if (m.store_full)
        why = "store full";
    else if (m.memory_level != 0)
        why = "memory above 90 % of memory_limit";
    app_metrics_fini(&m);
    if (why)
        api_reply_json(ctx->x, 503, json_pack("{s:s, s:s}", "status", "not ready", "reason", why));
    else
        api_reply_json(ctx->x, 200, json_pack("{s:s}", "status", "ready"));
}
