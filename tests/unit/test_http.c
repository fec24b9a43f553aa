/*
 * test_http.c - api/http.c: the HTTP/1.1 server layer on a real loop, the test playing the
 * client over a socketpair. Requests whole, in pieces, chunked, kept alive and pipelined;
 * answers at once and later; the layer's own refusals (400, 413, 431, 505); 100-continue;
 * closing rules; a peer that leaves while its answer is pending; the idle timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "net/conn.h"
#include "net/loop.h"

#define MAX_HEAD 1024
#define MAX_BODY (64 * 1024)
#define WAIT_MS 2000

/* What the handler saw of one request (copied: the request's strings die with its answer). */
struct seen {
    enum http_method method;
    char path[256];
    char query[256];
    char auth[128];
    char ctype[128];
    bool has_auth, has_ctype;
    size_t body_len;
    char *body;
    char peer[64];
};

struct fx {
    struct loop *loop;
    struct conn_pool pool;
    struct http_server *s;
    int cli;
    bool defer;                       /* the handler keeps exchanges for the test to answer */
    bool no_drain;                    /* the client reads nothing */
    struct http_exchange *pending[4];
    int n_pending;
    struct seen seen[8];
    int n_seen;
    struct buf rx;                    /* what the client received */
    bool eof;
    /* pump */
    bool (*until)(struct fx *f);
    uint64_t deadline;
};

/* ------------------------------------------------------------------------- the handler */

static void
answer(struct http_exchange *x, const struct http_request *req)
{
    if (strcmp(req->path, "/huge") == 0) {
        static char big[64 * 1024];
        memset(big, 'b', sizeof(big));
        http_respond(x, 200, "text/plain", big, sizeof(big), NULL);
        return;
    }
    char body[512];
    int n = snprintf(body, sizeof(body), "%s|%s|%zu", req->path, req->query, req->body_len);
    http_respond(x, 200, "text/plain", body, (size_t)n, "X-Test: 1\r\n");
}

static void
handler(void *ud, struct http_exchange *x, const struct http_request *req)
{
    struct fx *f = ud;

    assert_true(f->n_seen < 8);
    struct seen *s = &f->seen[f->n_seen++];
    s->method = req->method;
    snprintf(s->path, sizeof(s->path), "%s", req->path);
    snprintf(s->query, sizeof(s->query), "%s", req->query);
    s->has_auth = req->authorization != NULL;
    s->has_ctype = req->content_type != NULL;
    snprintf(s->auth, sizeof(s->auth), "%s", req->authorization ? req->authorization : "");
    snprintf(s->ctype, sizeof(s->ctype), "%s", req->content_type ? req->content_type : "");
    assert_non_null(req->body);
    assert_int_equal(req->body[req->body_len], '\0');
    s->body_len = req->body_len;
    s->body = malloc(req->body_len + 1);
    memcpy(s->body, req->body, req->body_len + 1);
    snprintf(s->peer, sizeof(s->peer), "%s", req->peer);
    assert_false(http_exchange_gone(x));
    if (f->defer) {
        assert_true(f->n_pending < 4);
        f->pending[f->n_pending++] = x;
        return;
    }
    answer(x, req);
}

/* ------------------------------------------------------------------------------ fixture */

