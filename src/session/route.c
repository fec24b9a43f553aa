/*
 * route.c - who receives a message, and handing it to them.
 *
 * P2P topics go straight to the target session by one table lookup; the trie is never walked
 * for them, so their cost does not grow with the number of subscriptions, and no wildcard or
 * shared subscription can see them. Other topics are matched in the trie; a session matched by
 * several of its subscriptions gets the message once, at the highest granted QoS, with every
 * matching subscription identifier [MQTT-3.3.4-3, MQTT-3.3.4-5].
 *
 * A QoS 1/2 message that matched someone but that every target refused because its queue was
 * full is reported as MQTT_RC_QUOTA_EXCEEDED, which an MQTT 5 publisher gets on its PUBACK or
 * PUBREC (0x97, [MQTT-3.4.2-1], [MQTT-3.5.2-1]). For targets on other hubs the publisher's hub
 * decides from their `full` flag and posts nothing to a full one, so the reply and the drop
 * agree.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "mqtt/topic.h"
#include "session/internal.h"

struct route_ctx {
    struct hub *hub;
    struct msg *msg;
    uint64_t origin;
    struct session *only_groups_of; /* re-routing: only groups this session belonged to */
};

static uint8_t
granted_qos(const struct hub *h, const struct msg *m, uint8_t sub_qos)
{
    if (h->cfg->upgrade_outgoing_qos)
        return sub_qos;
    return m->qos < sub_qos ? m->qos : sub_qos; /* [MQTT-3.8.4-8] */
}

/* The slot of `s` in this message's target list, or -1 (open addressing keyed by pointer;
 * a generation number per slot makes clearing free between messages). */
static struct target *
find_target(struct hub *h, struct session *s, size_t *hash_slot)
{
    struct target_index *ti = &h->tindex;
    size_t mask = ti->cap - 1;
    size_t i = (size_t)(((uintptr_t)s >> 4) * 0x9E3779B97F4A7C15ull >> 20) & mask;

    while (ti->gens[i] == ti->gen) {
        if (ti->keys[i] == s)
            return &h->targets[ti->slots[i]];
        i = (i + 1) & mask;
    }
    *hash_slot = i;
    return NULL;
}

static void
grow_index(struct hub *h)
{
    struct target_index *ti = &h->tindex;

    free(ti->keys);
    free(ti->slots);
    free(ti->gens);
    ti->cap = ti->cap ? ti->cap * 2 : 128;
    ti->keys = xcalloc(ti->cap, sizeof(*ti->keys));
    ti->slots = xcalloc(ti->cap, sizeof(*ti->slots));
    ti->gens = xcalloc(ti->cap, sizeof(*ti->gens));
    ti->gen = 1;
    /* Re-index the targets collected so far. */
    for (size_t k = 0; k < h->n_targets; k++) {
        size_t slot = 0;
        find_target(h, h->targets[k].sess, &slot);
        ti->keys[slot] = h->targets[k].sess;
        ti->slots[slot] = (uint32_t)k;
        ti->gens[slot] = ti->gen;
    }
}

static void
begin_targets(struct hub *h)
{
    h->n_targets = 0;
    if (h->tindex.cap == 0)
        grow_index(h);
    else
        h->tindex.gen++;
}

