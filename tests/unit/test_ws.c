/*
 * test_ws.c - net/ws.c: the WebSocket transport driven over a socketpair, the test playing the
 * client. Handshake (whole, in pieces, refusals, sub-protocols), frame decoding with masking,
 * fragments with control frames between them, limits, the close handshake, and the frames the
 * server writes, over the plain socket and over an inner transport.
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

#include "base/buf.h"
#include "base/log.h"
#include "net/ws.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define REQUEST(path, extra)                                                                       \
    "GET " path " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"                          \
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"                            \
    "Sec-WebSocket-Version: 13\r\n" extra "\r\n"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ------------------------------------------------------------------ a fake inner transport */

static int inner_reads, inner_writes, inner_frees;

static int
fake_read(struct transport *t, int fd, struct buf *in)
{
    inner_reads++;
    if (buf_reserve(in, 4096) != 0)
        return -ENOMEM;
    ssize_t n = recv(fd, in->p + in->len, in->cap - in->len, 0);
    if (n < 0)
        return errno == EAGAIN ? -EAGAIN : -errno;
    in->len += (size_t)n;
    return (int)n;
}

static int
fake_write(struct transport *t, int fd, struct buf *out)
{
    inner_writes++;
    while (out->len) {
        ssize_t n = send(fd, out->p, out->len, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -errno;
        buf_consume(out, (size_t)n);
    }
    return 0;
}

static bool
fake_pending(const struct transport *t)
{
    return false;
}

static void
fake_free(struct transport *t)
{
    inner_frees++;
    free(t);
}

static const struct transport_ops fake_ops = {"fake",       fake_read, fake_write,
                                              fake_pending, fake_free, NULL};

static struct transport *
fake_create(struct transport_factory *f, int fd)
{
    struct transport *t = calloc(1, sizeof(*t));
    t->ops = &fake_ops;
    return t;
}

static void
fake_factory_free(struct transport_factory *f)
{
    free(f);
}

/* ------------------------------------------------------------------ fixture */

struct fx {
    struct transport_factory *f;
    struct transport *t;
    int srv, cli;
    struct buf in, out;
};

static void
fx_open(struct fx *x, const char *path, uint32_t max_packet, bool inner)
{
    int sv[2];
    struct transport_factory *fi = NULL;

    if (inner) {
        fi = calloc(1, sizeof(*fi));
        fi->create = fake_create;
        fi->free = fake_factory_free;
    }
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    x->srv = sv[0];
    x->cli = sv[1];
    fcntl(x->srv, F_SETFL, O_NONBLOCK);
    fcntl(x->cli, F_SETFL, O_NONBLOCK);
    x->f = ws_factory_new(path, max_packet, fi);
    assert_non_null(x->f);
    x->t = x->f->create(x->f, x->srv);
    assert_non_null(x->t);
    assert_string_equal(x->t->ops->name, inner ? "wss" : "ws");
    buf_init(&x->in);
    buf_init(&x->out);
}

static void
fx_close(struct fx *x)
{
    x->t->ops->free(x->t);
    x->f->free(x->f);
    close(x->srv);
    close(x->cli);
    buf_fini(&x->in);
    buf_fini(&x->out);
}

static void
cli_send(struct fx *x, const void *p, size_t len)
{
    assert_int_equal(send(x->cli, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

static int
srv_read(struct fx *x)
{
    return x->t->ops->read(x->t, x->srv, &x->in);
}

static int
srv_write(struct fx *x)
{
    return x->t->ops->write(x->t, x->srv, &x->out);
}

/* Everything the client can read now, NUL-terminated; returns the length. */
static size_t
cli_recv(struct fx *x, uint8_t *p, size_t cap)
{
    size_t len = 0;
    ssize_t n;

    while (len < cap - 1 && (n = recv(x->cli, p + len, cap - 1 - len, 0)) > 0)
        len += (size_t)n;
    p[len] = 0;
    return len;
}

/* A client frame: masked unless told otherwise. Returns its size. */
static size_t
frame(uint8_t *f, uint8_t b0, const void *payload, size_t len, bool masked)
{
    size_t n = 0;

    f[n++] = b0;
    uint8_t m = masked ? 0x80 : 0;
    if (len < 126) {
        f[n++] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        f[n++] = m | 126;
        f[n++] = (uint8_t)(len >> 8);
        f[n++] = (uint8_t)len;
    } else {
        f[n++] = m | 127;
        for (int i = 0; i < 8; i++)
            f[n++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(f + n, MASK, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        f[n + i] = ((const uint8_t *)payload)[i] ^ (masked ? MASK[i & 3] : 0);
    return n + len;
}

#define FIN 0x80
#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BIN 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xa

static void
send_frame(struct fx *x, uint8_t b0, const void *payload, size_t len)
{
    uint8_t f[256];
    assert_true(len <= 200);
    cli_send(x, f, frame(f, b0, payload, len, true));
}

/* Handshake done, the 101 read by the client. */
static void
fx_upgrade(struct fx *x)
{
    static const char req[] = REQUEST("/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n");
    uint8_t resp[1024];

    cli_send(x, req, strlen(req));
    assert_int_equal(srv_read(x), -EAGAIN);
    assert_true(x->t->ops->pending(x->t));
    assert_int_equal(srv_write(x), 0);
    assert_false(x->t->ops->pending(x->t));
    cli_recv(x, resp, sizeof(resp));
    assert_non_null(strstr((char *)resp, "HTTP/1.1 101 "));
}

/* The server's answer to `req` must start with the status line of `status`. */
static void
expect_refusal(const char *req, int status, const char *also)
{
    struct fx x;
    uint8_t resp[2048];
    char line[32];

    fx_open(&x, NULL, 0, false);
    cli_send(&x, req, strlen(req));
    assert_int_equal(srv_read(&x), -EPROTO);
    assert_int_equal(x.in.len, 0);
    assert_int_equal(srv_write(&x), 0);
    cli_recv(&x, resp, sizeof(resp));
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    if (strncmp((char *)resp, line, strlen(line)) != 0)
        fail_msg("request:\n%s\nexpected %d, got:\n%s", req, status, resp);
    assert_non_null(strstr((char *)resp, "Connection: close\r\n"));
    if (also)
        assert_non_null(strstr((char *)resp, also));
    /* sticky: the connection is over */
    assert_int_equal(srv_read(&x), -EPROTO);
    fx_close(&x);
}

/* After a bad frame: read fails, and the client gets a close frame with `status`. */
static void
expect_close_status(struct fx *x, unsigned status)
{
    uint8_t got[256];

    assert_int_equal(srv_read(x), -EPROTO);
    assert_int_equal(srv_write(x), 0);
    size_t n = cli_recv(x, got, sizeof(got));
    assert_true(n >= 4);
    assert_int_equal(got[0], FIN | OP_CLOSE);
    assert_int_equal(got[1] & 0x80, 0); /* server frames are not masked */
    assert_int_equal(got[1], n - 2);
    assert_int_equal((unsigned)got[2] << 8 | got[3], status);
}

/* ------------------------------------------------------------------ handshake */

static void
accept_key_rfc_example(void **state)
{
    char out[29];

    /* RFC 6455 section 1.3 */
    assert_int_equal(ws_accept_key(KEY, strlen(KEY), out), 0);
    assert_string_equal(out, ACCEPT);
}

static void
handshake_answers_101(void **state)
{
    static const char req[] = REQUEST("/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n");
    struct fx x;
    uint8_t resp[1024];

    fx_open(&x, NULL, 0, false);
    cli_send(&x, req, strlen(req));
    assert_int_equal(srv_read(&x), -EAGAIN);
    assert_int_equal(srv_write(&x), 0);
    cli_recv(&x, resp, sizeof(resp));
    assert_string_equal((char *)resp, "HTTP/1.1 101 Switching Protocols\r\n"
                                      "Upgrade: websocket\r\n"
                                      "Connection: Upgrade\r\n"
                                      "Sec-WebSocket-Accept: " ACCEPT "\r\n"
                                      "Sec-WebSocket-Protocol: mqtt\r\n"
                                      "\r\n");
    fx_close(&x);
}

static void
handshake_in_pieces(void **state)
{
    static const char req[] = REQUEST("/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n");
    struct fx x;
    uint8_t resp[1024];

    fx_open(&x, NULL, 0, false);
    /* one byte per read: nothing is answered before the blank line */
    for (size_t i = 0; i + 1 < strlen(req); i++) {
        cli_send(&x, req + i, 1);
        assert_int_equal(srv_read(&x), -EAGAIN);
        assert_false(x.t->ops->pending(x.t));
    }
    cli_send(&x, req + strlen(req) - 1, 1);
    assert_int_equal(srv_read(&x), -EAGAIN);
    assert_true(x.t->ops->pending(x.t));
    assert_int_equal(srv_write(&x), 0);
    cli_recv(&x, resp, sizeof(resp));
    assert_non_null(strstr((char *)resp, "Sec-WebSocket-Accept: " ACCEPT "\r\n"));
    fx_close(&x);
}

static void
handshake_eof_midway(void **state)
{
    struct fx x;

    fx_open(&x, NULL, 0, false);
    cli_send(&x, "GET /mqtt HTTP/1.1\r\n", 20);
    assert_int_equal(srv_read(&x), -EAGAIN);
    shutdown(x.cli, SHUT_WR);
    assert_int_equal(srv_read(&x), 0);
    fx_close(&x);
}

static void
check_protocol(const char *offer, const char *chosen)
{
    char req[1024];
    struct fx x;
    uint8_t resp[1024];

    snprintf(req, sizeof(req), REQUEST("/mqtt", "%s"), offer);
    fx_open(&x, NULL, 0, false);
    cli_send(&x, req, strlen(req));
    assert_int_equal(srv_read(&x), -EAGAIN);
    assert_int_equal(srv_write(&x), 0);
    cli_recv(&x, resp, sizeof(resp));
    assert_non_null(strstr((char *)resp, "HTTP/1.1 101 "));
    char *p = strstr((char *)resp, "Sec-WebSocket-Protocol:");
    if (!chosen) {
        assert_null(p);
    } else {
        char want[64];
        snprintf(want, sizeof(want), "Sec-WebSocket-Protocol: %s\r\n", chosen);
        assert_non_null(p);
        assert_memory_equal(p, want, strlen(want));
    }
    fx_close(&x);
}

static void
handshake_sub_protocols(void **state)
{
    check_protocol("Sec-WebSocket-Protocol: mqtt\r\n", "mqtt");
    check_protocol("Sec-WebSocket-Protocol: mqttv3.1\r\n", "mqttv3.1");
    check_protocol("Sec-WebSocket-Protocol: wamp, mqttv3.1, mqtt\r\n", "mqttv3.1");
    check_protocol("Sec-WebSocket-Protocol: wamp\r\nSec-WebSocket-Protocol:  mqtt \r\n", "mqtt");
    check_protocol("", NULL); /* none offered: none named */
    check_protocol("sec-websocket-protocol: mqtt\r\n", "mqtt"); /* names are case-insensitive */
    /* offered, none of ours: refused */
    expect_refusal(REQUEST("/mqtt", "Sec-WebSocket-Protocol: wamp, MQTT\r\n"), 400, NULL);
}

static void
handshake_path_and_query(void **state)
{
    struct fx x;
    static const char req[] = REQUEST("/ws/mqtt?token=1", "");
    uint8_t resp[1024];

    fx_open(&x, "/ws/mqtt", 0, false);
    cli_send(&x, req, strlen(req));
    assert_int_equal(srv_read(&x), -EAGAIN);
    assert_int_equal(srv_write(&x), 0);
    cli_recv(&x, resp, sizeof(resp));
    assert_non_null(strstr((char *)resp, "HTTP/1.1 101 "));
    fx_close(&x);
}

static void
handshake_refusals(void **state)
{
    expect_refusal(REQUEST("/other", ""), 404, NULL);
    expect_refusal(REQUEST("/mqtt/", ""), 404, NULL);
    expect_refusal(REQUEST("/", ""), 404, NULL);
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   400, NULL); /* no key */
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: short==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   400, NULL);
    expect_refusal(REQUEST("/mqtt", "Sec-WebSocket-Key: " KEY "\r\n"), 400, NULL); /* two keys */
    expect_refusal("POST /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 400, NULL);
    expect_refusal("GET /mqtt HTTP/1.0\r\nHost: x\r\n\r\n", 400, NULL);
    expect_refusal("GET /mqtt\r\nHost: x\r\n\r\n", 400, NULL);
    expect_refusal("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, NULL);
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n", 400, NULL);
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, NULL);
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost : x\r\n\r\n", 400, NULL);
    expect_refusal("GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   400, NULL); /* no Host */
    /* a plain HTTP GET, or upgrade headers missing: 426 says what is wanted */
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 426, "Upgrade: websocket\r\n");
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   426, NULL);
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\n"
                   "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   426, NULL);
    expect_refusal("GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n",
                   426, "Sec-WebSocket-Version: 13\r\n");
    /* an endless head */
    char big[12000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /mqtt HTTP/1.1\r\nX: ", 23);
    big[sizeof(big) - 1] = 0;
    expect_refusal(big, 431, NULL);
}

static void
frames_right_after_the_head(void **state)
{
    static const char req[] = REQUEST("/mqtt", "");
    uint8_t buf[512];
    struct fx x;

    fx_open(&x, NULL, 0, false);
    size_t n = strlen(req);
    memcpy(buf, req, n);
    n += frame(buf + n, FIN | OP_BIN, "\x10\x00", 2, true);
    cli_send(&x, buf, n);
    assert_int_equal(srv_read(&x), 2);
    assert_memory_equal(x.in.p, "\x10\x00", 2);
    fx_close(&x);
}

/* ------------------------------------------------------------------ frames in */

static void
masked_binary_frame(void **state)
{
    struct fx x;

    fx_open(&x, NULL, 0, false);
    assert_null(ws_inner(x.t)); /* over the plain socket */
    fx_upgrade(&x);
    send_frame(&x, FIN | OP_BIN, "hello mqtt", 10);
    assert_int_equal(srv_read(&x), 10);
    assert_memory_equal(x.in.p, "hello mqtt", 10);
    assert_int_equal(srv_read(&x), -EAGAIN);
    /* an empty frame is fine and yields nothing */
    send_frame(&x, FIN | OP_BIN, "", 0);
    assert_int_equal(srv_read(&x), -EAGAIN);
    fx_close(&x);
}

static void
extended_lengths(void **state)
{
    struct fx x;
    static uint8_t payload[70000], f[70016];

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    size_t sizes[] = {125, 126, 65535, 65536, 70000};
    for (size_t k = 0; k < 5; k++) {
        size_t n = frame(f, FIN | OP_BIN, payload, sizes[k], true);
        size_t sent = 0;
        x.in.len = 0;
        /* the socketpair takes it in pieces: read as they come */
        while (sent < n || x.in.len < sizes[k]) {
            if (sent < n) {
                ssize_t s = send(x.cli, f + sent, n - sent, MSG_NOSIGNAL);
                if (s > 0)
                    sent += (size_t)s;
            }
            int rc = srv_read(&x);
            assert_true(rc > 0 || rc == -EAGAIN);
        }
        assert_int_equal(x.in.len, sizes[k]);
        assert_memory_equal(x.in.p, payload, sizes[k]);
    }
    fx_close(&x);
}

static void
tiny_frames_byte_by_byte(void **state)
{
    /* An MQTT CONNECT split into one-byte frames, each frame sent a byte at a time. */
    static const uint8_t connect[] = {0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
                                      0x02, 0x00, 0x3c, 0x00, 0x01, 'a'};
    struct fx x;

    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    for (size_t i = 0; i < sizeof(connect); i++) {
        uint8_t f[16];
        bool last = i + 1 == sizeof(connect);
        /* one message in fragments: binary, continuations, the last with FIN */
        size_t n = frame(f, (uint8_t)((last ? FIN : 0) | (i == 0 ? OP_BIN : OP_CONT)),
                         connect + i, 1, true);
        for (size_t j = 0; j < n; j++) {
            cli_send(&x, f + j, 1);
            int rc = srv_read(&x);
            assert_int_equal(rc, j + 1 == n ? 1 : -EAGAIN);
        }
    }
    assert_int_equal(x.in.len, sizeof(connect));
    assert_memory_equal(x.in.p, connect, sizeof(connect));
    /* and as separate one-byte messages */
    x.in.len = 0;
    for (size_t i = 0; i < sizeof(connect); i++)
        send_frame(&x, FIN | OP_BIN, connect + i, 1);
    assert_int_equal(srv_read(&x), sizeof(connect));
    assert_memory_equal(x.in.p, connect, sizeof(connect));
    fx_close(&x);
}

static void
control_frames_between_fragments(void **state)
{
    struct fx x;
    uint8_t got[64];

    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    send_frame(&x, OP_BIN, "ab", 2);
    send_frame(&x, FIN | OP_PING, "xy", 2);
    send_frame(&x, OP_CONT, "cd", 2);
    send_frame(&x, FIN | OP_PONG, "unsolicited", 11);
    send_frame(&x, FIN | OP_CONT, "ef", 2);
    assert_int_equal(srv_read(&x), 6);
    assert_memory_equal(x.in.p, "abcdef", 6);
    assert_true(x.t->ops->pending(x.t));
    assert_int_equal(srv_write(&x), 0);
    assert_int_equal(cli_recv(&x, got, sizeof(got)), 4);
    assert_memory_equal(got, "\x8a\x02xy", 4);
    assert_false(x.t->ops->pending(x.t));
    fx_close(&x);
}

static void
only_the_latest_ping_is_answered(void **state)
{
    struct fx x;
    uint8_t got[64];

    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    send_frame(&x, FIN | OP_PING, "1", 1);
    send_frame(&x, FIN | OP_PING, "2", 1);
    send_frame(&x, FIN | OP_PING, "", 0);
    assert_int_equal(srv_read(&x), -EAGAIN);
    assert_int_equal(srv_write(&x), 0);
    assert_int_equal(cli_recv(&x, got, sizeof(got)), 2);
    assert_memory_equal(got, "\x8a\x00", 2);
    fx_close(&x);
}

static void
unmasked_frame_closes_1002(void **state)
{
    struct fx x;
    uint8_t f[16];

    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    cli_send(&x, f, frame(f, FIN | OP_BIN, "\xc0\x00", 2, false)); /* RFC 6455 5.1 */
    expect_close_status(&x, 1002);
    assert_int_equal(x.in.len, 0);
    fx_close(&x);
}

static void
text_frame_closes_1003(void **state)
{
    struct fx x;

    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    send_frame(&x, FIN | OP_TEXT, "hi", 2);
    expect_close_status(&x, 1003);
    fx_close(&x);
}

static void
protocol_errors_close_1002(void **state)
{
    static const struct {
        uint8_t b0;
        size_t len;
        const char *first; /* a frame sent before, or NULL */
    } cases[] = {
        {FIN | OP_CONT, 1, NULL},      /* continuation without a message */
        {FIN | OP_BIN, 1, "frag"},     /* a new message inside a fragmented one */
        {FIN | 0x40 | OP_BIN, 1, NULL}, /* RSV1 without an extension */
        {FIN | 0x3, 1, NULL},          /* reserved data opcode */
        {FIN | 0xb, 1, NULL},          /* reserved control opcode */
        {OP_PING, 1, NULL},            /* fragmented control frame */
        {FIN | OP_PING, 126, NULL},    /* control frame too long */
    };
    static uint8_t zeros[200];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fx x;
        fx_open(&x, NULL, 0, false);
        fx_upgrade(&x);
        if (cases[i].first)
            send_frame(&x, OP_BIN, "x", 1);
        uint8_t f[256];
        cli_send(&x, f, frame(f, cases[i].b0, zeros, cases[i].len, true));
        if (cases[i].first)
            assert_int_equal(srv_read(&x), 1); /* what came before is delivered first */
        expect_close_status(&x, 1002);
        fx_close(&x);
    }
    /* close frames with a one-byte payload or an invalid status code */
    const char *bad_close[] = {"\x03", "\x03\xed", "\x03\xee", "\x00\x00", "\x13\x88"};
    size_t bad_len[] = {1, 2, 2, 2, 2}; /* 1, 1005, 1006, 0, 5000 */
    for (size_t i = 0; i < 5; i++) {
        struct fx x;
        fx_open(&x, NULL, 0, false);
        fx_upgrade(&x);
        send_frame(&x, FIN | OP_CLOSE, bad_close[i], bad_len[i]);
        expect_close_status(&x, 1002);
        fx_close(&x);
    }
    /* a 64-bit length with its top bit set */
    struct fx x;
    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    static const uint8_t huge[] = {FIN | OP_BIN, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    cli_send(&x, huge, sizeof(huge));
    expect_close_status(&x, 1002);
    fx_close(&x);
}

static void
oversized_messages_close_1009(void **state)
{
    static uint8_t payload[WS_MESSAGE_MAX_FLOOR], f[WS_MESSAGE_MAX_FLOOR + 16];
    struct fx x;

    /* a small packet limit still accepts messages up to the floor */
    fx_open(&x, NULL, 100, false);
    fx_upgrade(&x);
    size_t n = frame(f, FIN | OP_BIN, payload, sizeof(payload), true);
    size_t sent = 0;
    while (sent < n || x.in.len < sizeof(payload)) {
        ssize_t s = sent < n ? send(x.cli, f + sent, n - sent, MSG_NOSIGNAL) : 0;
        if (s > 0)
            sent += (size_t)s;
        int rc = srv_read(&x);
        assert_true(rc > 0 || rc == -EAGAIN);
    }
    /* one byte more is refused from the header alone */
    static const uint8_t big[] = {FIN | OP_BIN, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4};
    cli_send(&x, big, sizeof(big));
    expect_close_status(&x, 1009);
    fx_close(&x);

    /* fragments count together */
    fx_open(&x, NULL, 0x20000, false);
    fx_upgrade(&x);
    static const uint8_t part1[] = {OP_BIN, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    cli_send(&x, part1, sizeof(part1)); /* 0x10000 announced */
    assert_int_equal(srv_read(&x), -EAGAIN);
    static uint8_t zeros[0x10000];
    n = 0;
    while (n < sizeof(zeros)) {
        ssize_t s = send(x.cli, zeros + n, sizeof(zeros) - n, MSG_NOSIGNAL);
        if (s > 0)
            n += (size_t)s;
        int rc = srv_read(&x);
        assert_true(rc > 0 || rc == -EAGAIN);
    }
    assert_int_equal(x.in.len, sizeof(zeros));
    static const uint8_t part2[] = {FIN | OP_CONT, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4};
    cli_send(&x, part2, sizeof(part2)); /* 0x10001 more: 0x20001 in all */
    expect_close_status(&x, 1009);
    fx_close(&x);
}

/* ------------------------------------------------------------------ close handshake */

static void
close_is_answered_then_ends(void **state)
{
    struct fx x;
    uint8_t got[64];

    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    send_frame(&x, FIN | OP_BIN, "last", 4);
    send_frame(&x, FIN | OP_CLOSE, "\x03\xe8" "bye", 5);
    send_frame(&x, FIN | OP_BIN, "ignored", 7);
    assert_int_equal(srv_read(&x), 4); /* data before the close is delivered */
    assert_int_equal(srv_read(&x), 0); /* then the end */
    assert_int_equal(srv_read(&x), 0);
    assert_true(x.t->ops->pending(x.t));
    /* output after the close is dropped: nothing follows a close frame */
    buf_append(&x.out, "late", 4);
    assert_int_equal(srv_write(&x), 0);
    assert_int_equal(x.out.len, 0);
    assert_int_equal(cli_recv(&x, got, sizeof(got)), 4);
    assert_memory_equal(got, "\x88\x02\x03\xe8", 4); /* the status code echoed */
    fx_close(&x);

    /* a close without a status is answered with an empty close */
    fx_open(&x, NULL, 0, false);
    fx_upgrade(&x);
    send_frame(&x, FIN | OP_CLOSE, "", 0);
    assert_int_equal(srv_read(&x), 0);
    assert_int_equal(srv_write(&x), 0);
    assert_int_equal(cli_recv(&x, got, sizeof(got)), 2);
    assert_memory_equal(got, "\x88\x00", 2);
    fx_close(&x);
}

/* ------------------------------------------------------------------ frames out */

/* Read the client side until `want` bytes have arrived, writing on the server as needed. */
static size_t
pump(struct fx *x, uint8_t *got, size_t want)
{
    size_t len = 0;

    for (int i = 0; i < 100000 && len < want; i++) {
        assert_int_equal(srv_write(x), 0);
        ssize_t n = recv(x->cli, got + len, want - len, 0);
        if (n > 0)
            len += (size_t)n;
    }
    return len;
}

static void
server_frames(bool inner)
{
    static uint8_t data[300000], got[300100];
    struct fx x;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13 + 1);
    fx_open(&x, NULL, 0, inner);
    fx_upgrade(&x);
    buf_append(&x.out, "abc", 3);
    assert_int_equal(pump(&x, got, 5), 5);
    assert_memory_equal(got, "\x82\x03" "abc", 5);
    assert_int_equal(x.out.len, 0);

    buf_append(&x.out, data, 300);
    assert_int_equal(pump(&x, got, 304), 304);
    assert_memory_equal(got, "\x82\x7e\x01\x2c", 4);
    assert_memory_equal(got + 4, data, 300);

    /* larger than the socket buffer: sent over several writes, a ping answered in between
     * goes after the frame under way */
    buf_append(&x.out, data, sizeof(data));
    assert_int_equal(srv_write(&x), 0);
    assert_true(x.out.len > 0 || inner);
    send_frame(&x, FIN | OP_PING, "p", 1);
    assert_int_equal(srv_read(&x), -EAGAIN);
    size_t n = pump(&x, got, 10 + sizeof(data) + 3);
    assert_int_equal(n, 10 + sizeof(data) + 3);
    assert_memory_equal(got, "\x82\x7f\0\0\0\0\0\x04\x93\xe0", 10);
    assert_memory_equal(got + 10, data, sizeof(data));
    assert_memory_equal(got + 10 + sizeof(data), "\x8a\x01p", 3);
    assert_false(x.t->ops->pending(x.t));
    fx_close(&x);
}

static void
server_frames_plain(void **state)
{
    server_frames(false);
}

static void
server_frames_over_inner_transport(void **state)
{
    inner_reads = inner_writes = inner_frees = 0;
    server_frames(true);
    assert_true(inner_reads > 0);
    assert_true(inner_writes > 0);
    assert_int_equal(inner_frees, 1);
}

static void
inner_transport_reads(void **state)
{
    struct fx x;

    inner_frees = 0;
    fx_open(&x, NULL, 0, true);
    assert_non_null(ws_inner(x.t));
    assert_ptr_equal(ws_inner(x.t)->ops, &fake_ops);
    assert_null(ws_inner(ws_inner(x.t))); /* not a WebSocket transport */
    fx_upgrade(&x);
    send_frame(&x, OP_BIN, "ab", 2);
    send_frame(&x, FIN | OP_CONT, "cd", 2);
    assert_int_equal(srv_read(&x), 4);
    assert_memory_equal(x.in.p, "abcd", 4);
    send_frame(&x, FIN | OP_TEXT, "t", 1);
    expect_close_status(&x, 1003);
    fx_close(&x);
    assert_int_equal(inner_frees, 1);
}

int
main(void)
{
    log_setup(LOG_ERROR, true, false, NULL, false); /* refusals log at info: keep quiet */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_key_rfc_example),
        cmocka_unit_test(handshake_answers_101),
        cmocka_unit_test(handshake_in_pieces),
        cmocka_unit_test(handshake_eof_midway),
        cmocka_unit_test(handshake_sub_protocols),
        cmocka_unit_test(handshake_path_and_query),
        cmocka_unit_test(handshake_refusals),
        cmocka_unit_test(frames_right_after_the_head),
        cmocka_unit_test(masked_binary_frame),
        cmocka_unit_test(extended_lengths),
        cmocka_unit_test(tiny_frames_byte_by_byte),
        cmocka_unit_test(control_frames_between_fragments),
        cmocka_unit_test(only_the_latest_ping_is_answered),
        cmocka_unit_test(unmasked_frame_closes_1002),
        cmocka_unit_test(text_frame_closes_1003),
        cmocka_unit_test(protocol_errors_close_1002),
        cmocka_unit_test(oversized_messages_close_1009),
        cmocka_unit_test(close_is_answered_then_ends),
        cmocka_unit_test(server_frames_plain),
        cmocka_unit_test(server_frames_over_inner_transport),
        cmocka_unit_test(inner_transport_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
