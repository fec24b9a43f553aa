/*
 * loop.c - epoll event loop; see loop.h.
 */
#include "net/loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/xalloc.h"

#define LOOP_MAX_EVENTS 256

struct loop {
    int epfd;
    bool stopping;
    unsigned tick_ms;
    uint64_t next_tick;
    loop_hook_fn *tick_fn;
    void *tick_ud;
    loop_hook_fn *after_fn;
    void *after_ud;
    loop_sleep_fn *sleep_fn;
    void *sleep_ud;
};

int
loop_new(struct loop **out)
{
    struct loop *l = xcalloc(1, sizeof(*l));

    if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        int rc = -errno;
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void
loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l);
}

static int
ctl(struct loop *l, int op, struct loop_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};

    return epoll_ctl(l->epfd, op, w->fd, &ev) == 0 ? 0 : -errno;
}

int
loop_add(struct loop *l, struct loop_watch *w, uint32_t events)
{
    return ctl(l, EPOLL_CTL_ADD, w, events);
}

int
loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
    return ctl(l, EPOLL_CTL_MOD, w, events);
}

void
loop_del(struct loop *l, struct loop_watch *w)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

void
loop_set_tick(struct loop *l, unsigned interval_ms, loop_hook_fn *fn, void *ud)
{
    l->tick_ms = interval_ms;
    l->tick_fn = fn;
    l->tick_ud = ud;
    l->next_tick = clock_now_ms() + interval_ms;
}

void
loop_set_after(struct loop *l, loop_hook_fn *fn, void *ud)
{
    l->after_fn = fn;
    l->after_ud = ud;
}

void
loop_set_sleep(struct loop *l, loop_sleep_fn *fn, void *ud)
{
    l->sleep_fn = fn;
    l->sleep_ud = ud;
}

void
loop_stop(struct loop *l)
{
    l->stopping = true;
}

int
loop_run_once(struct loop *l, int timeout_ms)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    int timeout = timeout_ms;

    if (l->tick_fn) {
        uint64_t now = clock_now_ms();
        int until_tick = now >= l->next_tick ? 0 : (int)(l->next_tick - now);
        if (timeout < 0 || until_tick < timeout)
            timeout = until_tick;
    }
    /* Told before it may sleep, so that others wake it only when it does (loop_set_sleep);
     * when it must not sleep after all, it only polls. */
    bool sleeping = timeout != 0 && l->sleep_fn;
    if (sleeping && !l->sleep_fn(l->sleep_ud, true)) {
        timeout = 0;
        sleeping = false;
    }
    int n = epoll_wait(l->epfd, events, LOOP_MAX_EVENTS, timeout);
    if (sleeping)
        l->sleep_fn(l->sleep_ud, false);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct loop_watch *w = events[i].data.ptr;
        w->fn(w->ud, events[i].events);
    }
    if (l->tick_fn) {
        uint64_t now = clock_now_ms();
        if (now >= l->next_tick) {
            l->next_tick = now + l->tick_ms;
            l->tick_fn(l->tick_ud);
        }
    }
    if (l->after_fn)
        l->after_fn(l->after_ud);
    return n;
}

int
loop_run(struct loop *l)
{
    while (!l->stopping) {
        int rc = loop_run_once(l, -1);
        if (rc < 0)
            return rc;
    }
    l->stopping = false; /* a stop ends this run only: tests run a loop in steps */
    return 0;
}
