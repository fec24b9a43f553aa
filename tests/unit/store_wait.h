/*
 * store_wait.h - for the store's unit tests: submit a batch and wait (bounded) for its
 * completion. Included by test_store.c and test_store_commit.c, each a program of its own.
 */
#ifndef PETREL_TESTS_STORE_WAIT_H
#define PETREL_TESTS_STORE_WAIT_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "store/store.h"

struct waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    int rc;
};

static void
on_done(void *ctx, int rc)
{
    struct waiter *w = ctx;

    pthread_mutex_lock(&w->m);
    w->rc = rc;
    w->done = true;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

/* Submit and wait (bounded) for the completion; returns its rc. */
static int
submit_wait(struct store *s, struct store_batch *b)
{
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
    struct timespec until;

    assert_int_equal(store_submit(s, b, on_done, &w), 0);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&w.m);
    while (!w.done)
        if (pthread_cond_timedwait(&w.c, &w.m, &until) == ETIMEDOUT)
            fail_msg("no completion within 60 s");
    pthread_mutex_unlock(&w.m);
    return w.rc;
}

#endif
