/*
 * load.c - start-up: hand every live record to the broker, purge what expired while it was
 * down, and repair what does not add up; store_check counts the same inconsistencies without
 * touching anything.
 *
 * One read transaction walks sessions in key order with three more cursors (subscriptions,
 * queue entries, QoS 2 ids) advancing beside it: their keys start with "<session key>\0", so
 * each session's records are one contiguous run at the cursor, and records before the run
 * belong to no session (orphans). Work is one pass over each database: time proportional to
 * the live data. Message references are counted on the way and compared with the stored
 * counts at the end. The deletions and fixes found are applied afterwards in one write
 * transaction; if that fails (disk full) the next start-up finds them again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "store/internal.h"

/* Message id -> references found. */
struct counts {
    uint64_t *ids;                  /* 0: empty slot */
    uint32_t *n;
    size_t cap;                     /* a power of two */
    size_t used;
};

static void
counts_init(struct counts *c, size_t expect)
{
    c->cap = 64;
    while (c->cap < 2 * expect + 16)
        c->cap *= 2;
    c->ids = xcalloc(c->cap, sizeof(*c->ids));
    c->n = xcalloc(c->cap, sizeof(*c->n));
    c->used = 0;
}

static void
counts_fini(struct counts *c)
{
    free(c->ids);
    free(c->n);
}

static size_t
counts_slot(const struct counts *c, uint64_t id)
{
    size_t j = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (c->cap - 1);

    while (c->ids[j] && c->ids[j] != id)
        j = (j + 1) & (c->cap - 1);
    return j;
}

static void
counts_add(struct counts *c, uint64_t id)
{
    if ((c->used + 1) * 2 > c->cap) {
        struct counts bigger;
        counts_init(&bigger, c->cap);
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->ids[i])
                continue;
            size_t k = counts_slot(&bigger, c->ids[i]);
            bigger.ids[k] = c->ids[i];
            bigger.n[k] = c->n[i];
        }
        bigger.used = c->used;
        counts_fini(c);
        *c = bigger;
    }
    size_t j = counts_slot(c, id);
    if (!c->ids[j]) {
        c->ids[j] = id;
        c->n[j] = 0;
        c->used++;
    }
    c->n[j]++;
}

static uint32_t
counts_get(const struct counts *c, uint64_t id)
{
    size_t j = counts_slot(c, id);

    return c->ids[j] ? c->n[j] : 0;
}

/* What the write transaction after the walk does. */
enum fix_kind {
    FIX_DEL = 1,          /* delete key in db */
    FIX_DEL_SESSION,      /* delete a session and every record under its prefix */
    FIX_DEL_MSG,          /* delete message and refs records of id (key) */
    FIX_SET_REFS,         /* set the refs record of id (key) to count */
};

struct fix_hdr {
    uint8_t kind;
    uint8_t db;
    uint16_t pad;
    uint32_t key_len;
    uint32_t count;
};

struct walk {
    struct store *s;
    MDB_txn *txn;
    const struct store_visitor *v;
    bool check;                     /* store_check: no callbacks, expiry or fixes */
    int64_t now;
    int stop_rc;                    /* a visitor's non-zero return */
    struct counts counts;           /* references found */
    struct counts gone;             /* references purged: expired, orphaned, of ended sessions */
    struct buf fixes;
    size_t n_fixes;
    struct store_load_stats st;
    struct store_check chk;
};

struct cur {
    MDB_cursor *c;
    MDB_val k, v;
    int rc;                         /* 0: on a record; MDB_NOTFOUND: past the end */
};

static int
cur_next(struct cur *c)
{
    c->rc = mdb_cursor_get(c->c, &c->k, &c->v, MDB_NEXT);
    return c->rc == MDB_NOTFOUND ? 0 : c->rc;
}

