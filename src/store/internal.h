/*
 * internal.h - what the files of store/ share: the store and batch structs, the operation
 * encoding inside a batch, keys and records (docs/storage-format.md is their contract).
 *
 *   hash.c    CRC32C (record checksums) and SipHash-2-4-128 (long key components)
 *   record.c  keys and record values: encode and decode
 *   batch.c   batch building (worker threads) and submission
 *   env.c     open, format check, validation, move-aside, close
 *   writer.c  the storage thread: group commit, map growth, periodic sync
 *   apply.c   one batch's operations inside a transaction, message reference counts
 *   load.c    start-up load with expiry purge and repair; store_check
 */
#ifndef PETREL_STORE_INTERNAL_H
#define PETREL_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/slice.h"
#include "store/store.h"

/* The store's format version, in meta "format". Bump it when a record changes incompatibly. */
#define STORE_FORMAT_VERSION 1u

/* Key budgets (bytes). LMDB's default build takes keys up to 511 bytes; a component longer
 * than its budget is cut and completed with 0xFF and a 16-byte keyed hash. */
#define KEY_MAX 511u
#define KEY_ID_BUDGET 200u          /* client id */
#define KEY_FILTER_BUDGET 310u      /* topic filter, after "<id>\0" */
#define KEY_TOPIC_BUDGET 511u       /* retained topic */
#define KEY_HASH_LEN 16u

enum store_db {
    DB_META = 0,
    DB_SESSIONS,
    DB_SUBS,
    DB_MSGS,
    DB_REFS,
    DB_QUEUE,
    DB_QOS2,
    DB_RETAINED,
    DB_TOKENS,                      /* added after format 1 shipped: created when missing */
    DB_RORDER,                      /* retained order (sequence per topic); added later too */
    DB_COUNT,
};

extern const char *const store_db_names[DB_COUNT];

/* Operation codes inside a batch. */
enum store_op {
    OP_SESSION_PUT = 1,
    OP_SESSION_DEL,
    OP_SUB_PUT,
    OP_SUB_DEL,
    OP_MSG_PUT,
    OP_QUEUE_ADD,
    OP_QUEUE_UPDATE,
    OP_QUEUE_DROP,
    OP_QOS2_ADD,
    OP_QOS2_DROP,
    OP_RETAINED_SET,
    OP_RETAINED_CLEAR,
    OP_TOKEN_PUT,
    OP_TOKEN_DEL,
};

/* One operation in a batch's buffer: this header, then key_len key bytes, then val_len value
 * bytes (an encoded record, ready to store), padded to 8 bytes. */
struct op_hdr {
    uint8_t op;
    uint8_t state;                  /* OP_QUEUE_UPDATE */
    uint16_t packet_id;             /* OP_QUEUE_UPDATE */
    uint32_t key_len;
    uint32_t val_len;
    uint32_t pad;
    uint64_t msg_id;                /* OP_MSG_PUT, OP_QUEUE_ADD, OP_RETAINED_SET */
    uint64_t seq;                   /* OP_RETAINED_*: the caller's order, 0: none */
};

struct store_batch {
    struct store *store;
    struct store_batch *next;       /* in the submission queue, then in a group */
    store_done_fn *done;
    void *ctx;
    int rc;
    uint32_t n_missing;             /* updates and drops that found no entry (last apply) */
    size_t n_ops;
    struct buf ops;
};

/* Per-batch message reference bookkeeping on the storage thread (apply.c). */
struct ref_slot {
    uint64_t id;                    /* 0: empty slot (message ids start at 1) */
    uint32_t stored;                /* count in the refs database when first touched */
    int64_t delta;
    bool exists;                    /* the message exists (stored, or put by this batch) */
    bool created;                   /* put by this batch: its refs record is new */
};

struct ref_table {
    struct ref_slot *slots;
    size_t cap;                     /* a power of two */
    size_t n;
};

struct store {
    char *dir;
    char *data_path;                /* <dir>/data.mdb, named in messages */
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    uint8_t hashkey[16];            /* SipHash key for long key components, from meta */
    int lock_fd;
    enum store_sync sync;
    uint32_t sync_period_ms;
    uint64_t max_size;              /* 0: unlimited */
    uint32_t max_pending;
    uint64_t max_pending_bytes;
    int64_t (*wall_clock)(void *ctx);
    void *wall_ctx;

    _Atomic uint64_t next_msg_id;
    _Atomic uint64_t next_rseq;     /* retained order: above every stored one */

    /* Every LMDB transaction of this process runs under txn_lock, so that the storage thread
     * may resize the map (which requires no live transaction) and load/check see a stable
     * state. Held by the storage thread per group, never by workers. */
    pthread_mutex_t txn_lock;

    /* Submission queue: workers append, the storage thread takes all. */
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct store_batch *q_head;
    struct store_batch **q_tail;
    uint32_t q_n;
    uint64_t q_bytes;
    bool stopping;
    bool thread_started;
    pthread_t thread;

    /* Storage-thread state. */
    uint64_t map_size;
    bool dirty;                     /* committed without sync (periodic mode) */
    uint64_t sync_due;              /* monotonic ms */
    bool broken;                    /* LMDB panicked: every later batch fails */
    struct ref_table refs;
    struct buf scratch;

    /* Counters (read by store_stats from any thread). */
    _Atomic uint64_t n_batches_ok;
    _Atomic uint64_t n_batches_failed;
    _Atomic uint64_t n_commits;
    _Atomic uint64_t n_syncs;
    _Atomic uint64_t n_ops_missing;
    _Atomic uint64_t n_map_size;
};

