/*
 * test_props.c - MQTT 5 properties, variable byte integers and UTF-8 rules of the codec.
 *
 * The table of which property each packet allows is written out here again from the spec
 * (MQTT 5 table 2-4, section 2.2.2.2) rather than taken from props.c, so that the two are
 * checked against each other.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "mqtt/packet.h"
#include "mqtt/rc.h"

#define WILL 0 /* bit 0 of a packet set stands for will properties */
#define PK(t) (1u << (t))
#define ALL_WITH_PROPS                                                                         \
    (PK(WILL) | PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_PUBLISH) | PK(MQTT_PUBACK) |     \
     PK(MQTT_PUBREC) | PK(MQTT_PUBREL) | PK(MQTT_PUBCOMP) | PK(MQTT_SUBSCRIBE) |               \
     PK(MQTT_SUBACK) | PK(MQTT_UNSUBSCRIBE) | PK(MQTT_UNSUBACK) | PK(MQTT_DISCONNECT) |        \
     PK(MQTT_AUTH))
#define MSG (PK(MQTT_PUBLISH) | PK(WILL))

enum kind { K_BYTE, K_U16, K_U32, K_VARINT, K_UTF8, K_BIN, K_PAIR };

static const struct {
    uint8_t id;
    enum kind kind;
    unsigned packets;
} spec[] = {
    {MQTT_PROP_PAYLOAD_FORMAT, K_BYTE, MSG},
    {MQTT_PROP_MESSAGE_EXPIRY, K_U32, MSG},
    {MQTT_PROP_CONTENT_TYPE, K_UTF8, MSG},
    {MQTT_PROP_RESPONSE_TOPIC, K_UTF8, MSG},
    {MQTT_PROP_CORRELATION_DATA, K_BIN, MSG},
    {MQTT_PROP_SUBSCRIPTION_ID, K_VARINT, PK(MQTT_PUBLISH) | PK(MQTT_SUBSCRIBE)},
    {MQTT_PROP_SESSION_EXPIRY, K_U32, PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_DISCONNECT)},
    {MQTT_PROP_ASSIGNED_CLIENT_ID, K_UTF8, PK(MQTT_CONNACK)},
    {MQTT_PROP_SERVER_KEEP_ALIVE, K_U16, PK(MQTT_CONNACK)},
    {MQTT_PROP_AUTH_METHOD, K_UTF8, PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_AUTH)},
    {MQTT_PROP_AUTH_DATA, K_BIN, PK(MQTT_CONNECT) | PK(MQTT_CONNACK) | PK(MQTT_AUTH)},
    {MQTT_PROP_REQUEST_PROBLEM_INFO, K_BYTE, PK(MQTT_CONNECT)},
    {MQTT_PROP_WILL_DELAY, K_U32, PK(WILL)},
    {MQTT_PROP_REQUEST_RESPONSE_INFO, K_BYTE, PK(MQTT_CONNECT)},
    {MQTT_PROP_RESPONSE_INFO, K_UTF8, PK(MQTT_CONNACK)},
    {MQTT_PROP_SERVER_REFERENCE, K_UTF8, PK(MQTT_CONNACK) | PK(MQTT_DISCONNECT)},
    {MQTT_PROP_REASON_STRING, K_UTF8,
     PK(MQTT_CONNACK) | PK(MQTT_PUBACK) | PK(MQTT_PUBREC) | PK(MQTT_PUBREL) | PK(MQTT_PUBCOMP) |
         PK(MQTT_SUBACK) | PK(MQTT_UNSUBACK) | PK(MQTT_DISCONNECT) | PK(MQTT_AUTH)},
    {MQTT_PROP_RECEIVE_MAX, K_U16, PK(MQTT_CONNECT) | PK(MQTT_CONNACK)},
    {MQTT_PROP_TOPIC_ALIAS_MAX, K_U16, PK(MQTT_CONNECT) | PK(MQTT_CONNACK)},
    {MQTT_PROP_TOPIC_ALIAS, K_U16, PK(MQTT_PUBLISH)},
    {MQTT_PROP_MAXIMUM_QOS, K_BYTE, PK(MQTT_CONNACK)},
    {MQTT_PROP_RETAIN_AVAILABLE, K_BYTE, PK(MQTT_CONNACK)},
    {MQTT_PROP_USER, K_PAIR, ALL_WITH_PROPS},
    {MQTT_PROP_MAX_PACKET_SIZE, K_U32, PK(MQTT_CONNECT) | PK(MQTT_CONNACK)},
    {MQTT_PROP_WILDCARD_SUB_AVAILABLE, K_BYTE, PK(MQTT_CONNACK)},
    {MQTT_PROP_SUB_ID_AVAILABLE, K_BYTE, PK(MQTT_CONNACK)},
    {MQTT_PROP_SHARED_SUB_AVAILABLE, K_BYTE, PK(MQTT_CONNACK)},
};
#define N_SPEC (sizeof(spec) / sizeof(spec[0]))

