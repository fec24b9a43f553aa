/*
 * props.c - MQTT 5 properties: decoding with the per-packet rules of table 2-4
 * (section 2.2.2.2), walking user properties, and encoding.
 *
 * Each known property is described by its wire type and where its value lives in struct
 * mqtt_props, so decoding, sizing and encoding are table-driven loops rather than one switch
 * per property. Only USER (any packet) and SUBSCRIPTION_ID (PUBLISH) may repeat.
 */
#include "mqtt/packet.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

enum prop_kind {
    PK_NONE = 0, /* unknown identifier */
    PK_BYTE,
    PK_U16,
    PK_U32,
    PK_VARINT,
    PK_UTF8,
    PK_BIN,
    PK_PAIR,
};

struct prop_info {
    uint8_t kind;
    uint16_t off; /* offset of the value in struct mqtt_props */
};

#define PROP(id, kind, field) [MQTT_PROP_##id] = {kind, offsetof(struct mqtt_props, field)}

#define PROP_ID_LIMIT (MQTT_PROP_SHARED_SUB_AVAILABLE + 1)

static const struct prop_info prop_info[PROP_ID_LIMIT] = {
    PROP(PAYLOAD_FORMAT, PK_BYTE, payload_format),
    PROP(MESSAGE_EXPIRY, PK_U32, message_expiry),
    PROP(CONTENT_TYPE, PK_UTF8, content_type),
    PROP(RESPONSE_TOPIC, PK_UTF8, response_topic),
    PROP(CORRELATION_DATA, PK_BIN, correlation_data),
    PROP(SUBSCRIPTION_ID, PK_VARINT, subscription_id),
    PROP(SESSION_EXPIRY, PK_U32, session_expiry),
    PROP(ASSIGNED_CLIENT_ID, PK_UTF8, assigned_client_id),
    PROP(SERVER_KEEP_ALIVE, PK_U16, server_keep_alive),
    PROP(AUTH_METHOD, PK_UTF8, auth_method),
    PROP(AUTH_DATA, PK_BIN, auth_data),
    PROP(REQUEST_PROBLEM_INFO, PK_BYTE, request_problem_info),
    PROP(WILL_DELAY, PK_U32, will_delay),
    PROP(REQUEST_RESPONSE_INFO, PK_BYTE, request_response_info),
    PROP(RESPONSE_INFO, PK_UTF8, response_info),
    PROP(SERVER_REFERENCE, PK_UTF8, server_reference),
    PROP(REASON_STRING, PK_UTF8, reason_string),
    PROP(RECEIVE_MAX, PK_U16, receive_max),
    PROP(TOPIC_ALIAS_MAX, PK_U16, topic_alias_max),
    PROP(TOPIC_ALIAS, PK_U16, topic_alias),
    PROP(MAXIMUM_QOS, PK_BYTE, maximum_qos),
    PROP(RETAIN_AVAILABLE, PK_BYTE, retain_available),
    [MQTT_PROP_USER] = {PK_PAIR, 0},
    PROP(MAX_PACKET_SIZE, PK_U32, max_packet_size),
    PROP(WILDCARD_SUB_AVAILABLE, PK_BYTE, wildcard_sub_available),
    PROP(SUB_ID_AVAILABLE, PK_BYTE, sub_id_available),
    PROP(SHARED_SUB_AVAILABLE, PK_BYTE, shared_sub_available),
};

#define B(id) MQTT_PROP_BIT(MQTT_PROP_##id)

#define PUBLISH_PROPS                                                                          \
    (B(PAYLOAD_FORMAT) | B(MESSAGE_EXPIRY) | B(CONTENT_TYPE) | B(RESPONSE_TOPIC) |             \
     B(CORRELATION_DATA) | B(SUBSCRIPTION_ID) | B(TOPIC_ALIAS) | B(USER))
#define ACK_PROPS (B(REASON_STRING) | B(USER))

