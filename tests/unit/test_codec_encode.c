/*
 * test_codec_encode.c - encoders: exact bytes for known packets, the 3.1.1 mappings, and a
 * round trip (encode, frame, decode, compare) of every packet type in every version that has it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "mqtt/packet.h"
#include "mqtt/rc.h"

static const int versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};
#define FOR_EACH_VERSION(v)                                                                    \
    for (size_t vi_ = 0; vi_ < 3; vi_++)                                                       \
        for (int v = versions[vi_], once_ = 1; once_; once_ = 0)

/* Hex bytes with optional 'quoted text', spaces ignored: "10 0c 00 04 'MQTT'". */
static size_t
unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
        } else if (*s == '\'') {
            for (s++; *s && *s != '\''; s++)
                out[n++] = (uint8_t)*s;
            assert_true(*s == '\'');
            s++;
        } else {
            unsigned byte;
            assert_true(sscanf(s, "%2x", &byte) == 1);
            out[n++] = (uint8_t)byte;
            s += 2;
        }
    }
    return n;
}

static void
assert_buf_hex(const struct buf *b, const char *hex)
{
    uint8_t want[512];
    size_t n = unhex(hex, want);
    if (b->len != n || memcmp(b->p, want, n) != 0) {
        char got[1600] = "";
        for (size_t i = 0; i < b->len && i < 500; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%02x ", b->p[i]);
        fail_msg("got %s\nwant %s", got, hex);
    }
}

/* Frame the one packet at *pos of b: check the fixed header and return the body. */
static struct slice
frame(const struct buf *b, size_t *pos, uint8_t want_type, uint8_t *flags)
{
    struct mqtt_fixed_header fh;
    assert_int_equal(mqtt_decode_fixed_header(slice_tail(buf_slice(b), *pos), 0, &fh), 0);
    assert_int_equal(fh.type, want_type);
    assert_true(*pos + fh.header_len + fh.remaining <= b->len);
    struct slice body = slice_make(b->p + *pos + fh.header_len, fh.remaining);
    *pos += fh.header_len + fh.remaining;
    *flags = fh.flags;
    return body;
}

static struct slice
frame_all(const struct buf *b, uint8_t want_type, uint8_t *flags)
{
    size_t pos = 0;
    struct slice body = frame(b, &pos, want_type, flags);
    assert_int_equal(pos, b->len);
    return body;
}

static void
assert_slice(struct slice a, struct slice b)
{
    if (!slice_eq(a, b))
        fail_msg("slice '%.*s' != '%.*s'", SLICE_FMT(a), SLICE_FMT(b));
}

/* Two property sets are the same when they encode to the same bytes (the encoder writes every
 * field whose bit is set and every user property). */
static void
assert_props_same(const struct mqtt_props *a, const struct mqtt_props *b)
{
    struct buf ba, bb;
    buf_init(&ba);
    buf_init(&bb);
    assert_int_equal(mqtt_props_encode(&ba, a), 0);
    assert_int_equal(mqtt_props_encode(&bb, b), 0);
    assert_int_equal(ba.len, bb.len);
    assert_memory_equal(ba.p, bb.p, ba.len);
    assert_int_equal(a->has, b->has);
    buf_fini(&ba);
    buf_fini(&bb);
}

static const uint8_t users[] = {0x26, 0, 4, 'r', 'o', 'l', 'e', 0, 5, 'a', 'd', 'm', 'i', 'n',
                                0x26, 0, 1, 'k', 0, 0};

static void
set_users(struct mqtt_props *p)
{
    p->has |= MQTT_PROP_BIT(MQTT_PROP_USER);
    p->raw = slice_make(users, sizeof(users));
}

/* ---- known bytes ---- */

static void
connect_311_known_bytes(void **state)
{
    struct mqtt_connect c = {.version = MQTT_V311, .clean_start = true, .keepalive = 60,
                             .client_id = SLICE("mosq-test")};
    struct buf b;
    buf_init(&b);
    assert_int_equal(mqtt_encode_connect(&b, &c), 0);
    assert_buf_hex(&b, "10 15 00 04 'MQTT' 04 02 00 3c 00 09 'mosq-test'");
    buf_fini(&b);

    /* every flag: user 0x80, password 0x40, will retain 0x20, will qos 2 0x10, will 0x04 */
    struct mqtt_connect f = {.version = MQTT_V31, .keepalive = 10, .client_id = SLICE("c"),
                             .has_will = true, .will_qos = 2, .will_retain = true,
                             .will_topic = SLICE("w"), .will_payload = SLICE("x"),
                             .has_username = true, .username = SLICE("u"),
                             .has_password = true, .password = SLICE("p")};
    buf_init(&b);
    assert_int_equal(mqtt_encode_connect(&b, &f), 0);
    assert_buf_hex(&b, "10 1b 00 06 'MQIsdp' 03 f4 00 0a 00 01 'c' 00 01 'w' 00 01 'x'"
                       " 00 01 'u' 00 01 'p'");
    buf_fini(&b);
}

static void
connect_5_known_bytes(void **state)
{
    struct mqtt_connect c = {.version = MQTT_V5, .clean_start = true, .keepalive = 30};
    c.props.has = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) | MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX);
    c.props.session_expiry = 120;
    c.props.receive_max = 20;
    struct buf b;
    buf_init(&b);
    assert_int_equal(mqtt_encode_connect(&b, &c), 0);
    assert_buf_hex(&b, "10 15 00 04 'MQTT' 05 02 00 1e 08 11 00 00 00 78 21 00 14 00 00");
    buf_fini(&b);
}

