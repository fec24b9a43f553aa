/*
 * trie.c - the subscription index: one node per filter level.
 *
 *   root ─"sport"─▶ node ─"tennis"─▶ node ─'#'─▶ node      "sport/tennis/#"
 *                     └──────'+'──────▶ node                "sport/+"
 *
 * A node keeps its literal children in a hash table keyed by level, and its '+' and '#'
 * children in two pointers of their own, so a publish costs one lookup per level and node
 * visited, however many siblings there are. Each node holds the plain subscribers of the filter
 * that ends there (an owner-keyed table with the options inline) and its shared groups (a table
 * keyed by group name). A group keeps its members in a list, in subscription order, and a cursor
 * on the next one to serve; an owner-keyed index finds a member for replace and remove.
 *
 * Matching is a depth-first walk without recursion or a stack: a node knows its parent, and the
 * topic offset of a level can be found again by scanning back to the previous '/'. So it needs
 * O(1) memory whatever the depth of the topic or of the trie, and never allocates.
 *
 * Level and group-name hashes are keyed per trie (a random SipHash key), so clients cannot pick
 * names that collide on purpose and turn lookups linear.
 */
#include "route/trie.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/xalloc.h"
#include "mqtt/topic.h"
#include "route/trie_internal.h"

struct node {
    struct node *parent;
    struct node *plus;
    struct node *hash;
    struct ktab children;
    struct subtab subs;
    struct ktab *groups; /* allocated with the first group: most nodes never have one */
    struct key key;      /* as a literal child of `parent`; unused for root, '+' and '#' */
    uint8_t level[];
};

struct member {
    struct member *prev;
    struct member *next;
    struct sub_opts opts;
    struct key key; /* over the bytes of `owner` */
    void *owner;
};

struct trie_group {
    struct ktab index; /* owner -> member */
    struct member *head;
    struct member *tail;
    struct member *cursor; /* the member trie_group_next() returns next */
    uint32_t n;
    struct key key;
    uint8_t name[];
};

static_assert(offsetof(struct node, level) == offsetof(struct node, key) + sizeof(struct key),
              "level bytes follow the key");
static_assert(offsetof(struct trie_group, name) ==
                  offsetof(struct trie_group, key) + sizeof(struct key),
              "name bytes follow the key");
static_assert(offsetof(struct member, owner) == offsetof(struct member, key) + sizeof(struct key),
              "owner bytes follow the key");

struct trie {
    struct node *root;
    uint64_t n_pairs;
    uint64_t n_nodes;
    uint64_t seed[2];
};

/* ---- groups ---- */

static struct trie_group *
group_new(const struct trie *t, struct slice name)
{
    struct trie_group *g = xcalloc(1, sizeof(*g) + name.len);
    memcpy(g->name, name.p, name.len);
    g->key = (struct key){trie_hash_bytes(t->seed, name.p, name.len), (uint32_t)name.len};
    return g;
}

static void
group_free(struct trie_group *g)
{
    struct member *m = g->head;
    while (m) {
        struct member *next = m->next;
        free(m);
        m = next;
    }
    ktab_fini(&g->index);
    free(g);
}

static struct member *
group_find(struct trie_group *g, const void *owner)
{
    struct key *k = ktab_find(&g->index, trie_hash_owner(owner), &owner, sizeof(owner));
    return k ? CONTAINER_OF(k, struct member, key) : NULL;
}

/* Add or replace. A new member joins at the tail, so it waits for the members already in this
 * round; a replaced one keeps its place. Returns 1 when new, 0 when replaced. */
static int
group_put(struct trie_group *g, void *owner, const struct sub_opts *opts)
{
    struct member *m = group_find(g, owner);
    if (m) {
        m->opts = *opts;
        return 0;
    }
    m = xcalloc(1, sizeof(*m));
    m->opts = *opts;
    m->owner = owner;
    m->key = (struct key){trie_hash_owner(owner), sizeof(owner)};
    ktab_add(&g->index, &m->key);
    m->prev = g->tail;
    if (g->tail)
        g->tail->next = m;
    else
        g->head = m;
    g->tail = m;
    if (!g->cursor)
        g->cursor = m;
    g->n++;
    return 1;
}

/* Unlink `m`. If it was due next, its successor is; the others keep their order and turns. */
static void
group_drop(struct trie_group *g, struct member *m)
{
    if (g->cursor == m)
        g->cursor = m->next ? m->next : (g->head != m ? g->head : NULL);
    if (m->prev)
        m->prev->next = m->next;
    else
        g->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        g->tail = m->prev;
    ktab_del(&g->index, &m->key);
    g->n--;
    free(m);
}

bool
trie_group_next(struct trie_group *g, void **owner, const struct sub_opts **opts)
{
    struct member *m = g->cursor;
    if (!m)
        return false;
    g->cursor = m->next ? m->next : g->head;
    *owner = m->owner;
    *opts = &m->opts;
    return true;
}

