/*
 * loop.h - one worker's event loop: epoll readiness callbacks, a periodic tick, and an
 * end-of-iteration hook where batched output is flushed.
 *
 * A loop is used by exactly one thread. Callbacks run on it and may add or remove watches.
 */
#ifndef PETREL_NET_LOOP_H
#define PETREL_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;

typedef void loop_io_fn(void *ud, uint32_t events);
typedef void loop_hook_fn(void *ud);

/* Embedded by the owner of the fd; must stay at the same address while watched. */
struct loop_watch {
    int fd;
    loop_io_fn *fn;
    void *ud;
};

/* Returns 0 or a negative errno. */
int loop_new(struct loop **out);
void loop_free(struct loop *l);

/* Watch w->fd for `events` (EPOLLIN, EPOLLOUT, level-triggered). 0 or negative errno. */
int loop_add(struct loop *l, struct loop_watch *w, uint32_t events);
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);
void loop_del(struct loop *l, struct loop_watch *w);

/* Call `fn` every `interval_ms` (timers, keepalive sweeps). One tick per loop. */
void loop_set_tick(struct loop *l, unsigned interval_ms, loop_hook_fn *fn, void *ud);
/* Call `fn` after every batch of events (flush output, finish closes). */
void loop_set_after(struct loop *l, loop_hook_fn *fn, void *ud);
/* Around every wait that may block: `fn(ud, true)` just before it, which returns false when
 * work has arrived meanwhile (the loop then does not block), and `fn(ud, false)` after it.
 * One per loop (the mailbox's). */
typedef bool loop_sleep_fn(void *ud, bool sleeping);
void loop_set_sleep(struct loop *l, loop_sleep_fn *fn, void *ud);

/* Run until loop_stop(), which ends this run only (a later loop_run runs again). Returns 0 or
 * a negative errno from epoll. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* One iteration: wait at most `timeout_ms` (-1: no limit; the tick shortens it) for events,
 * dispatch them, run the tick when due and the after hook. Returns the number of events or a
 * negative errno. For drivers that step a loop themselves (the session fuzzer). */
int loop_run_once(struct loop *l, int timeout_ms);

#endif
