/*
 * fuzz_http.c - libFuzzer target for the HTTP/1.1 server layer (api/http.c).
 *
 * The input after two control bytes is what a client sends, over a socketpair into a real loop.
 * Byte 0 picks the handler: even, it answers at once (inside the parse); odd, it keeps the
 * exchange and the harness answers after the loop iteration, as a handler waiting on other
 * workers would. Byte 1 picks where the stream is cut in two: the first part arrives, the loop
 * runs, then the rest arrives with the end of the stream. Limits are small so that 413 and 431
 * are reached. Invariants: what the handler gets is NUL-terminated where promised, every
 * answer starts with a status line, and the connection is gone once the stream has ended.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http.h"
#include "base/buf.h"
#include "net/conn.h"
#include "net/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond))                                                                           \
            __builtin_trap();                                                                  \
    } while (0)

struct harness {
    struct loop *loop;
    struct conn_pool pool;
    struct http_server *s;
    struct loop_watch kick;   /* always readable: every loop_run is one iteration */
    int cli;
    bool defer;
    struct http_exchange *pending[4]; /* one connection: one at a time */
    int n_pending;
    size_t n_requests;
    struct buf rx;
};

static void
check_request(const struct http_request *req)
{
    CHECK(req->method >= HTTP_M_OTHER && req->method <= HTTP_M_DELETE);
    CHECK(req->path && req->path[0] != '\0');
    CHECK(req->query);
    CHECK(req->body && req->body[req->body_len] == '\0');
    CHECK(req->body_len <= 1024);
    CHECK(req->peer);
    if (req->authorization)
        (void)strlen(req->authorization);
    if (req->content_type)
        (void)strlen(req->content_type);
}

static void
answer(struct http_exchange *x)
{
    if (http_exchange_gone(x)) {
        http_respond(x, 200, "text/plain", "gone", 4, NULL);
        return;
    }
    http_respond(x, 200, "application/json", "{}", 2, "X-F: 1\r\n");
}

static void
handler(void *ud, struct http_exchange *x, const struct http_request *req)
{
    struct harness *h = ud;

    check_request(req);
    h->n_requests++;
    if (h->defer) {
        CHECK(h->n_pending < 1);
        h->pending[h->n_pending++] = x;
        return;
    }
    answer(x);
}

static void
on_kick(void *ud, uint32_t events)
{
}

static void
after(void *ud)
{
    struct harness *h = ud;
    conn_pool_after(&h->pool);
    loop_stop(h->loop);
}

static void
drain(struct harness *h)
{
    for (;;) {
        if (buf_reserve(&h->rx, 4096) != 0)
            return;
        ssize_t n = recv(h->cli, h->rx.p + h->rx.len, h->rx.cap - h->rx.len, MSG_DONTWAIT);
        if (n <= 0)
            return;
        h->rx.len += (size_t)n;
    }
}

/* One loop iteration, then the deferred answers. */
static void
step(struct harness *h)
{
    loop_run(h->loop);
    /* an answer may let a pipelined request in, which may be deferred in turn */
    while (h->n_pending > 0)
        answer(h->pending[--h->n_pending]);
    conn_pool_after(&h->pool);
    drain(h);
}

static void
send_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits lim = {512, 1024, 0, 64 * 1024};
    struct harness h = {0};
    int sv[2];

    if (size < 2 || size > 64 * 1024)
        return 0;
    h.defer = data[0] & 1;
    size_t len = size - 2, cut = (size_t)data[1] * len / 255;
    const uint8_t *stream = data + 2;

    if (loop_new(&h.loop) != 0)
        return 0;
    conn_pool_init(&h.pool, h.loop, false);
    loop_set_after(h.loop, after, &h);
    h.kick = (struct loop_watch){eventfd(1, EFD_CLOEXEC), on_kick, NULL};
    CHECK(h.kick.fd >= 0 && loop_add(h.loop, &h.kick, EPOLLIN) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    h.cli = sv[1];
    buf_init(&h.rx);
    h.s = http_server_new(&h.pool, &lim, handler, &h);
    http_accept(h.s, sv[0], NULL, "127.0.0.1:1", NULL);

    send_all(h.cli, stream, cut);
    step(&h);
    send_all(h.cli, stream + cut, len - cut);
    shutdown(h.cli, SHUT_WR);
    for (int i = 0; i < 16 && h.pool.n_conns > 0; i++)
        step(&h);
    CHECK(h.pool.n_conns == 0);
    CHECK(h.n_pending == 0);
    if (h.rx.len > 0)
        CHECK(h.rx.len >= 9 && memcmp(h.rx.p, "HTTP/1.1 ", 9) == 0);
    if (h.n_requests > 0)
        CHECK(h.rx.len > 0);

    http_server_free(h.s);
    conn_pool_fini(&h.pool);
    loop_del(h.loop, &h.kick);
    close(h.kick.fd);
    loop_free(h.loop);
    close(h.cli);
    buf_fini(&h.rx);
    return 0;
}
