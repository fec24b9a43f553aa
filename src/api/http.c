/*
 * http.c - HTTP/1.1 server connections for the application API; see http.h.
 *
 * One struct http_conn per connection, on the worker's conn_pool. Its input is fed to
 * http-parser, which pauses twice per request:
 *
 *   HEAD --headers complete--> checks (431, 505, 400, 413), maybe "100 Continue"
 *        --> BODY --message complete--> WITH_HANDLER --http_respond--> HEAD (next request)
 *   any state --error--> JSON error answer, connection closed
 *
 * The first pause lets the head be measured exactly: while a head is being read, the parser is
 * fed at most max_head + 1 bytes past its start, so a client cannot make it hold more. While a
 * request is with the handler nothing more is parsed; pipelined requests wait in the input
 * buffer (bounded) and are parsed once the answer has been written, so answers leave in
 * request order. Between requests a connection holds no buffers of its own: the exchange (the
 * request's strings and body) is allocated when a request begins and freed by its answer.
 */
#include "api/http.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* http_parser.h names an enum http_method of its own, as http.h does: its copy is renamed. */
#define http_method http_parser_method
#include <http_parser.h>
#undef http_method

#include "base/buf.h"
#include "base/clock.h"
#include "base/list.h"
#include "base/xalloc.h"

/* Longest header name worth remembering ("authorization" is 13). */
#define HTTP_FIELD_MAX 16
/* Input a client may send ahead (pipelined) while its request is with the handler, beyond the
 * largest request it could be. */
#define HTTP_AHEAD_SLACK (64 * 1024)
/* Body bytes allocated before they arrive, at most. */
#define HTTP_BODY_PREALLOC (64 * 1024)

struct http_server {
    struct conn_pool *pool;
    struct http_limits limits;
    http_handler_fn *handler;
    http_head_check_fn *head_check;
    http_close_fn *close_hook;
    void *ud;
    struct list conns;      /* struct http_conn */
    struct list exchanges;  /* with the handler, the gone ones included */
};

enum http_pause { HTTP_RUN = 0, HTTP_HEAD_DONE, HTTP_MESSAGE_DONE };

struct http_conn {
    struct http_server *s;
    struct conn *conn;
    void *tag;                   /* for the close hook */
    struct list link;            /* in s->conns */
    http_parser parser;
    struct http_exchange *x;     /* the request being read or with the handler, or NULL */
    size_t head_len;             /* bytes of the current head so far */
    uint64_t last_active;
    enum http_pause pause;       /* why the parser stopped */
    bool head_done;
    bool in_process;             /* process() is on the stack: an answer must not re-enter */
    bool finishing;              /* the last answer is leaving; input is dropped */
    int error;                   /* an error answer decided in a callback; -1: just close */
    const char *error_why;
};

/* Where the value of the header being read goes. */
enum http_capture { CAP_NONE = 0, CAP_AUTH, CAP_CTYPE, CAP_EXPECT };

struct http_exchange {
    struct http_server *s;
    struct http_conn *hc;        /* NULL once the connection has gone */
    struct list link;            /* in s->exchanges while with the handler */
    struct http_request req;
    struct buf target;           /* the raw request target; the query is NUL-terminated in it */
    struct buf path;             /* percent-decoded, NUL-terminated */
    struct buf field;            /* the header name being read (first HTTP_FIELD_MAX bytes) */
    struct buf auth, ctype, expect, body;
    enum http_capture cap;
    bool in_value;               /* the last header callback was for a value */
    bool has_auth, has_ctype, has_host;
    bool with_handler;
    bool is_head;
    bool keep_alive;
    bool echo_keep_alive;        /* an HTTP/1.0 client asked for keep-alive: say it is on */
    char peer[64];
};

static const struct http_parser_settings parser_settings;

/* ------------------------------------------------------------------------------ exchanges */

static struct http_exchange *
exchange_new(struct http_conn *hc)
{
    struct http_exchange *x = xcalloc(1, sizeof(*x));

    x->s = hc->s;
    x->hc = hc;
    list_init(&x->link);
    buf_init(&x->target);
    buf_init(&x->path);
    buf_init(&x->field);
    buf_init(&x->auth);
    buf_init(&x->ctype);
    buf_init(&x->expect);
    buf_init(&x->body);
    snprintf(x->peer, sizeof(x->peer), "%s", conn_peer(hc->conn));
    return x;
}

