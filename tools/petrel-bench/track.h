/*
 * track.h - what one receiver got from one publisher: the stream (publisher, receiver).
 *
 * Every sequence number received sets a bit, so duplicates are exact however late they come,
 * and losses are counted at the end as the sequence numbers below the publisher's last one
 * that never arrived. The bitmap grows by doubling (amortised, never per message) and costs
 * one bit per message sent.
 */
#ifndef PETREL_BENCH_TRACK_H
#define PETREL_BENCH_TRACK_H

#include <stddef.h>
#include <stdint.h>

struct track {
    uint64_t *bits;    /* bit s set: sequence s received */
    uint32_t cap;      /* sequence numbers the bitmap covers (a multiple of 64) */
    uint32_t hi;       /* highest sequence received + 1; 0 when none */
    uint64_t n_unique; /* distinct sequence numbers received */
    uint64_t n_dup;    /* receptions of a sequence number already received */
    uint64_t n_ooo;    /* new sequence numbers that arrived after a higher one */
};

void track_init(struct track *t);
void track_fini(struct track *t);

/* Count one reception of `seq`. Returns 1 when it is new, 0 for a duplicate. */
int track_add(struct track *t, uint32_t seq);

/* Whether `seq` was received. */
int track_has(const struct track *t, uint32_t seq);

/* Sequence numbers in [0, n_sent) neither received nor listed in `exempt` (messages the
 * publisher may legitimately not have had delivered: not yet acknowledged, or refused).
 * `exempt` holds distinct values; those >= n_sent are ignored. */
uint64_t track_missing(const struct track *t, uint32_t n_sent, const uint32_t *exempt,
                       size_t n_exempt);

/* Add the sequence numbers received by `from` to `into` (which gets the union; its n_dup and
 * n_ooo are left alone, its n_unique becomes the union's size). For a shared subscription,
 * whose members each get part of one publisher's stream. */
void track_union(struct track *into, const struct track *from);

#endif
