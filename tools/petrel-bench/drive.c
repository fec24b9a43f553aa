/*
 * drive.c - one petrel-bench thread: its connections, its epoll loop, its phases.
 *
 * One iteration: wait for events (no longer than the next thing due), read every readable
 * socket to the end (parsing and answering as packets come), let each publisher add what its
 * window and rate allow, then send each connection's queued bytes with one send(). So a
 * connection costs one read and one write per iteration however many messages it carries.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "petrel-bench/hwire.h"
#include "petrel-bench/internal.h"

#define MAX_EVENTS 512

uint64_t
drive_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
drive_error(struct drive *d, const char *fmt, ...)
{
    va_list ap;

    d->out.errors++;
    if (d->out.reason[0])
        return;
    va_start(ap, fmt);
    vsnprintf(d->out.reason, sizeof(d->out.reason), fmt, ap);
    va_end(ap);
}

void
drive_fatal(struct drive *d, const char *fmt, ...)
{
    va_list ap;

    d->out.errors++;
    if (atomic_load(&d->out.fatal))
        return;
    va_start(ap, fmt);
    vsnprintf(d->out.reason, sizeof(d->out.reason), fmt, ap);
    va_end(ap);
    atomic_store_explicit(&d->out.fatal, true, memory_order_release);
}

static struct link *
add_link(struct drive *d, enum link_kind kind, uint32_t idx, int phase)
{
    struct link *l = &d->links[d->n_links++];
    l->fd = -1;
    l->kind = (uint8_t)kind;
    l->idx = idx;
    buf_init(&l->out);
    d->setup[phase][d->n_setup[phase]++] = l;
    return l;
}

struct drive *
drive_new(struct run *r, uint32_t index)
{
    struct drive *d = xcalloc(1, sizeof(*d));
    struct plan *p = r->plan;
    const struct opts *o = r->o;
    uint32_t n = 0, n_pubs = 0;

    d->r = r;
    d->o = o;
    d->plan = p;
    d->index = index;
    d->epfd = -1;
    d->phase = -1;
    d->t_meas = d->t_end = UINT64_MAX;
    hist_init(&d->out.lat);
    hist_init(&d->out.conn_lat);
    hist_init(&d->out.http_lat);

    for (uint32_t i = 0; i < p->n_pubs; i++)
        n_pubs += p->pubs[i].thread == index;
    for (uint32_t j = 0; j < p->n_recvs; j++)
        n += p->recvs[j].thread == index;
    for (uint32_t i = 0; i < p->n_idle; i++)
        n += plan_idle_thread(p, i) == index;
    n += n_pubs + (index == 0 ? p->n_bg : 0);

    d->links = xcalloc(n ? n : 1, sizeof(*d->links));
    for (int ph = 0; ph < 4; ph++)
        d->setup[ph] = xcalloc(n ? n : 1, sizeof(struct link *));
    d->dirty = xcalloc(n ? n : 1, sizeof(struct link *));
    d->again = xcalloc(n ? n : 1, sizeof(struct link *));
    d->pubs = xcalloc(n_pubs ? n_pubs : 1, sizeof(struct pub *));

    if (index == 0)
        for (uint32_t b = 0; b < p->n_bg; b++)
            add_link(d, LK_BG, b, PH_SETUP_BG);
    for (uint32_t j = 0; j < p->n_recvs; j++) {
        if (p->recvs[j].thread != index)
            continue;
        struct link *l = add_link(d, LK_RECV, j, PH_SETUP_RECV);
        l->recv = &p->recvs[j];
        p->recvs[j].link = l;
    }
    for (uint32_t i = 0; i < p->n_pubs; i++) {
        if (p->pubs[i].thread != index)
            continue;
        struct link *l = add_link(d, o->scenario == SCEN_HTTP ? LK_HTTP : LK_PUB, i, PH_SETUP_PUB);
        l->pub = &p->pubs[i];
        p->pubs[i].link = l;
        d->pubs[d->n_pubs++] = &p->pubs[i];
    }
    for (uint32_t i = 0; i < p->n_idle; i++)
        if (plan_idle_thread(p, i) == index)
            add_link(d, LK_IDLE, i, PH_SETUP_IDLE);

    /* Room for the largest packet we expect twice over, so that a leftover partial packet
     * plus a full read always fit. */
    size_t biggest = (size_t)o->size + 2048;
    d->rbuf_cap = 256 * 1024;
    while (d->rbuf_cap < 2 * biggest)
        d->rbuf_cap *= 2;
    d->rbuf = xmalloc(d->rbuf_cap);
    buf_init(&d->scratch);
    d->payload = xmalloc(o->size > HWIRE_PAYLOAD_MAX ? o->size : HWIRE_PAYLOAD_MAX);
    size_t one = 0;
    if (p->n_pubs)
        one = wire_pubtmpl_len(&p->pubs[0].tmpl);
    d->window_msgs = one ? (uint32_t)(o->outstanding / one) : 1;
    if (d->window_msgs == 0)
        d->window_msgs = 1;
    /* http: room for two full pipelines, so that the window never serialises requests */
    uint32_t per = (o->http_batch ? o->http_batch : 1) * o->http_pipeline;
    if (o->scenario == SCEN_HTTP && d->window_msgs < 2 * per)
        d->window_msgs = 2 * per;
    return d;
}

