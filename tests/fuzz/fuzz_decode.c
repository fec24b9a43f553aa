/*
 * fuzz_decode.c - libFuzzer target for the MQTT codec.
 *
 * The input is framed with mqtt_decode_fixed_header (or, when that fails, taken as flags in the
 * first byte and a body after it) and fed to every decoder in MQTT 3.1, 3.1.1 and 5, with the
 * input's flags and with the flags each packet type requires. Whatever decodes is encoded,
 * decoded again and encoded again: the second decode must succeed and both encodings must be
 * identical (the codec has one canonical form). The property decoder runs on the body for
 * every packet type, and mqtt_utf8_valid is compared with a plain reference implementation.
 * Any broken invariant traps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mqtt/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond))                                                                           \
            __builtin_trap();                                                                  \
    } while (0)

static const int versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};

/* The one packet in b: checks that the fixed header spans exactly the buffer. */
static struct slice
reframe(const struct buf *b, uint8_t type, uint8_t *flags)
{
    struct mqtt_fixed_header fh;
    CHECK(mqtt_decode_fixed_header(buf_slice(b), 0, &fh) == 0);
    CHECK(fh.type == type);
    CHECK((size_t)fh.header_len + fh.remaining == b->len);
    *flags = fh.flags;
    return slice_tail(buf_slice(b), fh.header_len);
}

