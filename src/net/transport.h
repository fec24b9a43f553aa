/*
 * transport.h - what carries a connection's bytes: plain TCP (no transport object at all: the
 * fast path), TLS, or WebSocket framing over either. A connection with a transport reads and
 * writes through it; everything above sees only the MQTT byte stream.
 *
 * A transport may need to send bytes of its own (a TLS handshake, a WebSocket upgrade answer
 * or pong) even when the connection has nothing to say: it keeps them itself, reports them
 * through `pending`, and sends them from `write`.
 */
#ifndef PETREL_NET_TRANSPORT_H
#define PETREL_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

struct transport;

struct transport_ops {
    const char *name;                 /* "tls", "ws", "wss" (for logs) */
    /* Read from `fd` and append the application bytes to `in`. Returns the number of bytes
     * appended (> 0), 0 when the peer closed the connection, -EAGAIN when nothing can be had
     * now (perhaps after consuming protocol bytes such as a handshake), or another negative
     * errno (the connection is then closed). */
    int (*read)(struct transport *t, int fd, struct buf *in);
    /* Send as much of `out` (application bytes) as possible, consuming what was taken with
     * buf_consume, and any bytes of the transport's own. Returns 0 or a negative errno. */
    int (*write)(struct transport *t, int fd, struct buf *out);
    /* Bytes of its own still waiting to be sent (the loop then watches for writability). */
    bool (*pending)(const struct transport *t);
    /* Release everything (does not close fd). */
    void (*free)(struct transport *t);
    /* Optional: the connection is about to close with `out` still to send; take it and add
     * what the transport says at an end (a WebSocket close frame), so that the last write
     * sends both. NULL: nothing to say. */
    void (*closing)(struct transport *t, struct buf *out);
};

struct transport {
    const struct transport_ops *ops;
};

/* Makes the transport of each new connection of one listener. */
struct transport_factory {
    /* Returns a new transport for an accepted socket, or NULL when out of resources. */
    struct transport *(*create)(struct transport_factory *f, int fd);
    void (*free)(struct transport_factory *f);
};

#endif