static struct target *
add_target(struct route_ctx *rc, struct session *s, const struct sub_opts *opts)
{
    struct hub *h = rc->hub;
    size_t slot = 0;
    struct target *t = find_target(h, s, &slot);

    if (!t) {
        if ((h->n_targets + 1) * 2 > h->tindex.cap) {
            grow_index(h);
            find_target(h, s, &slot);
        }
        if (h->n_targets == h->cap_targets) {
            h->cap_targets = h->cap_targets ? h->cap_targets * 2 : 64;
            h->targets = xrealloc(h->targets, h->cap_targets * sizeof(*h->targets));
        }
        h->tindex.keys[slot] = s;
        h->tindex.slots[slot] = (uint32_t)h->n_targets;
        h->tindex.gens[slot] = h->tindex.gen;
        t = &h->targets[h->n_targets++];
        t->sess = s;
        t->qos = 0;
        t->retain = false;
        t->shared = false;
        t->n_sub_ids = 0;
    }
    uint8_t qos = granted_qos(h, rc->msg, opts->qos);
    if (qos > t->qos)
        t->qos = qos;
    /* Retain As Published keeps the flag; otherwise it is cleared on live delivery
     * [MQTT-3.3.1-12, MQTT-3.3.1-13]. */
    if (opts->retain_as_published && rc->msg->retain)
        t->retain = true;
    if (opts->sub_id && t->n_sub_ids < MAX_SUB_IDS)
        t->sub_ids[t->n_sub_ids++] = opts->sub_id;
    return t;
}

static void
on_sub(void *ctx, void *owner, const struct sub_opts *opts)
{
    struct route_ctx *rc = ctx;
    struct session *s = owner;

    /* No Local: never back to the publishing session [MQTT-3.8.3-3]. */
    if (opts->no_local && s->serial == rc->origin)
        return;
    add_target(rc, s, opts);
}

/* Was `dead` a member of a group named like `g` whose filter matches the message? */
static bool
was_member(struct session *dead, struct trie_group *g, struct slice topic)
{
    struct list *pos;
    struct slice name = trie_group_name(g), group, inner;

    list_for_each(pos, &dead->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        if (sub->is_shared &&
            mqtt_shared_split(slice_make(sub->filter, sub->filter_len), &group, &inner) == 1 &&
            slice_eq(group, name) && mqtt_topic_match(inner, topic))
            return true;
    }
    return false;
}

static void
on_group(void *ctx, struct trie_group *g)
{
    struct route_ctx *rc = ctx;
    if (rc->only_groups_of && !was_member(rc->only_groups_of, g, rc->msg->topic))
        return;
    uint32_t n = trie_group_size(g);
    void *owner, *fallback = NULL;
    const struct sub_opts *opts, *fallback_opts = NULL;
    bool fallback_online = false;

    /* One member per message, round robin, preferring connected members with room in their
     * queue so that a member that is gone or full does not swallow the message. */
    for (uint32_t i = 0; i < n && trie_group_next(g, &owner, &opts); i++) {
        struct session *s = owner;
        bool online = atomic_load_explicit(&s->online, memory_order_relaxed);
        if (online && !atomic_load_explicit(&s->full, memory_order_relaxed)) {
            add_target(rc, s, opts)->shared = true;
            return;
        }
        if (!fallback || (online && !fallback_online)) {
            fallback = owner;
            fallback_opts = opts;
            fallback_online = online;
        }
    }
    if (fallback)
        add_target(rc, fallback, fallback_opts)->shared = true;
}

int
hub_deliver_p2p(struct hub *h, struct session *s, struct msg *m, uint64_t seq)
{
    struct list *pos;
    bool matched = false, retain = false;
    uint8_t qos = 0;
    uint32_t ids[MAX_SUB_IDS], n_ids = 0;

    /* The target's own P2P subscriptions matching the topic decide QoS and identifiers, so a
     * client subscribed to its own P2P topic gets the message once, as that subscription
     * says. Other filters ('#', "app/#") never see P2P messages. Without one, the publish QoS
     * holds. */
    list_for_each(pos, &s->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        struct slice filter = slice_make(sub->filter, sub->filter_len);
        if (sub->is_shared || !p2p_filter_is_p2p(&h->p2p, filter) ||
            !mqtt_topic_match(filter, m->topic))
            continue;
        uint8_t q = granted_qos(h, m, sub->opts.qos);
        if (!matched || q > qos)
            qos = q;
        matched = true;
        retain = retain || (sub->opts.retain_as_published && m->retain);
        if (sub->opts.sub_id && n_ids < MAX_SUB_IDS)
            ids[n_ids++] = sub->opts.sub_id;
    }
    if (!matched) {
        qos = m->qos < h->cfg->maximum_qos ? m->qos : h->cfg->maximum_qos;
    } else if (seq) {
        /* The publisher's hub wrote the entry as if there were no subscription: this one
         * replaces it with what the subscription says. */
        persist_delivery_drop(s, seq);
        seq = 0;
    }
    return sess_deliver(s, m, qos, retain, ids, n_ids, false, seq);
}

