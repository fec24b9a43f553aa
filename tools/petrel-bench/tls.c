/*
 * tls.c - a link's transport when --tls or --ws is set: OpenSSL as a non-blocking client in
 * the thread's edge-triggered epoll loop, and the WebSocket layer (ws.c) above it or above
 * the plain socket. The hooks are link.c's link_flush() and link_read(); see xport.h.
 *
 * Edge triggering means a read must go on until the socket (and OpenSSL's buffer) is empty:
 * the loop reads READS_PER_WAKE times and then puts the link on the read-again list, like the
 * plain path. SSL_write may need to read and SSL_read to write (TLS key updates); each side
 * notes it and the other path retries.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "petrel-bench/internal.h"
#include "petrel-bench/xport.h"

enum xport_state { XS_TLS = 0, XS_UPGRADE, XS_OPEN };

struct xport {
    SSL *ssl;           /* NULL: WebSocket over the plain socket */
    uint8_t state;      /* enum xport_state */
    bool ws;            /* WebSocket above */
    bool write_on_read; /* SSL_write wanted to read: retry the flush when readable */
    bool read_on_write; /* SSL_read wanted to write: retry the read after a flush */
    uint32_t rng;       /* WebSocket masks */
    struct buf wout;    /* WebSocket: request, frames and pongs to send */
    struct buf hin;     /* WebSocket: the upgrade response until complete */
    struct ws_rx rx;
    char key[25];
};

/* Every raw read lands here first (decrypted), then goes to the WebSocket layer or on. */
static _Thread_local uint8_t scratch[65536];

static const char *
ssl_why(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e)
        return errno ? strerror(errno) : "connection closed";
    ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

int
xport_setup(struct run *r, char *err, size_t err_len)
{
    const struct opts *o = r->o;

    if (!o->tls)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, err_len, "SSL_CTX_new failed");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* l->out moves (realloc, consume) between a WANT_WRITE and the retry. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ok = o->cafile ? SSL_CTX_load_verify_locations(ctx, o->cafile, NULL)
                       : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char b[200];
        snprintf(err, err_len, "--cafile %s: %s", o->cafile ? o->cafile : "(default)",
                 ssl_why(b, sizeof(b)));
        SSL_CTX_free(ctx);
        return -1;
    }
    r->tls = ctx;
    return 0;
}

void
xport_teardown(struct run *r)
{
    SSL_CTX_free(r->tls);
    r->tls = NULL;
}

int
xport_new(struct drive *d, struct link *l, char *err, size_t err_len)
{
    const struct opts *o = d->o;
    struct xport *x = calloc(1, sizeof(*x));
    if (!x)
        abort();
    l->x = x;
    buf_init(&x->wout);
    buf_init(&x->hin);
    x->ws = o->ws;
    if (RAND_bytes((unsigned char *)&x->rng, sizeof(x->rng)) != 1)
        x->rng = (uint32_t)(uintptr_t)l;
    if (o->tls) {
        x->ssl = SSL_new(d->r->tls);
        if (!x->ssl || SSL_set_fd(x->ssl, l->fd) != 1) {
            snprintf(err, err_len, "SSL_new failed");
            return -1;
        }
        /* The name the certificate must carry: an IP address is checked against its IP
         * subjectAltName, anything else as a DNS name; SNI carries it either way. */
        unsigned char ip[16];
        X509_VERIFY_PARAM *vp = SSL_get0_param(x->ssl);
        int is_ip = inet_pton(AF_INET, o->host, ip) == 1 || inet_pton(AF_INET6, o->host, ip) == 1;
        if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, o->host)
                   : X509_VERIFY_PARAM_set1_host(vp, o->host, 0)) != 1 ||
            SSL_set_tlsext_host_name(x->ssl, o->host) != 1) {
            snprintf(err, err_len, "cannot set the TLS server name %s", o->host);
            return -1;
        }
        SSL_set_connect_state(x->ssl);
        x->state = XS_TLS;
    } else {
        x->state = XS_UPGRADE;
    }
    if (x->ws && x->state == XS_UPGRADE &&
        ws_request(&x->wout, o->host, o->port, o->ws_path, x->key) != 0) {
        snprintf(err, err_len, "cannot build the WebSocket request");
        return -1;
    }
    return 0;
}

