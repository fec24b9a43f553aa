/*
 * on_subscribe.c - SUBSCRIBE and UNSUBSCRIBE.
 *
 * Each filter gets its own reason code; a refused filter does not spoil the others
 * [MQTT-3.8.4-6]. Retained messages follow the SUBACK, as Retain Handling says.
 */
#include <stdlib.h>

#include "base/log.h"
#include "mqtt/topic.h"
#include "session/internal.h"

#define MAX_FILTERS_PER_PACKET 1024

struct pending_retained {
    struct slice filter;
    struct sub_opts opts;
};

/* Decide one filter. Returns the granted QoS (0..2) or a failure reason code (>= 0x80);
 * *is_new tells whether the subscription did not exist before. */
static uint8_t
subscribe_one(struct client *c, struct slice filter, const struct mqtt_sub_opts *o,
              uint32_t sub_id, bool *is_new, bool *is_shared)
{
    struct hub *h = c->hub;
    struct session *s = c->sess;
    struct slice group, inner;
    int shared = mqtt_shared_split(filter, &group, &inner);

    *is_shared = shared == 1;
    if (shared < 0 || !mqtt_topic_filter_valid(shared == 1 ? inner : filter))
        return MQTT_RC_TOPIC_FILTER_INVALID;
    if (shared == 1 && o->no_local)
        return MQTT_RC_PROTOCOL_ERROR; /* [MQTT-3.8.3-4] */
    if (!p2p_filter_allowed(&h->p2p, shared == 1 ? inner : filter,
                            slice_make(s->id, s->id_len)))
        return MQTT_RC_NOT_AUTHORIZED; /* another client's P2P topic */
    if (!access_subscribe(s, shared == 1 ? inner : filter))
        return MQTT_RC_NOT_AUTHORIZED; /* the ACL grants `read` on none of its topics */
    uint32_t max_subs = h->cfg->max_subscriptions_per_client;
    if (max_subs && s->n_subs >= max_subs && !sess_has_sub(s, filter))
        return MQTT_RC_QUOTA_EXCEEDED; /* replacing one is fine, adding one more is not */
    struct sub_opts opts = {
        .qos = o->qos < h->cfg->maximum_qos ? o->qos : h->cfg->maximum_qos,
        .no_local = o->no_local,
        .retain_as_published = o->retain_as_published,
        .retain_handling = o->retain_handling,
        .sub_id = sub_id,
    };
    *is_new = sess_subscribe(s, filter, &opts, shared == 1) == 1;
    return opts.qos;
}

void
on_subscribe(struct client *c, uint8_t flags, struct slice body)
{
    struct hub *h = c->hub;
    struct mqtt_subscribe sub;
    int rc = mqtt_decode_subscribe(flags, body, c->version, &sub);

    if (rc != 0) {
        client_fail(c, (uint8_t)rc);
        return;
    }
    if (sub.n_entries > MAX_FILTERS_PER_PACKET) {
        client_fail(c, MQTT_RC_QUOTA_EXCEEDED);
        return;
    }
    size_t ops = persist_ops(h);
    uint8_t rcs[MAX_FILTERS_PER_PACKET];
    struct pending_retained pending[MAX_FILTERS_PER_PACKET];
    size_t n = 0, n_pending = 0, pos = 0;
    struct slice filter;
    struct mqtt_sub_opts o;
    uint32_t sub_id = (sub.props.has & MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID))
                          ? sub.props.subscription_id
                          : 0;

    while (mqtt_subscribe_next(&sub, &pos, &filter, &o)) {
        bool is_new = false, is_shared = false;
        uint8_t granted = subscribe_one(c, filter, &o, sub_id, &is_new, &is_shared);
        if (granted == MQTT_RC_PROTOCOL_ERROR) {
            client_fail(c, MQTT_RC_PROTOCOL_ERROR);
            return;
        }
        rcs[n++] = granted;
        if (granted >= 0x80) {
            log_info("subscribe refused client=%s filter=%.*s reason=0x%02x", c->sess->id,
                     SLICE_FMT(filter), granted);
            continue;
        }
        /* Retained messages: never for shared subscriptions (MQTT 5 section 4.8.2), and as
         * Retain Handling asks [MQTT-3.3.1-9, MQTT-3.3.1-10, MQTT-3.3.1-11]. */
        if (is_shared || o.retain_handling == 2 || (o.retain_handling == 1 && !is_new))
            continue;
        pending[n_pending].filter = filter;
        pending[n_pending].opts = (struct sub_opts){.qos = granted, .sub_id = sub_id};
        n_pending++;
    }
    /* A persistent session's SUBACK leaves once its subscriptions have committed. */
    if (persist_ops(h) != ops)
        persist_hold(c);
    struct mqtt_suback ack = {.packet_id = sub.packet_id, .rcs = rcs, .n_rcs = (uint32_t)n};
    if (mqtt_encode_suback(client_out(c), MQTT_SUBACK, c->version, &ack) == 0)
        client_wrote(c);
    for (size_t i = 0; i < n_pending; i++)
        hub_send_retained(h, c->sess, pending[i].filter, &pending[i].opts);
}

void
on_unsubscribe(struct client *c, uint8_t flags, struct slice body)
{
    struct mqtt_unsubscribe un;
    int rc = mqtt_decode_unsubscribe(flags, body, c->version, &un);

    if (rc != 0) {
        client_fail(c, (uint8_t)rc);
        return;
    }
    if (un.n_entries > MAX_FILTERS_PER_PACKET) {
        client_fail(c, MQTT_RC_QUOTA_EXCEEDED);
        return;
    }
    uint8_t rcs[MAX_FILTERS_PER_PACKET];
    size_t n = 0, pos = 0, ops = persist_ops(c->hub);
    struct slice filter;

    while (mqtt_unsubscribe_next(&un, &pos, &filter)) {
        rc = sess_unsubscribe(c->sess, filter);
        rcs[n++] = rc == 0 ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
    }
    if (persist_ops(c->hub) != ops)
        persist_hold(c);
    struct mqtt_suback ack = {.packet_id = un.packet_id, .rcs = rcs, .n_rcs = (uint32_t)n};
    if (mqtt_encode_suback(client_out(c), MQTT_UNSUBACK, c->version, &ack) == 0)
        client_wrote(c);
}
