/*
 * trie.h - the subscription index: topic filters to subscribers, with '+', '#' and shared
 * subscription groups.
 *
 * A subscriber is an opaque `owner` pointer (a session); the trie never dereferences it.
 * Each (filter, owner) pair exists at most once: inserting it again replaces the options.
 * Shared subscriptions ($share/<group>/<filter>) are stored under the inner filter, per group;
 * matching reports a group once and the caller picks a member with trie_group_next().
 *
 * Not thread-safe: the caller serialises writers and readers (see docs/design.md).
 */
#ifndef PETREL_ROUTE_TRIE_H
#define PETREL_ROUTE_TRIE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/slice.h"

struct sub_opts {
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling;
    uint32_t sub_id;          /* MQTT 5 subscription identifier, 0 for none */
};

struct trie;
struct trie_group;

struct trie *trie_new(void);
void trie_free(struct trie *t);

/* Add or replace the subscription of `owner` (not NULL) to `filter` (possibly "$share/g/f";
 * the trie reads "$share/" as shared whatever the protocol version). Borrows `filter` and
 * copies what it keeps. Returns 1 when it is new, 0 when it replaced the options of the same
 * (filter, owner) pair, -EINVAL when the filter is invalid or owner NULL. */
int trie_insert(struct trie *t, struct slice filter, void *owner, const struct sub_opts *opts);

/* Remove it. Returns 0, or -ENOENT when there was none. Nodes and groups left empty are freed
 * (a trie_group pointer dies with its last member). */
int trie_remove(struct trie *t, struct slice filter, void *owner);

/* Total (filter, owner) pairs stored, shared ones included. */
uint64_t trie_count(const struct trie *t);
/* Nodes in the trie, root included (1 when empty): one per distinct filter prefix. For
 * metrics and for tests that check that removal frees what it no longer needs. */
uint64_t trie_node_count(const struct trie *t);

struct trie_visitor {
    /* Called once per matching non-shared (filter, owner) pair. An owner whose several filters
     * match ("a/+" and "a/#") is reported once per filter: merging them into one delivery with
     * the highest QoS and all subscription ids is the caller's job [MQTT-3.3.5-1 (3.1.1),
     * MQTT-3.3.4-2, MQTT-3.3.4-3 (5.0)]. `opts` is valid until the trie is next modified.
     * May be NULL. */
    void (*on_sub)(void *ctx, void *owner, const struct sub_opts *opts);
    /* Called once per matching shared group (with at least one member); a group is one group
     * name under one inner filter. `g` is valid until the trie is next modified. May be NULL. */
    void (*on_group)(void *ctx, struct trie_group *g);
    void *ctx;
};

/* Visit every subscription whose filter matches `topic` (a valid topic name), with the same
 * rules as mqtt_topic_match(). '$'-topics are not matched by a leading '+' or '#'
 * [MQTT-4.7.2-1]. Never allocates; uses O(1) memory whatever the depth of topic or trie.
 * The visitor must not modify the trie (trie_group_next() is allowed). */
void trie_match(struct trie *t, struct slice topic, const struct trie_visitor *v);

/* Members of a group in round-robin order: each call returns the next member after the one
 * returned last (across calls and messages), wrapping around; members are in subscription
 * order, a new one joins at the end, a removed one leaves the others' order and turns alone.
 * Returns false when empty. *opts is valid until the trie is next modified.
 * A caller that skips unusable members calls it at most trie_group_size() times. */
bool trie_group_next(struct trie_group *g, void **owner, const struct sub_opts **opts);
uint32_t trie_group_size(const struct trie_group *g);
/* The group's name (valid while the group exists). */
struct slice trie_group_name(const struct trie_group *g);

#endif
