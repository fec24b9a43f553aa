/*
 * session.c - sessions: the state named by a client ID, its subscriptions and its will, and
 * the replicas of them that other hubs keep.
 *
 * A session lives from the CONNECT that creates it until it ends:
 *   connected --client gone, expiry 0--> ended
 *   connected --client gone, expiry > 0--> offline --reconnect--> connected
 *                                           \--expiry passes--> ended
 *   ended --every other hub answered OP_SESS_PURGE--> freed
 * A pending will is published when the will delay passes or the session ends, whichever comes
 * first [MQTT-3.1.3-9]; a reconnect before that cancels it.
 *
 * Replicas: every change to the registry or to a session's subscriptions is applied to the
 * owner's structures at once and posted to every other hub, which applies it to its replica.
 * Items from one hub arrive in order, so a replica never sees a subscription of a session it
 * has already forgotten, and once the owner holds every OP_PURGE_ACK no other hub can still
 * post work for that session.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "mqtt/topic.h"
#include "session/internal.h"

struct session *
sess_find(struct hub *h, struct slice id)
{
    return map_get(&h->registry, id);
}

static void
post_to_replicas(struct session *s, enum hub_op op, struct slice filter,
                 const struct sub_opts *opts)
{
    struct hub *h = s->hub;

    for (unsigned k = 0; k < h->all->n_hubs; k++) {
        struct hub *to = h->all->hubs[k];
        if (to == h)
            continue;
        struct hub_item *it = hub_post(h, to);
        it->op = (uint8_t)op;
        it->sess = s;
        if (op == OP_SUB_ADD || op == OP_SUB_DEL) {
            it->u.sub.filter = xstrndup(filter.p, filter.len);
            it->u.sub.len = filter.len;
            if (opts)
                it->u.sub.opts = *opts;
        }
    }
}

static struct session *
new_session(struct hub *h, struct slice id, uint8_t version)
{
    /* The ID lives in the same block: one allocation less per session. */
    struct session *s = xcalloc(1, sizeof(*s) + id.len + 1);

    s->id = (char *)(s + 1);
    if (id.len)
        memcpy(s->id, id.p, id.len);
    s->id_len = id.len;
    s->serial = atomic_fetch_add_explicit(&h->all->next_serial, 1, memory_order_relaxed) + 1;
    s->hub = h;
    atomic_init(&s->online, false);
    atomic_init(&s->durable, false);
    atomic_init(&s->full, false);
    s->version = version;
    s->next_packet_id = 1;
    list_init(&s->offline_link);
    list_init(&s->subs);
    map_init(&s->sub_index);
    list_init(&s->queue);
    list_init(&s->inflight);
    h->stats.n_sessions++;
    return s;
}

struct session *
sess_create(struct hub *h, struct slice id, uint8_t version)
{
    struct session *s = new_session(h, id, version);

    map_put(&h->registry, slice_make(s->id, s->id_len), s);
    post_to_replicas(s, OP_SESS_ADD, slice_make(NULL, 0), NULL);
    return s;
}

struct session *
sess_load(struct hub *h, struct slice id, uint8_t version)
{
    struct session *s = new_session(h, id, version);

    /* No loop runs yet: every replica is filled directly, no mailbox needed. */
    for (unsigned k = 0; k < h->all->n_hubs; k++)
        map_put(&h->all->hubs[k]->registry, slice_make(s->id, s->id_len), s);
    return s;
}

/* A new subscription record in the session's list and index (not in any trie). */
static struct sub *
sub_add(struct session *s, struct slice filter, bool is_shared)
{
    struct sub *sub = xmalloc(sizeof(*sub) + filter.len + 1);

    memcpy(sub->filter, filter.p, filter.len);
    sub->filter[filter.len] = '\0';
    sub->filter_len = filter.len;
    sub->is_shared = is_shared;
    list_push(&s->subs, &sub->link);
    map_put(&s->sub_index, slice_make(sub->filter, sub->filter_len), sub);
    s->n_subs++;
    return sub;
}

