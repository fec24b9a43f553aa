/*
 * internal.h - what the files of session/ share: the hub, client, session and delivery
 * structs and the functions that cross between on_*.c files.
 *
 * Objects and owners:
 *   hubs     what all workers share: the configuration, the retained store (behind a mutex),
 *            the counters' snapshots and the list of hubs.
 *   hub      one worker's engine: its clients, the sessions it owns, and its replicas of the
 *            subscription trie and the client registry (see "Workers" in docs/design.md).
 *   client   one network connection speaking MQTT; owned by its conn (freed in on_close).
 *   session  the state named by a client ID; owned by the hub that hash(client ID) names. It
 *            outlives its client while its expiry interval runs (persistent sessions).
 *   delivery one message on its way to one session (queued or inflight); owned by the session.
 *
 * Only a session's owner touches its state. Other hubs keep pointers to it in their replicas
 * and read just what never changes (id, serial, owner) and the atomic flags (`online`,
 * `durable`, `full`); work for the session reaches the owner through its mailbox.
 */
#ifndef PETREL_SESSION_INTERNAL_H
#define PETREL_SESSION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/list.h"
#include "base/map.h"
#include "config/config.h"
#include "mqtt/packet.h"
#include "net/conn.h"
#include "net/addr_rate.h"
#include "net/mailbox.h"
#include "route/msg.h"
#include "route/p2p.h"
#include "route/retain.h"
#include "route/trie.h"
#include "session/session.h"
#include "session/slow.h"
#include "store/store.h"

/* Session Expiry Interval 0xFFFFFFFF: the session never expires (MQTT 5, 3.1.2.11.2). */
#define SESS_EXPIRY_NEVER UINT32_MAX
/* Payloads from this size on are written from the message itself, not copied per client. */
#define ZERO_COPY_MIN 1024
/* Subscription identifiers carried per delivery (more matching ones are not forwarded). */
#define MAX_SUB_IDS 8

struct hub_stats {
    uint64_t msgs_received;     /* PUBLISH packets from clients */
    uint64_t msgs_sent;         /* PUBLISH packets to clients */
    uint64_t msgs_dropped;      /* messages dropped for a queue limit or a dead connection */
    uint64_t clients_total;     /* connections ever accepted with CONNACK 0 */
    uint64_t p2p_routed;        /* delivered now or queued */
    uint64_t p2p_queued;
    uint64_t p2p_dropped;       /* no session with that client ID */
    uint64_t p2p_refused;       /* parent topic not allowed */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t n_sessions;        /* sessions owned */
    uint64_t msgs_received_qos[3];  /* msgs_received by QoS */
    uint64_t msgs_sent_qos[3];      /* msgs_sent by QoS */
    uint64_t payload_in_qos[3];     /* payload bytes of those PUBLISH packets, by QoS */
    uint64_t payload_out_qos[3];
    uint64_t api_published;     /* messages published through the HTTP API */
    /* Gauges, refreshed at the snapshot (app.c). */
    uint64_t queued;            /* messages in the queues of owned sessions */
    uint64_t inflight;
    uint32_t loop_lag_ms;       /* how late the latest tick ran */
    uint32_t loop_lag_max_ms;   /* the latest since the previous snapshot */
    /* hostile clients and overload (overload.c) */
    uint64_t conns_rate_refused;  /* closed at accept: max_connection_rate */
    uint64_t conns_full_refused;  /* closed at accept or CONNACK 0x89: max_connections */
    uint64_t conns_mem_refused;   /* CONNACK 0x97 (3.1.1: 3): memory_limit */
    uint64_t connect_timeouts;    /* closed: no CONNECT within connect_timeout */
    uint64_t slow_senders;        /* closed: a packet took longer than packet_timeout */
    uint64_t msgs_mem_dropped;    /* inbound QoS 0 dropped: memory_limit */
    uint64_t msgs_mem_refused;    /* inbound QoS 1/2 refused: memory_limit */
    /* Slow consumers (docs/design.md "Delivery"); each drop is in msgs_dropped too. */
    uint64_t dropped_qos0_offline; /* QoS 0 for a session without a connection */
    uint64_t dropped_qos0_slow;    /* QoS 0 for a backlogged client */
    uint64_t dropped_queue_full;   /* QoS 1/2 refused by a full session queue */
    uint64_t dropped_queue_oldest; /* queued QoS 1/2 dropped for a newer one (drop_oldest) */
    uint64_t publish_refused_full; /* QoS 1/2 publishes every target refused as full */
    uint64_t write_stalls;         /* connections closed for write_stall_timeout */
};

