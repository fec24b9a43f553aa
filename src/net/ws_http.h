/*
 * ws_http.h - the HTTP half of the WebSocket transport (net/ws.c): judging one upgrade request
 * head and writing the answer [RFC 6455 4.2]. Bytes in, bytes out; no I/O, no state.
 */
#ifndef PETREL_NET_WS_HTTP_H
#define PETREL_NET_WS_HTTP_H

#include <stddef.h>

#include "base/buf.h"

struct ws_upgrade {
    int status;            /* 101, or the HTTP status of the refusal (400, 404, 426, 431) */
    const char *why;       /* the reason of a refusal (a static string) */
    const char *protocol;  /* the sub-protocol chosen ("mqtt", "mqttv3.1"), or NULL */
    char accept[29];       /* Sec-WebSocket-Accept, when status is 101 */
};

/* Judge the request head head[0..len), which ends with its blank line, for a listener that
 * upgrades `path`. Fills every field of `u`. */
void ws_http_parse(const char *head, size_t len, const char *path, struct ws_upgrade *u);

/* Append the answer to `out`: 101 Switching Protocols, or the refusal with a one-line text
 * body and "Connection: close". Returns 0 or -ENOMEM. */
int ws_http_answer(const struct ws_upgrade *u, struct buf *out);

#endif