static void
fix(struct walk *w, enum fix_kind kind, enum store_db db, const void *key, size_t len,
    uint32_t count)
{
    struct fix_hdr h = {.kind = (uint8_t)kind, .db = (uint8_t)db, .key_len = (uint32_t)len,
                        .count = count};

    if (w->check)
        return;
    if (buf_append(&w->fixes, &h, sizeof(h)) != 0 || buf_append(&w->fixes, key, len) != 0)
        abort();                    /* fixed-size bookkeeping of our own: like xmalloc */
    static const uint8_t zeros[8];
    size_t pad = (8 - len % 8) % 8;
    if (pad && buf_append(&w->fixes, zeros, pad) != 0)
        abort();
    w->n_fixes++;
}

static int
key_cmp(const MDB_val *a, const uint8_t *b, size_t blen)
{
    size_t n = a->mv_size < blen ? a->mv_size : blen;
    int c = n ? memcmp(a->mv_data, b, n) : 0;

    if (c)
        return c;
    return a->mv_size < blen ? -1 : a->mv_size > blen;
}

/* An entry removed with its session (expired) or without one (orphan): its reference goes
 * with it. */
static int
drop_entry(struct walk *w, struct cur *c)
{
    struct store_qentry e;
    uint32_t ids[STORE_MAX_SUB_IDS];

    if (rec_qentry_decode(mdb_slice(&c->k), mdb_slice(&c->v), &e, ids) != 0)
        return -EUCLEAN;
    if (e.msg_id)
        counts_add(&w->gone, e.msg_id);
    return 0;
}

/* Records of `cur` before the run of `prefix` belong to no session. NULL prefix: all left. */
static int
skip_orphans(struct walk *w, enum store_db db, struct cur *c, const uint8_t *prefix, size_t plen)
{
    int rc = 0;

    while (c->rc == 0 && (!prefix || key_cmp(&c->k, prefix, plen) < 0)) {
        if (db == DB_QUEUE && (rc = drop_entry(w, c)) != 0)
            break;
        fix(w, FIX_DEL, db, c->k.mv_data, c->k.mv_size, 0);
        w->st.n_repaired++;
        w->chk.n_orphans++;
        if ((rc = cur_next(c)) != 0)
            break;
    }
    return rc;
}

/* The message `id`: 0 and *m, or 1 when missing. */
static int
msg_get(struct walk *w, uint64_t id, struct store_msg *m)
{
    uint8_t k[8];
    MDB_val key = {8, k}, val;

    key_msg(k, id);
    int rc = mdb_get(w->txn, w->s->dbi[DB_MSGS], &key, &val);
    if (rc == MDB_NOTFOUND)
        return 1;
    if (rc != 0)
        return rc;
    return rec_msg_view(mdb_slice(&key), mdb_slice(&val), m) ? -EUCLEAN : 0;
}

/* A visitor's return: non-zero stops the walk (-ECANCELED inside, its value outside). */
static int
visited(struct walk *w, int rc)
{
    if (rc == 0)
        return 0;
    w->stop_rc = rc;
    return -ECANCELED;
}

static bool
msg_expired(const struct walk *w, const struct store_msg *m)
{
    return !w->check && m->expiry_at != 0 && m->expiry_at <= w->now;
}

static int
visit_entry(struct walk *w, const struct store_session *sess, struct cur *c)
{
    struct store_qentry e;
    struct store_msg m;
    uint32_t ids[STORE_MAX_SUB_IDS];
    int rc;

    if (rec_qentry_decode(mdb_slice(&c->k), mdb_slice(&c->v), &e, ids) != 0)
        return -EUCLEAN;
    e.client_id = sess->client_id;
    if (e.msg_id) {
        if ((rc = msg_get(w, e.msg_id, &m)) < 0 || rc > 1)
            return rc;
        if (rc == 1) {
            log_warn("store entry without its message client=%.*s seq=%" PRIu64 " msg=%" PRIu64,
                     SLICE_FMT(sess->client_id), e.seq, e.msg_id);
            fix(w, FIX_DEL, DB_QUEUE, c->k.mv_data, c->k.mv_size, 0);
            w->st.n_repaired++;
            w->chk.n_dangling++;
            return 0;
        }
        /* Expiry removes a message not yet sent [MQTT-3.3.2-5]; one inflight stays. */
        if (e.state == STORE_Q_QUEUED && msg_expired(w, &m)) {
            fix(w, FIX_DEL, DB_QUEUE, c->k.mv_data, c->k.mv_size, 0);
            counts_add(&w->gone, e.msg_id);
            w->st.n_expired_msgs++;
            return 0;
        }
        counts_add(&w->counts, e.msg_id);
        w->chk.n_refs++;
    }
    w->st.n_queued++;
    if (w->v && w->v->on_queue)
        return visited(w, w->v->on_queue(w->v->ctx, &e, e.msg_id ? &m : NULL));
    return 0;
}

