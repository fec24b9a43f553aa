/*
 * store.h - durable state on LMDB: persistent sessions, their subscriptions, queued and inflight
 * deliveries, received QoS 2 packet ids, retained messages, and the messages those point at
 * (stored once, reference-counted).
 *
 * Threads:
 *   main thread   store_open, store_load, store_close.
 *   any worker    store_batch_new and the store_batch_* builders (no lock, no I/O), then
 *                 store_submit (a short mutex hold, never disk I/O).
 *   storage       one thread per store, started by store_open: takes every submitted batch,
 *                 applies as many as are waiting in ONE write transaction (group commit),
 *                 commits, then runs each batch's completion, in submission order.
 *
 * Durability: with STORE_SYNC_ALWAYS a completion with rc 0 means the batch is on disk
 * (fdatasync'd). With STORE_SYNC_PERIODIC it means the batch is committed to the page cache:
 * it survives a crash of the process (kill -9), and a crash of the machine loses at most the
 * last period (see docs/storage-format.md for the caveat on power loss).
 *
 * Every batch is all-or-nothing: it commits whole or fails whole (its completion gets the
 * error), whatever the other batches of its group do. Messages exist while referenced: put a
 * message in the same batch as its first reference (queue entry or retained); a message left
 * with no reference at the end of a batch is deleted.
 *
 * Strings: client ids, topics and filters are MQTT UTF-8 strings (no NUL, no 0xFF byte); any
 * length up to 65535 is accepted. Everything handed to the builders is copied into the batch.
 */
#ifndef PETREL_STORE_STORE_H
#define PETREL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"

struct store;
struct store_batch;

enum store_sync {
    STORE_SYNC_ALWAYS = 0,        /* fdatasync at every commit (persistence_sync always) */
    STORE_SYNC_PERIODIC,          /* no sync at commit; mdb_env_sync every sync_period_ms */
};

struct store_options {
    const char *dir;              /* borrowed; created (with parents) when missing */
    enum store_sync sync;
    uint32_t sync_period_ms;      /* STORE_SYNC_PERIODIC; 0 counts as 1000 */
    uint64_t max_size;            /* bytes the data file may reach; 0: as much as the disk has */
    uint64_t initial_map_size;    /* bytes; 0: 64 MiB (the map grows on demand) */
    bool move_aside;              /* damaged or foreign store: rename it, start empty */
    uint32_t max_pending;         /* submitted, uncommitted batches; 0: 4096 */
    uint64_t max_pending_bytes;   /* bytes of them; 0: 256 MiB */
    /* Wall clock in seconds since the epoch, for expiry (tests inject one). NULL: the real
     * clock. Called on the main thread only. */
    int64_t (*wall_clock)(void *ctx);
    void *wall_ctx;
};

/*
 * Open (or create) the store in opt->dir and start its storage thread. Reads every record
 * once to check it (time proportional to the data). Borrows opt for the call.
 * Returns 0 and *out, or a negative errno with a message naming the file in `err`:
 *   -EUCLEAN          damaged: LMDB refuses the file, the file is shorter than its pages, or a
 *                     record does not decode (bad checksum, unknown record version)
 *   -EPROTONOSUPPORT  written by an incompatible format version, or not a Petrel store
 *   -EBUSY            another process has the store open
 *   other             the system's error (EACCES, ENOSPC, ...)
 * With opt->move_aside, the first two rename the directory to "<dir>.broken-<UTC time>",
 * log a warning naming both, and open an empty store instead.
 */
int store_open(const struct store_options *opt, struct store **out, char *err, size_t err_len);

/* Commit every batch submitted so far (their completions run), sync, stop the storage thread
 * and close. Nothing may be submitted during or after the call. Accepts NULL. */
void store_close(struct store *s);

/* ---- records, as handed to builders and to the load visitor ---- */

/* Session Expiry Interval meaning "never" (MQTT 5, 3.1.2.11.2). */
#define STORE_EXPIRY_NEVER UINT32_MAX

