/*
 * hub.c - hubs: creation, the mailbox between them, accepting connections, the periodic sweep
 * and shutdown.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth/token.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "session/app.h"
#include "session/internal.h"

struct hubs *
hubs_new(const struct config *cfg, unsigned n_hubs)
{
    struct hubs *hs = xcalloc(1, sizeof(*hs));

    hs->cfg = cfg;
    hs->n_hubs = n_hubs ? n_hubs : 1;
    hs->hubs = xcalloc(hs->n_hubs, sizeof(*hs->hubs));
    hs->snapshots = xcalloc(hs->n_hubs, sizeof(*hs->snapshots));
    hs->listener_conns = xcalloc(cfg->n_listeners + 1, sizeof(*hs->listener_conns));
    pthread_mutex_init(&hs->retained_lock, NULL);
    pthread_mutex_init(&hs->stats_lock, NULL);
    retain_init(&hs->retained);
    hs->started_at = clock_now_ms();
    /* The node name of $SYS/brokers/<node>/...: a topic level, so no '/' or wildcard. */
    if (cfg->node_name)
        snprintf(hs->node, sizeof(hs->node), "%s", cfg->node_name);
    else if (gethostname(hs->node, sizeof(hs->node) - 1) != 0 || !hs->node[0])
        snprintf(hs->node, sizeof(hs->node), "petrel");
    for (char *p = hs->node; *p; p++) {
        if (*p == '/' || *p == '+' || *p == '#')
            *p = '_';
    }
    hs->tokens = tokens_new();
    overload_init(hs);
    return hs;
}

struct tokens *
hubs_tokens(struct hubs *hs)
{
    return hs->tokens;
}

static void on_items(void *ud, void *items, size_t n);

struct hub *
hub_new(struct hubs *hs, unsigned index, struct loop *loop, struct conn_pool *pool)
{
    struct hub *h = xcalloc(1, sizeof(*h));
    const struct config *cfg = hs->cfg;

    h->all = hs;
    h->index = index;
    h->cfg = cfg;
    h->loop = loop;
    h->pool = pool;
    if (mailbox_new(loop, sizeof(struct hub_item), on_items, h, &h->inbox) != 0) {
        free(h);
        return NULL;
    }
    h->stages = xcalloc(hs->n_hubs, sizeof(*h->stages));
    map_init(&h->registry);
    list_init(&h->clients);
    list_init(&h->offline);
    list_init(&h->dying);
    list_init(&h->held);
    list_init(&h->commit_waits);
    list_init(&h->token_clients);
    h->token_due = INT64_MAX;
    h->trie = trie_new();
    h->p2p = (struct p2p_rules){
        .enabled = cfg->p2p_enabled,
        .keyword = slice_cstr(cfg->p2p_keyword),
        .parents = cfg->p2p_parents,
        .n_parents = cfg->n_p2p_parents,
    };
    h->limits = (struct slow_limits){
        .max_queued_messages = cfg->max_queued_messages,
        .max_queued_bytes = cfg->max_queued_bytes,
        .qos0_output_limit = cfg->qos0_output_limit,
        .drop_oldest = cfg->queue_full_drop_oldest,
    };
    h->now = clock_now_ms();
    h->next_sys = h->now;
    h->next_retain_sweep = h->now + 10000u;
    hs->hubs[index] = h;
    return h;
}

/* Release what a mailbox item owns without acting on it (shutdown). */
static void
dispose_item(struct hub_item *it)
{
    switch (it->op) {
    case OP_DELIVER:
    case OP_DELIVER_P2P:
        msg_unref(it->u.deliver.msg);
        break;
    case OP_SUB_ADD:
    case OP_SUB_DEL:
        free(it->u.sub.filter);
        break;
    case OP_APP_QUERY:
    case OP_APP_ANSWER:
        app_dispose_item(it);
        break;
    case OP_HANDOFF:
        if (it->u.handoff.transport)
            it->u.handoff.transport->ops->free(it->u.handoff.transport);
        close(it->u.handoff.fd);
        free(it->u.handoff.peer);
        free(it->u.handoff.data);
        break;
    default:
        break;
    }
}

static void
dispose_items(void *ud, void *items, size_t n)
{
    struct hub_item *it = items;

    for (size_t i = 0; i < n; i++)
        dispose_item(&it[i]);
}

