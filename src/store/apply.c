/*
 * apply.c - one batch's operations inside the storage thread's transaction.
 *
 * Message reference counts live in their own database (msg id -> count) so that adding or
 * dropping a reference rewrites 9 bytes, not the message. Within a batch the changes are
 * summed per message and written once at the end; a message left with no reference then is
 * deleted, so a batch that drops a message's last reference and adds a new one keeps it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "store/internal.h"

static uint64_t
id_hash(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdull;
    id ^= id >> 33;
    return id;
}

static void
ref_table_grow(struct ref_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct ref_slot *slots = xcalloc(cap, sizeof(*slots));

    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].id)
            continue;
        size_t j = id_hash(t->slots[i].id) & (cap - 1);
        while (slots[j].id)
            j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
}

/* The slot for `id`; *fresh tells whether it was just created (not loaded yet). */
static struct ref_slot *
ref_slot(struct ref_table *t, uint64_t id, bool *fresh)
{
    if ((t->n + 1) * 2 > t->cap)
        ref_table_grow(t);
    size_t j = id_hash(id) & (t->cap - 1);
    while (t->slots[j].id && t->slots[j].id != id)
        j = (j + 1) & (t->cap - 1);
    *fresh = !t->slots[j].id;
    if (*fresh) {
        t->slots[j] = (struct ref_slot){.id = id};
        t->n++;
    }
    return &t->slots[j];
}

static void
ref_table_reset(struct ref_table *t)
{
    /* A big batch must not leave a big table to clear after every later batch. */
    if (t->cap > 4096) {
        ref_table_fini(t);
    } else if (t->n) {
        memset(t->slots, 0, t->cap * sizeof(*t->slots));
        t->n = 0;
    }
}

void
ref_table_fini(struct ref_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->n = 0;
}