static void
connack_31_return_codes(void **state)
{
    /* MQTT 5 reason code -> 3.1.1 return code (3.1.1 table 3.1) */
    static const struct {
        uint8_t rc, code;
    } map[] = {
        {0x00, 0}, {0x84, 1}, {0x85, 2}, {0x88, 3}, {0x89, 3}, {0x8B, 3}, {0x80, 3},
        {0x81, 3}, {0x82, 3}, {0x83, 3}, {0x95, 3}, {0x97, 3}, {0x9F, 3}, {0x86, 5},
        {0x87, 5}, {0x8A, 5}, {0x8C, 5},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        struct mqtt_connack c = {.rc = map[i].rc, .session_present = true};
        struct buf b;
        buf_init(&b);
        assert_int_equal(mqtt_encode_connack(&b, MQTT_V311, &c), 0);
        assert_int_equal(b.len, 4);
        assert_int_equal(b.p[0], 0x20);
        assert_int_equal(b.p[1], 0x02);
        /* session present only with success [MQTT-3.2.2-4] */
        assert_int_equal(b.p[2], map[i].code == 0 ? 1 : 0);
        assert_int_equal(b.p[3], map[i].code);
        buf_fini(&b);
    }
}

static void
connack_known_bytes(void **state)
{
    struct mqtt_connack c = {.session_present = true};
    struct buf b;

    buf_init(&b);
    assert_int_equal(mqtt_encode_connack(&b, MQTT_V31, &c), 0);
    assert_buf_hex(&b, "20 02 00 00"); /* 3.1 has no session present flag */
    buf_fini(&b);

    c.props.has = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAX) | MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS);
    c.props.topic_alias_max = 10;
    c.props.maximum_qos = 1;
    buf_init(&b);
    assert_int_equal(mqtt_encode_connack(&b, MQTT_V5, &c), 0);
    assert_buf_hex(&b, "20 08 01 00 05 22 00 0a 24 01");
    buf_fini(&b);

    struct mqtt_connack e = {.session_present = true, .rc = MQTT_RC_NOT_AUTHORIZED};
    buf_init(&b);
    assert_int_equal(mqtt_encode_connack(&b, MQTT_V5, &e), 0);
    assert_buf_hex(&b, "20 03 00 87 00");
    buf_fini(&b);
}

static void
publish_known_bytes(void **state)
{
    struct mqtt_publish p = {.qos = 1, .packet_id = 10, .topic = SLICE("a/b"),
                             .payload = SLICE("hi")};
    struct buf b;

    buf_init(&b);
    assert_int_equal(mqtt_encode_publish(&b, MQTT_V311, &p), 0);
    assert_buf_hex(&b, "32 09 00 03 'a/b' 00 0a 'hi'");
    assert_int_equal(mqtt_publish_size(MQTT_V311, &p), b.len);
    buf_fini(&b);

    buf_init(&b);
    assert_int_equal(mqtt_encode_publish(&b, MQTT_V5, &p), 0);
    assert_buf_hex(&b, "32 0a 00 03 'a/b' 00 0a 00 'hi'");
    assert_int_equal(mqtt_publish_size(MQTT_V5, &p), b.len);
    buf_fini(&b);

    /* QoS 0: no packet id, and DUP is never set [MQTT-3.3.1-2] */
    struct mqtt_publish q = {.qos = 0, .dup = true, .retain = true, .packet_id = 7,
                             .topic = SLICE("t"), .payload = SLICE("")};
    buf_init(&b);
    assert_int_equal(mqtt_encode_publish(&b, MQTT_V311, &q), 0);
    assert_buf_hex(&b, "31 03 00 01 't'");
    buf_fini(&b);

    struct mqtt_publish r = {.qos = 2, .dup = true, .packet_id = 0x1234, .topic = SLICE("t"),
                             .payload = SLICE("x")};
    r.props.has = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
    r.props.topic_alias = 1;
    buf_init(&b);
    assert_int_equal(mqtt_encode_publish(&b, MQTT_V5, &r), 0);
    assert_buf_hex(&b, "3c 0a 00 01 't' 12 34 03 23 00 01 'x'");
    buf_fini(&b);
}

