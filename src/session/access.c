/*
 * access.c - where the protocol engine asks auth/ who may connect and what they may do.
 *
 *   CONNECT    access_connect (credentials, certificate identity, GID client IDs)
 *   PUBLISH    access_publish (`write`; P2P: on the parent or the full topic, plus p2p rules)
 *   SUBSCRIBE  access_subscribe (`read` reaching the filter)
 *   delivery   access_receive (`read` on the topic; skipped when no ACL file is loaded)
 *
 * Token logins (auth/token.h) are limited to their tokens' filters on top of the ACL: a write
 * token must match what they publish (a P2P topic counts as published to), a read token must
 * cover what they subscribe to and match what they receive.
 *
 * A P2P message addressed to a client needs no read rule of the receiver: the sender's right
 * to address it was checked, and the receiver never subscribed (the same goes for a client's
 * subscription to its own P2P topic, which p2p_filter_allowed already limited to its own).
 * Each hub is its own reader of the auth data (reader index = hub index).
 */
#include "base/clock.h"
#include "base/log.h"
#include "net/tls.h"
#include "net/ws.h"
#include "session/internal.h"

void
hubs_set_auth(struct hubs *hs, struct auth *auth)
{
    hs->auth = auth;
}

/* The client certificate's identity, over TLS directly or inside a wss:// WebSocket. */
static const char *
peer_identity(const struct client *c)
{
    struct transport *t = conn_transport(c->conn);
    struct transport *inner = ws_inner(t);

    return tls_peer_identity(inner ? inner : t);
}

int
access_connect(struct client *c, const struct mqtt_connect *cn, struct slice id,
               struct auth_identity **out)
{
    struct hub *h = c->hub;
    const char *reason = "";

    *out = NULL;
    if (!h->all->auth)
        return h->cfg->allow_anonymous ? 0 : MQTT_RC_NOT_AUTHORIZED;
    struct auth_request rq = {
        .client_id = id,
        .has_username = cn->has_username,
        .username = cn->username,
        .has_password = cn->has_password,
        .password = cn->password,
        .cert_identity = peer_identity(c),
        .listener = c->listener,
        .peer = conn_peer(c->conn),
        .now = h->now,
        .tokens = h->all->tokens,
        .wall_s = (uint64_t)clock_wall_s(),
    };
    int rc = auth_connect(h->all->auth, h->index, &rq, out, &reason);
    if (rc != 0) {
        static struct log_ratelimit rl;
        /* Never the password; the username is not a secret and helps the operator. */
        if (log_ratelimit(&rl, 20))
            log_notice("login refused client=%.*s user=%.*s addr=%s reason=%s", SLICE_FMT(id),
                       cn->has_username ? (int)cn->username.len : 1,
                       cn->has_username ? (const char *)cn->username.p : "-", conn_peer(c->conn),
                       reason);
    }
    return rc;
}

void
access_attach(struct session *s, struct auth_identity *id)
{
    auth_identity_free(s->auth);
    s->auth = id;
}

void
access_forget(struct session *s)
{
    auth_identity_free(s->auth);
    s->auth = NULL;
}

int
access_publish(struct hub *h, struct auth_identity *id, struct slice topic)
{
    struct auth *a = h->all->auth;
    struct slice parent, target;

    if (id && !auth_token_may_publish(id, topic))
        return MQTT_RC_NOT_AUTHORIZED;
    if (!a || !auth_has_acl(a, h->index))
        return 0;
    bool ok = p2p_classify(&h->p2p, topic, &parent, &target) == P2P_DIRECT
                  ? auth_may_send_p2p(a, h->index, id, topic, parent, target)
                  : auth_may_publish(a, h->index, id, topic);
    return ok ? 0 : MQTT_RC_NOT_AUTHORIZED;
}

bool
access_subscribe(struct session *s, struct slice filter)
{
    struct hub *h = s->hub;
    struct auth *a = h->all->auth;

    if (p2p_filter_is_p2p(&h->p2p, filter))
        return true; /* its own P2P topic: p2p_filter_allowed refused any other */
    if (s->auth && !auth_token_may_subscribe(s->auth, filter))
        return false;
    if (!a || !auth_has_acl(a, h->index))
        return true;
    return auth_may_subscribe(a, h->index, s->auth, filter);
}

bool
access_receive(struct session *s, const struct msg *m)
{
    struct hub *h = s->hub;
    struct auth *a = h->all->auth;
    struct slice parent, target;
    bool has_acl = a && auth_has_acl(a, h->index);
    bool has_tokens = auth_identity_has_tokens(s->auth);

    if (!has_acl && !has_tokens)
        return true;
    if (p2p_classify(&h->p2p, m->topic, &parent, &target) == P2P_DIRECT &&
        slice_eq(target, slice_make(s->id, s->id_len)))
        return true;
    if (has_tokens && !auth_token_may_receive(s->auth, m->topic))
        return false;
    if (!has_acl)
        return true;
    return auth_may_receive(a, h->index, s->auth, m->topic);
}
