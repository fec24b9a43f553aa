/*
 * encode.c - packets to bytes.
 *
 * Each encoder first computes the remaining length, then reserves the whole packet once and
 * writes it front to back. Encoders trust their input: lengths fit their fields, QoS is 0..2,
 * strings were validated when they came in. The MQTT 3.1.1 return codes are derived from
 * MQTT 5 reason codes here and nowhere else.
 */
#include "mqtt/packet.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

static inline uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static inline uint8_t *
put_bytes(uint8_t *p, struct slice s)
{
    if (s.len)
        memcpy(p, s.p, s.len);
    return p + s.len;
}

/* A string or binary field: two-byte length, then the bytes. */
static inline uint8_t *
put_str(uint8_t *p, struct slice s)
{
    assert(s.len <= UINT16_MAX);
    return put_bytes(put_u16(p, (uint16_t)s.len), s);
}

/* Local copies of the varint helpers, so the per-packet path inlines them. */
static inline size_t
varint_size(uint32_t v)
{
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

static inline uint8_t *
varint_put(uint8_t *p, uint32_t v)
{
    while (v >= 128) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reserve a packet of `rem` remaining bytes, write its fixed header and return where the
 * variable header goes in *out. */
static inline int
begin(struct buf *b, uint8_t first, size_t rem, uint8_t **out)
{
    if (rem > MQTT_VARINT_MAX)
        return -EMSGSIZE;
    int rc = buf_reserve(b, 1 + varint_size((uint32_t)rem) + rem);
    if (rc != 0)
        return rc;
    uint8_t *p = b->p + b->len;
    *p++ = first;
    *out = varint_put(p, (uint32_t)rem);
    return 0;
}

/* Close a packet begun with begin(); `end` is one past its last byte. */
static inline void
finish(struct buf *b, uint8_t *end)
{
    b->len = (size_t)(end - b->p);
    assert(b->len <= b->cap);
}

static inline bool
props_empty(const struct mqtt_props *p)
{
    return (p->has | p->n_sub_ids | p->raw.len) == 0;
}

/* Property block size with its length prefix, in MQTT 5; 0 before. *size gets the block's. */
static inline size_t
props_total(int version, const struct mqtt_props *p, size_t *size)
{
    *size = 0;
    if (version != MQTT_V5)
        return 0;
    if (props_empty(p))
        return 1;
    *size = mqtt_props_size(p);
    if (*size > MQTT_VARINT_MAX)
        return SIZE_MAX / 4; /* makes the packet too large for begin() */
    return varint_size((uint32_t)*size) + *size;
}

/* Write a property block sized by props_total(). */
static inline uint8_t *
put_props(uint8_t *out, const struct mqtt_props *p, size_t size)
{
    if (size == 0) {
        *out = 0;
        return out + 1;
    }
    return out + mqtt_props_put(out, p, size);
}

/* ---- CONNECT ---- */

int
mqtt_encode_connect(struct buf *b, const struct mqtt_connect *c)
{
    struct slice name = c->version == MQTT_V31 ? SLICE("MQIsdp") : SLICE("MQTT");
    size_t ps, wps = 0;
    size_t rem = 2 + name.len + 1 + 1 + 2 + props_total(c->version, &c->props, &ps) + 2 +
                 c->client_id.len;
    size_t will_total = 0;
    uint8_t flags = 0;
    uint8_t *p;
    int rc;

    if (c->has_will) {
        will_total = props_total(c->version, &c->will_props, &wps);
        rem += will_total + 2 + c->will_topic.len + 2 + c->will_payload.len;
        flags |= 0x04 | (uint8_t)((c->will_qos & 3) << 3) | (c->will_retain ? 0x20 : 0);
    }
    if (c->has_username) {
        rem += 2 + c->username.len;
        flags |= 0x80;
    }
    if (c->has_password) {
        rem += 2 + c->password.len;
        flags |= 0x40;
    }
    if (c->clean_start)
        flags |= 0x02;
    if ((rc = begin(b, MQTT_CONNECT << 4, rem, &p)) != 0)
        return rc;
    p = put_str(p, name);
    *p++ = c->version;
    *p++ = flags;
    p = put_u16(p, c->keepalive);
    if (c->version == MQTT_V5)
        p = put_props(p, &c->props, ps);
    p = put_str(p, c->client_id);
    if (c->has_will) {
        if (c->version == MQTT_V5)
            p = put_props(p, &c->will_props, wps);
        p = put_str(p, c->will_topic);
        p = put_str(p, c->will_payload);
    }
    if (c->has_username)
        p = put_str(p, c->username);
    if (c->has_password)
        p = put_str(p, c->password);
    finish(b, p);
    return 0;
}

/* ---- CONNACK ---- */

/* MQTT 5 reason code to MQTT 3.1.1 CONNACK return code (3.1.1 table 3.1). */
static uint8_t
connack_rc3(uint8_t rc)
{
    switch (rc) {
    case MQTT_RC_SUCCESS: return 0;
    case MQTT_RC_UNSUPPORTED_VERSION: return 1;
    case MQTT_RC_CLIENT_ID_INVALID: return 2;
    /* 3.1.1's code 4 is for user name or password data that is malformed (table 3.1); a
     * wrong password is a refusal to authorize, 5, which is also what Mosquitto sends. */
    case MQTT_RC_BAD_CREDENTIALS:
    case MQTT_RC_NOT_AUTHORIZED:
    case MQTT_RC_BANNED:
    case MQTT_RC_BAD_AUTH_METHOD: return 5;
    default: return 3; /* server unavailable: the closest for every server-side failure */
    }
}

int
mqtt_encode_connack(struct buf *b, int version, const struct mqtt_connack *c)
{
    size_t ps;
    uint8_t *p;
    int rc;

    uint8_t code = version == MQTT_V5 ? c->rc : connack_rc3(c->rc);
    /* Session present only with success [MQTT-3.2.2-4]; 3.1 has no such flag. */
    uint8_t ack_flags = c->session_present && code == 0 && version != MQTT_V31;
    if ((rc = begin(b, MQTT_CONNACK << 4, 2 + props_total(version, &c->props, &ps), &p)) != 0)
        return rc;
    *p++ = ack_flags;
    *p++ = code;
    if (version == MQTT_V5)
        p = put_props(p, &c->props, ps);
    finish(b, p);
    return 0;
}

/* ---- PUBLISH ---- */

static inline size_t
publish_rem(int version, const struct mqtt_publish *pub, size_t *ps)
{
    return 2 + pub->topic.len + (pub->qos ? 2 : 0) + props_total(version, &pub->props, ps) +
           pub->payload.len;
}

size_t
mqtt_publish_size(int version, const struct mqtt_publish *p)
{
    size_t ps;
    size_t rem = publish_rem(version, p, &ps);
    return 1 + (rem <= MQTT_VARINT_MAX ? varint_size((uint32_t)rem) : 4) + rem;
}

int
mqtt_encode_publish(struct buf *b, int version, const struct mqtt_publish *pub)
{
    size_t ps;
    uint8_t *p;
    int rc;

    uint8_t first = (uint8_t)(MQTT_PUBLISH << 4 | (pub->qos & 3) << 1 | (pub->retain ? 1 : 0));
    if (pub->dup && pub->qos)
        first |= 0x08; /* [MQTT-3.3.1-2] */
    if ((rc = begin(b, first, publish_rem(version, pub, &ps), &p)) != 0)
        return rc;
    p = put_str(p, pub->topic);
    if (pub->qos)
        p = put_u16(p, pub->packet_id);
    if (version == MQTT_V5)
        p = put_props(p, &pub->props, ps);
    p = put_bytes(p, pub->payload);
    finish(b, p);
    return 0;
}

int
mqtt_encode_publish_head(struct buf *b, int version, const struct mqtt_publish *pub)
{
    size_t ps;
    size_t rem = publish_rem(version, pub, &ps);
    int rc;

    if (rem > MQTT_VARINT_MAX)
        return -EMSGSIZE;
    /* Room for everything but the payload, which the caller sends by reference. */
    if ((rc = buf_reserve(b, 1 + varint_size((uint32_t)rem) + rem - pub->payload.len)) != 0)
        return rc;
    uint8_t first = (uint8_t)(MQTT_PUBLISH << 4 | (pub->qos & 3) << 1 | (pub->retain ? 1 : 0));
    if (pub->dup && pub->qos)
        first |= 0x08; /* [MQTT-3.3.1-2] */
    uint8_t *p = b->p + b->len;
    *p++ = first;
    p = varint_put(p, (uint32_t)rem);
    p = put_str(p, pub->topic);
    if (pub->qos)
        p = put_u16(p, pub->packet_id);
    if (version == MQTT_V5)
        p = put_props(p, &pub->props, ps);
    finish(b, p);
    return 0;
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */

int
mqtt_encode_ack(struct buf *b, enum mqtt_type type, int version, const struct mqtt_ack *a)
{
    size_t ps = 0, rem = 2;
    uint8_t *p;
    int rc;

    if (version == MQTT_V5) {
        ps = mqtt_props_size(&a->props);
        /* Reason code and properties are omitted when they say nothing (section 3.4.2.1). */
        if (ps)
            rem = 3 + (ps <= MQTT_VARINT_MAX ? varint_size((uint32_t)ps) : 4) + ps;
        else if (a->rc)
            rem = 3;
    }
    uint8_t first = (uint8_t)(type << 4 | (type == MQTT_PUBREL ? 0x2 : 0));
    if ((rc = begin(b, first, rem, &p)) != 0)
        return rc;
    p = put_u16(p, a->packet_id);
    if (rem > 2)
        *p++ = a->rc;
    if (ps)
        p = put_props(p, &a->props, ps);
    finish(b, p);
    return 0;
}

/* ---- SUBSCRIBE, UNSUBSCRIBE ---- */

int
mqtt_encode_subscribe(struct buf *b, int version, uint16_t packet_id,
                      const struct mqtt_props *props, const struct slice *filters,
                      const struct mqtt_sub_opts *opts, size_t n)
{
    static const struct mqtt_props no_props;
    size_t ps;
    uint8_t *p;
    int rc;

    if (!props)
        props = &no_props;
    size_t rem = 2 + props_total(version, props, &ps);
    for (size_t i = 0; i < n; i++)
        rem += 3 + filters[i].len;
    if ((rc = begin(b, MQTT_SUBSCRIBE << 4 | 0x2, rem, &p)) != 0)
        return rc;
    p = put_u16(p, packet_id);
    if (version == MQTT_V5)
        p = put_props(p, props, ps);
    for (size_t i = 0; i < n; i++) {
        const struct mqtt_sub_opts *o = &opts[i];
        uint8_t ob = o->qos & 3;
        if (version == MQTT_V5)
            ob |= (uint8_t)((o->no_local ? 0x04 : 0) | (o->retain_as_published ? 0x08 : 0) |
                            (o->retain_handling & 3) << 4);
        p = put_str(p, filters[i]);
        *p++ = ob;
    }
    finish(b, p);
    return 0;
}

int
mqtt_encode_unsubscribe(struct buf *b, int version, uint16_t packet_id,
                        const struct mqtt_props *props, const struct slice *filters, size_t n)
{
    static const struct mqtt_props no_props;
    size_t ps;
    uint8_t *p;
    int rc;

    if (!props)
        props = &no_props;
    size_t rem = 2 + props_total(version, props, &ps);
    for (size_t i = 0; i < n; i++)
        rem += 2 + filters[i].len;
    if ((rc = begin(b, MQTT_UNSUBSCRIBE << 4 | 0x2, rem, &p)) != 0)
        return rc;
    p = put_u16(p, packet_id);
    if (version == MQTT_V5)
        p = put_props(p, props, ps);
    for (size_t i = 0; i < n; i++)
        p = put_str(p, filters[i]);
    finish(b, p);
    return 0;
}

/* ---- SUBACK, UNSUBACK ---- */

int
mqtt_encode_suback(struct buf *b, enum mqtt_type type, int version, const struct mqtt_suback *s)
{
    size_t ps;
    uint8_t *p;
    int rc;

    /* An MQTT 3.x UNSUBACK is only the packet id. */
    size_t n_rcs = version != MQTT_V5 && type == MQTT_UNSUBACK ? 0 : s->n_rcs;
    size_t rem = 2 + props_total(version, &s->props, &ps) + n_rcs;
    if ((rc = begin(b, (uint8_t)(type << 4), rem, &p)) != 0)
        return rc;
    p = put_u16(p, s->packet_id);
    if (version == MQTT_V5) {
        p = put_props(p, &s->props, ps);
        p = put_bytes(p, slice_make(s->rcs, n_rcs));
    } else {
        /* 3.1.1 knows a single failure code [MQTT-3.9.3-2]. */
        for (size_t i = 0; i < n_rcs; i++)
            *p++ = s->rcs[i] >= 0x80 ? 0x80 : s->rcs[i];
    }
    finish(b, p);
    return 0;
}

/* ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ---- */

static int
encode_empty(struct buf *b, uint8_t first)
{
    uint8_t *p;
    int rc = begin(b, first, 0, &p);

    if (rc == 0)
        finish(b, p);
    return rc;
}

int
mqtt_encode_pingreq(struct buf *b)
{
    return encode_empty(b, MQTT_PINGREQ << 4);
}

int
mqtt_encode_pingresp(struct buf *b)
{
    return encode_empty(b, MQTT_PINGRESP << 4);
}

int
mqtt_encode_disconnect(struct buf *b, enum mqtt_type type, int version,
                       const struct mqtt_disconnect *d)
{
    size_t ps, rem = 0;
    uint8_t *p;
    int rc;

    assert(type == MQTT_DISCONNECT || (type == MQTT_AUTH && version == MQTT_V5));
    if (version != MQTT_V5)
        return encode_empty(b, (uint8_t)(type << 4));
    size_t total = props_total(version, &d->props, &ps);
    /* Success without properties is the bare fixed header; a DISCONNECT may also drop an
     * empty property length (section 3.14.2.2.1), an AUTH keeps it (section 3.15.2.2.1). */
    if (ps)
        rem = 1 + total;
    else if (d->rc)
        rem = type == MQTT_DISCONNECT ? 1 : 2;
    if ((rc = begin(b, (uint8_t)(type << 4), rem, &p)) != 0)
        return rc;
    if (rem > 0)
        *p++ = d->rc;
    if (ps)
        p = put_props(p, &d->props, ps);
    else if (rem == 2)
        *p++ = 0;
    finish(b, p);
    return 0;
}