/* Table 2-4 of MQTT 5, by packet type. */
static const uint64_t allowed_props[16] = {
    [MQTT_CONNECT] = B(SESSION_EXPIRY) | B(AUTH_METHOD) | B(AUTH_DATA) | B(REQUEST_PROBLEM_INFO) |
                     B(REQUEST_RESPONSE_INFO) | B(RECEIVE_MAX) | B(TOPIC_ALIAS_MAX) | B(USER) |
                     B(MAX_PACKET_SIZE),
    [MQTT_CONNACK] = B(SESSION_EXPIRY) | B(ASSIGNED_CLIENT_ID) | B(SERVER_KEEP_ALIVE) |
                     B(AUTH_METHOD) | B(AUTH_DATA) | B(RESPONSE_INFO) | B(SERVER_REFERENCE) |
                     B(REASON_STRING) | B(RECEIVE_MAX) | B(TOPIC_ALIAS_MAX) | B(MAXIMUM_QOS) |
                     B(RETAIN_AVAILABLE) | B(USER) | B(MAX_PACKET_SIZE) |
                     B(WILDCARD_SUB_AVAILABLE) | B(SUB_ID_AVAILABLE) | B(SHARED_SUB_AVAILABLE),
    [MQTT_PUBLISH] = PUBLISH_PROPS,
    [MQTT_PUBACK] = ACK_PROPS,
    [MQTT_PUBREC] = ACK_PROPS,
    [MQTT_PUBREL] = ACK_PROPS,
    [MQTT_PUBCOMP] = ACK_PROPS,
    [MQTT_SUBSCRIBE] = B(SUBSCRIPTION_ID) | B(USER),
    [MQTT_SUBACK] = ACK_PROPS,
    [MQTT_UNSUBSCRIBE] = B(USER),
    [MQTT_UNSUBACK] = ACK_PROPS,
    [MQTT_DISCONNECT] = B(SESSION_EXPIRY) | B(SERVER_REFERENCE) | B(REASON_STRING) | B(USER),
    [MQTT_AUTH] = B(AUTH_METHOD) | B(AUTH_DATA) | B(REASON_STRING) | B(USER),
};

#define KNOWN_PROPS                                                                            \
    (PUBLISH_PROPS | B(SESSION_EXPIRY) | B(ASSIGNED_CLIENT_ID) | B(SERVER_KEEP_ALIVE) |         \
     B(AUTH_METHOD) | B(AUTH_DATA) | B(REQUEST_PROBLEM_INFO) | B(WILL_DELAY) |                \
     B(REQUEST_RESPONSE_INFO) | B(RESPONSE_INFO) | B(SERVER_REFERENCE) | B(REASON_STRING) |   \
     B(RECEIVE_MAX) | B(TOPIC_ALIAS_MAX) | B(MAXIMUM_QOS) | B(RETAIN_AVAILABLE) |             \
     B(MAX_PACKET_SIZE) | B(WILDCARD_SUB_AVAILABLE) | B(SUB_ID_AVAILABLE) |                    \
     B(SHARED_SUB_AVAILABLE))

static const uint64_t will_props = B(PAYLOAD_FORMAT) | B(MESSAGE_EXPIRY) | B(CONTENT_TYPE) |
                                   B(RESPONSE_TOPIC) | B(CORRELATION_DATA) | B(WILL_DELAY) |
                                   B(USER);

/* Properties whose value 0 is a protocol error (sections 3.1.2.11.3, 3.1.2.11.4, 3.3.2.3.8).
 * Topic Alias 0 is one too, but its answer is the specific DISCONNECT 0x94 Topic Alias invalid
 * [MQTT-3.3.2-8], so it is left to the receiver of the PUBLISH. */
static const uint64_t nonzero_props = B(RECEIVE_MAX) | B(MAX_PACKET_SIZE) | B(SUBSCRIPTION_ID);

static inline uint16_t
get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read a two-byte length and that many bytes at *p, not past end. */
static inline bool
get_bin(const uint8_t **p, const uint8_t *end, struct slice *out)
{
    if (end - *p < 2)
        return false;
    size_t len = get_u16(*p);
    if ((size_t)(end - *p) - 2 < len)
        return false;
    *out = slice_make(*p + 2, len);
    *p += 2 + len;
    return true;
}

static inline bool
get_utf8(const uint8_t **p, const uint8_t *end, struct slice *out)
{
    return get_bin(p, end, out) && mqtt_utf8_valid(*out);
}

static bool
has_wildcard(struct slice s)
{
    return memchr(s.p, '+', s.len) || memchr(s.p, '#', s.len);
}