static void
exchange_free(struct http_exchange *x)
{
    list_remove(&x->link);
    buf_fini(&x->target);
    buf_fini(&x->path);
    buf_fini(&x->field);
    buf_fini(&x->auth);
    buf_fini(&x->ctype);
    buf_fini(&x->expect);
    buf_fini(&x->body);
    free(x);
}

/* NUL-terminate `b` without counting the NUL. Returns 0 or -ENOMEM. */
static int
buf_terminate(struct buf *b)
{
    if (buf_reserve(b, 1) != 0)
        return -ENOMEM;
    b->p[b->len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------------- answers */


struct answer {
    int status;
    const char *content_type;    /* NULL: no Content-Type */
    const void *body;
    size_t len;
    const char *headers;         /* extra header lines, or NULL */
    bool is_head;                /* Content-Length of the body, but no body */
    bool close;
    bool keep_alive;             /* say "Connection: keep-alive" (HTTP/1.0) */
};

/* Append the whole answer to the connection's output, or nothing. Returns 0 or -ENOMEM. */
static int
write_answer(struct conn *c, const struct answer *a)
{
    struct buf *out = conn_out(c);
    char line[160];
    /* No body, and no length, for 1xx, 204 and 304 [RFC 9110 8.6, 15.3.5, 15.4.5]. */
    bool bodiless = a->status < 200 || a->status == 204 || a->status == 304;
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", a->status,
                     http_status_text(a->status));
    char len_line[48];
    int n_len = bodiless ? 0 : snprintf(len_line, sizeof(len_line), "Content-Length: %zu\r\n",
                                        a->len);
    const char *conn_line = a->close        ? "Connection: close\r\n"
                            : a->keep_alive ? "Connection: keep-alive\r\n"
                                            : "";
    size_t ct_len = a->content_type ? strlen(a->content_type) : 0;
    size_t h_len = a->headers ? strlen(a->headers) : 0;
    size_t body_len = bodiless || a->is_head ? 0 : a->len;
    size_t total = (size_t)n + (ct_len ? 16 + ct_len : 0) + (size_t)n_len + strlen(conn_line) +
                   h_len + 2 + body_len;

    if (buf_reserve(out, total) != 0)
        return -ENOMEM;
    buf_append(out, line, (size_t)n);
    if (ct_len) {
        buf_append(out, "Content-Type: ", 14);
        buf_append(out, a->content_type, ct_len);
        buf_append(out, "\r\n", 2);
    }
    buf_append(out, len_line, (size_t)n_len);
    buf_append(out, conn_line, strlen(conn_line));
    buf_append(out, a->headers, h_len);
    buf_append(out, "\r\n", 2);
    buf_append(out, a->body, body_len);
    conn_wrote(c);
    return 0;
}

/* Answer with a JSON error and close. `code` and `why` hold no character that JSON would need
 * escaped. The request being read, if any, is dropped. */
static void
refuse(struct http_conn *hc, int status, const char *code, const char *why, const char *headers)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"code\":\"%s\",\"message\":\"%s\"}", code, why);

    if (n >= (int)sizeof(body))
        n = (int)sizeof(body) - 1;
    struct answer a = {.status = status, .content_type = "application/json", .body = body,
                       .len = (size_t)n, .headers = headers, .close = true};
    write_answer(hc->conn, &a);
    if (hc->x && !hc->x->with_handler) {
        exchange_free(hc->x);
        hc->x = NULL;
    }
    conn_close(hc->conn);
}

/* The layer's own refusals. */
static void
fail(struct http_conn *hc, int status, const char *why)
{
    const char *code = status == 413   ? "payload_too_large"
                       : status == 431 ? "header_too_large"
                       : status == 505 ? "version_not_supported"
                                       : "bad_request";

    refuse(hc, status, code, why, NULL);
}

/* --------------------------------------------------------------------- parser callbacks */

static int
on_message_begin(http_parser *p)
{
    struct http_conn *hc = p->data;

    if (!hc->x)
        hc->x = exchange_new(hc);
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;

    if (buf_append(&hc->x->target, at, len) != 0) {
        hc->error = -1;
        return -1;
    }
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    struct http_exchange *x = hc->x;

    if (hc->head_done)
        return 0; /* a trailer after a chunked body: not kept */
    if (x->in_value) {
        x->in_value = false;
        x->field.len = 0;
    }
    if (x->field.len < HTTP_FIELD_MAX) {
        size_t room = HTTP_FIELD_MAX - x->field.len;
        if (buf_append(&x->field, at, len < room ? len : room) != 0) {
            hc->error = -1;
            return -1;
        }
    }
    return 0;
}

