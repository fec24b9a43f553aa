/*
 * p2p.c - see p2p.h.
 */
#include "route/p2p.h"

#include <string.h>

#include "mqtt/topic.h"

/* Split "<first>/<second>/<rest>"; false when there are fewer than three parts. */
static bool
split3(struct slice s, struct slice *first, struct slice *second, struct slice *rest)
{
    const uint8_t *a = memchr(s.p, '/', s.len);
    if (!a)
        return false;
    size_t first_len = (size_t)(a - s.p);
    struct slice after = slice_tail(s, first_len + 1);
    const uint8_t *b = memchr(after.p, '/', after.len);
    if (!b)
        return false;
    *first = slice_make(s.p, first_len);
    *second = slice_make(after.p, (size_t)(b - after.p));
    *rest = slice_tail(after, second->len + 1);
    return true;
}

static bool
parent_allowed(const struct p2p_rules *r, struct slice parent)
{
    if (r->n_parents == 0)
        return true;
    for (size_t i = 0; i < r->n_parents; i++) {
        if (slice_eq(parent, slice_cstr(r->parents[i])))
            return true;
    }
    return false;
}

enum p2p_kind
p2p_classify(const struct p2p_rules *r, struct slice topic, struct slice *parent,
             struct slice *target)
{
    struct slice first, second, rest;

    if (!r->enabled || topic.len == 0 || topic.p[0] == '$')
        return P2P_NONE;
    if (!split3(topic, &first, &second, &rest))
        return P2P_NONE;
    if (first.len == 0 || rest.len == 0 || !slice_eq(second, r->keyword))
        return P2P_NONE;
    *parent = first;
    *target = rest;
    return parent_allowed(r, first) ? P2P_DIRECT : P2P_REFUSED;
}

bool
p2p_filter_is_p2p(const struct p2p_rules *r, struct slice filter)
{
    struct slice first, second, rest;

    if (!r->enabled || filter.len == 0 || filter.p[0] == '$')
        return false;
    if (!split3(filter, &first, &second, &rest))
        return false;
    /* A wildcard parent or keyword level never matches a P2P message (the trie is not used for
     * them), so such filters name nobody's P2P topic. */
    return first.len > 0 && rest.len > 0 && !slice_eq(first, SLICE("+")) &&
           !slice_eq(first, SLICE("#")) && slice_eq(second, r->keyword);
}

bool
p2p_filter_allowed(const struct p2p_rules *r, struct slice filter, struct slice own_id)
{
    struct slice first, second, rest;

    if (!p2p_filter_is_p2p(r, filter))
        return true;
    split3(filter, &first, &second, &rest);
    /* The part after the keyword must match the client's own ID as a topic: "<own id>",
     * "+" for a one-level ID, "<first level of id>/#" and the like. */
    return own_id.len > 0 && mqtt_topic_match(rest, own_id);
}