/* One property with a valid value, written at out; returns its length. */
static size_t
one_prop(uint8_t id, enum kind kind, uint8_t *out)
{
    static const uint8_t values[][8] = {
        [K_BYTE] = {1},       [K_U16] = {0, 5},          [K_U32] = {0, 0, 0, 5},
        [K_VARINT] = {5},     [K_UTF8] = {0, 1, 'x'},    [K_BIN] = {0, 1, 0xff},
        [K_PAIR] = {0, 1, 'k', 0, 1, 'v'},
    };
    static const size_t lens[] = {1, 2, 4, 1, 3, 3, 6};
    out[0] = id;
    memcpy(out + 1, values[kind], lens[kind]);
    return 1 + lens[kind];
}

static int
decode_as(const uint8_t *raw, size_t len, int packet, struct mqtt_props *out)
{
    return mqtt_props_decode(slice_make(raw, len), packet == WILL ? MQTT_CONNECT : packet,
                             packet == WILL, out);
}

/* ---- table 2-4 ---- */

static void
every_property_allowed_exactly_where_table_2_4_says(void **state)
{
    for (size_t i = 0; i < N_SPEC; i++) {
        for (int packet = 0; packet <= MQTT_AUTH; packet++) {
            uint8_t raw[16];
            struct mqtt_props p;
            size_t len = one_prop(spec[i].id, spec[i].kind, raw);
            int rc = decode_as(raw, len, packet, &p);
            bool allowed = spec[i].packets & PK(packet);
            if (allowed != (rc == 0))
                fail_msg("property 0x%02x in packet %d: rc 0x%x", spec[i].id, packet, rc);
            /* Not allowed in this packet: malformed (section 2.2.2.2). */
            if (!allowed)
                assert_int_equal(rc, MQTT_RC_MALFORMED);
            else
                assert_true(p.has & MQTT_PROP_BIT(spec[i].id));
        }
    }
}

static void
unknown_property_ids_are_malformed(void **state)
{
    static const uint8_t ids[] = {0x00, 0x04, 0x0A, 0x0C, 0x10, 0x14, 0x1B, 0x20, 0x2B, 0x3F,
                                  0x40, 0x7F, 0x80, 0xFF};
    for (size_t i = 0; i < sizeof(ids); i++) {
        uint8_t raw[] = {ids[i], 0, 0, 0, 0};
        struct mqtt_props p;
        for (int packet = 0; packet <= MQTT_AUTH; packet++)
            assert_int_equal(decode_as(raw, sizeof(raw), packet, &p), MQTT_RC_MALFORMED);
    }
}

static void
empty_block_decodes_to_nothing(void **state)
{
    struct mqtt_props p;
    memset(&p, 0xa5, sizeof(p));
    assert_int_equal(mqtt_props_decode(slice_make(NULL, 0), MQTT_PUBLISH, false, &p), 0);
    assert_int_equal(p.has, 0);
    assert_int_equal(p.n_user_props, 0);
    assert_int_equal(p.payload_format, 0);
    assert_null(p.sub_ids);
    assert_int_equal(p.n_sub_ids, 0);
    assert_int_equal(p.content_type.len, 0);
}

/* ---- duplicates ---- */

static void
repeated_property_is_protocol_error(void **state)
{
    for (size_t i = 0; i < N_SPEC; i++) {
        if (spec[i].id == MQTT_PROP_USER)
            continue;
        for (int packet = 0; packet <= MQTT_AUTH; packet++) {
            if (!(spec[i].packets & PK(packet)))
                continue;
            if (spec[i].id == MQTT_PROP_SUBSCRIPTION_ID && packet == MQTT_PUBLISH)
                continue;
            uint8_t raw[32];
            struct mqtt_props p;
            size_t len = one_prop(spec[i].id, spec[i].kind, raw);
            len += one_prop(spec[i].id, spec[i].kind, raw + len);
            assert_int_equal(decode_as(raw, len, packet, &p), MQTT_RC_PROTOCOL_ERROR);
        }
    }
}

