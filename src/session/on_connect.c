/*
 * on_connect.c - CONNECT: version and identity checks, session takeover or resumption, the
 * will, and the CONNACK with the server's limits (MQTT 5).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "mqtt/topic.h"
#include "session/app.h"
#include "session/internal.h"

/* Refuse the connection with CONNACK `rc` (mapped to a 3.1.1 return code when needed). */
static void
refuse(struct client *c, uint8_t version, uint8_t rc)
{
    struct mqtt_connack ack = {.rc = rc};

    /* An unknown protocol level is answered in 3.1.1 form [MQTT-3.1.2-2]. */
    if (version != MQTT_V31 && version != MQTT_V311 && version != MQTT_V5)
        version = MQTT_V311;
    if (mqtt_encode_connack(client_out(c), version, &ack) == 0)
        client_wrote(c);
    log_info("connect refused addr=%s reason=0x%02x (%s)", conn_peer(c->conn), rc, mqtt_rc_str(rc));
    c->state = CLIENT_CLOSING;
    conn_close(c->conn);
}

/* The protocol level byte, read leniently so that a refusal can use the client's version. */
static uint8_t
peek_version(struct slice body)
{
    if (body.len < 2)
        return MQTT_V311;
    size_t name_len = ((size_t)body.p[0] << 8) | body.p[1];
    if (body.len < 2 + name_len + 1)
        return MQTT_V311;
    return body.p[2 + name_len];
}

static void
assign_client_id(struct hub *h, char *out, size_t out_len)
{
    /* Unique within this broker run (a fresh serial each try), and chosen so that this hub
     * owns it: the connection then needs no hand-off. */
    for (;;) {
        uint64_t n = atomic_fetch_add_explicit(&h->all->next_serial, 1, memory_order_relaxed);
        snprintf(out, out_len, "petrel-%llx-%llx", (unsigned long long)h->all->started_at,
                 (unsigned long long)n);
        if (hub_owner(h, slice_cstr(out)) == h && !sess_find(h, slice_cstr(out)))
            return;
    }
}

/* Check the will's content against the server's limits; 0 or a reason code. */
static int
check_will(const struct hub *h, const struct mqtt_connect *cn)
{
    if (!cn->has_will)
        return 0;
    if (!mqtt_topic_name_valid(cn->will_topic))
        return MQTT_RC_TOPIC_NAME_INVALID;
    if (cn->will_qos > h->cfg->maximum_qos)
        return MQTT_RC_QOS_NOT_SUPPORTED; /* [MQTT-3.2.2-12] */
    if (cn->will_retain && !h->cfg->retain_available)
        return MQTT_RC_RETAIN_NOT_SUPPORTED; /* [MQTT-3.2.2-13] */
    if (h->cfg->message_size_limit && cn->will_payload.len > h->cfg->message_size_limit)
        return MQTT_RC_PACKET_TOO_LARGE;
    if ((cn->will_props.has & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) &&
        cn->will_props.payload_format == 1 && !mqtt_utf8_valid(cn->will_payload))
        return MQTT_RC_PAYLOAD_FORMAT_INVALID;
    return 0;
}

static uint32_t
session_expiry(const struct hub *h, const struct mqtt_connect *cn)
{
    uint32_t want;

    if (cn->version == MQTT_V5)
        want = (cn->props.has & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY)) ? cn->props.session_expiry
                                                                        : 0;
    else
        want = cn->clean_start ? 0 : SESS_EXPIRY_NEVER;
    /* persistent_client_expiration caps how long any persistent session outlives its client. */
    int64_t cap = h->cfg->persistent_client_expiration;
    if (want == 0 || cap < 0 || (want != SESS_EXPIRY_NEVER && want <= cap))
        return want;
    return cap >= (int64_t)SESS_EXPIRY_NEVER ? SESS_EXPIRY_NEVER - 1 : (uint32_t)cap;
}

static void
write_connack(struct client *c, const struct mqtt_connect *cn, bool session_present,
              const char *assigned_id, bool keepalive_changed, uint32_t expiry)
{
    const struct config *cfg = c->hub->cfg;
    struct mqtt_connack ack = {.session_present = session_present, .rc = 0};

    if (c->version == MQTT_V5) {
        struct mqtt_props *p = &ack.props;
        p->has |= MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX) | MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAX);
        p->receive_max = 65535;
        p->topic_alias_max = cfg->max_topic_alias;
        if (cfg->maximum_qos < 2) {
            p->has |= MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS);
            p->maximum_qos = cfg->maximum_qos;
        }
        if (!cfg->retain_available) {
            p->has |= MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE);
            p->retain_available = 0;
        }
        if (cfg->max_packet_size) {
            p->has |= MQTT_PROP_BIT(MQTT_PROP_MAX_PACKET_SIZE);
            p->max_packet_size = cfg->max_packet_size;
        }
        if (assigned_id) {
            p->has |= MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID);
            p->assigned_client_id = slice_cstr(assigned_id);
        }
        uint32_t asked = (cn->props.has & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY))
                             ? cn->props.session_expiry
                             : 0;
        if (expiry != asked) {
            /* The server's value replaces the client's (MQTT 5, 3.2.2.3.2). */
            p->has |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
            p->session_expiry = expiry;
        }
        if (keepalive_changed) {
            p->has |= MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE);
            p->server_keep_alive = c->keepalive;
        }
    }
    if (mqtt_encode_connack(client_out(c), c->version, &ack) == 0)
        client_wrote(c);
}

