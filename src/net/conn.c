/*
 * conn.c - buffered non-blocking connections; see conn.h.
 */
#include "net/conn.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"

/* Bytes read per read() call, and per readiness event before yielding to other clients. */
#define CONN_READ_CHUNK (64 * 1024)
#define CONN_READ_BUDGET (1024 * 1024)
/* Idle connections give back input buffers larger than this. */
#define CONN_IDLE_KEEP 4096
/* Empty output buffers up to this size are freed after each write, and larger ones kept until
 * the next trim up to CONN_OUT_KEEP. */
#define CONN_OUT_SMALL 1024
#define CONN_OUT_KEEP (64 * 1024)

/* Output bytes owned elsewhere, written in place between the bytes of conn->out: it goes out
 * after out.p[0..at) and before out.p[at..). */
struct out_ref {
    size_t at;
    const uint8_t *p;
    size_t len;
    void (*release)(void *arg);
    void *arg;
};

/* iovecs per writev call */
#define CONN_IOV 64

struct conn {
    struct loop_watch watch;
    struct conn_pool *pool;
    struct list link;        /* in pool->all */
    struct list dirty_link;  /* in pool->dirty while output waits for the flush */
    struct list close_link;  /* in pool->closing once closed */
    const struct conn_ops *ops;
    void *ud;
    struct transport *transport; /* NULL: plain TCP */
    struct buf in;
    struct buf out;
    struct out_ref *refs;    /* in output order; the first may be partly sent */
    uint32_t n_refs;
    uint32_t cap_refs;
    size_t ref_bytes;        /* bytes of refs not yet sent */
    uint64_t sent;           /* bytes written to the socket (or transport) so far */
    bool is_closing;
    bool is_released;        /* handed to another worker: keep the fd open */
    bool want_out;           /* EPOLLOUT armed */
    bool held;               /* conn_hold: nothing is written until released */
    bool close_flushed;      /* conn_close_flushed: close once the output is empty */
    /* "[IPv6]:port" takes at most 53 characters. With these sizes the struct takes 248
     * bytes, one 256-byte block of the allocator (idle connections, docs/design.md). */
    char peer[56];
};

void
conn_pool_init(struct conn_pool *p, struct loop *loop, bool nodelay)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->nodelay = nodelay;
    list_init(&p->all);
    list_init(&p->dirty);
    list_init(&p->closing);
}

static void conn_on_event(void *ud, uint32_t events);

