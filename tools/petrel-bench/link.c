/*
 * link.c - one petrel-bench connection's socket: non-blocking connect, edge-triggered reads
 * into the thread's big read buffer (several packets parsed per read), and one send per loop
 * iteration of everything queued for it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "petrel-bench/internal.h"
#include "petrel-bench/xport.h"

void
link_client_id(const struct drive *d, const struct link *l, char *buf, size_t len)
{
    static const char kinds[] = {'p', 's', 'b', 'c', 'h'};
    snprintf(buf, len, "%s-%c%u", d->o->client_prefix, kinds[l->kind], l->idx);
}

void
link_dirty(struct drive *d, struct link *l)
{
    if (!l->dirty) {
        l->dirty = true;
        d->dirty[d->n_dirty++] = l;
    }
}

void
link_close(struct link *l)
{
    if (l->state == LS_CLOSED)
        return;
    if (l->x)
        xport_free(l);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    l->state = LS_CLOSED;
    buf_fini(&l->out);
    free(l->part);
    l->part = NULL;
    l->part_len = l->part_cap = 0;
}

void
link_fail(struct drive *d, struct link *l, const char *why, ...)
{
    char msg[200];
    va_list ap;

    if (l->state == LS_CLOSED)
        return;
    va_start(ap, why);
    vsnprintf(msg, sizeof(msg), why, ap);
    va_end(ap);

    bool in_setup = l->state < LS_READY;
    char id[256];
    link_client_id(d, l, id, sizeof(id));
    link_close(l);
    if (d->phase == PH_STOP)
        return;
    if (in_setup)
        d->n_connecting--;
    if (l->kind == LK_IDLE && in_setup) {
        /* conn scenario: a failed connection is a result, not the end of the run */
        atomic_fetch_add(&d->out.n_failed, 1);
        d->out.t_last_connack = d->now;
        if (!d->out.reason[0])
            snprintf(d->out.reason, sizeof(d->out.reason), "%.60s: %.180s", id, msg);
        return;
    }
    if (in_setup || d->phase < PH_RUN) {
        drive_fatal(d, "%s: %s", id, msg);
        return;
    }
    d->out.dropped++;
    drive_error(d, "%s: %s", id, msg);
}

void
link_start(struct drive *d, struct link *l)
{
    const struct run *r = d->r;
    int one = 1;
    char id[256];

    l->t_start = d->now;
    if (!d->out.t_first_connect)
        d->out.t_first_connect = d->now;
    d->n_connecting++;
    l->state = LS_TCP;
    l->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        link_fail(d, l, "socket: %s", strerror(errno));
        return;
    }
    setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bool http = l->kind == LK_HTTP;
    if (connect(l->fd, (const struct sockaddr *)(http ? &r->http_addr : &r->addr),
                http ? r->http_addr_len : r->addr_len) != 0 &&
        errno != EINPROGRESS) {
        link_fail(d, l, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = l};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, l->fd, &ev) != 0) {
        link_fail(d, l, "epoll_ctl: %s", strerror(errno));
        return;
    }
    if (d->o->tls || d->o->ws) {
        char why[200];
        if (xport_new(d, l, why, sizeof(why)) != 0) {
            link_fail(d, l, "%s", why);
            return;
        }
    }
    if (http)
        return; /* nothing to say before the first request */
    link_client_id(d, l, id, sizeof(id));
    /* The broker's Receive Maximum matters only to publishers; receivers take what comes. */
    wire_connect_session(&l->out, d->o->version, slice_cstr(id), d->o->keepalive, 0,
                         d->o->persistent, 300);
    /* Sent when the socket reports writable (the TCP handshake is done). */
}

void
link_ready(struct drive *d, struct link *l)
{
    l->state = LS_READY;
    d->n_connecting--;
    atomic_fetch_add(&d->out.n_ready, 1);
    if (l->kind == LK_IDLE) {
        d->out.n_connected++;
        d->out.t_last_connack = d->now;
    }
}

