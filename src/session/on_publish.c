/*
 * on_publish.c - PUBLISH from a client: limits, topic aliases, the QoS 1/2 receive flows.
 *
 * QoS 2 is delivered onward when the PUBLISH arrives and its packet id is remembered until
 * PUBREL; a PUBLISH repeating a remembered id is acknowledged again but not routed again, so
 * subscribers get it exactly once (method B of figure 4.3 in MQTT 3.1.1, section 4.3.3).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "session/internal.h"

static bool
qos2_seen(const struct session *s, uint16_t id)
{
    return s->qos2_in && (s->qos2_in[id >> 3] & (1u << (id & 7)));
}

void
qos2_mark(struct session *s, uint16_t id)
{
    if (!s->qos2_in)
        s->qos2_in = xcalloc(65536 / 8, 1);
    if (!qos2_seen(s, id)) {
        s->qos2_in[id >> 3] |= (uint8_t)(1u << (id & 7));
        s->n_qos2_in++;
    }
}

bool
qos2_release(struct session *s, uint16_t id)
{
    if (!qos2_seen(s, id))
        return false;
    s->qos2_in[id >> 3] &= (uint8_t)~(1u << (id & 7));
    s->n_qos2_in--;
    return true;
}

/* Resolve an MQTT 5 topic alias [MQTT-3.3.2-10..12]. Returns 0 or the reason code to
 * disconnect with; on success p->topic is the full topic. */
static int
resolve_alias(struct client *c, struct mqtt_publish *p)
{
    uint16_t a = p->props.topic_alias;
    uint16_t max = c->hub->cfg->max_topic_alias;

    if (!(p->props.has & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)))
        return p->topic.len ? 0 : MQTT_RC_PROTOCOL_ERROR;
    if (a == 0 || a > max)
        return MQTT_RC_TOPIC_ALIAS_INVALID; /* [MQTT-3.3.2-8, MQTT-3.3.2-9] */
    if (!c->alias_in) {
        c->alias_in = xcalloc((size_t)max + 1, sizeof(char *));
        c->n_alias_in = max;
    }
    if (p->topic.len) {
        free(c->alias_in[a]);
        c->alias_in[a] = xstrndup(p->topic.p, p->topic.len);
        return 0;
    }
    if (!c->alias_in[a])
        return MQTT_RC_PROTOCOL_ERROR; /* an alias never set */
    p->topic = slice_cstr(c->alias_in[a]);
    return 0;
}

/* Checks that refuse a single message without closing the connection. 0 or a reason code. */
static int
check_message(struct client *c, const struct mqtt_publish *p)
{
    const struct config *cfg = c->hub->cfg;

    if (cfg->message_size_limit && p->payload.len > cfg->message_size_limit)
        return MQTT_RC_QUOTA_EXCEEDED;
    if (p->topic.len >= 4 && memcmp(p->topic.p, "$SYS", 4) == 0)
        return MQTT_RC_NOT_AUTHORIZED; /* $SYS belongs to the broker */
    if ((p->props.has & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) && p->props.payload_format == 1 &&
        !mqtt_utf8_valid(p->payload))
        return MQTT_RC_PAYLOAD_FORMAT_INVALID; /* MQTT 5 section 3.3.2.3.2 */
    return 0;
}

static void ack(struct client *c, const struct mqtt_publish *p, uint8_t rc);

/* Memory is short (overload.c): QoS 0 is dropped from 90 % of memory_limit, QoS 1/2 refused
 * from 100 %. Returns true when the publish was dealt with here. */
static bool
shed_for_memory(struct client *c, const struct mqtt_publish *p)
{
    static struct log_ratelimit rl;
    struct hub *h = c->hub;
    enum mem_level level = overload_level(h);

    if (level == MEM_OK || (p->qos > 0 && level < MEM_FULL))
        return false;
    if (p->qos == 0) {
        h->stats.msgs_mem_dropped++;
        return true;
    }
    h->stats.msgs_mem_refused++;
    if (log_ratelimit(&rl, 5))
        log_notice("publish refused, memory full client=%s topic=%.*s", c->sess->id,
                   SLICE_FMT(p->topic));
    /* Nothing is acknowledged that was not taken: MQTT 5 is told 0x97; 3.x has no code for
     * it, so the connection ends and the client resends when it comes back (as for a full
     * store). */
    if (c->version == MQTT_V5)
        ack(c, p, MQTT_RC_QUOTA_EXCEEDED);
    else
        client_fail(c, MQTT_RC_QUOTA_EXCEEDED);
    return true;
}

static void
ack(struct client *c, const struct mqtt_publish *p, uint8_t rc)
{
    if (c->version != MQTT_V5 && rc >= 0x80)
        rc = 0; /* 3.x acks carry no reason: the message is dropped silently */
    if (c->version != MQTT_V5 && rc == MQTT_RC_NO_MATCHING_SUBSCRIBERS)
        rc = 0;
    if (p->qos == 1)
        client_send_ack(c, MQTT_PUBACK, p->packet_id, rc);
    else if (p->qos == 2)
        client_send_ack(c, MQTT_PUBREC, p->packet_id, rc);
}

