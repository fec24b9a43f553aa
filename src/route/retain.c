/*
 * retain.c - retained messages; see retain.h.
 *
 * Matching a new subscription walks every retained topic. That is linear in the store but runs
 * only on SUBSCRIBE, never on the publish path.
 */
#include "route/retain.h"

#include <stdlib.h>

#include "base/xalloc.h"
#include "mqtt/topic.h"

void
retain_init(struct retain *r)
{
    map_init(&r->by_topic);
}

void
retain_fini(struct retain *r)
{
    size_t pos = 0;
    struct msg *m;

    while ((m = map_next(&r->by_topic, &pos)) != NULL)
        msg_unref(m);
    map_fini(&r->by_topic);
}

void
retain_set(struct retain *r, struct msg *m)
{
    struct msg *old;

    if (m->payload.len == 0)
        old = map_del(&r->by_topic, m->topic);
    else
        old = map_put(&r->by_topic, m->topic, msg_ref(m));
    msg_unref(old);
}

void
retain_match(struct retain *r, struct slice filter, void (*fn)(void *ctx, struct msg *m), void *ctx)
{
    size_t pos = 0;
    struct msg *m;

    while ((m = map_next(&r->by_topic, &pos)) != NULL) {
        if (mqtt_topic_match(filter, m->topic))
            fn(ctx, m);
    }
}

size_t
retain_count(const struct retain *r)
{
    return r->by_topic.n;
}

void
retain_expire(struct retain *r, uint64_t now)
{
    size_t pos = 0, n = 0;
    struct msg *m;
    struct msg **dead = NULL;

    while ((m = map_next(&r->by_topic, &pos)) != NULL) {
        if (msg_expired(m, now)) {
            dead = xrealloc(dead, (n + 1) * sizeof(*dead));
            dead[n++] = m;
        }
    }
    for (size_t i = 0; i < n; i++) {
        map_del(&r->by_topic, dead[i]->topic);
        msg_unref(dead[i]);
    }
    free(dead);
}