/* Memory pressure against memory_limit (overload.c), from the last sample. */
enum mem_level {
    MEM_OK = 0,
    MEM_HIGH,                     /* >= MEM_HIGH_PERCENT: no new sessions, QoS 0 shed */
    MEM_FULL,                     /* >= 100 %: QoS 1/2 publishes refused too */
};
#define MEM_HIGH_PERCENT 90

struct hubs {
    const struct config *cfg;
    unsigned n_hubs;
    struct hub **hubs;
    pthread_mutex_t retained_lock;
    struct retain retained;
    pthread_mutex_t stats_lock;
    struct hub_stats *snapshots;  /* [n_hubs], each hub's counters as of its last tick */
    _Atomic size_t *listener_conns; /* [n_listeners] open connections per listener */
    _Atomic size_t n_connected;
    _Atomic size_t max_connected;
    _Atomic uint64_t next_serial;
    uint64_t started_at;
    struct auth *auth;            /* NULL: no auth module (in-process tests) */
    struct tokens *tokens;        /* issued access tokens (auth/token.h); always there */
    /* Durable storage (persist.c); store is NULL with persistence false. */
    struct store *store;
    bool sync_always;             /* persistence_sync always (commits are fsync'd) */
    _Atomic uint64_t next_qseq;   /* queue entry sequence numbers, every hub's */
    _Atomic bool store_full;      /* a batch failed (disk full): refuse durable publishes */
    struct mailbox_stage *store_stages; /* [n_hubs]: completions; the storage thread's only */
    _Atomic uint64_t next_conn_id;  /* per-connection ids (connection events, presence) */
    char node[64];                /* the node name in $SYS/brokers/<node>/... (app.c) */
    /* Overload (overload.c). */
    struct addr_rate *conn_rate;  /* max_connection_rate; NULL: no limit */
    _Atomic int mem_level;        /* enum mem_level; stored only when a sample changes it */
    _Atomic uint64_t mem_used;    /* heap bytes at the last sample */
    _Atomic uint64_t mem_peak;    /* the most sampled so far */
};

/* One matching session collected while routing a message (duplicates merged). */
struct target {
    struct session *sess;
    uint8_t qos;
    bool retain;
    bool shared;                  /* chosen as a member of a shared subscription group */
    uint32_t n_sub_ids;
    uint32_t sub_ids[MAX_SUB_IDS];
};

/* Work sent to another hub through its mailbox. */
enum hub_op {
    OP_DELIVER = 1,               /* deliver msg to sess (owned by the receiver) */
    OP_DELIVER_P2P,               /* deliver a P2P msg to sess, which decides QoS and ids */
    OP_SUB_ADD,                   /* replica: sess subscribed to filter */
    OP_SUB_DEL,                   /* replica: sess unsubscribed from filter */
    OP_SESS_ADD,                  /* replica: sess exists */
    OP_SESS_PURGE,                /* replica: sess ended; forget it, then answer OP_PURGE_ACK */
    OP_PURGE_ACK,                 /* to the owner: one replica has forgotten sess */
    OP_HANDOFF,                   /* a connection whose client ID this hub owns */
    OP_SHUTDOWN,
    OP_STORE_DONE,                /* from the storage thread: this hub's oldest batch completed */
    OP_APP_QUERY,                 /* to a session's owner: an application's question (app.c) */
    OP_APP_ANSWER,                /* back to the asking hub */
    OP_FENCE,                     /* replica: sess became durable; answer with OP_FENCE_ACK */
    OP_FENCE_ACK,                 /* to the owner: every delivery posted before it has arrived */
};