static void
drain_client(struct fx *f)
{
    while (!f->no_drain) {
        assert_int_equal(buf_reserve(&f->rx, 4096), 0);
        ssize_t n = recv(f->cli, f->rx.p + f->rx.len, f->rx.cap - f->rx.len - 1, MSG_DONTWAIT);
        if (n > 0) {
            f->rx.len += (size_t)n;
            f->rx.p[f->rx.len] = '\0';
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            f->eof = true;
        return;
    }
}

static void
on_tick(void *ud)
{
    struct fx *f = ud;

    http_server_tick(f->s, clock_now_ms());
    drain_client(f);
    if (f->until(f) || clock_now_ms() >= f->deadline)
        loop_stop(f->loop);
}

/* Run the loop until `until` holds (or WAIT_MS pass); returns whether it holds. */
static bool
pump(struct fx *f, bool (*until)(struct fx *f))
{
    f->until = until;
    f->deadline = clock_now_ms() + WAIT_MS;
    assert_int_equal(loop_run(f->loop), 0);
    drain_client(f);
    return until(f);
}

static bool
never(struct fx *f)
{
    return false;
}

/* Run the loop for `ms` whatever happens. */
static void
pump_for(struct fx *f, unsigned ms)
{
    f->until = never;
    f->deadline = clock_now_ms() + ms;
    assert_int_equal(loop_run(f->loop), 0);
    drain_client(f);
}

static bool
got_eof(struct fx *f)
{
    return f->eof;
}

static bool
one_request(struct fx *f)
{
    return f->n_seen >= 1;
}

/* Complete responses in rx: heads, with their Content-Length bodies. */
static int
n_responses(struct fx *f)
{
    const char *p = f->rx.len ? (const char *)f->rx.p : "";
    int n = 0;

    for (;;) {
        const char *end = strstr(p, "\r\n\r\n");
        if (!end)
            return n;
        const char *cl = strstr(p, "Content-Length: ");
        size_t len = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
        bool is_100 = strncmp(p, "HTTP/1.1 100 ", 13) == 0;
        if (strlen(end + 4) < len)
            return n;
        if (!is_100)
            n++;
        p = end + 4 + len;
    }
}

static bool
one_response(struct fx *f)
{
    return n_responses(f) >= 1;
}

static bool
two_responses(struct fx *f)
{
    return n_responses(f) >= 2;
}

static bool
got_head(struct fx *f)
{
    return f->rx.len && strstr((const char *)f->rx.p, "\r\n\r\n") != NULL;
}

static bool
got_continue(struct fx *f)
{
    return f->rx.len && strstr((const char *)f->rx.p, "100 Continue\r\n\r\n") != NULL;
}

static void
fx_open(struct fx *f, const struct http_limits *lim)
{
    int sv[2];
    struct http_limits def = {MAX_HEAD, MAX_BODY, 0, 0};

    memset(f, 0, sizeof(*f));
    assert_int_equal(loop_new(&f->loop), 0);
    conn_pool_init(&f->pool, f->loop, false);
    loop_set_after(f->loop, conn_pool_after, &f->pool);
    loop_set_tick(f->loop, 1, on_tick, f);
    f->s = http_server_new(&f->pool, lim ? lim : &def, handler, f);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    f->cli = sv[1];
    buf_init(&f->rx);
    http_accept(f->s, sv[0], NULL, "127.0.0.1:5555", NULL);
}

static void
fx_close(struct fx *f)
{
    http_server_free(f->s);
    conn_pool_fini(&f->pool);
    assert_int_equal(f->pool.n_conns, 0);
    loop_free(f->loop);
    close(f->cli);
    for (int i = 0; i < f->n_seen; i++)
        free(f->seen[i].body);
    buf_fini(&f->rx);
}

static void
cli_send(struct fx *f, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(send(f->cli, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

static const char *
rx(struct fx *f)
{
    return f->rx.len ? (const char *)f->rx.p : "";
}

/* The layer's own refusal: status, JSON code, Connection: close, then the end. */
static void
expect_refusal(struct fx *f, int status, const char *code)
{
    char line[64], json[96];

    assert_true(pump(f, got_eof));
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    snprintf(json, sizeof(json), "{\"code\":\"%s\",", code);
    assert_non_null(strstr(rx(f), line));
    assert_non_null(strstr(rx(f), "Content-Type: application/json\r\n"));
    assert_non_null(strstr(rx(f), "Connection: close\r\n"));
    assert_non_null(strstr(rx(f), json));
    assert_int_equal(f->n_seen, 0);
}

/* A head check in the manner of the API's: a request without credentials is refused. */
static bool
need_auth(void *ud, const struct http_request *head, struct http_refusal *out)
{
    if (head->authorization && strcmp(head->authorization, "Bearer ok") == 0)
        return true;
    *out = (struct http_refusal){401, "unauthorized", "no key", "WWW-Authenticate: Bearer\r\n"};
    return false;
}

/* -------------------------------------------------------------------------------- tests */

static void
simple_get(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "GET /api/v1/a%20b%2Fc?x=1&y=%41 HTTP/1.1\r\nHost: x\r\n"
                 "aUtHoRiZaTiOn: Bearer tok  \r\n\r\n");
    assert_true(pump(&f, one_response));
    assert_int_equal(f.n_seen, 1);
    assert_int_equal(f.seen[0].method, HTTP_M_GET);
    assert_string_equal(f.seen[0].path, "/api/v1/a b/c"); /* decoded */
    assert_string_equal(f.seen[0].query, "x=1&y=%41");    /* raw */
    assert_true(f.seen[0].has_auth);
    assert_string_equal(f.seen[0].auth, "Bearer tok");
    assert_false(f.seen[0].has_ctype);
    assert_int_equal(f.seen[0].body_len, 0);
    assert_string_equal(f.seen[0].peer, "127.0.0.1:5555");
    assert_string_equal(rx(&f), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 25\r\nX-Test: 1\r\n\r\n/api/v1/a b/c|x=1&y=%41|0");
    assert_false(f.eof); /* kept alive */
    fx_close(&f);
}

static void
post_with_body(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n");
    assert_true(pump(&f, one_response));
    assert_int_equal(f.seen[0].method, HTTP_M_POST);
    assert_string_equal(f.seen[0].ctype, "application/json");
    assert_int_equal(f.seen[0].body_len, 11);
    assert_string_equal(f.seen[0].body, "{\"a\":\"b\"}\r\n");
    assert_string_equal(f.seen[0].query, "");
    assert_non_null(strstr(rx(&f), "\r\n\r\n/p||11"));
    fx_close(&f);
}

static void
body_in_pieces(void **state)
{
    struct fx f;
    static const char *pieces[] = {"PUT /q", " HTTP/1.1\r\nHost: t\r\nCont", "ent-Length: 6\r\n", "\r",
                                   "\nab", "cd", "ef"};

    fx_open(&f, NULL);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        cli_send(&f, pieces[i]);
        pump_for(&f, 3);
        assert_int_equal(f.n_seen, i + 1 < sizeof(pieces) / sizeof(pieces[0]) ? 0 : 1);
    }
    assert_true(pump(&f, one_response));
    assert_int_equal(f.seen[0].method, HTTP_M_PUT);
    assert_string_equal(f.seen[0].body, "abcdef");
    fx_close(&f);
}

static void
chunked_body(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n");
    pump_for(&f, 5);
    assert_int_equal(f.n_seen, 0);
    cli_send(&f, "7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_true(pump(&f, one_response));
    assert_int_equal(f.seen[0].body_len, 12);
    assert_string_equal(f.seen[0].body, "hello, world");
    assert_false(f.eof);
    fx_close(&f);
}

static void
chunked_over_limit_413(void **state)
{
    struct fx f;
    struct http_limits lim = {MAX_HEAD, 10, 0, 0};
    fx_open(&f, &lim);
    cli_send(&f, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "6\r\nabcdef\r\n6\r\nghijkl\r\n");
    expect_refusal(&f, 413, "payload_too_large");
    fx_close(&f);
}

static void
keep_alive_two_requests(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(pump(&f, one_response));
    cli_send(&f, "DELETE /two HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(pump(&f, two_responses));
    assert_int_equal(f.n_seen, 2);
    assert_int_equal(f.seen[1].method, HTTP_M_DELETE);
    assert_string_equal(f.seen[1].path, "/two");
    assert_null(strstr(rx(&f), "Connection:"));
    assert_false(f.eof);
    fx_close(&f);
}

static void
pipelined_answered_in_order(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    f.defer = true;
    cli_send(&f, "GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(&f, one_request));
    pump_for(&f, 10);
    assert_int_equal(f.n_seen, 1); /* the second waits for the first's answer */
    assert_int_equal(f.rx.len, 0);
    /* answering the first lets the second in, at once */
    http_respond(f.pending[0], 200, "text/plain", "1", 1, NULL);
    assert_int_equal(f.n_seen, 2);
    assert_string_equal(f.seen[1].path, "/second");
    http_respond(f.pending[1], 201, NULL, "2", 1, NULL);
    assert_true(pump(&f, two_responses));
    assert_string_equal(rx(&f), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 1\r\n\r\n1"
                                "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n2");
    fx_close(&f);
}

static void
pipelined_answered_at_once(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxy"
                 "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(&f, got_eof));
    assert_int_equal(f.n_seen, 3);
    assert_int_equal(n_responses(&f), 3);
    const char *a = strstr(rx(&f), "/a||0"), *b = strstr(rx(&f), "/b||2"),
               *c = strstr(rx(&f), "/c||0");
    assert_true(a && b && c && a < b && b < c);
    fx_close(&f);
}

static void
deferred_response(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    f.defer = true;
    cli_send(&f, "HEAD /later HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(&f, one_request));
    pump_for(&f, 10);
    assert_int_equal(f.rx.len, 0);
    assert_false(http_exchange_gone(f.pending[0]));
    http_respond(f.pending[0], 404, "application/json", "{\"x\":1}", 7, NULL);
    assert_true(pump(&f, got_head));
    pump_for(&f, 10);
    /* HEAD: the length of the body, not the body */
    assert_string_equal(rx(&f), "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                "Content-Length: 7\r\n\r\n");
    fx_close(&f);
}

static void
expect_100_continue(void **state)
{
    struct fx f;
    char body[5000];

    fx_open(&f, NULL);
    cli_send(&f, "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 4999\r\nExpect: 100-Continue\r\n\r\n");
    assert_true(pump(&f, got_continue));
    assert_string_equal(rx(&f), "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(f.n_seen, 0);
    memset(body, 'b', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    cli_send(&f, body);
    assert_true(pump(&f, one_response));
    assert_int_equal(f.seen[0].body_len, 4999);
    assert_non_null(strstr(rx(&f), "/big||4999"));
    fx_close(&f);
}

static void
huge_content_length_413_at_once(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    /* no body sent: the answer must not wait for it */
    cli_send(&f, "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n"
                 "Expect: 100-continue\r\n\r\n");
    expect_refusal(&f, 413, "payload_too_large");
    assert_null(strstr(rx(&f), "100 Continue"));
    fx_close(&f);
}

static void
head_over_limit_431(void **state)
{
    struct fx f;
    char big[MAX_HEAD + 64];

    fx_open(&f, NULL);
    cli_send(&f, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cli_send(&f, big); /* the head never ends: refused as soon as it passes the limit */
    expect_refusal(&f, 431, "header_too_large");
    fx_close(&f);
}

static void
head_at_limit_accepted(void **state)
{
    struct fx f;
    char req[MAX_HEAD + 1];
    const char *start = "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    size_t n = strlen(start);

    fx_open(&f, NULL);
    memcpy(req, start, n);
    memset(req + n, 'p', MAX_HEAD - n - 4);
    memcpy(req + MAX_HEAD - 4, "\r\n\r\n", 5);
    assert_int_equal(strlen(req), MAX_HEAD);
    cli_send(&f, req);
    assert_true(pump(&f, one_response));
    assert_int_equal(f.n_seen, 1);
    fx_close(&f);
}

static void
garbage_400(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "\x01\x02 garbage\r\n\r\n");
    expect_refusal(&f, 400, "bad_request");
    fx_close(&f);
}

static void
bad_escapes_400(void **state)
{
    static const char *reqs[] = {
        "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /a%4 HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        /* RFC 9112 3.2: HTTP/1.1 needs exactly one Host (HTTP/1.0 may omit it) */
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct fx f;
        fx_open(&f, NULL);
        cli_send(&f, reqs[i]);
        expect_refusal(&f, 400, "bad_request");
        fx_close(&f);
    }
}

static void
http2_505(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "GET / HTTP/2.0\r\nHost: x\r\n\r\n");
    expect_refusal(&f, 505, "version_not_supported");
    fx_close(&f);
}

static void
connection_close_honoured(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "GET /bye HTTP/1.1\r\nHost: t\r\nConnection: Close\r\n\r\n");
    assert_true(pump(&f, got_eof));
    assert_int_equal(n_responses(&f), 1);
    assert_non_null(strstr(rx(&f), "\r\nConnection: close\r\n"));
    fx_close(&f);
}

static void
big_answer_then_close_arrives_whole(void **state)
{
    struct fx f;
    size_t len = 4 * 1024 * 1024; /* far more than the socketpair holds */
    char *big = malloc(len);

    fx_open(&f, NULL);
    f.defer = true;
    memset(big, 'z', len);
    cli_send(&f, "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_true(pump(&f, one_request));
    http_respond(f.pending[0], 200, "application/octet-stream", big, len, NULL);
    free(big);
    assert_true(pump(&f, got_eof));
    const char *body = strstr(rx(&f), "\r\n\r\n");
    assert_non_null(body);
    assert_int_equal(f.rx.len - (size_t)(body + 4 - rx(&f)), len);
    assert_int_equal(n_responses(&f), 1);
    fx_close(&f);
}

static void
http10_closes_unless_keep_alive(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    cli_send(&f, "GET /old HTTP/1.0\r\n\r\n");
    assert_true(pump(&f, got_eof));
    assert_non_null(strstr(rx(&f), "\r\nConnection: close\r\n"));
    fx_close(&f);

    fx_open(&f, NULL);
    cli_send(&f, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(pump(&f, one_response));
    assert_non_null(strstr(rx(&f), "\r\nConnection: keep-alive\r\n"));
    cli_send(&f, "GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(pump(&f, two_responses));
    assert_false(f.eof);
    fx_close(&f);
}

static void
peer_gone_while_pending(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    f.defer = true;
    cli_send(&f, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /queued HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(&f, one_request));
    shutdown(f.cli, SHUT_RDWR);
    pump_for(&f, 20);
    assert_int_equal(f.pool.n_conns, 0);
    assert_true(http_exchange_gone(f.pending[0]));
    http_respond(f.pending[0], 200, "text/plain", "late", 4, NULL); /* dropped, freed */
    assert_int_equal(f.n_seen, 1);
    fx_close(&f);
}

static void
server_freed_with_exchange_pending(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    f.defer = true;
    cli_send(&f, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /half HTTP/1.1\r\nHost: t\r\nHo");
    assert_true(pump(&f, one_request));
    fx_close(&f); /* frees the unanswered exchange; ASan finds any leak */
}

static void
idle_timeout(void **state)
{
    struct fx f;
    struct http_limits lim = {MAX_HEAD, MAX_BODY, 100, 0};

    fx_open(&f, &lim);
    f.defer = true;
    /* a request with the handler is not idle, however long it takes */
    cli_send(&f, "GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(pump(&f, one_request));
    pump_for(&f, 250);
    assert_false(f.eof);
    http_respond(f.pending[0], 204, NULL, NULL, 0, NULL);
    uint64_t t0 = clock_now_ms();
    assert_true(pump(&f, got_eof));
    uint64_t waited = clock_now_ms() - t0;
    assert_true(waited >= 90 && waited < 1000);
    /* 204: no length, no body */
    assert_string_equal(rx(&f), "HTTP/1.1 204 No Content\r\n\r\n");
    fx_close(&f);
}

static void
status_texts(void **state)
{
    assert_string_equal(http_status_text(200), "OK");
    assert_string_equal(http_status_text(404), "Not Found");
    assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_text(799), "Unknown");
}

/* The head check runs before the body is read: a refused request's body is never waited for
 * (the client sent only the head of a 60 000-byte request). */
static void
head_check_refuses_before_the_body(void **state)
{
    struct fx f;

    fx_open(&f, NULL);
    http_server_set_head_check(f.s, need_auth);
    cli_send(&f, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n\r\n");
    expect_refusal(&f, 401, "unauthorized");
    assert_non_null(strstr(rx(&f), "WWW-Authenticate: Bearer\r\n"));
    fx_close(&f);

    fx_open(&f, NULL);
    http_server_set_head_check(f.s, need_auth);
    cli_send(&f, "POST /p HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ok\r\nContent-Length: 2\r\n\r\nhi");
    assert_true(pump(&f, one_response));
    assert_non_null(strstr(rx(&f), "HTTP/1.1 200 OK\r\n"));
    assert_int_equal(f.n_seen, 1);
    fx_close(&f);
}

static bool
eight_seen(struct fx *f)
{
    return f->n_seen == 8;
}

/* A client that pipelines requests and reads nothing: once max_out bytes of answers wait, no
 * further request is parsed; when the client reads, the rest are served (by the tick). */
static void
output_limit_holds_back_requests(void **state)
{
    struct fx f;
    struct http_limits lim = {MAX_HEAD, MAX_BODY, 0, 1024};

    fx_open(&f, &lim);
    f.no_drain = true;
    for (int i = 0; i < 8; i++)
        cli_send(&f, "GET /huge HTTP/1.1\r\nHost: t\r\n\r\n");
    pump_for(&f, 200);
    /* The socket pair takes a few answers; the rest wait for room. */
    assert_true(f.n_seen < 8);
    f.no_drain = false;
    assert_true(pump(&f, eight_seen));
    fx_close(&f);
}

int
main(void)
{
    log_setup(LOG_ERROR, true, false, NULL, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_check_refuses_before_the_body),
        cmocka_unit_test(output_limit_holds_back_requests),
        cmocka_unit_test(simple_get),
        cmocka_unit_test(post_with_body),
        cmocka_unit_test(body_in_pieces),
        cmocka_unit_test(chunked_body),
        cmocka_unit_test(chunked_over_limit_413),
        cmocka_unit_test(keep_alive_two_requests),
        cmocka_unit_test(pipelined_answered_in_order),
        cmocka_unit_test(pipelined_answered_at_once),
        cmocka_unit_test(deferred_response),
        cmocka_unit_test(expect_100_continue),
        cmocka_unit_test(huge_content_length_413_at_once),
        cmocka_unit_test(head_over_limit_431),
        cmocka_unit_test(head_at_limit_accepted),
        cmocka_unit_test(garbage_400),
        cmocka_unit_test(bad_escapes_400),
        cmocka_unit_test(http2_505),
        cmocka_unit_test(connection_close_honoured),
        cmocka_unit_test(big_answer_then_close_arrives_whole),
        cmocka_unit_test(http10_closes_unless_keep_alive),
        cmocka_unit_test(peer_gone_while_pending),
        cmocka_unit_test(server_freed_with_exchange_pending),
        cmocka_unit_test(idle_timeout),
        cmocka_unit_test(status_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