struct conn *
conn_new(struct conn_pool *p, int fd, struct transport *t, const char *peer,
         const struct conn_ops *ops, void *ud)
{
    struct conn *c = xcalloc(1, sizeof(*c));

    if (p->nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->watch = (struct loop_watch){fd, conn_on_event, c};
    c->pool = p;
    c->ops = ops;
    c->ud = ud;
    c->transport = t;
    buf_init(&c->in);
    buf_init(&c->out);
    list_init(&c->dirty_link);
    list_init(&c->close_link);
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    if (loop_add(p->loop, &c->watch, EPOLLIN | EPOLLRDHUP) != 0) {
        if (t)
            t->ops->free(t);
        close(fd);
        free(c);
        return NULL;
    }
    list_push(&p->all, &c->link);
    p->n_conns++;
    return c;
}

void
conn_set_handler(struct conn *c, const struct conn_ops *ops, void *ud)
{
    c->ops = ops;
    c->ud = ud;
}

struct buf *
conn_in(struct conn *c)
{
    return &c->in;
}

struct buf *
conn_out(struct conn *c)
{
    return &c->out;
}

size_t
conn_out_pending(const struct conn *c)
{
    return c->out.len + c->ref_bytes;
}

int
conn_write_ref(struct conn *c, const void *p, size_t len, void (*release)(void *), void *arg)
{
    int rc = 0;

    if (c->transport) {
        rc = buf_append(&c->out, p, len);
        release(arg);
        return rc;
    }
    if (c->n_refs == c->cap_refs) {
        uint32_t cap = c->cap_refs ? c->cap_refs * 2 : 16;
        struct out_ref *r = realloc(c->refs, cap * sizeof(*r));
        if (!r) {
            release(arg);
            return -ENOMEM;
        }
        c->refs = r;
        c->cap_refs = cap;
    }
    c->refs[c->n_refs++] = (struct out_ref){c->out.len, p, len, release, arg};
    c->ref_bytes += len;
    return 0;
}

static void
release_refs(struct conn *c)
{
    for (size_t i = 0; i < c->n_refs; i++)
        c->refs[i].release(c->refs[i].arg);
    free(c->refs);
    c->refs = NULL;
    c->n_refs = c->cap_refs = 0;
    c->ref_bytes = 0;
}

/* Drop `n` sent bytes from the front of the logical output (buffer and refs interleaved). */
static void
consume_out(struct conn *c, size_t n)
{
    size_t from_buf = 0, pos = 0, done = 0;

    while (n > 0 && done < c->n_refs) {
        struct out_ref *r = &c->refs[done];
        size_t gap = r->at - pos;
        if (n < gap) {
            from_buf += n;
            pos += n;
            n = 0;
            break;
        }
        from_buf += gap;
        pos = r->at;
        n -= gap;
        if (n < r->len) {
            r->p += n;
            r->len -= n;
            c->ref_bytes -= n;
            n = 0;
            break;
        }
        n -= r->len;
        c->ref_bytes -= r->len;
        r->release(r->arg);
        done++;
    }
    from_buf += n;
    if (done) {
        memmove(c->refs, c->refs + done, (c->n_refs - done) * sizeof(*c->refs));
        c->n_refs -= done;
    }
    for (size_t i = 0; i < c->n_refs; i++)
        c->refs[i].at -= from_buf;
    buf_consume(&c->out, from_buf);
}

/* writev over the buffer and the refs. Returns bytes written, or -errno (-EAGAIN). */
static ssize_t
send_vectored(struct conn *c)
{
    struct iovec iov[CONN_IOV];
    int n_iov = 0;
    size_t pos = 0, i = 0;

    for (; i < c->n_refs && n_iov < CONN_IOV - 1; i++) {
        struct out_ref *r = &c->refs[i];
        if (r->at > pos)
            iov[n_iov++] = (struct iovec){c->out.p + pos, r->at - pos};
        iov[n_iov++] = (struct iovec){(void *)r->p, r->len};
        pos = r->at;
    }
    /* The buffer's tail follows only once every ref before it is in this call. */
    if (i == c->n_refs && n_iov < CONN_IOV && c->out.len > pos)
        iov[n_iov++] = (struct iovec){c->out.p + pos, c->out.len - pos};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
    for (;;) {
        ssize_t n = sendmsg(c->watch.fd, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

uint64_t
conn_bytes_acked(const struct conn *c)
{
    int outq = 0;

    /* What the kernel still holds for the peer, sent or not, is not there yet. */
    if (ioctl(c->watch.fd, SIOCOUTQ, &outq) != 0 || outq < 0)
        outq = 0;
    return (uint64_t)outq < c->sent ? c->sent - (uint64_t)outq : 0;
}

bool
conn_is_blocked(const struct conn *c)
{
    return c->want_out;
}

bool
conn_is_closing(const struct conn *c)
{
    return c->is_closing;
}

const char *
conn_peer(const struct conn *c)
{
    return c->peer;
}

void
conn_hold(struct conn *c, bool hold)
{
    c->held = hold;
    if (!hold && (c->out.len > 0 || c->n_refs > 0))
        conn_wrote(c);
}

void
conn_wrote(struct conn *c)
{
    if (!c->held && !c->is_closing && list_empty(&c->dirty_link))
        list_push(&c->pool->dirty, &c->dirty_link);
}

int
conn_fd(const struct conn *c)
{
    return c->watch.fd;
}

struct transport *
conn_transport(const struct conn *c)
{
    return c->transport;
}

void
conn_release(struct conn *c)
{
    /* Out of this loop at once: the new owner may watch the fd as soon as it hears of it. */
    loop_del(c->pool->loop, &c->watch);
    c->is_released = true;
    conn_close(c);
}

void
conn_close(struct conn *c)
{
    if (c->is_closing)
        return;
    c->is_closing = true;
    list_remove(&c->dirty_link);
    list_push(&c->pool->closing, &c->close_link);
}

void
conn_close_flushed(struct conn *c)
{
    c->close_flushed = true;
    if (!c->is_closing && list_empty(&c->dirty_link))
        list_push(&c->pool->dirty, &c->dirty_link); /* the flush closes it once empty */
}

/* Send through the transport, or straight to the socket. 0 or a negative errno. */
static int
send_out(struct conn *c)
{
    if (c->transport) {
        size_t before = c->out.len;
        int rc = c->transport->ops->write(c->transport, c->watch.fd, &c->out);
        c->pool->bytes_out += before - c->out.len;
        c->sent += before - c->out.len;
        return rc;
    }
    while (c->out.len > 0 || c->n_refs > 0) {
        ssize_t n;
        if (c->n_refs == 0) {
            n = send(c->watch.fd, c->out.p, c->out.len, MSG_NOSIGNAL);
            if (n < 0)
                n = errno == EINTR ? 0 : errno == EWOULDBLOCK ? -EAGAIN : -errno;
        } else {
            n = send_vectored(c);
        }
        if (n == -EAGAIN)
            break;
        if (n < 0)
            return (int)n;
        c->pool->bytes_out += (uint64_t)n;
        c->sent += (uint64_t)n;
        if (c->n_refs == 0)
            buf_consume(&c->out, (size_t)n);
        else
            consume_out(c, (size_t)n);
    }
    return 0;
}

/* Write as much of the output as the socket takes. Returns 0, or -1 when the socket failed. */
static int
flush(struct conn *c)
{
    if (c->held) {
        if (c->want_out && !c->is_closing) {
            c->want_out = false; /* no EPOLLOUT wake-ups while nothing may be written */
            loop_mod(c->pool->loop, &c->watch, EPOLLIN | EPOLLRDHUP);
        }
        return 0;
    }
    if (send_out(c) != 0)
        return -1;
    bool want = c->out.len > 0 || c->n_refs > 0 ||
                (c->transport && c->transport->ops->pending(c->transport));
    if (want != c->want_out && !c->is_closing) {
        c->want_out = want;
        loop_mod(c->pool->loop, &c->watch, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0));
    }
    /* An empty small output buffer goes back at once: an idle connection then holds none from
     * its CONNACK on, the next connection's reply reuses the same block, and a busy one gets a
     * block of that size back cheaply from the allocator's per-thread cache. A larger buffer
     * shows a busy connection: it is kept (no regrowing it at every write) up to
     * CONN_OUT_KEEP, until the next conn_pool_trim. */
    if (c->out.len == 0 && c->n_refs == 0 &&
        (c->out.cap <= CONN_OUT_SMALL || c->out.cap > CONN_OUT_KEEP))
        buf_fini(&c->out);
    if (c->close_flushed && !want)
        conn_close(c);
    return 0;
}

/* Append what can be read now to c->in: > 0 bytes, 0 at the peer's end, -EAGAIN, -errno. */
static ssize_t
recv_in(struct conn *c)
{
    if (c->transport) {
        int n = c->transport->ops->read(c->transport, c->watch.fd, &c->in);
        /* A handshake may have produced bytes to send. */
        if (c->transport->ops->pending(c->transport) && list_empty(&c->dirty_link))
            list_push(&c->pool->dirty, &c->dirty_link);
        return n;
    }
    for (;;) {
        ssize_t n = recv(c->watch.fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
        if (n >= 0) {
            c->in.len += (size_t)n;
            return n;
        }
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* After reading: a connection whose input was all consumed hands its read buffer to the pool
 * (one per worker, so reading does not allocate and free 64 KiB per event) or frees it.
 * Otherwise it keeps at most CONN_IDLE_KEEP bytes of input buffer unless a larger packet is
 * arriving: a client dribbling a packet a byte at a time holds 4 KiB, not the 64 KiB reserved
 * for each read. */
static void
keep_input(struct conn *c)
{
    struct conn_pool *p = c->pool;

    if (c->in.len == 0 && p->spare.cap == 0 && c->in.cap >= CONN_READ_CHUNK) {
        p->spare = c->in;
        buf_init(&c->in);
        return;
    }
    /* Empty: the next read needs CONN_READ_CHUNK anyway. */
    buf_fit(&c->in, c->in.len ? CONN_IDLE_KEEP : 0);
}

static void
read_input(struct conn *c)
{
    size_t budget = CONN_READ_BUDGET;

    if (c->in.cap == 0 && c->pool->spare.cap) {
        c->in = c->pool->spare;
        buf_init(&c->pool->spare);
    }
    while (!c->is_closing && budget > 0) {
        if (buf_reserve(&c->in, CONN_READ_CHUNK) != 0) {
            conn_close(c);
            return;
        }
        size_t before = c->in.len;
        ssize_t n = recv_in(c);
        if (n == 0) {
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (n != -EAGAIN)
                conn_close(c);
            return;
        }
        c->pool->bytes_in += c->in.len - before;
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
        c->ops->on_input(c->ud, c);
        if (!c->transport && (size_t)n < CONN_READ_CHUNK)
            break; /* a short read: the socket is drained */
    }
    keep_input(c);
}

static void
conn_on_event(void *ud, uint32_t events)
{
    struct conn *c = ud;

    if (c->is_closing)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        read_input(c);
    if (!c->is_closing && (events & EPOLLOUT) && flush(c) != 0)
        conn_close(c);
}

static void
finish_close(struct conn *c)
{
    struct conn_pool *p = c->pool;

    list_remove(&c->close_link);
    if (c->ops && c->ops->on_close)
        c->ops->on_close(c->ud, c);
    /* Last words (a DISCONNECT or a refusing CONNACK) go out if the socket takes them now,
     * with the transport's own (a WebSocket close frame); held output is never sent. */
    c->want_out = false;
    if (!c->is_released) {
        loop_del(p->loop, &c->watch);
        if (c->transport && c->transport->ops->closing && !c->held)
            c->transport->ops->closing(c->transport, &c->out);
        flush(c);
        close(c->watch.fd);
    }
    if (c->transport && !c->is_released)
        c->transport->ops->free(c->transport);
    list_remove(&c->link);
    list_remove(&c->dirty_link);
    p->n_conns--;
    release_refs(c);
    buf_fini(&c->in);
    buf_fini(&c->out);
    free(c);
}

void
conn_pool_after(void *pool)
{
    struct conn_pool *p = pool;
    struct list *pos;

    /* on_close may close or write to other connections, so loop until both lists settle. */
    while (!list_empty(&p->dirty) || !list_empty(&p->closing)) {
        while ((pos = list_first(&p->dirty)) != NULL) {
            struct conn *c = list_entry(pos, struct conn, dirty_link);
            list_remove(pos);
            if (flush(c) != 0)
                conn_close(c);
        }
        while ((pos = list_first(&p->closing)) != NULL)
            finish_close(list_entry(pos, struct conn, close_link));
    }
}

void
conn_pool_trim(struct conn_pool *p)
{
    struct list *pos;

    list_for_each(pos, &p->all)
    {
        struct conn *c = list_entry(pos, struct conn, link);
        if (c->out.len == 0 && c->n_refs == 0 && c->out.cap)
            buf_fini(&c->out);
    }
}

void
conn_pool_fini(struct conn_pool *p)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &p->all)
    {
        conn_close(list_entry(pos, struct conn, link));
    }
    conn_pool_after(p);
    buf_fini(&p->spare);
}

int
conn_push_input(struct conn *c, const void *p, size_t len)
{
    int rc = buf_append(&c->in, p, len);

    if (rc != 0)
        return rc;
    c->ops->on_input(c->ud, c);
    keep_input(c);
    return 0;
}