struct hub_item {
    uint8_t op;
    uint8_t qos;
    bool retain;
    bool shared;
    uint8_t n_sub_ids;
    struct session *sess;
    uint64_t seq;                 /* OP_DELIVER*: the durable queue entry written, 0: none */
    int rc;                       /* OP_STORE_DONE */
    union {
        struct {
            struct msg *msg;                 /* one reference, owned by the item */
            uint32_t sub_ids[MAX_SUB_IDS];
        } deliver;
        struct {
            char *filter;                    /* owned by the item */
            size_t len;
            struct sub_opts opts;
        } sub;
        struct {
            int fd;
            struct transport *transport;     /* owned; NULL for plain TCP */
            const struct config_listener *listener;
            char *peer;                      /* owned */
            uint8_t *data;                   /* bytes read so far, from CONNECT on; owned */
            size_t len;
        } handoff;
        struct {
            struct app_query *q;             /* owned by the asking hub */
            uint32_t index;
        } app;
    } u;
};

/* Index for merging overlapping subscriptions of one session while routing one message. */
struct target_index {
    struct session **keys;
    uint32_t *slots;
    uint64_t *gens;
    size_t cap;
    uint64_t gen;
};

struct hub {
    struct hubs *all;
    unsigned index;
    const struct config *cfg;
    struct loop *loop;
    struct conn_pool *pool;
    struct mailbox *inbox;
    struct mailbox_stage *stages; /* [n_hubs], towards each hub (own index unused) */
    struct msg_home msg_home;     /* messages this worker allocated, freed by others (msg.h) */
    struct msg *drop_msg;         /* references of delivery items not dropped yet ... */
    uint32_t n_drop;              /* ... and how many (hub_drop_msg) */
    struct map registry;          /* client id -> struct session, every hub's (replica) */
    struct list clients;          /* every struct client, connected or not */
    struct list offline;          /* owned persistent sessions without a client, for expiry */
    struct list dying;            /* owned sessions ended, waiting for OP_PURGE_ACKs */
    struct trie *trie;            /* every hub's subscriptions (replica) */
    struct p2p_rules p2p;
    struct slow_limits limits;    /* from cfg, for slow.c */
    struct hub_stats stats;
    uint64_t now;                 /* monotonic ms, refreshed per event batch */
    uint64_t next_sys;
    uint64_t next_retain_sweep;
    bool stopping;
    /* routing scratch */
    struct target *targets;
    size_t n_targets;
    size_t cap_targets;
    struct target_index tindex;
    /* durable storage (persist.c) */
    struct store_batch *batch;    /* what this iteration changed; NULL: persistence off */
    uint64_t batch_gen;           /* number of h->batch: batches submitted so far + 1 */
    uint64_t done_gen;            /* batches completed (completions come in order) */
    uint64_t put_msg_id;          /* the last message put into h->batch ... */
    uint64_t put_msg_gen;         /* ... and that batch's number */
    struct list held;             /* clients whose output waits for a commit */
    bool probe_pending;           /* a disk-space probe is in a batch */
    struct list commit_waits;     /* struct app_commit_wait, in batch order */
    uint64_t api_msg_seq;         /* ids of messages published through the API */
    uint64_t tick_due;            /* when the next tick should run (loop lag) */
    /* token logins (token_watch.c) */
    struct list token_clients;    /* connected clients that logged in with tokens */
    uint64_t token_gen;           /* tokens_gen() when they were last checked */
    int64_t token_due;            /* wall-clock s of their next notice or expiry */
    uint64_t mem_sampled_in;      /* pool->bytes_in at this hub's last heap sample */
};