/* A QoS 1/2 delivery to `s`, owned by another hub, that its owner would refuse as full: it
 * is counted here and not posted. */
static bool
refuse_full(struct hub *h, struct session *s, uint8_t qos)
{
    if (qos == 0 || !atomic_load_explicit(&s->full, memory_order_relaxed))
        return false;
    h->stats.dropped_queue_full++;
    h->stats.msgs_dropped++;
    return true;
}

/* Hand the message to every collected target: directly when this hub owns the session, else
 * through the owner's mailbox. Returns MQTT_RC_NO_MATCHING_SUBSCRIBERS (no target),
 * MQTT_RC_QUOTA_EXCEEDED (every target refused it as full) or MQTT_RC_SUCCESS. */
static int
deliver_targets(struct hub *h, struct msg *m)
{
    size_t n = h->n_targets, n_full = 0;
    uint32_t n_posted = 0;

    for (size_t i = 0; i < n; i++) {
        struct target *t = &h->targets[i];
        if (t->sess->hub == h) {
            if (sess_deliver(t->sess, m, t->qos, t->retain, t->sub_ids, t->n_sub_ids, t->shared,
                             0) == MQTT_RC_QUOTA_EXCEEDED)
                n_full++;
            continue;
        }
        if (refuse_full(h, t->sess, t->qos)) {
            n_full++;
            continue;
        }
        /* A durable target on another hub: this hub writes the message and the entry in its
         * own batch, so the publisher's acknowledgement can wait for this hub's commit only;
         * the owner later updates or drops the entry by its seq. */
        uint64_t seq = 0;
        if (t->qos > 0 && atomic_load_explicit(&t->sess->durable, memory_order_relaxed))
            seq = persist_enqueue(h, t->sess, m, t->qos, t->retain, t->shared, t->sub_ids,
                                  t->n_sub_ids);
        struct hub_item *it = hub_post(h, t->sess->hub);
        it->op = OP_DELIVER;
        it->seq = seq;
        it->sess = t->sess;
        it->qos = t->qos;
        it->retain = t->retain;
        it->shared = t->shared;
        it->n_sub_ids = (uint8_t)t->n_sub_ids;
        it->u.deliver.msg = m;
        memcpy(it->u.deliver.sub_ids, t->sub_ids, t->n_sub_ids * sizeof(uint32_t));
        n_posted++;
    }
    /* One reference per item, taken at once: the items leave at the end of the iteration and
     * the caller's reference keeps `m` alive until then. Other workers drop theirs at once
     * too (hub_drop_msg), so a fan-out costs two atomic operations per receiving worker, not
     * two per receiver on a cache line that both workers write. */
    if (n_posted)
        msg_ref_n(m, n_posted);
    if (n == 0)
        return MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    return n_full == n ? MQTT_RC_QUOTA_EXCEEDED : MQTT_RC_SUCCESS;
}

