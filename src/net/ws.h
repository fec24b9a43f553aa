/*
 * ws.h - MQTT over WebSocket (RFC 6455), server side: a transport (net/transport.h) that
 * answers the HTTP/1.1 upgrade request, then carries the MQTT byte stream in binary frames.
 *
 * Above it, a connection sees only MQTT bytes: frame boundaries mean nothing (MQTT is a
 * stream), fragments and control frames are absorbed, pings are answered. Below it, bytes come
 * from the socket itself or from an inner transport (TLS, for wss://).
 */
#ifndef PETREL_NET_WS_H
#define PETREL_NET_WS_H

#include <stddef.h>
#include <stdint.h>

#include "net/transport.h"

/* The largest data message (one frame, or fragments together) a client may send when the broker
 * sets no packet limit: MQTT's largest packet (1 + 4 + 268435455 bytes). */
#define WS_MESSAGE_MAX_DEFAULT 268435460u
/* With a small packet limit, messages up to this size are still accepted: a client may put
 * several packets in one message. */
#define WS_MESSAGE_MAX_FLOOR 65536u

/* A factory of WebSocket transports for one listener.
 * `path`: the request path that upgrades (copied; NULL: "/mqtt"); any other path gets 404.
 * `max_packet_size`: the broker's packet limit (0: none); a larger data message closes the
 * connection with status 1009 (see WS_MESSAGE_MAX_*).
 * `inner`: taken; makes the transport each WebSocket runs over (TLS), NULL for the plain socket.
 * Returns NULL when out of memory (then `inner` has been freed). */
struct transport_factory *ws_factory_new(const char *path, uint32_t max_packet_size,
                                         struct transport_factory *inner);

/* The transport a WebSocket transport runs over (TLS, for wss://): NULL when `t` runs over the
 * plain socket or is not a WebSocket transport. For asking TLS about the peer (its certificate)
 * through a wss:// connection. Valid while `t` lives. */
struct transport *ws_inner(const struct transport *t);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key ++ RFC 6455's GUID)).
 * `out` receives 28 characters and a NUL. Returns 0, or -EIO when the hash fails. */
int ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif
