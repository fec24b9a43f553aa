/*
 * retain.h - the retained message store: at most one message per topic name, in a tree of
 * topic levels, so matching a filter costs what it matches rather than the whole store.
 *
 * Not thread-safe: callers hold hub_shared.retained_lock around every call.
 */
#ifndef PETREL_ROUTE_RETAIN_H
#define PETREL_ROUTE_RETAIN_H

#include <stddef.h>
#include <stdint.h>

#include "route/msg.h"

struct retain_node;
struct retain_exp;
struct retain_frame;

struct retain {
    struct retain_node *root;    /* the level before the first; never holds a message */
    size_t n;                    /* retained messages */
    size_t n_nodes;              /* tree nodes besides the root: one per stored topic level */
    /* The messages that expire, as a binary min-heap on expiry_at (retain_expire). */
    struct retain_exp *heap;
    uint32_t n_heap;
    uint32_t heap_cap;
    /* retain_match's work stack, kept between calls (small unless filters are deep). */
    struct retain_frame *stack;
    size_t stack_cap;
};

void retain_init(struct retain *r);
void retain_fini(struct retain *r);

/* Store `m` as the retained message of its topic (takes a new reference), or delete the
 * topic's retained message when the payload is empty (3.1.1 [MQTT-3.3.1-10]). Costs one step
 * per topic level, plus O(log e) when e messages with an expiry are stored. */
void retain_set(struct retain *r, struct msg *m);

/* Call fn for each retained message whose topic matches `filter` [MQTT-3.8.4-4] (a valid,
 * non-shared filter). Visits only the tree nodes the filter can reach: an exact filter costs one
 * step per level, '+' the children of its level, '#' its subtree. Messages are passed borrowed
 * (fn takes its own reference to keep one); fn must not change `r`. Expired messages not yet
 * swept are passed too (delivery checks expiry). */
void retain_match(struct retain *r, struct slice filter, void (*fn)(void *ctx, struct msg *m),
                  void *ctx);

size_t retain_count(const struct retain *r);

/* Nodes in the tree besides the root (each level of each stored topic, shared prefixes once):
 * what the store costs beyond its messages, and 0 once every message is gone. */
size_t retain_node_count(const struct retain *r);

/* Drop retained messages whose expiry passed at `now` (monotonic ms). Costs O(k log e) for k
 * expired among e messages with an expiry: the rest of the store is not visited. */
void retain_expire(struct retain *r, uint64_t now);

#endif