/* Collect the sessions `h` owns; called for every hub before any session is freed, since
 * each registry also points at other hubs' sessions. */
static struct session **
owned_sessions(struct hub *h, size_t *n)
{
    struct session **out = xcalloc(h->registry.n + 1, sizeof(*out));
    struct session *s;
    size_t i = 0;

    *n = 0;
    while ((s = map_next(&h->registry, &i)) != NULL) {
        if (s->hub == h)
            out[(*n)++] = s;
    }
    return out;
}

static void
hub_free(struct hub *h, struct session **owned, size_t n_owned)
{
    struct list *pos, *tmp;

    /* Owned sessions end without publishing wills: the broker is going away. */
    for (size_t i = 0; i < n_owned; i++)
        sess_free(owned[i]);
    list_for_each_safe(pos, tmp, &h->dying)
    {
        sess_free(list_entry(pos, struct session, offline_link));
    }
    map_fini(&h->registry);
    trie_free(h->trie);
    for (unsigned k = 0; k < h->all->n_hubs; k++)
        mailbox_stage_fini(&h->stages[k]);
    free(h->stages);
    free(h->targets);
    free(h->tindex.keys);
    free(h->tindex.slots);
    free(h->tindex.gens);
    store_batch_free(h->batch);
    msg_home_fini(&h->msg_home);
    free(h);
}

void
hubs_free(struct hubs *hs)
{
    if (!hs)
        return;
    /* Every worker has stopped: what they returned to each other is freed now, and whatever
     * this thread frees from here on is freed at once. */
    msg_home_enter(NULL);
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        if (hs->hubs[k])
            msg_home_collect(&hs->hubs[k]->msg_home);
    }
    /* Items still in flight between stopped hubs only need their resources released. */
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        struct hub *h = hs->hubs[k];
        if (!h)
            continue;
        for (unsigned t = 0; t < hs->n_hubs; t++)
            dispose_items(NULL, h->stages[t].items, h->stages[t].n);
        mailbox_free_with(h->inbox, dispose_items, NULL);
    }
    struct session ***owned = xcalloc(hs->n_hubs, sizeof(*owned));
    size_t *n_owned = xcalloc(hs->n_hubs, sizeof(*n_owned));
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        if (hs->hubs[k])
            owned[k] = owned_sessions(hs->hubs[k], &n_owned[k]);
    }
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        if (hs->hubs[k])
            hub_free(hs->hubs[k], owned[k], n_owned[k]);
        free(owned[k]);
    }
    free(owned);
    free(n_owned);
    retain_fini(&hs->retained);
    overload_fini(hs);
    pthread_mutex_destroy(&hs->retained_lock);
    pthread_mutex_destroy(&hs->stats_lock);
    free(hs->snapshots);
    tokens_free(hs->tokens);
    free((void *)hs->listener_conns);
    free(hs->hubs);
    free(hs);
}

struct hub *
hub_owner(struct hub *h, struct slice client_id)
{
    struct hubs *hs = h->all;

    if (hs->n_hubs == 1)
        return h;
    /* Fixed, not keyed: the owner of an ID is the same in every run (the tests pick IDs for
     * a worker), and a client choosing its worker gains nothing it could not get by
     * connecting many times. */
    uint64_t x = hash_fixed(client_id.p, client_id.len);
    return hs->hubs[(x >> 32) % hs->n_hubs];
}

struct hub_item *
hub_post(struct hub *h, struct hub *to)
{
    struct mailbox_stage *st = &h->stages[to->index];

    if (!st->to)
        mailbox_stage_init(st, to->inbox);
    struct hub_item *it = mailbox_stage_slot(st);
    memset(it, 0, sizeof(*it));
    return it;
}

void
hub_drop_msg(struct hub *h, struct msg *m)
{
    if (m != h->drop_msg) {
        msg_unref_n(h->drop_msg, h->n_drop);
        h->drop_msg = m;
        h->n_drop = 0;
    }
    h->n_drop++;
}