/* Apply the client's limits on what we send it (MQTT 5 CONNECT properties). */
static void
take_client_limits(struct client *c, const struct mqtt_connect *cn)
{
    uint32_t window = c->hub->cfg->max_inflight_messages;

    if (window == 0 || window > 65535)
        window = 65535;
    c->send_window = (uint16_t)window;
    if (cn->version != MQTT_V5)
        return;
    if ((cn->props.has & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX)) && cn->props.receive_max < window)
        c->send_window = cn->props.receive_max;
    if (cn->props.has & MQTT_PROP_BIT(MQTT_PROP_MAX_PACKET_SIZE))
        c->max_packet_out = cn->props.max_packet_size;
    if (cn->props.has & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAX))
        c->alias_max_out = cn->props.topic_alias_max;
    c->problem_info = !(cn->props.has & MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFO)) ||
                      cn->props.request_problem_info;
}

/* Find, take over or create the session for `id`. Sets *present. */
static struct session *
attach_session(struct client *c, struct slice id, const struct mqtt_connect *cn, bool *present,
               bool *replaced)
{
    struct hub *h = c->hub;
    struct session *s = sess_find(h, id);

    assert(!s || s->hub == h); /* connections were handed to the owner of their client ID */
    *present = *replaced = false;
    if (s && s->client) {
        /* Session takeover [MQTT-3.1.4-3]: the old connection is closed, MQTT 5 with 0x8E. */
        struct client *old = s->client;
        log_info("session taken over client=%s old_addr=%s new_addr=%s", s->id,
                 conn_peer(old->conn), conn_peer(c->conn));
        client_kick(old, MQTT_RC_SESSION_TAKEN_OVER);
        app_event_disconnected(old);
        s->client = NULL;
        old->sess = NULL;
        atomic_fetch_sub_explicit(&h->all->n_connected, 1, memory_order_relaxed);
        if (!old->send_will)
            sess_clear_will(s);
        else if (s->will && s->will_delay == 0)
            sess_fire_will(s);
    }
    if (s) {
        /* A new connection before the will delay passed cancels the will [MQTT-3.1.3-9]. */
        sess_clear_will(s);
        list_remove(&s->offline_link);
        s->expire_at = 0;
    }
    /* A session an application asked to discard (its old connection not closed yet) is
     * not resumed either. */
    if (s && (cn->clean_start || s->discard)) {
        sess_destroy(s); /* [MQTT-3.1.2-4] discard the old session */
        s = NULL;
        *replaced = true;
    }
    if (s) {
        *present = true; /* [MQTT-3.2.2-3] */
        s->version = cn->version;
    } else {
        s = sess_create(h, id, cn->version);
    }
    return s;
}

static struct msg *
make_will(struct client *c, const struct mqtt_connect *cn, uint64_t origin)
{
    return msg_new(cn->will_topic, cn->will_payload, cn->version == MQTT_V5 ? &cn->will_props : NULL,
                   cn->will_qos, cn->will_retain, origin, c->hub->now);
}