static bool
field_is(const struct buf *f, const char *name)
{
    size_t n = strlen(name);
    return f->len == n && strncasecmp((const char *)f->p, name, n) == 0;
}

/* The value of a header begins: decide where it goes. Returns 0, or -1 for a duplicate that
 * makes the request ambiguous. */
static int
begin_value(struct http_conn *hc, struct http_exchange *x)
{
    x->in_value = true;
    x->cap = CAP_NONE;
    if (field_is(&x->field, "authorization")) {
        if (x->has_auth)
            goto duplicate;
        x->has_auth = true;
        x->cap = CAP_AUTH;
    } else if (field_is(&x->field, "content-type")) {
        if (x->has_ctype)
            goto duplicate;
        x->has_ctype = true;
        x->cap = CAP_CTYPE;
    } else if (field_is(&x->field, "host")) {
        if (x->has_host)
            goto duplicate; /* RFC 9112 3.2: more than one Host is a 400 */
        x->has_host = true;
    } else if (field_is(&x->field, "expect")) {
        /* a second Expect makes the value a list, which is not "100-continue" */
        if (x->expect.len && buf_append(&x->expect, ",", 1) != 0) {
            hc->error = -1;
            return -1;
        }
        x->cap = CAP_EXPECT;
    }
    return 0;
duplicate:
    hc->error = 400;
    hc->error_why = "duplicate header";
    return -1;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    struct http_exchange *x = hc->x;

    if (hc->head_done)
        return 0;
    if (!x->in_value && begin_value(hc, x) != 0)
        return -1;
    struct buf *to = x->cap == CAP_AUTH    ? &x->auth
                     : x->cap == CAP_CTYPE ? &x->ctype
                     : x->cap == CAP_EXPECT ? &x->expect
                                            : NULL;
    if (to && buf_append(to, at, len) != 0) {
        hc->error = -1;
        return -1;
    }
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    struct http_conn *hc = p->data;

    hc->head_done = true;
    /* Upgrade is ignored (answered in HTTP/1.1, which RFC 9110 7.8 allows); only CONNECT keeps
     * the parser's "another protocol follows", and that connection closes after its answer. */
    if (p->method != HTTP_CONNECT)
        p->upgrade = 0;
    hc->pause = HTTP_HEAD_DONE;
    http_parser_pause(p, 1);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    struct buf *b = &hc->x->body;

    /* Content-Length was judged with the head; this catches a chunked body growing over. */
    if (len > hc->s->limits.max_body - b->len) {
        hc->error = 413;
        hc->error_why = "body over the limit";
        return -1;
    }
    if (buf_append(b, at, len) != 0) {
        hc->error = -1;
        return -1;
    }
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct http_conn *hc = p->data;

    hc->x->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    hc->x->echo_keep_alive = hc->x->keep_alive && p->http_major == 1 && p->http_minor == 0;
    hc->pause = HTTP_MESSAGE_DONE;
    http_parser_pause(p, 1);
    return 0;
}

static const struct http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------- judging a request */

/* Percent-decode the path p[0..len) into `out`, NUL-terminated. Returns 0, -EINVAL (a bad
 * escape or a NUL) or -ENOMEM. */
static int
decode_path(const char *p, size_t len, struct buf *out)
{
    if (len > INT_MAX - 1 || buf_reserve(out, len + 1) != 0)
        return -ENOMEM;
    int n = http_percent_decode(p, len, false, (char *)out->p + out->len, len + 1);
    if (n < 0)
        return -EINVAL;
    out->len += (size_t)n;
    return 0;
}