static void
publish_size_matches_encoding(void **state)
{
    static uint8_t big[20000];
    static const uint32_t ids[] = {1, 300, 70000};
    size_t lens[] = {0, 1, 100, 127, 128, 16383, 16384, sizeof(big)};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        FOR_EACH_VERSION(v)
        {
            for (uint8_t qos = 0; qos < 3; qos++) {
                struct mqtt_publish p = {.qos = qos, .packet_id = 1, .topic = SLICE("x/y/z"),
                                         .payload = slice_make(big, lens[i])};
                if (i & 1) {
                    p.props.sub_ids = ids;
                    p.props.n_sub_ids = 3;
                    p.props.has = MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE);
                    p.props.content_type = SLICE("application/json");
                    set_users(&p.props);
                }
                struct buf b;
                buf_init(&b);
                assert_int_equal(mqtt_encode_publish(&b, v, &p), 0);
                assert_int_equal(mqtt_publish_size(v, &p), b.len);
                buf_fini(&b);
            }
        }
    }
}

static void
too_large_is_refused(void **state)
{
    static const uint8_t byte;
    /* Never read: the size check comes first. */
    struct mqtt_publish p = {.topic = SLICE("t"), .payload = slice_make(&byte, MQTT_VARINT_MAX)};
    struct buf b;
    buf_init(&b);
    assert_true(mqtt_publish_size(MQTT_V311, &p) > MQTT_VARINT_MAX);
    assert_int_equal(mqtt_encode_publish(&b, MQTT_V311, &p), -EMSGSIZE);
    assert_int_equal(b.len, 0);
    buf_fini(&b);
}

static void
ack_known_bytes(void **state)
{
    struct mqtt_ack a = {.packet_id = 1};
    struct buf b;

    buf_init(&b);
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBACK, MQTT_V311, &a), 0);
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBREC, MQTT_V311, &a), 0);
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBREL, MQTT_V311, &a), 0); /* flags 0x2 */
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBCOMP, MQTT_V311, &a), 0);
    assert_buf_hex(&b, "40 02 00 01 50 02 00 01 62 02 00 01 70 02 00 01");
    buf_fini(&b);

    /* MQTT 5: success without properties is the 3.1.1 form; a reason code alone is 3 bytes */
    buf_init(&b);
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBACK, MQTT_V5, &a), 0);
    a.rc = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBACK, MQTT_V5, &a), 0);
    a.props.has = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
    a.props.reason_string = SLICE("no");
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBREC, MQTT_V5, &a), 0);
    /* the reason code of a 3.x ack is dropped */
    assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBACK, MQTT_V311, &a), 0);
    assert_buf_hex(&b, "40 02 00 01 40 03 00 01 10 50 09 00 01 10 05 1f 00 02 'no' 40 02 00 01");
    buf_fini(&b);
}

static void
subscribe_known_bytes(void **state)
{
    struct slice filters[] = {SLICE("a/b"), SLICE("c/#")};
    struct mqtt_sub_opts opts[] = {{.qos = 1, .no_local = true, .retain_as_published = true,
                                    .retain_handling = 2},
                                   {.qos = 2}};
    struct buf b;

    buf_init(&b);
    assert_int_equal(mqtt_encode_subscribe(&b, MQTT_V311, 1, NULL, filters, opts, 2), 0);
    /* 3.x writes the QoS only */
    assert_buf_hex(&b, "82 0e 00 01 00 03 'a/b' 01 00 03 'c/#' 02");
    buf_fini(&b);

    struct mqtt_props props = {.has = MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID),
                               .subscription_id = 200};
    buf_init(&b);
    assert_int_equal(mqtt_encode_subscribe(&b, MQTT_V5, 2, &props, filters, opts, 2), 0);
    assert_buf_hex(&b, "82 12 00 02 03 0b c8 01 00 03 'a/b' 2d 00 03 'c/#' 02");
    buf_fini(&b);

    buf_init(&b);
    assert_int_equal(mqtt_encode_unsubscribe(&b, MQTT_V311, 3, NULL, filters, 2), 0);
    assert_int_equal(mqtt_encode_unsubscribe(&b, MQTT_V5, 3, NULL, filters, 1), 0);
    assert_buf_hex(&b, "a2 0c 00 03 00 03 'a/b' 00 03 'c/#' a2 08 00 03 00 00 03 'a/b'");
    buf_fini(&b);
}