struct store_session {
    struct slice client_id;
    uint8_t version;              /* protocol level: 3, 4 or 5 */
    uint32_t expiry;              /* Session Expiry Interval, seconds; STORE_EXPIRY_NEVER */
    int64_t offline_at;           /* wall-clock seconds it went offline; 0: online */
    bool has_will;
    uint8_t will_qos;
    bool will_retain;
    uint32_t will_delay;          /* Will Delay Interval, seconds */
    struct slice will_topic;
    struct slice will_payload;
    struct slice will_props;      /* MQTT 5 will property block, encoded */
};

struct store_sub {
    struct slice client_id;
    struct slice filter;          /* as subscribed, "$share/..." included */
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling;
    uint32_t sub_id;              /* MQTT 5 subscription identifier, 0: none */
};

struct store_msg {
    uint64_t id;                  /* from store_msg_id_new() */
    struct slice topic;
    struct slice payload;
    struct slice props;           /* MQTT 5 property block, encoded */
    uint8_t qos;
    bool retain;
    int64_t expiry_at;            /* wall-clock seconds it expires; 0: never */
};

enum store_qstate {
    STORE_Q_QUEUED = 0,           /* not sent yet */
    STORE_Q_WAIT_PUBACK,          /* QoS 1 sent */
    STORE_Q_WAIT_PUBREC,          /* QoS 2 sent */
    STORE_Q_WAIT_PUBCOMP,         /* PUBREL sent: only the packet id is left (msg_id 0) */
};

/* Subscription identifiers kept per queue entry. */
#define STORE_MAX_SUB_IDS 32

struct store_qentry {
    struct slice client_id;
    uint64_t seq;                 /* the session's delivery order: chosen by the caller, rising */
    uint64_t msg_id;              /* 0 only in STORE_Q_WAIT_PUBCOMP */
    uint8_t qos;                  /* as delivered */
    bool retain;                  /* as delivered */
    bool shared;                  /* via a shared subscription */
    uint8_t state;                /* enum store_qstate */
    uint16_t packet_id;           /* 0 while queued */
    uint8_t n_sub_ids;
    const uint32_t *sub_ids;      /* n_sub_ids of them */
};

/* An access token (auth/token.h), keyed by the SHA-256 of the token: the token itself is
 * never stored. */
#define STORE_TOKEN_HASH_LEN 32
#define STORE_MAX_TOKEN_FILTERS 100

struct store_token {
    struct slice hash;            /* STORE_TOKEN_HASH_LEN bytes */
    uint8_t actions;              /* bit 0 read, bit 1 write */
    int64_t expires_at;           /* wall-clock seconds */
    struct slice label;           /* the token's first characters, for logs */
    uint32_t n_filters;           /* 1 .. STORE_MAX_TOKEN_FILTERS */
    const struct slice *filters;
};

/* ---- batches (any worker thread; no lock, no I/O) ---- */

/* A new empty batch for `s` (borrowed; the batch must be submitted to the same store). */
struct store_batch *store_batch_new(struct store *s);
/* Free a batch that was never submitted (or refused by store_submit). Accepts NULL. */
void store_batch_free(struct store_batch *b);

/*
 * Operations, applied in the order added. Each copies what it is given (borrows its arguments
 * for the call) and returns 0, -EINVAL (empty client id, qos > 2, too many sub ids, a field
 * out of range) or -ENOMEM (the copy could not be allocated: sizes here come from clients).
 * A failed call leaves the batch as it was.
 */
/* Insert or replace a session record. */
int store_batch_session_put(struct store_batch *b, const struct store_session *sess);
/* Delete a session with all its subscriptions, queue entries and QoS 2 ids. */
int store_batch_session_del(struct store_batch *b, struct slice client_id);
/* Insert or replace the subscription (client id, filter). */
int store_batch_sub_put(struct store_batch *b, const struct store_sub *sub);
int store_batch_sub_del(struct store_batch *b, struct slice client_id, struct slice filter);
/* Store a message (idempotent: a put of an id that exists keeps its references). */
int store_batch_msg_put(struct store_batch *b, const struct store_msg *m);
/* Insert (or replace) a queue entry; it references e->msg_id, which must exist when the batch
 * applies (else the batch fails with -ENOENT). */