static void
check_same(const struct buf *a, const struct buf *b)
{
    CHECK(a->len == b->len);
    CHECK(a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void
check_user_props(const struct mqtt_props *p)
{
    size_t pos = 0;
    uint32_t n = 0;
    struct slice k, v;
    while (mqtt_user_prop_next(p->raw, &pos, &k, &v)) {
        CHECK(mqtt_utf8_valid(k) && mqtt_utf8_valid(v));
        n++;
    }
    CHECK(n == p->n_user_props);
}

/* ---- per packet: encode, decode, encode, compare ---- */

static void
cycle_connect(const struct mqtt_connect *c)
{
    struct buf e1, e2;
    struct mqtt_connect d;
    uint8_t flags;

    check_user_props(&c->props);
    check_user_props(&c->will_props);
    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_connect(&e1, c) == 0);
    CHECK(mqtt_decode_connect(0, reframe(&e1, MQTT_CONNECT, &flags), &d) == 0);
    CHECK(flags == 0 && d.version == c->version && d.keepalive == c->keepalive);
    CHECK(slice_eq(d.client_id, c->client_id) && slice_eq(d.password, c->password));
    CHECK(mqtt_encode_connect(&e2, &d) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
}

static void
cycle_connack(int v, const struct mqtt_connack *c)
{
    struct buf e1, e2;
    struct mqtt_connack d;
    uint8_t flags;

    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_connack(&e1, v, c) == 0);
    CHECK(mqtt_decode_connack(0, reframe(&e1, MQTT_CONNACK, &flags), v, &d) == 0);
    /* 3.x sends both Bad credentials and Not authorized as 5, which reads back as the latter. */
    CHECK(d.rc == c->rc ||
          (v != MQTT_V5 && c->rc == MQTT_RC_BAD_CREDENTIALS && d.rc == MQTT_RC_NOT_AUTHORIZED));
    CHECK(mqtt_encode_connack(&e2, v, &d) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
}

static void
cycle_publish(int v, const struct mqtt_publish *p)
{
    struct buf e1, e2;
    struct mqtt_publish d;
    uint8_t flags;

    check_user_props(&p->props);
    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_publish(&e1, v, p) == 0);
    CHECK(mqtt_publish_size(v, p) == e1.len);
    CHECK(mqtt_decode_publish(0, slice_make(NULL, 0), v, &d) != 0);
    struct slice body = reframe(&e1, MQTT_PUBLISH, &flags);
    CHECK(mqtt_decode_publish(flags, body, v, &d) == 0);
    CHECK(d.qos == p->qos && d.dup == p->dup && d.retain == p->retain);
    CHECK(d.packet_id == p->packet_id);
    CHECK(slice_eq(d.topic, p->topic) && slice_eq(d.payload, p->payload));
    CHECK(mqtt_encode_publish(&e2, v, &d) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
}

static void
cycle_ack(enum mqtt_type type, int v, const struct mqtt_ack *a)
{
    struct buf e1, e2;
    struct mqtt_ack d;
    uint8_t flags;

    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_ack(&e1, type, v, a) == 0);
    CHECK(mqtt_decode_ack(type, 0, slice_make(NULL, 0), v, &d) != 0);
    struct slice body = reframe(&e1, (uint8_t)type, &flags);
    CHECK(mqtt_decode_ack(type, flags, body, v, &d) == 0);
    CHECK(d.packet_id == a->packet_id && d.rc == (v == MQTT_V5 ? a->rc : 0));
    CHECK(mqtt_encode_ack(&e2, type, v, &d) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
}

static void
cycle_subscribe(int v, const struct mqtt_subscribe *s)
{
    struct slice *filters = calloc(s->n_entries, sizeof(*filters));
    struct mqtt_sub_opts *opts = calloc(s->n_entries, sizeof(*opts));
    struct buf e1, e2;
    struct mqtt_subscribe d;
    size_t pos = 0, n = 0;
    uint8_t flags;

    CHECK(filters && opts);
    while (mqtt_subscribe_next(s, &pos, &filters[n], &opts[n])) {
        CHECK(n < s->n_entries);
        CHECK(filters[n].len > 0 && mqtt_utf8_valid(filters[n]));
        CHECK(opts[n].qos < 3 && opts[n].retain_handling < 3);
        n++;
    }
    CHECK(n == s->n_entries && pos == s->entries.len);
    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_subscribe(&e1, v, s->packet_id, &s->props, filters, opts, n) == 0);
    CHECK(mqtt_decode_subscribe(0x2, reframe(&e1, MQTT_SUBSCRIBE, &flags), v, &d) == 0);
    CHECK(flags == 0x2 && d.n_entries == n && d.packet_id == s->packet_id);
    CHECK(mqtt_encode_subscribe(&e2, v, d.packet_id, &d.props, filters, opts, n) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
    free(filters);
    free(opts);
}

static void
cycle_unsubscribe(int v, const struct mqtt_unsubscribe *u)
{
    struct slice *filters = calloc(u->n_entries, sizeof(*filters));
    struct buf e1, e2;
    struct mqtt_unsubscribe d;
    size_t pos = 0, n = 0;
    uint8_t flags;

    CHECK(filters);
    while (mqtt_unsubscribe_next(u, &pos, &filters[n])) {
        CHECK(n < u->n_entries);
        n++;
    }
    CHECK(n == u->n_entries && pos == u->entries.len);
    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_unsubscribe(&e1, v, u->packet_id, &u->props, filters, n) == 0);
    CHECK(mqtt_decode_unsubscribe(0x2, reframe(&e1, MQTT_UNSUBSCRIBE, &flags), v, &d) == 0);
    CHECK(d.n_entries == n);
    CHECK(mqtt_encode_unsubscribe(&e2, v, d.packet_id, &d.props, filters, n) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
    free(filters);
}

static void
cycle_suback(enum mqtt_type type, int v, const struct mqtt_suback *s)
{
    struct buf e1, e2;
    struct mqtt_suback d;
    uint8_t flags;

    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_suback(&e1, type, v, s) == 0);
    CHECK(mqtt_decode_suback(type, 0, reframe(&e1, (uint8_t)type, &flags), v, &d) == 0);
    CHECK(d.n_rcs == s->n_rcs);
    CHECK(mqtt_encode_suback(&e2, type, v, &d) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
}

static void
cycle_disconnect(enum mqtt_type type, int v, const struct mqtt_disconnect *dc)
{
    struct buf e1, e2;
    struct mqtt_disconnect d;
    uint8_t flags;

    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_encode_disconnect(&e1, type, v, dc) == 0);
    CHECK(mqtt_decode_disconnect(type, 0, reframe(&e1, (uint8_t)type, &flags), v, &d) == 0);
    CHECK(d.rc == dc->rc);
    CHECK(mqtt_encode_disconnect(&e2, type, v, &d) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
}

static void
cycle_props(struct slice raw, enum mqtt_type type, bool is_will)
{
    struct mqtt_props p, q;
    struct buf e1, e2;
    uint32_t len;

    if (mqtt_props_decode(raw, type, is_will, &p) != 0)
        return;
    check_user_props(&p);
    buf_init(&e1);
    buf_init(&e2);
    CHECK(mqtt_props_encode(&e1, &p) == 0);
    int n = mqtt_varint_get(buf_slice(&e1), &len);
    CHECK(n > 0 && (size_t)n + len == e1.len && len == mqtt_props_size(&p));
    CHECK(mqtt_props_decode(slice_tail(buf_slice(&e1), (size_t)n), type, is_will, &q) == 0);
    CHECK(q.has == p.has && q.n_user_props == p.n_user_props);
    CHECK(mqtt_props_encode(&e2, &q) == 0);
    check_same(&e1, &e2);
    buf_fini(&e1);
    buf_fini(&e2);
}

/* ---- UTF-8 reference: decode code points the long way ---- */

static bool
utf8_reference(struct slice s)
{
    size_t i = 0;
    while (i < s.len) {
        uint8_t c = s.p[i];
        uint32_t cp;
        size_t n;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            n = 2;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            n = 3;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            n = 4;
        } else {
            return false;
        }
        if (s.len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s.p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s.p[i + k] & 0x3f);
        }
        static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0)
            return false;
        i += n;
    }
    return true;
}

