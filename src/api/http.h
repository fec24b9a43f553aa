/*
 * http.h - HTTP/1.1 server connections on a worker's loop, for the application API.
 *
 * Requests are parsed with Node's http-parser (Debian's libhttp-parser): headers and body are
 * gathered until the message is complete, then handed to the handler as one struct
 * http_request. The handler answers with http_respond(), at once or later (after work on
 * other workers); the connection reads no further request until then, so responses leave in
 * request order (pipelined requests wait in the input buffer). Keep-alive follows HTTP/1.1:
 * persistent unless the client says `Connection: close` (or speaks HTTP/1.0 without
 * `keep-alive`).
 *
 * The layer answers by itself, with a JSON error body {"code": ..., "message": ...}:
 * 400 (malformed request), 413 (body over the limit), 431 (head over the limit) and
 * 505 (not HTTP/1.x); each closes the connection. `Expect: 100-continue` gets its interim
 * answer when the body is within the limit.
 */
#ifndef PETREL_API_HTTP_H
#define PETREL_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/transport.h"

enum http_method {
    HTTP_M_OTHER = 0,
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_PUT,
    HTTP_M_DELETE,
};

/* One complete request; every pointer stays valid until http_respond() for it. Strings are
 * NUL-terminated. */
struct http_request {
    enum http_method method;
    const char *path;             /* the target's path, percent-decoded, without the query */
    const char *query;            /* the raw query after '?', "" when none */
    const char *authorization;    /* the Authorization header's value, NULL when absent */
    const char *content_type;     /* NULL when absent */
    const uint8_t *body;          /* de-chunked; NUL-terminated (not counted in body_len) */
    size_t body_len;
    const char *peer;             /* "addr:port" of the client */
};

struct http_limits {
    size_t max_head;              /* request line and headers, bytes (431 beyond) */
    size_t max_body;              /* bytes (413 beyond) */
    uint32_t idle_timeout_ms;     /* a connection with no request in progress closes after */
    /* Answers waiting to be written beyond which no further request is parsed (a client that
     * pipelines requests and never reads cannot make the output grow without bound). */
    size_t max_out;
};

/* A refusal decided from a request's head: the layer answers it with the JSON body
 * {"code": code, "message": message} and `headers` (extra lines, or NULL), then closes the
 * connection without reading the body. Strings are static. */
struct http_refusal {
    int status;
    const char *code;
    const char *message;
    const char *headers;
};

/* Judge a request by its head (method, path, query, authorization, peer; no body yet):
 * return true to read on, or false with *out filled. */
typedef bool http_head_check_fn(void *ud, const struct http_request *head,
                                struct http_refusal *out);

struct http_server;
struct http_exchange;             /* one request waiting for its response */

/* Called once per complete request, on the loop's thread. */
typedef void http_handler_fn(void *ud, struct http_exchange *x, const struct http_request *req);

/* A server on `pool`'s loop (borrowed; one per worker). */
struct http_server *http_server_new(struct conn_pool *pool, const struct http_limits *limits,
                                    http_handler_fn *handler, void *ud);
/* Check every request's head with `fn` before its body is read (e.g. its credentials, so
 * that nobody unknown can make the server hold a body). */
void http_server_set_head_check(struct http_server *s, http_head_check_fn *fn);

/* Closes every connection of the server; exchanges not yet answered are freed (a later
 * http_respond on one is not allowed). */
void http_server_free(struct http_server *s);

/* Serve an accepted socket; takes `fd` and `t` (NULL: plain TCP). `peer` is copied; `tag` is
 * handed to the close hook when the connection ends. */
void http_accept(struct http_server *s, int fd, struct transport *t, const char *peer,
                 void *tag);

/* Call `fn(ud, tag)` when a connection ends (e.g. to count connections per listener). */
typedef void http_close_fn(void *ud, void *tag);
void http_server_set_close_hook(struct http_server *s, http_close_fn *fn);

/* Close connections idle beyond the limit; call periodically (e.g. from the hub's tick) with
 * clock_now_ms(). Idle: no byte received and no answer sent for that long, while no request
 * is with the handler (a half-sent request counts as idle when its client falls silent). */
void http_server_tick(struct http_server *s, uint64_t now_ms);

/* Answer `x` with `status`, a Content-Type (NULL: none) and a body (copied), plus any extra
 * header lines in `headers` (each ending in "\r\n"; NULL: none). Frees `x`; when its
 * connection has gone meanwhile the answer is dropped. When a pipelined request is already
 * waiting on that connection, the handler is called for it before this returns. */
void http_respond(struct http_exchange *x, int status, const char *content_type,
                  const void *body, size_t len, const char *headers);
/* Has the connection of `x` gone (closed by the peer or a limit) while it waited? */
bool http_exchange_gone(const struct http_exchange *x);

/* Percent-decode p[0..len) into out (out_len bytes, the NUL included); '+' becomes a space
 * when plus_is_space (query strings). Returns the decoded length, or -1 for a bad escape, a
 * NUL byte or too little room (never a truncated value). */
int http_percent_decode(const char *p, size_t len, bool plus_is_space, char *out,
                        size_t out_len);
/* The value of `name` in a raw query string, percent-decoded into out; "" for a bare name,
 * false when absent or malformed. */
bool http_query_param(const char *query, const char *name, char *out, size_t out_len);

/* The reason phrase of a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
