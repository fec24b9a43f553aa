/*
 * batch.c - building batches on worker threads and handing them to the storage thread.
 *
 * A worker encodes each operation completely here (key, record value, checksum), so the
 * storage thread only looks up, counts references and writes. Building takes no lock and does
 * no I/O; store_submit holds the queue mutex for a few pointer updates.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/internal.h"

struct store_batch *
store_batch_new(struct store *s)
{
    struct store_batch *b = xcalloc(1, sizeof(*b));

    b->store = s;
    buf_init(&b->ops);
    return b;
}

void
store_batch_free(struct store_batch *b)
{
    if (!b)
        return;
    buf_fini(&b->ops);
    free(b);
}

size_t
store_batch_ops(const struct store_batch *b)
{
    return b->n_ops;
}

size_t
store_batch_bytes(const struct store_batch *b)
{
    return b->ops.len;
}

/* Key material must be non-empty and free of 0x00 and 0xFF: the key layout relies on it (both
 * are impossible in MQTT UTF-8 strings [MQTT-1.5.4-2]). */
static bool
key_ok(struct slice s)
{
    return s.len > 0 && !memchr(s.p, 0, s.len) && !memchr(s.p, 0xFF, s.len);
}

/* Room for one operation with a value of val_len bytes; returns where its header goes. */
static uint8_t *
op_reserve(struct store_batch *b, size_t val_len)
{
    if (buf_reserve(&b->ops, sizeof(struct op_hdr) + KEY_MAX + val_len + 8) != 0)
        return NULL;
    return b->ops.p + b->ops.len;
}

static inline uint8_t *
op_key(uint8_t *at)
{
    return at + sizeof(struct op_hdr);
}

/* Finish the operation whose header is at `at` (key and value written after it). */
static void
op_commit(struct store_batch *b, uint8_t *at, struct op_hdr h)
{
    size_t len = sizeof(h) + h.key_len + h.val_len;

    memcpy(at, &h, sizeof(h));
    len = (len + 7) & ~(size_t)7;
    b->ops.len += len;
    b->n_ops++;
}

int
store_batch_session_put(struct store_batch *b, const struct store_session *sess)
{
    size_t vlen = rec_session_size(sess);
    uint8_t *at;

    if (!key_ok(sess->client_id) || sess->will_qos > 2 || vlen == 0)
        return -EINVAL;
    if (!(at = op_reserve(b, vlen)))
        return -ENOMEM;
    uint8_t *key = op_key(at);
    size_t klen = key_session(key, b->store->hashkey, sess->client_id);
    rec_session_encode(key + klen, slice_make(key, klen), sess);
    op_commit(b, at, (struct op_hdr){.op = OP_SESSION_PUT, .key_len = (uint32_t)klen,
                                     .val_len = (uint32_t)vlen});
    return 0;
}

int
store_batch_session_del(struct store_batch *b, struct slice client_id)
{
    uint8_t *at;

    if (!key_ok(client_id))
        return -EINVAL;
    if (!(at = op_reserve(b, 0)))
        return -ENOMEM;
    size_t klen = key_session(op_key(at), b->store->hashkey, client_id);
    op_commit(b, at, (struct op_hdr){.op = OP_SESSION_DEL, .key_len = (uint32_t)klen});
    return 0;
}

int
store_batch_sub_put(struct store_batch *b, const struct store_sub *sub)
{
    size_t vlen = rec_sub_size(sub);
    uint8_t *at;

    if (!key_ok(sub->client_id) || !key_ok(sub->filter) || sub->qos > 2 ||
        sub->retain_handling > 2 || vlen == 0)
        return -EINVAL;
    if (!(at = op_reserve(b, vlen)))
        return -ENOMEM;
    uint8_t *key = op_key(at);
    size_t klen = key_sub(key, b->store->hashkey, sub->client_id, sub->filter);
    rec_sub_encode(key + klen, slice_make(key, klen), sub);
    op_commit(b, at, (struct op_hdr){.op = OP_SUB_PUT, .key_len = (uint32_t)klen,
                                     .val_len = (uint32_t)vlen});
    return 0;
}

int
store_batch_sub_del(struct store_batch *b, struct slice client_id, struct slice filter)
{
    uint8_t *at;

    if (!key_ok(client_id) || !key_ok(filter))
        return -EINVAL;
    if (!(at = op_reserve(b, 0)))
        return -ENOMEM;
    size_t klen = key_sub(op_key(at), b->store->hashkey, client_id, filter);
    op_commit(b, at, (struct op_hdr){.op = OP_SUB_DEL, .key_len = (uint32_t)klen});
    return 0;
}

