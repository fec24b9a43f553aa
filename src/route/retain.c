/*
 * retain.c - retained messages in a tree of topic levels; see retain.h.
 *
 *   root ─"dev"─▶ node ─"4242"─▶ node ─"state"─▶ node [msg]      "dev/4242/state"
 *                   └──"7"────▶ node ─"state"─▶ node [msg]       "dev/7/state"
 *
 * Every level is a node, empty levels too ("a//b", "/a"); a node holds the retained message of
 * the topic that ends there, if any. A node without a message and without children is pruned at
 * once, so the tree never holds more nodes than the levels of its stored topics.
 *
 * Children: most nodes have one (the "state" under each device) and a few have very many (the
 * devices under "dev"), so a node keeps one pointer, a small array searched linearly up to
 * RETAIN_FEW, or a base/map keyed by level (the key borrows the child's level bytes).
 *
 * Matching walks the filter level by level with an explicit stack (no recursion: a topic may
 * have 32 767 levels): a literal level follows one child, '+' visits every child of its level,
 * '#' the whole subtree including the node of the parent level [MQTT-4.7.1-2]. Wildcards at the
 * first level skip topics starting with '$' [MQTT-4.7.2-1].
 *
 * Expiry: the nodes whose message has an expiry sit in a binary min-heap on expiry_at, and each
 * such node knows its heap position. Replacing or deleting a message updates or removes its
 * entry in O(log e), so the heap never holds a stale entry: retain_expire pops exactly the
 * expired messages and never sees a newer message under an old deadline.
 */
#include "route/retain.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "base/xalloc.h"

#define RETAIN_FEW 8 /* children kept in an array; more go to a map */

struct retain_node {
    struct retain_node *parent;
    struct msg *msg; /* the retained message of this topic, or NULL */
    union {
        struct retain_node *one;  /* n_kids <= 1 */
        struct retain_node **few; /* 2 .. RETAIN_FEW, exactly n_kids long */
        struct map *many;         /* more */
    } kids;
    uint32_t n_kids;
    uint32_t heap_pos; /* 1 + index of this node's entry in the expiry heap, 0: none */
    uint16_t level_len;
    uint8_t level[];
};

struct retain_exp {
    uint64_t at; /* a copy of node->msg->expiry_at, read without chasing the pointers */
    struct retain_node *node;
};

enum frame_mode { FRAME_FILTER, FRAME_SUBTREE };

struct retain_frame {
    struct retain_node *node;
    size_t f;   /* FRAME_FILTER: offset in the filter of the level to match below `node` */
    size_t pos; /* cursor over node's children (kid_next) */
    enum frame_mode mode;
};

static struct retain_node *
node_new(struct retain_node *parent, struct slice level)
{
    /* Sized to the level, not to sizeof (which pads to 40): for the short levels of most
     * topics that is a 48-byte malloc chunk instead of 64, two per topic of three levels. */
    struct retain_node *n = xmalloc(offsetof(struct retain_node, level) + level.len);

    /* Topic names are at most 65 535 bytes [MQTT-4.7.3-3], so a level fits in 16 bits. */
    assert(level.len <= UINT16_MAX);
    n->parent = parent;
    n->msg = NULL;
    n->kids.one = NULL;
    n->n_kids = 0;
    n->heap_pos = 0;
    n->level_len = (uint16_t)level.len;
    if (level.len)
        memcpy(n->level, level.p, level.len);
    return n;
}

static struct slice
node_level(const struct retain_node *n)
{
    return slice_make(n->level, n->level_len);
}

static bool
node_is_dollar(const struct retain_node *n)
{
    return n->level_len > 0 && n->level[0] == '$';
}

/* ---- children ------------------------------------------------------------------------------ */

static struct retain_node *
kid_find(const struct retain_node *n, struct slice level)
{
    if (n->n_kids > RETAIN_FEW)
        return map_get(n->kids.many, level);
    if (n->n_kids == 1)
        return slice_eq(node_level(n->kids.one), level) ? n->kids.one : NULL;
    for (uint32_t i = 0; i < n->n_kids; i++) {
        if (slice_eq(node_level(n->kids.few[i]), level))
            return n->kids.few[i];
    }
    return NULL;
}

/* The next child from cursor `*pos` (0 at the start), or NULL after the last. */
static struct retain_node *
kid_next(const struct retain_node *n, size_t *pos)
{
    if (n->n_kids > RETAIN_FEW)
        return map_next(n->kids.many, pos);
    if (*pos >= n->n_kids)
        return NULL;
    struct retain_node *k = n->n_kids == 1 ? n->kids.one : n->kids.few[*pos];
    ++*pos;
    return k;
}

