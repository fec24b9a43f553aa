/*
 * p2p.h - recognising point-to-point topics: "<parent>/<keyword>/<client id>".
 *
 * A topic is P2P when its first level (the parent) is non-empty and does not start with '$',
 * and its second level is exactly the keyword ("p2p" by default). Everything after
 * "<parent>/<keyword>/" is the target client ID, verbatim: it may contain '/'.
 * See docs/design.md, "Point-to-point".
 */
#ifndef PETREL_ROUTE_P2P_H
#define PETREL_ROUTE_P2P_H

#include <stdbool.h>
#include <stddef.h>

#include "base/slice.h"

struct p2p_rules {
    bool enabled;
    struct slice keyword;
    char **parents;          /* borrowed; allowed parent topics, none: any */
    size_t n_parents;
};

enum p2p_kind {
    P2P_NONE = 0,            /* an ordinary topic */
    P2P_DIRECT,              /* a P2P topic: route to the target client */
    P2P_REFUSED,             /* P2P shaped, but its parent is not an allowed one */
};

/* Classify a (valid) topic name. For P2P_DIRECT and P2P_REFUSED, *target is the client ID part
 * (never empty) and *parent the first level. */
enum p2p_kind p2p_classify(const struct p2p_rules *r, struct slice topic, struct slice *parent,
                           struct slice *target);

/* Is `filter` (valid, not shared) of P2P shape: a literal parent not starting with '$', the
 * keyword as second level, then at least one more character? Only such filters take part in
 * P2P delivery (a receiver's own P2P subscription); wildcard filters like "#" never do. */
bool p2p_filter_is_p2p(const struct p2p_rules *r, struct slice filter);

/* May a client with ID `own_id` subscribe to `filter` (valid, not shared)? A filter of P2P
 * shape (a literal parent, then the keyword) is allowed only when it matches the client's own
 * P2P topic ("<parent>/p2p/<own id>", "<parent>/p2p/<first level of id>/#", ...): one that
 * names only other clients' P2P topics is refused. Other filters are allowed. */
bool p2p_filter_allowed(const struct p2p_rules *r, struct slice filter, struct slice own_id);

#endif
