/*
 * test_bench_wire.c - petrel-bench's own small codec, checked against the broker's codec both
 * ways: what the generator writes must decode with the strict decoders of src/mqtt, and what
 * the broker's encoders write must parse with the generator's decoders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/packet.h"
#include "petrel-bench/wire.h"

/* Split one whole packet in b with the broker's fixed header decoder. */
static struct slice
body_of(const struct buf *b, uint8_t type, uint8_t *flags)
{
    struct mqtt_fixed_header fh;
    assert_int_equal(mqtt_decode_fixed_header(buf_slice(b), 0, &fh), 0);
    assert_int_equal(fh.type, type);
    assert_int_equal(fh.header_len + fh.remaining, b->len);
    *flags = fh.flags;
    return slice_make(b->p + fh.header_len, fh.remaining);
}

static void
connect_decodes(void **state)
{
    for (int version = 4; version <= 5; version++) {
        struct buf b;
        struct mqtt_connect c;
        uint8_t flags;
        buf_init(&b);
        wire_connect(&b, version, SLICE("pb1-s7"), 60, version == 5 ? 100 : 0);
        assert_int_equal(mqtt_decode_connect(0, body_of(&b, MQTT_CONNECT, &flags), &c), 0);
        assert_int_equal(flags, 0);
        assert_int_equal(c.version, version);
        assert_true(c.clean_start);
        assert_int_equal(c.keepalive, 60);
        assert_true(slice_eq(c.client_id, SLICE("pb1-s7")));
        if (version == 5) {
            assert_true(c.props.has & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX));
            assert_int_equal(c.props.receive_max, 100);
        }
        buf_fini(&b);
    }
}

static void
subscribe_decodes(void **state)
{
    for (int version = 4; version <= 5; version++) {
        struct buf b;
        struct mqtt_subscribe s;
        struct slice filters[] = {SLICE("bg/1/+/x"), SLICE("$share/g/pb/shared")};
        struct slice f;
        struct mqtt_sub_opts o;
        uint8_t flags;
        size_t pos = 0;
        buf_init(&b);
        wire_subscribe(&b, version, 9, filters, 2, 1);
        struct slice body = body_of(&b, MQTT_SUBSCRIBE, &flags);
        assert_int_equal(mqtt_decode_subscribe(flags, body, version, &s), 0);
        assert_int_equal(s.packet_id, 9);
        assert_int_equal(s.n_entries, 2);
        for (int i = 0; i < 2; i++) {
            assert_true(mqtt_subscribe_next(&s, &pos, &f, &o));
            assert_true(slice_eq(f, filters[i]));
            assert_int_equal(o.qos, 1);
        }
        buf_fini(&b);
    }
}

static void
publish_template_decodes(void **state)
{
    for (int version = 4; version <= 5; version++) {
        for (uint8_t qos = 0; qos <= 2; qos++) {
            struct wire_pubtmpl t;
            struct buf b;
            struct mqtt_publish p;
            uint8_t flags;
            uint32_t pub, seq;
            uint64_t ts;
            buf_init(&b);
            wire_pubtmpl_init(&t, version, SLICE("app/p2p/pb1-s3"), qos, 200);
            for (int i = 0; i < 2; i++) { /* the template is reused as is */
                b.len = 0;
                wire_reserve(&b, wire_pubtmpl_len(&t));
                wire_publish(&b, &t, (uint16_t)(qos ? 77 + i : 0), 3, 41 + i, 123456789012ull);
                assert_int_equal(b.len, wire_pubtmpl_len(&t));
                struct slice body = body_of(&b, MQTT_PUBLISH, &flags);
                assert_int_equal(mqtt_decode_publish(flags, body, version, &p), 0);
                assert_int_equal(p.qos, qos);
                assert_false(p.dup);
                assert_false(p.retain);
                assert_int_equal(p.packet_id, qos ? 77 + i : 0);
                assert_true(slice_eq(p.topic, SLICE("app/p2p/pb1-s3")));
                assert_int_equal(p.payload.len, 200);
                assert_true(wire_payload_get(p.payload, &pub, &seq, &ts));
                assert_int_equal(pub, 3);
                assert_int_equal(seq, 41 + i);
                assert_true(ts == 123456789012ull);
            }
            wire_pubtmpl_fini(&t);
            buf_fini(&b);
        }
    }
}

static void
acks_decode(void **state)
{
    enum wire_type types[] = {WIRE_PUBACK, WIRE_PUBREC, WIRE_PUBREL, WIRE_PUBCOMP};
    for (size_t i = 0; i < 4; i++) {
        struct buf b;
        struct mqtt_ack a;
        uint8_t flags;
        buf_init(&b);
        wire_ack(&b, types[i], 65535);
        struct slice body = body_of(&b, (uint8_t)types[i], &flags);
        assert_int_equal(mqtt_decode_ack((enum mqtt_type)types[i], flags, body, 5, &a), 0);
        assert_int_equal(a.packet_id, 65535);
        assert_int_equal(a.rc, 0);
        buf_fini(&b);
    }
}