static void
trim_end(struct buf *b)
{
    while (b->len && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t'))
        b->len--;
}

/* Split the target into the decoded path and the raw query (origin form "/p?q", or absolute
 * form "http://host/p?q" as a proxy would send). Returns 0, -EINVAL or -ENOMEM. */
static int
split_target(struct http_exchange *x)
{
    if (buf_terminate(&x->target) != 0)
        return -ENOMEM;
    char *t = (char *)x->target.p;
    size_t len = x->target.len, start = 0, skip = 0;

    if (len >= 7 && strncasecmp(t, "http://", 7) == 0)
        skip = 7;
    else if (len >= 8 && strncasecmp(t, "https://", 8) == 0)
        skip = 8;
    if (skip) {
        start = skip;
        while (start < len && t[start] != '/' && t[start] != '?' && t[start] != '#')
            start++;
    }
    size_t q = start;
    while (q < len && t[q] != '?' && t[q] != '#')
        q++;
    x->req.query = "";
    if (q < len && t[q] == '?') {
        char *hash = memchr(t + q + 1, '#', len - q - 1);
        if (hash)
            *hash = '\0';
        x->req.query = t + q + 1;
    }
    if (q == start)
        return decode_path("/", 1, &x->path);
    return decode_path(t + start, q - start, &x->path);
}

static enum http_method
method_of(const http_parser *p)
{
    switch (p->method) {
    case HTTP_GET: return HTTP_M_GET;
    case HTTP_HEAD: return HTTP_M_HEAD;
    case HTTP_POST: return HTTP_M_POST;
    case HTTP_PUT: return HTTP_M_PUT;
    case HTTP_DELETE: return HTTP_M_DELETE;
    default: return HTTP_M_OTHER;
    }
}

/* The head is complete: judge it before any of the body is read. Returns 0 to read on, or -1
 * when the connection has been failed. */
static int
judge_head(struct http_conn *hc)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const struct http_limits *lim = &hc->s->limits;
    http_parser *p = &hc->parser;
    struct http_exchange *x = hc->x;

    if (hc->head_len > lim->max_head) {
        fail(hc, 431, "request head over the limit");
        return -1;
    }
    if (p->http_major != 1) {
        fail(hc, 505, "only HTTP/1.x is served");
        return -1;
    }
    /* RFC 9112 3.2: a server answers 400 to an HTTP/1.1 request without a Host header. */
    if (p->http_minor >= 1 && !x->has_host) {
        fail(hc, 400, "Host header missing");
        return -1;
    }
    int rc = split_target(x);
    if (rc == -EINVAL) {
        fail(hc, 400, "malformed path");
        return -1;
    }
    bool chunked = p->flags & F_CHUNKED;
    uint64_t declared = chunked || p->content_length == UINT64_MAX ? 0 : p->content_length;
    if (declared > lim->max_body) {
        fail(hc, 413, "body over the limit");
        return -1;
    }
    /* room for the body at once (up to a point: the client has not sent it yet) */
    size_t room = declared < HTTP_BODY_PREALLOC ? (size_t)declared + 1 : HTTP_BODY_PREALLOC;
    if (rc != 0 || (declared && buf_reserve(&x->body, room) != 0)) {
        conn_close(hc->conn);
        return -1;
    }
    x->req.method = method_of(p);
    x->is_head = x->req.method == HTTP_M_HEAD;
    if (hc->s->head_check) {
        trim_end(&x->auth);
        if (buf_terminate(&x->auth) != 0) {
            conn_close(hc->conn);
            return -1;
        }
        struct http_request head = {
            .method = x->req.method,
            .path = (const char *)x->path.p,
            .query = x->req.query,
            .authorization = x->has_auth ? (const char *)x->auth.p : NULL,
            .peer = x->peer,
        };
        struct http_refusal r = {0};
        if (!hc->s->head_check(hc->s->ud, &head, &r)) {
            refuse(hc, r.status, r.code, r.message, r.headers);
            return -1;
        }
    }
    trim_end(&x->expect);
    /* An HTTP/1.0 client's expectation is ignored [RFC 9110 10.1.1]. */
    if ((declared || chunked) && p->http_minor >= 1 && field_is(&x->expect, "100-continue")) {
        if (buf_append(conn_out(hc->conn), cont, sizeof(cont) - 1) != 0) {
            conn_close(hc->conn);
            return -1;
        }
        conn_wrote(hc->conn);
    }
    return 0;
}

