/*
 * decode.c - bytes to packets, for packets received from a peer.
 *
 * Every decoder takes the body of one whole packet (variable header and payload, as framed by
 * mqtt_decode_fixed_header) and either fills its struct with slices into that body or returns
 * the reason code the connection must be closed with. Nothing is allocated and nothing is
 * copied; every length is checked against the end of the body before it is used, and bytes
 * left over after a packet's content make it malformed.
 *
 * Malformed (0x81) is used for violations of the byte layout, protocol error (0x82) for layouts
 * that parse but break a rule, following the spec's wording for each case.
 */
#include "mqtt/packet.h"

#include <errno.h>
#include <string.h>

/* A read cursor over a packet body. */
struct rd {
    const uint8_t *p;
    const uint8_t *end;
};

static inline struct rd
rd_make(struct slice s)
{
    /* An empty slice may have a NULL pointer, and NULL + 0 is undefined in C. */
    return (struct rd){s.p, s.len ? s.p + s.len : s.p};
}

static inline size_t
rd_left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

static inline struct slice
rd_rest(struct rd *r)
{
    struct slice s = slice_make(r->p, rd_left(r));
    r->p = r->end;
    return s;
}

static inline bool
rd_u8(struct rd *r, uint8_t *v)
{
    if (r->p == r->end)
        return false;
    *v = *r->p++;
    return true;
}

static inline bool
rd_u16(struct rd *r, uint16_t *v)
{
    if (rd_left(r) < 2)
        return false;
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    return true;
}

/* Binary data: a two-byte length, then that many bytes [MQTT-1.5.6]. */
static inline bool
rd_bin(struct rd *r, struct slice *s)
{
    uint16_t len;

    if (!rd_u16(r, &len))
        return false;
    if (rd_left(r) < len) {
        r->p -= 2;
        return false;
    }
    *s = slice_make(r->p, len);
    r->p += len;
    return true;
}

/* A UTF-8 encoded string [MQTT-1.5.4]: present and valid, or malformed. */
static inline int
rd_utf8(struct rd *r, struct slice *s)
{
    if (!rd_bin(r, s) || !mqtt_utf8_valid(*s))
        return MQTT_RC_MALFORMED;
    return 0;
}

/* A property block with its variable-length prefix. */
static int
rd_props(struct rd *r, enum mqtt_type type, bool is_will, struct mqtt_props *out)
{
    uint32_t len;
    int n = mqtt_varint_get(slice_make(r->p, rd_left(r)), &len);

    if (n <= 0 || rd_left(r) - (size_t)n < len)
        return MQTT_RC_MALFORMED;
    r->p += n;
    struct slice raw = slice_make(r->p, len);
    r->p += len;
    return mqtt_props_decode(raw, type, is_will, out);
}

static inline void
props_clear(struct mqtt_props *p)
{
    memset(p, 0, sizeof(*p));
}

static inline bool
in_set(uint8_t rc, const uint8_t *set, size_t n)
{
    return memchr(set, rc, n) != NULL;
}

/* The reason codes each packet may carry (MQTT 5 sections 3.2.2.2 to 3.15.2.1). */
static const uint8_t rcs_connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                      0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                      0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rcs_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t rcs_pubrel[] = {0x00, 0x92};
static const uint8_t rcs_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                     0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rcs_suback3[] = {0x00, 0x01, 0x02, 0x80}; /* [MQTT-3.9.3-2] */
static const uint8_t rcs_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t rcs_disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89,
                                         0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
                                         0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
                                         0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rcs_auth[] = {0x00, 0x18, 0x19};

/* Fixed-header flags of every type but PUBLISH are fixed [MQTT-2.2.2-1, MQTT-2.2.2-2]. */
static inline int
check_flags(enum mqtt_type type, uint8_t flags, int version)
{
    uint8_t want = 0;

    if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) {
        want = 0x2;
        /* MQTT 3.1 sent these at QoS 1 and set DUP on retries. */
        if (version == MQTT_V31)
            flags &= (uint8_t)~0x8;
    }
    return flags == want ? 0 : MQTT_RC_MALFORMED;
}