static void
kid_add(struct retain_node *n, struct retain_node *k)
{
    if (n->n_kids == 0) {
        n->kids.one = k;
    } else if (n->n_kids == 1) {
        struct retain_node **few = xmalloc(2 * sizeof(*few));
        few[0] = n->kids.one;
        few[1] = k;
        n->kids.few = few;
    } else if (n->n_kids < RETAIN_FEW) {
        n->kids.few = xrealloc(n->kids.few, (n->n_kids + 1) * sizeof(*n->kids.few));
        n->kids.few[n->n_kids] = k;
    } else if (n->n_kids == RETAIN_FEW) {
        struct map *many = xmalloc(sizeof(*many));
        map_init(many);
        for (uint32_t i = 0; i < RETAIN_FEW; i++)
            map_put(many, node_level(n->kids.few[i]), n->kids.few[i]);
        map_put(many, node_level(k), k);
        free(n->kids.few);
        n->kids.many = many;
    } else {
        map_put(n->kids.many, node_level(k), k);
    }
    n->n_kids++;
}

static void
kid_del(struct retain_node *n, struct retain_node *k)
{
    if (n->n_kids > RETAIN_FEW) {
        struct map *many = n->kids.many;
        map_del(many, node_level(k));
        if (many->n == RETAIN_FEW) {
            struct retain_node **few = xmalloc(RETAIN_FEW * sizeof(*few));
            size_t pos = 0;
            for (uint32_t i = 0; i < RETAIN_FEW; i++)
                few[i] = map_next(many, &pos);
            map_fini(many);
            free(many);
            n->kids.few = few;
        }
    } else if (n->n_kids == 1) {
        n->kids.one = NULL;
    } else {
        uint32_t i = 0;
        while (n->kids.few[i] != k)
            i++;
        n->kids.few[i] = n->kids.few[n->n_kids - 1];
        if (n->n_kids == 2) {
            struct retain_node *last = n->kids.few[0];
            free(n->kids.few);
            n->kids.one = last;
        } else {
            n->kids.few = xrealloc(n->kids.few, (n->n_kids - 1) * sizeof(*n->kids.few));
        }
    }
    n->n_kids--;
}

/* Free n's child container (not the children). */
static void
kids_fini(struct retain_node *n)
{
    if (n->n_kids > RETAIN_FEW) {
        map_fini(n->kids.many);
        free(n->kids.many);
    } else if (n->n_kids > 1) {
        free(n->kids.few);
    }
    n->n_kids = 0;
}

/* ---- expiry heap ----------------------------------------------------------------------------- */

static void
heap_place(struct retain *r, uint32_t i, struct retain_exp e)
{
    r->heap[i] = e;
    e.node->heap_pos = i + 1;
}

static void
heap_sift_up(struct retain *r, uint32_t i)
{
    struct retain_exp e = r->heap[i];

    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (r->heap[up].at <= e.at)
            break;
        heap_place(r, i, r->heap[up]);
        i = up;
    }
    heap_place(r, i, e);
}

static void
heap_sift_down(struct retain *r, uint32_t i)
{
    struct retain_exp e = r->heap[i];

    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= r->n_heap)
            break;
        if (c + 1 < r->n_heap && r->heap[c + 1].at < r->heap[c].at)
            c++;
        if (e.at <= r->heap[c].at)
            break;
        heap_place(r, i, r->heap[c]);
        i = c;
    }
    heap_place(r, i, e);
}

/* Make node's heap entry match its message: add, move or remove it. */
static void
heap_track(struct retain *r, struct retain_node *n)
{
    uint64_t at = n->msg ? n->msg->expiry_at : 0;

    if (n->heap_pos) {
        uint32_t i = n->heap_pos - 1;
        struct retain_node *moved = n;
        if (at) {
            r->heap[i].at = at;
        } else {
            /* Fill the hole with the last entry, which may belong above or below it. */
            n->heap_pos = 0;
            if (i == --r->n_heap)
                return;
            moved = r->heap[r->n_heap].node;
            heap_place(r, i, r->heap[r->n_heap]);
        }
        heap_sift_up(r, i);
        heap_sift_down(r, moved->heap_pos - 1);
    } else if (at) {
        if (r->n_heap == r->heap_cap) {
            assert(r->heap_cap < UINT32_MAX / 2);
            r->heap_cap = r->heap_cap ? r->heap_cap * 2 : 64;
            r->heap = xrealloc(r->heap, r->heap_cap * sizeof(*r->heap));
        }
        heap_place(r, r->n_heap++, (struct retain_exp){at, n});
        heap_sift_up(r, r->n_heap - 1);
    }
}

/* Push a frame on the work stack shared by matching and retain_fini (it may move). */
static void
push(struct retain *r, size_t *depth, struct retain_node *n, size_t f, enum frame_mode mode)
{
    if (*depth == r->stack_cap) {
        r->stack_cap = r->stack_cap ? r->stack_cap * 2 : 32;
        r->stack = xrealloc(r->stack, r->stack_cap * sizeof(*r->stack));
    }
    r->stack[(*depth)++] = (struct retain_frame){.node = n, .f = f, .mode = mode};
}

/* ---- the tree -------------------------------------------------------------------------------- */

/* The end of the level that starts at `off` in `s`: the next '/' or s.len. */
static size_t
level_end(struct slice s, size_t off)
{
    const uint8_t *slash = off < s.len ? memchr(s.p + off, '/', s.len - off) : NULL;
    return slash ? (size_t)(slash - s.p) : s.len;
}