int
store_batch_msg_put(struct store_batch *b, const struct store_msg *m)
{
    size_t vlen = rec_msg_size(m);
    uint8_t *at;

    if (m->id == 0 || m->qos > 2 || vlen == 0)
        return -EINVAL;
    if (!(at = op_reserve(b, vlen)))
        return -ENOMEM;
    uint8_t *key = op_key(at);
    key_msg(key, m->id);
    rec_msg_encode(key + 8, slice_make(key, 8), m);
    op_commit(b, at, (struct op_hdr){.op = OP_MSG_PUT, .key_len = 8, .val_len = (uint32_t)vlen,
                                     .msg_id = m->id});
    return 0;
}

int
store_batch_queue_add(struct store_batch *b, const struct store_qentry *e)
{
    struct store_qentry copy = *e;
    uint8_t *at;

    if (!key_ok(e->client_id) || e->qos > 2 || e->state > STORE_Q_WAIT_PUBCOMP ||
        e->n_sub_ids > STORE_MAX_SUB_IDS || (e->n_sub_ids && !e->sub_ids))
        return -EINVAL;
    /* In WAIT_PUBCOMP only the packet id matters: the entry holds no message. */
    if (copy.state == STORE_Q_WAIT_PUBCOMP)
        copy.msg_id = 0;
    else if (copy.msg_id == 0)
        return -EINVAL;
    size_t vlen = rec_qentry_size(&copy);
    if (!(at = op_reserve(b, vlen)))
        return -ENOMEM;
    uint8_t *key = op_key(at);
    size_t klen = key_queue(key, b->store->hashkey, e->client_id, e->seq);
    rec_qentry_encode(key + klen, slice_make(key, klen), &copy);
    op_commit(b, at, (struct op_hdr){.op = OP_QUEUE_ADD, .key_len = (uint32_t)klen,
                                     .val_len = (uint32_t)vlen, .msg_id = copy.msg_id});
    return 0;
}

int
store_batch_queue_update(struct store_batch *b, struct slice client_id, uint64_t seq,
                         uint8_t state, uint16_t packet_id)
{
    uint8_t *at;

    if (!key_ok(client_id) || state > STORE_Q_WAIT_PUBCOMP)
        return -EINVAL;
    if (!(at = op_reserve(b, 0)))
        return -ENOMEM;
    size_t klen = key_queue(op_key(at), b->store->hashkey, client_id, seq);
    op_commit(b, at, (struct op_hdr){.op = OP_QUEUE_UPDATE, .state = state,
                                     .packet_id = packet_id, .key_len = (uint32_t)klen});
    return 0;
}

int
store_batch_queue_drop(struct store_batch *b, struct slice client_id, uint64_t seq)
{
    uint8_t *at;

    if (!key_ok(client_id))
        return -EINVAL;
    if (!(at = op_reserve(b, 0)))
        return -ENOMEM;
    size_t klen = key_queue(op_key(at), b->store->hashkey, client_id, seq);
    op_commit(b, at, (struct op_hdr){.op = OP_QUEUE_DROP, .key_len = (uint32_t)klen});
    return 0;
}

int
store_batch_qos2_add(struct store_batch *b, struct slice client_id, uint16_t packet_id)
{
    uint8_t *at;

    if (!key_ok(client_id))
        return -EINVAL;
    if (!(at = op_reserve(b, REC_QOS2_SIZE)))
        return -ENOMEM;
    uint8_t *key = op_key(at);
    size_t klen = key_qos2(key, b->store->hashkey, client_id, packet_id);
    rec_qos2_encode(key + klen, slice_make(key, klen));
    op_commit(b, at, (struct op_hdr){.op = OP_QOS2_ADD, .key_len = (uint32_t)klen,
                                     .val_len = REC_QOS2_SIZE});
    return 0;
}

int
store_batch_qos2_drop(struct store_batch *b, struct slice client_id, uint16_t packet_id)
{
    uint8_t *at;

    if (!key_ok(client_id))
        return -EINVAL;
    if (!(at = op_reserve(b, 0)))
        return -ENOMEM;
    size_t klen = key_qos2(op_key(at), b->store->hashkey, client_id, packet_id);
    op_commit(b, at, (struct op_hdr){.op = OP_QOS2_DROP, .key_len = (uint32_t)klen});
    return 0;
}

int
store_batch_retained_set(struct store_batch *b, struct slice topic, uint64_t msg_id)
{
    return store_batch_retained_set_seq(b, topic, msg_id, 0);
}

int
store_batch_retained_clear(struct store_batch *b, struct slice topic)
{
    return store_batch_retained_clear_seq(b, topic, 0);
}

