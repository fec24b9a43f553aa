/*
 * test_codec_decode.c - decoders: real packets from known clients, and one test per rule a
 * received packet can break, each citing the rule.
 *
 * Every body is copied to a heap block of exactly its size, so AddressSanitizer reports any
 * read past the end of a packet.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/packet.h"
#include "mqtt/rc.h"

static void *allocs[64];
static size_t n_allocs;

static int
free_allocs(void **state)
{
    while (n_allocs)
        free(allocs[--n_allocs]);
    return 0;
}

/* Hex bytes with optional 'quoted text', spaces ignored, in an exact-size heap block that
 * lives until the end of the test. */
static struct slice
H(const char *s)
{
    uint8_t tmp[1024];
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
        } else if (*s == '\'') {
            for (s++; *s && *s != '\''; s++)
                tmp[n++] = (uint8_t)*s;
            assert_true(*s == '\'');
            s++;
        } else {
            unsigned byte;
            assert_true(sscanf(s, "%2x", &byte) == 1);
            tmp[n++] = (uint8_t)byte;
            s += 2;
        }
    }
    assert_true(n_allocs < 64);
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, tmp, n);
    allocs[n_allocs++] = p;
    return slice_make(p, n);
}

static void
assert_slice(struct slice a, const char *want)
{
    if (!slice_eq(a, slice_cstr(want)))
        fail_msg("slice '%.*s' != '%s'", SLICE_FMT(a), want);
}

/* Decode a whole packet (fixed header + body) and return the body. */
static struct slice
framed(const char *hex, uint8_t want_type, uint8_t *flags)
{
    struct slice in = H(hex);
    struct mqtt_fixed_header fh;
    assert_int_equal(mqtt_decode_fixed_header(in, 0, &fh), 0);
    assert_int_equal(fh.type, want_type);
    assert_int_equal(fh.header_len + fh.remaining, in.len);
    *flags = fh.flags;
    /* copy again so the body ends exactly where the packet does */
    struct slice body = slice_tail(in, fh.header_len);
    uint8_t *p = malloc(body.len ? body.len : 1);
    memcpy(p, body.p, body.len);
    allocs[n_allocs++] = p;
    return slice_make(p, body.len);
}

static int
connect_rc(const char *hex)
{
    struct mqtt_connect c;
    return mqtt_decode_connect(0, H(hex), &c);
}

static int
publish_rc(uint8_t flags, int version, const char *hex)
{
    struct mqtt_publish p;
    return mqtt_decode_publish(flags, H(hex), version, &p);
}

static int
ack_rc(enum mqtt_type type, uint8_t flags, int version, const char *hex)
{
    struct mqtt_ack a;
    return mqtt_decode_ack(type, flags, H(hex), version, &a);
}

static int
subscribe_rc(uint8_t flags, int version, const char *hex)
{
    struct mqtt_subscribe s;
    return mqtt_decode_subscribe(flags, H(hex), version, &s);
}

static int
unsubscribe_rc(uint8_t flags, int version, const char *hex)
{
    struct mqtt_unsubscribe u;
    return mqtt_decode_unsubscribe(flags, H(hex), version, &u);
}

static int
suback_rc(enum mqtt_type type, int version, const char *hex)
{
    struct mqtt_suback s;
    return mqtt_decode_suback(type, 0, H(hex), version, &s);
}

static int
connack_rc(int version, const char *hex)
{
    struct mqtt_connack c;
    return mqtt_decode_connack(0, H(hex), version, &c);
}

static int
disconnect_rc(enum mqtt_type type, int version, const char *hex)
{
    struct mqtt_disconnect d;
    return mqtt_decode_disconnect(type, 0, H(hex), version, &d);
}

/* ---- fixed header ---- */

static int
fh_rc(const char *hex, uint32_t max, struct mqtt_fixed_header *fh)
{
    return mqtt_decode_fixed_header(H(hex), max, fh);
}

static void
fixed_header_needs_more_bytes(void **state)
{
    struct mqtt_fixed_header fh;
    assert_int_equal(fh_rc("", 0, &fh), -EAGAIN);
    assert_int_equal(fh_rc("30", 0, &fh), -EAGAIN);
    assert_int_equal(fh_rc("30 80", 0, &fh), -EAGAIN);
    assert_int_equal(fh_rc("30 ff ff", 0, &fh), -EAGAIN);
    assert_int_equal(fh_rc("30 ff ff ff", 0, &fh), -EAGAIN);
}

static void
fixed_header_fields(void **state)
{
    struct mqtt_fixed_header fh;
    assert_int_equal(fh_rc("82 05 00 01 00", 0, &fh), 0);
    assert_int_equal(fh.type, MQTT_SUBSCRIBE);
    assert_int_equal(fh.flags, 0x2);
    assert_int_equal(fh.remaining, 5);
    assert_int_equal(fh.header_len, 2);
    /* the body need not be there yet */
    assert_int_equal(fh_rc("3d c1 02", 0, &fh), 0);
    assert_int_equal(fh.type, MQTT_PUBLISH);
    assert_int_equal(fh.flags, 0xd);
    assert_int_equal(fh.remaining, 321);
    assert_int_equal(fh.header_len, 3);
    /* the largest remaining length (section 2.1.4) */
    assert_int_equal(fh_rc("30 ff ff ff 7f", 0, &fh), 0);
    assert_int_equal(fh.remaining, 268435455);
    assert_int_equal(fh.header_len, 5);
    /* a non-minimal length is read: [MQTT-1.5.5-1] binds the sender */
    assert_int_equal(fh_rc("30 80 00", 0, &fh), 0);
    assert_int_equal(fh.remaining, 0);
    assert_int_equal(fh.header_len, 3);
}

static void
fixed_header_five_byte_length_is_malformed(void **state)
{
    /* At most four bytes of remaining length (section 1.5.5, 2.1.4) */
    struct mqtt_fixed_header fh;
    assert_int_equal(fh_rc("30 ff ff ff ff 01", 0, &fh), MQTT_RC_MALFORMED);
    assert_int_equal(fh_rc("30 80 80 80 80", 0, &fh), MQTT_RC_MALFORMED);
}