/* The bookkeeping for message `id`, loading its stored count on first touch. */
static int
ref_touch(struct store *s, MDB_txn *txn, uint64_t id, struct ref_slot **out)
{
    bool fresh;
    struct ref_slot *slot = ref_slot(&s->refs, id, &fresh);

    *out = slot;
    if (!fresh)
        return 0;
    uint8_t k[8];
    key_msg(k, id);
    MDB_val key = {8, k}, val;
    int rc = mdb_get(txn, s->dbi[DB_REFS], &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (rec_refs_decode(mdb_slice(&key), mdb_slice(&val), &slot->stored) != 0)
        return -EUCLEAN;
    slot->exists = true;
    return 0;
}

static int
ref_add(struct store *s, MDB_txn *txn, uint64_t id)
{
    struct ref_slot *slot;
    int rc = ref_touch(s, txn, id, &slot);

    if (rc != 0)
        return rc;
    if (!slot->exists)
        return -ENOENT;
    slot->delta++;
    return 0;
}

static int
ref_drop(struct store *s, MDB_txn *txn, uint64_t id)
{
    struct ref_slot *slot;
    int rc = ref_touch(s, txn, id, &slot);

    if (rc != 0)
        return rc;
    if (slot->exists)
        slot->delta--;
    else
        log_warn("store reference to a missing message id=%" PRIu64, id);
    return 0;
}

/* Write the summed count changes; delete messages left unreferenced. */
static int
ref_flush(struct store *s, MDB_txn *txn)
{
    struct ref_table *t = &s->refs;
    int rc = 0;

    for (size_t i = 0; i < t->cap && rc == 0; i++) {
        struct ref_slot *slot = &t->slots[i];
        if (!slot->id || !slot->exists)
            continue;
        int64_t n = (int64_t)slot->stored + slot->delta;
        uint8_t k[8];
        key_msg(k, slot->id);
        MDB_val key = {8, k};
        if (n <= 0) {
            if (n < 0)
                log_error("store reference count below zero id=%" PRIu64 " count=%" PRId64,
                          slot->id, n);
            rc = mdb_del(txn, s->dbi[DB_MSGS], &key, NULL);
            if (rc == 0 || rc == MDB_NOTFOUND)
                rc = mdb_del(txn, s->dbi[DB_REFS], &key, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        } else if (slot->delta != 0 || slot->created) {
            uint8_t v[REC_REFS_SIZE];
            rec_refs_encode(v, slice_make(k, 8), n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
            MDB_val val = {sizeof(v), v};
            rc = mdb_put(txn, s->dbi[DB_REFS], &key, &val, 0);
        }
    }
    ref_table_reset(t);
    return rc;
}

static int
del_quiet(MDB_txn *txn, MDB_dbi dbi, MDB_val *key)
{
    int rc = mdb_del(txn, dbi, key, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Delete every record of `db` whose key starts with prefix; queue entries release their
 * messages. */
static int
range_del(struct store *s, MDB_txn *txn, enum store_db db, const uint8_t *prefix, size_t plen)
{
    MDB_cursor *c;
    MDB_val key = {plen, (void *)prefix}, val;
    int rc = mdb_cursor_open(txn, s->dbi[db], &c);

    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key_has_prefix(&key, prefix, plen)) {
        if (db == DB_QUEUE) {
            struct store_qentry e;
            uint32_t ids[STORE_MAX_SUB_IDS];
            if (rec_qentry_decode(mdb_slice(&key), mdb_slice(&val), &e, ids) != 0) {
                rc = -EUCLEAN;
                break;
            }
            if (e.msg_id && (rc = ref_drop(s, txn, e.msg_id)) != 0)
                break;
        }
        if ((rc = mdb_cursor_del(c, 0)) != 0)
            break;
        /* After a delete the cursor already stands on the next record; MDB_NEXT returns it. */
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
session_del(struct store *s, MDB_txn *txn, MDB_val *key)
{
    uint8_t prefix[KEY_ID_BUDGET + 1];
    int rc;

    if (key->mv_size > KEY_ID_BUDGET)
        return -EINVAL;
    memcpy(prefix, key->mv_data, key->mv_size);
    prefix[key->mv_size] = 0;
    if ((rc = del_quiet(txn, s->dbi[DB_SESSIONS], key)) != 0 ||
        (rc = range_del(s, txn, DB_SUBS, prefix, key->mv_size + 1)) != 0 ||
        (rc = range_del(s, txn, DB_QUEUE, prefix, key->mv_size + 1)) != 0)
        return rc;
    return range_del(s, txn, DB_QOS2, prefix, key->mv_size + 1);
}

/* The stored entry under key, decoded; 1 when there is none. */
static int
entry_get(struct store *s, MDB_txn *txn, MDB_val *key, struct store_qentry *e, uint32_t *ids)
{
    MDB_val val;
    int rc = mdb_get(txn, s->dbi[DB_QUEUE], key, &val);

    if (rc == MDB_NOTFOUND)
        return 1;
    if (rc != 0)
        return rc;
    return rec_qentry_decode(mdb_slice(key), mdb_slice(&val), e, ids) ? -EUCLEAN : 0;
}

static int
queue_add(struct store *s, MDB_txn *txn, const struct op_hdr *h, MDB_val *key, MDB_val *val)
{
    struct store_qentry old;
    uint32_t ids[STORE_MAX_SUB_IDS];
    int rc = entry_get(s, txn, key, &old, ids);

    if (rc < 0 || rc > 1)
        return rc;
    if (rc == 0 && old.msg_id && (rc = ref_drop(s, txn, old.msg_id)) != 0)
        return rc;
    if (h->msg_id && (rc = ref_add(s, txn, h->msg_id)) != 0)
        return rc;
    return mdb_put(txn, s->dbi[DB_QUEUE], key, val, 0);
}

static int
queue_update(struct store *s, MDB_txn *txn, struct store_batch *b, const struct op_hdr *h,
             MDB_val *key)
{
    struct store_qentry e;
    uint32_t ids[STORE_MAX_SUB_IDS];
    int rc = entry_get(s, txn, key, &e, ids);

    if (rc == 1) {
        b->n_missing++;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (h->state == STORE_Q_WAIT_PUBCOMP && e.msg_id) {
        /* After PUBREC only the packet id is left to resend (PUBREL): release the message. */
        if ((rc = ref_drop(s, txn, e.msg_id)) != 0)
            return rc;
        e.msg_id = 0;
    } else if (h->state != STORE_Q_WAIT_PUBCOMP && !e.msg_id) {
        log_error("store entry cannot leave WAIT_PUBCOMP state=%u", h->state);
        return -EINVAL;
    }
    e.state = h->state;
    e.packet_id = h->packet_id;
    size_t len = rec_qentry_size(&e);
    s->scratch.len = 0;
    if (buf_reserve(&s->scratch, len) != 0)
        return ENOMEM;
    rec_qentry_encode(s->scratch.p, mdb_slice(key), &e);
    MDB_val val = {len, s->scratch.p};
    return mdb_put(txn, s->dbi[DB_QUEUE], key, &val, 0);
}

static int
queue_drop(struct store *s, MDB_txn *txn, struct store_batch *b, MDB_val *key)
{
    struct store_qentry e;
    uint32_t ids[STORE_MAX_SUB_IDS];
    int rc = entry_get(s, txn, key, &e, ids);

    if (rc == 1) {
        b->n_missing++;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (e.msg_id && (rc = ref_drop(s, txn, e.msg_id)) != 0)
        return rc;
    return mdb_del(txn, s->dbi[DB_QUEUE], key, NULL);
}

/* The message id the retained record under key points at, 0 if none. */
static int
retained_get(struct store *s, MDB_txn *txn, MDB_val *key, uint64_t *id)
{
    MDB_val val;
    int rc = mdb_get(txn, s->dbi[DB_RETAINED], key, &val);

    *id = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    return rec_retained_decode(mdb_slice(key), mdb_slice(&val), id) ? -EUCLEAN : 0;
}

/* Retained order: is a change numbered h->seq older than the last one applied to this topic?
 * Batches from different workers commit in submission order, which need not be the order in
 * which the broker changed the topic; the number is. Otherwise the number is recorded (also
 * for a clear: it stays as a tombstone until the next start-up). 0: not ordered. */
static int
retained_stale(struct store *s, MDB_txn *txn, const struct op_hdr *h, MDB_val *key, bool *stale)
{
    MDB_val val;
    uint64_t last = 0;
    uint8_t rec[REC_RORDER_SIZE];
    int rc;

    *stale = false;
    if (h->seq == 0)
        return 0;
    if ((rc = mdb_get(txn, s->dbi[DB_RORDER], key, &val)) == 0) {
        if (rec_rorder_decode(mdb_slice(key), mdb_slice(&val), &last) != 0)
            return -EUCLEAN;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if (last > h->seq) {
        *stale = true;
        return 0;
    }
    rec_rorder_encode(rec, mdb_slice(key), h->seq);
    val = (MDB_val){sizeof(rec), rec};
    return mdb_put(txn, s->dbi[DB_RORDER], key, &val, 0);
}

static int
retained_set(struct store *s, MDB_txn *txn, const struct op_hdr *h, MDB_val *key, MDB_val *val)
{
    uint64_t old;
    bool stale;
    int rc = retained_stale(s, txn, h, key, &stale);

    /* A stale set adds no reference: its message, put by this batch, goes at its end. */
    if (rc != 0 || stale)
        return rc;
    if ((rc = retained_get(s, txn, key, &old)) != 0)
        return rc;
    if (old != h->msg_id) {
        if (old && (rc = ref_drop(s, txn, old)) != 0)
            return rc;
        if ((rc = ref_add(s, txn, h->msg_id)) != 0)
            return rc;
    }
    return mdb_put(txn, s->dbi[DB_RETAINED], key, val, 0);
}

static int
retained_clear(struct store *s, MDB_txn *txn, const struct op_hdr *h, MDB_val *key)
{
    uint64_t old;
    bool stale;
    int rc = retained_stale(s, txn, h, key, &stale);

    if (rc != 0 || stale)
        return rc;
    if ((rc = retained_get(s, txn, key, &old)) != 0 || !old)
        return rc;
    if ((rc = ref_drop(s, txn, old)) != 0)
        return rc;
    return mdb_del(txn, s->dbi[DB_RETAINED], key, NULL);
}

static int
msg_put(struct store *s, MDB_txn *txn, const struct op_hdr *h, MDB_val *key, MDB_val *val)
{
    struct ref_slot *slot;
    int rc = ref_touch(s, txn, h->msg_id, &slot);

    /* Messages never change: a put of a stored one has nothing to write. */
    if (rc != 0 || slot->exists)
        return rc;
    if ((rc = mdb_put(txn, s->dbi[DB_MSGS], key, val, 0)) != 0)
        return rc;
    slot->exists = true;
    slot->created = true;
    return 0;
}

static int
apply_op(struct store *s, MDB_txn *txn, struct store_batch *b, const struct op_hdr *h,
         MDB_val *key, MDB_val *val)
{
    switch (h->op) {
    case OP_SESSION_PUT:
        return mdb_put(txn, s->dbi[DB_SESSIONS], key, val, 0);
    case OP_SESSION_DEL:
        return session_del(s, txn, key);
    case OP_SUB_PUT:
        return mdb_put(txn, s->dbi[DB_SUBS], key, val, 0);
    case OP_SUB_DEL:
        return del_quiet(txn, s->dbi[DB_SUBS], key);
    case OP_MSG_PUT:
        return msg_put(s, txn, h, key, val);
    case OP_QUEUE_ADD:
        return queue_add(s, txn, h, key, val);
    case OP_QUEUE_UPDATE:
        return queue_update(s, txn, b, h, key);
    case OP_QUEUE_DROP:
        return queue_drop(s, txn, b, key);
    case OP_QOS2_ADD:
        return mdb_put(txn, s->dbi[DB_QOS2], key, val, 0);
    case OP_QOS2_DROP:
        return del_quiet(txn, s->dbi[DB_QOS2], key);
    case OP_RETAINED_SET:
        return retained_set(s, txn, h, key, val);
    case OP_RETAINED_CLEAR:
        return retained_clear(s, txn, h, key);
    case OP_TOKEN_PUT:
        return mdb_put(txn, s->dbi[DB_TOKENS], key, val, 0);
    case OP_TOKEN_DEL:
        return del_quiet(txn, s->dbi[DB_TOKENS], key);
    }
    return -EINVAL;
}

int
store_apply(struct store *s, MDB_txn *txn, struct store_batch *b)
{
    size_t off = 0;
    int rc = 0;

    b->n_missing = 0;
    for (size_t i = 0; i < b->n_ops && rc == 0; i++) {
        struct op_hdr h;
        memcpy(&h, b->ops.p + off, sizeof(h));
        uint8_t *k = b->ops.p + off + sizeof(h);
        MDB_val key = {h.key_len, k}, val = {h.val_len, k + h.key_len};
        off += (sizeof(h) + h.key_len + h.val_len + 7) & ~(size_t)7;
        rc = apply_op(s, txn, b, &h, &key, &val);
    }
    if (rc != 0) {
        ref_table_reset(&s->refs);
        return rc;
    }
    return ref_flush(s, txn);
}