static void
user_property_may_repeat_in_every_packet(void **state)
{
    for (int packet = 0; packet <= MQTT_AUTH; packet++) {
        if (!(ALL_WITH_PROPS & PK(packet)))
            continue;
        uint8_t raw[32];
        struct mqtt_props p;
        size_t len = one_prop(MQTT_PROP_USER, K_PAIR, raw);
        len += one_prop(MQTT_PROP_USER, K_PAIR, raw + len);
        len += one_prop(MQTT_PROP_USER, K_PAIR, raw + len);
        assert_int_equal(decode_as(raw, len, packet, &p), 0);
        assert_int_equal(p.n_user_props, 3);
    }
}

static void
subscription_id_repeats_in_publish_only(void **state)
{
    static const uint8_t raw[] = {0x0B, 0x07, 0x0B, 0x80, 0x01, 0x0B, 0x09};
    struct mqtt_props p;

    assert_int_equal(mqtt_props_decode(slice_make(raw, sizeof(raw)), MQTT_PUBLISH, false, &p), 0);
    assert_int_equal(p.subscription_id, 7); /* the first */
    /* "It is a Protocol Error to include the Subscription Identifier more than once"
     * (section 3.8.2.1.2). */
    assert_int_equal(mqtt_props_decode(slice_make(raw, sizeof(raw)), MQTT_SUBSCRIBE, false, &p),
                     MQTT_RC_PROTOCOL_ERROR);
}

/* ---- value ranges ---- */

static void
expect_rc(int packet, const uint8_t *raw, size_t len, int want)
{
    struct mqtt_props p;
    int rc = decode_as(raw, len, packet, &p);
    if (rc != want)
        fail_msg("property 0x%02x: got 0x%x want 0x%x", raw[0], rc, want);
}

#define EXPECT(packet, want, ...)                                                              \
    do {                                                                                       \
        static const uint8_t raw_[] = {__VA_ARGS__};                                           \
        expect_rc(packet, raw_, sizeof(raw_), want);                                           \
    } while (0)

static void
byte_properties_accept_only_0_and_1(void **state)
{
    for (size_t i = 0; i < N_SPEC; i++) {
        if (spec[i].kind != K_BYTE)
            continue;
        int packet = __builtin_ctz(spec[i].packets);
        for (unsigned v = 0; v < 256; v++) {
            uint8_t raw[] = {spec[i].id, (uint8_t)v};
            /* payload format, maximum QoS, request problem/response information and the
             * *_available flags are all 0 or 1 */
            expect_rc(packet, raw, sizeof(raw), v <= 1 ? 0 : MQTT_RC_PROTOCOL_ERROR);
        }
    }
}

static void
zero_values_that_are_protocol_errors(void **state)
{
    /* Receive Maximum 0 (section 3.1.2.11.3) */
    EXPECT(MQTT_CONNECT, MQTT_RC_PROTOCOL_ERROR, 0x21, 0, 0);
    EXPECT(MQTT_CONNACK, MQTT_RC_PROTOCOL_ERROR, 0x21, 0, 0);
    EXPECT(MQTT_CONNECT, 0, 0x21, 0, 1);
    /* Maximum Packet Size 0 (section 3.1.2.11.4) */
    EXPECT(MQTT_CONNECT, MQTT_RC_PROTOCOL_ERROR, 0x27, 0, 0, 0, 0);
    EXPECT(MQTT_CONNACK, MQTT_RC_PROTOCOL_ERROR, 0x27, 0, 0, 0, 0);
    EXPECT(MQTT_CONNECT, 0, 0x27, 0, 0, 0, 1);
    /* Topic Alias 0 decodes: the session answers it with DISCONNECT 0x94 [MQTT-3.3.2-8]. */
    EXPECT(MQTT_PUBLISH, 0, 0x23, 0, 0);
    EXPECT(MQTT_PUBLISH, 0, 0x23, 0xff, 0xff);
    /* Subscription Identifier 0 (sections 3.3.2.3.8, 3.8.2.1.2) */
    EXPECT(MQTT_SUBSCRIBE, MQTT_RC_PROTOCOL_ERROR, 0x0B, 0);
    EXPECT(MQTT_PUBLISH, MQTT_RC_PROTOCOL_ERROR, 0x0B, 0);
    EXPECT(MQTT_SUBSCRIBE, MQTT_RC_PROTOCOL_ERROR, 0x0B, 0x80, 0x00); /* 0, non-minimal */
    /* Zero is fine where nothing forbids it. */
    EXPECT(MQTT_CONNECT, 0, 0x22, 0, 0);
    EXPECT(MQTT_CONNECT, 0, 0x11, 0, 0, 0, 0);
    EXPECT(MQTT_CONNACK, 0, 0x13, 0, 0);
    EXPECT(WILL, 0, 0x18, 0, 0, 0, 0);
}

