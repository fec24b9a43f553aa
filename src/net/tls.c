/*
 * tls.c - the TLS transport (OpenSSL 3); see tls.h.
 *
 *   HANDSHAKE --SSL_do_handshake() == 1--> OPEN --fatal alert, EOF or error--> (closed by conn)
 *
 * Every OpenSSL call is non-blocking: WANT_READ waits for the socket to become readable (the
 * loop watches it anyway), WANT_WRITE sets `want_write`, which `pending` reports so that the
 * connection asks for writability and calls `write`, which resumes the handshake or retries
 * the record OpenSSL holds. SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets that retry pass the
 * output buffer wherever it now is (the connection moves its bytes as it consumes them), and
 * SSL_MODE_ENABLE_PARTIAL_WRITE makes each finished record count at once.
 *
 * `read` returns only when OpenSSL holds no decrypted bytes (SSL_has_pending is false): the
 * loop is level-triggered on the socket, and bytes left inside OpenSSL would not wake it.
 *
 * The factory's SSL_CTX is swapped on reload under a mutex taken once per accepted
 * connection (never per message); each SSL holds its own reference to the context it was
 * made from.
 */
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "net/listener.h"

/* Room added to the input buffer when OpenSSL still holds decrypted bytes (one record). */
#define TLS_RECORD_MAX 16384

struct tls_factory {
    struct transport_factory base;
    pthread_mutex_t lock;
    SSL_CTX *ctx; /* under lock */
    char *certfile, *keyfile, *cafile, *capath, *crlfile;
    char *tls_version, *ciphers, *ciphers_tls13;
    bool require_certificate;
};

struct tls_conn {
    struct transport base;
    SSL *ssl;
    bool is_open;    /* handshake done */
    bool want_write; /* OpenSSL has bytes to send once the socket takes them */
    char *identity;  /* CN of the verified client certificate */
};

static int tls_read(struct transport *tr, int fd, struct buf *in);
static int tls_write(struct transport *tr, int fd, struct buf *out);
static bool tls_pending(const struct transport *tr);
static void tls_free(struct transport *tr);

static const struct transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .free = tls_free,
};

/* ---- errors ---- */

/* The first OpenSSL error queued on this thread, as text; clears the queue. */
static const char *
ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "%s", "unknown");
    ERR_clear_error();
    return buf;
}

static void
log_failure(int fd, const char *what, const char *reason)
{
    static struct log_ratelimit rl;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char peer[64] = "?";

    if (!log_ratelimit(&rl, 10))
        return;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        listener_format_addr(&ss, peer, sizeof(peer));
    log_info("tls %s failed addr=%s reason=%s", what, peer, reason);
}

/* A failed OpenSSL call: 0 when the peer closed the connection, else a negative errno. */
static int
io_error(struct tls_conn *t, int fd, int ssl_err, int saved_errno, const char *what)
{
    char reason[256];

    switch (ssl_err) {
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return 0; /* close_notify */
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            ERR_clear_error();
            /* EOF without close_notify, or a socket error. */
            if (saved_errno == 0)
                return t->is_open ? 0 : (log_failure(fd, what, "peer closed"), 0);
            return -saved_errno;
        }
        break;
    default:
        break;
    }
    log_failure(fd, what, ssl_reason(reason, sizeof(reason)));
    return -EPROTO;
}

/* ---- the transport ---- */

static void
take_identity(struct tls_conn *t)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);

    if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return;
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (idx < 0)
        return;
    ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int len = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
    /* An embedded NUL would let "admin\0.evil" pass for "admin". */
    if (len > 0 && !memchr(utf8, 0, (size_t)len))
        t->identity = xstrndup((const char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
}

/* Drive the handshake. Returns 1 when it is done, -EAGAIN while it needs the peer or the
 * socket, 0 when the peer closed, or a negative errno. */
static int
handshake(struct tls_conn *t, int fd)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->is_open = true;
        t->want_write = false;
        take_identity(t);
        return 1;
    }
    int saved = errno;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        t->want_write = e == SSL_ERROR_WANT_WRITE;
        return -EAGAIN;
    }
    return io_error(t, fd, e, saved, "handshake");
}

