/*
 * ws.c - MQTT over WebSocket (RFC 6455), server side; see ws.h.
 *
 *   HANDSHAKE --GET <path> with a valid upgrade--> OPEN --close frame, either way--> CLOSING
 *       |  (101 Switching Protocols)                 |
 *       +--bad request: 400/404/426/431, then end    +--bad frame: close 1002/1003/1009, then end
 *
 * Reading: raw bytes (from the socket, or from the inner transport) collect in `rx`. During the
 * handshake they are an HTTP request head, parsed once its blank line has arrived (so a request
 * may come in any number of pieces) and bounded by WS_HEAD_MAX. Once open they are frames: the
 * payload of binary and continuation frames is unmasked straight into the connection's input
 * as it arrives, so an MQTT packet may span frames in any split and a frame need not be whole
 * before its bytes are used. Control frames (at most 125 bytes) are acted on when whole.
 *
 * Writing: our own bytes (the HTTP answer, pongs, the close frame) wait in `tx`, always whole.
 * Application output becomes one unmasked binary frame per write batch. Over the plain socket
 * the frame header and the connection's output go out together with writev, uncopied; a frame
 * cut short by a full socket is finished before anything else is sent. Over an inner transport
 * the frame is built in `tx` (the inner transport copies anyway).
 *
 * When the connection above ends (MQTT has its own DISCONNECT), ws_closing sends a close
 * frame with 1000 after the last data, and the socket closes without waiting for the answer.
 * A close frame from the client is answered with the same status code, then the connection
 * ends [RFC 6455 5.5.1]. No extension is negotiated, so RSV bits must be zero.
 */
#include "net/ws.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "base/buf.h"
#include "base/log.h"
#include "net/listener.h"
#include "net/ws_http.h"

#define WS_PATH_DEFAULT "/mqtt"
/* Largest request head (request line and headers); beyond it the answer is 431. */
#define WS_HEAD_MAX 8192
/* Bytes asked of the socket per read. */
#define WS_READ_CHUNK (64 * 1024)
/* Raw bytes one read call consumes when they carry no MQTT bytes (pings, a slow handshake)
 * before it yields to other connections. */
#define WS_READ_BUDGET (1024 * 1024)
/* Idle connections give back receive buffers larger than this. */
#define WS_IDLE_KEEP 4096
/* Over an inner transport: the largest frame built at once, so that output waiting for the
 * socket stays visible to the connection (slow-consumer limits count it there). */
#define WS_WRAP_MAX (1024 * 1024)

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa,
};

/* Close status codes we send [RFC 6455 7.4.1] */
enum ws_status {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_TOO_BIG = 1009,
};

enum ws_state {
    WS_HANDSHAKE = 0,
    WS_OPEN,
    WS_CLOSING, /* a close frame or an HTTP error is queued: no more data either way */
};

struct ws_factory {
    struct transport_factory base;
    char *path;
    uint64_t max_message;
    struct transport_factory *inner;
};

struct ws {
    struct transport base;
    const struct ws_factory *f; /* outlives its transports */
    struct transport *inner;    /* NULL: the socket itself */
    enum ws_state state;
    int err;                    /* sticky: returned by read once delivered bytes are out */
    bool peer_closed;           /* close frame received, or end of stream */
    struct buf rx;              /* raw input not yet parsed */
    size_t head_scan;           /* where to resume looking for the end of the request head */
    /* the data frame being received */
    bool in_frame;
    bool frame_fin;
    uint64_t frame_left;        /* payload bytes still to come */
    uint64_t frame_off;         /* payload bytes seen (the mask position) */
    uint8_t mask[4];
    bool in_message;            /* a fragmented message awaits continuation frames */
    uint64_t message_len;
    /* the latest ping not yet answered [RFC 6455 5.5.3] */
    bool has_pong;
    uint8_t pong_len;
    uint8_t pong[125];
    /* output */
    struct buf tx;              /* own bytes, whole frames, in order */
    uint8_t hdr[10];            /* plain socket: header of the data frame being sent */
    uint8_t hdr_len, hdr_off;
    size_t frame_out;           /* its payload bytes still at the front of the output */
};

static struct log_ratelimit refuse_rl;

/* ------------------------------------------------------------------ small helpers */