enum client_state {
    CLIENT_NEW = 0,               /* waiting for CONNECT */
    CLIENT_CONNECTED,             /* CONNACK 0 sent */
    CLIENT_CLOSING,               /* no more input is processed */
};

/* Topic aliases towards one MQTT 5 client, allocated at its first alias. */
struct client_aliases {
    struct map by_topic;          /* topic -> (alias number as pointer), keys owned below */
    uint16_t n;                   /* aliases given so far: 1..n */
    char *topics[];               /* [1..alias_max_out] topic copies, for the keys above */
};

/* Small fields sit together so that the struct has no holes: one per connection, idle ones
 * included (docs/design.md, "Memory per connection"). */
struct client {
    struct hub *hub;
    struct conn *conn;
    struct list link;             /* hub->clients */
    struct session *sess;         /* while connected */
    uint8_t state;                /* enum client_state */
    uint8_t version;
    uint16_t keepalive;           /* seconds granted, 0: none */
    uint32_t max_packet_out;      /* the client's Maximum Packet Size, 0: none */
    uint64_t last_rx;             /* monotonic ms of the last packet */
    uint64_t partial_since;       /* monotonic ms since which a packet is incomplete, 0: none */
    uint64_t connected_at;
    uint16_t send_window;         /* the client's Receive Maximum */
    uint16_t alias_max_out;       /* the client's Topic Alias Maximum */
    uint32_t n_alias_in;
    struct client_aliases *aliases_out; /* NULL until the first alias is given */
    char **alias_in;              /* [alias] topic copy, inbound */
    bool send_will;               /* abnormal end: publish the will */
    bool handed_off;              /* moved to another hub, which now counts the connection */
    bool problem_info;            /* MQTT 5 Request Problem Information */
    uint8_t token_warned;         /* TOKEN_READ/TOKEN_WRITE: expiry notice sent */
    bool fence_wait;              /* output held until persist_fence completes (persist.c) */
    const struct config_listener *listener;
    struct slow_stall stall;      /* write_stall_timeout (hub tick) */
    struct list held_link;        /* hub->held while its output waits for a commit */
    uint64_t hold_first;          /* the first batch it waits for, 0: not held */
    uint64_t hold_last;           /* the last batch it waits for */
    uint64_t conn_id;             /* unique per connection, set at CONNACK */
    int64_t connack_wall_ms;      /* when CONNACK 0 was sent, unix ms (presence) */
    const char *end_reason;       /* why it ended (static text), NULL: the socket closed */
    struct list token_link;       /* hub->token_clients while it holds tokens */
};

struct sub {
    struct list link;             /* session->subs */
    struct sub_opts opts;
    bool is_shared;
    size_t filter_len;
    char filter[];                /* NUL-terminated */
};

enum delivery_state {
    DLV_QUEUED = 0,
    DLV_WAIT_PUBACK,
    DLV_WAIT_PUBREC,
    DLV_WAIT_PUBCOMP,
};

struct delivery {
    struct list link;             /* session->queue or session->inflight */
    struct msg *msg;              /* NULL in WAIT_PUBCOMP (only the packet id matters) */
    uint16_t packet_id;
    uint8_t qos;
    uint8_t state;
    bool retain;
    bool shared;                  /* via a shared subscription: re-routed if the session ends */
    uint8_t n_sub_ids;
    uint64_t seq;                 /* its durable queue entry, 0: none */
    uint32_t sub_ids[];
};