#define ONES8 UINT64_C(0x0101010101010101)
#define HIGHS8 UINT64_C(0x8080808080808080)

/* Non-zero iff some byte of x is zero (exact as to whether, not as to which). */
static inline uint64_t
zero_byte8(uint64_t x)
{
    return (x - ONES8) & ~x & HIGHS8;
}

/* A topic name of a PUBLISH or will: valid UTF-8 (else malformed) without wildcards
 * [MQTT-3.3.2-2]. This runs on every PUBLISH, so it looks at 8 bytes per step for NUL,
 * non-ASCII, '+' and '#', and runs the full UTF-8 check only when NUL or non-ASCII shows up. */
static inline int
check_topic_name(struct slice t)
{
    uint64_t odd = 0, wild = 0;

    if (t.len >= 8) {
        uint64_t w;
        size_t i = 0;
        for (;;) {
            memcpy(&w, t.p + i, 8);
            odd |= w | zero_byte8(w);
            wild |= zero_byte8(w ^ (ONES8 * '+')) | zero_byte8(w ^ (ONES8 * '#'));
            i += 8;
            if (i >= t.len)
                break;
            if (t.len - i < 8)
                i = t.len - 8; /* last word overlaps the previous one */
        }
        odd &= HIGHS8;
    } else {
        for (size_t i = 0; i < t.len; i++) {
            uint8_t c = t.p[i];
            odd |= (uint8_t)(c - 1) >= 0x7f; /* 0x00 or >= 0x80 */
            wild |= (c == '+') | (c == '#');
        }
    }
    if (odd && !mqtt_utf8_valid(t))
        return MQTT_RC_MALFORMED;
    return wild ? MQTT_RC_TOPIC_NAME_INVALID : 0;
}

int
mqtt_decode_fixed_header(struct slice in, uint32_t max_size, struct mqtt_fixed_header *out)
{
    uint32_t rem;

    if (in.len == 0)
        return -EAGAIN;
    uint8_t type = in.p[0] >> 4;
    uint8_t flags = in.p[0] & 0x0f;
    if (type == 0)
        return MQTT_RC_MALFORMED; /* reserved (section 2.1.2) */
    int n = mqtt_varint_get(slice_tail(in, 1), &rem);
    if (n == 0)
        return -EAGAIN;
    if (n < 0)
        return MQTT_RC_MALFORMED;
    if ((type == MQTT_PINGREQ || type == MQTT_PINGRESP) && (flags != 0 || rem != 0))
        return MQTT_RC_MALFORMED;
    out->type = type;
    out->flags = flags;
    out->remaining = rem;
    out->header_len = (uint8_t)(1 + n);
    if (max_size && (uint64_t)rem + 1 + (unsigned)n > max_size)
        return MQTT_RC_PACKET_TOO_LARGE;
    return 0;
}

/* CONNECT flag bits (section 3.1.2.3). */
#define CF_RESERVED 0x01
#define CF_CLEAN 0x02
#define CF_WILL 0x04
#define CF_WILL_QOS(f) (((f) >> 3) & 3)
#define CF_WILL_RETAIN 0x20
#define CF_PASSWORD 0x40
#define CF_USERNAME 0x80

static int
decode_protocol(struct rd *r, struct mqtt_connect *out)
{
    struct slice name;
    uint8_t level;

    if (!rd_bin(r, &name) || !rd_u8(r, &level))
        return MQTT_RC_MALFORMED;
    out->version = level;
    if (slice_eq(name, SLICE("MQTT")) && (level == MQTT_V311 || level == MQTT_V5))
        return 0;
    if (slice_eq(name, SLICE("MQIsdp")) && level == MQTT_V31)
        return 0;
    return MQTT_RC_UNSUPPORTED_VERSION; /* [MQTT-3.1.2-1, MQTT-3.1.2-2] */
}