static void
suback_known_bytes(void **state)
{
    static const uint8_t rcs[] = {0x00, 0x01, 0x02, 0x80, 0x87, 0x8F, 0xA2};
    struct mqtt_suback s = {.packet_id = 9, .rcs = rcs, .n_rcs = sizeof(rcs)};
    struct buf b;

    buf_init(&b);
    /* 3.x: every failure becomes 0x80 [MQTT-3.9.3-2] */
    assert_int_equal(mqtt_encode_suback(&b, MQTT_SUBACK, MQTT_V311, &s), 0);
    assert_buf_hex(&b, "90 09 00 09 00 01 02 80 80 80 80");
    buf_fini(&b);

    buf_init(&b);
    assert_int_equal(mqtt_encode_suback(&b, MQTT_SUBACK, MQTT_V5, &s), 0);
    assert_buf_hex(&b, "90 0a 00 09 00 00 01 02 80 87 8f a2");
    buf_fini(&b);

    static const uint8_t urcs[] = {0x00, 0x11};
    struct mqtt_suback u = {.packet_id = 9, .rcs = urcs, .n_rcs = 2};
    buf_init(&b);
    /* a 3.x UNSUBACK has no payload */
    assert_int_equal(mqtt_encode_suback(&b, MQTT_UNSUBACK, MQTT_V311, &u), 0);
    assert_int_equal(mqtt_encode_suback(&b, MQTT_UNSUBACK, MQTT_V31, &u), 0);
    assert_int_equal(mqtt_encode_suback(&b, MQTT_UNSUBACK, MQTT_V5, &u), 0);
    assert_buf_hex(&b, "b0 02 00 09 b0 02 00 09 b0 05 00 09 00 00 11");
    buf_fini(&b);
}

static void
ping_and_disconnect_known_bytes(void **state)
{
    struct mqtt_disconnect d = {0};
    struct buf b;

    buf_init(&b);
    assert_int_equal(mqtt_encode_pingreq(&b), 0);
    assert_int_equal(mqtt_encode_pingresp(&b), 0);
    assert_int_equal(mqtt_encode_disconnect(&b, MQTT_DISCONNECT, MQTT_V311, &d), 0);
    assert_int_equal(mqtt_encode_disconnect(&b, MQTT_DISCONNECT, MQTT_V5, &d), 0);
    assert_int_equal(mqtt_encode_disconnect(&b, MQTT_AUTH, MQTT_V5, &d), 0);
    d.rc = MQTT_RC_SESSION_TAKEN_OVER;
    assert_int_equal(mqtt_encode_disconnect(&b, MQTT_DISCONNECT, MQTT_V5, &d), 0);
    /* 3.x DISCONNECT carries nothing, whatever the reason */
    assert_int_equal(mqtt_encode_disconnect(&b, MQTT_DISCONNECT, MQTT_V31, &d), 0);
    d.rc = MQTT_RC_CONTINUE_AUTH;
    assert_int_equal(mqtt_encode_disconnect(&b, MQTT_AUTH, MQTT_V5, &d), 0);
    assert_buf_hex(&b, "c0 00 d0 00 e0 00 e0 00 f0 00 e0 01 8e e0 00 f0 02 18 00");
    buf_fini(&b);
}

/* ---- round trips ---- */

