/*
 * test_loop.c - net/loop.c: one iteration at a time (loop_run_once), as the session fuzzer
 * steps the loop, and loop_run stopping from inside a callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/loop.h"

struct probe {
    struct loop *loop;
    struct loop_watch watch;
    int events;
    int afters;
    int ticks;
    bool stop_on_event;
};

static void
on_event(void *ud, uint32_t events)
{
    struct probe *p = ud;
    uint64_t v;

    assert_true(events & EPOLLIN);
    assert_int_equal(read(p->watch.fd, &v, sizeof(v)), sizeof(v));
    p->events++;
    if (p->stop_on_event)
        loop_stop(p->loop);
}

static void
on_after(void *ud)
{
    ((struct probe *)ud)->afters++;
}

static void
on_tick(void *ud)
{
    ((struct probe *)ud)->ticks++;
}

static void
probe_init(struct probe *p)
{
    *p = (struct probe){0};
    assert_int_equal(loop_new(&p->loop), 0);
    p->watch = (struct loop_watch){eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), on_event, p};
    assert_true(p->watch.fd >= 0);
    assert_int_equal(loop_add(p->loop, &p->watch, EPOLLIN), 0);
    loop_set_after(p->loop, on_after, p);
}

static void
probe_fini(struct probe *p)
{
    loop_del(p->loop, &p->watch);
    close(p->watch.fd);
    loop_free(p->loop);
}

static void
poke(struct probe *p)
{
    uint64_t one = 1;
    assert_int_equal(write(p->watch.fd, &one, sizeof(one)), sizeof(one));
}

static void
run_once_dispatches_then_runs_the_after_hook(void **state)
{
    struct probe p;

    probe_init(&p);
    /* Nothing ready: returns at once with no event, the after hook still runs. */
    assert_int_equal(loop_run_once(p.loop, 0), 0);
    assert_int_equal(p.events, 0);
    assert_int_equal(p.afters, 1);
    poke(&p);
    assert_int_equal(loop_run_once(p.loop, 0), 1);
    assert_int_equal(p.events, 1);
    assert_int_equal(p.afters, 2);
    /* The event was consumed: the next iteration finds nothing. */
    assert_int_equal(loop_run_once(p.loop, 0), 0);
    assert_int_equal(p.events, 1);
    probe_fini(&p);
}

static void
run_once_waits_no_longer_than_the_tick(void **state)
{
    struct probe p;

    probe_init(&p);
    loop_set_tick(p.loop, 20, on_tick, &p);
    /* No limit given, nothing ready: the tick due in 20 ms ends the wait. */
    for (int i = 0; i < 10 && p.ticks == 0; i++)
        assert_int_equal(loop_run_once(p.loop, -1), 0);
    assert_int_equal(p.ticks, 1);
    probe_fini(&p);
}

static void
run_returns_after_stop_from_a_callback(void **state)
{
    struct probe p;

    probe_init(&p);
    p.stop_on_event = true;
    poke(&p);
    assert_int_equal(loop_run(p.loop), 0);
    assert_int_equal(p.events, 1);
    assert_int_equal(p.afters, 1);
    probe_fini(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_once_dispatches_then_runs_the_after_hook),
        cmocka_unit_test(run_once_waits_no_longer_than_the_tick),
        cmocka_unit_test(run_returns_after_stop_from_a_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