static void
subscription_id_range(void **state)
{
    struct mqtt_props p;
    static const uint8_t max[] = {0x0B, 0xff, 0xff, 0xff, 0x7f};
    static const uint8_t five[] = {0x0B, 0xff, 0xff, 0xff, 0xff, 0x01};

    assert_int_equal(mqtt_props_decode(slice_make(max, sizeof(max)), MQTT_SUBSCRIBE, false, &p),
                     0);
    assert_int_equal(p.subscription_id, 268435455);
    /* A five-byte variable byte integer [MQTT-1.5.5-1] cannot be read. */
    assert_int_equal(mqtt_props_decode(slice_make(five, sizeof(five)), MQTT_SUBSCRIBE, false, &p),
                     MQTT_RC_MALFORMED);
}

static void
response_topic_must_be_a_topic_name(void **state)
{
    EXPECT(MQTT_PUBLISH, MQTT_RC_PROTOCOL_ERROR, 0x08, 0, 3, 'a', '/', '#'); /* [MQTT-3.3.2-14] */
    EXPECT(MQTT_PUBLISH, MQTT_RC_PROTOCOL_ERROR, 0x08, 0, 3, 'a', '+', 'b');
    EXPECT(WILL, MQTT_RC_PROTOCOL_ERROR, 0x08, 0, 1, '#');
    EXPECT(MQTT_PUBLISH, MQTT_RC_PROTOCOL_ERROR, 0x08, 0, 0);
    EXPECT(MQTT_PUBLISH, 0, 0x08, 0, 3, 'a', '/', 'b');
}

static void
truncated_values_are_malformed(void **state)
{
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x01);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x02, 0, 0, 0);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x23, 0);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x0B, 0x80);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x03, 0);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x03, 0, 2, 'a');
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x09, 0, 5, 1, 2, 3, 4);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x26, 0, 1, 'k');
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x26, 0, 1, 'k', 0, 2, 'v');
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x26, 0, 1, 'k', 0);
    /* a good property followed by a cut one */
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x01, 0x01, 0x02, 0x00);
}

static void
string_properties_must_be_valid_utf8(void **state)
{
    /* [MQTT-1.5.4-1] ill-formed, [MQTT-1.5.4-2] U+0000 */
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x03, 0, 1, 0x00);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x03, 0, 3, 0xED, 0xA0, 0x80);
    EXPECT(MQTT_CONNACK, MQTT_RC_MALFORMED, 0x1F, 0, 2, 0xC0, 0x80);
    EXPECT(MQTT_CONNACK, MQTT_RC_MALFORMED, 0x12, 0, 1, 0xff);
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x26, 0, 1, 0x80, 0, 1, 'v');
    EXPECT(MQTT_PUBLISH, MQTT_RC_MALFORMED, 0x26, 0, 1, 'k', 0, 1, 0x00);
    /* binary data is not UTF-8 checked */
    EXPECT(MQTT_PUBLISH, 0, 0x09, 0, 2, 0x00, 0xff);
    EXPECT(MQTT_CONNECT, 0, 0x16, 0, 2, 0xC0, 0x80);
}

/* ---- round trips ---- */

/* Hand-written user properties for the raw block: ("a","b"), ("k2",""), ("a","c") */
static const uint8_t user_raw[] = {0x26, 0, 1, 'a', 0, 1, 'b', 0x26, 0, 2, 'k', '2', 0, 0,
                                   0x26, 0, 1, 'a', 0, 1, 'c'};