/* The node of `topic`, created with its path when `create`; NULL when absent and not. */
static struct retain_node *
node_find(struct retain *r, struct slice topic, bool create)
{
    struct retain_node *n = r->root;
    size_t off = 0;

    for (;;) {
        size_t end = level_end(topic, off);
        struct slice level = slice_make(topic.p + off, end - off);
        struct retain_node *k = kid_find(n, level);
        if (!k) {
            if (!create)
                return NULL;
            k = node_new(n, level);
            kid_add(n, k);
            r->n_nodes++;
        }
        n = k;
        if (end == topic.len)
            return n;
        off = end + 1;
    }
}

/* Remove n and then its ancestors while they hold neither a message nor children. */
static void
node_prune(struct retain *r, struct retain_node *n)
{
    while (n != r->root && !n->msg && n->n_kids == 0) {
        struct retain_node *up = n->parent;
        assert(n->heap_pos == 0);
        kid_del(up, n);
        free(n);
        r->n_nodes--;
        n = up;
    }
}

void
retain_init(struct retain *r)
{
    *r = (struct retain){.root = node_new(NULL, slice_make(NULL, 0))};
}

void
retain_fini(struct retain *r)
{
    /* Post-order: a node is freed once all its children are, so the cursors over its child
     * container stay valid while they are visited. */
    size_t depth = 0;

    push(r, &depth, r->root, 0, FRAME_SUBTREE);
    while (depth > 0) {
        struct retain_frame *fr = &r->stack[depth - 1];
        struct retain_node *k = kid_next(fr->node, &fr->pos);

        if (k) {
            push(r, &depth, k, 0, FRAME_SUBTREE);
            continue;
        }
        struct retain_node *n = fr->node;
        depth--;
        msg_unref(n->msg);
        kids_fini(n);
        free(n);
    }
    free(r->heap);
    free(r->stack);
    *r = (struct retain){0};
}

void
retain_set(struct retain *r, struct msg *m)
{
    struct retain_node *n = node_find(r, m->topic, m->payload.len > 0);

    if (!n)
        return;
    struct msg *old = n->msg;
    n->msg = m->payload.len > 0 ? msg_ref(m) : NULL;
    r->n += (n->msg != NULL) - (old != NULL);
    heap_track(r, n);
    msg_unref(old);
    if (!n->msg)
        node_prune(r, n);
}

size_t
retain_count(const struct retain *r)
{
    return r->n;
}

size_t
retain_node_count(const struct retain *r)
{
    return r->n_nodes;
}

void
retain_expire(struct retain *r, uint64_t now)
{
    while (r->n_heap > 0 && r->heap[0].at <= now) {
        struct retain_node *n = r->heap[0].node;
        struct msg *m = n->msg;

        assert(m && m->expiry_at == r->heap[0].at && msg_expired(m, now));
        n->msg = NULL;
        r->n--;
        heap_track(r, n);
        msg_unref(m);
        node_prune(r, n);
    }
}

/* ---- matching -------------------------------------------------------------------------------- */

/* The next child of fr's node that a wildcard may visit: not a '$' topic at the first level. */
static struct retain_node *
wild_next(const struct retain *r, struct retain_frame *fr)
{
    struct retain_node *k;

    while ((k = kid_next(fr->node, &fr->pos)) != NULL) {
        if (fr->node != r->root || !node_is_dollar(k))
            return k;
    }
    return NULL;
}

void
retain_match(struct retain *r, struct slice filter, void (*fn)(void *ctx, struct msg *m), void *ctx)
{
    size_t depth = 0;

    push(r, &depth, r->root, 0, FRAME_FILTER);
    while (depth > 0) {
        struct retain_frame *fr = &r->stack[depth - 1];
        struct retain_node *k;

        if (fr->mode == FRAME_SUBTREE) {
            if ((k = wild_next(r, fr)) == NULL) {
                depth--;
                continue;
            }
            if (k->msg)
                fn(ctx, k->msg);
            if (k->n_kids)
                push(r, &depth, k, 0, FRAME_SUBTREE);
            continue;
        }
        size_t fe = level_end(filter, fr->f);
        struct slice level = slice_make(filter.p + fr->f, fe - fr->f);
        bool is_last = fe == filter.len;

        if (slice_eq(level, SLICE("#"))) {
            /* "a/#" matches "a" itself [MQTT-4.7.1-2] (the root holds no message). */
            if (fr->node->msg)
                fn(ctx, fr->node->msg);
            fr->mode = FRAME_SUBTREE;
            continue;
        }
        if (slice_eq(level, SLICE("+"))) {
            k = wild_next(r, fr);
            if (!k)
                depth--;
        } else {
            k = kid_find(fr->node, level);
            depth--;
        }
        if (!k)
            continue;
        if (is_last) {
            if (k->msg)
                fn(ctx, k->msg);
        } else {
            push(r, &depth, k, fe + 1, FRAME_FILTER);
        }
    }
    /* Keep a small stack for the next call; give back what one deep filter grew. */
    if (r->stack_cap > 256) {
        free(r->stack);
        r->stack = NULL;
        r->stack_cap = 0;
    }
}
