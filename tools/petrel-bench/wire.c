/*
 * wire.c - petrel-bench's minimal MQTT codec (see wire.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "petrel-bench/wire.h"

void
wire_reserve(struct buf *b, size_t n)
{
    if (buf_reserve(b, n) != 0) {
        fprintf(stderr, "petrel-bench: out of memory (buffer of %zu bytes)\n", b->len + n);
        abort();
    }
}

static size_t
varint_size(uint32_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static uint8_t *
put_varint(uint8_t *p, uint32_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        *p++ = byte | (v ? 0x80 : 0);
    } while (v);
    return p;
}

static uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *
put_str(uint8_t *p, struct slice s)
{
    p = put_u16(p, (uint16_t)s.len);
    if (s.len)
        memcpy(p, s.p, s.len);
    return p + s.len;
}

/* Reserve a whole packet of `remaining` body bytes and write its fixed header. */
static uint8_t *
begin(struct buf *b, uint8_t first, uint32_t remaining)
{
    wire_reserve(b, 1 + varint_size(remaining) + remaining);
    uint8_t *p = b->p + b->len;
    *p++ = first;
    return put_varint(p, remaining);
}

static void
end(struct buf *b, uint8_t *p)
{
    b->len = (size_t)(p - b->p);
}

void
wire_connect(struct buf *b, int version, struct slice client_id, uint16_t keepalive,
             uint16_t receive_max)
{
    wire_connect_session(b, version, client_id, keepalive, receive_max, false, 0);
}

void
wire_connect_session(struct buf *b, int version, struct slice client_id, uint16_t keepalive,
                     uint16_t receive_max, bool persistent, uint32_t expiry)
{
    size_t props = 0;
    if (version == 5)
        props = (receive_max ? 3 : 0) + (persistent ? 5 : 0);
    uint32_t rem = 2 + 4 + 1 + 1 + 2 + (version == 5 ? (uint32_t)(varint_size(props) + props) : 0) +
                   2 + (uint32_t)client_id.len;
    uint8_t *p = begin(b, WIRE_CONNECT << 4, rem);
    p = put_str(p, SLICE("MQTT"));
    *p++ = (uint8_t)version;
    *p++ = persistent ? 0x00 : 0x02; /* clean session / clean start */
    p = put_u16(p, keepalive);
    if (version == 5) {
        p = put_varint(p, (uint32_t)props);
        if (receive_max) {
            *p++ = 0x21; /* Receive Maximum */
            p = put_u16(p, receive_max);
        }
        if (persistent) {
            *p++ = 0x11; /* Session Expiry Interval */
            *p++ = (uint8_t)(expiry >> 24);
            *p++ = (uint8_t)(expiry >> 16);
            *p++ = (uint8_t)(expiry >> 8);
            *p++ = (uint8_t)expiry;
        }
    }
    p = put_str(p, client_id);
    end(b, p);
}

void
wire_subscribe(struct buf *b, int version, uint16_t packet_id, const struct slice *filters,
               size_t n, uint8_t qos)
{
    uint32_t rem = 2 + (version == 5 ? 1 : 0);
    for (size_t i = 0; i < n; i++)
        rem += 2 + (uint32_t)filters[i].len + 1;
    uint8_t *p = begin(b, WIRE_SUBSCRIBE << 4 | 0x02, rem); /* [MQTT-3.8.1-1] */
    p = put_u16(p, packet_id);
    if (version == 5)
        *p++ = 0; /* no properties */
    for (size_t i = 0; i < n; i++) {
        p = put_str(p, filters[i]);
        *p++ = qos;
    }
    end(b, p);
}

void
wire_ack(struct buf *b, enum wire_type type, uint16_t packet_id)
{
    /* PUBREL has flags 0010 [MQTT-3.6.1-1]. */
    uint8_t *p = begin(b, (uint8_t)(type << 4 | (type == WIRE_PUBREL ? 0x02 : 0)), 2);
    p = put_u16(p, packet_id);
    end(b, p);
}

void
wire_pingreq(struct buf *b)
{
    end(b, begin(b, WIRE_PINGREQ << 4, 0));
}

void
wire_disconnect(struct buf *b)
{
    end(b, begin(b, WIRE_DISCONNECT << 4, 0));
}

void
wire_pubtmpl_init(struct wire_pubtmpl *t, int version, struct slice topic, uint8_t qos, size_t size)
{
    uint32_t vh = 2 + (uint32_t)topic.len + (qos ? 2 : 0) + (version == 5 ? 1 : 0);
    uint32_t rem = vh + (uint32_t)size;
    t->head_len = 1 + varint_size(rem) + vh;
    t->head = malloc(t->head_len);
    if (!t->head)
        abort();
    uint8_t *p = t->head;
    *p++ = (uint8_t)(WIRE_PUBLISH << 4 | qos << 1);
    p = put_varint(p, rem);
    p = put_str(p, topic);
    t->pid_off = 0;
    if (qos) {
        t->pid_off = (size_t)(p - t->head);
        p = put_u16(p, 0);
    }
    if (version == 5)
        *p++ = 0; /* no properties */
    t->size = size;
}

void
wire_pubtmpl_fini(struct wire_pubtmpl *t)
{
    free(t->head);
    t->head = NULL;
}