/* Every property allowed in `packet`, set to a value of its own. */
static void
full_props(int packet, struct mqtt_props *p)
{
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < N_SPEC; i++) {
        if (!(spec[i].packets & PK(packet)))
            continue;
        uint8_t id = spec[i].id;
        p->has |= MQTT_PROP_BIT(id);
        switch (id) {
        case MQTT_PROP_PAYLOAD_FORMAT: p->payload_format = 1; break;
        case MQTT_PROP_MESSAGE_EXPIRY: p->message_expiry = 0x01020304; break;
        case MQTT_PROP_CONTENT_TYPE: p->content_type = SLICE("text/plain"); break;
        case MQTT_PROP_RESPONSE_TOPIC: p->response_topic = SLICE("reply/here"); break;
        case MQTT_PROP_CORRELATION_DATA: p->correlation_data = SLICE("\x00\x01\xff"); break;
        case MQTT_PROP_SUBSCRIPTION_ID: p->subscription_id = 268435455; break;
        case MQTT_PROP_SESSION_EXPIRY: p->session_expiry = 0xffffffff; break;
        case MQTT_PROP_ASSIGNED_CLIENT_ID: p->assigned_client_id = SLICE("auto-1"); break;
        case MQTT_PROP_SERVER_KEEP_ALIVE: p->server_keep_alive = 0xfffe; break;
        case MQTT_PROP_AUTH_METHOD: p->auth_method = SLICE("SCRAM-SHA-1"); break;
        case MQTT_PROP_AUTH_DATA: p->auth_data = SLICE("\x01\x02"); break;
        case MQTT_PROP_REQUEST_PROBLEM_INFO: p->request_problem_info = 0; break;
        case MQTT_PROP_WILL_DELAY: p->will_delay = 30; break;
        case MQTT_PROP_REQUEST_RESPONSE_INFO: p->request_response_info = 1; break;
        case MQTT_PROP_RESPONSE_INFO: p->response_info = SLICE("resp/"); break;
        case MQTT_PROP_SERVER_REFERENCE: p->server_reference = SLICE("other:1883"); break;
        case MQTT_PROP_REASON_STRING: p->reason_string = SLICE("because \xc3\xa9"); break;
        case MQTT_PROP_RECEIVE_MAX: p->receive_max = 20; break;
        case MQTT_PROP_TOPIC_ALIAS_MAX: p->topic_alias_max = 10; break;
        case MQTT_PROP_TOPIC_ALIAS: p->topic_alias = 3; break;
        case MQTT_PROP_MAXIMUM_QOS: p->maximum_qos = 1; break;
        case MQTT_PROP_RETAIN_AVAILABLE: p->retain_available = 0; break;
        case MQTT_PROP_USER: p->raw = slice_make(user_raw, sizeof(user_raw)); break;
        case MQTT_PROP_MAX_PACKET_SIZE: p->max_packet_size = 1048576; break;
        case MQTT_PROP_WILDCARD_SUB_AVAILABLE: p->wildcard_sub_available = 1; break;
        case MQTT_PROP_SUB_ID_AVAILABLE: p->sub_id_available = 0; break;
        case MQTT_PROP_SHARED_SUB_AVAILABLE: p->shared_sub_available = 1; break;
        default: fail();
        }
    }
}

static void
assert_slice(struct slice a, struct slice b)
{
    if (!slice_eq(a, b))
        fail_msg("slice '%.*s' != '%.*s'", SLICE_FMT(a), SLICE_FMT(b));
}

static void
assert_same_user_props(struct slice a, struct slice b)
{
    size_t pa = 0, pb = 0;
    struct slice ka, va, kb, vb;
    while (mqtt_user_prop_next(a, &pa, &ka, &va)) {
        assert_true(mqtt_user_prop_next(b, &pb, &kb, &vb));
        assert_slice(ka, kb);
        assert_slice(va, vb);
    }
    assert_false(mqtt_user_prop_next(b, &pb, &kb, &vb));
}