static int
tls_read(struct transport *tr, int fd, struct buf *in)
{
    struct tls_conn *t = (struct tls_conn *)tr;
    size_t got = 0;

    if (SSL_get_fd(t->ssl) != fd)
        SSL_set_fd(t->ssl, fd);
    if (!t->is_open) {
        int r = handshake(t, fd);
        if (r != 1)
            return r;
    }
    for (;;) {
        if (in->len == in->cap) {
            if (!SSL_has_pending(t->ssl))
                break;
            if (buf_reserve(in, TLS_RECORD_MAX) != 0)
                return got ? (int)got : -ENOMEM;
        }
        size_t room = in->cap - in->len;
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(t->ssl, in->p + in->len, room > INT_MAX ? INT_MAX : (int)room);
        if (n > 0) {
            in->len += (size_t)n;
            got += (size_t)n;
            if (got > INT_MAX / 2)
                break;
            continue;
        }
        int saved = errno;
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            t->want_write = true; /* a post-handshake message to answer; write() drives it */
            break;
        }
        int rc = io_error(t, fd, e, saved, "read");
        /* Hand over what came before the end; the next call reports the end again. */
        return got ? (int)got : rc;
    }
    return got ? (int)got : -EAGAIN;
}

static int
tls_write(struct transport *tr, int fd, struct buf *out)
{
    struct tls_conn *t = (struct tls_conn *)tr;

    if (SSL_get_fd(t->ssl) != fd)
        SSL_set_fd(t->ssl, fd);
    if (!t->is_open) {
        int r = handshake(t, fd);
        if (r == -EAGAIN)
            return 0;
        if (r != 1)
            return r == 0 ? -EPIPE : r;
    }
    while (out->len > 0) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(t->ssl, out->p, out->len > INT_MAX ? INT_MAX : (int)out->len);
        if (n > 0) {
            buf_consume(out, (size_t)n);
            t->want_write = false;
            continue;
        }
        int saved = errno;
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            t->want_write = e == SSL_ERROR_WANT_WRITE;
            return 0;
        }
        int rc = io_error(t, fd, e, saved, "write");
        return rc == 0 ? -EPIPE : rc;
    }
    if (t->want_write) {
        /* Nothing of ours to send, but OpenSSL has a message of its own under way (a key
         * update answer, session tickets): the state machine finishes it. */
        ERR_clear_error();
        int r = SSL_do_handshake(t->ssl);
        t->want_write = r != 1 && SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
    }
    return 0;
}

static bool
tls_pending(const struct transport *tr)
{
    return ((const struct tls_conn *)tr)->want_write;
}

static void
tls_free(struct transport *tr)
{
    struct tls_conn *t = (struct tls_conn *)tr;

    /* No close_notify: the fd may already be closed (and its number reused) by now. */
    SSL_free(t->ssl);
    free(t->identity);
    free(t);
}

const char *
tls_peer_identity(const struct transport *t)
{
    return tls_is_transport(t) ? ((const struct tls_conn *)t)->identity : NULL;
}

bool
tls_is_transport(const struct transport *t)
{
    return t && t->ops == &tls_ops;
}

/* ---- the factory ---- */

static int __attribute__((format(printf, 3, 4)))
ctx_error(char *err, size_t err_len, const char *fmt, ...)
{
    char msg[256], reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ERR_peek_error())
        snprintf(err, err_len, "%s: %s", msg, ssl_reason(reason, sizeof(reason)));
    else
        snprintf(err, err_len, "%s", msg);
    ERR_clear_error();
    return -1;
}

static int
set_versions(SSL_CTX *ctx, const char *v, char *err, size_t err_len)
{
    int min = TLS1_2_VERSION;

    /* Mosquitto's tls_version names the lowest version a listener accepts. */
    if (v && strcmp(v, "tlsv1.3") == 0)
        min = TLS1_3_VERSION;
    else if (v && strcmp(v, "tlsv1.2") != 0)
        return ctx_error(err, err_len,
                         "tls_version: '%s' is not tlsv1.2 or tlsv1.3 (older "
                         "versions are not supported)",
                         v);
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1)
        return ctx_error(err, err_len, "tls_version: cannot set '%s'", v);
    return 0;
}