/* The message is complete: hand it to the handler. */
static void
dispatch(struct http_conn *hc)
{
    struct http_exchange *x = hc->x;
    struct http_server *s = hc->s;

    trim_end(&x->auth);
    trim_end(&x->ctype);
    if (buf_terminate(&x->body) != 0 || buf_terminate(&x->auth) != 0 ||
        buf_terminate(&x->ctype) != 0) {
        conn_close(hc->conn);
        return;
    }
    hc->head_done = false;
    hc->head_len = 0;
    x->req.path = (const char *)x->path.p;
    x->req.authorization = x->has_auth ? (const char *)x->auth.p : NULL;
    x->req.content_type = x->has_ctype ? (const char *)x->ctype.p : NULL;
    x->req.body = x->body.p;
    x->req.body_len = x->body.len;
    x->req.peer = x->peer;
    x->with_handler = true;
    list_push(&s->exchanges, &x->link);
    s->handler(s->ud, x, &x->req);
}

static void
parse_error(struct http_conn *hc, enum http_errno e)
{
    if (hc->error > 0)
        fail(hc, hc->error, hc->error_why);
    else if (hc->error < 0)
        conn_close(hc->conn);          /* out of memory */
    else if (e == HPE_HEADER_OVERFLOW) /* http-parser's own limit (80 KiB) */
        fail(hc, 431, "request head over the limit");
    else
        fail(hc, 400, http_errno_description(e));
}

/* So many answers wait to be written that no further request is parsed for now (the tick
 * resumes once they have drained). */
static bool
output_full(const struct http_conn *hc)
{
    size_t max = hc->s->limits.max_out;

    return max && conn_out_pending(hc->conn) > max;
}

/* Parse what the input holds, up to the next request given to the handler. */
static void
process(struct http_conn *hc)
{
    const struct http_limits *lim = &hc->s->limits;
    struct buf *in = conn_in(hc->conn);
    /* Parsed bytes are dropped from the input once, at the end: consuming each request as it
     * is parsed would move the rest of a long pipeline every time. */
    size_t off = 0;

    hc->in_process = true;
    while (off < in->len && !conn_is_closing(hc->conn) && !hc->finishing &&
           !(hc->x && hc->x->with_handler) && !output_full(hc)) {
        bool in_head = !hc->head_done;
        size_t n = in->len - off;
        if (in_head && n > lim->max_head + 1 - hc->head_len)
            n = lim->max_head + 1 - hc->head_len;
        hc->pause = HTTP_RUN;
        size_t done =
            http_parser_execute(&hc->parser, &parser_settings, (const char *)in->p + off, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);
        if (in_head)
            hc->head_len += done;
        off += done;
        if (e == HPE_PAUSED) {
            http_parser_pause(&hc->parser, 0);
            if (hc->pause == HTTP_HEAD_DONE && judge_head(hc) != 0)
                break;
            if (hc->pause == HTTP_MESSAGE_DONE)
                dispatch(hc);
            continue;
        }
        if (e != HPE_OK) {
            parse_error(hc, e);
            break;
        }
        if (in_head && hc->head_len > lim->max_head) {
            fail(hc, 431, "request head over the limit");
            break;
        }
        if (done == 0) { /* cannot happen with a request parser; never spin */
            fail(hc, 400, "unparsable input");
            break;
        }
    }
    /* (never more than the input holds) */
    buf_consume(in, off < in->len ? off : in->len);
    hc->in_process = false;
}

/* ------------------------------------------------------------------------- connections */

static void
http_on_input(void *ud, struct conn *c)
{
    struct http_conn *hc = ud;

    hc->last_active = clock_now_ms();
    if (hc->finishing) {
        buf_consume(conn_in(c), conn_in(c)->len);
        return;
    }
    if ((hc->x && hc->x->with_handler) || output_full(hc)) {
        /* pipelined requests wait, but not without bound */
        if (conn_in(c)->len > hc->s->limits.max_head + hc->s->limits.max_body + HTTP_AHEAD_SLACK)
            conn_close(c);
        return;
    }
    if (!hc->in_process)
        process(hc);
}

static void
http_on_close(void *ud, struct conn *c)
{
    struct http_conn *hc = ud;
    struct http_exchange *x = hc->x;

    if (x && x->with_handler)
        x->hc = NULL; /* gone: the handler's http_respond frees it */
    else if (x)
        exchange_free(x);
    if (hc->s->close_hook)
        hc->s->close_hook(hc->s->ud, hc->tag);
    list_remove(&hc->link);
    free(hc);
}

static const struct conn_ops http_ops = {
    .on_input = http_on_input,
    .on_close = http_on_close,
};