static void
fixed_header_type_0_is_malformed(void **state)
{
    /* packet type 0 is reserved (section 2.1.2) */
    struct mqtt_fixed_header fh;
    assert_int_equal(fh_rc("00 00", 0, &fh), MQTT_RC_MALFORMED);
    assert_int_equal(fh_rc("0f", 0, &fh), MQTT_RC_MALFORMED);
}

static void
fixed_header_too_large(void **state)
{
    struct mqtt_fixed_header fh;
    /* 1 + 1 + 10 = 12 bytes */
    assert_int_equal(fh_rc("30 0a", 11, &fh), MQTT_RC_PACKET_TOO_LARGE);
    assert_int_equal(fh_rc("30 0a", 12, &fh), 0);
    assert_int_equal(fh_rc("30 0a", 0, &fh), 0);
    /* known from the header alone, before the body arrives */
    assert_int_equal(fh_rc("30 ff ff ff 7f", 1 << 20, &fh), MQTT_RC_PACKET_TOO_LARGE);
    assert_int_equal(fh_rc("30 ff ff ff 7f", UINT32_MAX, &fh), 0);
}

static void
fixed_header_ping_has_no_flags_or_body(void **state)
{
    /* [MQTT-2.2.2-1, MQTT-2.2.2-2] reserved flags; PINGREQ/PINGRESP have no body (3.12, 3.13) */
    struct mqtt_fixed_header fh;
    assert_int_equal(fh_rc("c0 00", 0, &fh), 0);
    assert_int_equal(fh_rc("d0 00", 0, &fh), 0);
    assert_int_equal(fh_rc("c1 00", 0, &fh), MQTT_RC_MALFORMED);
    assert_int_equal(fh_rc("d8 00", 0, &fh), MQTT_RC_MALFORMED);
    assert_int_equal(fh_rc("c0 01 00", 0, &fh), MQTT_RC_MALFORMED);
    assert_int_equal(fh_rc("d0 01", 0, &fh), MQTT_RC_MALFORMED);
}

/* ---- CONNECT ---- */

static void
connect_from_a_311_client(void **state)
{
    /* mosquitto_pub -V mqttv311 -i mosq-test -k 60 */
    uint8_t flags;
    struct slice body = framed("10 15 00 04 'MQTT' 04 02 00 3c 00 09 'mosq-test'", MQTT_CONNECT,
                               &flags);
    struct mqtt_connect c;
    assert_int_equal(mqtt_decode_connect(flags, body, &c), 0);
    assert_int_equal(c.version, MQTT_V311);
    assert_true(c.clean_start);
    assert_int_equal(c.keepalive, 60);
    assert_slice(c.client_id, "mosq-test");
    assert_false(c.has_will);
    assert_false(c.has_username);
    assert_false(c.has_password);
    assert_int_equal(c.props.has, 0);
}

static void
connect_from_a_31_client_with_will(void **state)
{
    /* MQIsdp, will QoS 1 retained, user name and password */
    uint8_t flags;
    struct slice body = framed("10 2e 00 06 'MQIsdp' 03 ee 00 0a 00 03 'abc' 00 06 'status'"
                               " 00 07 'offline' 00 04 'user' 00 04 'pass'",
                               MQTT_CONNECT, &flags);
    struct mqtt_connect c;
    assert_int_equal(mqtt_decode_connect(flags, body, &c), 0);
    assert_int_equal(c.version, MQTT_V31);
    assert_true(c.clean_start);
    assert_int_equal(c.keepalive, 10);
    assert_slice(c.client_id, "abc");
    assert_true(c.has_will);
    assert_int_equal(c.will_qos, 1);
    assert_true(c.will_retain);
    assert_slice(c.will_topic, "status");
    assert_slice(c.will_payload, "offline");
    assert_slice(c.username, "user");
    assert_slice(c.password, "pass");
}

static void
connect_from_a_5_client(void **state)
{
    /* clean start, user and password, session expiry 3600, receive max 16 */
    uint8_t flags;
    struct slice body = framed("10 24 00 04 'MQTT' 05 c2 00 3c 08 11 00 00 0e 10 21 00 10"
                               " 00 04 'p5id' 00 04 'user' 00 03 'pwd'",
                               MQTT_CONNECT, &flags);
    struct mqtt_connect c;
    assert_int_equal(mqtt_decode_connect(flags, body, &c), 0);
    assert_int_equal(c.version, MQTT_V5);
    assert_int_equal(c.props.has, MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) |
                                      MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX));
    assert_int_equal(c.props.session_expiry, 3600);
    assert_int_equal(c.props.receive_max, 16);
    assert_slice(c.client_id, "p5id");
    assert_slice(c.username, "user");
    assert_slice(c.password, "pwd");
}

static void
connect_5_will_properties(void **state)
{
    /* will flag, will delay 10 and a user property in the will properties */
    struct mqtt_connect c;
    assert_int_equal(mqtt_decode_connect(0, H("00 04 'MQTT' 05 06 00 00 00 00 01 'c'"
                                              " 0c 18 00 00 00 0a 26 00 01 'k' 00 01 'v'"
                                              " 00 01 't' 00 00"),
                                         &c),
                     0);
    assert_true(c.has_will);
    assert_int_equal(c.will_props.will_delay, 10);
    assert_int_equal(c.will_props.n_user_props, 1);
    assert_slice(c.will_topic, "t");
    assert_int_equal(c.will_payload.len, 0);
    /* session expiry is not a will property (table 2-4) */
    assert_int_equal(connect_rc("00 04 'MQTT' 05 06 00 00 00 00 01 'c' 05 11 00 00 00 0a"
                                " 00 01 't' 00 00"),
                     MQTT_RC_MALFORMED);
}

static void
connect_flags_must_be_zero(void **state)
{
    /* [MQTT-2.2.2-1] */
    struct mqtt_connect c;
    assert_int_equal(mqtt_decode_connect(1, H("00 04 'MQTT' 04 02 00 3c 00 01 'c'"), &c),
                     MQTT_RC_MALFORMED);
}

static void
connect_reserved_flag_is_malformed(void **state)
{
    /* [MQTT-3.1.2-3] */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 03 00 3c 00 01 'c'"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 05 03 00 3c 00 00 01 'c'"), MQTT_RC_MALFORMED);
}

