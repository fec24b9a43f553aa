/*
 * packet.h - MQTT 3.1, 3.1.1 and 5.0 packets as C structs, and the codec between them and bytes.
 *
 * This module is pure: no I/O, no clock, no globals, no logging. Decoders validate strictly and
 * return views (struct slice) into the caller's input buffer; nothing is allocated. Encoders
 * append to a struct buf.
 *
 * Versions are the protocol level byte of CONNECT: 3 (MQTT 3.1), 4 (3.1.1), 5 (5.0).
 * Decoders return 0 or an enum mqtt_rc (MQTT_RC_MALFORMED, MQTT_RC_PROTOCOL_ERROR, ...);
 * encoders return 0, -ENOMEM, or -EMSGSIZE for a packet beyond the protocol's size limit
 * (remaining length over MQTT_VARINT_MAX), which the caller should have prevented.
 * Decoders are for received packets: they apply the receiver's checks (e.g. a PUBLISH with a
 * Subscription Identifier is refused, as a server must [MQTT-3.3.4-6]).
 */
#ifndef PETREL_MQTT_PACKET_H
#define PETREL_MQTT_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/slice.h"
#include "mqtt/rc.h"

enum mqtt_version {
    MQTT_V31 = 3,
    MQTT_V311 = 4,
    MQTT_V5 = 5,
};

enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15,
};

/* Largest value of the variable byte integer (remaining length, property lengths). */
#define MQTT_VARINT_MAX 268435455u

/* MQTT 5 property identifiers. */
enum mqtt_prop_id {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,          /* byte */
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,          /* u32 */
    MQTT_PROP_CONTENT_TYPE = 0x03,            /* utf8 */
    MQTT_PROP_RESPONSE_TOPIC = 0x08,          /* utf8 */
    MQTT_PROP_CORRELATION_DATA = 0x09,        /* binary */
    MQTT_PROP_SUBSCRIPTION_ID = 0x0B,         /* varint */
    MQTT_PROP_SESSION_EXPIRY = 0x11,          /* u32 */
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,      /* utf8 */
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,       /* u16 */
    MQTT_PROP_AUTH_METHOD = 0x15,             /* utf8 */
    MQTT_PROP_AUTH_DATA = 0x16,               /* binary */
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,    /* byte */
    MQTT_PROP_WILL_DELAY = 0x18,              /* u32 */
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,   /* byte */
    MQTT_PROP_RESPONSE_INFO = 0x1A,           /* utf8 */
    MQTT_PROP_SERVER_REFERENCE = 0x1C,        /* utf8 */
    MQTT_PROP_REASON_STRING = 0x1F,           /* utf8 */
    MQTT_PROP_RECEIVE_MAX = 0x21,             /* u16 */
    MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,         /* u16 */
    MQTT_PROP_TOPIC_ALIAS = 0x23,             /* u16 */
    MQTT_PROP_MAXIMUM_QOS = 0x24,             /* byte */
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,        /* byte */
    MQTT_PROP_USER = 0x26,                    /* utf8 pair */
    MQTT_PROP_MAX_PACKET_SIZE = 0x27,         /* u32 */
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,  /* byte */
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,        /* byte */
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,    /* byte */
};

#define MQTT_PROP_BIT(id) (UINT64_C(1) << (id))

/*
 * The decoded properties of one packet (or of a will). `has` holds MQTT_PROP_BIT(id) for every
 * property present. Slices point into the decoded buffer.
 *
 * User properties (which may repeat and keep their order) are not copied out: `raw` is the whole
 * property block as received (without its length prefix) and mqtt_user_prop_next() walks the
 * user properties inside it. The encoder writes every property whose bit is set in `has`, except
 * SUBSCRIPTION_ID and USER, in identifier order; then one SUBSCRIPTION_ID per entry of sub_ids
 * (or, when n_sub_ids is 0 and the SUBSCRIPTION_ID bit is set, the one in subscription_id, so a
 * decoded SUBSCRIBE re-encodes as it was); then each user property found in `raw`, in order,
 * whatever `has` says. Decoding sets sub_ids = NULL and n_sub_ids = 0.
 */