struct session {
    /* Fixed at creation; read by every hub. */
    char *id;
    size_t id_len;
    uint64_t serial;              /* unique per session object, for no-local */
    struct hub *hub;              /* the owner */
    _Atomic bool online;          /* a client is connected; read by other hubs' routing */
    _Atomic bool durable;         /* kept in the store (expiry > 0); read by other hubs */
    _Atomic bool full;            /* the queue takes no more; read by publishers' hubs */
    /* The owner's alone from here on. Small fields sit together so that the struct has no
     * holes: one per session, idle ones included (docs/design.md, "Memory per connection"). */
    bool is_dead;                 /* ended; freed when every replica has forgotten it */
    uint8_t version;
    bool discard;                 /* end it when its client goes (an application asked) */
    uint16_t next_packet_id;
    uint32_t pending_acks;        /* OP_PURGE_ACKs still expected */
    uint32_t expiry;              /* seconds after disconnect, SESS_EXPIRY_NEVER */
    uint32_t fence_acks;          /* OP_FENCE_ACKs still expected (persist_fence) */
    struct client *client;        /* NULL while offline */
    struct list offline_link;     /* hub->offline while offline and persistent, or hub->dying */
    uint64_t expire_at;           /* monotonic ms, while offline */
    struct list subs;             /* in subscription order */
    struct map sub_index;         /* filter -> struct sub, for SUBSCRIBE/UNSUBSCRIBE */
    uint32_t n_subs;
    uint32_t n_queued;
    struct list queue;            /* deliveries waiting to be sent */
    uint64_t queued_bytes;
    struct list inflight;         /* deliveries sent, waiting for their acknowledgement */
    uint32_t n_inflight;
    uint32_t n_qos2_in;
    uint64_t inflight_bytes;      /* of messages in WAIT_PUBACK / WAIT_PUBREC */
    uint8_t *qos2_in;             /* bitmap of received QoS 2 ids awaiting PUBREL (lazy) */
    struct msg *will;             /* pending will, with its QoS and retain flag */
    uint32_t will_delay;          /* seconds */
    uint64_t will_at;             /* monotonic ms when a delayed will fires, 0: not armed */
    struct auth_identity *auth;   /* who the last client was, for the ACL (access.c) */
};

/* ---- hub.c ---- */
/* The hub that owns sessions with this client ID. */
struct hub *hub_owner(struct hub *h, struct slice client_id);
/* Kick every client (MQTT 5: DISCONNECT 0x8B) and stop the loop after this iteration. */
void hub_shutdown(struct hub *h);
/* Room for one item towards hub `to` (not h itself); sent at the end of the loop iteration. */
struct hub_item *hub_post(struct hub *h, struct hub *to);
/* Send at once what is staged for hubs that are asleep, so that their wake-up overlaps the
 * rest of this iteration (not with durable storage: see hub_after). */
void hub_flush_early(struct hub *h);
/* Drop the reference a delivery item held, later in the same batch of items: the items of one
 * message arrive in a row and their references go with one atomic operation. */
void hub_drop_msg(struct hub *h, struct msg *m);

/* ---- session.c ---- */
/* A session by client ID in this hub's registry (owned here or elsewhere), or NULL. */
struct session *sess_find(struct hub *h, struct slice id);
struct session *sess_create(struct hub *h, struct slice id, uint8_t version);
/* Start-up (persist.c, before any loop runs): a session of owner `h` read from the store,
 * entered into every hub's registry directly, and one of its subscriptions into every trie. */
struct session *sess_load(struct hub *h, struct slice id, uint8_t version);
void sess_load_sub(struct session *s, struct slice filter, const struct sub_opts *opts);
/* End the session: fire its pending will, drop its subscriptions and queues, and free it once
 * every other hub has forgotten it. */
void sess_destroy(struct session *s);
/* Free an ended session (after the last OP_PURGE_ACK), or any owned one at shutdown. */
void sess_free(struct session *s);
/* Mailbox work for sessions and replicas (called by hub.c). */
void sess_on_item(struct hub *h, struct hub_item *it);
/* The client went away (any reason). Arms the will and the expiry, or ends the session. */
void sess_detach(struct session *s);
bool sess_has_sub(struct session *s, struct slice filter);
/* Add or replace a subscription. Returns 1 if new, 0 if replaced. */
int sess_subscribe(struct session *s, struct slice filter, const struct sub_opts *opts,
                   bool is_shared);