static void
connect_round_trips(void **state)
{
    FOR_EACH_VERSION(v)
    {
        for (int full = 0; full < 2; full++) {
            struct mqtt_connect c = {.version = (uint8_t)v, .clean_start = !full,
                                     .keepalive = full ? 0xffff : 0,
                                     .client_id = full ? SLICE("client-\xc3\xa9") : SLICE("")};
            if (full) {
                c.has_will = true;
                c.will_qos = 2;
                c.will_retain = true;
                c.will_topic = SLICE("last/will");
                c.will_payload = SLICE("\x00\xff gone");
                c.has_username = true;
                c.username = SLICE("user");
                c.has_password = true;
                c.password = SLICE("\x00secret");
                if (v == MQTT_V5) {
                    c.props.has = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) |
                                  MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX) |
                                  MQTT_PROP_BIT(MQTT_PROP_MAX_PACKET_SIZE) |
                                  MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAX) |
                                  MQTT_PROP_BIT(MQTT_PROP_REQUEST_RESPONSE_INFO) |
                                  MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFO) |
                                  MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) |
                                  MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
                    c.props.session_expiry = 3600;
                    c.props.receive_max = 100;
                    c.props.max_packet_size = 65536;
                    c.props.topic_alias_max = 16;
                    c.props.request_response_info = 1;
                    c.props.auth_method = SLICE("PLAIN");
                    c.props.auth_data = SLICE("\x01\x02\x03");
                    set_users(&c.props);
                    c.will_props.has = MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY) |
                                       MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) |
                                       MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) |
                                       MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) |
                                       MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
                                       MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA);
                    c.will_props.will_delay = 5;
                    c.will_props.payload_format = 1;
                    c.will_props.message_expiry = 60;
                    c.will_props.content_type = SLICE("text/plain");
                    c.will_props.response_topic = SLICE("re/ply");
                    c.will_props.correlation_data = SLICE("\x00\x01");
                    set_users(&c.will_props);
                }
            }
            struct buf b;
            struct mqtt_connect d;
            uint8_t flags;
            buf_init(&b);
            assert_int_equal(mqtt_encode_connect(&b, &c), 0);
            struct slice body = frame_all(&b, MQTT_CONNECT, &flags);
            assert_int_equal(mqtt_decode_connect(flags, body, &d), 0);
            assert_int_equal(d.version, v);
            assert_int_equal(d.clean_start, c.clean_start);
            assert_int_equal(d.keepalive, c.keepalive);
            assert_slice(d.client_id, c.client_id);
            assert_int_equal(d.has_will, c.has_will);
            assert_int_equal(d.will_qos, c.will_qos);
            assert_int_equal(d.will_retain, c.will_retain);
            assert_slice(d.will_topic, c.will_topic);
            assert_slice(d.will_payload, c.will_payload);
            assert_int_equal(d.has_username, c.has_username);
            assert_slice(d.username, c.username);
            assert_int_equal(d.has_password, c.has_password);
            assert_slice(d.password, c.password);
            assert_props_same(&d.props, &c.props);
            assert_props_same(&d.will_props, &c.will_props);
            if (v == MQTT_V5 && full)
                assert_int_equal(d.props.n_user_props, 2);
            buf_fini(&b);
        }
    }
}

static void
connack_round_trips(void **state)
{
    static const uint8_t rcs[] = {0x00, 0x84, 0x85, 0x88, 0x86, 0x87};
    FOR_EACH_VERSION(v)
    {
        for (size_t i = 0; i < sizeof(rcs); i++) {
            struct mqtt_connack c = {.session_present = rcs[i] == 0 && v != MQTT_V31,
                                     .rc = rcs[i]};
            if (v == MQTT_V5) {
                c.props.has = MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID) |
                              MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE) |
                              MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX) |
                              MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS) |
                              MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE) |
                              MQTT_PROP_BIT(MQTT_PROP_WILDCARD_SUB_AVAILABLE) |
                              MQTT_PROP_BIT(MQTT_PROP_SUB_ID_AVAILABLE) |
                              MQTT_PROP_BIT(MQTT_PROP_SHARED_SUB_AVAILABLE) |
                              MQTT_PROP_BIT(MQTT_PROP_REASON_STRING) |
                              MQTT_PROP_BIT(MQTT_PROP_SERVER_REFERENCE) |
                              MQTT_PROP_BIT(MQTT_PROP_RESPONSE_INFO) |
                              MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
                c.props.assigned_client_id = SLICE("auto-0001");
                c.props.server_keep_alive = 30;
                c.props.receive_max = 1024;
                c.props.maximum_qos = 1;
                c.props.wildcard_sub_available = 1;
                c.props.shared_sub_available = 1;
                c.props.reason_string = SLICE("ok");
                c.props.server_reference = SLICE("b2:1883");
                c.props.response_info = SLICE("resp/");
                c.props.session_expiry = 10;
                set_users(&c.props);
            }
            struct buf b;
            struct mqtt_connack d;
            uint8_t flags;
            buf_init(&b);
            assert_int_equal(mqtt_encode_connack(&b, v, &c), 0);
            struct slice body = frame_all(&b, MQTT_CONNACK, &flags);
            assert_int_equal(mqtt_decode_connack(flags, body, v, &d), 0);
            assert_int_equal(d.session_present, c.session_present);
            /* 3.x has one code for both refusals (5), which reads back as Not authorized. */
            if (v != MQTT_V5 && c.rc == MQTT_RC_BAD_CREDENTIALS)
                assert_int_equal(d.rc, MQTT_RC_NOT_AUTHORIZED);
            else
                assert_int_equal(d.rc, c.rc);
            assert_props_same(&d.props, &c.props);
            buf_fini(&b);
        }
    }
}