/* ---- hash.c ---- */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t len);
/* SipHash-2-4 with a 128-bit output. */
void siphash128(const uint8_t key[16], const void *p, size_t len, uint8_t out[16]);

/* ---- record.c ---- */
/* Little-endian and big-endian helpers. */
void put_le16(uint8_t *p, uint16_t v);
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);
uint32_t get_le32(const uint8_t *p);
uint64_t get_le64(const uint8_t *p);
void put_be64(uint8_t *p, uint64_t v);
uint64_t get_be64(const uint8_t *p);

/* Keys. Each writes at most KEY_MAX bytes into out and returns the length. */
size_t key_session(uint8_t *out, const uint8_t hk[16], struct slice client_id);
size_t key_sub(uint8_t *out, const uint8_t hk[16], struct slice client_id, struct slice filter);
size_t key_queue(uint8_t *out, const uint8_t hk[16], struct slice client_id, uint64_t seq);
size_t key_qos2(uint8_t *out, const uint8_t hk[16], struct slice client_id, uint16_t packet_id);
size_t key_retained(uint8_t *out, const uint8_t hk[16], struct slice topic);
void key_msg(uint8_t out[8], uint64_t id);

/* Record values. *_size gives the encoded length (0 when a field is out of range: a string
 * longer than 4 GiB); *_encode writes it, checksum over `key` and the value included;
 * *_decode checks version and checksum and returns 0 or -EUCLEAN, with slices pointing into
 * `val`. Only a session record holds its client id; the other decoders leave client_id empty
 * (the caller knows it from the session whose key prefix the record has). */
size_t rec_session_size(const struct store_session *s);
void rec_session_encode(uint8_t *out, struct slice key, const struct store_session *s);
int rec_session_decode(struct slice key, struct slice val, struct store_session *out);

size_t rec_sub_size(const struct store_sub *sub);
void rec_sub_encode(uint8_t *out, struct slice key, const struct store_sub *sub);
int rec_sub_decode(struct slice key, struct slice val, struct store_sub *out);

size_t rec_msg_size(const struct store_msg *m);
void rec_msg_encode(uint8_t *out, struct slice key, const struct store_msg *m);
int rec_msg_decode(struct slice key, struct slice val, struct store_msg *out);
/* rec_msg_decode without the checksum, for records checked at open (a message shared by many
 * entries is read once per entry at load: its payload is not summed again each time). */
int rec_msg_view(struct slice key, struct slice val, struct store_msg *out);

#define REC_REFS_SIZE 9u
void rec_refs_encode(uint8_t *out, struct slice key, uint32_t refs);
int rec_refs_decode(struct slice key, struct slice val, uint32_t *refs);

size_t rec_qentry_size(const struct store_qentry *e);
void rec_qentry_encode(uint8_t *out, struct slice key, const struct store_qentry *e);
/* out->sub_ids points at `ids` (STORE_MAX_SUB_IDS of them), filled from the record. */
int rec_qentry_decode(struct slice key, struct slice val, struct store_qentry *out,
                      uint32_t *ids);

#define REC_QOS2_SIZE 5u
void rec_qos2_encode(uint8_t *out, struct slice key);
int rec_qos2_decode(struct slice key, struct slice val);

#define REC_RETAINED_SIZE 13u
void rec_retained_encode(uint8_t *out, struct slice key, uint64_t msg_id);
int rec_retained_decode(struct slice key, struct slice val, uint64_t *msg_id);
/* Retained order: the sequence number of the last change applied to a topic (set or clear). */
#define REC_RORDER_SIZE 13u
void rec_rorder_encode(uint8_t *out, struct slice key, uint64_t seq);
int rec_rorder_decode(struct slice key, struct slice val, uint64_t *seq);

size_t rec_token_size(const struct store_token *t);
void rec_token_encode(uint8_t *out, struct slice key, const struct store_token *t);
/* out->filters points at `filters` (STORE_MAX_TOKEN_FILTERS of them), filled from the record;
 * out->hash is the key. */
int rec_token_decode(struct slice key, struct slice val, struct store_token *out,
                     struct slice *filters);

/* Decode any record of database `db` (for validation). Returns 0 or -EUCLEAN. */
int rec_check(enum store_db db, struct slice key, struct slice val);

/* Does `key` start with `prefix`? */
static inline bool
key_has_prefix(const MDB_val *key, const uint8_t *prefix, size_t len)
{
    return key->mv_size >= len && memcmp(key->mv_data, prefix, len) == 0;
}

static inline struct slice
mdb_slice(const MDB_val *v)
{
    return slice_make(v->mv_data, v->mv_size);
}

/* ---- env.c ---- */
/* A negative errno for an LMDB or system return code (MDB_MAP_FULL: -ENOSPC). */
int store_errno(int mdb_rc);
/* Is this LMDB code a sign of a damaged file? */
bool store_is_damage(int mdb_rc);

/* ---- writer.c ---- */
void *store_writer_main(void *arg);

/* ---- apply.c ---- */
/*
 * Apply batch b inside txn (the storage thread's). Returns 0, an LMDB code (MDB_MAP_FULL,
 * MDB_TXN_FULL, ...), a positive errno from LMDB, or a negative errno of our own (-ENOENT: a
 * reference to a missing message; -EUCLEAN: a stored record does not decode).
 */
int store_apply(struct store *s, MDB_txn *txn, struct store_batch *b);
void ref_table_fini(struct ref_table *t);

#endif