static void
on_items(void *ud, void *items, size_t n)
{
    struct hub *h = ud;
    struct hub_item *it = items;

    h->now = clock_now_ms();
    for (size_t i = 0; i < n; i++) {
        switch (it[i].op) {
        case OP_HANDOFF:
            client_adopt(h, &it[i]);
            break;
        case OP_SHUTDOWN:
            hub_shutdown(h);
            break;
        case OP_STORE_DONE:
            persist_on_done(h, it[i].rc);
            break;
        case OP_APP_QUERY:
        case OP_APP_ANSWER:
            app_on_item(h, &it[i]);
            break;
        default:
            sess_on_item(h, &it[i]);
            break;
        }
    }
    msg_unref_n(h->drop_msg, h->n_drop);
    h->drop_msg = NULL;
    h->n_drop = 0;
}

static void
flush_stages(struct hub *h)
{
    for (unsigned k = 0; k < h->all->n_hubs; k++) {
        if (h->stages[k].n)
            mailbox_stage_flush(&h->stages[k]);
    }
}

void
hub_flush_early(struct hub *h)
{
    /* With persistence the store's batch must reach the storage thread before the items that
     * refer to its entries, which hub_after orders; without it, earlier is always allowed. */
    if (h->batch)
        return;
    for (unsigned k = 0; k < h->all->n_hubs; k++) {
        struct mailbox_stage *st = &h->stages[k];
        if (st->n && mailbox_is_sleeping(st->to))
            mailbox_stage_flush(st);
    }
}

void
hub_after(void *hub)
{
    struct hub *h = hub;

    /* This thread runs the hub: messages it allocates come back here when another worker
     * drops the last reference, and are freed here (msg.h). */
    msg_home_enter(&h->msg_home);
    msg_home_collect(&h->msg_home);
    /* Mailbox items first: what this iteration posted (a new subscription, a new session) is
     * then in the other hubs' inboxes before the replies (SUBACK, CONNACK) leave, and a client
     * acting on a reply finds it applied everywhere (see mailbox_poll in client.c). Closing
     * connections can post more, so the stages are flushed once more after them. */
    /* The store's batch goes first of all: a queue entry it adds must reach the storage thread
     * before the delivery item lets another hub update or drop it. */
    persist_submit(h);
    flush_stages(h);
    conn_pool_after(h->pool);
    persist_submit(h);
    flush_stages(h);
    if (h->stopping)
        loop_stop(h->loop);
}

void
hub_accept(struct hub *h, int fd, struct transport *t, const char *peer,
           const struct config_listener *li)
{
    _Atomic size_t *count = &h->all->listener_conns[li - h->cfg->listeners];

    h->now = clock_now_ms();
    if (!overload_accept(h, peer)) {
        if (t)
            t->ops->free(t);
        close(fd);
        return;
    }
    if (li->max_connections >= 0 &&
        atomic_load_explicit(count, memory_order_relaxed) >= (size_t)li->max_connections) {
        h->stats.conns_full_refused++;
        log_notice("connection refused, listener full addr=%s port=%u", peer, li->port);
        if (t)
            t->ops->free(t);
        close(fd);
        return;
    }
    atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
    if (!client_new(h, fd, t, peer, li)) {
        atomic_fetch_sub_explicit(count, 1, memory_order_relaxed);
        log_warn("connection dropped addr=%s", peer);
    }
}

/* A client whose socket has taken no byte of its waiting output for write_stall_timeout
 * (it stopped reading, or the path to it is dead while its own packets still arrive, which
 * keepalive cannot see) is closed. No DISCONNECT: it could not be written. The session stays
 * as its expiry says, its inflight messages are resent on reconnect, and its will fires. */
static bool
write_stalled(struct hub *h, struct client *c)
{
    static struct log_ratelimit rl;
    uint64_t limit_ms = (uint64_t)h->cfg->write_stall_timeout * 1000u;

    bool blocked = conn_is_blocked(c->conn);

    /* The ioctl only for connections whose output waits. */
    if (!slow_stall_check(&c->stall, h->now, blocked, blocked ? conn_bytes_acked(c->conn) : 0,
                          limit_ms))
        return false;
    h->stats.write_stalls++;
    if (log_ratelimit(&rl, 20))
        log_notice("write stalled, connection closed client=%s addr=%s pending=%zu seconds=%u",
                   client_id_str(c), conn_peer(c->conn), conn_out_pending(c->conn),
                   h->cfg->write_stall_timeout);
    c->state = CLIENT_CLOSING;
    conn_close(c->conn);
    return true;
}