void
xport_free(struct link *l)
{
    struct xport *x = l->x;
    if (!x)
        return;
    SSL_free(x->ssl); /* no close_notify: the bench closes its side without waiting */
    buf_fini(&x->wout);
    buf_fini(&x->hin);
    free(x);
    l->x = NULL;
}

/* Returns bytes written, -EAGAIN (want_write or write_on_read set) or -EIO (failed, closed). */
static long
raw_write(struct drive *d, struct link *l, const uint8_t *p, size_t n)
{
    struct xport *x = l->x;
    char b[200];

    if (!x->ssl) {
        for (;;) {
            ssize_t w = send(l->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w >= 0)
                return (long)w;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                l->want_write = true;
                return -EAGAIN;
            }
            link_fail(d, l, "send: %s", strerror(errno));
            return -EIO;
        }
    }
    size_t w = 0;
    errno = 0;
    int rc = SSL_write_ex(x->ssl, p, n, &w);
    if (rc == 1)
        return (long)w;
    switch (SSL_get_error(x->ssl, rc)) {
    case SSL_ERROR_WANT_WRITE:
        l->want_write = true;
        return -EAGAIN;
    case SSL_ERROR_WANT_READ:
        x->write_on_read = true;
        return -EAGAIN;
    default:
        link_fail(d, l, "TLS write: %s", ssl_why(b, sizeof(b)));
        return -EIO;
    }
}