/* Returns 0 or -ENOENT. */
int sess_unsubscribe(struct session *s, struct slice filter);
void sess_set_will(struct session *s, struct msg *will, uint32_t delay);
void sess_clear_will(struct session *s);
/* Publish the pending will now (if any). */
void sess_fire_will(struct session *s);

/* ---- deliver.c ---- */
/* Hand `m` to session `s` at `qos` (already capped), with `retain` as it should appear and the
 * subscription identifiers to attach. Sends now or queues. Returns 0 when accepted,
 * MQTT_RC_QUOTA_EXCEEDED when the session's queue is full, or MQTT_RC_UNSPECIFIED for any
 * other drop (QoS 0 to a slow or absent client, expired, denied, too large). */
int sess_deliver(struct session *s, struct msg *m, uint8_t qos, bool retain,
                  const uint32_t *sub_ids, uint32_t n_sub_ids, bool shared, uint64_t seq);
/* Send queued messages while the client's window has room. */
void sess_drain(struct session *s);
/* The queue changed size: update s->full for other hubs. */
void sess_queue_changed(struct session *s);
/* queue_full_policy drop_oldest: drop the oldest queued deliveries while the queue holds more
 * than its limits (after a load: a crash between two hubs' batches, or lower limits). */
void sess_queue_trim(struct session *s);
/* After a reconnect: resend inflight messages (DUP) and PUBRELs, then drain. */
void sess_resume(struct session *s);
/* Acknowledgements from the client. Return 0 or MQTT_RC_PACKET_ID_NOT_FOUND. */
int sess_on_puback(struct session *s, uint16_t id);
int sess_on_pubrec(struct session *s, uint16_t id, uint8_t rc);
int sess_on_pubcomp(struct session *s, uint16_t id);
void delivery_free(struct delivery *d);

/* ---- route.c ---- */
/* Route a message published by `from` (NULL: the broker itself). Returns MQTT_RC_SUCCESS,
 * MQTT_RC_NO_MATCHING_SUBSCRIBERS, MQTT_RC_QUOTA_EXCEEDED (a QoS 1/2 message that matched,
 * but every target's queue was full) or MQTT_RC_TOPIC_NAME_INVALID (refused P2P parent). */
int hub_route(struct hub *h, struct session *from, struct msg *m);
/* On the owner of `s`: deliver a P2P message to it. Returns as sess_deliver. */
int hub_deliver_p2p(struct hub *h, struct session *s, struct msg *m, uint64_t seq);
/* Session `dead` ends with `m` undelivered, received through one of its shared subscriptions:
 * give it to another member of the same group(s). `dead` is already out of the trie. */
void hub_reroute_shared(struct hub *h, struct session *dead, struct msg *m);
/* Deliver the retained messages matching `filter` to `s` (a new subscription). */
void hub_send_retained(struct hub *h, struct session *s, struct slice filter,
                       const struct sub_opts *opts);

/* ---- client.c ---- */
struct client *client_new(struct hub *h, int fd, struct transport *t, const char *peer,
                          const struct config_listener *li);
/* Take over a connection handed off by another hub, with the bytes it had already read. */
void client_adopt(struct hub *h, struct hub_item *it);
/* Close because of a protocol violation or limit: MQTT 5 clients first get DISCONNECT `rc`. */
void client_fail(struct client *c, uint8_t rc);
/* The session ends its connection now (the socket closes after the iteration): it goes
 * offline or ends, its will armed or dropped as send_will says. Only where no caller up the
 * stack still uses the session. */
void client_detach(struct client *c);
/* Close after a server-initiated DISCONNECT `rc` (MQTT 5) without treating it as an error. */
void client_kick(struct client *c, uint8_t rc);
/* Append an encoded packet; the helpers below return false when the client is unusable. */
struct buf *client_out(struct client *c);
void client_wrote(struct client *c);
bool client_send_ack(struct client *c, enum mqtt_type type, uint16_t id, uint8_t rc);
/* Encode and send PUBLISH for a message. Returns false when it was not sent (too large). */
bool client_send_publish(struct client *c, struct msg *m, uint8_t qos, bool retain, bool dup,
                         uint16_t id, const uint32_t *sub_ids, uint32_t n_sub_ids);
