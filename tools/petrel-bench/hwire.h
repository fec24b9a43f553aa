/*
 * hwire.h - the HTTP side of petrel-bench's http scenario: the requests it writes to the
 * broker's HTTP API (docs/http-api.md), the responses it reads back, the text payload the
 * P2P receivers get, and which receiver each message goes to.
 *
 * A minimal HTTP/1.1 client: requests always carry Content-Length, responses are read by their
 * status line and Content-Length (the broker never chunks an answer). No sockets here.
 *
 * Payload (text, since the API's "payload" field is a JSON string):
 *   "<publisher>:<sequence>:<CLOCK_MONOTONIC send time, ns>:" then 'x' up to the wanted size.
 *
 * Routing: publisher (HTTP connection) i sends its message number s (counted over all its
 * messages) to receiver (s + off(i)) % N, off(i) spreading the connections' starting points
 * over the N receivers. Receiver j's stream from publisher i is then numbered s / N: dense,
 * so the stream trackers (track.h) stay small and count losses as for other scenarios.
 */
#ifndef PETREL_BENCH_HWIRE_H
#define PETREL_BENCH_HWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/slice.h"

#define HWIRE_PAYLOAD_MAX 44 /* longest "<u32>:<u32>:<u64>:" */

/* Write the payload for (pub, seq, ts) into out: max(size, its digits) bytes, no NUL.
 * Returns the length; out must hold max(size, HWIRE_PAYLOAD_MAX) bytes. */
size_t hwire_payload(char *out, size_t size, uint32_t pub, uint32_t seq, uint64_t ts_ns);
/* Read a payload back; false when it is not one. */
bool hwire_payload_get(struct slice payload, uint32_t *pub, uint32_t *seq, uint64_t *ts_ns);

/* Append one message object {"topic","second_topic":"/p2p/<target>","payload","qos"} to b.
 * Strings are JSON-escaped. */
void hwire_message(struct buf *b, const char *topic, const char *target, struct slice payload,
                   int qos);

/* Append the C string s as it is. */
void hwire_raw(struct buf *b, const char *s);

/* Append a POST of `body` (JSON) to `path`, with Host and Bearer `key`, kept alive. */
void hwire_request(struct buf *b, const char *path, const char *host, uint16_t port,
                   const char *key, struct slice body);

/* One response at the start of p[0..n): returns the bytes it takes (head and body) with
 * *status and *body (pointing into p) set, 0 when more bytes are needed, -1 when it is not an
 * HTTP/1.x response or its head is over `max_head` bytes. */
long hwire_response(const uint8_t *p, size_t n, size_t max_head, int *status, struct slice *body);

/* Occurrences of `needle` in `body` (counts per-message errors in a batch answer). */
uint32_t hwire_count(struct slice body, const char *needle);

/* Receiver of message `seq` of publisher `pub` (n_pubs publishers, n_recvs receivers). */
uint32_t hwire_target(uint32_t pub, uint32_t seq, uint32_t n_pubs, uint32_t n_recvs);
/* How many of the first `sent` messages of `pub` went to `recv`. */
uint32_t hwire_stream_sent(uint32_t pub, uint32_t recv, uint32_t sent, uint32_t n_pubs,
                           uint32_t n_recvs);

#endif