void
on_connect(struct client *c, uint8_t flags, struct slice body)
{
    struct hub *h = c->hub;
    const struct config *cfg = h->cfg;
    struct mqtt_connect cn;
    char assigned[64];
    const char *assigned_id = NULL;
    int rc = mqtt_decode_connect(flags, body, &cn);

    if (rc != 0) {
        uint8_t v = peek_version(body);
        if (rc == MQTT_RC_UNSUPPORTED_VERSION || v == MQTT_V5)
            refuse(c, v, (uint8_t)rc);
        else
            client_fail(c, (uint8_t)rc); /* 3.x has no CONNACK code for a malformed CONNECT */
        return;
    }
    c->version = cn.version;
    if (cn.version == MQTT_V5 && (cn.props.has & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD))) {
        refuse(c, cn.version, MQTT_RC_BAD_AUTH_METHOD); /* no extended auth methods yet */
        return;
    }
    if ((rc = check_will(h, &cn)) != 0) {
        refuse(c, cn.version, (uint8_t)rc);
        return;
    }
    if (cfg->max_connections >= 0 &&
        atomic_load_explicit(&h->all->n_connected, memory_order_relaxed) >=
            (size_t)cfg->max_connections) {
        h->stats.conns_full_refused++;
        refuse(c, cn.version, MQTT_RC_SERVER_BUSY);
        return;
    }
    struct slice id = cn.client_id;
    if (id.len == 0) {
        /* [MQTT-3.1.3-6..8]: only a clean 3.1.1 session or MQTT 5 may leave the id to us. */
        bool ok = cfg->allow_zero_length_clientid &&
                  (cn.version == MQTT_V5 || (cn.version == MQTT_V311 && cn.clean_start));
        if (!ok) {
            refuse(c, cn.version, MQTT_RC_CLIENT_ID_INVALID);
            return;
        }
        assign_client_id(h, assigned, sizeof(assigned));
        id = slice_cstr(assigned);
        if (cn.version == MQTT_V5)
            assigned_id = assigned;
    }
    /* Memory is short (overload.c): no new sessions. A client whose session exists may come
     * back, since taking its queued messages (or discarding them) is how memory recovers. */
    if (overload_level(h) >= MEM_HIGH && (cn.client_id.len == 0 || !sess_find(h, id))) {
        h->stats.conns_mem_refused++;
        refuse(c, cn.version, MQTT_RC_QUOTA_EXCEEDED); /* 3.1.1: 3, server unavailable */
        return;
    }

    bool keepalive_changed = false;
    c->keepalive = cn.keepalive;
    if (cfg->max_keepalive && (cn.keepalive == 0 || cn.keepalive > cfg->max_keepalive) &&
        cfg->max_keepalive < 65535) {
        if (cn.version != MQTT_V5) {
            /* 3.x has no way to tell the client another keepalive: refuse, as Mosquitto does. */
            refuse(c, cn.version, MQTT_RC_CLIENT_ID_INVALID);
            return;
        }
        c->keepalive = cfg->max_keepalive; /* told with Server Keep Alive [MQTT-3.2.2-21] */
        keepalive_changed = true;
    }
    /* Credentials (0x86), anonymous or GID refusals (0x87, 0x85), then the will, which is
     * published in the client's name and so needs `write` on its topic. */
    struct auth_identity *ident = NULL;
    if ((rc = access_connect(c, &cn, id, &ident)) != 0) {
        refuse(c, cn.version, (uint8_t)rc);
        return;
    }
    if (cn.has_will && access_publish(h, ident, cn.will_topic) != 0) {
        auth_identity_free(ident);
        refuse(c, cn.version, MQTT_RC_NOT_AUTHORIZED);
        return;
    }
    take_client_limits(c, &cn);

    bool present, replaced;
    struct session *s = attach_session(c, id, &cn, &present, &replaced);
    access_attach(s, ident);
    s->expiry = session_expiry(h, &cn);
    s->client = c;
    c->sess = s;
    c->state = CLIENT_CONNECTED;
    c->send_will = true;
    if (auth_identity_has_tokens(ident))
        token_watch_add(c);
    atomic_store_explicit(&s->online, true, memory_order_relaxed);
    size_t now_connected =
        atomic_fetch_add_explicit(&h->all->n_connected, 1, memory_order_relaxed) + 1;
    size_t max = atomic_load_explicit(&h->all->max_connected, memory_order_relaxed);
    while (now_connected > max &&
           !atomic_compare_exchange_weak_explicit(&h->all->max_connected, &max, now_connected,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    h->stats.clients_total++;
    if (cn.has_will) {
        struct msg *will = make_will(c, &cn, s->serial);
        uint32_t delay = (cn.will_props.has & MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY))
                             ? cn.will_props.will_delay
                             : 0;
        if (will)
            sess_set_will(s, will, delay);
    }
    /* The record follows the new expiry and will; a persistent session's CONNACK leaves once
     * it has committed, so a client told "session present" later finds it after a crash. */
    size_t ops = persist_ops(h);
    bool was_durable = atomic_load_explicit(&s->durable, memory_order_relaxed);
    persist_sess_update(s, was_durable);
    if (persist_ops(h) != ops)
        persist_hold(c);
    /* Other hubs may have read the old `durable` flag for messages still on their way here:
     * the CONNACK waits until those have arrived and their entries have committed. That
     * holds too when an earlier CONNECT made the session durable and its fence is still
     * out (fence_acks): this one took the session over, or it went offline, before the
     * answers came back, and those messages may still be on their way. And when Clean Start
     * replaced a session: entries other hubs wrote for the old one carry the same client ID,
     * and those committing after this CONNACK's batch would be loaded into the new session
     * after a crash; the fence makes the CONNACK wait until they have arrived here and their
     * drops have committed. */
    if (persist_sess(s) &&
        ((present && (!was_durable || s->fence_acks > 0)) || replaced))
        persist_fence(c);
    write_connack(c, &cn, present, assigned_id, keepalive_changed, s->expiry);
    c->conn_id = atomic_fetch_add_explicit(&h->all->next_conn_id, 1, memory_order_relaxed) + 1;
    c->connack_wall_ms = app_wall_ms();
    log_info("client connected client=%s addr=%s version=%u clean=%d keepalive=%u", s->id,
             conn_peer(c->conn), cn.version, cn.clean_start, c->keepalive);
    app_event_connected(c);
    if (present)
        sess_resume(s);
}