/* A P2P message to the session named `target_id`: one lookup, no trie. */
static int
route_p2p(struct hub *h, struct session *from, struct msg *m, struct slice target_id)
{
    struct session *target = sess_find(h, target_id);
    int rc = MQTT_RC_SUCCESS;

    if (!target) {
        h->stats.p2p_dropped++;
        log_debug("p2p dropped, no such client sender=%s target=%.*s", from ? from->id : "-",
                  SLICE_FMT(target_id));
        return MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    }
    if (target->hub == h) {
        if (hub_deliver_p2p(h, target, m, 0) == MQTT_RC_QUOTA_EXCEEDED)
            rc = MQTT_RC_QUOTA_EXCEEDED;
    } else {
        /* Judged at the publish QoS: the target's own subscriptions, which may lower it, are
         * known only to its owner. */
        uint8_t qos = m->qos < h->cfg->maximum_qos ? m->qos : h->cfg->maximum_qos;
        if (refuse_full(h, target, qos))
            return MQTT_RC_QUOTA_EXCEEDED;
        struct hub_item *it = hub_post(h, target->hub);
        if (qos > 0 && atomic_load_explicit(&target->durable, memory_order_relaxed))
            it->seq = persist_enqueue(h, target, m, qos, false, false, NULL, 0);
        it->op = OP_DELIVER_P2P;
        it->sess = target;
        it->u.deliver.msg = msg_ref(m);
    }
    if (rc == MQTT_RC_SUCCESS) {
        h->stats.p2p_routed++;
        if (!atomic_load_explicit(&target->online, memory_order_relaxed))
            h->stats.p2p_queued++;
    }
    return rc;
}

int
hub_route(struct hub *h, struct session *from, struct msg *m)
{
    struct route_ctx rc = {.hub = h, .msg = m, .origin = from ? from->serial : 0};
    struct slice parent, target_id;
    enum p2p_kind kind = p2p_classify(&h->p2p, m->topic, &parent, &target_id);

    begin_targets(h);
    if (kind == P2P_REFUSED) {
        h->stats.p2p_refused++;
        return MQTT_RC_TOPIC_NAME_INVALID;
    }
    if (kind == P2P_DIRECT)
        return route_p2p(h, from, m, target_id);
    /* A retained message is stored even when nobody matches now [MQTT-3.3.1-5]. */
    if (m->retain) {
        pthread_mutex_lock(&h->all->retained_lock);
        retain_set(&h->all->retained, m);
        /* Into this hub's batch, numbered under the lock: two hubs changing one topic at
         * the same moment leave on disk the change that is in memory, whichever batch
         * commits first ("Durability" in docs/design.md). */
        persist_retained(h, m);
        pthread_mutex_unlock(&h->all->retained_lock);
    }
    struct trie_visitor v = {.on_sub = on_sub, .on_group = on_group, .ctx = &rc};
    trie_match(h->trie, m->topic, &v);
    int result = deliver_targets(h, m);
    /* A retained message was taken even if no queue had room: later subscribers get it. */
    return result == MQTT_RC_QUOTA_EXCEEDED && m->retain ? MQTT_RC_SUCCESS : result;
}

void
hub_reroute_shared(struct hub *h, struct session *dead, struct msg *m)
{
    struct route_ctx rc = {.hub = h, .msg = m, .origin = 0, .only_groups_of = dead};
    struct trie_visitor v = {.on_sub = NULL, .on_group = on_group, .ctx = &rc};

    begin_targets(h);
    trie_match(h->trie, m->topic, &v);
    deliver_targets(h, m);
}

struct retained_ctx {
    struct hub *hub;
    struct session *sess;
    const struct sub_opts *opts;
};

static void
send_one_retained(void *ctx, struct msg *m)
{
    struct retained_ctx *rc = ctx;
    uint8_t qos = granted_qos(rc->hub, m, rc->opts->qos);
    uint32_t n_ids = rc->opts->sub_id ? 1 : 0;

    /* Sent because of a new subscription: the retain flag is set [MQTT-3.3.1-8]. */
    sess_deliver(rc->sess, m, qos, true, &rc->opts->sub_id, n_ids, false, 0);
}

void
hub_send_retained(struct hub *h, struct session *s, struct slice filter,
                  const struct sub_opts *opts)
{
    struct retained_ctx rc = {.hub = h, .sess = s, .opts = opts};

    pthread_mutex_lock(&h->all->retained_lock);
    retain_match(&h->all->retained, filter, send_one_retained, &rc);
    pthread_mutex_unlock(&h->all->retained_lock);
}