void
wire_publish(struct buf *b, const struct wire_pubtmpl *t, uint16_t packet_id, uint32_t pub,
             uint32_t seq, uint64_t ts_ns)
{
    uint8_t *p = b->p + b->len;
    memcpy(p, t->head, t->head_len);
    if (t->pid_off)
        put_u16(p + t->pid_off, packet_id);
    p += t->head_len;
    memcpy(p, &pub, 4);
    memcpy(p + 4, &seq, 4);
    memcpy(p + 8, &ts_ns, 8);
    memset(p + WIRE_PAYLOAD_MIN, 'x', t->size - WIRE_PAYLOAD_MIN);
    b->len += t->head_len + t->size;
}

bool
wire_payload_get(struct slice payload, uint32_t *pub, uint32_t *seq, uint64_t *ts_ns)
{
    if (payload.len < WIRE_PAYLOAD_MIN)
        return false;
    memcpy(pub, payload.p, 4);
    memcpy(seq, payload.p + 4, 4);
    memcpy(ts_ns, payload.p + 8, 8);
    return true;
}

int
wire_fixed_header(struct slice in, uint8_t *type, uint8_t *flags, uint32_t *remaining,
                  size_t *head_len)
{
    if (in.len < 2)
        return 0;
    uint32_t v = 0;
    for (size_t i = 1; i <= 4; i++) {
        if (i >= in.len)
            return 0;
        v |= (uint32_t)(in.p[i] & 0x7f) << (7 * (i - 1));
        if (!(in.p[i] & 0x80)) {
            *type = in.p[0] >> 4;
            *flags = in.p[0] & 0x0f;
            *remaining = v;
            *head_len = i + 1;
            return 1;
        }
    }
    return -1;
}

static uint16_t
get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Read a variable byte integer at in[*pos]; -1 when it does not fit or is malformed. */
static int
get_varint(struct slice in, size_t *pos, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (*pos >= in.len)
            return -1;
        uint8_t byte = in.p[(*pos)++];
        v |= (uint32_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Skip an MQTT 5 property block at in[*pos], reporting the CONNACK properties we use. */
static int
skip_props(struct slice in, size_t *pos, struct wire_connack *ack)
{
    uint32_t len;
    if (get_varint(in, pos, &len) != 0 || len > in.len - *pos)
        return -1;
    size_t end_pos = *pos + len, p = *pos;
    while (p < end_pos) {
        uint8_t id = in.p[p++];
        size_t n;
        switch (id) {
        case 0x01:
        case 0x17:
        case 0x19:
        case 0x24:
        case 0x25:
        case 0x28:
        case 0x29:
        case 0x2A:
            n = 1;
            break;
        case 0x13:
        case 0x21:
        case 0x22:
        case 0x23:
            n = 2;
            break;
        case 0x02:
        case 0x11:
        case 0x18:
        case 0x27:
            n = 4;
            break;
        case 0x0B: {
            uint32_t ignored;
            struct slice sub = slice_make(in.p, end_pos);
            if (get_varint(sub, &p, &ignored) != 0)
                return -1;
            continue;
        }
        case 0x03:
        case 0x08:
        case 0x09:
        case 0x12:
        case 0x15:
        case 0x16:
        case 0x1A:
        case 0x1C:
        case 0x1F:
            if (end_pos - p < 2)
                return -1;
            n = 2 + (size_t)get_u16(in.p + p);
            break;
        case 0x26:
            if (end_pos - p < 2)
                return -1;
            n = 2 + (size_t)get_u16(in.p + p);
            if (end_pos - p < n + 2)
                return -1;
            n += 2 + (size_t)get_u16(in.p + p + n);
            break;
        default:
            return -1;
        }
        if (end_pos - p < n)
            return -1;
        if (ack && id == 0x21)
            ack->receive_max = get_u16(in.p + p);
        if (ack && id == 0x24)
            ack->maximum_qos = in.p[p];
        p += n;
    }
    *pos = end_pos;
    return 0;
}

int
wire_parse_publish(uint8_t flags, struct slice body, int version, struct wire_publish *out)
{
    out->qos = (flags >> 1) & 3;
    out->dup = flags & 0x08;
    if (out->qos == 3 || body.len < 2)
        return -1;
    size_t tlen = get_u16(body.p), pos = 2 + tlen;
    if (pos > body.len)
        return -1;
    out->topic = slice_make(body.p + 2, tlen);
    out->packet_id = 0;
    if (out->qos) {
        if (body.len - pos < 2)
            return -1;
        out->packet_id = get_u16(body.p + pos);
        pos += 2;
    }
    if (version == 5 && skip_props(body, &pos, NULL) != 0)
        return -1;
    out->payload = slice_tail(body, pos);
    return 0;
}

int
wire_parse_connack(struct slice body, int version, struct wire_connack *out)
{
    out->receive_max = 65535;
    out->maximum_qos = 2;
    if (body.len < 2)
        return -1;
    out->session_present = body.p[0] & 1;
    out->rc = body.p[1];
    if (version == 5 && body.len > 2) {
        size_t pos = 2;
        if (skip_props(body, &pos, out) != 0)
            return -1;
    }
    return 0;
}

int
wire_parse_suback(struct slice body, int version, uint16_t *packet_id, struct slice *rcs)
{
    if (body.len < 3)
        return -1;
    *packet_id = get_u16(body.p);
    size_t pos = 2;
    if (version == 5 && skip_props(body, &pos, NULL) != 0)
        return -1;
    if (pos >= body.len)
        return -1;
    *rcs = slice_tail(body, pos);
    return 0;
}

int
wire_parse_ack(struct slice body, int version, uint16_t *packet_id, uint8_t *rc)
{
    if (body.len < 2)
        return -1;
    *packet_id = get_u16(body.p);
    *rc = body.len > 2 ? body.p[2] : 0;
    (void)version;
    return 0;
}