static int
decode_will(struct rd *r, struct mqtt_connect *out)
{
    int rc;

    if (out->version == MQTT_V5 && (rc = rd_props(r, MQTT_CONNECT, true, &out->will_props)))
        return rc;
    if ((rc = rd_utf8(r, &out->will_topic)) != 0)
        return rc;
    if (!rd_bin(r, &out->will_payload))
        return MQTT_RC_MALFORMED;
    if (out->will_topic.len == 0)
        return MQTT_RC_TOPIC_NAME_INVALID; /* [MQTT-4.7.3-1] */
    return check_topic_name(out->will_topic);
}

int
mqtt_decode_connect(uint8_t flags, struct slice body, struct mqtt_connect *out)
{
    struct rd r = rd_make(body);
    uint8_t cf;
    int rc;

    memset(out, 0, sizeof(*out));
    if (flags != 0)
        return MQTT_RC_MALFORMED; /* [MQTT-2.2.2-1] */
    if ((rc = decode_protocol(&r, out)) != 0)
        return rc;
    if (!rd_u8(&r, &cf) || !rd_u16(&r, &out->keepalive))
        return MQTT_RC_MALFORMED;
    if (cf & CF_RESERVED)
        return MQTT_RC_MALFORMED; /* [MQTT-3.1.2-3] */
    out->clean_start = cf & CF_CLEAN;
    out->has_will = cf & CF_WILL;
    out->will_qos = CF_WILL_QOS(cf);
    out->will_retain = cf & CF_WILL_RETAIN;
    out->has_username = cf & CF_USERNAME;
    out->has_password = cf & CF_PASSWORD;
    if (out->will_qos == 3)
        return MQTT_RC_MALFORMED; /* [MQTT-3.1.2-14] */
    if (!out->has_will && (out->will_qos || out->will_retain))
        return MQTT_RC_MALFORMED; /* [MQTT-3.1.2-11, MQTT-3.1.2-13, MQTT-3.1.2-15] */
    /* 3.x requires a user name with a password; MQTT 5 lifted that [MQTT-3.1.2-22]. */
    if (out->version != MQTT_V5 && out->has_password && !out->has_username)
        return MQTT_RC_PROTOCOL_ERROR;
    if (out->version == MQTT_V5 && (rc = rd_props(&r, MQTT_CONNECT, false, &out->props)))
        return rc;
    if ((rc = rd_utf8(&r, &out->client_id)) != 0) /* [MQTT-3.1.3-4] */
        return rc;
    if (out->has_will && (rc = decode_will(&r, out)) != 0)
        return rc;
    if (out->has_username && (rc = rd_utf8(&r, &out->username)) != 0) /* [MQTT-3.1.3-11] */
        return rc;
    if (out->has_password && !rd_bin(&r, &out->password))
        return MQTT_RC_MALFORMED;
    return rd_left(&r) == 0 ? 0 : MQTT_RC_MALFORMED;
}

/* MQTT 3.1.1 CONNACK return codes as MQTT 5 reason codes (table 3.1 of 3.1.1). */
static const uint8_t connack_rc3[] = {
    MQTT_RC_SUCCESS,           MQTT_RC_UNSUPPORTED_VERSION, MQTT_RC_CLIENT_ID_INVALID,
    MQTT_RC_SERVER_UNAVAILABLE, MQTT_RC_BAD_CREDENTIALS,    MQTT_RC_NOT_AUTHORIZED,
};

