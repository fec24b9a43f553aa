/*
 * session.c - sessions: the state named by a client ID, its subscriptions and its will.
 *
 * A session lives in the hub's table from the CONNECT that creates it until it ends:
 *   connected --client gone, expiry 0--> ended
 *   connected --client gone, expiry > 0--> offline --reconnect--> connected
 *                                           \--expiry passes--> ended
 * A pending will is published when the will delay passes or the session ends, whichever comes
 * first [MQTT-3.1.3-9]; a reconnect before that cancels it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "session/internal.h"

struct session *
sess_find(struct hub *h, struct slice id)
{
    return map_get(&h->sessions, id);
}

struct session *
sess_create(struct hub *h, struct slice id, uint8_t version)
{
    struct session *s = xcalloc(1, sizeof(*s));

    s->id = xstrndup(id.p, id.len);
    s->id_len = id.len;
    s->serial = ++h->next_serial;
    s->hub = h;
    s->version = version;
    s->next_packet_id = 1;
    list_init(&s->offline_link);
    list_init(&s->subs);
    list_init(&s->queue);
    list_init(&s->inflight);
    map_put(&h->sessions, slice_make(s->id, s->id_len), s);
    return s;
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
 * their group (MQTT 5 section 4.8.2). WAIT_PUBCOMP ones already reached the client. */
static void
reroute_shared(struct session *s, struct list *l)
{
    struct list *pos;

    list_for_each(pos, l)
    {
        struct delivery *d = list_entry(pos, struct delivery, link);
        if (d->shared && d->msg)
            hub_reroute_shared(s->hub, s, d->msg);
    }
}

void
sess_destroy(struct session *s)
{
    struct hub *h = s->hub;
    struct list *pos, *tmp;

    sess_fire_will(s);
    list_for_each(pos, &s->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        trie_remove(h->trie, slice_make(sub->filter, sub->filter_len), s);
    }
    reroute_shared(s, &s->inflight);
    reroute_shared(s, &s->queue);
    list_for_each_safe(pos, tmp, &s->subs)
    {
        free(list_entry(pos, struct sub, link));
    }
    free_deliveries(&s->queue);
    free_deliveries(&s->inflight);
    list_remove(&s->offline_link);
    map_del(&h->sessions, slice_make(s->id, s->id_len));
    free(s->qos2_in);
    free(s->id);
    free(s);
}

void
sess_detach(struct session *s)
{
    struct hub *h = s->hub;

    if (s->expiry == 0) {
        sess_destroy(s);
        return;
    }
    if (s->will && s->will_delay == 0)
        sess_fire_will(s);
    else if (s->will)
        s->will_at = h->now + (uint64_t)s->will_delay * 1000u;
    s->expire_at = s->expiry == SESS_EXPIRY_NEVER ? 0 : h->now + (uint64_t)s->expiry * 1000u;
    list_push(&h->offline, &s->offline_link);
}

static struct sub *
find_sub(struct session *s, struct slice filter)
{
    struct list *pos;

    list_for_each(pos, &s->subs)
    {
        struct sub *sub = list_entry(pos, struct sub, link);
        if (slice_eq(slice_make(sub->filter, sub->filter_len), filter))
            return sub;
    }
    return NULL;
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

    if (is_new) {
        sub = xmalloc(sizeof(*sub) + filter.len + 1);
        memcpy(sub->filter, filter.p, filter.len);
        sub->filter[filter.len] = '\0';
        sub->filter_len = filter.len;
        sub->is_shared = is_shared;
        list_push(&s->subs, &sub->link);
        s->n_subs++;
    }
    sub->opts = *opts;
    trie_insert(s->hub->trie, filter, s, opts);
    return is_new ? 1 : 0;
}

int
sess_unsubscribe(struct session *s, struct slice filter)
{
    struct sub *sub = find_sub(s, filter);

    if (!sub)
        return -ENOENT;
    trie_remove(s->hub->trie, filter, s);
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
}