/* ---- driver ---- */

static void
decode_all(uint8_t flags, struct slice body, int v, bool canonical)
{
    union {
        struct mqtt_connect connect;
        struct mqtt_connack connack;
        struct mqtt_publish publish;
        struct mqtt_ack ack;
        struct mqtt_subscribe subscribe;
        struct mqtt_unsubscribe unsubscribe;
        struct mqtt_suback suback;
        struct mqtt_disconnect disconnect;
    } u;
    uint8_t f0 = canonical ? 0 : flags;
    uint8_t f2 = canonical ? 0x2 : flags;

    if (v == MQTT_V5 && mqtt_decode_connect(f0, body, &u.connect) == 0)
        cycle_connect(&u.connect);
    if (mqtt_decode_connack(f0, body, v, &u.connack) == 0)
        cycle_connack(v, &u.connack);
    if (mqtt_decode_publish(flags, body, v, &u.publish) == 0)
        cycle_publish(v, &u.publish);
    for (enum mqtt_type t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++)
        if (mqtt_decode_ack(t, t == MQTT_PUBREL ? f2 : f0, body, v, &u.ack) == 0)
            cycle_ack(t, v, &u.ack);
    if (mqtt_decode_subscribe(f2, body, v, &u.subscribe) == 0)
        cycle_subscribe(v, &u.subscribe);
    if (mqtt_decode_unsubscribe(f2, body, v, &u.unsubscribe) == 0)
        cycle_unsubscribe(v, &u.unsubscribe);
    if (mqtt_decode_suback(MQTT_SUBACK, f0, body, v, &u.suback) == 0)
        cycle_suback(MQTT_SUBACK, v, &u.suback);
    if (mqtt_decode_suback(MQTT_UNSUBACK, f0, body, v, &u.suback) == 0)
        cycle_suback(MQTT_UNSUBACK, v, &u.suback);
    if (mqtt_decode_disconnect(MQTT_DISCONNECT, f0, body, v, &u.disconnect) == 0)
        cycle_disconnect(MQTT_DISCONNECT, v, &u.disconnect);
    if (mqtt_decode_disconnect(MQTT_AUTH, f0, body, v, &u.disconnect) == 0)
        cycle_disconnect(MQTT_AUTH, v, &u.disconnect);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = slice_make(data, size);
    struct mqtt_fixed_header fh;
    uint8_t flags = size ? data[0] & 0x0f : 0;
    struct slice body = size ? slice_tail(in, 1) : in;

    int rc = mqtt_decode_fixed_header(in, 0, &fh);
    if (rc == 0) {
        CHECK(fh.header_len >= 2 && fh.header_len <= 5 && fh.header_len <= size);
        CHECK(fh.remaining <= MQTT_VARINT_MAX);
        body = slice_tail(in, fh.header_len);
        if (body.len > fh.remaining)
            body.len = fh.remaining;
        flags = fh.flags;
        struct mqtt_fixed_header small;
        int r2 = mqtt_decode_fixed_header(in, (uint32_t)size, &small);
        CHECK(r2 == 0 || (r2 == MQTT_RC_PACKET_TOO_LARGE &&
                          (size_t)fh.header_len + fh.remaining > size));
    } else {
        CHECK(rc == -EAGAIN || rc == MQTT_RC_MALFORMED);
    }

    /* An exact-size copy, so a read past the body is caught by AddressSanitizer. */
    uint8_t *copy = malloc(body.len ? body.len : 1);
    CHECK(copy);
    if (body.len)
        memcpy(copy, body.p, body.len);
    body = slice_make(copy, body.len);

    for (size_t i = 0; i < 3; i++) {
        decode_all(flags, body, versions[i], false);
        decode_all(flags, body, versions[i], true);
    }
    struct mqtt_connect c;
    if (mqtt_decode_connect(0, body, &c) == 0)
        cycle_connect(&c);
    for (int t = MQTT_CONNECT; t <= MQTT_AUTH; t++)
        cycle_props(body, (enum mqtt_type)t, false);
    cycle_props(body, MQTT_CONNECT, true);
    CHECK(mqtt_utf8_valid(body) == utf8_reference(body));

    free(copy);
    return 0;
}