struct drive_out *
drive_out(struct drive *d)
{
    return &d->out;
}

void
drive_free(struct drive *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->n_links; i++)
        link_close(&d->links[i]);
    if (d->epfd >= 0)
        close(d->epfd);
    free(d->links);
    for (int ph = 0; ph < 4; ph++)
        free(d->setup[ph]);
    free(d->dirty);
    free(d->again);
    free(d->pubs);
    free(d->rbuf);
    buf_fini(&d->scratch);
    free(d->payload);
    free(d);
}

/* Start the links of the current set-up phase, --connecting at a time (and at --conn-rate
 * for idle connections). */
static void
start_links(struct drive *d)
{
    int ph = d->phase;
    double rate = ph == PH_SETUP_IDLE ? d->o->conn_rate / d->o->threads : 0;

    while (d->next_setup < d->n_setup[ph] && d->n_connecting < d->o->connecting) {
        if (rate > 0) {
            double allowed = (double)(d->now - d->phase_start) * rate / 1e9 + 1.0;
            if ((double)d->next_setup >= allowed)
                break;
        }
        link_start(d, d->setup[ph][d->next_setup++]);
        if (atomic_load_explicit(&d->out.fatal, memory_order_relaxed))
            return;
    }
}

static void
enter_phase(struct drive *d, int ph)
{
    struct run *r = d->r;

    d->phase = ph;
    d->phase_start = d->now;
    d->next_setup = 0;
    if (ph == PH_RUN) {
        d->t_meas = r->t_meas;
        d->t_end = r->t_end;
        for (uint32_t i = 0; i < d->n_pubs; i++) {
            struct pub *p = d->pubs[i];
            p->next_ns = r->t_run;
            if (d->o->rate > 0) /* stagger the publishers over one period */
                p->next_ns += (uint64_t)(1e9 / d->o->rate * p->id / d->plan->n_pubs);
            p->last_fb_ns = r->t_run;
        }
    }
}

static void
on_event(struct drive *d, struct link *l, uint32_t ev)
{
    if (l->state == LS_CLOSED)
        return;
    if (l->state == LS_TCP) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            link_fail(d, l, "connect: %s", strerror(err));
            return;
        }
        if (l->kind == LK_HTTP) {
            hflow_start(d, l->pub);
            link_ready(d, l);
        } else {
            l->state = LS_CONNACK;
            link_dirty(d, l); /* the CONNECT */
        }
    } else if ((ev & EPOLLOUT) && l->want_write) {
        l->want_write = false;
        link_dirty(d, l);
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        link_read(d, l);
}

/* Keepalive: a connection that sent nothing for half its keepalive sends PINGREQ. */
static void
sweep(struct drive *d)
{
    uint64_t half = (uint64_t)d->o->keepalive * 500000000ull;

    if (!half)
        return;
    for (uint32_t i = 0; i < d->n_links; i++) {
        struct link *l = &d->links[i];
        if (l->state == LS_READY && l->kind != LK_HTTP && d->now - l->last_tx >= half) {
            wire_pingreq(&l->out);
            link_dirty(d, l);
        }
    }
}