static int
visit_sub(struct walk *w, const struct store_session *sess, struct cur *c)
{
    struct store_sub sub;

    if (rec_sub_decode(mdb_slice(&c->k), mdb_slice(&c->v), &sub) != 0)
        return -EUCLEAN;
    sub.client_id = sess->client_id;
    w->st.n_subs++;
    return w->v && w->v->on_sub ? visited(w, w->v->on_sub(w->v->ctx, &sub)) : 0;
}

static int
visit_qos2(struct walk *w, const struct store_session *sess, struct cur *c)
{
    if (rec_qos2_decode(mdb_slice(&c->k), mdb_slice(&c->v)) != 0)
        return -EUCLEAN;
    const uint8_t *k = c->k.mv_data;
    uint16_t id = (uint16_t)(k[c->k.mv_size - 2] << 8 | k[c->k.mv_size - 1]);
    w->st.n_qos2++;
    return w->v && w->v->on_qos2 ? visited(w, w->v->on_qos2(w->v->ctx, sess->client_id, id))
                                 : 0;
}

static bool
session_expired(const struct walk *w, const struct store_session *sess)
{
    return !w->check && sess->offline_at != 0 && sess->expiry != STORE_EXPIRY_NEVER &&
           sess->offline_at + (int64_t)sess->expiry <= w->now;
}

/* Sessions with their subscriptions, queue entries and QoS 2 ids. */
static int
walk_sessions(struct walk *w)
{
    static const enum store_db dbs[3] = {DB_SUBS, DB_QUEUE, DB_QOS2};
    struct cur sc = {0}, cs[3] = {{0}};
    int rc;

    if ((rc = mdb_cursor_open(w->txn, w->s->dbi[DB_SESSIONS], &sc.c)) != 0)
        return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = mdb_cursor_open(w->txn, w->s->dbi[dbs[i]], &cs[i].c)) != 0 ||
            (rc = cur_next(&cs[i])) != 0)
            goto out;
    while ((rc = cur_next(&sc)) == 0 && sc.rc == 0) {
        struct store_session sess;
        uint8_t prefix[KEY_ID_BUDGET + 1];
        size_t plen = sc.k.mv_size + 1;
        if (sc.k.mv_size > KEY_ID_BUDGET ||
            rec_session_decode(mdb_slice(&sc.k), mdb_slice(&sc.v), &sess) != 0) {
            rc = -EUCLEAN;
            goto out;
        }
        memcpy(prefix, sc.k.mv_data, sc.k.mv_size);
        prefix[sc.k.mv_size] = 0;
        bool expired = session_expired(w, &sess), keep = false;
        if (expired) {
            /* Kept: the broker deletes the record with its will's deliveries (store.h). */
            keep = w->v && w->v->on_expired_session && w->v->on_expired_session(w->v->ctx, &sess);
            if (!keep)
                fix(w, FIX_DEL_SESSION, DB_SESSIONS, sc.k.mv_data, sc.k.mv_size, 0);
            w->st.n_expired_sessions++;
        } else {
            w->st.n_sessions++;
            if (w->v && w->v->on_session &&
                (rc = visited(w, w->v->on_session(w->v->ctx, &sess))) != 0)
                goto out;
        }
        for (int i = 0; i < 3; i++) {
            struct cur *c = &cs[i];
            if ((rc = skip_orphans(w, dbs[i], c, prefix, plen)) != 0)
                goto out;
            while (c->rc == 0 && key_has_prefix(&c->k, prefix, plen)) {
                if (expired && dbs[i] == DB_QUEUE) {
                    /* Its messages go now, whether the record stays or not. */
                    rc = drop_entry(w, c);
                    if (rc == 0 && keep)
                        fix(w, FIX_DEL, DB_QUEUE, c->k.mv_data, c->k.mv_size, 0);
                } else if (!expired) {
                    rc = dbs[i] == DB_SUBS    ? visit_sub(w, &sess, c)
                         : dbs[i] == DB_QUEUE ? visit_entry(w, &sess, c)
                                              : visit_qos2(w, &sess, c);
                }
                if (rc != 0)
                    goto out;
                if ((rc = cur_next(c)) != 0)
                    goto out;
            }
        }
    }
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = skip_orphans(w, dbs[i], &cs[i], NULL, 0);
out:
    mdb_cursor_close(sc.c);
    for (int i = 0; i < 3; i++)
        if (cs[i].c)
            mdb_cursor_close(cs[i].c);
    return rc;
}