static void
publish_round_trips(void **state)
{
    FOR_EACH_VERSION(v)
    {
        for (uint8_t qos = 0; qos < 3; qos++) {
            for (int variant = 0; variant < 3; variant++) {
                struct mqtt_publish p = {.qos = qos, .dup = qos && variant == 1,
                                         .retain = variant == 2,
                                         .packet_id = qos ? (uint16_t)(0xfff0 + variant) : 0,
                                         .topic = SLICE("sensors/\xe6\xb8\xa9\xe5\xba\xa6/1"),
                                         .payload = variant ? SLICE("\x00\x01\x02 binary")
                                                            : SLICE("")};
                if (v == MQTT_V5 && variant) {
                    p.props.has = MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) |
                                  MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) |
                                  MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) |
                                  MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
                                  MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) |
                                  MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
                    p.props.payload_format = 0;
                    p.props.message_expiry = 86400;
                    p.props.content_type = SLICE("application/octet-stream");
                    p.props.response_topic = SLICE("reply/1");
                    p.props.correlation_data = SLICE("id-77");
                    p.props.topic_alias = 4;
                    set_users(&p.props);
                    if (variant == 2)
                        p.topic = SLICE(""); /* the alias stands for it */
                }
                struct buf b;
                struct mqtt_publish d;
                uint8_t flags;
                buf_init(&b);
                assert_int_equal(mqtt_encode_publish(&b, v, &p), 0);
                assert_int_equal(mqtt_publish_size(v, &p), b.len);
                struct slice body = frame_all(&b, MQTT_PUBLISH, &flags);
                assert_int_equal(mqtt_decode_publish(flags, body, v, &d), 0);
                assert_int_equal(d.qos, p.qos);
                assert_int_equal(d.dup, p.dup);
                assert_int_equal(d.retain, p.retain);
                assert_int_equal(d.packet_id, p.packet_id);
                assert_slice(d.topic, p.topic);
                assert_slice(d.payload, p.payload);
                assert_props_same(&d.props, &p.props);
                buf_fini(&b);
            }
        }
    }
}

static void
packets_append_to_a_buffer(void **state)
{
    struct mqtt_publish p = {.qos = 1, .packet_id = 1, .topic = SLICE("a"), .payload = SLICE("1")};
    struct mqtt_ack a = {.packet_id = 1};
    struct buf b;
    size_t pos = 0;
    uint8_t flags;
    struct mqtt_publish d;
    struct mqtt_ack da;

    buf_init(&b);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(mqtt_encode_publish(&b, MQTT_V5, &p), 0);
        assert_int_equal(mqtt_encode_ack(&b, MQTT_PUBACK, MQTT_V5, &a), 0);
    }
    for (int i = 0; i < 100; i++) {
        struct slice body = frame(&b, &pos, MQTT_PUBLISH, &flags);
        assert_int_equal(mqtt_decode_publish(flags, body, MQTT_V5, &d), 0);
        assert_slice(d.payload, SLICE("1"));
        body = frame(&b, &pos, MQTT_PUBACK, &flags);
        assert_int_equal(mqtt_decode_ack(MQTT_PUBACK, flags, body, MQTT_V5, &da), 0);
    }
    assert_int_equal(pos, b.len);
    buf_fini(&b);
}

static void
ack_round_trips(void **state)
{
    static const enum mqtt_type types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
    for (size_t t = 0; t < 4; t++) {
        FOR_EACH_VERSION(v)
        {
            for (int variant = 0; variant < 3; variant++) {
                bool rel = types[t] == MQTT_PUBREL || types[t] == MQTT_PUBCOMP;
                struct mqtt_ack a = {.packet_id = (uint16_t)(1 + variant * 1000)};
                if (v == MQTT_V5 && variant >= 1)
                    a.rc = rel ? MQTT_RC_PACKET_ID_NOT_FOUND : MQTT_RC_QUOTA_EXCEEDED;
                if (v == MQTT_V5 && variant == 2) {
                    a.props.has = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
                    a.props.reason_string = SLICE("quota");
                    set_users(&a.props);
                }
                struct buf b;
                struct mqtt_ack d;
                uint8_t flags;
                buf_init(&b);
                assert_int_equal(mqtt_encode_ack(&b, types[t], v, &a), 0);
                struct slice body = frame_all(&b, (uint8_t)types[t], &flags);
                if (v != MQTT_V5 || variant == 0)
                    assert_int_equal(body.len, 2);
                else if (variant == 1)
                    assert_int_equal(body.len, 3);
                assert_int_equal(mqtt_decode_ack(types[t], flags, body, v, &d), 0);
                assert_int_equal(d.packet_id, a.packet_id);
                assert_int_equal(d.rc, a.rc);
                assert_props_same(&d.props, &a.props);
                buf_fini(&b);
            }
        }
    }
}