/* Compare every property in `want` (fields only where its bit is set) with `got`. */
static void
assert_props_equal(const struct mqtt_props *want, const struct mqtt_props *got)
{
    uint64_t has = want->has;
    if (want->n_sub_ids)
        has |= MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
    assert_int_equal(got->has, has);
#define SAME(bit, field)                                                                       \
    if (has & MQTT_PROP_BIT(MQTT_PROP_##bit))                                                  \
        assert_int_equal(got->field, want->field);
#define SAME_S(bit, field)                                                                     \
    if (has & MQTT_PROP_BIT(MQTT_PROP_##bit))                                                  \
        assert_slice(got->field, want->field);
    SAME(PAYLOAD_FORMAT, payload_format);
    SAME(MESSAGE_EXPIRY, message_expiry);
    SAME_S(CONTENT_TYPE, content_type);
    SAME_S(RESPONSE_TOPIC, response_topic);
    SAME_S(CORRELATION_DATA, correlation_data);
    SAME(SESSION_EXPIRY, session_expiry);
    SAME_S(ASSIGNED_CLIENT_ID, assigned_client_id);
    SAME(SERVER_KEEP_ALIVE, server_keep_alive);
    SAME_S(AUTH_METHOD, auth_method);
    SAME_S(AUTH_DATA, auth_data);
    SAME(REQUEST_PROBLEM_INFO, request_problem_info);
    SAME(WILL_DELAY, will_delay);
    SAME(REQUEST_RESPONSE_INFO, request_response_info);
    SAME_S(RESPONSE_INFO, response_info);
    SAME_S(SERVER_REFERENCE, server_reference);
    SAME_S(REASON_STRING, reason_string);
    SAME(RECEIVE_MAX, receive_max);
    SAME(TOPIC_ALIAS_MAX, topic_alias_max);
    SAME(TOPIC_ALIAS, topic_alias);
    SAME(MAXIMUM_QOS, maximum_qos);
    SAME(RETAIN_AVAILABLE, retain_available);
    SAME(MAX_PACKET_SIZE, max_packet_size);
    SAME(WILDCARD_SUB_AVAILABLE, wildcard_sub_available);
    SAME(SUB_ID_AVAILABLE, sub_id_available);
    SAME(SHARED_SUB_AVAILABLE, shared_sub_available);
#undef SAME
#undef SAME_S
    if (has & MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID))
        assert_int_equal(got->subscription_id,
                         want->n_sub_ids ? want->sub_ids[0] : want->subscription_id);
    assert_same_user_props(want->raw, got->raw);
}

/* Encode, check the size, and decode again as `packet`. */
static void
roundtrip(int packet, const struct mqtt_props *in, struct buf *b, struct mqtt_props *out)
{
    uint32_t len;
    buf_init(b);
    assert_int_equal(mqtt_props_encode(b, in), 0);
    int n = mqtt_varint_get(buf_slice(b), &len);
    assert_true(n > 0);
    assert_int_equal(len, mqtt_props_size(in));
    assert_int_equal(b->len, (size_t)n + len);
    assert_int_equal(decode_as(b->p + n, len, packet, out), 0);
}

static void
every_property_round_trips_in_every_packet(void **state)
{
    uint64_t seen = 0;
    for (int packet = 0; packet <= MQTT_AUTH; packet++) {
        struct mqtt_props in, out;
        struct buf b;
        full_props(packet, &in);
        roundtrip(packet, &in, &b, &out);
        assert_props_equal(&in, &out);
        assert_int_equal(out.n_user_props, in.has ? 3 : 0);
        seen |= out.has;
        buf_fini(&b);
    }
    for (size_t i = 0; i < N_SPEC; i++)
        assert_true(seen & MQTT_PROP_BIT(spec[i].id));
}

static void
encoder_writes_known_bytes(void **state)
{
    struct mqtt_props p;
    struct buf b;
    static const uint8_t want[] = {
        0x0f,                               /* length 15 */
        0x01, 0x01,                         /* payload format 1 */
        0x02, 0x00, 0x00, 0x0e, 0x10,       /* message expiry 3600 */
        0x23, 0x00, 0x07,                   /* topic alias 7 */
        0x26, 0x00, 0x00, 0x00, 0x00,       /* user ("", "") */
    };

    memset(&p, 0, sizeof(p));
    static const uint8_t raw[] = {0x23, 0x00, 0x09, 0x26, 0x00, 0x00, 0x00, 0x00};
    p.has = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS) | MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) |
            MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) | MQTT_PROP_BIT(MQTT_PROP_USER);
    p.payload_format = 1;
    p.message_expiry = 3600;
    p.topic_alias = 7; /* the field wins; the 0x23 inside raw is not copied */
    p.raw = slice_make(raw, sizeof(raw));
    buf_init(&b);
    assert_int_equal(mqtt_props_encode(&b, &p), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.p, want, sizeof(want));
    buf_fini(&b);
}

static void
sub_ids_give_one_property_each(void **state)
{
    static const uint32_t ids[] = {1, 128, 268435455};
    static const uint8_t want[] = {0x0a, 0x0b, 0x01, 0x0b, 0x80, 0x01, 0x0b, 0xff, 0xff, 0xff,
                                   0x7f};
    struct mqtt_props p, out;
    struct buf b;

    memset(&p, 0, sizeof(p));
    p.sub_ids = ids;
    p.n_sub_ids = 3;
    p.subscription_id = 99; /* ignored: sub_ids wins */
    p.has = MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
    buf_init(&b);
    assert_int_equal(mqtt_props_encode(&b, &p), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.p, want, sizeof(want));
    assert_int_equal(mqtt_props_decode(slice_make(b.p + 1, b.len - 1), MQTT_PUBLISH, false, &out),
                     0);
    assert_int_equal(out.subscription_id, 1);
    buf_fini(&b);

    /* Without sub_ids, the decoded subscription_id of a SUBSCRIBE is written back. */
    p.sub_ids = NULL;
    p.n_sub_ids = 0;
    buf_init(&b);
    assert_int_equal(mqtt_props_encode(&b, &p), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.p, "\x02\x0b\x63", 3);
    buf_fini(&b);

    /* Without the bit, nothing. */
    p.has = 0;
    buf_init(&b);
    assert_int_equal(mqtt_props_encode(&b, &p), 0);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.p[0], 0);
    buf_fini(&b);
}