int store_batch_queue_add(struct store_batch *b, const struct store_qentry *e);
/* Change an entry's state and packet id; moving to STORE_Q_WAIT_PUBCOMP releases its message.
 * A missing entry is ignored (counted in store_stats). */
int store_batch_queue_update(struct store_batch *b, struct slice client_id, uint64_t seq,
                             uint8_t state, uint16_t packet_id);
/* Remove an entry and its message reference. A missing entry is ignored. */
int store_batch_queue_drop(struct store_batch *b, struct slice client_id, uint64_t seq);
/* A received QoS 2 packet id awaiting PUBREL, so that a resent PUBLISH is not routed twice
 * [MQTT-4.3.3-10]. */
int store_batch_qos2_add(struct store_batch *b, struct slice client_id, uint16_t packet_id);
int store_batch_qos2_drop(struct store_batch *b, struct slice client_id, uint16_t packet_id);
/* Point the retained index for `topic` at msg_id (which must exist when the batch applies and
 * carry that topic), releasing the message it pointed at before. */
int store_batch_retained_set(struct store_batch *b, struct slice topic, uint64_t msg_id);
int store_batch_retained_clear(struct store_batch *b, struct slice topic);
/* The same, ordered: `seq` (from store_retained_seq_new, taken in the order the caller
 * changed the topic) is kept per topic, and a change with a lower number than the last one
 * applied to its topic is ignored, whichever batch commits first. So two workers setting one
 * topic at once leave on disk what the later one set. seq 0: not ordered. */
int store_batch_retained_set_seq(struct store_batch *b, struct slice topic, uint64_t msg_id,
                                 uint64_t seq);
int store_batch_retained_clear_seq(struct store_batch *b, struct slice topic, uint64_t seq);
/* A retained order number: unique in this store, rising, above every stored one. Any
 * thread. */
uint64_t store_retained_seq_new(struct store *s);
/* Insert or replace a token; delete one (a missing one is ignored). */
int store_batch_token_put(struct store_batch *b, const struct store_token *t);
int store_batch_token_del(struct store_batch *b, struct slice hash);

/* Operations in the batch and the bytes they hold. */
size_t store_batch_ops(const struct store_batch *b);
size_t store_batch_bytes(const struct store_batch *b);

/* A new message id: unique in this store, rising. Any thread. */
uint64_t store_msg_id_new(struct store *s);

/* Completion: rc is 0 (committed) or an error, and then nothing of the batch was stored:
 * -ENOSPC (disk full or max_size reached; later batches work again once space returns),
 * -ENOENT (it referenced a message that does not exist), -EINVAL (an update moving an entry
 * out of STORE_Q_WAIT_PUBCOMP), -EFBIG (one batch too large for a transaction), -ENOMEM or
 * -EIO.
 * Runs on the storage thread: keep it short and non-blocking (post to the worker's mailbox);
 * it may call store_submit. */
typedef void store_done_fn(void *ctx, int rc);

/*
 * Queue `b` for the storage thread; `done(ctx, rc)` runs once it has committed or failed.
 * Takes b on success (the store frees it after the completion). Never waits for disk I/O.
 * Returns 0, or -EAGAIN when max_pending batches (or max_pending_bytes) are already waiting:
 * the caller keeps b and may retry later (or refuse the work: MQTT 5 0x97 Quota exceeded);
 * -ESHUTDOWN once store_close has begun (the caller keeps b).
 * An empty batch is a barrier: its completion runs after every batch submitted before it.
 * Completions of one submitting thread run in its submission order.
 */
int store_submit(struct store *s, struct store_batch *b, store_done_fn *done, void *ctx);

/* ---- start-up load ---- */