int
mqtt_decode_connack(uint8_t flags, struct slice body, int version, struct mqtt_connack *out)
{
    struct rd r = rd_make(body);
    uint8_t af, rc;
    int err;

    memset(out, 0, sizeof(*out));
    if (flags != 0)
        return MQTT_RC_MALFORMED;
    if (!rd_u8(&r, &af) || !rd_u8(&r, &rc))
        return MQTT_RC_MALFORMED;
    if (af & 0xfe)
        return MQTT_RC_MALFORMED; /* [MQTT-3.2.2-1] */
    out->session_present = af & 1;
    if (version != MQTT_V5) {
        if (rc >= sizeof(connack_rc3))
            return MQTT_RC_PROTOCOL_ERROR; /* 6-255 are reserved */
        out->rc = connack_rc3[rc];
    } else {
        if (!in_set(rc, rcs_connack, sizeof(rcs_connack)))
            return MQTT_RC_PROTOCOL_ERROR;
        out->rc = rc;
        if ((err = rd_props(&r, MQTT_CONNACK, false, &out->props)) != 0)
            return err;
    }
    /* [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5) */
    if (out->session_present && out->rc != 0)
        return MQTT_RC_PROTOCOL_ERROR;
    return rd_left(&r) == 0 ? 0 : MQTT_RC_MALFORMED;
}

int
mqtt_decode_publish(uint8_t flags, struct slice body, int version, struct mqtt_publish *out)
{
    const uint8_t *p = body.p;
    const uint8_t *end = body.len ? body.p + body.len : body.p;
    uint8_t qos = (flags >> 1) & 3;
    int rc;

    if (qos == 3)
        return MQTT_RC_MALFORMED; /* [MQTT-3.3.1-4] */
    out->qos = qos;
    out->dup = flags & 0x8;
    out->retain = flags & 0x1;
    if (out->dup && qos == 0)
        return MQTT_RC_PROTOCOL_ERROR; /* [MQTT-3.3.1-2] */
    if (body.len < 2)
        return MQTT_RC_MALFORMED;
    size_t tlen = (size_t)(p[0] << 8 | p[1]);
    p += 2;
    size_t id_len = qos ? 2 : 0;
    if ((size_t)(end - p) < tlen + id_len)
        return MQTT_RC_MALFORMED;
    out->topic = slice_make(p, tlen);
    p += tlen;
    out->packet_id = 0;
    if (qos) {
        out->packet_id = (uint16_t)(p[0] << 8 | p[1]);
        p += 2;
        if (out->packet_id == 0)
            return MQTT_RC_PROTOCOL_ERROR; /* [MQTT-2.2.1-3] */
    }
    if (version == MQTT_V5) {
        struct rd r = {p, end};
        if ((rc = rd_props(&r, MQTT_PUBLISH, false, &out->props)) != 0)
            return rc;
        if (out->props.has & MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID))
            return MQTT_RC_PROTOCOL_ERROR; /* [MQTT-3.3.4-6] */
        p = r.p;
    } else {
        props_clear(&out->props);
    }
    out->payload = slice_make(p, (size_t)(end - p));
    if ((rc = check_topic_name(out->topic)) != 0)
        return rc;
    /* An empty topic stands for the one a topic alias maps to, in MQTT 5 only
     * [MQTT-4.7.3-1, MQTT-3.3.2-1]. */
    if (tlen == 0 && !(out->props.has & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)))
        return MQTT_RC_PROTOCOL_ERROR;
    return 0;
}

/* Read the packet id that starts most packets; 0 is a protocol error [MQTT-2.2.1-3]. */
static inline int
rd_packet_id(struct rd *r, uint16_t *id)
{
    if (!rd_u16(r, id))
        return MQTT_RC_MALFORMED;
    return *id ? 0 : MQTT_RC_PROTOCOL_ERROR;
}

int
mqtt_decode_ack(enum mqtt_type type, uint8_t flags, struct slice body, int version,
                struct mqtt_ack *out)
{
    struct rd r = rd_make(body);
    int rc;