static void
subscribe_round_trips(void **state)
{
    struct slice filters[] = {SLICE("a/+/c"), SLICE("#"), SLICE("$share/g/x/#"),
                              SLICE("\xc3\xa9t\xc3\xa9")};
    struct mqtt_sub_opts opts[] = {
        {.qos = 0},
        {.qos = 1, .no_local = true},
        {.qos = 2, .retain_as_published = true, .retain_handling = 1},
        {.qos = 1, .no_local = true, .retain_as_published = true, .retain_handling = 2},
    };
    FOR_EACH_VERSION(v)
    {
        struct mqtt_props props = {0};
        if (v == MQTT_V5) {
            props.has = MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
            props.subscription_id = 268435455;
            set_users(&props);
        }
        struct buf b;
        struct mqtt_subscribe d;
        uint8_t flags;
        buf_init(&b);
        assert_int_equal(mqtt_encode_subscribe(&b, v, 0xbeef, &props, filters, opts, 4), 0);
        struct slice body = frame_all(&b, MQTT_SUBSCRIBE, &flags);
        assert_int_equal(flags, 0x2);
        assert_int_equal(mqtt_decode_subscribe(flags, body, v, &d), 0);
        assert_int_equal(d.packet_id, 0xbeef);
        assert_int_equal(d.n_entries, 4);
        assert_props_same(&d.props, &props);
        size_t pos = 0;
        struct slice f;
        struct mqtt_sub_opts o;
        for (size_t i = 0; i < 4; i++) {
            assert_true(mqtt_subscribe_next(&d, &pos, &f, &o));
            assert_slice(f, filters[i]);
            assert_int_equal(o.qos, opts[i].qos);
            /* 3.x carries the QoS only */
            assert_int_equal(o.no_local, v == MQTT_V5 && opts[i].no_local);
            assert_int_equal(o.retain_as_published, v == MQTT_V5 && opts[i].retain_as_published);
            assert_int_equal(o.retain_handling, v == MQTT_V5 ? opts[i].retain_handling : 0);
        }
        assert_false(mqtt_subscribe_next(&d, &pos, &f, &o));
        buf_fini(&b);

        struct mqtt_unsubscribe u;
        buf_init(&b);
        assert_int_equal(mqtt_encode_unsubscribe(&b, v, 7, v == MQTT_V5 ? &props : NULL,
                                                 filters, 4),
                         0);
        body = frame_all(&b, MQTT_UNSUBSCRIBE, &flags);
        assert_int_equal(flags, 0x2);
        if (v == MQTT_V5) {
            /* a Subscription Identifier is not allowed in UNSUBSCRIBE */
            assert_int_equal(mqtt_decode_unsubscribe(flags, body, v, &u), MQTT_RC_MALFORMED);
            buf_fini(&b);
            struct mqtt_props up = {0};
            set_users(&up);
            buf_init(&b);
            assert_int_equal(mqtt_encode_unsubscribe(&b, v, 7, &up, filters, 4), 0);
            body = frame_all(&b, MQTT_UNSUBSCRIBE, &flags);
        }
        assert_int_equal(mqtt_decode_unsubscribe(flags, body, v, &u), 0);
        assert_int_equal(u.packet_id, 7);
        assert_int_equal(u.n_entries, 4);
        pos = 0;
        for (size_t i = 0; i < 4; i++) {
            assert_true(mqtt_unsubscribe_next(&u, &pos, &f));
            assert_slice(f, filters[i]);
        }
        assert_false(mqtt_unsubscribe_next(&u, &pos, &f));
        buf_fini(&b);
    }
}

