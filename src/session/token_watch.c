/*
 * token_watch.c - clients that logged in with tokens (auth/token.h), after their CONNECT:
 * the expiry notice, the end of an expired or revoked token, and the refresh.
 *
 *   CONNECT ok ──▶ watched (hub->token_clients)
 *      │ TOKEN_NOTICE_BEFORE s before a token expires: TOKEN_EXPIRE_TOPIC notice (once per token)
 *      │ PUBLISH TOKEN_UPLOAD_TOPIC {"token","type"}: that type's token replaced, notice re-armed
 *      ▼ a token expired or revoked: TOKEN_INVALID_TOPIC notice, then DISCONNECT 0x87 (MQTT 5)
 *
 * Notices are broker messages written straight to that client's connection at QoS 0 (as
 * ApsaraMQ does): the client need not subscribe, no other client sees them, the ACL and the
 * token's filters do not apply, and nothing is queued for an offline session (only connected
 * clients are watched). Their payload is JSON:
 *   {"token":"<first 8 characters>","type":"R"|"W"|"RW","expireTime":<unix s>}
 * plus "reason":"expired"|"revoked" in the invalid notice.
 *
 * Cost: the tick does nothing unless a token was revoked somewhere (tokens_gen moved: each
 * watched client's tokens are looked up once) or the earliest notice or expiry among this
 * hub's watched clients has come (a walk of the watched clients, comparing times). Never per
 * message. Expiry is wall-clock time, like the tokens themselves.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "auth/token.h"
#include "base/clock.h"
#include "base/log.h"
#include "session/internal.h"

/* When the next thing happens to grant `g` of a client: its notice, else its expiry. */
static int64_t
grant_due(const struct token_grant *g, bool warned)
{
    int64_t exp = (int64_t)g->expires_at;

    return warned ? exp : exp - (int64_t)TOKEN_NOTICE_BEFORE;
}

/* The client's distinct grants with the actions each one serves (an RW token once). */
static size_t
grants_of(const struct client *c, const struct token_grant *g[2], unsigned kinds[2])
{
    const struct auth_identity *id = c->sess->auth;
    const struct token_grant *r = auth_identity_token(id, TOKEN_READ);
    const struct token_grant *w = auth_identity_token(id, TOKEN_WRITE);
    size_t n = 0;

    if (r) {
        g[n] = r;
        kinds[n++] = w == r ? TOKEN_READ | TOKEN_WRITE : TOKEN_READ;
    }
    if (w && w != r) {
        g[n] = w;
        kinds[n++] = TOKEN_WRITE;
    }
    return n;
}

static void
lower_due(struct hub *h, const struct client *c)
{
    const struct token_grant *g[2];
    unsigned kinds[2];
    size_t n = grants_of(c, g, kinds);

    for (size_t i = 0; i < n; i++) {
        int64_t due = grant_due(g[i], (c->token_warned & kinds[i]) == kinds[i]);
        if (due < h->token_due)
            h->token_due = due;
    }
}

void
token_watch_add(struct client *c)
{
    struct hub *h = c->hub;

    list_remove(&c->token_link);
    list_push(&h->token_clients, &c->token_link);
    c->token_warned = 0;
    lower_due(h, c);
}

/* Write a notice on `topic` to the client, at QoS 0. */
static void
notice(struct client *c, const char *topic, const struct token_grant *g, unsigned kinds,
       const char *reason)
{
    char payload[160];
    int n = snprintf(payload, sizeof(payload),
                     "{\"token\":\"%s\",\"type\":\"%s\",\"expireTime\":%" PRIu64 "%s%s%s}",
                     g->label, token_type_str(kinds), g->expires_at,
                     reason ? ",\"reason\":\"" : "", reason ? reason : "", reason ? "\"" : "");
    struct msg *m = msg_new(slice_cstr(topic), slice_make(payload, (size_t)n), NULL, 0, false, 0,
                            c->hub->now);

    if (!m)
        return;
    client_send_publish(c, m, 0, false, false, 0, NULL, 0);
    msg_unref(m);
}