static void
user_props_walk_in_order_skipping_others(void **state)
{
    static const uint8_t raw[] = {0x01, 0x00, 0x26, 0, 1, 'x', 0, 1, '1', 0x0B, 0x80, 0x01,
                                  0x03, 0, 1, 't', 0x26, 0, 1, 'x', 0, 1, '2'};
    struct mqtt_props p;
    struct slice k, v;
    size_t pos = 0;

    assert_int_equal(mqtt_props_decode(slice_make(raw, sizeof(raw)), MQTT_PUBLISH, false, &p), 0);
    assert_int_equal(p.n_user_props, 2);
    assert_true(mqtt_user_prop_next(p.raw, &pos, &k, &v));
    assert_slice(k, SLICE("x"));
    assert_slice(v, SLICE("1"));
    assert_true(mqtt_user_prop_next(p.raw, &pos, &k, &v));
    assert_slice(k, SLICE("x"));
    assert_slice(v, SLICE("2"));
    assert_false(mqtt_user_prop_next(p.raw, &pos, &k, &v));
    assert_false(mqtt_user_prop_next(p.raw, &pos, &k, &v));
    /* a broken block ends the walk instead of reading past it */
    static const uint8_t broken[] = {0x26, 0, 9, 'x'};
    pos = 0;
    assert_false(mqtt_user_prop_next(slice_make(broken, sizeof(broken)), &pos, &k, &v));
}

/* ---- variable byte integers [MQTT-1.5.5] ---- */

