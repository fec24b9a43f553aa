/*
 * mailbox.h - the only way work crosses between worker threads.
 *
 * Each worker has one inbox. A producer stages fixed-size items for a target in a private
 * buffer (no lock) and flushes the stage once per loop iteration: one mutex hold to append the
 * batch, and one eventfd write to wake the consumer only if it is asleep (blocked, or about to
 * block, in its loop's wait): a busy consumer finds the items when it next looks, with no
 * system call on either side. The consumer swaps the whole inbox out under the lock and handles
 * the items on its own loop. Items from one producer arrive in the order it staged them.
 */
#ifndef PETREL_NET_MAILBOX_H
#define PETREL_NET_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "net/loop.h"

struct mailbox;

/* Handle `n` items (each `item_size` bytes) on the consumer's thread. */
typedef void mailbox_fn(void *ud, void *items, size_t n);

/* Create an inbox served by `loop`. Returns 0 or a negative errno. */
int mailbox_new(struct loop *loop, size_t item_size, mailbox_fn *fn, void *ud, struct mailbox **out);
/* Free it; items still inside are handed to `fn` first so they can release what they own. */
void mailbox_free(struct mailbox *mb);
/* Free it, handing items still inside to `dispose` instead (the consumer has stopped). */
void mailbox_free_with(struct mailbox *mb, mailbox_fn *dispose, void *ud);

/* On the consumer's thread: handle whatever has arrived, now, without waiting for the loop to
 * report the wake-up. Cheap (one atomic load) when nothing is waiting. Used to keep causality:
 * work posted by another thread before it wrote to a socket is applied before this thread acts
 * on what it reads from that socket. */
void mailbox_poll(struct mailbox *mb);

/* A producer's staging buffer towards one mailbox. Used by one thread. */
struct mailbox_stage {
    struct mailbox *to;
    unsigned char *items;
    size_t n;
    size_t cap;
};

void mailbox_stage_init(struct mailbox_stage *st, struct mailbox *to);
void mailbox_stage_fini(struct mailbox_stage *st);
/* Room for one more item at the end of the stage; the caller fills all of it. */
void *mailbox_stage_slot(struct mailbox_stage *st);
/* Move the staged items into the mailbox and wake its consumer. Cheap when empty. */
void mailbox_stage_flush(struct mailbox_stage *st);
/* Whether the consumer is asleep: a producer may then flush at once rather than at the end of
 * its iteration, so the wake-up overlaps the rest of the producer's work. */
bool mailbox_is_sleeping(const struct mailbox *mb);

#endif
