/*
 * retain.h - the retained message store: at most one message per topic name.
 */
#ifndef PETREL_ROUTE_RETAIN_H
#define PETREL_ROUTE_RETAIN_H

#include <stddef.h>

#include "base/map.h"
#include "route/msg.h"

struct retain {
    struct map by_topic; /* topic -> struct msg (key points into the message) */
};

void retain_init(struct retain *r);
void retain_fini(struct retain *r);

/* Store `m` as the retained message of its topic (takes a new reference), or delete the
 * topic's retained message when the payload is empty (3.1.1 [MQTT-3.3.1-10]). */
void retain_set(struct retain *r, struct msg *m);

/* Call fn for each retained message whose topic matches `filter` [MQTT-3.8.4-4]. */
void retain_match(struct retain *r, struct slice filter, void (*fn)(void *ctx, struct msg *m),
                  void *ctx);

size_t retain_count(const struct retain *r);

/* Drop retained messages whose expiry passed (called from the periodic sweep). */
void retain_expire(struct retain *r, uint64_t now);

#endif