const char *client_id_str(const struct client *c);

/* ---- on_publish.c ---- */
/* Forget a received QoS 2 packet id at PUBREL. Returns false when it was not known. */
bool qos2_release(struct session *s, uint16_t id);
/* Remember a received QoS 2 packet id until PUBREL. */
void qos2_mark(struct session *s, uint16_t id);

/* ---- on_*.c: one per incoming packet kind ---- */
void on_connect(struct client *c, uint8_t flags, struct slice body);
void on_publish(struct client *c, uint8_t flags, struct slice body);
void on_ack(struct client *c, uint8_t type, uint8_t flags, struct slice body);
void on_subscribe(struct client *c, uint8_t flags, struct slice body);
void on_unsubscribe(struct client *c, uint8_t flags, struct slice body);
void on_disconnect(struct client *c, uint8_t type, uint8_t flags, struct slice body);

/* ---- access.c: authentication and the ACL (auth/) ---- */
/* Authenticate a CONNECT for client ID `id` (possibly assigned). Returns 0 with the identity
 * in *out (NULL without auth), or the CONNACK reason code. */
int access_connect(struct client *c, const struct mqtt_connect *cn, struct slice id,
                   struct auth_identity **out);
/* Make `id` (taken) the session's identity, replacing the previous client's. */
void access_attach(struct session *s, struct auth_identity *id);
/* Free the session's identity (sess_free). */
void access_forget(struct session *s);
/* May `id` publish on `topic` (ordinary or P2P)? 0 or MQTT_RC_NOT_AUTHORIZED. */
int access_publish(struct hub *h, struct auth_identity *id, struct slice topic);
/* May the session subscribe to `filter` (the inner filter of a shared one)? */
bool access_subscribe(struct session *s, struct slice filter);
/* May the session receive `m`? P2P messages addressed to it need no read rule. */
bool access_receive(struct session *s, const struct msg *m);

/* ---- persist.c: the durable store (docs/design.md, "Durability") ----
 * Every function is a no-op with persistence off. Writes go into the hub's batch of this
 * iteration, submitted in hub_after before the mailbox stages are flushed. */
/* Is the session kept in the store? (owner only; other hubs read s->durable) */
bool persist_sess(const struct session *s);
/* The session's expiry or will changed, or it went on- or offline: write its record.
 * `was_durable`: it had a record before; a session that gains one is written whole. */
void persist_sess_update(struct session *s, bool was_durable);
/* The session ended (or lost its expiry): delete its record and everything under it. */
void persist_sess_del(struct session *s);
void persist_sub_put(struct session *s, struct slice filter, const struct sub_opts *opts);
void persist_sub_del(struct session *s, struct slice filter);
/* Write `m` and a queue entry for `to` (any hub's) into h's batch. Returns the entry's seq. */
uint64_t persist_enqueue(struct hub *h, struct session *to, struct msg *m, uint8_t qos,
                         bool retain, bool shared, const uint32_t *sub_ids, uint32_t n_sub_ids);
/* A delivery was sent (its state and packet id) or acknowledged by PUBREC. */
void persist_delivery_update(struct session *s, const struct delivery *d);
void persist_delivery_drop(struct session *s, uint64_t seq);
void persist_qos2(struct session *s, uint16_t id, bool add);
/* The retained message of m's topic changes to m (or goes, for an empty payload). Called
 * with the retained lock held, right after the change in memory: the change is numbered in
 * that order, and the store keeps the highest number per topic. */
void persist_retained(struct hub *h, struct msg *m);
/* Operations in this iteration's batch so far (to tell whether a packet added any). */
size_t persist_ops(const struct hub *h);
/* Hold c's output until the current batch commits (synced or not, per persistence_sync). */
void persist_hold(struct client *c);
/* At CONNECT, an existing session of c became durable: hold c's output (the CONNACK) until
 * every other hub has answered a fence and the batch holding the queue entries the owner
 * wrote for deliveries posted before those answers has committed. */