uint32_t
trie_group_size(const struct trie_group *g)
{
    return g->n;
}

struct slice
trie_group_name(const struct trie_group *g)
{
    return slice_make(g->name, g->key.len);
}

static struct trie_group *
node_group(struct node *n, uint32_t hash, struct slice name)
{
    struct key *k = n->groups ? ktab_find(n->groups, hash, name.p, name.len) : NULL;
    return k ? CONTAINER_OF(k, struct trie_group, key) : NULL;
}

/* ---- nodes ---- */

static struct node *
node_new(struct node *parent, const uint8_t *level, size_t len, uint32_t hash)
{
    struct node *n = xcalloc(1, sizeof(*n) + len);
    if (len)
        memcpy(n->level, level, len);
    n->key = (struct key){hash, (uint32_t)len};
    n->parent = parent;
    return n;
}

static bool
node_is_empty(const struct node *n)
{
    return n->subs.n == 0 && !n->groups && n->children.n == 0 && !n->plus && !n->hash;
}

/* Free a node with its subscribers and groups, not its children. */
static void
node_free(struct node *n)
{
    if (n->groups) {
        struct key **slot = ktab_slots(n->groups);
        for (uint32_t i = 0; i < n->groups->cap; i++) {
            if (slot[i])
                group_free(CONTAINER_OF(slot[i], struct trie_group, key));
        }
        ktab_fini(n->groups);
        free(n->groups);
    }
    ktab_fini(&n->children);
    subtab_fini(&n->subs);
    free(n);
}

/* The node for `filter` (valid, not shared), created with its ancestors when `create`. Returns
 * NULL when it does not exist and !create. */
static struct node *
node_walk(struct trie *t, struct slice filter, bool create)
{
    struct node *n = t->root;
    size_t from = 0;
    for (;;) {
        const uint8_t *start = filter.p + from;
        const uint8_t *slash = memchr(start, '/', filter.len - from);
        size_t len = slash ? (size_t)(slash - start) : filter.len - from;
        struct node **wild = NULL;
        if (len == 1 && start[0] == '+')
            wild = &n->plus;
        else if (len == 1 && start[0] == '#')
            wild = &n->hash;

        struct node *c;
        if (wild) {
            if (!*wild && create) {
                *wild = node_new(n, NULL, 0, 0);
                t->n_nodes++;
            }
            c = *wild;
        } else {
            uint32_t h = trie_hash_bytes(t->seed, start, len);
            struct key *k = ktab_find(&n->children, h, start, len);
            c = k ? CONTAINER_OF(k, struct node, key) : NULL;
            if (!c && create) {
                c = node_new(n, start, len, h);
                ktab_add(&n->children, &c->key);
                t->n_nodes++;
            }
        }
        if (!c || !slash)
            return c;
        n = c;
        from += len + 1;
    }
}

/* Free `n` and then each ancestor that this leaves empty, up to the root (which stays). */
static void
node_prune(struct trie *t, struct node *n)
{
    while (n != t->root && node_is_empty(n)) {
        struct node *p = n->parent;
        if (p->plus == n)
            p->plus = NULL;
        else if (p->hash == n)
            p->hash = NULL;
        else
            ktab_del(&p->children, &n->key);
        node_free(n);
        t->n_nodes--;
        n = p;
    }
}

/* ---- the trie ---- */

struct trie *
trie_new(void)
{
    struct trie *t = xcalloc(1, sizeof(*t));
    hash_key_random(t->seed);
    t->root = node_new(NULL, NULL, 0, 0);
    t->n_nodes = 1;
    return t;
}

void
trie_free(struct trie *t)
{
    if (!t)
        return;
    /* No recursion, as a trie may be tens of thousands of levels deep: nodes wait in a list
     * threaded through `parent`, each putting its children on it before it goes. */
    struct node *todo = t->root;
    todo->parent = NULL;
    while (todo) {
        struct node *n = todo;
        todo = n->parent;
        struct node *wild[2] = {n->plus, n->hash};
        for (int i = 0; i < 2; i++) {
            if (wild[i]) {
                wild[i]->parent = todo;
                todo = wild[i];
            }
        }
        struct key **slot = ktab_slots(&n->children);
        for (uint32_t i = 0; i < n->children.cap; i++) {
            if (slot[i]) {
                struct node *c = CONTAINER_OF(slot[i], struct node, key);
                c->parent = todo;
                todo = c;
            }
        }
        node_free(n);
    }
    free(t);
}