static int
wait_ms(struct drive *d)
{
    if (d->more || d->n_again)
        return 0;
    if (d->phase < PH_RUN)
        return 1;
    if (d->phase == PH_RUN && d->now < d->t_end) {
        if (d->blocked)
            return 1;
        if (d->next_due != UINT64_MAX) {
            uint64_t ms = d->next_due > d->now ? (d->next_due - d->now) / 1000000 : 0;
            /* epoll counts milliseconds: sleeping at least 1 ms sends a little late (the
             * rate catches up, the latency is measured from the real send) but never spins */
            return ms < 1 ? 1 : ms > 10 ? 10 : (int)ms;
        }
        return 10;
    }
    if (d->phase == PH_DRAIN && !atomic_load_explicit(&d->out.drained, memory_order_relaxed))
        return 1;
    return 10;
}

static void
stop(struct drive *d)
{
    for (uint32_t i = 0; i < d->n_links; i++) {
        struct link *l = &d->links[i];
        if ((l->state == LS_READY || l->state == LS_SUBACK) && l->kind != LK_HTTP &&
            !l->want_write) {
            wire_disconnect(&l->out);
            link_flush(d, l);
        }
        link_close(l);
    }
}

static void
iterate(struct drive *d, struct epoll_event *evs)
{
    int timeout = wait_ms(d);
    int n = epoll_wait(d->epfd, evs, MAX_EVENTS, timeout);
    if (n < 0 && errno != EINTR) {
        drive_fatal(d, "epoll_wait: %s", strerror(errno));
        return;
    }
    d->now = drive_now();
    d->more = false;
    d->blocked = false;
    d->next_due = UINT64_MAX;
    for (int i = 0; i < n; i++)
        on_event(d, evs[i].data.ptr, evs[i].events);

    /* Links that had more to read than one turn allows. */
    uint32_t n_again = d->n_again;
    d->n_again = 0;
    for (uint32_t i = 0; i < n_again; i++) {
        struct link *l = d->again[i];
        l->read_pending = false;
        if (l->state != LS_CLOSED)
            link_read(d, l);
    }

    if (d->phase >= PH_SETUP_BG && d->phase <= PH_SETUP_IDLE) {
        start_links(d);
    } else if (d->phase == PH_RUN) {
        for (uint32_t i = 0; i < d->n_pubs; i++) {
            if (d->o->scenario == SCEN_HTTP)
                hflow_produce(d, d->pubs[i]);
            else
                flow_produce(d, d->pubs[i]);
        }
    }

    if (d->now >= d->next_sweep) {
        sweep(d);
        d->next_sweep = d->now + 1000000000ull;
    }

    for (uint32_t i = 0; i < d->n_dirty; i++) {
        struct link *l = d->dirty[i];
        l->dirty = false;
        if (l->state != LS_CLOSED && l->state != LS_TCP && !l->want_write)
            link_flush(d, l);
    }
    d->n_dirty = 0;

    if (d->phase == PH_DRAIN || (d->phase == PH_RUN && d->now >= d->t_end)) {
        bool all = true;
        for (uint32_t i = 0; i < d->n_pubs && all; i++)
            all =
                d->o->scenario == SCEN_HTTP ? hflow_drained(d->pubs[i]) : flow_drained(d->pubs[i]);
        atomic_store_explicit(&d->out.drained, all, memory_order_relaxed);
    }
}

static void *
drive_main(void *arg)
{
    struct drive *d = arg;
    struct epoll_event evs[MAX_EVENTS];

    d->now = drive_now();
    d->next_sweep = d->now + 1000000000ull;
    for (;;) {
        int ph = atomic_load_explicit(&d->r->phase, memory_order_acquire);
        if (ph != d->phase) {
            d->now = drive_now();
            enter_phase(d, ph);
        }
        if (ph == PH_STOP)
            break;
        iterate(d, evs);
    }
    stop(d);
    return NULL;
}

int
drive_start(struct drive *d)
{
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (d->epfd < 0)
        return -errno;
    int rc = pthread_create(&d->tid, NULL, drive_main, d);
    return rc ? -rc : 0;
}

void
drive_join(struct drive *d)
{
    pthread_join(d->tid, NULL);
}