/* Keepalive [MQTT-3.1.2-24]: one and a half keepalive periods of silence end the connection.
 * Connections too slow to send CONNECT, or any one packet, are closed (overload.c). */
static void
sweep_clients(struct hub *h)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &h->clients)
    {
        struct client *c = list_entry(pos, struct client, link);
        if (overload_sweep_client(c))
            continue;
        if (c->state == CLIENT_CONNECTED && write_stalled(h, c))
            continue;
        if (c->state == CLIENT_CONNECTED && c->keepalive &&
            h->now - c->last_rx > (uint64_t)c->keepalive * 1500u) {
            log_info("keepalive timeout client=%s addr=%s", client_id_str(c), conn_peer(c->conn));
            client_fail(c, MQTT_RC_KEEP_ALIVE_TIMEOUT);
        }
    }
}

/* Offline sessions: delayed wills and session expiry. */
static void
sweep_sessions(struct hub *h)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &h->offline)
    {
        struct session *s = list_entry(pos, struct session, offline_link);
        if (s->will_at && h->now >= s->will_at)
            sess_fire_will(s);
        if (s->expire_at && h->now >= s->expire_at) {
            log_info("session expired client=%s", s->id);
            sess_destroy(s);
        }
    }
}

/* Publish this hub's counters for $SYS (read by hub 0). */
static void
snapshot_stats(struct hub *h)
{
    struct hubs *hs = h->all;

    h->stats.bytes_in = h->pool->bytes_in;
    h->stats.bytes_out = h->pool->bytes_out;
    app_gauges(h);
    pthread_mutex_lock(&hs->stats_lock);
    hs->snapshots[h->index] = h->stats;
    pthread_mutex_unlock(&hs->stats_lock);
    h->stats.loop_lag_max_ms = 0;
}

void
hub_tick(void *hub)
{
    struct hub *h = hub;
    struct hubs *hs = h->all;

    h->now = clock_now_ms();
    /* How late this tick runs is how long the loop was busy elsewhere: its latency. */
    if (h->tick_due) {
        uint64_t lag = h->now > h->tick_due ? h->now - h->tick_due : 0;
        h->stats.loop_lag_ms = lag > UINT32_MAX ? UINT32_MAX : (uint32_t)lag;
        if (h->stats.loop_lag_ms > h->stats.loop_lag_max_ms)
            h->stats.loop_lag_max_ms = h->stats.loop_lag_ms;
    }
    h->tick_due = h->now + HUB_TICK_MS;
    sweep_clients(h);
    conn_pool_trim(h->pool);
    msg_home_trim(&h->msg_home);
    sweep_sessions(h);
    token_watch_tick(h);
    snapshot_stats(h);
    if (h->index != 0)
        return;
    /* Even without memory_limit: /metrics and $SYS report the heap. */
    overload_sample(h);
    persist_tick(h);
    if (h->now >= h->next_retain_sweep) {
        /* Pops only the expired messages (retain.c keeps them in a heap); every 10 s is
         * enough since delivery checks expiry anyway. */
        h->next_retain_sweep = h->now + 10000u;
        pthread_mutex_lock(&hs->retained_lock);
        retain_expire(&hs->retained, h->now);
        pthread_mutex_unlock(&hs->retained_lock);
    }
    if (h->cfg->sys_interval && h->now >= h->next_sys) {
        h->next_sys = h->now + (uint64_t)h->cfg->sys_interval * 1000u;
        if (!h->cfg->memory_limit)
            overload_sample(h); /* for $SYS/broker/heap/current */
        sys_publish(h);
    }
}

void
hub_shutdown(struct hub *h)
{
    struct list *pos;

    list_for_each(pos, &h->clients)
    {
        struct client *c = list_entry(pos, struct client, link);
        c->send_will = false;
        client_kick(c, MQTT_RC_SERVER_SHUTTING_DOWN);
    }
    h->stopping = true;
}

void
hubs_shutdown(struct hubs *hs)
{
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        struct mailbox_stage st;
        if (!hs->hubs[k])
            continue;
        mailbox_stage_init(&st, hs->hubs[k]->inbox);
        struct hub_item *it = mailbox_stage_slot(&st);
        memset(it, 0, sizeof(*it));
        it->op = OP_SHUTDOWN;
        mailbox_stage_flush(&st);
        mailbox_stage_fini(&st);
    }
}