int
trie_insert(struct trie *t, struct slice filter, void *owner, const struct sub_opts *opts)
{
    struct slice group, inner;
    int shared = mqtt_shared_split(filter, &group, &inner);
    if (shared < 0 || (shared == 0 && !mqtt_topic_filter_valid(filter)) || !owner)
        return -EINVAL;

    struct node *n = node_walk(t, shared ? inner : filter, true);
    int rc;
    if (shared) {
        uint32_t h = trie_hash_bytes(t->seed, group.p, group.len);
        struct trie_group *g = node_group(n, h, group);
        if (!g) {
            g = group_new(t, group);
            if (!n->groups)
                n->groups = xcalloc(1, sizeof(*n->groups));
            ktab_add(n->groups, &g->key);
        }
        rc = group_put(g, owner, opts);
    } else {
        rc = subtab_put(&n->subs, owner, opts);
    }
    t->n_pairs += (uint64_t)rc;
    return rc;
}

int
trie_remove(struct trie *t, struct slice filter, void *owner)
{
    struct slice group, inner;
    int shared = mqtt_shared_split(filter, &group, &inner);
    if (shared < 0 || (shared == 0 && !mqtt_topic_filter_valid(filter)))
        return -ENOENT;

    struct node *n = node_walk(t, shared ? inner : filter, false);
    if (!n)
        return -ENOENT;
    if (shared) {
        struct trie_group *g = node_group(n, trie_hash_bytes(t->seed, group.p, group.len), group);
        struct member *m = g ? group_find(g, owner) : NULL;
        if (!m)
            return -ENOENT;
        group_drop(g, m);
        if (g->n == 0) {
            ktab_del(n->groups, &g->key);
            group_free(g);
            if (n->groups->n == 0) {
                free(n->groups);
                n->groups = NULL;
            }
        }
    } else if (subtab_del(&n->subs, owner) != 0) {
        return -ENOENT;
    }
    t->n_pairs--;
    node_prune(t, n);
    return 0;
}

uint64_t
trie_count(const struct trie *t)
{
    return t->n_pairs;
}

uint64_t
trie_node_count(const struct trie *t)
{
    return t->n_nodes;
}

/* Everyone subscribed to the filter ending at `n`. */
static void
visit(struct node *n, const struct trie_visitor *v)
{
    if (v->on_sub) {
        const struct sub *slot = subtab_slots(&n->subs);
        for (uint32_t i = 0; i < n->subs.cap; i++) {
            if (slot[i].owner)
                v->on_sub(v->ctx, slot[i].owner, &slot[i].opts);
        }
    }
    if (v->on_group && n->groups) {
        struct key **slot = ktab_slots(n->groups);
        for (uint32_t i = 0; i < n->groups->cap; i++) {
            if (slot[i])
                v->on_group(v->ctx, CONTAINER_OF(slot[i], struct trie_group, key));
        }
    }
}

/* The start of the topic level that ends just before offset `next` (a '/' or the end + 1). */
static size_t
level_start(struct slice topic, size_t next)
{
    size_t i = next - 1;
    while (i > 0 && topic.p[i - 1] != '/')
        i--;
    return i;
}

void
trie_match(struct trie *t, struct slice topic, const struct trie_visitor *v)
{
    if (topic.len == 0) /* not a valid topic name [MQTT-4.7.3-1] */
        return;
    struct node *root = t->root;
    /* Wildcards at the first level do not see '$' topics [MQTT-4.7.2-1]. */
    bool dollar = topic.p[0] == '$';
    struct node *n = root;
    /* `at`: where the level that n's children match begins; topic.len + 1 once every level
     * is consumed, i.e. when n's own filter matches the whole topic. */
    size_t at = 0;

    for (;;) {
        bool wild_ok = n != root || !dollar;
        if (at > topic.len) {
            visit(n, v);
            if (n->hash) /* "sport/#" matches "sport" [MQTT-4.7.1-2] */
                visit(n->hash, v);
        } else {
            if (n->hash && wild_ok) /* '#' takes this level and all below */
                visit(n->hash, v);
            const uint8_t *start = topic.p + at;
            const uint8_t *slash = memchr(start, '/', topic.len - at);
            size_t len = slash ? (size_t)(slash - start) : topic.len - at;
            struct key *k = n->children.n == 0 ? NULL
                          : ktab_find(&n->children, trie_hash_bytes(t->seed, start, len), start, len);
            struct node *c = k ? CONTAINER_OF(k, struct node, key) : NULL;
            if (!c && wild_ok)
                c = n->plus;
            if (c) {
                n = c;
                at += len + 1;
                continue;
            }
        }
        /* Climb until an ancestor has a '+' branch not yet taken: one reached from its
         * literal child. */
        for (;;) {
            if (n == root)
                return;
            struct node *child = n;
            size_t child_at = at;
            n = n->parent;
            at = level_start(topic, child_at);
            if (child != n->plus && n->plus && (n != root || !dollar)) {
                n = n->plus;
                at = child_at;
                break;
            }
        }
    }
}