void
on_publish(struct client *c, uint8_t flags, struct slice body)
{
    struct hub *h = c->hub;
    struct session *s = c->sess;
    struct mqtt_publish p;
    int rc = mqtt_decode_publish(flags, body, c->version, &p);

    if (rc != 0) {
        client_fail(c, (uint8_t)rc);
        return;
    }
    if (p.qos > h->cfg->maximum_qos) {
        client_fail(c, MQTT_RC_QOS_NOT_SUPPORTED); /* [MQTT-3.2.2-11] */
        return;
    }
    if (p.retain && !h->cfg->retain_available) {
        client_fail(c, MQTT_RC_RETAIN_NOT_SUPPORTED); /* [MQTT-3.2.2-14] */
        return;
    }
    if (c->version == MQTT_V5 && (rc = resolve_alias(c, &p)) != 0) {
        client_fail(c, (uint8_t)rc);
        return;
    }
    h->stats.msgs_received++;
    h->stats.msgs_received_qos[p.qos]++;
    h->stats.payload_in_qos[p.qos] += p.payload.len;
    if (p.qos == 2 && qos2_seen(s, p.packet_id)) {
        ack(c, &p, 0); /* a resend before PUBREL: acknowledged, not routed again */
        return;
    }
    if (p.qos == 2 && s->n_qos2_in >= 65535) {
        client_fail(c, MQTT_RC_RECEIVE_MAX_EXCEEDED); /* [MQTT-3.3.4-9] */
        return;
    }
    if (slice_eq(p.topic, SLICE(TOKEN_UPLOAD_TOPIC))) {
        /* A token refresh is addressed to the broker: it is never routed, and it is the one
         * $SYS topic a client may publish to. */
        rc = token_watch_upload(c, p.payload);
        if (p.qos == 2 && rc == 0)
            qos2_mark(s, p.packet_id); /* in memory only: nothing durable hangs on it */
        ack(c, &p, (uint8_t)rc);
        return;
    }
    if (shed_for_memory(c, &p))
        return;
    if ((rc = check_message(c, &p)) != 0) {
        static struct log_ratelimit rl;
        if (log_ratelimit(&rl, 5))
            log_notice("publish refused client=%s topic=%.*s reason=0x%02x (%s)", s->id,
                       SLICE_FMT(p.topic), rc, mqtt_rc_str(rc));
        ack(c, &p, (uint8_t)rc);
        return;
    }
    if ((rc = access_publish(h, s->auth, p.topic)) != 0) {
        /* MQTT 5 learns it from the PUBACK/PUBREC (0x87); 3.x has no way to say it, so the
         * message is dropped silently, as Mosquitto does. */
        static struct log_ratelimit rl;
        if (log_ratelimit(&rl, 5))
            log_notice("publish denied by acl client=%s topic=%.*s", s->id, SLICE_FMT(p.topic));
        ack(c, &p, (uint8_t)rc);
        return;
    }
    if (p.qos > 0 && h->all->store &&
        atomic_load_explicit(&h->all->store_full, memory_order_relaxed)) {
        /* The store cannot take more (disk full): nothing durable can be promised. MQTT 5
         * says so; 3.x has no code for it, so the connection ends and the client resends
         * when it comes back. */
        static struct log_ratelimit rl;
        if (log_ratelimit(&rl, 5))
            log_notice("publish refused, store full client=%s topic=%.*s", s->id,
                       SLICE_FMT(p.topic));
        if (c->version == MQTT_V5)
            ack(c, &p, MQTT_RC_QUOTA_EXCEEDED);
        else
            client_fail(c, MQTT_RC_QUOTA_EXCEEDED);
        return;
    }
    size_t ops = persist_ops(h);
    struct msg *m = msg_new(p.topic, p.payload, c->version == MQTT_V5 ? &p.props : NULL, p.qos,
                            p.retain, s->serial, h->now);
    if (!m) {
        /* Not taken: 3.x cannot be told so but by the end of the connection. */
        if (c->version == MQTT_V5)
            ack(c, &p, MQTT_RC_QUOTA_EXCEEDED);
        else
            client_fail(c, MQTT_RC_QUOTA_EXCEEDED);
        return;
    }
    rc = hub_route(h, s, m);
    msg_unref(m);
    if (rc == MQTT_RC_TOPIC_NAME_INVALID) {
        static struct log_ratelimit rl;
        if (log_ratelimit(&rl, 5))
            log_notice("p2p refused, parent topic not allowed client=%s topic=%.*s", s->id,
                       SLICE_FMT(p.topic));
    } else if (rc == MQTT_RC_QUOTA_EXCEEDED && p.qos > 0) {
        /* It matched, but every target's queue was full: nobody has it. MQTT 5 hears 0x97
         * [MQTT-3.4.2-1, MQTT-3.5.2-1]. A 3.x acknowledgement carries no reason, and a
         * PUBACK would be a lie: the connection ends without one, as for a full store or
         * memory, and the client resends when it comes back (docs/design.md "Slow
         * consumers"). */
        static struct log_ratelimit rl;
        h->stats.publish_refused_full++;
        if (log_ratelimit(&rl, 5))
            log_notice("publish refused, every target full client=%s topic=%.*s version=%u",
                       s->id, SLICE_FMT(p.topic), c->version);
        if (c->version != MQTT_V5) {
            client_fail(c, MQTT_RC_QUOTA_EXCEEDED);
            return;
        }
    }
    if (p.qos == 2 && rc < 0x80) {
        qos2_mark(s, p.packet_id);
        persist_qos2(s, p.packet_id, true);
    }
    /* Durable state written for it (queue entries on any hub, retained): the acknowledgement
     * leaves once this hub's batch has committed (synced or not, per persistence_sync). */
    if (p.qos > 0 && persist_ops(h) != ops)
        persist_hold(c);
    ack(c, &p, (uint8_t)rc);
}