/* Decode one property value of `id` at *p into out. */
static int
decode_value(uint8_t id, const uint8_t **p, const uint8_t *end, struct mqtt_props *out)
{
    uint8_t *field = (uint8_t *)out + prop_info[id].off;
    uint64_t bit = MQTT_PROP_BIT(id);
    uint32_t v = 0;
    struct slice s, val;

    switch (prop_info[id].kind) {
    case PK_BYTE:
        if (end - *p < 1)
            return MQTT_RC_MALFORMED;
        v = **p;
        *p += 1;
        /* Every byte property is a 0/1 flag, or Maximum QoS 0/1 (section 3.2.2.3.4). */
        if (v > 1)
            return MQTT_RC_PROTOCOL_ERROR;
        *field = (uint8_t)v;
        break;
    case PK_U16:
        if (end - *p < 2)
            return MQTT_RC_MALFORMED;
        v = get_u16(*p);
        *p += 2;
        memcpy(field, &(uint16_t){(uint16_t)v}, 2);
        break;
    case PK_U32:
        if (end - *p < 4)
            return MQTT_RC_MALFORMED;
        v = get_u32(*p);
        *p += 4;
        memcpy(field, &v, 4);
        break;
    case PK_VARINT: {
        int n = mqtt_varint_get(slice_make(*p, (size_t)(end - *p)), &v);
        if (n <= 0)
            return MQTT_RC_MALFORMED;
        *p += n;
        /* A PUBLISH may carry several; the first one is kept. */
        if (!(out->has & bit))
            memcpy(field, &v, 4);
        break;
    }
    case PK_UTF8:
        if (!get_utf8(p, end, &s))
            return MQTT_RC_MALFORMED;
        /* The Response Topic is a topic name: no wildcards [MQTT-3.3.2-14], not empty. */
        if (id == MQTT_PROP_RESPONSE_TOPIC && (s.len == 0 || has_wildcard(s)))
            return MQTT_RC_PROTOCOL_ERROR;
        memcpy(field, &s, sizeof(s));
        v = 1;
        break;
    case PK_BIN:
        if (!get_bin(p, end, &s))
            return MQTT_RC_MALFORMED;
        memcpy(field, &s, sizeof(s));
        v = 1;
        break;
    case PK_PAIR:
        if (!get_utf8(p, end, &s) || !get_utf8(p, end, &val))
            return MQTT_RC_MALFORMED;
        out->n_user_props++;
        v = 1;
        break;
    default:
        return MQTT_RC_MALFORMED;
    }
    if (v == 0 && (bit & nonzero_props))
        return MQTT_RC_PROTOCOL_ERROR;
    return 0;
}

int
mqtt_props_decode(struct slice raw, enum mqtt_type type, bool is_will, struct mqtt_props *out)
{
    memset(out, 0, sizeof(*out));
    out->raw = raw;
    if (raw.len == 0)
        return 0;

    uint64_t allowed = is_will ? will_props : (unsigned)type < 16 ? allowed_props[type] : 0;
    /* A PUBLISH carries one Subscription Identifier per matching subscription (3.3.2.3.8);
     * anywhere else a repeat is a protocol error (3.8.2.1.2), like every property but USER. */
    uint64_t repeatable = B(USER) | (type == MQTT_PUBLISH && !is_will ? B(SUBSCRIPTION_ID) : 0);
    const uint8_t *p = raw.p;
    const uint8_t *end = raw.p + raw.len;

    while (p < end) {
        /* The identifier is a variable byte integer, but every defined one is a single byte
         * below 0x80; anything else is an unknown identifier. */
        uint8_t id = *p++;
        uint64_t bit = id < PROP_ID_LIMIT ? MQTT_PROP_BIT(id) : 0;
        /* An identifier not valid for the packet is a malformed packet (section 2.2.2.2). */
        if (!(bit & allowed))
            return MQTT_RC_MALFORMED;
        if (out->has & bit & ~repeatable)
            return MQTT_RC_PROTOCOL_ERROR;
        int rc = decode_value(id, &p, end, out);
        if (rc != 0)
            return rc;
        out->has |= bit;
    }
    return 0;
}

/* Bytes of the value of property `id` at *p (after its identifier), or 0 when it does not fit
 * before end or the identifier is unknown. */
static size_t
value_len(uint8_t id, const uint8_t *p, const uint8_t *end)
{
    size_t left = (size_t)(end - p);
    size_t n;
    uint32_t v;

    switch (id < PROP_ID_LIMIT ? prop_info[id].kind : PK_NONE) {
    case PK_BYTE: n = 1; break;
    case PK_U16: n = 2; break;
    case PK_U32: n = 4; break;
    case PK_VARINT: {
        int k = mqtt_varint_get(slice_make(p, left), &v);
        return k > 0 ? (size_t)k : 0;
    }
    case PK_UTF8:
    case PK_BIN:
        if (left < 2)
            return 0;
        n = 2 + (size_t)get_u16(p);
        break;
    case PK_PAIR:
        if (left < 2 || left - 2 < get_u16(p) || left - 2 - get_u16(p) < 2)
            return 0;
        n = 4 + (size_t)get_u16(p) + get_u16(p + 2 + get_u16(p));
        break;
    default:
        return 0;
    }
    return n <= left ? n : 0;
}