static int
load_client_cas(SSL_CTX *ctx, const struct tls_factory *f, char *err, size_t err_len)
{
    if (f->require_certificate && !f->cafile && !f->capath)
        return ctx_error(err, err_len, "require_certificate needs cafile or capath");
    if (!f->cafile && !f->capath)
        return f->crlfile ? ctx_error(err, err_len, "crlfile needs cafile or capath") : 0;
    if (SSL_CTX_load_verify_locations(ctx, f->cafile, f->capath) != 1)
        return ctx_error(err, err_len, "%s '%s'", f->cafile ? "cafile" : "capath",
                         f->cafile ? f->cafile : f->capath);
    if (f->cafile) {
        /* Tell clients which CAs we accept, so they pick the right certificate. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(f->cafile);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (f->crlfile) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lookup || X509_load_crl_file(lookup, f->crlfile, X509_FILETYPE_PEM) < 1)
            return ctx_error(err, err_len, "crlfile '%s'", f->crlfile);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    return 0;
}

static SSL_CTX *
build_ctx(const struct tls_factory *f, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ERR_clear_error();
    if (!ctx) {
        ctx_error(err, err_len, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Needed for session resumption once client certificates are verified. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"petrel", 6);
    if (set_versions(ctx, f->tls_version, err, err_len) != 0)
        goto fail;
    if (f->ciphers && SSL_CTX_set_cipher_list(ctx, f->ciphers) != 1) {
        ctx_error(err, err_len, "ciphers '%s'", f->ciphers);
        goto fail;
    }
    if (f->ciphers_tls13 && SSL_CTX_set_ciphersuites(ctx, f->ciphers_tls13) != 1) {
        ctx_error(err, err_len, "ciphers_tls1.3 '%s'", f->ciphers_tls13);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, f->certfile) != 1) {
        ctx_error(err, err_len, "certfile '%s'", f->certfile);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, f->keyfile, SSL_FILETYPE_PEM) != 1) {
        ctx_error(err, err_len, "keyfile '%s'", f->keyfile);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ctx_error(err, err_len, "keyfile '%s' does not match certfile '%s'", f->keyfile,
                  f->certfile);
        goto fail;
    }
    if (load_client_cas(ctx, f, err, err_len) != 0)
        goto fail;
    SSL_CTX_set_verify(ctx,
                       f->require_certificate ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                              : SSL_VERIFY_NONE,
                       NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static struct transport *
tls_create(struct transport_factory *base, int fd)
{
    struct tls_factory *f = (struct tls_factory *)base;

    pthread_mutex_lock(&f->lock);
    SSL *ssl = SSL_new(f->ctx);
    pthread_mutex_unlock(&f->lock);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    struct tls_conn *t = xcalloc(1, sizeof(*t));
    t->base.ops = &tls_ops;
    t->ssl = ssl;
    return &t->base;
}

static void
tls_factory_free(struct transport_factory *base)
{
    struct tls_factory *f = (struct tls_factory *)base;

    SSL_CTX_free(f->ctx);
    pthread_mutex_destroy(&f->lock);
    free(f->certfile);
    free(f->keyfile);
    free(f->cafile);
    free(f->capath);
    free(f->crlfile);
    free(f->tls_version);
    free(f->ciphers);
    free(f->ciphers_tls13);
    free(f);
}

static char *
dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

int
tls_factory_new(const struct tls_settings *s, struct transport_factory **out, char *err,
                size_t err_len)
{
    if (!s->certfile || !s->keyfile) {
        snprintf(err, err_len, "%s",
                 s->certfile ? "certfile needs keyfile" : "keyfile needs certfile");
        return -1;
    }
    struct tls_factory *f = xcalloc(1, sizeof(*f));
    f->base.create = tls_create;
    f->base.free = tls_factory_free;
    pthread_mutex_init(&f->lock, NULL);
    f->certfile = dup_or_null(s->certfile);
    f->keyfile = dup_or_null(s->keyfile);
    f->cafile = dup_or_null(s->cafile);
    f->capath = dup_or_null(s->capath);
    f->crlfile = dup_or_null(s->crlfile);
    f->tls_version = dup_or_null(s->tls_version);
    f->ciphers = dup_or_null(s->ciphers);
    f->ciphers_tls13 = dup_or_null(s->ciphers_tls13);
    f->require_certificate = s->require_certificate;
    if (!(f->ctx = build_ctx(f, err, err_len))) {
        tls_factory_free(&f->base);
        return -1;
    }
    *out = &f->base;
    return 0;
}

int
tls_factory_reload(struct transport_factory *base, char *err, size_t err_len)
{
    struct tls_factory *f = (struct tls_factory *)base;
    SSL_CTX *ctx = build_ctx(f, err, err_len), *old;

    if (!ctx)
        return -1;
    pthread_mutex_lock(&f->lock);
    old = f->ctx;
    f->ctx = ctx;
    pthread_mutex_unlock(&f->lock);
    SSL_CTX_free(old);
    return 0;
}