static void
connect_will_qos_without_will_is_malformed(void **state)
{
    /* [MQTT-3.1.2-11] (5), [MQTT-3.1.2-13] (3.1.1) */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 0a 00 3c 00 01 'c'"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 12 00 3c 00 01 'c'"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 05 0a 00 3c 00 00 01 'c'"), MQTT_RC_MALFORMED);
}

static void
connect_will_retain_without_will_is_malformed(void **state)
{
    /* [MQTT-3.1.2-15] (3.1.1), [MQTT-3.1.2-13] (5) */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 22 00 3c 00 01 'c'"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 06 'MQIsdp' 03 22 00 3c 00 01 'c'"), MQTT_RC_MALFORMED);
}

static void
connect_will_qos_3_is_malformed(void **state)
{
    /* [MQTT-3.1.2-14] (3.1.1), [MQTT-3.1.2-12] (5) */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 1e 00 3c 00 01 'c' 00 01 't' 00 00"),
                     MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 16 00 3c 00 01 'c' 00 01 't' 00 00"), 0);
}

static void
connect_password_without_username(void **state)
{
    /* [MQTT-3.1.2-22]: a protocol error in 3.x, allowed in 5 */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 42 00 3c 00 01 'c' 00 02 'pw'"),
                     MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(connect_rc("00 06 'MQIsdp' 03 42 00 3c 00 01 'c' 00 02 'pw'"),
                     MQTT_RC_PROTOCOL_ERROR);
    struct mqtt_connect c;
    assert_int_equal(mqtt_decode_connect(0, H("00 04 'MQTT' 05 42 00 3c 00 00 01 'c' 00 02 'pw'"),
                                         &c),
                     0);
    assert_true(c.has_password);
    assert_false(c.has_username);
    assert_slice(c.password, "pw");
}

static void
connect_unsupported_protocol(void **state)
{
    /* [MQTT-3.1.2-1, MQTT-3.1.2-2] */
    struct mqtt_connect c;
    assert_int_equal(connect_rc("00 04 'MQTT' 03 02 00 3c 00 01 'c'"),
                     MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(connect_rc("00 06 'MQIsdp' 04 02 00 3c 00 01 'c'"),
                     MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(connect_rc("00 04 'mqtt' 04 02 00 3c 00 01 'c'"),
                     MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(connect_rc("00 03 'MQT' 04 02 00 3c 00 01 'c'"),
                     MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(mqtt_decode_connect(0, H("00 04 'MQTT' 06 02 00 3c 00 01 'c'"), &c),
                     MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(c.version, 6); /* so the caller can pick its CONNACK */
}

static void
connect_bad_utf8_is_malformed(void **state)
{
    /* client id [MQTT-3.1.3-4]; [MQTT-1.5.4-1] ill-formed and surrogates, [MQTT-1.5.4-2] NUL */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 00 01 00"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 00 03 ed a0 80"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 00 02 c0 80"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 00 03 e0 80 80"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 00 01 ff"), MQTT_RC_MALFORMED);
    /* user name [MQTT-3.1.3-11] */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 82 00 3c 00 01 'c' 00 02 c3 28"),
                     MQTT_RC_MALFORMED);
    /* will topic */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 01 80 00 00"),
                     MQTT_RC_MALFORMED);
    /* the password and will payload are binary: anything goes */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 c6 00 3c 00 01 'c' 00 01 't' 00 02 00 ff"
                                " 00 01 'u' 00 02 c0 80"),
                     0);
}

static void
connect_truncated_or_trailing_is_malformed(void **state)
{
    assert_int_equal(connect_rc(""), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQT'"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 00 0a 'abc'"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 01 't'"),
                     MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 82 00 3c 00 01 'c'"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 c2 00 3c 00 01 'c' 00 01 'u' 00 05 'p'"),
                     MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 05 02 00 3c 05 11 00"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 05 02 00 3c"), MQTT_RC_MALFORMED);
    /* trailing bytes */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 00 01 'c' 00"), MQTT_RC_MALFORMED);
    assert_int_equal(connect_rc("00 04 'MQTT' 05 02 00 3c 00 00 01 'c' 00 00"),
                     MQTT_RC_MALFORMED);
}

static void
connect_will_topic_must_be_a_topic_name(void **state)
{
    /* [MQTT-3.3.2-2] no wildcards, [MQTT-4.7.3-1] not empty */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 03 'a/#' 00 00"),
                     MQTT_RC_TOPIC_NAME_INVALID);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 03 '+/a' 00 00"),
                     MQTT_RC_TOPIC_NAME_INVALID);
    assert_int_equal(connect_rc("00 04 'MQTT' 04 06 00 3c 00 01 'c' 00 00 00 00"),
                     MQTT_RC_TOPIC_NAME_INVALID);
}

static void
connect_bad_properties(void **state)
{
    /* topic alias is not a CONNECT property (section 2.2.2.2) */
    assert_int_equal(connect_rc("00 04 'MQTT' 05 02 00 3c 03 23 00 01 00 01 'c'"),
                     MQTT_RC_MALFORMED);
    /* receive maximum 0 (section 3.1.2.11.3) */
    assert_int_equal(connect_rc("00 04 'MQTT' 05 02 00 3c 03 21 00 00 00 01 'c'"),
                     MQTT_RC_PROTOCOL_ERROR);
    /* property length past the end */
    assert_int_equal(connect_rc("00 04 'MQTT' 05 02 00 3c 7f 00 01 'c'"), MQTT_RC_MALFORMED);
    /* properties are not read in 3.1.1: the 03 is taken as the client id length */
    assert_int_equal(connect_rc("00 04 'MQTT' 04 02 00 3c 03 21 00 14 00 01 'c'"),
                     MQTT_RC_MALFORMED);
}

/* ---- CONNACK ---- */

