/*
 * persist.c - the session layer's side of the durable store (src/store): what each hub writes
 * into its batch, holding replies until that batch has committed, and loading the store into
 * the hubs at start-up. See "Durability" in docs/design.md.
 *
 * Each hub fills one batch per loop iteration and submits it in hub_after before it flushes
 * its mailbox stages, so a batch that adds a queue entry reaches the storage thread before any
 * other hub can see the delivery and submit an update or a drop of that entry. The storage
 * thread commits batches in submission order and posts each completion back to the hub's
 * inbox (its own mailbox stage per hub), so a hub sees its completions in order and counts
 * them: the n-th OP_STORE_DONE is its batch number n.
 *
 * A client whose packet changed durable state has its output held (conn_hold) until the
 * batch holding that change commits (fsync'd with persistence_sync always): acknowledgements
 * leave in order and never before their state is committed. With periodic sync the wait is
 * short (no fsync) and is what keeps publishers from outrunning the storage thread. When a batch fails, the clients waiting for
 * it are disconnected without their held output: nothing they were about to be told is true.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "session/app.h"
#include "session/internal.h"

/* A session record written and deleted again to learn whether the disk has room. The control
 * character keeps it apart from any client ID a client would choose. */
#define PROBE_ID "\x01petrel-space-probe"
/* How long the storage thread may be behind before a hub waits for it (per try). */
#define SUBMIT_RETRY_US 1000

static int64_t
wall_now(void)
{
    return (int64_t)time(NULL);
}

static void
check(struct hub *h, int rc, const char *what)
{
    static struct log_ratelimit rl;

    (void)h;
    if (rc != 0 && log_ratelimit(&rl, 5))
        log_error("store: cannot record %s: %s", what, strerror(-rc));
}

bool
persist_sess(const struct session *s)
{
    return s->hub->batch && s->expiry > 0 && !s->is_dead;
}

size_t
persist_ops(const struct hub *h)
{
    return h->batch ? store_batch_ops(h->batch) : 0;
}

static struct slice
sess_key(const struct session *s)
{
    return slice_make(s->id, s->id_len);
}

/* ---- records ---- */