int
store_batch_retained_set_seq(struct store_batch *b, struct slice topic, uint64_t msg_id,
                             uint64_t seq)
{
    uint8_t *at;

    if (!key_ok(topic) || msg_id == 0)
        return -EINVAL;
    if (!(at = op_reserve(b, REC_RETAINED_SIZE)))
        return -ENOMEM;
    uint8_t *key = op_key(at);
    size_t klen = key_retained(key, b->store->hashkey, topic);
    rec_retained_encode(key + klen, slice_make(key, klen), msg_id);
    op_commit(b, at, (struct op_hdr){.op = OP_RETAINED_SET, .key_len = (uint32_t)klen,
                                     .val_len = REC_RETAINED_SIZE, .msg_id = msg_id,
                                     .seq = seq});
    return 0;
}

int
store_batch_retained_clear_seq(struct store_batch *b, struct slice topic, uint64_t seq)
{
    uint8_t *at;

    if (!key_ok(topic))
        return -EINVAL;
    if (!(at = op_reserve(b, 0)))
        return -ENOMEM;
    size_t klen = key_retained(op_key(at), b->store->hashkey, topic);
    op_commit(b, at,
              (struct op_hdr){.op = OP_RETAINED_CLEAR, .key_len = (uint32_t)klen, .seq = seq});
    return 0;
}

int
store_batch_token_put(struct store_batch *b, const struct store_token *t)
{
    size_t vlen = rec_token_size(t);
    uint8_t *at;

    if (t->hash.len != STORE_TOKEN_HASH_LEN || t->actions == 0 || t->actions > 3 ||
        t->n_filters == 0 || t->n_filters > STORE_MAX_TOKEN_FILTERS || vlen == 0)
        return -EINVAL;
    for (uint32_t i = 0; i < t->n_filters; i++)
        if (t->filters[i].len == 0)
            return -EINVAL;
    if (!(at = op_reserve(b, vlen)))
        return -ENOMEM;
    uint8_t *key = op_key(at);
    memcpy(key, t->hash.p, STORE_TOKEN_HASH_LEN);
    rec_token_encode(key + STORE_TOKEN_HASH_LEN, slice_make(key, STORE_TOKEN_HASH_LEN), t);
    op_commit(b, at, (struct op_hdr){.op = OP_TOKEN_PUT, .key_len = STORE_TOKEN_HASH_LEN,
                                     .val_len = (uint32_t)vlen});
    return 0;
}

int
store_batch_token_del(struct store_batch *b, struct slice hash)
{
    uint8_t *at;

    if (hash.len != STORE_TOKEN_HASH_LEN)
        return -EINVAL;
    if (!(at = op_reserve(b, 0)))
        return -ENOMEM;
    memcpy(op_key(at), hash.p, STORE_TOKEN_HASH_LEN);
    op_commit(b, at, (struct op_hdr){.op = OP_TOKEN_DEL, .key_len = STORE_TOKEN_HASH_LEN});
    return 0;
}

uint64_t
store_msg_id_new(struct store *s)
{
    return atomic_fetch_add_explicit(&s->next_msg_id, 1, memory_order_relaxed);
}

uint64_t
store_retained_seq_new(struct store *s)
{
    return atomic_fetch_add_explicit(&s->next_rseq, 1, memory_order_relaxed);
}

int
store_submit(struct store *s, struct store_batch *b, store_done_fn *done, void *ctx)
{
    assert(b->store == s);
    pthread_mutex_lock(&s->q_lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->q_lock);
        return -ESHUTDOWN;
    }
    /* A batch alone is always taken, however big: otherwise it could never go. */
    if (s->q_n > 0 &&
        (s->q_n >= s->max_pending || s->q_bytes + b->ops.len > s->max_pending_bytes)) {
        pthread_mutex_unlock(&s->q_lock);
        return -EAGAIN;
    }
    b->done = done;
    b->ctx = ctx;
    b->rc = 0;
    b->next = NULL;
    *s->q_tail = b;
    s->q_tail = &b->next;
    s->q_n++;
    s->q_bytes += b->ops.len;
    if (s->q_n == 1)
        pthread_cond_signal(&s->q_cond);
    pthread_mutex_unlock(&s->q_lock);
    return 0;
}

void
store_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->batches_ok = atomic_load(&s->n_batches_ok);
    out->batches_failed = atomic_load(&s->n_batches_failed);
    out->commits = atomic_load(&s->n_commits);
    out->syncs = atomic_load(&s->n_syncs);
    out->ops_missing = atomic_load(&s->n_ops_missing);
    out->map_size = atomic_load(&s->n_map_size);
    pthread_mutex_lock(&s->q_lock);
    out->pending = s->q_n;
    pthread_mutex_unlock(&s->q_lock);
    /* The meta page LMDB reads here is updated atomically by the writer: any thread may ask. */
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &st) == 0)
        out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}
