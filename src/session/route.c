/*
 * route.c - who receives a message, and handing it to them.
 *
 * P2P topics go straight to the target session by one table lookup; the trie is never walked
 * for them, so their cost does not grow with the number of subscriptions, and no wildcard or
 * shared subscription can see them. Other topics are matched in the trie; a session matched by
 * several of its subscriptions gets the message once, at the highest granted QoS, with every
 * matching subscription identifier [MQTT-3.3.4-3, MQTT-3.3.4-5].
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

static struct target *
add_target(struct route_ctx *rc, struct session *s, const struct sub_opts *opts)
{
    struct hub *h = rc->hub;
    struct target *t;

    if (s->match_epoch == h->match_epoch) {
        t = &h->targets[s->match_slot];
    } else {
        if (h->n_targets == h->cap_targets) {
            h->cap_targets = h->cap_targets ? h->cap_targets * 2 : 64;
            h->targets = xrealloc(h->targets, h->cap_targets * sizeof(*h->targets));
        }
        s->match_epoch = h->match_epoch;
        s->match_slot = (uint32_t)h->n_targets;
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
    if (opts->sub_id && t->n_sub_ids < sizeof(t->sub_ids) / sizeof(t->sub_ids[0]))
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

    /* One member per message, round robin, preferring connected members so that a member that
     * is gone does not swallow the message. */
    for (uint32_t i = 0; i < n && trie_group_next(g, &owner, &opts); i++) {
        struct session *s = owner;
        if (s->client && s->client->state == CLIENT_CONNECTED) {
            add_target(rc, s, opts)->shared = true;
            return;
        }
        if (!fallback) {
            fallback = owner;
            fallback_opts = opts;
        }
    }
    if (fallback)
        add_target(rc, fallback, fallback_opts)->shared = true;
}

/* The target's own subscriptions that match its P2P topic decide QoS and identifiers. */
static void
route_p2p(struct route_ctx *rc, struct session *target)
{
    struct hub *h = rc->hub;
    struct list *pos;
    bool matched = false;

    list_for_each(pos, &target->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        if (sub->is_shared)
            continue;
        if (mqtt_topic_match(slice_make(sub->filter, sub->filter_len), rc->msg->topic)) {
            add_target(rc, target, &sub->opts);
            matched = true;
        }
    }
    if (!matched) {
        struct sub_opts direct = {.qos = h->cfg->maximum_qos};
        add_target(rc, target, &direct);
    }
}

/* Hand the message to every collected target. Returns how many there were. */
static size_t
deliver_targets(struct hub *h, struct msg *m)
{
    size_t n = h->n_targets;

    for (size_t i = 0; i < n; i++) {
        struct target *t = &h->targets[i];
        sess_deliver(t->sess, m, t->qos, t->retain, t->sub_ids, t->n_sub_ids, t->shared);
    }
    return n;
}

int
hub_route(struct hub *h, struct session *from, struct msg *m)
{
    struct route_ctx rc = {.hub = h, .msg = m, .origin = from ? from->serial : 0};
    struct slice parent, target_id;
    enum p2p_kind kind = p2p_classify(&h->p2p, m->topic, &parent, &target_id);

    h->match_epoch++;
    h->n_targets = 0;
    if (kind == P2P_REFUSED) {
        h->stats.p2p_refused++;
        return MQTT_RC_TOPIC_NAME_INVALID;
    }
    if (kind == P2P_DIRECT) {
        struct session *target = sess_find(h, target_id);
        if (!target) {
            h->stats.p2p_dropped++;
            log_debug("p2p dropped, no such client sender=%s target=%.*s",
                      from ? from->id : "-", SLICE_FMT(target_id));
            return MQTT_RC_NO_MATCHING_SUBSCRIBERS;
        }
        route_p2p(&rc, target);
        h->stats.p2p_routed++;
        if (!target->client)
            h->stats.p2p_queued++;
    } else {
        /* A retained message is stored even when nobody matches now [MQTT-3.3.1-5]. */
        if (m->retain)
            retain_set(&h->retained, m);
        struct trie_visitor v = {.on_sub = on_sub, .on_group = on_group, .ctx = &rc};
        trie_match(h->trie, m->topic, &v);
    }
    return deliver_targets(h, m) ? MQTT_RC_SUCCESS : MQTT_RC_NO_MATCHING_SUBSCRIBERS;
}

void
hub_reroute_shared(struct hub *h, struct session *dead, struct msg *m)
{
    struct route_ctx rc = {.hub = h, .msg = m, .origin = 0, .only_groups_of = dead};
    struct trie_visitor v = {.on_sub = NULL, .on_group = on_group, .ctx = &rc};

    h->match_epoch++;
    h->n_targets = 0;
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
    sess_deliver(rc->sess, m, qos, true, &rc->opts->sub_id, n_ids, false);
}

void
hub_send_retained(struct hub *h, struct session *s, struct slice filter,
                  const struct sub_opts *opts)
{
    struct retained_ctx rc = {.hub = h, .sess = s, .opts = opts};

    retain_match(&h->retained, filter, send_one_retained, &rc);
}