void
link_flush(struct drive *d, struct link *l)
{
    if (l->x) {
        xport_flush(d, l);
        return;
    }
    while (l->out.len) {
        ssize_t n = send(l->fd, l->out.p, l->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                l->want_write = true;
                return;
            }
            link_fail(d, l, "send: %s", strerror(errno));
            return;
        }
        l->last_tx = d->now;
        if ((size_t)n < l->out.len) {
            /* The socket buffer is full; EPOLLOUT (edge) tells when it drains. */
            buf_consume(&l->out, (size_t)n);
            l->want_write = true;
            return;
        }
        l->out.len = 0;
    }
}

/* Parse the complete packets in rbuf[0..total); returns the bytes used. */
static size_t
parse(struct drive *d, struct link *l, size_t total)
{
    size_t pos = 0;

    while (pos < total && l->state != LS_CLOSED) {
        uint8_t type, flags;
        uint32_t rem;
        size_t hl;
        int rc =
            wire_fixed_header(slice_make(d->rbuf + pos, total - pos), &type, &flags, &rem, &hl);
        if (rc == 0)
            break;
        if (rc < 0) {
            link_fail(d, l, "malformed packet from the broker");
            break;
        }
        if (hl + rem > d->rbuf_cap / 2) {
            link_fail(d, l, "packet of %zu bytes from the broker is too large", hl + rem);
            break;
        }
        if (total - pos < hl + rem)
            break;
        proto_packet(d, l, type, flags, slice_make(d->rbuf + pos + hl, rem));
        pos += hl + rem;
    }
    return pos;
}

void
link_read(struct drive *d, struct link *l)
{
    if (l->x) {
        xport_read(d, l);
        return;
    }
    for (int i = 0; i < READS_PER_WAKE; i++) {
        size_t have = l->part_len;
        if (have)
            memcpy(d->rbuf, l->part, have);
        size_t room = d->rbuf_cap - have;
        ssize_t n = recv(l->fd, d->rbuf + have, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                link_fail(d, l, "recv: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            link_fail(d, l, "connection closed by the broker");
            return;
        }
        d->now = drive_now(); /* the arrival time of everything in this read */
        size_t total = have + (size_t)n;
        size_t used = l->kind == LK_HTTP ? hflow_input(d, l, d->rbuf, total) : parse(d, l, total);
        if (l->state == LS_CLOSED)
            return;
        size_t left = total - used;
        if (left > l->part_cap) {
            uint8_t *p = realloc(l->part, left);
            if (!p)
                abort();
            l->part = p;
            l->part_cap = (uint32_t)left;
        }
        if (left)
            memmove(l->part, d->rbuf + used, left);
        l->part_len = (uint32_t)left;
        /* A short read emptied the socket; with edge triggering the next arrival wakes us. */
        if ((size_t)n < room)
            return;
    }
    link_read_later(d, l);
}

void
link_read_later(struct drive *d, struct link *l)
{
    if (!l->read_pending) {
        l->read_pending = true;
        d->again[d->n_again++] = l;
    }
}

/* Like link_read()'s loop over bytes already read: part + p go through d->rbuf in chunks. */
void
link_deliver(struct drive *d, struct link *l, const uint8_t *p, size_t n)
{
    size_t have = l->part_len;

    if (have)
        memcpy(d->rbuf, l->part, have);
    while (n) {
        size_t take = d->rbuf_cap - have < n ? d->rbuf_cap - have : n;
        memcpy(d->rbuf + have, p, take);
        p += take;
        n -= take;
        size_t total = have + take;
        size_t used = parse(d, l, total);
        if (l->state == LS_CLOSED)
            return;
        have = total - used;
        if (have && used)
            memmove(d->rbuf, d->rbuf + used, have);
    }
    if (have > l->part_cap) {
        uint8_t *q = realloc(l->part, have);
        if (!q)
            abort();
        l->part = q;
        l->part_cap = (uint32_t)have;
    }
    if (have)
        memcpy(l->part, d->rbuf, have);
    l->part_len = (uint32_t)have;
}