void
sess_load_sub(struct session *s, struct slice filter, const struct sub_opts *opts)
{
    struct slice group, inner;
    struct sub *sub = sub_add(s, filter, mqtt_shared_split(filter, &group, &inner) == 1);

    sub->opts = *opts;
    for (unsigned k = 0; k < s->hub->all->n_hubs; k++)
        trie_insert(s->hub->all->hubs[k]->trie, filter, s, opts);
}

static void
free_deliveries(struct list *l)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, l)
    {
        delivery_free(list_entry(pos, struct delivery, link));
    }
}

/* Give undelivered messages that came through shared subscriptions to another member of
 * their group (MQTT 5 section 4.8.2): queued ones, and QoS 1 ones sent but not acknowledged.
 * A QoS 2 message already sent goes to nobody else [MQTT-4.8.2-5]. */
static void
reroute_shared(struct session *s, struct list *l)
{
    struct list *pos;

    list_for_each(pos, l)
    {
        struct delivery *d = list_entry(pos, struct delivery, link);
        if (d->shared && d->msg && (d->state == DLV_QUEUED || d->qos == 1))
            hub_reroute_shared(s->hub, s, d->msg);
    }
}

void
sess_free(struct session *s)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &s->subs)
    {
        free(list_entry(pos, struct sub, link));
    }
    map_fini(&s->sub_index);
    free_deliveries(&s->queue);
    free_deliveries(&s->inflight);
    list_remove(&s->offline_link);
    msg_unref(s->will);
    free(s->qos2_in);
    access_forget(s);
    free(s);
}

void
sess_destroy(struct session *s)
{
    struct hub *h = s->hub;
    struct list *pos;
    bool was_durable = persist_sess(s);

    sess_fire_will(s);
    if (was_durable)
        persist_sess_del(s); /* with its subscriptions, queue and QoS 2 ids */
    list_for_each(pos, &s->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        trie_remove(h->trie, slice_make(sub->filter, sub->filter_len), s);
    }
    reroute_shared(s, &s->inflight);
    reroute_shared(s, &s->queue);
    free_deliveries(&s->queue);
    free_deliveries(&s->inflight);
    s->n_queued = s->n_inflight = 0;
    s->queued_bytes = 0;
    sess_queue_changed(s);
    list_remove(&s->offline_link);
    map_del(&h->registry, slice_make(s->id, s->id_len));
    h->stats.n_sessions--;
    s->is_dead = true;
    s->pending_acks = h->all->n_hubs - 1;
    if (s->pending_acks == 0) {
        sess_free(s);
        return;
    }
    /* The subscription list stays: other hubs read it to clean their replicas. */
    post_to_replicas(s, OP_SESS_PURGE, slice_make(NULL, 0), NULL);
    list_push(&h->dying, &s->offline_link);
}

void
sess_detach(struct session *s)
{
    struct hub *h = s->hub;

    atomic_store_explicit(&s->online, false, memory_order_relaxed);
    if (s->expiry == 0 || s->discard) {
        sess_destroy(s);
        return;
    }
    if (s->will && s->will_delay == 0)
        sess_fire_will(s);
    else if (s->will)
        s->will_at = h->now + (uint64_t)s->will_delay * 1000u;
    s->expire_at = s->expiry == SESS_EXPIRY_NEVER ? 0 : h->now + (uint64_t)s->expiry * 1000u;
    list_push(&h->offline, &s->offline_link);
    /* Offline since now (its expiry continues in wall time across a restart), will or not. */
    persist_sess_update(s, atomic_load_explicit(&s->durable, memory_order_relaxed));
}

static struct sub *
find_sub(struct session *s, struct slice filter)
{
    return map_get(&s->sub_index, filter);
}

bool
sess_has_sub(struct session *s, struct slice filter)
{
    return find_sub(s, filter) != NULL;
}