/* Returns bytes read, 0 at the end, -EAGAIN or -EIO (failed). */
static long
raw_read(struct drive *d, struct link *l, uint8_t *p, size_t n)
{
    struct xport *x = l->x;
    char b[200];

    if (!x->ssl) {
        for (;;) {
            ssize_t r = recv(l->fd, p, n, 0);
            if (r >= 0)
                return (long)r;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return -EAGAIN;
            link_fail(d, l, "recv: %s", strerror(errno));
            return -EIO;
        }
    }
    size_t r = 0;
    errno = 0;
    int rc = SSL_read_ex(x->ssl, p, n, &r);
    if (rc == 1)
        return (long)r;
    switch (SSL_get_error(x->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        x->read_on_write = true;
        l->want_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        if (!ERR_peek_error() && !errno)
            return 0; /* EOF without close_notify */
        link_fail(d, l, "TLS read: %s", ssl_why(b, sizeof(b)));
        return -EIO;
    }
}

/* The TLS handshake: 1 done, 0 in progress, -1 failed (link closed). */
static int
handshake(struct drive *d, struct link *l)
{
    struct xport *x = l->x;
    char b[200];

    errno = 0;
    int rc = SSL_do_handshake(x->ssl);
    if (rc == 1) {
        x->state = x->ws ? XS_UPGRADE : XS_OPEN;
        if (x->ws && ws_request(&x->wout, d->o->host, d->o->port, d->o->ws_path, x->key) != 0) {
            link_fail(d, l, "cannot build the WebSocket request");
            return -1;
        }
        return 1;
    }
    switch (SSL_get_error(x->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_WANT_WRITE:
        l->want_write = true;
        return 0;
    default: {
        long v = SSL_get_verify_result(x->ssl);
        if (v != X509_V_OK)
            link_fail(d, l, "TLS handshake: certificate: %s", X509_verify_cert_error_string(v));
        else
            link_fail(d, l, "TLS handshake: %s", ssl_why(b, sizeof(b)));
        return -1;
    }
    }
}

/* Write out all of `b`; false when it must wait (or the link failed). */
static bool
drain(struct drive *d, struct link *l, struct buf *b)
{
    while (b->len) {
        long n = raw_write(d, l, b->p, b->len);
        if (n < 0)
            return false;
        l->last_tx = d->now;
        buf_consume(b, (size_t)n);
    }
    return true;
}

void
xport_flush(struct drive *d, struct link *l)
{
    struct xport *x = l->x;

    if (x->state == XS_TLS && handshake(d, l) <= 0)
        return;
    bool ok;
    if (x->ws) {
        /* Until the 101, l->out (the CONNECT) waits; wout holds the request. */
        if (x->state == XS_OPEN && l->out.len) {
            if (ws_frame(&x->wout, 0x2, l->out.p, l->out.len, &x->rng) != 0)
                abort();
            l->out.len = 0;
        }
        ok = drain(d, l, &x->wout);
    } else {
        ok = x->state != XS_OPEN || drain(d, l, &l->out);
    }
    if (ok && x->read_on_write) {
        x->read_on_write = false;
        link_read_later(d, l);
    }
}

struct sink {
    struct drive *d;
    struct link *l;
};

/* WebSocket payload: MQTT bytes. False once the link closed (its transport is gone). */
static bool
deliver(void *arg, const uint8_t *p, size_t n)
{
    struct sink *s = arg;
    link_deliver(s->d, s->l, p, n);
    return s->l->state != LS_CLOSED;
}

/* Bytes after the TLS layer. Returns false when the link closed. */
static bool
input(struct drive *d, struct link *l, const uint8_t *p, size_t n)
{
    struct xport *x = l->x;
    struct sink s = {d, l};

    if (!x->ws) {
        link_deliver(d, l, p, n);
        return l->state != LS_CLOSED;
    }
    if (x->state == XS_UPGRADE) {
        if (buf_append(&x->hin, p, n) != 0)
            abort();
        long h = ws_response(x->hin.p, x->hin.len, x->key);
        if (h == 0)
            return true;
        if (h < 0) {
            int line = (int)strcspn((const char *)x->hin.p, "\r\n");
            link_fail(d, l, "WebSocket upgrade refused: %.*s", line > 80 ? 80 : line,
                      (const char *)x->hin.p);
            return false;
        }
        x->state = XS_OPEN;
        link_dirty(d, l); /* the CONNECT waiting in l->out */
        /* The frames after the response: move them out of hin, which is done with. */
        struct buf rest = x->hin;
        buf_init(&x->hin);
        int rc =
            ws_rx_feed(&x->rx, rest.p + h, rest.len - (size_t)h, deliver, &s, &x->wout, &x->rng);
        buf_fini(&rest);
        if (rc == -3 || l->state == LS_CLOSED)
            return false;
        if (rc < 0) {
            link_fail(d, l, rc == -2 ? "WebSocket close from the broker" : "bad WebSocket frame");
            return false;
        }
        return true;
    }
    int rc = ws_rx_feed(&x->rx, p, n, deliver, &s, &x->wout, &x->rng);
    if (rc == -3 || l->state == LS_CLOSED)
        return false;
    if (rc < 0) {
        link_fail(d, l, rc == -2 ? "WebSocket close from the broker" : "bad WebSocket frame");
        return false;
    }
    if (x->wout.len) /* a pong */
        link_dirty(d, l);
    return true;
}

void
xport_read(struct drive *d, struct link *l)
{
    struct xport *x = l->x;

    if (x->write_on_read) {
        x->write_on_read = false;
        link_dirty(d, l);
    }
    if (x->state == XS_TLS) {
        if (handshake(d, l) <= 0)
            return;
        link_dirty(d, l); /* the upgrade request or the CONNECT */
    }
    for (int i = 0; i < READS_PER_WAKE; i++) {
        long n = raw_read(d, l, scratch, sizeof(scratch));
        if (n < 0)
            return; /* -EAGAIN: edge triggering wakes us on the next arrival */
        if (n == 0) {
            link_fail(d, l, "connection closed by the broker");
            return;
        }
        d->now = drive_now(); /* the arrival time of everything in this read */
        if (!input(d, l, scratch, (size_t)n))
            return;
        /* A short read emptied the socket. OpenSSL returns one record per read, so with TLS
         * only WANT_READ says that. */
        if (!x->ssl && (size_t)n < sizeof(scratch))
            return;
    }
    link_read_later(d, l);
}