static size_t
frame_header(uint8_t *h, enum ws_opcode op, uint64_t len)
{
    h[0] = (uint8_t)(0x80 | op); /* FIN, no RSV; the server never masks [RFC 6455 5.1] */
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

/* XOR `len` bytes with the key, starting at payload offset `off` [RFC 6455 5.3]. */
static void
unmask(uint8_t *p, size_t len, const uint8_t key[4], uint64_t off)
{
    uint8_t k[8];
    uint64_t k64;
    size_t i = 0;

    for (int j = 0; j < 8; j++)
        k[j] = key[(off + (uint64_t)j) & 3];
    memcpy(&k64, k, 8);
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k64;
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++)
        p[i] ^= k[i & 3];
}

/* A rule was broken: queue a close frame saying which, and end the connection. */
static void
fail_close(struct ws *w, enum ws_status status, const char *why)
{
    uint8_t f[2 + 125];
    size_t why_len = strlen(why);

    if (why_len > 123)
        why_len = 123;
    /* A close ends the conversation: an unanswered ping no longer matters. */
    w->has_pong = false;
    size_t n = frame_header(f, WS_OP_CLOSE, 2 + why_len);
    f[n++] = (uint8_t)(status >> 8);
    f[n++] = (uint8_t)status;
    memcpy(f + n, why, why_len);
    if (buf_append(&w->tx, f, n + why_len) != 0 && !w->err)
        w->err = -ENOMEM;
    w->state = WS_CLOSING;
    if (!w->err)
        w->err = -EPROTO;
    if (log_ratelimit(&refuse_rl, 10))
        log_info("websocket closed status=%d reason=%s", (int)status, why);
}

/* ------------------------------------------------------------------ handshake */

static void
log_refusal(int fd, int status, const char *why)
{
    struct sockaddr_storage sa;
    socklen_t sa_len = sizeof(sa);
    char peer[64] = "?";

    if (!log_ratelimit(&refuse_rl, 10))
        return;
    if (getpeername(fd, (struct sockaddr *)&sa, &sa_len) == 0)
        listener_format_addr(&sa, peer, sizeof(peer));
    log_info("websocket refused addr=%s status=%d reason=%s", peer, status, why);
}

/* Look for the end of the request head in rx; answer it when complete. */
static void
handshake(struct ws *w, int fd)
{
    size_t from = w->head_scan > 3 ? w->head_scan - 3 : 0;
    const uint8_t *end = memmem(w->rx.p + from, w->rx.len - from, "\r\n\r\n", 4);
    struct ws_upgrade u = {431, "request head too large", NULL, ""};

    if (!end && w->rx.len <= WS_HEAD_MAX) {
        w->head_scan = w->rx.len;
        return;
    }
    size_t head_len = end ? (size_t)(end - w->rx.p) + 4 : w->rx.len;
    if (head_len <= WS_HEAD_MAX)
        ws_http_parse((const char *)w->rx.p, head_len, w->f->path, &u);
    if (ws_http_answer(&u, &w->tx) != 0) {
        w->err = -ENOMEM;
        return;
    }
    if (u.status != 101) {
        log_refusal(fd, u.status, u.why);
        w->state = WS_CLOSING;
        w->err = -EPROTO;
        return;
    }
    /* Bytes after the head are frames (a client should wait for our answer, but may not). */
    buf_consume(&w->rx, head_len);
    w->state = WS_OPEN;
}

/* ------------------------------------------------------------------ frames in */