struct mqtt_props {
    uint64_t has;
    uint8_t payload_format;
    uint32_t message_expiry;
    struct slice content_type;
    struct slice response_topic;
    struct slice correlation_data;
    uint32_t subscription_id; /* from SUBSCRIBE (the first one of a PUBLISH); 0 when absent */
    uint32_t session_expiry;
    struct slice assigned_client_id;
    uint16_t server_keep_alive;
    struct slice auth_method;
    struct slice auth_data;
    uint8_t request_problem_info;
    uint32_t will_delay;
    uint8_t request_response_info;
    struct slice response_info;
    struct slice server_reference;
    struct slice reason_string;
    uint16_t receive_max;
    uint16_t topic_alias_max;
    uint16_t topic_alias;
    uint8_t maximum_qos;
    uint8_t retain_available;
    uint32_t max_packet_size;
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;

    uint32_t n_user_props;
    struct slice raw;

    /* Encode only: subscription identifiers of an outgoing PUBLISH (one property each). */
    const uint32_t *sub_ids;
    uint32_t n_sub_ids;
};

/* Walk the user properties of `raw` (a validated property block). `*pos` starts at 0.
 * Returns true and fills key/val while there is another one. */
bool mqtt_user_prop_next(struct slice raw, size_t *pos, struct slice *key, struct slice *val);

/* Decode and validate a property block body (`raw`, without its length) as allowed in a packet
 * of `type` (a will's properties when is_will). Rejects unknown ids, ids not allowed in that
 * packet, duplicates of non-repeatable ids, bad UTF-8 and out-of-range values
 * (MQTT_RC_MALFORMED or MQTT_RC_PROTOCOL_ERROR). An identifier that is unknown or not allowed in
 * the packet is malformed (section 2.2.2.2); a repeat, a 0 where 0 is forbidden (receive maximum,
 * maximum packet size, topic alias, subscription identifier), a byte property other than 0/1 and
 * a response topic with wildcards are protocol errors. *out is fully reset first; its slices
 * point into `raw`. */
int mqtt_props_decode(struct slice raw, enum mqtt_type type, bool is_will, struct mqtt_props *out);

/* ---- packets ---- */

struct mqtt_connect {
    uint8_t version;          /* 3, 4 or 5 */
    bool clean_start;         /* clean session (3.x) / clean start (5) */
    uint16_t keepalive;       /* seconds */
    struct mqtt_props props;
    struct slice client_id;   /* may be empty */
    bool has_will;
    uint8_t will_qos;
    bool will_retain;
    struct mqtt_props will_props;
    struct slice will_topic;
    struct slice will_payload;
    bool has_username;
    struct slice username;
    bool has_password;
    struct slice password;
};

struct mqtt_connack {
    bool session_present;
    uint8_t rc;               /* enum mqtt_rc; mapped to a 3.1.1 return code when encoding */
    struct mqtt_props props;
};

