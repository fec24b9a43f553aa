/*
 * xport.h - what a petrel-bench connection runs over when it is not plain TCP: TLS (tls.c,
 * OpenSSL driven non-blocking inside the thread's epoll loop) and/or WebSocket (ws.c: the
 * HTTP/1.1 upgrade, masked binary frames out, frames unwrapped in).
 *
 * link.c calls in only when a link has a transport (l->x != NULL), so plain TCP runs pay one
 * pointer test per read and per flush.
 *
 *   TCP connected --> [TLS handshake] --> [upgrade sent --101--> ] OPEN (MQTT bytes flow)
 */
#ifndef PETREL_BENCH_XPORT_H
#define PETREL_BENCH_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct drive;
struct link;
struct opts;
struct run;

/* tls.c: the process-wide client context (run->tls) when --tls is set. Returns 0 or -1 with
 * a message in err. */
int xport_setup(struct run *r, char *err, size_t err_len);
void xport_teardown(struct run *r);

/* tls.c: give `l` (socket just created) its transport. Returns 0 or -1 with a message. */
int xport_new(struct drive *d, struct link *l, char *err, size_t err_len);
void xport_free(struct link *l);
/* Drive the handshakes, then send l->out (framed, encrypted). */
void xport_flush(struct drive *d, struct link *l);
/* Read what the socket has; MQTT bytes go to link_deliver(). */
void xport_read(struct drive *d, struct link *l);

/* ---- ws.c: the WebSocket pieces, independent of sockets ---- */

/* What is left of the frame being received. */
struct ws_rx {
    uint64_t left;    /* data payload bytes still to come */
    uint32_t hlen;    /* bytes in hdr */
    uint8_t hdr[136]; /* a header, or a whole control frame (payload <= 125) */
};

/* Append the upgrade request for `path` on host:port; the random key goes into key[25]. */
int ws_request(struct buf *out, const char *host, uint16_t port, const char *path, char key[25]);
/* Check the response in p[0..n): returns the length of its header block (the bytes after it
 * are frames), 0 when incomplete, -1 when it is not a 101 with the right accept and
 * sub-protocol. */
long ws_response(const uint8_t *p, size_t n, const char key[25]);
/* Append one masked binary frame carrying p[0..n). `rng`: the mask's generator state. */
int ws_frame(struct buf *out, uint8_t opcode, const uint8_t *p, size_t n, uint32_t *rng);

/* Feed received bytes: data payload goes to `data`, a ping is answered into `pong`. Returns 0,
 * -1 on a protocol error, -2 on a close frame, -3 when `data` returned false (then rx is not
 * touched again: it may be gone). */
int ws_rx_feed(struct ws_rx *rx, const uint8_t *p, size_t n,
               bool (*data)(void *arg, const uint8_t *p, size_t n), void *arg, struct buf *pong,
               uint32_t *rng);

#endif