bool
mqtt_user_prop_next(struct slice raw, size_t *pos, struct slice *key, struct slice *val)
{
    while (*pos < raw.len) {
        const uint8_t *end = raw.p + raw.len;
        const uint8_t *p = raw.p + *pos;
        uint8_t id = *p++;
        size_t n = value_len(id, p, end);
        if (n == 0)
            return false; /* not a valid block: stop rather than read past it */
        *pos += 1 + n;
        if (id == MQTT_PROP_USER) {
            get_bin(&p, end, key);
            get_bin(&p, end, val);
            return true;
        }
    }
    return false;
}

/* ---- encoding ---- */

/* The properties written from fields: all set bits but SUBSCRIPTION_ID and USER. */
static inline uint64_t
field_bits(const struct mqtt_props *p)
{
    return p->has & KNOWN_PROPS & ~(B(SUBSCRIPTION_ID) | B(USER));
}

static inline const struct slice *
field_slice(const struct mqtt_props *p, int id)
{
    return (const struct slice *)(const void *)((const uint8_t *)p + prop_info[id].off);
}

size_t
mqtt_props_size(const struct mqtt_props *p)
{
    size_t n = 0;

    for (uint64_t bits = field_bits(p); bits; bits &= bits - 1) {
        int id = __builtin_ctzll(bits);
        switch (prop_info[id].kind) {
        case PK_BYTE: n += 2; break;
        case PK_U16: n += 3; break;
        case PK_U32: n += 5; break;
        default: n += 3 + field_slice(p, id)->len; break;
        }
    }
    if (p->n_sub_ids) {
        for (uint32_t i = 0; i < p->n_sub_ids; i++)
            n += 1 + mqtt_varint_size(p->sub_ids[i]);
    } else if ((p->has & B(SUBSCRIPTION_ID)) && p->subscription_id) {
        n += 1 + mqtt_varint_size(p->subscription_id);
    }
    if (p->raw.len) {
        size_t pos = 0;
        struct slice k, v;
        while (mqtt_user_prop_next(p->raw, &pos, &k, &v))
            n += 5 + k.len + v.len;
    }
    return n;
}

static inline uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static inline uint8_t *
put_bin(uint8_t *p, struct slice s)
{
    assert(s.len <= UINT16_MAX);
    p = put_u16(p, (uint16_t)s.len);
    if (s.len)
        memcpy(p, s.p, s.len);
    return p + s.len;
}

size_t
mqtt_props_put(uint8_t *out, const struct mqtt_props *p, size_t size)
{
    uint8_t *q = out;

    assert(size <= MQTT_VARINT_MAX);
    q += mqtt_varint_put(q, (uint32_t)size);
    for (uint64_t bits = field_bits(p); bits; bits &= bits - 1) {
        int id = __builtin_ctzll(bits);
        const uint8_t *field = (const uint8_t *)p + prop_info[id].off;
        uint16_t u16;
        uint32_t u32;
        *q++ = (uint8_t)id;
        switch (prop_info[id].kind) {
        case PK_BYTE:
            *q++ = *field;
            break;
        case PK_U16:
            memcpy(&u16, field, 2);
            q = put_u16(q, u16);
            break;
        case PK_U32:
            memcpy(&u32, field, 4);
            q = put_u16(q, (uint16_t)(u32 >> 16));
            q = put_u16(q, (uint16_t)u32);
            break;
        default:
            q = put_bin(q, *field_slice(p, id));
            break;
        }
    }
    if (p->n_sub_ids) {
        for (uint32_t i = 0; i < p->n_sub_ids; i++) {
            *q++ = MQTT_PROP_SUBSCRIPTION_ID;
            q += mqtt_varint_put(q, p->sub_ids[i]);
        }
    } else if ((p->has & B(SUBSCRIPTION_ID)) && p->subscription_id) {
        *q++ = MQTT_PROP_SUBSCRIPTION_ID;
        q += mqtt_varint_put(q, p->subscription_id);
    }
    if (p->raw.len) {
        size_t pos = 0;
        struct slice k, v;
        while (mqtt_user_prop_next(p->raw, &pos, &k, &v)) {
            *q++ = MQTT_PROP_USER;
            q = put_bin(q, k);
            q = put_bin(q, v);
        }
    }
    assert((size_t)(q - out) == mqtt_varint_size((uint32_t)size) + size);
    return (size_t)(q - out);
}

int
mqtt_props_encode(struct buf *b, const struct mqtt_props *p)
{
    size_t size = mqtt_props_size(p);
    int rc;

    if (size > MQTT_VARINT_MAX)
        return -EMSGSIZE;
    if ((rc = buf_reserve(b, mqtt_varint_size((uint32_t)size) + size)) != 0)
        return rc;
    b->len += mqtt_props_put(b->p + b->len, p, size);
    return 0;
}