/* Retained order records of topics without a retained message are tombstones of clears: at
 * start-up no batch is pending that they could still order, so they go. */
static int
walk_rorder(struct walk *w)
{
    struct cur c = {0};
    int rc = mdb_cursor_open(w->txn, w->s->dbi[DB_RORDER], &c.c);

    while (rc == 0 && (rc = cur_next(&c)) == 0 && c.rc == 0) {
        MDB_val val;
        int got = mdb_get(w->txn, w->s->dbi[DB_RETAINED], &c.k, &val);
        if (got == MDB_NOTFOUND)
            fix(w, FIX_DEL, DB_RORDER, c.k.mv_data, c.k.mv_size, 0);
        else if (got != 0)
            rc = got;
    }
    if (c.c)
        mdb_cursor_close(c.c);
    return rc;
}

static int
walk_retained(struct walk *w)
{
    struct cur c = {0};
    int rc = mdb_cursor_open(w->txn, w->s->dbi[DB_RETAINED], &c.c);

    while (rc == 0 && (rc = cur_next(&c)) == 0 && c.rc == 0) {
        uint64_t id;
        struct store_msg m;
        if (rec_retained_decode(mdb_slice(&c.k), mdb_slice(&c.v), &id) != 0) {
            rc = -EUCLEAN;
            break;
        }
        if ((rc = msg_get(w, id, &m)) < 0 || rc > 1)
            break;
        if (rc == 1 || msg_expired(w, &m)) {
            fix(w, FIX_DEL, DB_RETAINED, c.k.mv_data, c.k.mv_size, 0);
            if (rc == 1) {
                w->st.n_repaired++;
                w->chk.n_dangling++;
            } else {
                counts_add(&w->gone, id);
                w->st.n_expired_msgs++;
            }
            rc = 0;
            continue;
        }
        counts_add(&w->counts, id);
        w->chk.n_refs++;
        w->st.n_retained++;
        if (w->v && w->v->on_retained && (rc = visited(w, w->v->on_retained(w->v->ctx, &m))) != 0)
            break;
    }
    if (c.c)
        mdb_cursor_close(c.c);
    return rc;
}

/* Tokens: the live ones to the visitor, the expired ones purged. */
static int
walk_tokens(struct walk *w)
{
    struct cur c = {0};
    int rc = mdb_cursor_open(w->txn, w->s->dbi[DB_TOKENS], &c.c);

    while (rc == 0 && (rc = cur_next(&c)) == 0 && c.rc == 0) {
        struct store_token t;
        struct slice filters[STORE_MAX_TOKEN_FILTERS];
        if (rec_token_decode(mdb_slice(&c.k), mdb_slice(&c.v), &t, filters) != 0) {
            rc = -EUCLEAN;
            break;
        }
        if (!w->check && t.expires_at <= w->now) {
            fix(w, FIX_DEL, DB_TOKENS, c.k.mv_data, c.k.mv_size, 0);
            w->st.n_expired_tokens++;
            continue;
        }
        w->st.n_tokens++;
        if (w->v && w->v->on_token && (rc = visited(w, w->v->on_token(w->v->ctx, &t))) != 0)
            break;
    }
    if (c.c)
        mdb_cursor_close(c.c);
    return rc;
}