    out->rc = 0;
    props_clear(&out->props);
    if (type < MQTT_PUBACK || type > MQTT_PUBCOMP)
        return MQTT_RC_PROTOCOL_ERROR;
    if ((rc = check_flags(type, flags, version)) != 0)
        return rc;
    if ((rc = rd_packet_id(&r, &out->packet_id)) != 0)
        return rc;
    if (version != MQTT_V5 || rd_left(&r) == 0)
        return rd_left(&r) == 0 ? 0 : MQTT_RC_MALFORMED;
    /* MQTT 5: remaining length 2 means success, 3 a reason code without properties
     * (section 3.4.2.1). */
    rd_u8(&r, &out->rc);
    bool pub = type == MQTT_PUBACK || type == MQTT_PUBREC;
    if (pub ? !in_set(out->rc, rcs_puback, sizeof(rcs_puback))
            : !in_set(out->rc, rcs_pubrel, sizeof(rcs_pubrel)))
        return MQTT_RC_PROTOCOL_ERROR;
    if (rd_left(&r) && (rc = rd_props(&r, type, false, &out->props)) != 0)
        return rc;
    return rd_left(&r) == 0 ? 0 : MQTT_RC_MALFORMED;
}

/* Subscription options (section 3.8.3.1). */
static inline int
check_sub_opts(uint8_t o, int version)
{
    if (version != MQTT_V5) {
        if ((o & 0xfc) || (o & 3) == 3)
            return MQTT_RC_MALFORMED; /* [MQTT-3.8.3-4] (3.1.1) */
        return 0;
    }
    if (o & 0xc0)
        return MQTT_RC_MALFORMED; /* [MQTT-3.8.3-5] */
    if ((o & 3) == 3 || ((o >> 4) & 3) == 3)
        return MQTT_RC_PROTOCOL_ERROR;
    return 0;
}

int
mqtt_decode_subscribe(uint8_t flags, struct slice body, int version, struct mqtt_subscribe *out)
{
    struct rd r = rd_make(body);
    struct slice filter;
    uint8_t opts;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = check_flags(MQTT_SUBSCRIBE, flags, version)) != 0) /* [MQTT-3.8.1-1] */
        return rc;
    if ((rc = rd_packet_id(&r, &out->packet_id)) != 0)
        return rc;
    if (version == MQTT_V5 && (rc = rd_props(&r, MQTT_SUBSCRIBE, false, &out->props)) != 0)
        return rc;
    out->entries = slice_make(r.p, rd_left(&r));
    while (rd_left(&r)) {
        if ((rc = rd_utf8(&r, &filter)) != 0)
            return rc;
        if (!rd_u8(&r, &opts))
            return MQTT_RC_MALFORMED;
        if (filter.len == 0)
            return MQTT_RC_MALFORMED; /* [MQTT-4.7.3-1] */
        if ((rc = check_sub_opts(opts, version)) != 0)
            return rc;
        out->n_entries++;
    }
    return out->n_entries ? 0 : MQTT_RC_PROTOCOL_ERROR; /* [MQTT-3.8.3-3] */
}

int
mqtt_decode_unsubscribe(uint8_t flags, struct slice body, int version,
                        struct mqtt_unsubscribe *out)
{
    struct rd r = rd_make(body);
    struct slice filter;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = check_flags(MQTT_UNSUBSCRIBE, flags, version)) != 0) /* [MQTT-3.10.1-1] */
        return rc;
    if ((rc = rd_packet_id(&r, &out->packet_id)) != 0)
        return rc;
    if (version == MQTT_V5 && (rc = rd_props(&r, MQTT_UNSUBSCRIBE, false, &out->props)) != 0)
        return rc;
    out->entries = slice_make(r.p, rd_left(&r));
    while (rd_left(&r)) {
        if ((rc = rd_utf8(&r, &filter)) != 0)
            return rc;
        if (filter.len == 0)
            return MQTT_RC_MALFORMED; /* [MQTT-4.7.3-1] */
        out->n_entries++;
    }
    return out->n_entries ? 0 : MQTT_RC_PROTOCOL_ERROR; /* [MQTT-3.10.3-2] */
}

int
mqtt_decode_suback(enum mqtt_type type, uint8_t flags, struct slice body, int version,
                   struct mqtt_suback *out)
{
    struct rd r = rd_make(body);
    const uint8_t *set;
    size_t n_set;
    int rc;