void persist_fence(struct client *c);
/* OP_FENCE on a replica hub, OP_FENCE_ACK on the owner. */
void persist_on_fence(struct hub *h, struct hub_item *it);
/* The client is closing: forget its hold (its held output is discarded). */
void persist_forget(struct client *c);
/* Submit this iteration's batch (hub_after). */
void persist_submit(struct hub *h);
/* OP_STORE_DONE: release the clients waiting for it, or end them if it failed. */
void persist_on_done(struct hub *h, int rc);
/* Tick (hub 0): while the store is full, probe once in a while whether space came back. */
void persist_tick(struct hub *h);

/* ---- app.c ---- */
struct app_query;
/* Now, in unix ms. */
int64_t app_wall_ms(void);
/* OP_APP_QUERY and OP_APP_ANSWER (hub.c). */
void app_on_item(struct hub *h, struct hub_item *it);
/* An item of either kind that will never be handled (shutdown). */
void app_dispose_item(struct hub_item *it);
/* The store completed batch `gen`: run the commit waits up to it. */
void app_committed(struct hub *h, uint64_t gen, int rc);
/* Refresh the gauges of h->stats (before a snapshot). */
void app_gauges(struct hub *h);
/* ---- persist_tokens.c: tokens in the store ---- */
/* After the load: token issues and revocations are stored (and wait for their commit). */
void persist_tokens_attach(struct hubs *hs);
/* Before the store closes. */
void persist_tokens_detach(struct hubs *hs);
/* Start-up: a stored token back into the table (expired ones are skipped). */
void persist_token_restore(struct hubs *hs, const struct store_token *r, int64_t wall);

/* ---- token_watch.c: token logins after CONNECT (auth/token.h) ---- */
/* A client that logged in with tokens is connected: watch its tokens' expiry and revocation. */
void token_watch_add(struct client *c);
/* Tick: notices ~5 minutes before expiry; expired or revoked tokens end their clients. */
void token_watch_tick(struct hub *h);
/* A PUBLISH to TOKEN_UPLOAD_TOPIC: replace one of the client's tokens. Returns 0 or
 * MQTT_RC_NOT_AUTHORIZED (not a token login, malformed, unknown, expired or unfit token). */
int token_watch_upload(struct client *c, struct slice payload);
/* ---- overload.c: hostile clients and memory pressure ---- */
/* Set up what struct hubs needs for the limits in cfg (hubs_new), and free it. */
void overload_init(struct hubs *hs);
void overload_fini(struct hubs *hs);
/* At accept: may a connection from `peer` come in (max_connection_rate)? Counts refusals. */
bool overload_accept(struct hub *h, const char *peer);
/* Sample the heap and set the memory level (any hub: hub 0 every tick and before $SYS, and
 * a hub that has read much since its last sample, see overload_input). */
void overload_sample(struct hub *h);
/* After reading input: with memory_limit set, sample again once this hub has read a
 * fraction of the limit since its last sample, since a fast publisher can fill the whole
 * headroom between two ticks. */
static inline void
overload_input(struct hub *h)
{
    uint64_t step = h->cfg->memory_limit / 64;

    if (step < (1u << 20))
        step = 1u << 20;
    if (h->cfg->memory_limit && h->pool->bytes_in - h->mem_sampled_in >= step)
        overload_sample(h);
}
static inline enum mem_level
overload_level(const struct hub *h)
{
    return (enum mem_level)atomic_load_explicit(&h->all->mem_level, memory_order_relaxed);
}
/* Close clients that are too slow: no CONNECT within connect_timeout, or a packet that has
 * been arriving for longer than packet_timeout. True when it closed `c`. */
bool overload_sweep_client(struct client *c);

/* ---- sys.c ---- */
void sys_publish(struct hub *h);

#endif