int
sess_subscribe(struct session *s, struct slice filter, const struct sub_opts *opts, bool is_shared)
{
    struct sub *sub = find_sub(s, filter);
    bool is_new = sub == NULL;

    if (is_new)
        sub = sub_add(s, filter, is_shared);
    sub->opts = *opts;
    trie_insert(s->hub->trie, filter, s, opts);
    post_to_replicas(s, OP_SUB_ADD, filter, opts);
    persist_sub_put(s, filter, opts);
    return is_new ? 1 : 0;
}

int
sess_unsubscribe(struct session *s, struct slice filter)
{
    struct sub *sub = find_sub(s, filter);

    if (!sub)
        return -ENOENT;
    trie_remove(s->hub->trie, filter, s);
    post_to_replicas(s, OP_SUB_DEL, filter, NULL);
    persist_sub_del(s, filter);
    map_del(&s->sub_index, filter);
    list_remove(&sub->link);
    s->n_subs--;
    free(sub);
    return 0;
}

void
sess_set_will(struct session *s, struct msg *will, uint32_t delay)
{
    sess_clear_will(s);
    s->will = will;
    s->will_delay = delay;
}

void
sess_clear_will(struct session *s)
{
    msg_unref(s->will);
    s->will = NULL;
    s->will_at = 0;
}

void
sess_fire_will(struct session *s)
{
    struct msg *will = s->will;

    if (!will)
        return;
    s->will = NULL;
    s->will_at = 0;
    log_debug("will published client=%s topic=%.*s", s->id, SLICE_FMT(will->topic));
    hub_route(s->hub, s, will);
    msg_unref(will);
    if (persist_sess(s))
        persist_sess_update(s, true); /* the record loses its will */
}

/* A replica forgets every subscription of an ended session, then tells the owner. */
static void
purge_replica(struct hub *h, struct session *s)
{
    struct list *pos;

    list_for_each(pos, &s->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        trie_remove(h->trie, slice_make(sub->filter, sub->filter_len), s);
    }
    if (map_get(&h->registry, slice_make(s->id, s->id_len)) == s)
        map_del(&h->registry, slice_make(s->id, s->id_len));
    struct hub_item *ack = hub_post(h, s->hub);
    ack->op = OP_PURGE_ACK;
    ack->sess = s;
}

void
sess_on_item(struct hub *h, struct hub_item *it)
{
    struct session *s = it->sess;

    switch (it->op) {
    case OP_DELIVER:
        if (!s->is_dead) {
            sess_deliver(s, it->u.deliver.msg, it->qos, it->retain, it->u.deliver.sub_ids,
                         it->n_sub_ids, it->shared, it->seq);
        } else {
            /* The publisher's hub wrote an entry for a session that has ended since. */
            persist_delivery_drop(s, it->seq);
            if (it->shared)
                hub_reroute_shared(h, s, it->u.deliver.msg);
        }
        hub_drop_msg(h, it->u.deliver.msg);
        break;
    case OP_DELIVER_P2P:
        if (!s->is_dead)
            hub_deliver_p2p(h, s, it->u.deliver.msg, it->seq);
        else
            persist_delivery_drop(s, it->seq);
        msg_unref(it->u.deliver.msg);
        break;
    case OP_SUB_ADD:
        trie_insert(h->trie, slice_make(it->u.sub.filter, it->u.sub.len), s, &it->u.sub.opts);
        free(it->u.sub.filter);
        break;
    case OP_SUB_DEL:
        trie_remove(h->trie, slice_make(it->u.sub.filter, it->u.sub.len), s);
        free(it->u.sub.filter);
        break;
    case OP_SESS_ADD:
        map_put(&h->registry, slice_make(s->id, s->id_len), s);
        break;
    case OP_SESS_PURGE:
        purge_replica(h, s);
        break;
    case OP_FENCE:
    case OP_FENCE_ACK:
        persist_on_fence(h, it);
        break;
    case OP_PURGE_ACK:
        if (--s->pending_acks == 0)
            sess_free(s);
        break;
    default:
        break;
    }
}