static void
suback_round_trips(void **state)
{
    static const uint8_t rcs3[] = {0x00, 0x01, 0x02, 0x80};
    static const uint8_t rcs5[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E,
                                   0xA1, 0xA2};
    static const uint8_t urcs[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
    FOR_EACH_VERSION(v)
    {
        for (int unsub = 0; unsub < 2; unsub++) {
            enum mqtt_type type = unsub ? MQTT_UNSUBACK : MQTT_SUBACK;
            struct mqtt_suback s = {.packet_id = 0xffff};
            s.rcs = unsub ? urcs : v == MQTT_V5 ? rcs5 : rcs3;
            s.n_rcs = unsub ? sizeof(urcs) : v == MQTT_V5 ? sizeof(rcs5) : sizeof(rcs3);
            if (v == MQTT_V5) {
                s.props.has = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
                s.props.reason_string = SLICE("partly");
                set_users(&s.props);
            }
            struct buf b;
            struct mqtt_suback d;
            uint8_t flags;
            buf_init(&b);
            assert_int_equal(mqtt_encode_suback(&b, type, v, &s), 0);
            struct slice body = frame_all(&b, (uint8_t)type, &flags);
            assert_int_equal(mqtt_decode_suback(type, flags, body, v, &d), 0);
            assert_int_equal(d.packet_id, 0xffff);
            if (unsub && v != MQTT_V5) {
                assert_int_equal(d.n_rcs, 0);
            } else {
                assert_int_equal(d.n_rcs, s.n_rcs);
                assert_memory_equal(d.rcs, s.rcs, s.n_rcs);
            }
            assert_props_same(&d.props, &s.props);
            buf_fini(&b);
        }
    }
}

static void
ping_round_trips(void **state)
{
    struct buf b;
    uint8_t flags;
    buf_init(&b);
    assert_int_equal(mqtt_encode_pingreq(&b), 0);
    struct slice body = frame_all(&b, MQTT_PINGREQ, &flags);
    assert_int_equal(body.len, 0);
    assert_int_equal(flags, 0);
    buf_fini(&b);
    buf_init(&b);
    assert_int_equal(mqtt_encode_pingresp(&b), 0);
    body = frame_all(&b, MQTT_PINGRESP, &flags);
    assert_int_equal(body.len, 0);
    buf_fini(&b);
}

static void
disconnect_and_auth_round_trip(void **state)
{
    FOR_EACH_VERSION(v)
    {
        for (int variant = 0; variant < 3; variant++) {
            struct mqtt_disconnect dc = {0};
            if (v == MQTT_V5 && variant >= 1)
                dc.rc = MQTT_RC_DISCONNECT_WITH_WILL;
            if (v == MQTT_V5 && variant == 2) {
                dc.props.has = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) |
                               MQTT_PROP_BIT(MQTT_PROP_REASON_STRING) |
                               MQTT_PROP_BIT(MQTT_PROP_SERVER_REFERENCE);
                dc.props.session_expiry = 0;
                dc.props.reason_string = SLICE("bye");
                dc.props.server_reference = SLICE("other");
                set_users(&dc.props);
            }
            struct buf b;
            struct mqtt_disconnect d;
            uint8_t flags;
            buf_init(&b);
            assert_int_equal(mqtt_encode_disconnect(&b, MQTT_DISCONNECT, v, &dc), 0);
            struct slice body = frame_all(&b, MQTT_DISCONNECT, &flags);
            assert_int_equal(mqtt_decode_disconnect(MQTT_DISCONNECT, flags, body, v, &d), 0);
            assert_int_equal(d.rc, dc.rc);
            assert_props_same(&d.props, &dc.props);
            buf_fini(&b);
        }
    }
    /* AUTH exists in MQTT 5 only */
    static const uint8_t codes[] = {MQTT_RC_SUCCESS, MQTT_RC_CONTINUE_AUTH, MQTT_RC_REAUTHENTICATE};
    for (size_t i = 0; i < 3; i++) {
        struct mqtt_disconnect a = {.rc = codes[i]};
        if (i) {
            a.props.has = MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) |
                          MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA) |
                          MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
            a.props.auth_method = SLICE("SCRAM-SHA-256");
            a.props.auth_data = SLICE("\x00n,,n=user,r=abc");
            a.props.reason_string = SLICE("step");
            set_users(&a.props);
        }
        struct buf b;
        struct mqtt_disconnect d;
        uint8_t flags;
        buf_init(&b);
        assert_int_equal(mqtt_encode_disconnect(&b, MQTT_AUTH, MQTT_V5, &a), 0);
        struct slice body = frame_all(&b, MQTT_AUTH, &flags);
        assert_int_equal(mqtt_decode_disconnect(MQTT_AUTH, flags, body, MQTT_V5, &d), 0);
        assert_int_equal(d.rc, a.rc);
        assert_props_same(&d.props, &a.props);
        buf_fini(&b);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_311_known_bytes),
        cmocka_unit_test(connect_5_known_bytes),
        cmocka_unit_test(connack_31_return_codes),
        cmocka_unit_test(connack_known_bytes),
        cmocka_unit_test(publish_known_bytes),
        cmocka_unit_test(publish_size_matches_encoding),
        cmocka_unit_test(too_large_is_refused),
        cmocka_unit_test(ack_known_bytes),
        cmocka_unit_test(subscribe_known_bytes),
        cmocka_unit_test(suback_known_bytes),
        cmocka_unit_test(ping_and_disconnect_known_bytes),
        cmocka_unit_test(connect_round_trips),
        cmocka_unit_test(connack_round_trips),
        cmocka_unit_test(publish_round_trips),
        cmocka_unit_test(packets_append_to_a_buffer),
        cmocka_unit_test(ack_round_trips),
        cmocka_unit_test(subscribe_round_trips),
        cmocka_unit_test(suback_round_trips),
        cmocka_unit_test(ping_round_trips),
        cmocka_unit_test(disconnect_and_auth_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