static void
varint_boundaries(void **state)
{
    static const struct {
        uint32_t v;
        size_t n;
        uint8_t bytes[4];
    } cases[] = {
        {0, 1, {0x00}},
        {127, 1, {0x7f}},
        {128, 2, {0x80, 0x01}},
        {16383, 2, {0xff, 0x7f}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {2097151, 3, {0xff, 0xff, 0x7f}},
        {2097152, 4, {0x80, 0x80, 0x80, 0x01}},
        {268435455, 4, {0xff, 0xff, 0xff, 0x7f}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[4];
        uint32_t v = 1234;
        assert_int_equal(mqtt_varint_size(cases[i].v), cases[i].n);
        assert_int_equal(mqtt_varint_put(out, cases[i].v), cases[i].n);
        assert_memory_equal(out, cases[i].bytes, cases[i].n);
        assert_int_equal(mqtt_varint_get(slice_make(out, cases[i].n), &v), (int)cases[i].n);
        assert_int_equal(v, cases[i].v);
        /* one byte short: not complete yet */
        assert_int_equal(mqtt_varint_get(slice_make(out, cases[i].n - 1), &v), 0);
    }
}

static void
varint_fifth_byte_is_malformed(void **state)
{
    static const uint8_t five[] = {0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t cont4[] = {0x80, 0x80, 0x80, 0x80};
    static const uint8_t nonmin[] = {0x80, 0x80, 0x00};
    uint32_t v;

    assert_int_equal(mqtt_varint_get(slice_make(five, 5), &v), -1);
    assert_int_equal(mqtt_varint_get(slice_make(cont4, 4), &v), -1);
    assert_int_equal(mqtt_varint_get(slice_make(cont4, 3), &v), 0);
    /* non-minimal encodings are read (only the sender is bound to use the shortest) */
    assert_int_equal(mqtt_varint_get(slice_make(nonmin, 3), &v), 3);
    assert_int_equal(v, 0);
}

/* ---- UTF-8 [MQTT-1.5.4-1, MQTT-1.5.4-2] ---- */

static bool
utf8(const char *s, size_t n)
{
    return mqtt_utf8_valid(slice_make(s, n));
}
#define U(lit) utf8(lit, sizeof(lit) - 1)

static void
utf8_accepts_well_formed(void **state)
{
    assert_true(U(""));
    assert_true(U("plain ascii topic/with/levels and more than eight bytes"));
    assert_true(U("\x01\x1f\x7f"));                  /* control characters are allowed */
    assert_true(U("\xc2\x80\xc2\x9f"));              /* U+0080, U+009F */
    assert_true(U("caf\xc3\xa9"));                   /* é */
    assert_true(U("\xe0\xa0\x80"));                  /* U+0800 */
    assert_true(U("\xed\x9f\xbf"));                  /* U+D7FF */
    assert_true(U("\xee\x80\x80"));                  /* U+E000 */
    assert_true(U("\xef\xbb\xbf"));                  /* BOM stays [MQTT-1.5.4-3] */
    assert_true(U("\xef\xbf\xbf"));                  /* U+FFFF */
    assert_true(U("\xf0\x90\x80\x80"));              /* U+10000 */
    assert_true(U("\xf4\x8f\xbf\xbf"));              /* U+10FFFF */
    assert_true(U("12345678\xf0\x9f\x98\x80" "abcdefgh")); /* emoji between ASCII runs */
}

static void
utf8_rejects_nul_surrogates_and_overlongs(void **state)
{
    assert_false(U("\x00"));                         /* [MQTT-1.5.4-2] */
    assert_false(U("abcdefgh\x00ijklmnop"));         /* NUL inside the ASCII fast path */
    assert_false(U("\xc0\x80"));                     /* overlong NUL */
    assert_false(U("\xc1\xbf"));                     /* overlong */
    assert_false(U("\xe0\x80\x80"));                 /* overlong 3-byte */
    assert_false(U("\xe0\x9f\xbf"));
    assert_false(U("\xf0\x80\x80\x80"));             /* overlong 4-byte */
    assert_false(U("\xf0\x8f\xbf\xbf"));
    assert_false(U("\xed\xa0\x80"));                 /* U+D800 [MQTT-1.5.4-1] */
    assert_false(U("\xed\xbf\xbf"));                 /* U+DFFF */
    assert_false(U("\xf4\x90\x80\x80"));             /* above U+10FFFF */
    assert_false(U("\xf5\x80\x80\x80"));
    assert_false(U("\xff"));
    assert_false(U("\x80"));                         /* lone continuation */
    assert_false(U("\xc3"));                         /* cut */
    assert_false(U("\xe2\x82"));
    assert_false(U("\xf0\x9f\x98"));
    assert_false(U("\xc3\x28"));                     /* bad continuation */
    assert_false(U("\xe2\x28\xa1"));
    assert_false(U("\xf0\x9f\x28\x80"));
    assert_false(U("\xf0\x9f\x98\x28"));
}

static void
rc_names(void **state)
{
    assert_string_equal(mqtt_rc_str(MQTT_RC_MALFORMED), "malformed packet");
    assert_string_equal(mqtt_rc_str(MQTT_RC_SUCCESS), "success");
    for (int rc = -200; rc < 300; rc++)
        assert_non_null(mqtt_rc_str(rc));
    assert_string_equal(mqtt_rc_str(0x7e), "unknown reason code");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_property_allowed_exactly_where_table_2_4_says),
        cmocka_unit_test(unknown_property_ids_are_malformed),
        cmocka_unit_test(empty_block_decodes_to_nothing),
        cmocka_unit_test(repeated_property_is_protocol_error),
        cmocka_unit_test(user_property_may_repeat_in_every_packet),
        cmocka_unit_test(subscription_id_repeats_in_publish_only),
        cmocka_unit_test(byte_properties_accept_only_0_and_1),
        cmocka_unit_test(zero_values_that_are_protocol_errors),
        cmocka_unit_test(subscription_id_range),
        cmocka_unit_test(response_topic_must_be_a_topic_name),
        cmocka_unit_test(truncated_values_are_malformed),
        cmocka_unit_test(string_properties_must_be_valid_utf8),
        cmocka_unit_test(every_property_round_trips_in_every_packet),
        cmocka_unit_test(encoder_writes_known_bytes),
        cmocka_unit_test(sub_ids_give_one_property_each),
        cmocka_unit_test(user_props_walk_in_order_skipping_others),
        cmocka_unit_test(varint_boundaries),
        cmocka_unit_test(varint_fifth_byte_is_malformed),
        cmocka_unit_test(utf8_accepts_well_formed),
        cmocka_unit_test(utf8_rejects_nul_surrogates_and_overlongs),
        cmocka_unit_test(rc_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