/* Check one client's tokens. Returns true when it was ended. */
static bool
check_client(struct client *c, bool revocations, int64_t wall, int64_t *due)
{
    struct tokens *t = c->hub->all->tokens;
    const struct token_grant *g[2];
    unsigned kinds[2];
    size_t n = grants_of(c, g, kinds);

    for (size_t i = 0; i < n; i++) {
        int rc = (int64_t)g[i]->expires_at <= wall ? -EKEYEXPIRED
                 : revocations                     ? tokens_check(t, g[i], (uint64_t)wall)
                                                   : 0;
        if (rc != 0) {
            const char *why = rc == -EKEYEXPIRED ? "expired" : "revoked";
            log_info("token invalid, disconnecting client=%s addr=%s token=%s type=%s reason=%s",
                     c->sess->id, conn_peer(c->conn), g[i]->label, token_type_str(kinds[i]), why);
            notice(c, TOKEN_INVALID_TOPIC, g[i], kinds[i], why);
            /* The notice is in the output buffer ahead of the DISCONNECT; the connection closes
             * once both are written. */
            client_kick(c, MQTT_RC_NOT_AUTHORIZED);
            return true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool warned = (c->token_warned & kinds[i]) == kinds[i];
        if (!warned && grant_due(g[i], false) <= wall) {
            notice(c, TOKEN_EXPIRE_TOPIC, g[i], kinds[i], NULL);
            c->token_warned |= (uint8_t)kinds[i];
            warned = true;
        }
        int64_t next = grant_due(g[i], warned);
        if (next < *due)
            *due = next;
    }
    return false;
}

void
token_watch_tick(struct hub *h)
{
    struct list *pos, *tmp;

    if (list_empty(&h->token_clients))
        return;
    uint64_t gen = tokens_gen(h->all->tokens);
    int64_t wall = clock_wall_s();
    bool revocations = gen != h->token_gen;
    if (!revocations && wall < h->token_due)
        return;
    h->token_gen = gen;
    int64_t due = INT64_MAX;
    list_for_each_safe(pos, tmp, &h->token_clients)
    {
        struct client *c = list_entry(pos, struct client, token_link);
        if (c->state != CLIENT_CONNECTED || !c->sess || !auth_identity_has_tokens(c->sess->auth)) {
            list_remove(&c->token_link);
            continue;
        }
        if (check_client(c, revocations, wall, &due))
            list_remove(&c->token_link);
    }
    h->token_due = due;
}

int
token_watch_upload(struct client *c, struct slice payload)
{
    struct hub *h = c->hub;
    struct session *s = c->sess;
    struct slice token;
    unsigned kinds;
    struct token_grant *g = NULL;
    const char *why = NULL;
    int rc;

    if (!auth_identity_has_tokens(s->auth))
        why = "not a token login";
    else if (token_upload_parse(payload, &token, &kinds) != 0)
        why = "malformed";
    else if ((rc = tokens_lookup(h->all->tokens, token, (uint64_t)clock_wall_s(), &g)) != 0)
        why = rc == -EKEYEXPIRED ? "token expired" : "unknown or revoked token";
    else if ((g->actions & kinds) != kinds)
        why = "token lacks the action of its type";
    if (why) {
        static struct log_ratelimit rl;
        token_grant_free(g);
        if (log_ratelimit(&rl, 20))
            log_notice("token refresh refused client=%s addr=%s reason=%s", s->id,
                       conn_peer(c->conn), why);
        return MQTT_RC_NOT_AUTHORIZED;
    }
    log_info("token refreshed client=%s token=%s type=%s expires=%" PRIu64, s->id, g->label,
             token_type_str(kinds), g->expires_at);
    auth_identity_set_token(s->auth, kinds, g);
    c->token_warned &= (uint8_t)~kinds;
    lower_due(h, c);
    return 0;
}