/* Compare the references found with the stored counts: messages and refs records side by
 * side (both keyed by the big-endian id). */
static int
walk_msgs(struct walk *w)
{
    struct cur m = {0}, r = {0};
    int rc;

    if ((rc = mdb_cursor_open(w->txn, w->s->dbi[DB_MSGS], &m.c)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(w->txn, w->s->dbi[DB_REFS], &r.c)) != 0 ||
        (rc = cur_next(&m)) != 0 || (rc = cur_next(&r)) != 0)
        goto out;
    while (m.rc == 0 || r.rc == 0) {
        int order = m.rc != 0 ? 1 : r.rc != 0 ? -1 : key_cmp(&m.k, r.k.mv_data, r.k.mv_size);
        const MDB_val *k = order <= 0 ? &m.k : &r.k;
        if (k->mv_size != 8) {
            rc = -EUCLEAN;
            break;
        }
        uint64_t id = get_be64(k->mv_data);
        uint32_t found = counts_get(&w->counts, id), stored = 0;
        if (order == 0 && rec_refs_decode(mdb_slice(&r.k), mdb_slice(&r.v), &stored) != 0) {
            rc = -EUCLEAN;
            break;
        }
        /* Consistent: the stored count is the references found plus those purged (expired,
         * of expired sessions, orphans). */
        bool bad = order != 0 || stored != found + counts_get(&w->gone, id);
        if (bad) {
            w->st.n_repaired++;
            w->chk.n_bad_refcounts++;
        }
        if (order <= 0)
            w->chk.n_msgs++;
        if (found == 0) {
            fix(w, FIX_DEL_MSG, DB_MSGS, k->mv_data, 8, 0);
        } else {
            w->st.n_msgs++;
            if (order != 0 || stored != found)
                fix(w, FIX_SET_REFS, DB_REFS, k->mv_data, 8, found);
        }
        if ((order <= 0 && (rc = cur_next(&m)) != 0) || (order >= 0 && (rc = cur_next(&r)) != 0))
            break;
    }
out:
    mdb_cursor_close(m.c);
    if (r.c)
        mdb_cursor_close(r.c);
    return rc;
}