struct mqtt_publish {
    uint8_t qos;
    bool dup;
    bool retain;
    struct slice topic;       /* may be empty in MQTT 5 when a topic alias is used */
    uint16_t packet_id;       /* 0 at QoS 0 */
    struct mqtt_props props;
    struct slice payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP: packet id, and in MQTT 5 a reason code and properties. */
struct mqtt_ack {
    uint16_t packet_id;
    uint8_t rc;
    struct mqtt_props props;
};

struct mqtt_sub_opts {
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling;  /* 0, 1 or 2 */
};

/* SUBSCRIBE: the topic filters stay in `entries` (validated) and are read with
 * mqtt_subscribe_next(). */
struct mqtt_subscribe {
    uint16_t packet_id;
    struct mqtt_props props;
    uint32_t n_entries;
    struct slice entries;
};

/* UNSUBSCRIBE: likewise, read with mqtt_unsubscribe_next(). */
struct mqtt_unsubscribe {
    uint16_t packet_id;
    struct mqtt_props props;
    uint32_t n_entries;
    struct slice entries;
};

/* SUBACK and UNSUBACK: one reason code per filter. (UNSUBACK of 3.x has none.) */
struct mqtt_suback {
    uint16_t packet_id;
    struct mqtt_props props;
    const uint8_t *rcs;
    uint32_t n_rcs;
};

/* DISCONNECT and AUTH: a reason code and properties (MQTT 5 only; empty in 3.x). */
struct mqtt_disconnect {
    uint8_t rc;
    struct mqtt_props props;
};

/* ---- decoding ---- */

struct mqtt_fixed_header {
    uint8_t type;             /* enum mqtt_type */
    uint8_t flags;            /* low nibble of the first byte */
    uint32_t remaining;       /* remaining length */
    uint8_t header_len;       /* 2..5 bytes */
};

/*
 * Parse the fixed header at the start of `in`.
 * Returns 0 when the header is complete (the body may not be: check header_len + remaining),
 * -EAGAIN when more bytes are needed, MQTT_RC_MALFORMED for a remaining length of more than four
 * bytes (a non-minimal encoding is accepted, as the spec allows), a packet type of 0, or a
 * PINGREQ/PINGRESP with flags or a body (these have no decoder of their own),
 * MQTT_RC_PACKET_TOO_LARGE when header_len + remaining exceeds max_size (0: no limit beyond the
 * protocol's). Flags of the other types are checked by their decoders, which know the version.
 */
int mqtt_decode_fixed_header(struct slice in, uint32_t max_size, struct mqtt_fixed_header *out);

/* CONNECT: the version comes from the packet itself. Returns MQTT_RC_UNSUPPORTED_VERSION for a
 * protocol name/level pair other than MQIsdp/3, MQTT/4, MQTT/5 (out->version then holds the
 * level byte received, to choose the CONNACK format), and MQTT_RC_MALFORMED or
 * MQTT_RC_PROTOCOL_ERROR for bad flags [MQTT-3.1.2-3], will flag rules [MQTT-3.1.2-11..15],
 * password without username in 3.x [MQTT-3.1.2-22], bad UTF-8, bad properties.
 * A will topic that is not a valid topic name (empty, or with '+'/'#') gives
 * MQTT_RC_TOPIC_NAME_INVALID. */
int mqtt_decode_connect(uint8_t flags, struct slice body, struct mqtt_connect *out);

/* The packets below take the negotiated version. `body` is the variable header plus payload. */
int mqtt_decode_connack(uint8_t flags, struct slice body, int version, struct mqtt_connack *out);
/* Rejects QoS 3 (malformed), DUP set at QoS 0 [MQTT-3.3.1-2], packet id 0 at QoS > 0,
 * wildcards in the topic (MQTT_RC_TOPIC_NAME_INVALID) [MQTT-3.3.2-2], bad UTF-8, an empty topic
 * (3.x) or one without a topic alias (5). Properties are checked for PUBLISH, and a Subscription
 * Identifier is a protocol error [MQTT-3.3.4-6]. The payload is not validated. */
int mqtt_decode_publish(uint8_t flags, struct slice body, int version, struct mqtt_publish *out);
/* `type` is one of PUBACK, PUBREC, PUBREL, PUBCOMP; PUBREL must have flags 0x2, others 0.
 * (In MQTT 3.1, PUBREL, SUBSCRIBE and UNSUBSCRIBE may also carry DUP, as that version allowed.)
 * In MQTT 5 the reason code and properties may be omitted; a reason code not defined for the
 * packet is a protocol error. */
int mqtt_decode_ack(enum mqtt_type type, uint8_t flags, struct slice body, int version,
                    struct mqtt_ack *out);
/* Flags must be 0x2 [MQTT-3.8.1-1]; at least one filter (protocol error) [MQTT-3.8.3-3]; every
 * filter non-empty UTF-8 [MQTT-4.7.3-1]; reserved option bits zero (malformed) [MQTT-3.8.3-4,
 * MQTT-3.8.3-5]; QoS 3 is malformed in 3.x, QoS 3 and retain handling 3 are protocol errors in 5.
 * Wildcard placement is NOT checked here: the session answers a bad filter with a SUBACK failure
 * (0x8F / 0x80) using mqtt_topic_filter_valid(). */
int mqtt_decode_subscribe(uint8_t flags, struct slice body, int version, struct mqtt_subscribe *out);
int mqtt_decode_unsubscribe(uint8_t flags, struct slice body, int version,
                            struct mqtt_unsubscribe *out);
/* SUBACK or UNSUBACK (type). At least one reason code, except in a 3.x UNSUBACK which has none;
 * codes not defined for the packet are protocol errors. */
int mqtt_decode_suback(enum mqtt_type type, uint8_t flags, struct slice body, int version,
                       struct mqtt_suback *out);
/* DISCONNECT (and AUTH with type MQTT_AUTH). A 3.x DISCONNECT must have an empty body; AUTH
 * in 3.x is a protocol error. In MQTT 5 the reason code and properties may be omitted. */
int mqtt_decode_disconnect(enum mqtt_type type, uint8_t flags, struct slice body, int version,
                           struct mqtt_disconnect *out);

/* Iterate the entries of a decoded SUBSCRIBE / UNSUBSCRIBE. `*pos` starts at 0. */
bool mqtt_subscribe_next(const struct mqtt_subscribe *s, size_t *pos, struct slice *filter,
                         struct mqtt_sub_opts *opts);
bool mqtt_unsubscribe_next(const struct mqtt_unsubscribe *u, size_t *pos, struct slice *filter);

/* ---- encoding (append a whole packet to `b`; 0, -ENOMEM or -EMSGSIZE) ----
 * Encoders trust their input (lengths within limits, QoS 0..2, strings already valid) and
 * reserve the whole packet once. */

int mqtt_encode_connect(struct buf *b, const struct mqtt_connect *c);
/* In 3.x, rc is mapped to a 3.1.1 return code: 0x00->0, 0x84->1, 0x85->2, 0x86->4,
 * 0x87/0x8A/0x8C->5, any other ->3 (server unavailable); the properties are written only in
 * MQTT 5. Session present is sent only with rc 0 [MQTT-3.2.2-4], and never in 3.1. */
int mqtt_encode_connack(struct buf *b, int version, const struct mqtt_connack *c);
/* DUP is written only at QoS > 0 [MQTT-3.3.1-2]; the packet id only at QoS > 0. */
int mqtt_encode_publish(struct buf *b, int version, const struct mqtt_publish *p);
/* Everything of that PUBLISH but the payload (whose length the remaining length counts): the
 * caller sends the payload bytes right after, by reference. */
int mqtt_encode_publish_head(struct buf *b, int version, const struct mqtt_publish *p);
/* Size in bytes of the PUBLISH mqtt_encode_publish would write (for maximum packet size). */
size_t mqtt_publish_size(int version, const struct mqtt_publish *p);
/* In MQTT 5 the reason code and properties are omitted when rc is 0 and there are none. */
int mqtt_encode_ack(struct buf *b, enum mqtt_type type, int version, const struct mqtt_ack *a);
int mqtt_encode_subscribe(struct buf *b, int version, uint16_t packet_id,
                          const struct mqtt_props *props, const struct slice *filters,
                          const struct mqtt_sub_opts *opts, size_t n);
int mqtt_encode_unsubscribe(struct buf *b, int version, uint16_t packet_id,
                            const struct mqtt_props *props, const struct slice *filters, size_t n);
/* SUBACK in 3.x maps any rc >= 0x80 to 0x80; UNSUBACK in 3.x has no payload. */
int mqtt_encode_suback(struct buf *b, enum mqtt_type type, int version, const struct mqtt_suback *s);
int mqtt_encode_pingreq(struct buf *b);
int mqtt_encode_pingresp(struct buf *b);
/* DISCONNECT or AUTH (MQTT 5 only). In 3.x a DISCONNECT is the two bytes E0 00 (callers do not
 * send server DISCONNECTs to 3.x clients). In MQTT 5, rc 0 without properties is E0 00. */
int mqtt_encode_disconnect(struct buf *b, enum mqtt_type type, int version,
                           const struct mqtt_disconnect *d);

/* Encoded size of the property block (without its length prefix). */
size_t mqtt_props_size(const struct mqtt_props *p);
/* Append the property block with its length prefix. */
int mqtt_props_encode(struct buf *b, const struct mqtt_props *p);
/* Write the property block with its length prefix at `out`, which has room for
 * mqtt_varint_size(size) + size bytes; `size` is mqtt_props_size(p). Returns bytes written.
 * (For encoders that reserve a whole packet at once.) */
size_t mqtt_props_put(uint8_t *out, const struct mqtt_props *p, size_t size);

/* ---- low level, shared with other modules ---- */

/* Encoded size of a variable byte integer (1..4). */
size_t mqtt_varint_size(uint32_t v);
/* Write v (<= MQTT_VARINT_MAX) at p; returns bytes written. */
size_t mqtt_varint_put(uint8_t *p, uint32_t v);
/* Read a variable byte integer. Returns bytes consumed (1..4), 0 when `in` ends first, or -1
 * when malformed (a fifth byte). */
int mqtt_varint_get(struct slice in, uint32_t *v);

/* UTF-8 string rules of MQTT [MQTT-1.5.4-1..3]: well-formed UTF-8, no surrogates (ill-formed
 * anyway), no U+0000. (U+0001..U+001F and U+007F..U+009F are allowed.) */
bool mqtt_utf8_valid(struct slice s);

#endif
