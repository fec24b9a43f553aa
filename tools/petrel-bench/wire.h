/*
 * wire.h - the few MQTT 3.1.1 / 5.0 packets petrel-bench sends and reads, and the layout of
 * its payload.
 *
 * The broker's codec (src/mqtt) validates everything, as a server must; the generator trusts
 * the broker under test for speed and checks only what it needs to count correctly, so it has
 * its own small codec. Encoders append to a struct buf and abort when memory runs out (the
 * generator's buffers are bounded by its own windows). Decoders take a packet body and return
 * 0 or -1 (malformed or not understood).
 *
 * Payload (at least WIRE_PAYLOAD_MIN bytes, host byte order: sender and receiver are the same
 * process):  [0..3] publisher id  [4..7] sequence number  [8..15] CLOCK_MONOTONIC send time, ns
 * followed by filler bytes.
 */
#ifndef PETREL_BENCH_WIRE_H
#define PETREL_BENCH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/slice.h"

#define WIRE_PAYLOAD_MIN 16

enum wire_type {
    WIRE_CONNECT = 1,
    WIRE_CONNACK = 2,
    WIRE_PUBLISH = 3,
    WIRE_PUBACK = 4,
    WIRE_PUBREC = 5,
    WIRE_PUBREL = 6,
    WIRE_PUBCOMP = 7,
    WIRE_SUBSCRIBE = 8,
    WIRE_SUBACK = 9,
    WIRE_UNSUBACK = 11,
    WIRE_PINGREQ = 12,
    WIRE_PINGRESP = 13,
    WIRE_DISCONNECT = 14,
    WIRE_AUTH = 15,
};

/* Make room for `n` more bytes in `b`, aborting when memory runs out. */
void wire_reserve(struct buf *b, size_t n);

/* CONNECT with clean session / clean start. `version` is 4 (3.1.1) or 5. In MQTT 5 a receive
 * maximum other than 0 is sent as the Receive Maximum property. */
void wire_connect(struct buf *b, int version, struct slice client_id, uint16_t keepalive,
                  uint16_t receive_max);
/* The same with a persistent session: clean 0, and for MQTT 5 a Session Expiry Interval. */
void wire_connect_session(struct buf *b, int version, struct slice client_id, uint16_t keepalive,
                          uint16_t receive_max, bool persistent, uint32_t expiry);
/* SUBSCRIBE of `n` filters at `qos`. */
void wire_subscribe(struct buf *b, int version, uint16_t packet_id, const struct slice *filters,
                    size_t n, uint8_t qos);
/* PUBACK, PUBREC, PUBREL or PUBCOMP with reason 0 (the 4-byte form in both versions). */
void wire_ack(struct buf *b, enum wire_type type, uint16_t packet_id);
void wire_pingreq(struct buf *b);
void wire_disconnect(struct buf *b);

/* A PUBLISH whose topic, QoS and payload size are fixed: everything before the payload is
 * built once, and wire_publish() copies it and fills in the packet id and the payload. */
struct wire_pubtmpl {
    uint8_t *head; /* fixed header, topic, packet id slot, MQTT 5 property length */
    size_t head_len;
    size_t pid_off; /* offset of the packet id in head; 0 at QoS 0 */
    size_t size;    /* payload bytes */
};

/* Build the template; `size` >= WIRE_PAYLOAD_MIN. Free with wire_pubtmpl_fini. */
void wire_pubtmpl_init(struct wire_pubtmpl *t, int version, struct slice topic, uint8_t qos,
                       size_t size);
void wire_pubtmpl_fini(struct wire_pubtmpl *t);
/* Bytes one PUBLISH of this template takes on the wire. */
static inline size_t
wire_pubtmpl_len(const struct wire_pubtmpl *t)
{
    return t->head_len + t->size;
}
/* Append one PUBLISH; the caller has reserved wire_pubtmpl_len() bytes. */
void wire_publish(struct buf *b, const struct wire_pubtmpl *t, uint16_t packet_id, uint32_t pub,
                  uint32_t seq, uint64_t ts_ns);

/* The payload's fields; false when the payload is shorter than WIRE_PAYLOAD_MIN. */
bool wire_payload_get(struct slice payload, uint32_t *pub, uint32_t *seq, uint64_t *ts_ns);

/* ---- decoding ---- */

/* The fixed header at the start of `in`. Returns 1 with *type, *flags, *remaining and
 * *head_len set, 0 when more bytes are needed, -1 when malformed (a fifth length byte). */
int wire_fixed_header(struct slice in, uint8_t *type, uint8_t *flags, uint32_t *remaining,
                      size_t *head_len);

struct wire_publish {
    uint8_t qos;
    bool dup;
    struct slice topic;
    uint16_t packet_id;
    struct slice payload;
};
int wire_parse_publish(uint8_t flags, struct slice body, int version, struct wire_publish *out);

/* CONNACK: reason / return code, and in MQTT 5 the server's Receive Maximum (65535 when
 * absent) and Maximum QoS (2 when absent). */
struct wire_connack {
    bool session_present;
    uint8_t rc;
    uint16_t receive_max;
    uint8_t maximum_qos;
};
int wire_parse_connack(struct slice body, int version, struct wire_connack *out);

/* SUBACK: packet id and the reason codes (pointing into body). */
int wire_parse_suback(struct slice body, int version, uint16_t *packet_id, struct slice *rcs);

/* PUBACK, PUBREC, PUBREL, PUBCOMP: packet id and reason code (0 when omitted). */
int wire_parse_ack(struct slice body, int version, uint16_t *packet_id, uint8_t *rc);

#endif