static void
connack_decodes(void **state)
{
    struct mqtt_connack c;
    assert_int_equal(mqtt_decode_connack(0, H("01 00"), MQTT_V311, &c), 0);
    assert_true(c.session_present);
    assert_int_equal(c.rc, 0);
    /* 3.1.1 return codes come back as reason codes */
    assert_int_equal(mqtt_decode_connack(0, H("00 04"), MQTT_V311, &c), 0);
    assert_int_equal(c.rc, MQTT_RC_BAD_CREDENTIALS);
    assert_int_equal(mqtt_decode_connack(0, H("00 01"), MQTT_V31, &c), 0);
    assert_int_equal(c.rc, MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(mqtt_decode_connack(0, H("00 00 04 24 01 29 00"), MQTT_V5, &c), 0);
    assert_int_equal(c.props.maximum_qos, 1);
    assert_true(c.props.has & MQTT_PROP_BIT(MQTT_PROP_SUB_ID_AVAILABLE));
    assert_int_equal(c.props.sub_id_available, 0);
}

static void
connack_rules(void **state)
{
    struct mqtt_connack c;
    /* [MQTT-2.2.2-1] */
    assert_int_equal(mqtt_decode_connack(1, H("00 00"), MQTT_V311, &c), MQTT_RC_MALFORMED);
    /* reserved acknowledge flags [MQTT-3.2.2-1] */
    assert_int_equal(connack_rc(MQTT_V311, "02 00"), MQTT_RC_MALFORMED);
    assert_int_equal(connack_rc(MQTT_V5, "80 00 00"), MQTT_RC_MALFORMED);
    /* session present with a failure [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5) */
    assert_int_equal(connack_rc(MQTT_V311, "01 05"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(connack_rc(MQTT_V5, "01 87 00"), MQTT_RC_PROTOCOL_ERROR);
    /* 3.1.1 return codes 6-255 are reserved */
    assert_int_equal(connack_rc(MQTT_V311, "00 06"), MQTT_RC_PROTOCOL_ERROR);
    /* not a CONNACK reason code (section 3.2.2.2) */
    assert_int_equal(connack_rc(MQTT_V5, "00 10 00"), MQTT_RC_PROTOCOL_ERROR);
    /* the property length is not optional in a CONNACK */
    assert_int_equal(connack_rc(MQTT_V5, "00 00"), MQTT_RC_MALFORMED);
    assert_int_equal(connack_rc(MQTT_V311, "00"), MQTT_RC_MALFORMED);
    /* trailing bytes */
    assert_int_equal(connack_rc(MQTT_V311, "00 00 00"), MQTT_RC_MALFORMED);
    assert_int_equal(connack_rc(MQTT_V5, "00 00 00 00"), MQTT_RC_MALFORMED);
    /* maximum QoS 2 is not a value [section 3.2.2.3.4] */
    assert_int_equal(connack_rc(MQTT_V5, "00 00 02 24 02"), MQTT_RC_PROTOCOL_ERROR);
}

/* ---- PUBLISH ---- */

static void
publish_from_a_client(void **state)
{
    /* QoS 1 "hello" -> "world", id 1, as paho sends it */
    uint8_t flags;
    struct slice body = framed("32 0e 00 05 'hello' 00 01 'world'", MQTT_PUBLISH, &flags);
    struct mqtt_publish p;
    assert_int_equal(mqtt_decode_publish(flags, body, MQTT_V311, &p), 0);
    assert_int_equal(p.qos, 1);
    assert_false(p.dup);
    assert_false(p.retain);
    assert_int_equal(p.packet_id, 1);
    assert_slice(p.topic, "hello");
    assert_slice(p.payload, "world");
    assert_int_equal(p.props.has, 0);

    /* MQTT 5, QoS 0 retained, message expiry 60 and a content type */
    body = framed("31 19 00 03 'a/b' 10 02 00 00 00 3c 03 00 08 'text/csv' '1,2'",
                  MQTT_PUBLISH, &flags);
    assert_int_equal(mqtt_decode_publish(flags, body, MQTT_V5, &p), 0);
    assert_int_equal(p.qos, 0);
    assert_true(p.retain);
    assert_int_equal(p.packet_id, 0);
    assert_slice(p.topic, "a/b");
    assert_int_equal(p.props.message_expiry, 60);
    assert_slice(p.props.content_type, "text/csv");
    assert_slice(p.payload, "1,2");
}

static void
publish_payload_is_not_validated(void **state)
{
    struct mqtt_publish p;
    assert_int_equal(mqtt_decode_publish(0, H("00 01 't' 00 ff c0 80"), MQTT_V311, &p), 0);
    assert_int_equal(p.payload.len, 4);
    assert_int_equal(mqtt_decode_publish(0, H("00 01 't'"), MQTT_V311, &p), 0);
    assert_int_equal(p.payload.len, 0);
    /* a non-ASCII topic name */
    assert_int_equal(mqtt_decode_publish(0, H("00 0e 'caf' c3 a9 '/' e6 b8 a9 '/' f0 9f 98 80"),
                                         MQTT_V311, &p),
                     0);
}

static void
publish_qos_3_is_malformed(void **state)
{
    /* [MQTT-3.3.1-4] */
    assert_int_equal(publish_rc(0x6, MQTT_V311, "00 01 't' 00 01"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0x7, MQTT_V5, "00 01 't' 00 01 00"), MQTT_RC_MALFORMED);
}

static void
publish_dup_at_qos_0_is_protocol_error(void **state)
{
    /* [MQTT-3.3.1-2] */
    assert_int_equal(publish_rc(0x8, MQTT_V311, "00 01 't'"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(publish_rc(0x9, MQTT_V5, "00 01 't' 00"), MQTT_RC_PROTOCOL_ERROR);
    struct mqtt_publish p;
    assert_int_equal(mqtt_decode_publish(0xa, H("00 01 't' 00 05"), MQTT_V311, &p), 0);
    assert_true(p.dup);
}

static void
publish_packet_id_0_is_protocol_error(void **state)
{
    /* [MQTT-2.2.1-3] (5), [MQTT-2.3.1-1] (3.1.1) */
    assert_int_equal(publish_rc(0x2, MQTT_V311, "00 01 't' 00 00"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(publish_rc(0x4, MQTT_V5, "00 01 't' 00 00 00"), MQTT_RC_PROTOCOL_ERROR);
}

static void
publish_wildcards_are_invalid_topic_names(void **state)
{
    /* [MQTT-3.3.2-2] */
    assert_int_equal(publish_rc(0, MQTT_V311, "00 03 'a/+'"), MQTT_RC_TOPIC_NAME_INVALID);
    assert_int_equal(publish_rc(0, MQTT_V311, "00 01 '#'"), MQTT_RC_TOPIC_NAME_INVALID);
    assert_int_equal(publish_rc(0, MQTT_V5, "00 05 'a/b#c' 00"), MQTT_RC_TOPIC_NAME_INVALID);
    assert_int_equal(publish_rc(0, MQTT_V31, "00 04 c3 a9 '/+'"), MQTT_RC_TOPIC_NAME_INVALID);
}

static void
publish_empty_topic(void **state)
{
    /* [MQTT-4.7.3-1]: 3.x topic names are never empty */
    assert_int_equal(publish_rc(0, MQTT_V311, "00 00 'x'"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(publish_rc(0, MQTT_V31, "00 00 'x'"), MQTT_RC_PROTOCOL_ERROR);
    /* MQTT 5: empty only with a topic alias (section 3.3.2.1) */
    assert_int_equal(publish_rc(0, MQTT_V5, "00 00 00 'x'"), MQTT_RC_PROTOCOL_ERROR);
    struct mqtt_publish p;
    assert_int_equal(mqtt_decode_publish(0, H("00 00 03 23 00 05 'x'"), MQTT_V5, &p), 0);
    assert_int_equal(p.topic.len, 0);
    assert_int_equal(p.props.topic_alias, 5);
    /* topic alias 0 decodes; the session refuses it with 0x94 [MQTT-3.3.2-8] */
    assert_int_equal(publish_rc(0, MQTT_V5, "00 01 't' 03 23 00 00"), 0);
}

static void
publish_subscription_id_from_client_is_protocol_error(void **state)
{
    /* [MQTT-3.3.4-6] */
    assert_int_equal(publish_rc(0, MQTT_V5, "00 01 't' 02 0b 01 'x'"), MQTT_RC_PROTOCOL_ERROR);
}

static void
publish_bad_topic_utf8_is_malformed(void **state)
{
    /* [MQTT-3.3.2-1], [MQTT-1.5.4-1], [MQTT-1.5.4-2] */
    assert_int_equal(publish_rc(0, MQTT_V311, "00 03 'a' 00 'b'"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0, MQTT_V311, "00 03 ed b0 80"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0, MQTT_V311, "00 02 c1 bf"), MQTT_RC_MALFORMED);
    /* malformed outranks the wildcard */
    assert_int_equal(publish_rc(0, MQTT_V311, "00 02 '#' ff"), MQTT_RC_MALFORMED);
}

static void
publish_topic_checked_at_every_position(void **state)
{
    /* The topic scan reads 8 bytes at a time with an overlapping last word: put a wildcard
     * [MQTT-3.3.2-2], a NUL [MQTT-1.5.4-2] or a stray byte [MQTT-1.5.4-1] at each position of
     * topics of every length up to 40. */
    static const struct {
        uint8_t c;
        int rc;
    } bad[] = {{'+', MQTT_RC_TOPIC_NAME_INVALID},
               {'#', MQTT_RC_TOPIC_NAME_INVALID},
               {0x00, MQTT_RC_MALFORMED},
               {0xff, MQTT_RC_MALFORMED},
               {0x80, MQTT_RC_MALFORMED}};
    for (size_t len = 1; len <= 40; len++) {
        uint8_t *body = malloc(2 + len);
        struct mqtt_publish p;
        body[0] = 0;
        body[1] = (uint8_t)len;
        memset(body + 2, 'a', len);
        assert_int_equal(mqtt_decode_publish(0, slice_make(body, 2 + len), MQTT_V311, &p), 0);
        for (size_t i = 0; i < len; i++) {
            for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                body[2 + i] = bad[k].c;
                int rc = mqtt_decode_publish(0, slice_make(body, 2 + len), MQTT_V311, &p);
                if (rc != bad[k].rc)
                    fail_msg("len %zu pos %zu byte 0x%02x: 0x%x", len, i, bad[k].c, rc);
            }
            body[2 + i] = 'a';
        }
        /* a valid two-byte character at each position */
        if (len >= 2) {
            for (size_t i = 0; i + 1 < len; i++) {
                body[2 + i] = 0xc3;
                body[3 + i] = 0xa9;
                assert_int_equal(mqtt_decode_publish(0, slice_make(body, 2 + len), MQTT_V311, &p),
                                 0);
                body[2 + i] = body[3 + i] = 'a';
            }
        }
        free(body);
    }
}

static void
publish_truncated_is_malformed(void **state)
{
    assert_int_equal(publish_rc(0, MQTT_V311, ""), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0, MQTT_V311, "00"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0, MQTT_V311, "00 05 'abc'"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0x2, MQTT_V311, "00 01 't' 00"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0, MQTT_V5, "00 01 't'"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0, MQTT_V5, "00 01 't' 05 01 01"), MQTT_RC_MALFORMED);
    assert_int_equal(publish_rc(0, MQTT_V5, "00 01 't' 80"), MQTT_RC_MALFORMED);
    /* session expiry is not a PUBLISH property (section 2.2.2.2) */
    assert_int_equal(publish_rc(0, MQTT_V5, "00 01 't' 05 11 00 00 00 01"), MQTT_RC_MALFORMED);
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */

static void
ack_fixed_header_flags(void **state)
{
    /* PUBREL must be 0x2 [MQTT-3.6.1-1]; the others 0 [MQTT-2.2.2-1, MQTT-2.2.2-2] */
    assert_int_equal(ack_rc(MQTT_PUBREL, 0x0, MQTT_V311, "00 01"), MQTT_RC_MALFORMED);
    assert_int_equal(ack_rc(MQTT_PUBREL, 0x2, MQTT_V311, "00 01"), 0);
    assert_int_equal(ack_rc(MQTT_PUBREL, 0xa, MQTT_V311, "00 01"), MQTT_RC_MALFORMED);
    assert_int_equal(ack_rc(MQTT_PUBACK, 0x2, MQTT_V311, "00 01"), MQTT_RC_MALFORMED);
    assert_int_equal(ack_rc(MQTT_PUBREC, 0x1, MQTT_V5, "00 01"), MQTT_RC_MALFORMED);
    assert_int_equal(ack_rc(MQTT_PUBCOMP, 0x8, MQTT_V5, "00 01"), MQTT_RC_MALFORMED);
    /* MQTT 3.1 set DUP on a retried PUBREL */
    assert_int_equal(ack_rc(MQTT_PUBREL, 0xa, MQTT_V31, "00 01"), 0);
    assert_int_equal(ack_rc(MQTT_PUBREL, 0x0, MQTT_V31, "00 01"), MQTT_RC_MALFORMED);
}

static void
ack_packet_id_0_is_protocol_error(void **state)
{
    /* [MQTT-2.2.1-3] */
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V311, "00 00"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(ack_rc(MQTT_PUBCOMP, 0, MQTT_V5, "00 00 00 00"), MQTT_RC_PROTOCOL_ERROR);
}

static void
ack_lengths(void **state)
{
    struct mqtt_ack a;
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V311, "00"), MQTT_RC_MALFORMED);
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V311, "00 01 00"), MQTT_RC_MALFORMED);
    /* MQTT 5: length 2 is success, 3 a reason code without properties (section 3.4.2.1) */
    assert_int_equal(mqtt_decode_ack(MQTT_PUBACK, 0, H("12 34"), MQTT_V5, &a), 0);
    assert_int_equal(a.packet_id, 0x1234);
    assert_int_equal(a.rc, 0);
    assert_int_equal(mqtt_decode_ack(MQTT_PUBREC, 0, H("12 34 10"), MQTT_V5, &a), 0);
    assert_int_equal(a.rc, MQTT_RC_NO_MATCHING_SUBSCRIBERS);
    assert_int_equal(a.props.has, 0);
    assert_int_equal(mqtt_decode_ack(MQTT_PUBREL, 2, H("12 34 92 05 1f 00 02 'no'"), MQTT_V5, &a),
                     0);
    assert_int_equal(a.rc, MQTT_RC_PACKET_ID_NOT_FOUND);
    assert_slice(a.props.reason_string, "no");
    /* trailing bytes after the properties */
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V5, "00 01 00 00 00"), MQTT_RC_MALFORMED);
    /* properties past the end */
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V5, "00 01 00 05 1f"), MQTT_RC_MALFORMED);
    /* not an ack property */
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V5, "00 01 00 02 01 01"), MQTT_RC_MALFORMED);
}

