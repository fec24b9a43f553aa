/*
 * msg.c - refcounted immutable messages; see msg.h.
 */
#include "route/msg.h"

#include <stdlib.h>
#include <string.h>

/* Point a slice that referred into `from` at the same offset inside `to`. */
static void
rebase(struct slice *s, const uint8_t *from, const uint8_t *to)
{
    if (s->len)
        s->p = to + (s->p - from);
}

struct msg *
msg_new(struct slice topic, struct slice payload, const struct mqtt_props *props, uint8_t qos,
        bool retain, uint64_t origin, uint64_t now)
{
    size_t raw_len = props ? props->raw.len : 0;
    struct msg *m = malloc(sizeof(*m) + topic.len + payload.len + raw_len + 1);

    if (!m)
        return NULL;
    uint8_t *p = (uint8_t *)(m + 1);
    memset(&m->props, 0, sizeof(m->props));
    atomic_init(&m->refs, 1);
    m->qos = qos;
    m->retain = retain;
    m->origin = origin;
    m->expiry_at = 0;
    atomic_init(&m->store_id, 0);

    memcpy(p, topic.p, topic.len);
    m->topic = slice_make(p, topic.len);
    p += topic.len;
    if (payload.len)
        memcpy(p, payload.p, payload.len);
    m->payload = slice_make(p, payload.len);
    p += payload.len;

    if (props) {
        m->props = *props;
        if (raw_len) {
            const uint8_t *from = props->raw.p;
            memcpy(p, from, raw_len);
            m->props.raw = slice_make(p, raw_len);
            rebase(&m->props.content_type, from, p);
            rebase(&m->props.response_topic, from, p);
            rebase(&m->props.correlation_data, from, p);
            rebase(&m->props.reason_string, from, p);
        }
        if (props->has & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))
            m->expiry_at = now + (uint64_t)props->message_expiry * 1000u;
        /* Only what a PUBLISH may carry onward stays. */
        m->props.has &= MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) |
                        MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) |
                        MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
                        MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) | MQTT_PROP_BIT(MQTT_PROP_USER);
        m->props.sub_ids = NULL;
        m->props.n_sub_ids = 0;
    }
    return m;
}

void
msg_unref(struct msg *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

uint32_t
msg_expiry_left(const struct msg *m, uint64_t now)
{
    if (m->expiry_at == 0)
        return 0;
    if (now >= m->expiry_at)
        return 0;
    uint64_t left = (m->expiry_at - now + 999) / 1000;
    return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}
