/*
 * mailbox.c - batched cross-thread queues; see mailbox.h.
 */
#include "net/mailbox.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/xalloc.h"

struct mailbox {
    struct loop_watch watch;
    struct loop *loop;
    size_t item_size;
    mailbox_fn *fn;
    void *ud;
    pthread_mutex_t lock;
    unsigned char *items; /* guarded by lock */
    size_t n;
    size_t cap;
    _Atomic size_t pending; /* n, readable without the lock */
    _Atomic bool sleeping;  /* the consumer is (about to be) blocked in its loop's wait */
    bool is_draining;       /* consumer only */
    unsigned char *spare; /* consumer's buffer, swapped with items */
    size_t spare_cap;
};

static void
drain(struct mailbox *mb)
{
    /* Handlers may poll the mailbox again (a handed-off connection's first input): the items
     * of this round are still being handled, so a nested round waits for the next wake-up. */
    if (mb->is_draining)
        return;
    mb->is_draining = true;
    pthread_mutex_lock(&mb->lock);
    unsigned char *items = mb->items;
    size_t n = mb->n, cap = mb->cap;
    mb->items = mb->spare;
    mb->cap = mb->spare_cap;
    mb->n = 0;
    atomic_store_explicit(&mb->pending, 0, memory_order_relaxed);
    pthread_mutex_unlock(&mb->lock);

    if (n)
        mb->fn(mb->ud, items, n);
    mb->spare = items;
    mb->spare_cap = cap;
    mb->is_draining = false;
}

/* The loop's sleep hook. Before blocking, the consumer says it sleeps and then looks for
 * items; a producer appends items and then looks whether the consumer sleeps. With a full
 * fence between the store and the load on each side, at least one of them sees the other's
 * store: either the consumer finds the items and does not block, or the producer wakes it. */
static bool
on_sleep(void *ud, bool sleeping)
{
    struct mailbox *mb = ud;

    if (!sleeping) {
        atomic_store_explicit(&mb->sleeping, false, memory_order_relaxed);
        return true;
    }
    atomic_store_explicit(&mb->sleeping, true, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&mb->pending, memory_order_relaxed)) {
        atomic_store_explicit(&mb->sleeping, false, memory_order_relaxed);
        drain(mb);
        return false;
    }
    return true;
}

static void
on_wake(void *ud, uint32_t events)
{
    struct mailbox *mb = ud;
    uint64_t v;

    if (read(mb->watch.fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    drain(mb);
}

int
mailbox_new(struct loop *loop, size_t item_size, mailbox_fn *fn, void *ud, struct mailbox **out)
{
    struct mailbox *mb = xcalloc(1, sizeof(*mb));
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd < 0) {
        int rc = -errno;
        free(mb);
        return rc;
    }
    mb->watch = (struct loop_watch){fd, on_wake, mb};
    mb->loop = loop;
    mb->item_size = item_size;
    mb->fn = fn;
    mb->ud = ud;
    pthread_mutex_init(&mb->lock, NULL);
    atomic_init(&mb->sleeping, false);
    int rc = loop_add(loop, &mb->watch, EPOLLIN);
    if (rc != 0) {
        close(fd);
        pthread_mutex_destroy(&mb->lock);
        free(mb);
        return rc;
    }
    loop_set_sleep(loop, on_sleep, mb);
    *out = mb;
    return 0;
}

void
mailbox_free(struct mailbox *mb)
{
    if (mb)
        mailbox_free_with(mb, mb->fn, mb->ud);
}

void
mailbox_free_with(struct mailbox *mb, mailbox_fn *dispose, void *ud)
{
    if (!mb)
        return;
    mb->fn = dispose;
    mb->ud = ud;
    drain(mb);
    loop_set_sleep(mb->loop, NULL, NULL);
    loop_del(mb->loop, &mb->watch);
    close(mb->watch.fd);
    pthread_mutex_destroy(&mb->lock);
    free(mb->items);
    free(mb->spare);
    free(mb);
}

void
mailbox_poll(struct mailbox *mb)
{
    if (atomic_load_explicit(&mb->pending, memory_order_acquire))
        drain(mb);
}

void
mailbox_stage_init(struct mailbox_stage *st, struct mailbox *to)
{
    st->to = to;
    st->items = NULL;
    st->n = 0;
    st->cap = 0;
}

void
mailbox_stage_fini(struct mailbox_stage *st)
{
    free(st->items);
    st->items = NULL;
    st->n = st->cap = 0;
}

void *
mailbox_stage_slot(struct mailbox_stage *st)
{
    size_t size = st->to->item_size;

    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->items = xrealloc(st->items, st->cap * size);
    }
    return st->items + size * st->n++;
}

void
mailbox_stage_flush(struct mailbox_stage *st)
{
    struct mailbox *mb = st->to;
    size_t size = mb->item_size;

    if (st->n == 0)
        return;
    pthread_mutex_lock(&mb->lock);
    if (mb->n + st->n > mb->cap) {
        size_t cap = mb->cap ? mb->cap : 64;
        while (cap < mb->n + st->n)
            cap *= 2;
        mb->items = xrealloc(mb->items, cap * size);
        mb->cap = cap;
    }
    memcpy(mb->items + mb->n * size, st->items, st->n * size);
    mb->n += st->n;
    atomic_store_explicit(&mb->pending, mb->n, memory_order_release);
    pthread_mutex_unlock(&mb->lock);
    st->n = 0;
    /* See on_sleep. Only the producer that finds the consumer asleep writes. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&mb->sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&mb->sleeping, false, memory_order_relaxed)) {
        uint64_t one = 1;
        if (write(mb->watch.fd, &one, sizeof(one)) < 0) {
            /* the counter is saturated: the consumer is awake anyway */
        }
    }
}

bool
mailbox_is_sleeping(const struct mailbox *mb)
{
    return atomic_load_explicit(&mb->sleeping, memory_order_relaxed);
}