static void
ack_reason_codes(void **state)
{
    /* PUBACK/PUBREC (sections 3.4.2.1, 3.5.2.1), PUBREL/PUBCOMP (3.6.2.1, 3.7.2.1) */
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V5, "00 01 99"), 0);
    assert_int_equal(ack_rc(MQTT_PUBACK, 0, MQTT_V5, "00 01 92"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(ack_rc(MQTT_PUBREC, 0, MQTT_V5, "00 01 01"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(ack_rc(MQTT_PUBCOMP, 0, MQTT_V5, "00 01 92"), 0);
    assert_int_equal(ack_rc(MQTT_PUBCOMP, 0, MQTT_V5, "00 01 80"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(ack_rc(MQTT_PUBREL, 2, MQTT_V5, "00 01 10"), MQTT_RC_PROTOCOL_ERROR);
    /* a non-ack type */
    assert_int_equal(ack_rc(MQTT_SUBACK, 0, MQTT_V5, "00 01"), MQTT_RC_PROTOCOL_ERROR);
}

/* ---- SUBSCRIBE ---- */

static void
subscribe_from_a_client(void **state)
{
    /* mosquitto_sub -t a/b/c -q 1, then a 5 client with options and a subscription id */
    uint8_t flags;
    struct slice body = framed("82 0a 00 01 00 05 'a/b/c' 01", MQTT_SUBSCRIBE, &flags);
    struct mqtt_subscribe s;
    struct slice f;
    struct mqtt_sub_opts o;
    size_t pos = 0;
    assert_int_equal(mqtt_decode_subscribe(flags, body, MQTT_V311, &s), 0);
    assert_int_equal(s.packet_id, 1);
    assert_int_equal(s.n_entries, 1);
    assert_true(mqtt_subscribe_next(&s, &pos, &f, &o));
    assert_slice(f, "a/b/c");
    assert_int_equal(o.qos, 1);
    assert_false(mqtt_subscribe_next(&s, &pos, &f, &o));

    body = framed("82 11 00 02 02 0b 07 00 03 'a/#' 2e 00 03 '+/x' 00", MQTT_SUBSCRIBE, &flags);
    assert_int_equal(mqtt_decode_subscribe(flags, body, MQTT_V5, &s), 0);
    assert_int_equal(s.props.subscription_id, 7);
    assert_int_equal(s.n_entries, 2);
    pos = 0;
    assert_true(mqtt_subscribe_next(&s, &pos, &f, &o));
    assert_slice(f, "a/#");
    assert_int_equal(o.qos, 2);
    assert_true(o.no_local);
    assert_true(o.retain_as_published);
    assert_int_equal(o.retain_handling, 2);
    assert_true(mqtt_subscribe_next(&s, &pos, &f, &o));
    assert_slice(f, "+/x");
    assert_int_equal(o.qos, 0);
    assert_false(o.no_local);
    assert_false(mqtt_subscribe_next(&s, &pos, &f, &o));
}

static void
subscribe_flags_must_be_2(void **state)
{
    /* [MQTT-3.8.1-1] */
    assert_int_equal(subscribe_rc(0x0, MQTT_V311, "00 01 00 01 'a' 00"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x3, MQTT_V5, "00 01 00 00 01 'a' 00"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0xa, MQTT_V311, "00 01 00 01 'a' 00"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0xa, MQTT_V31, "00 01 00 01 'a' 00"), 0); /* 3.1 retry */
}

static void
subscribe_without_filters_is_protocol_error(void **state)
{
    /* [MQTT-3.8.3-3] */
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 00"), MQTT_RC_PROTOCOL_ERROR);
}

static void
subscribe_packet_id_0_is_protocol_error(void **state)
{
    /* [MQTT-2.2.1-3] */
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 00 00 01 'a' 00"), MQTT_RC_PROTOCOL_ERROR);
}

static void
subscribe_reserved_option_bits_are_malformed(void **state)
{
    /* 3.1.1: bits 7-2 reserved and QoS 3 [MQTT-3.8.3-4] */
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 01 'a' 04"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 01 'a' 80"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 01 'a' 03"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V31, "00 01 00 01 'a' 00 00 01 'b' 10"),
                     MQTT_RC_MALFORMED);
    /* 5: bits 7-6 reserved [MQTT-3.8.3-5] */
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 00 00 01 'a' 40"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 00 00 01 'a' 80"), MQTT_RC_MALFORMED);
    /* 5: QoS 3 and retain handling 3 are protocol errors (section 3.8.3.1) */
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 00 00 01 'a' 03"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 00 00 01 'a' 30"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 00 00 01 'a' 2e"), 0);
}

static void
subscribe_filters_must_be_nonempty_utf8(void **state)
{
    /* [MQTT-4.7.3-1] */
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 00 00"), MQTT_RC_MALFORMED);
    /* [MQTT-1.5.4-1, MQTT-1.5.4-2] */
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 01 00 00"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 00 00 02 c3 28 00"), MQTT_RC_MALFORMED);
    /* running past the end, or a missing options byte */
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 05 'a/b'"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 01 'a'"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 01 'a' 00 00"), MQTT_RC_MALFORMED);
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00"), MQTT_RC_MALFORMED);
    /* wildcard placement is the session's business */
    assert_int_equal(subscribe_rc(0x2, MQTT_V311, "00 01 00 05 'a/#/b' 00"), 0);
}

