/*
 * hub.c - the hub: creation, accepting connections, the periodic sweep and shutdown.
 */
#include <stdlib.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "session/internal.h"

struct hub *
hub_new(const struct config *cfg, struct conn_pool *pool)
{
    struct hub *h = xcalloc(1, sizeof(*h));

    h->cfg = cfg;
    h->pool = pool;
    map_init(&h->sessions);
    list_init(&h->clients);
    list_init(&h->offline);
    h->trie = trie_new();
    retain_init(&h->retained);
    h->p2p = (struct p2p_rules){
        .enabled = cfg->p2p_enabled,
        .keyword = slice_cstr(cfg->p2p_keyword),
        .parents = cfg->p2p_parents,
        .n_parents = cfg->n_p2p_parents,
    };
    h->now = clock_now_ms();
    h->started_at = h->now;
    h->next_sys = h->now;
    return h;
}

void
hub_free(struct hub *h)
{
    struct session *s;
    size_t pos;

    if (!h)
        return;
    /* Sessions are freed without publishing wills: the broker is going away. */
    for (;;) {
        pos = 0;
        if (!(s = map_next(&h->sessions, &pos)))
            break;
        sess_clear_will(s);
        sess_destroy(s);
    }
    map_fini(&h->sessions);
    retain_fini(&h->retained);
    trie_free(h->trie);
    free(h->targets);
    free(h);
}

void
hub_accept(struct hub *h, int fd, const char *peer, const struct config_listener *li)
{
    h->now = clock_now_ms();
    if (li->max_connections >= 0 && h->pool->n_conns >= (size_t)li->max_connections) {
        log_notice("connection refused, listener full addr=%s port=%u", peer, li->port);
        close(fd);
        return;
    }
    if (!client_new(h, fd, peer, li))
        log_warn("connection dropped addr=%s", peer);
}

/* Keepalive [MQTT-3.1.2-24]: one and a half keepalive periods of silence end the connection.
 * A connection that never sends CONNECT is closed after CONNECT_TIMEOUT_S. */
static void
sweep_clients(struct hub *h)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &h->clients)
    {
        struct client *c = list_entry(pos, struct client, link);
        if (c->state == CLIENT_NEW && h->now - c->connected_at > CONNECT_TIMEOUT_S * 1000u) {
            c->state = CLIENT_CLOSING;
            conn_close(c->conn);
        } else if (c->state == CLIENT_CONNECTED && c->keepalive &&
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

void
hub_tick(void *hub)
{
    struct hub *h = hub;

    h->now = clock_now_ms();
    sweep_clients(h);
    sweep_sessions(h);
    if (h->now >= h->next_retain_sweep) {
        /* A full pass over the retained store, so it runs rarely; expired retained messages
         * are also never sent, because delivery checks expiry. */
        h->next_retain_sweep = h->now + 10000u;
        retain_expire(&h->retained, h->now);
    }
    if (h->cfg->sys_interval && h->now >= h->next_sys) {
        h->next_sys = h->now + (uint64_t)h->cfg->sys_interval * 1000u;
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
}