static uint64_t
msg_id(struct hub *h, struct msg *m)
{
    uint64_t id = atomic_load_explicit(&m->store_id, memory_order_acquire);

    if (id)
        return id;
    uint64_t fresh = store_msg_id_new(h->all->store);
    if (atomic_compare_exchange_strong_explicit(&m->store_id, &id, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    return id; /* another worker stored it first */
}

/* Put `m` into h's batch (once per batch: a fan-out stores it once). 0 or a negative errno. */
static int
put_msg(struct hub *h, struct msg *m, uint64_t *out)
{
    uint64_t id = msg_id(h, m);

    *out = id;
    if (h->put_msg_id == id && h->put_msg_gen == h->batch_gen)
        return 0;
    uint32_t left = msg_expiry_left(m, h->now);
    struct store_msg r = {
        .id = id,
        .topic = m->topic,
        .payload = m->payload,
        .props = m->props.raw,
        .qos = m->qos,
        .retain = m->retain,
        .expiry_at = m->expiry_at ? wall_now() + (int64_t)left : 0,
    };
    int rc = store_batch_msg_put(h->batch, &r);
    if (rc == 0) {
        h->put_msg_id = id;
        h->put_msg_gen = h->batch_gen;
    }
    return rc;
}

/* When the session's client went away, in wall time (0 while connected). The record can be
 * rewritten while it is offline (its delayed will fired): its expiry still counts from the
 * disconnect, so the time is derived from what is left of it, not taken as now. */
static int64_t
offline_since(const struct session *s)
{
    if (s->client)
        return 0;
    int64_t now = wall_now();
    if (s->expiry == SESS_EXPIRY_NEVER || !s->expire_at)
        return now; /* nothing counts from it */
    uint64_t left = s->expire_at > s->hub->now ? s->expire_at - s->hub->now : 0;
    uint64_t total = (uint64_t)s->expiry * 1000u;
    return now - (int64_t)((total > left ? total - left : 0) / 1000u);
}

static void
put_session(struct session *s)
{
    struct store_session r = {
        .client_id = sess_key(s),
        .version = s->version,
        .expiry = s->expiry,
        .offline_at = offline_since(s),
    };

    if (s->will) {
        r.has_will = true;
        r.will_qos = s->will->qos;
        r.will_retain = s->will->retain;
        r.will_delay = s->will_delay;
        r.will_topic = s->will->topic;
        r.will_payload = s->will->payload;
        r.will_props = s->will->props.raw;
    }
    check(s->hub, store_batch_session_put(s->hub->batch, &r), "a session");
}

static void
put_sub(struct session *s, struct slice filter, const struct sub_opts *o)
{
    struct store_sub r = {
        .client_id = sess_key(s),
        .filter = filter,
        .qos = o->qos,
        .no_local = o->no_local,
        .retain_as_published = o->retain_as_published,
        .retain_handling = o->retain_handling,
        .sub_id = o->sub_id,
    };
    check(s->hub, store_batch_sub_put(s->hub->batch, &r), "a subscription");
}

/* Write a queue entry for a delivery the owner already holds (a session that became durable). */
static void
put_delivery(struct session *s, struct delivery *d)
{
    struct hub *h = s->hub;
    uint64_t id = 0;

    if (d->msg && put_msg(h, d->msg, &id) != 0)
        return;
    d->seq = atomic_fetch_add_explicit(&h->all->next_qseq, 1, memory_order_relaxed);
    struct store_qentry e = {
        .client_id = sess_key(s),
        .seq = d->seq,
        .msg_id = d->msg ? id : 0,
        .qos = d->qos,
        .retain = d->retain,
        .shared = d->shared,
        .state = d->state,
        .packet_id = d->packet_id,
        .n_sub_ids = d->n_sub_ids,
        .sub_ids = d->sub_ids,
    };
    if (store_batch_queue_add(h->batch, &e) != 0)
        d->seq = 0;
}

void
persist_sess_update(struct session *s, bool was_durable)
{
    struct hub *h = s->hub;
    struct list *pos;

    if (!h->batch)
        return;
    bool now = persist_sess(s);
    atomic_store_explicit(&s->durable, now, memory_order_relaxed);
    if (!now) {
        if (was_durable)
            check(h, store_batch_session_del(h->batch, sess_key(s)), "a session end");
        return;
    }
    put_session(s);
    if (was_durable)
        return;
    /* It gains a record: everything it already has goes with it. */
    list_for_each(pos, &s->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        put_sub(s, slice_make(sub->filter, sub->filter_len), &sub->opts);
    }
    list_for_each(pos, &s->inflight)
    {
        put_delivery(s, list_entry(pos, struct delivery, link));
    }
    list_for_each(pos, &s->queue)
    {
        put_delivery(s, list_entry(pos, struct delivery, link));
    }
    for (uint32_t id = 1; s->qos2_in && id < 65536; id++) {
        if (s->qos2_in[id >> 3] & (1u << (id & 7)))
            check(h, store_batch_qos2_add(h->batch, sess_key(s), (uint16_t)id), "a QoS 2 id");
    }
}

void
persist_sess_del(struct session *s)
{
    struct hub *h = s->hub;

    if (!h->batch)
        return;
    atomic_store_explicit(&s->durable, false, memory_order_relaxed);
    check(h, store_batch_session_del(h->batch, sess_key(s)), "a session end");
}

void
persist_sub_put(struct session *s, struct slice filter, const struct sub_opts *opts)
{
    if (persist_sess(s))
        put_sub(s, filter, opts);
}

void
persist_sub_del(struct session *s, struct slice filter)
{
    if (persist_sess(s))
        check(s->hub, store_batch_sub_del(s->hub->batch, sess_key(s), filter), "an unsubscribe");
}

uint64_t
persist_enqueue(struct hub *h, struct session *to, struct msg *m, uint8_t qos, bool retain,
                bool shared, const uint32_t *sub_ids, uint32_t n_sub_ids)
{
    uint64_t id;
    int rc;

    if (!h->batch)
        return 0;
    if ((rc = put_msg(h, m, &id)) != 0) {
        check(h, rc, "a message");
        return 0;
    }
    uint64_t seq = atomic_fetch_add_explicit(&h->all->next_qseq, 1, memory_order_relaxed);
    struct store_qentry e = {
        .client_id = sess_key(to), /* fixed at creation: any hub may read it */
        .seq = seq,
        .msg_id = id,
        .qos = qos,
        .retain = retain,
        .shared = shared,
        .state = STORE_Q_QUEUED,
        .n_sub_ids = (uint8_t)(n_sub_ids > STORE_MAX_SUB_IDS ? STORE_MAX_SUB_IDS : n_sub_ids),
        .sub_ids = sub_ids,
    };
    if ((rc = store_batch_queue_add(h->batch, &e)) != 0) {
        check(h, rc, "a queued message");
        return 0;
    }
    return seq;
}

void
persist_delivery_update(struct session *s, const struct delivery *d)
{
    if (d->seq && persist_sess(s))
        check(s->hub,
              store_batch_queue_update(s->hub->batch, sess_key(s), d->seq, d->state, d->packet_id),
              "a delivery state");
}

void
persist_delivery_drop(struct session *s, uint64_t seq)
{
    if (seq && s->hub->batch)
        check(s->hub, store_batch_queue_drop(s->hub->batch, sess_key(s), seq), "a delivery end");
}

void
persist_qos2(struct session *s, uint16_t id, bool add)
{
    if (!persist_sess(s))
        return;
    int rc = add ? store_batch_qos2_add(s->hub->batch, sess_key(s), id)
                 : store_batch_qos2_drop(s->hub->batch, sess_key(s), id);
    check(s->hub, rc, "a QoS 2 id");
}

void
persist_retained(struct hub *h, struct msg *m)
{
    uint64_t id;
    int rc;

    /* $SYS and other broker topics are rebuilt at start-up, not stored. */
    if (!h->batch || (m->topic.len && m->topic.p[0] == '$'))
        return;
    /* Taken under the retained lock, like the change in memory: the store keeps the change
     * with the highest number, whichever hub's batch commits first. */
    uint64_t seq = store_retained_seq_new(h->all->store);
    if (m->payload.len == 0) {
        check(h, store_batch_retained_clear_seq(h->batch, m->topic, seq), "a retained clear");
        return;
    }
    if ((rc = put_msg(h, m, &id)) == 0)
        rc = store_batch_retained_set_seq(h->batch, m->topic, id, seq);
    check(h, rc, "a retained message");
}

/* ---- holding replies until their batch commits ---- */

/* Hold c's output until batches `first` .. `last` have committed (extending a hold already
 * in place; a failure of any of them ends the client, persist_on_done). */
static void
hold_through(struct client *c, uint64_t first, uint64_t last)
{
    if (!c->hold_first) {
        c->hold_first = first;
        list_push(&c->hub->held, &c->held_link);
        conn_hold(c->conn, true);
    }
    if (c->hold_last < last)
        c->hold_last = last;
}

void
persist_hold(struct client *c)
{
    struct hub *h = c->hub;

    if (h->batch && c->state != CLIENT_CLOSING)
        hold_through(c, h->batch_gen, h->batch_gen);
}

void
persist_fence(struct client *c)
{
    struct hub *h = c->hub;
    struct session *s = c->sess;

    if (!h->batch || h->all->n_hubs < 2)
        return;
    for (unsigned k = 0; k < h->all->n_hubs; k++) {
        struct hub *to = h->all->hubs[k];
        if (to == h)
            continue;
        struct hub_item *it = hub_post(h, to);
        it->op = OP_FENCE;
        it->sess = s;
        s->fence_acks++;
    }
    c->fence_wait = true;
    conn_hold(c->conn, true);
}

void
persist_on_fence(struct hub *h, struct hub_item *it)
{
    struct session *s = it->sess;

    if (it->op == OP_FENCE) {
        /* Items from one hub arrive in order: every delivery this hub posted for s before now
         * (with the flag it read then) reaches the owner before this answer. */
        struct hub_item *ack = hub_post(h, s->hub);
        ack->op = OP_FENCE_ACK;
        ack->sess = s;
        return;
    }
    if (--s->fence_acks > 0)
        return;
    struct client *c = s->client;
    if (!c || !c->fence_wait || c->state == CLIENT_CLOSING)
        return;
    c->fence_wait = false;
    /* The owner wrote an entry for each delivery that arrived without one, in the current
     * batch or in one submitted since the CONNECT (the CONNECT's own may have committed and
     * released the hold already): wait for the newest batch this hub has written. */
    uint64_t newest = store_batch_ops(h->batch) ? h->batch_gen : h->batch_gen - 1;
    if (newest > h->done_gen)
        hold_through(c, h->done_gen + 1, newest);
    else if (!c->hold_first)
        conn_hold(c->conn, false);
}

void
persist_forget(struct client *c)
{
    list_remove(&c->held_link);
    c->hold_first = c->hold_last = 0;
}

/* Storage thread: hand the completion to the hub that submitted the batch. */
static void
on_done(void *ctx, int rc)
{
    struct hub *h = ctx;
    struct mailbox_stage *st = &h->all->store_stages[h->index];

    if (!st->to)
        mailbox_stage_init(st, h->inbox);
    struct hub_item *it = mailbox_stage_slot(st);
    memset(it, 0, sizeof(*it));
    it->op = OP_STORE_DONE;
    it->rc = rc;
    mailbox_stage_flush(st);
}

void
persist_submit(struct hub *h)
{
    if (!h->batch || store_batch_ops(h->batch) == 0)
        return;
    for (;;) {
        int rc = store_submit(h->all->store, h->batch, on_done, h);
        if (rc == 0)
            break;
        if (rc == -EAGAIN) {
            /* The storage thread is behind by max_pending batches: waiting here slows this
             * worker's clients down, which is the back-pressure we want. */
            usleep(SUBMIT_RETRY_US);
            continue;
        }
        log_error("store: batch not submitted: %s", strerror(-rc));
        store_batch_free(h->batch);
        h->batch = store_batch_new(h->all->store);
        h->put_msg_id = 0; /* the message it held must be put again */
        return;
    }
    h->batch = store_batch_new(h->all->store);
    h->batch_gen++;
}

void
persist_on_done(struct hub *h, int rc)
{
    struct hubs *hs = h->all;
    uint64_t g = ++h->done_gen;
    struct list *pos, *tmp;

    h->probe_pending = false;
    if (rc == 0) {
        bool was_full = true;
        if (atomic_compare_exchange_strong(&hs->store_full, &was_full, false))
            log_notice("store: writes succeed again; durable publishes are accepted");
    } else {
        static struct log_ratelimit rl;
        if (!atomic_exchange(&hs->store_full, true) || log_ratelimit(&rl, 5))
            log_error("store: a batch failed: %s; QoS 1/2 publishes are refused until writes "
                      "succeed again",
                      strerror(-rc));
    }
    app_committed(h, g, rc);
    list_for_each_safe(pos, tmp, &h->held)
    {
        struct client *c = list_entry(pos, struct client, held_link);
        if (rc != 0 && c->hold_first <= g) {
            /* What it was about to be told did not commit: end it without a word (its held
             * output is discarded); it resends what was not acknowledged. */
            persist_forget(c);
            log_notice("store: closing client=%s, its state did not commit", client_id_str(c));
            c->state = CLIENT_CLOSING;
            conn_close(c->conn);
            continue;
        }
        if (c->hold_last <= g) {
            persist_forget(c);
            if (!c->fence_wait)
                conn_hold(c->conn, false);
        }
    }
}

void
persist_tick(struct hub *h)
{
    if (!h->batch || h->probe_pending || !atomic_load(&h->all->store_full))
        return;
    struct store_session r = {
        .client_id = slice_cstr(PROBE_ID),
        .version = MQTT_V311,
        .expiry = 1,
        .offline_at = wall_now(),
    };
    /* Writing needs free pages even when the net change is nothing. */
    if (store_batch_session_put(h->batch, &r) == 0 &&
        store_batch_session_del(h->batch, r.client_id) == 0)
        h->probe_pending = true;
}

/* ---- start-up ---- */

struct loaded_msg {
    uint64_t id;                  /* the key of the map below points here */
    struct msg *m;
};

struct load_ctx {
    struct hubs *hs;
    struct session *cur;          /* the session whose records are being visited */
    uint64_t now;                 /* monotonic ms */
    int64_t wall;
    struct map msgs;              /* message id -> struct loaded_msg, shared by entries */
    struct msg **wills;           /* wills of sessions that expired while we were down */
    struct slice *will_ids;       /* [n_wills]: the client ID each came from (owned bytes) */
    size_t n_wills;
    uint64_t max_seq;
};

static struct msg *
msg_from_record(const struct load_ctx *lc, const struct store_msg *r)
{
    struct mqtt_props props;
    const struct mqtt_props *pp = NULL;

    if (r->props.len) {
        if (mqtt_props_decode(r->props, MQTT_PUBLISH, false, &props) == 0)
            pp = &props;
        else
            log_warn("store: message id=%llu has properties that do not decode; dropped them",
                     (unsigned long long)r->id);
    }
    struct msg *m = msg_new(r->topic, r->payload, pp, r->qos, r->retain, 0, lc->now);
    if (!m)
        return NULL;
    /* Expiry continues in wall time [MQTT-3.3.2-5]. */
    if (r->expiry_at > lc->wall)
        m->expiry_at = lc->now + (uint64_t)(r->expiry_at - lc->wall) * 1000u;
    else
        m->expiry_at = r->expiry_at ? lc->now : 0; /* already due: expired at the next look */
    atomic_store_explicit(&m->store_id, r->id, memory_order_relaxed);
    return m;
}

static struct msg *
will_from_record(const struct load_ctx *lc, const struct store_session *r, uint64_t origin)
{
    struct mqtt_props props;
    const struct mqtt_props *pp = NULL;

    if (r->will_props.len && mqtt_props_decode(r->will_props, MQTT_CONNECT, true, &props) == 0)
        pp = &props;
    return msg_new(r->will_topic, r->will_payload, pp, r->will_qos, r->will_retain, origin,
                   lc->now);
}

static int
load_session(void *ctx, const struct store_session *r)
{
    struct load_ctx *lc = ctx;
    struct hubs *hs = lc->hs;
    struct hub *owner = hub_owner(hs->hubs[0], r->client_id);
    struct session *s = sess_load(owner, r->client_id, r->version);
    int64_t elapsed = r->offline_at && lc->wall > r->offline_at ? lc->wall - r->offline_at : 0;

    s->expiry = r->expiry;
    atomic_store_explicit(&s->durable, true, memory_order_relaxed);
    if (r->expiry != STORE_EXPIRY_NEVER) {
        int64_t left = (int64_t)r->expiry - elapsed;
        s->expire_at = lc->now + (left > 0 ? (uint64_t)left * 1000u : 0) + 1;
    }
    if (r->has_will && (s->will = will_from_record(lc, r, s->serial)) != NULL) {
        /* Its client is gone (the broker stopped or crashed while it was connected): the will
         * delay counts from when it went offline, or from now. */
        int64_t left = (int64_t)r->will_delay - elapsed;
        s->will_delay = r->will_delay;
        s->will_at = lc->now + (left > 0 ? (uint64_t)left * 1000u : 0) + 1;
    }
    list_push(&owner->offline, &s->offline_link);
    /* Connected when the broker died: offline from now on, also for the next restart. The
     * record goes into the owner's first batch. */
    if (!r->offline_at)
        persist_sess_update(s, true);
    lc->cur = s;
    return 0;
}

static struct session *
current(struct load_ctx *lc, struct slice client_id)
{
    if (lc->cur && slice_eq(slice_make(lc->cur->id, lc->cur->id_len), client_id))
        return lc->cur;
    return map_get(&lc->hs->hubs[0]->registry, client_id);
}

static int
load_sub(void *ctx, const struct store_sub *r)
{
    struct load_ctx *lc = ctx;
    struct session *s = current(lc, r->client_id);
    struct sub_opts o = {
        .qos = r->qos,
        .no_local = r->no_local,
        .retain_as_published = r->retain_as_published,
        .retain_handling = r->retain_handling,
        .sub_id = r->sub_id,
    };

    if (s)
        sess_load_sub(s, r->filter, &o);
    return 0;
}

static int
load_queue(void *ctx, const struct store_qentry *e, const struct store_msg *rm)
{
    struct load_ctx *lc = ctx;
    struct session *s = current(lc, e->client_id);
    struct msg *m = NULL;

    if (!s)
        return 0;
    if (e->seq > lc->max_seq)
        lc->max_seq = e->seq;
    if (rm) {
        struct loaded_msg *lm =
            map_get(&lc->msgs, slice_make((const char *)&rm->id, sizeof(rm->id)));
        if (!lm) {
            if (!(m = msg_from_record(lc, rm)))
                return -ENOMEM;
            lm = xmalloc(sizeof(*lm));
            lm->id = rm->id;
            lm->m = m;
            map_put(&lc->msgs, slice_make((const char *)&lm->id, sizeof(lm->id)), lm);
        }
        m = lm->m;
    }
    uint32_t n_ids = e->n_sub_ids > MAX_SUB_IDS ? MAX_SUB_IDS : e->n_sub_ids;
    struct delivery *d = xmalloc(sizeof(*d) + n_ids * sizeof(uint32_t));
    list_init(&d->link);
    d->msg = m ? msg_ref(m) : NULL;
    d->packet_id = e->packet_id;
    d->qos = e->qos;
    d->state = e->state;
    d->retain = e->retain;
    d->shared = e->shared;
    d->n_sub_ids = (uint8_t)n_ids;
    d->seq = e->seq;
    if (n_ids)
        memcpy(d->sub_ids, e->sub_ids, n_ids * sizeof(uint32_t));
    if (d->state == DLV_QUEUED) {
        list_push(&s->queue, &d->link);
        s->n_queued++;
        s->queued_bytes += msg_size(m);
        sess_queue_changed(s);
    } else {
        /* Sent before the restart: resent with DUP=1 (PUBREL for WAIT_PUBCOMP) when the
         * client comes back, with the same packet id [MQTT-4.4.0-1]. */
        list_push(&s->inflight, &d->link);
        s->n_inflight++;
        if (d->msg)
            s->inflight_bytes += msg_size(m);
    }
    return 0;
}

static int
load_qos2(void *ctx, struct slice client_id, uint16_t id)
{
    struct load_ctx *lc = ctx;
    struct session *s = current(lc, client_id);

    if (s)
        qos2_mark(s, id);
    return 0;
}

static int
load_retained(void *ctx, const struct store_msg *r)
{
    struct load_ctx *lc = ctx;
    struct msg *m = msg_from_record(lc, r);

    if (!m)
        return -ENOMEM;
    retain_set(&lc->hs->retained, m);
    msg_unref(m);
    return 0;
}

static int
load_token(void *ctx, const struct store_token *r)
{
    struct load_ctx *lc = ctx;

    persist_token_restore(lc->hs, r, lc->wall);
    return 0;
}

/* A session with a will keeps its record until the will's deliveries are in a batch with
 * its deletion (route_expired_wills). */
static bool
load_expired(void *ctx, const struct store_session *r)
{
    struct load_ctx *lc = ctx;

    if (!r->has_will)
        return false;
    struct msg *m = will_from_record(lc, r, 0);
    if (!m)
        return false;
    lc->wills = xrealloc(lc->wills, (lc->n_wills + 1) * sizeof(*lc->wills));
    lc->will_ids = xrealloc(lc->will_ids, (lc->n_wills + 1) * sizeof(*lc->will_ids));
    lc->will_ids[lc->n_wills] =
        slice_make(xstrndup(r->client_id.p, r->client_id.len), r->client_id.len);
    lc->wills[lc->n_wills++] = m;
    return true;
}

/* Wills of sessions that expired while the broker was down are due now [MQTT-3.1.2-8]: routed
 * once every session and subscription is back, on hub 0, each with its session's deletion in
 * the same batch. That batch is submitted here, before any loop runs, so it commits before
 * anything a client does (a new session of the same ID included). */
static void
route_expired_wills(struct hubs *hs, struct load_ctx *lc, bool route)
{
    struct hub *h = hs->hubs[0];

    for (size_t i = 0; i < lc->n_wills; i++) {
        if (route) {
            hub_route(h, NULL, lc->wills[i]);
            check(h, store_batch_session_del(h->batch, lc->will_ids[i]),
                  "an expired session");
        }
        msg_unref(lc->wills[i]);
        free((void *)lc->will_ids[i].p);
    }
    free(lc->wills);
    free(lc->will_ids);
    if (route)
        persist_submit(h);
}

int
hubs_open_store(struct hubs *hs, char *err, size_t err_len)
{
    const struct config *cfg = hs->cfg;
    const char *dir = cfg->persistence_location ? cfg->persistence_location : "petrel-data";
    struct store_options o = {
        .dir = dir,
        .sync = cfg->persistence_sync_periodic ? STORE_SYNC_PERIODIC : STORE_SYNC_ALWAYS,
        .sync_period_ms = cfg->persistence_sync_ms,
        .max_size = cfg->persistence_max_size,
        .move_aside = cfg->persistence_move_aside,
    };
    uint64_t t0 = clock_now_ms();
    struct store_load_stats st;

    if (!cfg->persistence)
        return 0;
    if (store_open(&o, &hs->store, err, err_len) != 0)
        return -1;
    hs->sync_always = !cfg->persistence_sync_periodic;
    hs->store_stages = xcalloc(hs->n_hubs, sizeof(*hs->store_stages));
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        struct hub *h = hs->hubs[k];
        h->batch = store_batch_new(hs->store);
        h->batch_gen = 1;
    }

    struct load_ctx lc = {.hs = hs, .now = clock_now_ms(), .wall = wall_now()};
    struct store_visitor v = {
        .ctx = &lc,
        .on_session = load_session,
        .on_sub = load_sub,
        .on_queue = load_queue,
        .on_qos2 = load_qos2,
        .on_retained = load_retained,
        .on_expired_session = load_expired,
        .on_token = load_token,
    };
    map_init(&lc.msgs);
    int rc = store_load(hs->store, &v, &st);
    size_t pos = 0;
    struct loaded_msg *lm;
    while ((lm = map_next(&lc.msgs, &pos)) != NULL) {
        msg_unref(lm->m);
        free(lm);
    }
    map_fini(&lc.msgs);
    atomic_store(&hs->next_qseq, lc.max_seq + 1);
    /* With drop_oldest a queue holds at most its limits: a crash between the batch that added
     * a message and the owner's batch that dropped the oldest for it leaves one too many, and
     * the limits may have been lowered. */
    for (unsigned k = 0; rc == 0 && k < hs->n_hubs && hs->hubs[k]->limits.drop_oldest; k++) {
        struct list *it;
        list_for_each(it, &hs->hubs[k]->offline)
        {
            sess_queue_trim(list_entry(it, struct session, offline_link));
        }
    }
    route_expired_wills(hs, &lc, rc == 0);
    if (rc != 0) {
        snprintf(err, err_len, "%s: cannot load the store: %s", dir,
                 rc < 0 ? strerror(-rc) : "stopped");
        return -1;
    }
    persist_tokens_attach(hs);
    log_notice("persistence location=%s sync=%s sessions=%llu subscriptions=%llu queued=%llu "
               "retained=%llu expired_sessions=%llu tokens=%llu startup_ms=%llu",
               dir, hs->sync_always ? "always" : "periodic", (unsigned long long)st.n_sessions,
               (unsigned long long)st.n_subs, (unsigned long long)st.n_queued,
               (unsigned long long)st.n_retained, (unsigned long long)st.n_expired_sessions,
               (unsigned long long)st.n_tokens, (unsigned long long)(clock_now_ms() - t0));
    return 0;
}

void
hubs_close_store(struct hubs *hs)
{
    if (!hs || !hs->store)
        return;
    /* The loops have stopped: what the last closes wrote goes in now. */
    persist_tokens_detach(hs);
    for (unsigned k = 0; k < hs->n_hubs; k++)
        persist_submit(hs->hubs[k]);
    store_close(hs->store);
    hs->store = NULL;
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        store_batch_free(hs->hubs[k]->batch);
        hs->hubs[k]->batch = NULL; /* from here on nothing is written */
    }
    for (unsigned k = 0; k < hs->n_hubs; k++)
        mailbox_stage_fini(&hs->store_stages[k]);
    free(hs->store_stages);
    hs->store_stages = NULL;
}