/* The broker's encoders -> the generator's parsers. */
static void
broker_packets_parse(void **state)
{
    struct buf b;
    uint8_t type, flags;
    uint32_t rem;
    size_t hl;
    buf_init(&b);

    struct mqtt_connack ca = {.rc = 0};
    ca.props.has = MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX) | MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS) |
                   MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID) |
                   MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAX);
    ca.props.receive_max = 42;
    ca.props.maximum_qos = 1;
    ca.props.topic_alias_max = 10;
    ca.props.assigned_client_id = SLICE("auto-123");
    assert_int_equal(mqtt_encode_connack(&b, 5, &ca), 0);
    assert_int_equal(wire_fixed_header(buf_slice(&b), &type, &flags, &rem, &hl), 1);
    assert_int_equal(type, WIRE_CONNACK);
    struct wire_connack got;
    assert_int_equal(wire_parse_connack(slice_make(b.p + hl, rem), 5, &got), 0);
    assert_int_equal(got.rc, 0);
    assert_int_equal(got.receive_max, 42);
    assert_int_equal(got.maximum_qos, 1);

    /* An MQTT 5 PUBLISH with properties, as a broker forwards it. */
    b.len = 0;
    uint8_t payload[WIRE_PAYLOAD_MIN] = {0};
    uint32_t pub = 5, seq = 9;
    memcpy(payload, &pub, 4);
    memcpy(payload + 4, &seq, 4);
    struct mqtt_publish p = {.qos = 2,
                             .topic = SLICE("a/b"),
                             .packet_id = 300,
                             .payload = slice_make(payload, sizeof(payload))};
    uint32_t sub_id = 12345;
    p.props.has =
        MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) | MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
    p.props.message_expiry = 60;
    p.props.sub_ids = &sub_id;
    p.props.n_sub_ids = 1;
    assert_int_equal(mqtt_encode_publish(&b, 5, &p), 0);
    assert_int_equal(wire_fixed_header(buf_slice(&b), &type, &flags, &rem, &hl), 1);
    assert_int_equal(type, WIRE_PUBLISH);
    struct wire_publish m;
    assert_int_equal(wire_parse_publish(flags, slice_make(b.p + hl, rem), 5, &m), 0);
    assert_int_equal(m.qos, 2);
    assert_int_equal(m.packet_id, 300);
    assert_true(slice_eq(m.topic, SLICE("a/b")));
    uint32_t gp, gs;
    uint64_t ts;
    assert_true(wire_payload_get(m.payload, &gp, &gs, &ts));
    assert_int_equal(gp, 5);
    assert_int_equal(gs, 9);

    /* SUBACK */
    b.len = 0;
    uint8_t rcs[] = {1, 0x80};
    struct mqtt_suback sa = {.packet_id = 4, .rcs = rcs, .n_rcs = 2};
    assert_int_equal(mqtt_encode_suback(&b, MQTT_SUBACK, 5, &sa), 0);
    assert_int_equal(wire_fixed_header(buf_slice(&b), &type, &flags, &rem, &hl), 1);
    uint16_t pid;
    struct slice codes;
    assert_int_equal(wire_parse_suback(slice_make(b.p + hl, rem), 5, &pid, &codes), 0);
    assert_int_equal(pid, 4);
    assert_int_equal(codes.len, 2);
    assert_int_equal(codes.p[1], 0x80);
    buf_fini(&b);
}

static void
fixed_header_edges(void **state)
{
    uint8_t type, flags;
    uint32_t rem;
    size_t hl;
    const uint8_t partial[] = {0x30, 0x80};
    const uint8_t big[] = {0x30, 0xff, 0xff, 0xff, 0x7f};
    const uint8_t bad[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(wire_fixed_header(slice_make(partial, 1), &type, &flags, &rem, &hl), 0);
    assert_int_equal(wire_fixed_header(slice_make(partial, 2), &type, &flags, &rem, &hl), 0);
    assert_int_equal(wire_fixed_header(slice_make(big, 5), &type, &flags, &rem, &hl), 1);
    assert_int_equal(rem, 268435455);
    assert_int_equal(hl, 5);
    assert_int_equal(wire_fixed_header(slice_make(bad, 6), &type, &flags, &rem, &hl), -1);
    /* short payloads carry no measurement */
    uint32_t a, b;
    uint64_t c;
    assert_false(wire_payload_get(slice_make(big, 5), &a, &b, &c));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_decodes),          cmocka_unit_test(subscribe_decodes),
        cmocka_unit_test(publish_template_decodes), cmocka_unit_test(acks_decode),
        cmocka_unit_test(broker_packets_parse),     cmocka_unit_test(fixed_header_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