/* A connection left behind by http_server_free, closing: input is dropped. */
static void
detached_on_input(void *ud, struct conn *c)
{
    buf_consume(conn_in(c), conn_in(c)->len);
}

static void
detached_on_close(void *ud, struct conn *c)
{
}

static const struct conn_ops detached_ops = {
    .on_input = detached_on_input,
    .on_close = detached_on_close,
};

/* ------------------------------------------------------------------------------ server */

struct http_server *
http_server_new(struct conn_pool *pool, const struct http_limits *limits, http_handler_fn *handler,
                void *ud)
{
    struct http_server *s = xcalloc(1, sizeof(*s));

    s->pool = pool;
    s->limits = *limits;
    /* the sums in the limit checks must not wrap */
    if (s->limits.max_head > SIZE_MAX / 4)
        s->limits.max_head = SIZE_MAX / 4;
    if (s->limits.max_body > SIZE_MAX / 4)
        s->limits.max_body = SIZE_MAX / 4;
    s->handler = handler;
    s->ud = ud;
    list_init(&s->conns);
    list_init(&s->exchanges);
    return s;
}

void
http_server_free(struct http_server *s)
{
    struct list *pos, *tmp;

    if (!s)
        return;
    list_for_each_safe(pos, tmp, &s->conns)
    {
        struct http_conn *hc = list_entry(pos, struct http_conn, link);
        conn_set_handler(hc->conn, &detached_ops, NULL);
        conn_close(hc->conn);
        if (hc->x && !hc->x->with_handler)
            exchange_free(hc->x);
        if (s->close_hook)
            s->close_hook(s->ud, hc->tag);
        list_remove(&hc->link);
        free(hc);
    }
    list_for_each_safe(pos, tmp, &s->exchanges)
    {
        exchange_free(list_entry(pos, struct http_exchange, link));
    }
    free(s);
}

void
http_server_set_head_check(struct http_server *s, http_head_check_fn *fn)
{
    s->head_check = fn;
}

void
http_server_set_close_hook(struct http_server *s, http_close_fn *fn)
{
    s->close_hook = fn;
}

void
http_accept(struct http_server *s, int fd, struct transport *t, const char *peer, void *tag)
{
    struct http_conn *hc = xcalloc(1, sizeof(*hc));

    hc->s = s;
    hc->tag = tag;
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    hc->last_active = clock_now_ms();
    if (!(hc->conn = conn_new(s->pool, fd, t, peer, &http_ops, hc))) {
        if (s->close_hook)
            s->close_hook(s->ud, tag);
        free(hc);
        return;
    }
    list_push(&s->conns, &hc->link);
}

void
http_server_tick(struct http_server *s, uint64_t now_ms)
{
    struct list *pos, *tmp;
    uint64_t idle = s->limits.idle_timeout_ms;

    list_for_each_safe(pos, tmp, &s->conns)
    {
        struct http_conn *hc = list_entry(pos, struct http_conn, link);
        if (hc->x && hc->x->with_handler)
            continue; /* the wait is ours, not the client's */
        if (idle && now_ms > hc->last_active && now_ms - hc->last_active >= idle) {
            conn_close(hc->conn);
            continue;
        }
        /* Requests held back while answers drained: their turn, now that they have. */
        if (!hc->in_process && !hc->finishing && conn_in(hc->conn)->len > 0 && !output_full(hc))
            process(hc);
    }
}

void
http_respond(struct http_exchange *x, int status, const char *content_type, const void *body,
             size_t len, const char *headers)
{
    struct http_conn *hc = x->hc;

    if (!hc) {
        exchange_free(x);
        return;
    }
    struct answer a = {.status = status, .content_type = content_type, .body = body, .len = len,
                       .headers = headers, .is_head = x->is_head, .close = !x->keep_alive,
                       .keep_alive = x->echo_keep_alive};
    int rc = write_answer(hc->conn, &a);
    hc->x = NULL;
    exchange_free(x);
    hc->last_active = clock_now_ms();
    if (rc != 0) {
        conn_close(hc->conn);
        return;
    }
    if (a.close) {
        /* all of the answer must leave before the end, however large it is */
        hc->finishing = true;
        conn_close_flushed(hc->conn);
        return;
    }
    /* the next pipelined request, if one waits */
    if (!hc->in_process)
        process(hc);
}

bool
http_exchange_gone(const struct http_exchange *x)
{
    return !x->hc || conn_is_closing(x->hc->conn);
}