/*
 * Callbacks for store_load. Everything passed is borrowed and valid only during the call (it
 * points into the database map): copy what you keep. A callback returning non-zero stops the
 * load, which returns that value. Any callback may be NULL. Callbacks may submit batches but
 * must not wait for them: the storage thread waits for the load to end.
 * Order: for each session (by client id): on_session, its subscriptions, its queue entries in
 * seq order, its QoS 2 ids; then every retained message; then every token.
 */
struct store_visitor {
    void *ctx;
    int (*on_session)(void *ctx, const struct store_session *sess);
    int (*on_sub)(void *ctx, const struct store_sub *sub);
    /* `m` is the entry's message (m->id == e->msg_id; the same message comes with every entry
     * that shares it), NULL in STORE_Q_WAIT_PUBCOMP. */
    int (*on_queue)(void *ctx, const struct store_qentry *e, const struct store_msg *m);
    int (*on_qos2)(void *ctx, struct slice client_id, uint16_t packet_id);
    int (*on_retained)(void *ctx, const struct store_msg *m);
    /* A session whose expiry passed while the broker was down: its will, if any, is due now
     * [MQTT-3.1.2-8]. Its queue entries are purged. Returning true keeps its record (and its
     * subscriptions and QoS 2 ids) for the visitor to delete with store_batch_session_del in
     * the batch that holds the will's deliveries, so that a crash before that batch commits
     * finds the will again; false purges it with the rest. */
    bool (*on_expired_session)(void *ctx, const struct store_session *sess);
    /* A token that has not expired (expired ones are purged). */
    int (*on_token)(void *ctx, const struct store_token *t);
};

struct store_load_stats {
    uint64_t n_sessions;
    uint64_t n_subs;
    uint64_t n_queued;            /* queue and inflight entries */
    uint64_t n_qos2;
    uint64_t n_retained;
    uint64_t n_msgs;              /* distinct messages kept */
    uint64_t n_expired_sessions;  /* purged */
    uint64_t n_expired_msgs;      /* queued entries and retained records purged for expiry */
    uint64_t n_repaired;          /* orphan records, dangling references, refcounts fixed */
    uint64_t n_tokens;
    uint64_t n_expired_tokens;    /* purged */
    uint64_t elapsed_ms;
};

/*
 * Visit the durable state, purging what expired while the broker was down (by the wall clock):
 * sessions offline longer than their expiry interval (with their subscriptions and queues),
 * queued entries and retained records whose message expired [MQTT-3.3.2-5], expired tokens. Inflight entries
 * keep their message. Logs one line with the counts and the time taken; `stats` may be NULL.
 * Meant for start-up on the main thread, before the first store_submit; it may also run later
 * (it holds the storage thread off while it runs, and sees everything committed so far).
 * Returns 0, a callback's non-zero value, or a negative errno.
 */
int store_load(struct store *s, const struct store_visitor *v, struct store_load_stats *stats);

/* ---- observation ---- */

struct store_stats {
    uint64_t batches_ok;
    uint64_t batches_failed;
    uint64_t commits;             /* write transactions: batches_ok / commits = group size */
    uint64_t syncs;               /* explicit syncs (periodic mode) */
    uint64_t ops_missing;         /* updates and drops of entries that did not exist */
    uint64_t map_size;            /* bytes mapped: the current ceiling before growing */
    uint64_t pending;             /* batches waiting for the storage thread */
    uint64_t used_bytes;          /* pages in use in the data file (its high-water mark) */
};

/* A snapshot of the counters. Any thread. */
void store_stats(struct store *s, struct store_stats *out);

struct store_check {
    uint64_t n_msgs;
    uint64_t n_refs;              /* references found (queue entries and retained records) */
    uint64_t n_bad_refcounts;     /* messages whose stored count differs from the references */
    uint64_t n_dangling;          /* references to missing messages */
    uint64_t n_orphans;           /* subscriptions, entries or ids without a session */
};

/* Walk everything committed and count inconsistencies (for tests and diagnostics; time and
 * memory proportional to the data). Any thread. Returns 0 or a negative errno. */
int store_check(struct store *s, struct store_check *out);

#endif