static void
subscribe_bad_properties(void **state)
{
    /* subscription identifier 0, twice (section 3.8.2.1.2) */
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 02 0b 00 00 01 'a' 00"),
                     MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 04 0b 01 0b 02 00 01 'a' 00"),
                     MQTT_RC_PROTOCOL_ERROR);
    /* not a SUBSCRIBE property */
    assert_int_equal(subscribe_rc(0x2, MQTT_V5, "00 01 02 01 01 00 01 'a' 00"),
                     MQTT_RC_MALFORMED);
}

/* ---- UNSUBSCRIBE ---- */

static void
unsubscribe_rules(void **state)
{
    struct mqtt_unsubscribe u;
    struct slice f;
    size_t pos = 0;
    assert_int_equal(mqtt_decode_unsubscribe(0x2, H("00 09 00 03 'a/b' 00 01 '#'"), MQTT_V311,
                                             &u),
                     0);
    assert_int_equal(u.packet_id, 9);
    assert_int_equal(u.n_entries, 2);
    assert_true(mqtt_unsubscribe_next(&u, &pos, &f));
    assert_slice(f, "a/b");
    assert_true(mqtt_unsubscribe_next(&u, &pos, &f));
    assert_slice(f, "#");
    assert_false(mqtt_unsubscribe_next(&u, &pos, &f));
    /* [MQTT-3.10.1-1] */
    assert_int_equal(unsubscribe_rc(0x0, MQTT_V311, "00 01 00 01 'a'"), MQTT_RC_MALFORMED);
    assert_int_equal(unsubscribe_rc(0xa, MQTT_V5, "00 01 00 00 01 'a'"), MQTT_RC_MALFORMED);
    assert_int_equal(unsubscribe_rc(0xa, MQTT_V31, "00 01 00 01 'a'"), 0);
    /* [MQTT-3.10.3-2] */
    assert_int_equal(unsubscribe_rc(0x2, MQTT_V311, "00 01"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(unsubscribe_rc(0x2, MQTT_V5, "00 01 00"), MQTT_RC_PROTOCOL_ERROR);
    /* [MQTT-2.2.1-3] */
    assert_int_equal(unsubscribe_rc(0x2, MQTT_V311, "00 00 00 01 'a'"), MQTT_RC_PROTOCOL_ERROR);
    /* [MQTT-4.7.3-1], [MQTT-1.5.4-2] */
    assert_int_equal(unsubscribe_rc(0x2, MQTT_V311, "00 01 00 00"), MQTT_RC_MALFORMED);
    assert_int_equal(unsubscribe_rc(0x2, MQTT_V311, "00 01 00 01 00"), MQTT_RC_MALFORMED);
    assert_int_equal(unsubscribe_rc(0x2, MQTT_V311, "00 01 00 02 'a'"), MQTT_RC_MALFORMED);
    /* only user properties */
    assert_int_equal(unsubscribe_rc(0x2, MQTT_V5, "00 01 02 0b 01 00 01 'a'"), MQTT_RC_MALFORMED);
}

/* ---- SUBACK, UNSUBACK ---- */

static void
suback_rules(void **state)
{
    struct mqtt_suback s;
    assert_int_equal(mqtt_decode_suback(MQTT_SUBACK, 0, H("00 05 00 01 80"), MQTT_V311, &s), 0);
    assert_int_equal(s.packet_id, 5);
    assert_int_equal(s.n_rcs, 3);
    assert_memory_equal(s.rcs, "\x00\x01\x80", 3);
    assert_int_equal(mqtt_decode_suback(MQTT_SUBACK, 2, H("00 05 00"), MQTT_V311, &s),
                     MQTT_RC_MALFORMED);
    assert_int_equal(suback_rc(MQTT_SUBACK, MQTT_V311, "00 00 00"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(suback_rc(MQTT_SUBACK, MQTT_V311, "00 05"), MQTT_RC_PROTOCOL_ERROR);
    /* 3.1.1 return codes [MQTT-3.9.3-2] */
    assert_int_equal(suback_rc(MQTT_SUBACK, MQTT_V311, "00 05 87"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(suback_rc(MQTT_SUBACK, MQTT_V5, "00 05 00 87 a2"), 0);
    assert_int_equal(suback_rc(MQTT_SUBACK, MQTT_V5, "00 05 00 11"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(suback_rc(MQTT_SUBACK, MQTT_V5, "00 05 00"), MQTT_RC_PROTOCOL_ERROR);
    /* a 3.x UNSUBACK is the packet id alone */
    assert_int_equal(suback_rc(MQTT_UNSUBACK, MQTT_V311, "00 05"), 0);
    assert_int_equal(suback_rc(MQTT_UNSUBACK, MQTT_V311, "00 05 00"), MQTT_RC_MALFORMED);
    assert_int_equal(suback_rc(MQTT_UNSUBACK, MQTT_V5, "00 05 00 11 00"), 0);
    assert_int_equal(suback_rc(MQTT_UNSUBACK, MQTT_V5, "00 05 00 02"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(suback_rc(MQTT_UNSUBACK, MQTT_V5, "00 05 00"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(suback_rc(MQTT_UNSUBACK, MQTT_V5, "00 05 03 1f 00"), MQTT_RC_MALFORMED);
}

/* ---- DISCONNECT, AUTH ---- */

static void
disconnect_31_must_be_empty(void **state)
{
    /* 3.1.1 section 3.14: no variable header, no payload */
    assert_int_equal(disconnect_rc(MQTT_DISCONNECT, MQTT_V311, ""), 0);
    assert_int_equal(disconnect_rc(MQTT_DISCONNECT, MQTT_V311, "00"), MQTT_RC_MALFORMED);
    assert_int_equal(disconnect_rc(MQTT_DISCONNECT, MQTT_V31, "00 00"), MQTT_RC_MALFORMED);
    /* [MQTT-2.2.2-1] */
    struct mqtt_disconnect d;
    assert_int_equal(mqtt_decode_disconnect(MQTT_DISCONNECT, 1, H(""), MQTT_V311, &d),
                     MQTT_RC_MALFORMED);
    assert_int_equal(mqtt_decode_disconnect(MQTT_DISCONNECT, 2, H(""), MQTT_V5, &d),
                     MQTT_RC_MALFORMED);
    /* type 15 is reserved before MQTT 5 */
    assert_int_equal(disconnect_rc(MQTT_AUTH, MQTT_V311, ""), MQTT_RC_PROTOCOL_ERROR);
}

static void
disconnect_5(void **state)
{
    struct mqtt_disconnect d;
    /* remaining length 0: success; 1: no properties (section 3.14.2.1) */
    assert_int_equal(mqtt_decode_disconnect(MQTT_DISCONNECT, 0, H(""), MQTT_V5, &d), 0);
    assert_int_equal(d.rc, 0);
    assert_int_equal(mqtt_decode_disconnect(MQTT_DISCONNECT, 0, H("04"), MQTT_V5, &d), 0);
    assert_int_equal(d.rc, MQTT_RC_DISCONNECT_WITH_WILL);
    assert_int_equal(mqtt_decode_disconnect(MQTT_DISCONNECT, 0, H("00 05 11 00 00 00 00"),
                                            MQTT_V5, &d),
                     0);
    assert_true(d.props.has & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY));
    assert_int_equal(disconnect_rc(MQTT_DISCONNECT, MQTT_V5, "18"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(disconnect_rc(MQTT_DISCONNECT, MQTT_V5, "00 05 11"), MQTT_RC_MALFORMED);
    assert_int_equal(disconnect_rc(MQTT_DISCONNECT, MQTT_V5, "00 00 00"), MQTT_RC_MALFORMED);
    assert_int_equal(disconnect_rc(MQTT_DISCONNECT, MQTT_V5, "00 02 15 00"), MQTT_RC_MALFORMED);
}

static void
auth_5(void **state)
{
    struct mqtt_disconnect d;
    assert_int_equal(mqtt_decode_disconnect(MQTT_AUTH, 0, H(""), MQTT_V5, &d), 0);
    assert_int_equal(mqtt_decode_disconnect(MQTT_AUTH, 0, H("18 0c 15 00 05 'SCRAM' 16 00 01 'x'"),
                                            MQTT_V5, &d),
                     0);
    assert_int_equal(d.rc, MQTT_RC_CONTINUE_AUTH);
    assert_slice(d.props.auth_method, "SCRAM");
    assert_slice(d.props.auth_data, "x");
    /* AUTH reason codes are 0x00, 0x18, 0x19 (section 3.15.2.1) */
    assert_int_equal(disconnect_rc(MQTT_AUTH, MQTT_V5, "04 00"), MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(mqtt_decode_disconnect(MQTT_AUTH, 1, H(""), MQTT_V5, &d), MQTT_RC_MALFORMED);
    /* session expiry is not an AUTH property */
    assert_int_equal(disconnect_rc(MQTT_AUTH, MQTT_V5, "18 05 11 00 00 00 00"), MQTT_RC_MALFORMED);
    assert_int_equal(disconnect_rc(MQTT_PUBACK, MQTT_V5, ""), MQTT_RC_PROTOCOL_ERROR);
}

#define T(f) cmocka_unit_test_teardown(f, free_allocs)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(fixed_header_needs_more_bytes),
        T(fixed_header_fields),
        T(fixed_header_five_byte_length_is_malformed),
        T(fixed_header_type_0_is_malformed),
        T(fixed_header_too_large),
        T(fixed_header_ping_has_no_flags_or_body),
        T(connect_from_a_311_client),
        T(connect_from_a_31_client_with_will),
        T(connect_from_a_5_client),
        T(connect_5_will_properties),
        T(connect_flags_must_be_zero),
        T(connect_reserved_flag_is_malformed),
        T(connect_will_qos_without_will_is_malformed),
        T(connect_will_retain_without_will_is_malformed),
        T(connect_will_qos_3_is_malformed),
        T(connect_password_without_username),
        T(connect_unsupported_protocol),
        T(connect_bad_utf8_is_malformed),
        T(connect_truncated_or_trailing_is_malformed),
        T(connect_will_topic_must_be_a_topic_name),
        T(connect_bad_properties),
        T(connack_decodes),
        T(connack_rules),
        T(publish_from_a_client),
        T(publish_payload_is_not_validated),
        T(publish_qos_3_is_malformed),
        T(publish_dup_at_qos_0_is_protocol_error),
        T(publish_packet_id_0_is_protocol_error),
        T(publish_wildcards_are_invalid_topic_names),
        T(publish_empty_topic),
        T(publish_subscription_id_from_client_is_protocol_error),
        T(publish_bad_topic_utf8_is_malformed),
        T(publish_topic_checked_at_every_position),
        T(publish_truncated_is_malformed),
        T(ack_fixed_header_flags),
        T(ack_packet_id_0_is_protocol_error),
        T(ack_lengths),
        T(ack_reason_codes),
        T(subscribe_from_a_client),
        T(subscribe_flags_must_be_2),
        T(subscribe_without_filters_is_protocol_error),
        T(subscribe_packet_id_0_is_protocol_error),
        T(subscribe_reserved_option_bits_are_malformed),
        T(subscribe_filters_must_be_nonempty_utf8),
        T(subscribe_bad_properties),
        T(unsubscribe_rules),
        T(suback_rules),
        T(disconnect_31_must_be_empty),
        T(disconnect_5),
        T(auth_5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