static int
del_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t plen)
{
    MDB_cursor *c;
    MDB_val key = {plen, (void *)prefix}, val;
    int rc = mdb_cursor_open(txn, dbi, &c);

    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key_has_prefix(&key, prefix, plen)) {
        if ((rc = mdb_cursor_del(c, 0)) == 0)
            rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
apply_fix(struct walk *w, MDB_txn *txn, const struct fix_hdr *h, uint8_t *key)
{
    struct store *s = w->s;
    MDB_val k = {h->key_len, key};
    int rc = 0;

    switch (h->kind) {
    case FIX_DEL:
        rc = mdb_del(txn, s->dbi[h->db], &k, NULL);
        break;
    case FIX_DEL_SESSION: {
        uint8_t prefix[KEY_ID_BUDGET + 1];
        memcpy(prefix, key, h->key_len);
        prefix[h->key_len] = 0;
        rc = mdb_del(txn, s->dbi[DB_SESSIONS], &k, NULL);
        if (rc == 0 || rc == MDB_NOTFOUND)
            rc = del_prefix(txn, s->dbi[DB_SUBS], prefix, h->key_len + 1);
        if (rc == 0)
            rc = del_prefix(txn, s->dbi[DB_QUEUE], prefix, h->key_len + 1);
        if (rc == 0)
            rc = del_prefix(txn, s->dbi[DB_QOS2], prefix, h->key_len + 1);
        break;
    }
    case FIX_DEL_MSG:
        rc = mdb_del(txn, s->dbi[DB_MSGS], &k, NULL);
        if (rc == 0 || rc == MDB_NOTFOUND)
            rc = mdb_del(txn, s->dbi[DB_REFS], &k, NULL);
        break;
    case FIX_SET_REFS: {
        uint8_t v[REC_REFS_SIZE];
        rec_refs_encode(v, slice_make(key, 8), h->count);
        MDB_val val = {sizeof(v), v};
        rc = mdb_put(txn, s->dbi[DB_REFS], &k, &val, 0);
        break;
    }
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void
apply_fixes(struct walk *w)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(w->s->env, NULL, 0, &txn);
    bool open = rc == 0;

    for (size_t off = 0; rc == 0 && off < w->fixes.len;) {
        struct fix_hdr h;
        memcpy(&h, w->fixes.p + off, sizeof(h));
        rc = apply_fix(w, txn, &h, w->fixes.p + off + sizeof(h));
        off += sizeof(h) + (h.key_len + 7) / 8 * 8;
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (open)
        mdb_txn_abort(txn);
    if (rc != 0)
        log_warn("store purge failed dir=%s fixes=%zu error=\"%s\": retried at next start",
                 w->s->dir, w->n_fixes, mdb_strerror(rc));
}

static int
walk(struct walk *w)
{
    MDB_stat st = {0};
    int rc;

    pthread_mutex_lock(&w->s->txn_lock);
    if ((rc = mdb_txn_begin(w->s->env, NULL, MDB_RDONLY, &w->txn)) != 0) {
        pthread_mutex_unlock(&w->s->txn_lock);
        return store_errno(rc);
    }
    mdb_stat(w->txn, w->s->dbi[DB_REFS], &st);
    counts_init(&w->counts, st.ms_entries);
    counts_init(&w->gone, 0);
    buf_init(&w->fixes);
    if ((rc = walk_sessions(w)) == 0 && (rc = walk_retained(w)) == 0 &&
        (rc = walk_rorder(w)) == 0 && (rc = walk_tokens(w)) == 0)
        rc = walk_msgs(w);
    mdb_txn_abort(w->txn);
    w->txn = NULL;
    if (rc == 0 && w->n_fixes)
        apply_fixes(w);
    pthread_mutex_unlock(&w->s->txn_lock);
    counts_fini(&w->counts);
    counts_fini(&w->gone);
    buf_fini(&w->fixes);
    if (rc == -ECANCELED && w->stop_rc)
        return w->stop_rc;
    if (rc == -EUCLEAN)
        log_error("store damaged record found while loading file=%s", w->s->data_path);
    return store_errno(rc);
}

int
store_load(struct store *s, const struct store_visitor *v, struct store_load_stats *stats)
{
    struct walk w = {.s = s, .v = v};
    uint64_t t0 = clock_now_ms();

    w.now = s->wall_clock ? s->wall_clock(s->wall_ctx) : clock_wall_s();
    int rc = walk(&w);
    w.st.elapsed_ms = clock_now_ms() - t0;
    if (rc == 0)
        log_info("store loaded dir=%s sessions=%" PRIu64 " subs=%" PRIu64 " queued=%" PRIu64
                 " qos2=%" PRIu64 " retained=%" PRIu64 " msgs=%" PRIu64
                 " expired_sessions=%" PRIu64 " expired_msgs=%" PRIu64 " repaired=%" PRIu64
                 " tokens=%" PRIu64 " expired_tokens=%" PRIu64 " ms=%" PRIu64,
                 s->dir, w.st.n_sessions, w.st.n_subs, w.st.n_queued, w.st.n_qos2,
                 w.st.n_retained, w.st.n_msgs, w.st.n_expired_sessions, w.st.n_expired_msgs,
                 w.st.n_repaired, w.st.n_tokens, w.st.n_expired_tokens, w.st.elapsed_ms);
    if (stats)
        *stats = w.st;
    return rc;
}

int
store_check(struct store *s, struct store_check *out)
{
    struct walk w = {.s = s, .check = true};
    int rc = walk(&w);

    *out = w.chk;
    return rc;
}
