/*
 * app.h - what applications (the HTTP API in api/) ask of the protocol engine: publish as the
 * broker, look clients up, disconnect them, read the counters, and wait for a commit.
 *
 * Every function runs on the thread of the hub it is given. A publish is routed from that hub
 * like a client's (its replicas know every subscription and session, so the P2P outcome is
 * known at once); questions about a client go to the hub that owns its session through the
 * mailboxes and come back as an answer on the asking hub (see "HTTP API" in docs/design.md).
 */
#ifndef PETREL_SESSION_APP_H
#define PETREL_SESSION_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "base/slice.h"
#include "store/store.h"

struct hub;
struct hubs;
struct auth_identity;

/* Take in what other hubs have posted to h so far, before acting on a request: a client's
 * CONNACK or SUBACK was sent only once its change was posted, so an application that heard
 * of it from the client finds it applied (as client.c does before each read). */
void app_sync(struct hub *h);

/* ---- publish ---- */

struct app_message {
    struct slice topic;           /* the whole topic (parent and second topic joined) */
    struct slice payload;
    struct slice props;           /* an MQTT 5 PUBLISH property block (without its length) */
    uint8_t qos;
    bool retain;
};

enum app_p2p {
    APP_P2P_NONE = 0,             /* not a P2P topic */
    APP_P2P_DELIVERED,            /* the target is connected: sent to it now */
    APP_P2P_QUEUED,               /* the target's session is offline: queued there */
    APP_P2P_UNKNOWN,              /* no session with that client ID: dropped */
};

struct app_publish_result {
    enum app_p2p p2p;
    uint64_t id;                  /* unique for the broker's run; in its debug log */
    bool wait_commit;             /* durable state was written: answer after app_on_commit */
};

/* Publish `m` as the application `who` (its ACL identity; NULL: no ACL applies). Returns an
 * MQTT reason code: SUCCESS, NO_MATCHING_SUBSCRIBERS (routed, nobody took it), or a refusal:
 * TOPIC_NAME_INVALID, PAYLOAD_FORMAT_INVALID, PROTOCOL_ERROR (bad properties), NOT_AUTHORIZED,
 * QOS_NOT_SUPPORTED, RETAIN_NOT_SUPPORTED, QUOTA_EXCEEDED (too large, store full, memory). */
int app_publish(struct hub *h, struct auth_identity *who, const struct app_message *m,
                struct app_publish_result *r);

/* Waiting for the hub's current store batch to commit (after a publish with wait_commit).
 * The waiter is owned by the caller, who embeds it; `fn` gets 0 or the store's error. */
struct app_commit_wait {
    struct list link;
    uint64_t gen;
    void (*fn)(struct app_commit_wait *w, int rc);
};
void app_on_commit(struct hub *h, struct app_commit_wait *w);
/* Stop waiting (the requester went away). */
void app_commit_cancel(struct app_commit_wait *w);

/* ---- clients ---- */

enum app_query_kind {
    APP_Q_INFO = 0,               /* look up */
    APP_Q_KICK,                   /* disconnect (DISCONNECT 0x98), the session stays */
    APP_Q_KICK_DISCARD,           /* disconnect and end the session */
};

struct app_client_info {
    bool session;                 /* a session with this ID exists */
    bool online;
    bool persistent;              /* the session outlives its connection (expiry > 0) */
    uint8_t version;              /* 3, 4 or 5 (of the last connection) */
    int64_t connected_since;      /* unix ms, while online */
    uint64_t connection_id;       /* of the current connection, while online */
    char address[64];             /* while online */
    uint32_t queued;              /* messages waiting to be sent */
    uint32_t inflight;            /* sent, not yet acknowledged */
    bool kicked;                  /* APP_Q_KICK*: there was a connection or session to end */
};

struct app_query;
typedef void app_query_done_fn(void *ud, struct app_query *q);

/* A question about `ids` (copied) for their owners. Keep the query, then app_query_start. */
struct app_query *app_query_new(struct hub *h, const struct slice *ids, size_t n,
                                enum app_query_kind kind, app_query_done_fn *done, void *ud);
/* Send it: `done` runs on h's thread when every answer is in, possibly before this returns
 * (when h owns them all); it reads the answers and frees the query with app_query_free. */
void app_query_start(struct app_query *q);
size_t app_query_count(const struct app_query *q);
struct slice app_query_id(const struct app_query *q, size_t i);
const struct app_client_info *app_query_info(const struct app_query *q, size_t i);
/* After `done`; or before it, when the requester goes away (the answers still on their way
 * are then dropped when they arrive). */
void app_query_free(struct app_query *q);

/* ---- application connections ---- */

/* May an HTTP connection from `peer` come in on listener `li`? The limits MQTT connections
 * have apply: max_connection_rate, the listener's max_connections (counted until
 * app_release) and memory_limit (nothing new from 90 %). Counts its refusals. */
struct config_listener;
bool app_admit(struct hub *h, const char *peer, const struct config_listener *li);
void app_release(struct hub *h, const struct config_listener *li);

/* ---- counters ---- */

struct app_metrics {
    uint64_t msgs_received[3];    /* by QoS, from clients */
    uint64_t msgs_sent[3];        /* by QoS, to clients */
    uint64_t payload_in[3];       /* their payload bytes, by QoS */
    uint64_t payload_out[3];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t api_published;
    uint64_t p2p_routed, p2p_queued, p2p_dropped, p2p_refused;
    uint64_t dropped;             /* deliveries dropped, for any reason; of which: */
    uint64_t dropped_qos0_offline, dropped_qos0_slow, dropped_queue_full;
    uint64_t dropped_queue_oldest;   /* queued QoS 1/2 dropped for a newer one (drop_oldest) */
    uint64_t publish_refused_full;   /* inbound QoS 1/2 every target refused as full */
    uint64_t publish_mem_dropped;    /* inbound QoS 0 dropped for memory_limit */
    uint64_t publish_mem_refused;    /* inbound QoS 1/2 refused for memory_limit */
    uint64_t conns_rate_refused, conns_full_refused, conns_mem_refused;
    uint64_t connect_timeouts, slow_senders, write_stalls;
    uint64_t heap_bytes, heap_peak_bytes, heap_limit_bytes;
    unsigned memory_level;        /* 0 ok, 1 high (>= 90 %), 2 full */
    uint64_t clients_total;
    uint64_t connections;         /* open now (MQTT clients past CONNACK) */
    uint64_t sessions;
    uint64_t queued;              /* messages in session queues */
    uint64_t inflight;
    uint64_t retained;
    bool store;                   /* persistence is on; then: */
    struct store_stats store_stats;
    bool store_full;
    unsigned n_workers;
    uint32_t *loop_lag_ms;        /* [n_workers]: the latest tick's delay; caller frees */
    uint32_t *loop_lag_max_ms;    /* [n_workers]: the largest since the previous reading */
};

/* Sum every hub's counters as of its latest tick (and a few live gauges). */
void app_metrics_read(struct hubs *hs, struct app_metrics *out);
void app_metrics_fini(struct app_metrics *m);

/* ---- connection events ---- */

/* Publish `$SYS/brokers/<node>/clients/<id>/connected` or `.../disconnected` for `c` (when
 * client_events is on). Called by the engine itself. */
struct client;
void app_event_connected(struct client *c);
void app_event_disconnected(struct client *c);

#endif