static void
control_frame(struct ws *w, enum ws_opcode op, uint8_t *payload, size_t len)
{
    if (op == WS_OP_PING) {
        w->has_pong = true;
        w->pong_len = (uint8_t)len;
        memcpy(w->pong, payload, len);
        return;
    }
    if (op == WS_OP_PONG)
        return; /* unsolicited pongs are allowed and ignored [RFC 6455 5.5.3] */
    /* close [RFC 6455 5.5.1]: echo the status code, if any */
    if (len == 1) {
        fail_close(w, WS_CLOSE_PROTOCOL, "close payload of one byte");
        return;
    }
    unsigned code = len >= 2 ? (unsigned)payload[0] << 8 | payload[1] : 0;
    bool valid = len == 0 || (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                 (code >= 3000 && code <= 4999); /* [RFC 6455 7.4] */
    if (!valid) {
        fail_close(w, WS_CLOSE_PROTOCOL, "invalid close status");
        return;
    }
    w->has_pong = false;
    uint8_t f[4];
    size_t n = frame_header(f, WS_OP_CLOSE, code ? 2 : 0);
    if (code) {
        f[n++] = (uint8_t)(code >> 8);
        f[n++] = (uint8_t)code;
    }
    if (buf_append(&w->tx, f, n) != 0)
        w->err = -ENOMEM;
    w->state = WS_CLOSING;
    w->peer_closed = true;
}

/* Check a new frame's first two bytes; false (close queued) when they break a rule. */
static bool
frame_start_ok(struct ws *w, uint8_t b0, uint8_t b1)
{
    unsigned op = b0 & 0x0f;
    bool fin = b0 & 0x80;

    if (b0 & 0x70) {
        fail_close(w, WS_CLOSE_PROTOCOL, "reserved bits set");
        return false;
    }
    if (!(b1 & 0x80)) {
        fail_close(w, WS_CLOSE_PROTOCOL, "client frame not masked"); /* [RFC 6455 5.1] */
        return false;
    }
    if (op >= 0x8) {
        if (op > WS_OP_PONG) {
            fail_close(w, WS_CLOSE_PROTOCOL, "reserved opcode");
            return false;
        }
        if (!fin || (b1 & 0x7f) > 125) {
            fail_close(w, WS_CLOSE_PROTOCOL, "fragmented or long control frame");
            return false;
        }
        return true;
    }
    if (op == WS_OP_TEXT) {
        fail_close(w, WS_CLOSE_UNSUPPORTED, "text frames are not MQTT");
        return false;
    }
    if (op != WS_OP_CONT && op != WS_OP_BINARY) {
        fail_close(w, WS_CLOSE_PROTOCOL, "reserved opcode");
        return false;
    }
    if (op == WS_OP_CONT && !w->in_message) {
        fail_close(w, WS_CLOSE_PROTOCOL, "continuation without a message");
        return false;
    }
    if (op == WS_OP_BINARY && w->in_message) {
        fail_close(w, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        return false;
    }
    return true;
}

/* Parse frames in rx[*pos..), appending data payload to `in`. Stops at an incomplete header or
 * control frame, an error, or a close. */
static void
parse_frames(struct ws *w, struct buf *in, size_t *pos)
{
    while (*pos < w->rx.len && w->state == WS_OPEN && !w->err) {
        uint8_t *p = w->rx.p + *pos;
        size_t avail = w->rx.len - *pos;
        if (!w->in_frame) {
            if (avail < 2 || !frame_start_ok(w, p[0], p[1]))
                return;
            size_t hlen = 2 + ((p[1] & 0x7f) == 126 ? 2 : (p[1] & 0x7f) == 127 ? 8 : 0) + 4;
            if (avail < hlen)
                return;
            uint64_t len = p[1] & 0x7f;
            if (len == 126) {
                len = (uint64_t)p[2] << 8 | p[3];
            } else if (len == 127) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = len << 8 | p[2 + i];
                if (len >> 63) {
                    fail_close(w, WS_CLOSE_PROTOCOL, "frame length out of range");
                    return;
                }
            }
            unsigned op = p[0] & 0x0f;
            if (op >= 0x8) {
                if (avail < hlen + len)
                    return; /* control frames are acted on whole */
                unmask(p + hlen, (size_t)len, p + hlen - 4, 0);
                control_frame(w, (enum ws_opcode)op, p + hlen, (size_t)len);
                *pos += hlen + (size_t)len;
                continue;
            }
            if (len > w->f->max_message - w->message_len) {
                fail_close(w, WS_CLOSE_TOO_BIG, "message too big");
                return;
            }
            memcpy(w->mask, p + hlen - 4, 4);
            w->in_frame = true;
            w->frame_fin = p[0] & 0x80;
            w->frame_left = len;
            w->frame_off = 0;
            w->message_len += len;
            w->in_message = !w->frame_fin;
            *pos += hlen;
            avail -= hlen;
            p += hlen;
        }
        size_t take = w->frame_left < avail ? (size_t)w->frame_left : avail;
        if (take) {
            size_t at = in->len;
            if (buf_append(in, p, take) != 0) {
                w->err = -ENOMEM;
                return;
            }
            unmask(in->p + at, take, w->mask, w->frame_off);
            w->frame_left -= take;
            w->frame_off += take;
            *pos += take;
        }
        if (w->frame_left == 0) {
            w->in_frame = false;
            if (w->frame_fin)
                w->message_len = 0;
        }
    }
}

/* ------------------------------------------------------------------ transport ops */

/* Raw bytes into rx: > 0, 0 at the end of the stream, -EAGAIN, or another -errno. */
static int
lower_read(struct ws *w, int fd)
{
    if (buf_reserve(&w->rx, WS_READ_CHUNK) != 0)
        return -ENOMEM;
    if (w->inner)
        return w->inner->ops->read(w->inner, fd, &w->rx);
    for (;;) {
        ssize_t n = recv(fd, w->rx.p + w->rx.len, w->rx.cap - w->rx.len, 0);
        if (n >= 0) {
            w->rx.len += (size_t)n;
            return (int)n;
        }
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* Before ending on an error, read what the peer already sent: closing a socket with unread
 * input resets it, and the peer might then never see our answer. */
static void
drain(struct ws *w, int fd)
{
    uint8_t scratch[4096];

    for (int i = 0; i < 16 && !w->inner; i++) {
        if (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0)
            return;
    }
}

static int
ws_read(struct transport *t, int fd, struct buf *in)
{
    struct ws *w = (struct ws *)t;
    size_t before = in->len, budget = WS_READ_BUDGET;

    while (!w->err && !w->peer_closed && w->state != WS_CLOSING) {
        size_t pos = 0;
        if (w->state == WS_HANDSHAKE && w->rx.len > 0)
            handshake(w, fd);
        if (w->state == WS_OPEN) {
            parse_frames(w, in, &pos);
            buf_consume(&w->rx, pos);
        }
        if (in->len > before || w->err || w->state == WS_CLOSING)
            break;
        if (budget == 0)
            break; /* level-triggered: the loop calls again for the rest */
        int n = lower_read(w, fd);
        if (n == 0) {
            w->peer_closed = true;
        } else if (n == -EAGAIN) {
            break;
        } else if (n < 0) {
            w->err = n;
        } else {
            budget -= (size_t)n < budget ? (size_t)n : budget;
        }
    }
    if (w->rx.len == 0)
        buf_shrink(&w->rx, WS_IDLE_KEEP);
    if (in->len > before)
        return (int)(in->len - before);
    if (w->err) {
        drain(w, fd);
        return w->err;
    }
    if (w->peer_closed || w->state == WS_CLOSING)
        return 0;
    return -EAGAIN;
}

/* The pending pong joins tx (only ever between whole frames). */
static int
put_pong(struct ws *w)
{
    uint8_t f[2 + 125];

    if (!w->has_pong)
        return 0;
    size_t n = frame_header(f, WS_OP_PONG, w->pong_len);
    memcpy(f + n, w->pong, w->pong_len);
    if (buf_append(&w->tx, f, n + w->pong_len) != 0)
        return -ENOMEM;
    w->has_pong = false;
    return 0;
}

/* Send from a buffer to the socket. Returns 0 (all sent, or the socket is full) or -errno. */
static int
send_buf(int fd, struct buf *b)
{
    while (b->len > 0) {
        ssize_t n = send(fd, b->p, b->len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        buf_consume(b, (size_t)n);
    }
    return 0;
}

static int
write_plain(struct ws *w, int fd, struct buf *out)
{
    for (;;) {
        if (w->hdr_off < w->hdr_len || w->frame_out > 0) {
            /* finish the data frame under way: header rest, then its payload */
            struct iovec iov[2] = {{w->hdr + w->hdr_off, (size_t)(w->hdr_len - w->hdr_off)},
                                   {out->p, w->frame_out}};
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
            ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
            }
            size_t h = (size_t)n < iov[0].iov_len ? (size_t)n : iov[0].iov_len;
            w->hdr_off = (uint8_t)(w->hdr_off + h);
            buf_consume(out, (size_t)n - h);
            w->frame_out -= (size_t)n - h;
            continue;
        }
        int rc = put_pong(w);
        if (rc != 0)
            return rc;
        if (w->tx.len > 0) {
            if ((rc = send_buf(fd, &w->tx)) != 0 || w->tx.len > 0)
                return rc;
        }
        if (w->state != WS_OPEN)
            buf_consume(out, out->len); /* nothing follows a close, or precedes the upgrade */
        if (out->len == 0)
            return 0;
        w->frame_out = out->len;
        w->hdr_len = (uint8_t)frame_header(w->hdr, WS_OP_BINARY, out->len);
        w->hdr_off = 0;
    }
}

static int
write_inner(struct ws *w, int fd, struct buf *out)
{
    for (;;) {
        int rc = put_pong(w);
        if (rc != 0)
            return rc;
        if (w->state != WS_OPEN)
            buf_consume(out, out->len);
        if (w->tx.len == 0 && out->len > 0) {
            size_t n = out->len < WS_WRAP_MAX ? out->len : WS_WRAP_MAX;
            uint8_t h[10];
            size_t h_len = frame_header(h, WS_OP_BINARY, n);
            if (buf_reserve(&w->tx, h_len + n) != 0)
                return -ENOMEM;
            buf_append(&w->tx, h, h_len);
            buf_append(&w->tx, out->p, n);
            buf_consume(out, n);
        }
        /* Called even with nothing of ours: the inner transport may have bytes of its own. */
        if ((rc = w->inner->ops->write(w->inner, fd, &w->tx)) != 0)
            return rc;
        if (w->tx.len > 0 || out->len == 0)
            return 0;
    }
}

static int
ws_write(struct transport *t, int fd, struct buf *out)
{
    struct ws *w = (struct ws *)t;
    int rc = w->inner ? write_inner(w, fd, out) : write_plain(w, fd, out);

    if (w->tx.len == 0)
        buf_shrink(&w->tx, WS_IDLE_KEEP);
    return rc;
}

static bool
ws_pending(const struct transport *t)
{
    const struct ws *w = (const struct ws *)t;

    return w->tx.len > 0 || w->has_pong || w->hdr_off < w->hdr_len ||
           (w->inner && w->inner->ops->pending(w->inner));
}

static void
ws_free(struct transport *t)
{
    struct ws *w = (struct ws *)t;

    if (w->inner)
        w->inner->ops->free(w->inner);
    buf_fini(&w->rx);
    buf_fini(&w->tx);
    free(w);
}

/* The broker ends the connection (a DISCONNECT was sent, a takeover, a shutdown): the rest of
 * `out` becomes one more frame, then a close frame with 1000 "normal closure" follows, so that
 * a browser sees a clean close rather than 1006 [RFC 6455 7.1.2]. The bytes of a frame under
 * way stay in `out`, ahead of both. */
static void
ws_closing(struct transport *t, struct buf *out)
{
    struct ws *w = (struct ws *)t;
    static const uint8_t close_frame[] = {0x80 | WS_OP_CLOSE, 2, WS_CLOSE_NORMAL >> 8,
                                          WS_CLOSE_NORMAL & 0xff};
    size_t keep = w->inner ? 0 : w->frame_out;

    if (w->state != WS_OPEN || w->peer_closed || w->err)
        return;
    if (out->len > keep) {
        uint8_t h[10];
        size_t n = out->len - keep;
        size_t h_len = frame_header(h, WS_OP_BINARY, n);
        if (buf_reserve(&w->tx, h_len + n + sizeof(close_frame)) != 0)
            return;
        buf_append(&w->tx, h, h_len);
        buf_append(&w->tx, out->p + keep, n);
        out->len = keep;
    }
    if (buf_append(&w->tx, close_frame, sizeof(close_frame)) != 0)
        return;
    w->state = WS_CLOSING;
}

static const struct transport_ops ws_ops = {"ws", ws_read, ws_write, ws_pending, ws_free,
                                            ws_closing};
static const struct transport_ops wss_ops = {"wss", ws_read, ws_write, ws_pending, ws_free,
                                             ws_closing};

struct transport *
ws_inner(const struct transport *t)
{
    if (!t || (t->ops != &ws_ops && t->ops != &wss_ops))
        return NULL;
    return ((const struct ws *)t)->inner;
}

/* ------------------------------------------------------------------ factory */

static struct transport *
factory_create(struct transport_factory *tf, int fd)
{
    struct ws_factory *f = (struct ws_factory *)tf;
    struct transport *inner = NULL;

    if (f->inner && !(inner = f->inner->create(f->inner, fd)))
        return NULL;
    struct ws *w = calloc(1, sizeof(*w));
    if (!w) {
        if (inner)
            inner->ops->free(inner);
        return NULL;
    }
    w->base.ops = inner ? &wss_ops : &ws_ops;
    w->f = f;
    w->inner = inner;
    buf_init(&w->rx);
    buf_init(&w->tx);
    return &w->base;
}

static void
factory_free(struct transport_factory *tf)
{
    struct ws_factory *f = (struct ws_factory *)tf;

    if (f->inner)
        f->inner->free(f->inner);
    free(f->path);
    free(f);
}

struct transport_factory *
ws_factory_new(const char *path, uint32_t max_packet_size, struct transport_factory *inner)
{
    struct ws_factory *f = calloc(1, sizeof(*f));

    if (f)
        f->path = strdup(path ? path : WS_PATH_DEFAULT);
    if (!f || !f->path) {
        free(f);
        if (inner)
            inner->free(inner);
        return NULL;
    }
    f->base.create = factory_create;
    f->base.free = factory_free;
    f->inner = inner;
    if (max_packet_size == 0)
        f->max_message = WS_MESSAGE_MAX_DEFAULT;
    else
        f->max_message = max_packet_size < WS_MESSAGE_MAX_FLOOR ? WS_MESSAGE_MAX_FLOOR
                                                                : max_packet_size;
    return &f->base;
}