    memset(out, 0, sizeof(*out));
    if (type != MQTT_SUBACK && type != MQTT_UNSUBACK)
        return MQTT_RC_PROTOCOL_ERROR;
    if ((rc = check_flags(type, flags, version)) != 0)
        return rc;
    if ((rc = rd_packet_id(&r, &out->packet_id)) != 0)
        return rc;
    if (version != MQTT_V5 && type == MQTT_UNSUBACK)
        return rd_left(&r) == 0 ? 0 : MQTT_RC_MALFORMED; /* no payload in 3.x */
    if (version == MQTT_V5 && (rc = rd_props(&r, type, false, &out->props)) != 0)
        return rc;
    if (type == MQTT_UNSUBACK) {
        set = rcs_unsuback;
        n_set = sizeof(rcs_unsuback);
    } else if (version == MQTT_V5) {
        set = rcs_suback;
        n_set = sizeof(rcs_suback);
    } else {
        set = rcs_suback3;
        n_set = sizeof(rcs_suback3);
    }
    struct slice rcs = rd_rest(&r);
    if (rcs.len == 0 || rcs.len > UINT32_MAX)
        return MQTT_RC_PROTOCOL_ERROR; /* one per filter, and a SUBSCRIBE has at least one */
    for (size_t i = 0; i < rcs.len; i++)
        if (!in_set(rcs.p[i], set, n_set))
            return MQTT_RC_PROTOCOL_ERROR;
    out->rcs = rcs.p;
    out->n_rcs = (uint32_t)rcs.len;
    return 0;
}

int
mqtt_decode_disconnect(enum mqtt_type type, uint8_t flags, struct slice body, int version,
                       struct mqtt_disconnect *out)
{
    struct rd r = rd_make(body);
    int rc;

    out->rc = 0;
    props_clear(&out->props);
    if (type != MQTT_DISCONNECT && type != MQTT_AUTH)
        return MQTT_RC_PROTOCOL_ERROR;
    if (flags != 0)
        return MQTT_RC_MALFORMED; /* [MQTT-2.2.2-1] */
    if (version != MQTT_V5) {
        if (type == MQTT_AUTH)
            return MQTT_RC_PROTOCOL_ERROR; /* packet type 15 is reserved before MQTT 5 */
        return body.len == 0 ? 0 : MQTT_RC_MALFORMED;
    }
    /* Remaining length 0 means success; below 2, no properties (section 3.14.2.1). */
    if (!rd_u8(&r, &out->rc))
        return 0;
    if (type == MQTT_DISCONNECT ? !in_set(out->rc, rcs_disconnect, sizeof(rcs_disconnect))
                                : !in_set(out->rc, rcs_auth, sizeof(rcs_auth)))
        return MQTT_RC_PROTOCOL_ERROR;
    if (rd_left(&r) && (rc = rd_props(&r, type, false, &out->props)) != 0)
        return rc;
    return rd_left(&r) == 0 ? 0 : MQTT_RC_MALFORMED;
}

bool
mqtt_subscribe_next(const struct mqtt_subscribe *s, size_t *pos, struct slice *filter,
                    struct mqtt_sub_opts *opts)
{
    struct rd r = rd_make(s->entries);
    uint8_t o;

    if (*pos >= s->entries.len)
        return false;
    r.p += *pos;
    if (!rd_bin(&r, filter) || !rd_u8(&r, &o))
        return false;
    *pos = (size_t)(r.p - s->entries.p);
    /* 3.x options were checked to have only the QoS bits set, so this reads them too. */
    opts->qos = o & 3;
    opts->no_local = o & 0x04;
    opts->retain_as_published = o & 0x08;
    opts->retain_handling = (o >> 4) & 3;
    return true;
}

bool
mqtt_unsubscribe_next(const struct mqtt_unsubscribe *u, size_t *pos, struct slice *filter)
{
    struct rd r = rd_make(u->entries);

    if (*pos >= u->entries.len)
        return false;
    r.p += *pos;
    if (!rd_bin(&r, filter))
        return false;
    *pos = (size_t)(r.p - u->entries.p);
    return true;
}
