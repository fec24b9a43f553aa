/*
 * test_trie.c - the subscription trie: spec matching examples [MQTT-4.7], '$' topics
 * [MQTT-4.7.2-1], replace and remove, shared groups [MQTT-4.8.2], scale and depth, and a
 * randomized cross-check against mqtt_topic_match().
 *
 * Owners are small integers cast to pointers: the trie never dereferences them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/topic.h"
#include "route/trie.h"

#define OWNER(i) ((void *)(uintptr_t)(i))
#define ID(owner) ((int)(uintptr_t)(owner))
#define MAX_OWNERS 512
#define MAX_GROUPS 64

struct hits {
    int n_sub;
    int per_owner[MAX_OWNERS]; /* calls per owner id (ids beyond the array are only counted) */
    uint32_t sub_ids[MAX_OWNERS];
    int n_group;
    struct trie_group *groups[MAX_GROUPS];
};

static void
on_sub(void *ctx, void *owner, const struct sub_opts *opts)
{
    struct hits *h = ctx;
    h->n_sub++;
    if (ID(owner) < MAX_OWNERS) {
        h->per_owner[ID(owner)]++;
        h->sub_ids[ID(owner)] = opts->sub_id;
    }
}

static void
on_group(void *ctx, struct trie_group *g)
{
    struct hits *h = ctx;
    if (h->n_group < MAX_GROUPS)
        h->groups[h->n_group] = g;
    h->n_group++;
}

static struct hits *
run(struct trie *t, struct slice topic)
{
    static struct hits h;
    memset(&h, 0, sizeof(h));
    struct trie_visitor v = {on_sub, on_group, &h};
    trie_match(t, topic, &v);
    return &h;
}

/* Bit i set when owner i matched; each owner must have been reported at most once. */
static uint64_t
owners_of(struct trie *t, const char *topic)
{
    struct hits *h = run(t, slice_cstr(topic));
    uint64_t mask = 0;
    for (int i = 1; i < 64; i++) {
        assert_true(h->per_owner[i] <= 1);
        if (h->per_owner[i])
            mask |= 1ull << i;
    }
    return mask;
}

static void
sub(struct trie *t, const char *filter, int owner)
{
    struct sub_opts o = {.qos = 1, .sub_id = (uint32_t)owner};
    assert_int_equal(trie_insert(t, slice_cstr(filter), OWNER(owner), &o), 1);
}

#define B(i) (1ull << (i))

static void
spec_examples(void **state)
{
    struct trie *t = trie_new();
    sub(t, "sport/tennis/player1/#", 1); /* 4.7.1.2 */
    sub(t, "sport/#", 2);
    sub(t, "sport/tennis/+", 3); /* 4.7.1.3 */
    sub(t, "sport/+", 4);
    sub(t, "+/+", 5);
    sub(t, "/+", 6);
    sub(t, "+", 7);
    sub(t, "+/tennis/#", 8);
    sub(t, "sport/+/player1", 9);
    sub(t, "#", 10);

    assert_int_equal(owners_of(t, "sport/tennis/player1"),
                     B(1) | B(2) | B(3) | B(8) | B(9) | B(10));
    assert_int_equal(owners_of(t, "sport/tennis/player1/ranking"), B(1) | B(2) | B(8) | B(10));
    assert_int_equal(owners_of(t, "sport/tennis/player1/score/wimbledon"),
                     B(1) | B(2) | B(8) | B(10));
    assert_int_equal(owners_of(t, "sport/tennis/player2"), B(2) | B(3) | B(8) | B(10));
    /* "sport/#" matches "sport"; "sport/+" does not but matches "sport/". */
    assert_int_equal(owners_of(t, "sport"), B(2) | B(7) | B(10));
    assert_int_equal(owners_of(t, "sport/"), B(2) | B(4) | B(5) | B(10));
    /* "+/+" and "/+" match "/finance", "+" does not. */
    assert_int_equal(owners_of(t, "/finance"), B(5) | B(6) | B(10));
    assert_int_equal(owners_of(t, "sport/tennis"), B(2) | B(4) | B(5) | B(8) | B(10));
    assert_int_equal(trie_count(t), 10);
    trie_free(t);
}

static void
dollar_topics_skip_leading_wildcards(void **state)
{
    struct trie *t = trie_new();
    sub(t, "+/monitor/Clients", 1);
    sub(t, "#", 2);
    sub(t, "$SYS/#", 3);
    sub(t, "$SYS/monitor/+", 4);
    sub(t, "+/#", 5);
    sub(t, "$SYS/monitor/Clients", 6);
    sub(t, "+", 7);

    /* [MQTT-4.7.2-1] */
    assert_int_equal(owners_of(t, "$SYS/monitor/Clients"), B(3) | B(4) | B(6));
    assert_int_equal(owners_of(t, "$SYS"), B(3));
    assert_int_equal(owners_of(t, "$"), 0);
    /* Not a '$' topic: everyone with a wildcard sees it. */
    assert_int_equal(owners_of(t, "x/monitor/Clients"), B(1) | B(2) | B(5));
    assert_int_equal(owners_of(t, "a$"), B(2) | B(5) | B(7));
    trie_free(t);
}

static void
empty_levels(void **state)
{
    struct trie *t = trie_new();
    sub(t, "a//b", 1);
    sub(t, "a/+/b", 2);
    sub(t, "/", 3);
    sub(t, "+/+", 4);
    sub(t, "/#", 5);
    sub(t, "a/", 6);
    sub(t, "a/b", 7);

    assert_int_equal(owners_of(t, "a//b"), B(1) | B(2));
    assert_int_equal(owners_of(t, "/"), B(3) | B(4) | B(5));
    assert_int_equal(owners_of(t, "/x"), B(4) | B(5));
    assert_int_equal(owners_of(t, "a/"), B(4) | B(6));
    assert_int_equal(owners_of(t, "a/b"), B(4) | B(7));
    assert_int_equal(owners_of(t, "a"), 0);
    trie_free(t);
}

static void
reinsert_replaces_options(void **state)
{
    struct trie *t = trie_new();
    struct sub_opts o1 = {.qos = 0, .sub_id = 7};
    struct sub_opts o2 = {.qos = 2, .no_local = true, .sub_id = 9};

    assert_int_equal(trie_insert(t, SLICE("a/+"), OWNER(1), &o1), 1);
    assert_int_equal(trie_insert(t, SLICE("a/+"), OWNER(1), &o2), 0);
    assert_int_equal(trie_count(t), 1);
    struct hits *h = run(t, SLICE("a/b"));
    assert_int_equal(h->n_sub, 1);
    assert_int_equal(h->sub_ids[1], 9);

    /* The same for a shared member. */
    assert_int_equal(trie_insert(t, SLICE("$share/g/a/+"), OWNER(1), &o1), 1);
    assert_int_equal(trie_insert(t, SLICE("$share/g/a/+"), OWNER(1), &o2), 0);
    assert_int_equal(trie_count(t), 2);
    h = run(t, SLICE("a/b"));
    assert_int_equal(h->n_group, 1);
    assert_int_equal(trie_group_size(h->groups[0]), 1);
    void *owner;
    const struct sub_opts *opts;
    assert_true(trie_group_next(h->groups[0], &owner, &opts));
    assert_ptr_equal(owner, OWNER(1));
    assert_int_equal(opts->qos, 2);
    assert_int_equal(opts->sub_id, 9);
    trie_free(t);
}

static void
invalid_filters_rejected(void **state)
{
    struct trie *t = trie_new();
    struct sub_opts o = {0};
    assert_int_equal(trie_insert(t, SLICE("a/#/b"), OWNER(1), &o), -EINVAL); /* [MQTT-4.7.1-2] */
    assert_int_equal(trie_insert(t, SLICE("a+"), OWNER(1), &o), -EINVAL);    /* [MQTT-4.7.1-3] */
    assert_int_equal(trie_insert(t, SLICE(""), OWNER(1), &o), -EINVAL);      /* [MQTT-4.7.3-1] */
    assert_int_equal(trie_insert(t, SLICE("$share//a"), OWNER(1), &o), -EINVAL); /* 4.8.2-1 */
    assert_int_equal(trie_insert(t, SLICE("$share/g+/a"), OWNER(1), &o), -EINVAL); /* 4.8.2-2 */
    assert_int_equal(trie_insert(t, SLICE("$share/g"), OWNER(1), &o), -EINVAL);
    assert_int_equal(trie_insert(t, SLICE("a"), NULL, &o), -EINVAL);
    assert_int_equal(trie_count(t), 0);
    assert_int_equal(trie_node_count(t), 1);
    trie_free(t);
}

static void
remove_frees_empty_nodes(void **state)
{
    struct trie *t = trie_new();
    sub(t, "a/b/c", 1);
    sub(t, "a/b/c", 2);
    sub(t, "a/+/#", 3);
    sub(t, "a", 4);
    assert_int_equal(trie_node_count(t), 6); /* root a b c + # */

    assert_int_equal(trie_remove(t, SLICE("a/b/c"), OWNER(9)), -ENOENT);
    assert_int_equal(trie_remove(t, SLICE("a/b"), OWNER(1)), -ENOENT);
    assert_int_equal(trie_remove(t, SLICE("x/y"), OWNER(1)), -ENOENT);
    assert_int_equal(trie_remove(t, SLICE("a/#/x"), OWNER(1)), -ENOENT);

    assert_int_equal(trie_remove(t, SLICE("a/b/c"), OWNER(1)), 0);
    assert_int_equal(trie_node_count(t), 6); /* owner 2 still there */
    assert_int_equal(owners_of(t, "a/b/c"), B(2) | B(3));
    assert_int_equal(trie_remove(t, SLICE("a/b/c"), OWNER(2)), 0);
    assert_int_equal(trie_remove(t, SLICE("a/b/c"), OWNER(2)), -ENOENT);
    assert_int_equal(trie_node_count(t), 4); /* c and b freed; a, +, # left */
    assert_int_equal(owners_of(t, "a/b/c"), B(3));

    assert_int_equal(trie_remove(t, SLICE("a/+/#"), OWNER(3)), 0);
    assert_int_equal(trie_node_count(t), 2); /* "a" still has owner 4 */
    assert_int_equal(trie_remove(t, SLICE("a"), OWNER(4)), 0);
    assert_int_equal(trie_node_count(t), 1);
    assert_int_equal(trie_count(t), 0);
    assert_int_equal(owners_of(t, "a"), 0);

    /* Shared groups: the group and its nodes go with the last member. */
    sub(t, "$share/g/x/y", 1);
    sub(t, "$share/g/x/y", 2);
    assert_int_equal(trie_node_count(t), 3);
    assert_int_equal(trie_remove(t, SLICE("$share/h/x/y"), OWNER(1)), -ENOENT);
    assert_int_equal(trie_remove(t, SLICE("x/y"), OWNER(1)), -ENOENT);
    assert_int_equal(trie_remove(t, SLICE("$share/g/x/y"), OWNER(1)), 0);
    assert_int_equal(run(t, SLICE("x/y"))->n_group, 1);
    assert_int_equal(trie_remove(t, SLICE("$share/g/x/y"), OWNER(2)), 0);
    assert_int_equal(run(t, SLICE("x/y"))->n_group, 0);
    assert_int_equal(trie_node_count(t), 1);
    assert_int_equal(trie_count(t), 0);
    trie_free(t);
}

static void
overlapping_filters_of_one_owner(void **state)
{
    /* The trie reports an owner once per matching filter, each with that filter's options;
     * merging them into one delivery (highest QoS, all subscription ids) is the caller's job
     * [MQTT-3.3.5-1 (3.1.1), MQTT-3.3.4-2, MQTT-3.3.4-3 (5.0)]. */
    struct trie *t = trie_new();
    const char *filters[] = {"a/b", "a/+", "a/#", "+/b", "#", "+/+"};
    for (unsigned i = 0; i < 6; i++) {
        struct sub_opts o = {.qos = (uint8_t)(i % 3), .sub_id = 100 + i};
        assert_int_equal(trie_insert(t, slice_cstr(filters[i]), OWNER(1), &o), 1);
    }
    sub(t, "$share/g/a/b", 1); /* a shared one of the same owner is a group, apart */
    struct hits *h = run(t, SLICE("a/b"));
    assert_int_equal(h->per_owner[1], 6);
    assert_int_equal(h->n_sub, 6);
    assert_int_equal(h->n_group, 1);
    h = run(t, SLICE("a/c"));
    assert_int_equal(h->per_owner[1], 4); /* a/+ a/# # +/+ */
    assert_int_equal(h->n_group, 0);
    assert_int_equal(trie_count(t), 7);
    trie_free(t);
}

/* The owner id trie_group_next() gives next. */
static int
next_of(struct trie_group *g)
{
    void *owner;
    const struct sub_opts *opts;
    assert_true(trie_group_next(g, &owner, &opts));
    assert_int_equal(opts->sub_id, ID(owner));
    return ID(owner);
}

static struct trie_group *
group_for(struct trie *t, const char *topic, const char *name)
{
    struct hits *h = run(t, slice_cstr(topic));
    struct trie_group *found = NULL;
    for (int i = 0; i < h->n_group; i++) {
        if (slice_eq(trie_group_name(h->groups[i]), slice_cstr(name))) {
            assert_null(found); /* each group once per message */
            found = h->groups[i];
        }
    }
    return found;
}

static void
shared_groups_reported_once(void **state)
{
    struct trie *t = trie_new();
    sub(t, "$share/g/s/+", 1);
    sub(t, "$share/g/s/+", 2);
    sub(t, "$share/g/s/+", 3);
    sub(t, "$share/h/s/+", 1);
    sub(t, "$share/g/s/#", 4); /* same name, other filter: another group */
    sub(t, "$share/g/+/x", 5);
    sub(t, "s/+", 6);

    struct hits *h = run(t, SLICE("s/x"));
    assert_int_equal(h->n_group, 4);
    assert_int_equal(h->n_sub, 1);
    int n_g = 0, total = 0;
    for (int i = 0; i < h->n_group; i++) {
        n_g += slice_eq(trie_group_name(h->groups[i]), SLICE("g"));
        total += (int)trie_group_size(h->groups[i]);
    }
    assert_int_equal(n_g, 3);
    assert_int_equal(total, 3 + 1 + 1 + 1);
    assert_int_equal(trie_count(t), 7);
    /* A leading wildcard of the inner filter obeys [MQTT-4.7.2-1] too. */
    assert_int_equal(run(t, SLICE("$s/x"))->n_group, 0);
    trie_free(t);
}

static void
shared_round_robin_across_messages(void **state)
{
    struct trie *t = trie_new();
    for (int i = 1; i <= 4; i++)
        sub(t, "$share/g/s/+", i);

    /* One pick per message, the cursor persisting from one match to the next. */
    int expect[] = {1, 2, 3, 4, 1, 2, 3, 4, 1};
    for (unsigned i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        assert_int_equal(next_of(group_for(t, "s/x", "g")), expect[i]);
    /* Cursor is now on 2. Remove 2 (the one due): 3 takes its turn. */
    assert_int_equal(trie_remove(t, SLICE("$share/g/s/+"), OWNER(2)), 0);
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 3);
    /* Remove 1, already served this round: 4 is next, then 3 again. */
    assert_int_equal(trie_remove(t, SLICE("$share/g/s/+"), OWNER(1)), 0);
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 4);
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 3);
    /* A newcomer joins at the end of the round. */
    sub(t, "$share/g/s/+", 7);
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 4);
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 7);
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 3);
    /* Remove the last in order while it is due: wrap to the head. */
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 4);
    assert_int_equal(trie_remove(t, SLICE("$share/g/s/+"), OWNER(7)), 0);
    assert_int_equal(next_of(group_for(t, "s/y", "g")), 3);
    assert_int_equal(trie_group_size(group_for(t, "s/y", "g")), 2);
    trie_free(t);
}

static void
shared_round_robin_is_fair(void **state)
{
    enum { N = 7, ROUNDS = 50 };
    struct trie *t = trie_new();
    for (int i = 1; i <= N; i++)
        sub(t, "$share/work/jobs/#", i);

    int counts[N + 1] = {0};
    for (int m = 0; m < N * ROUNDS; m++) {
        struct trie_group *g = group_for(t, "jobs/a/b", "work");
        counts[next_of(g)]++;
        if (m == 3 * N + 2) /* drop member 5 mid-round */
            assert_int_equal(trie_remove(t, SLICE("$share/work/jobs/#"), OWNER(5)), 0);
    }
    /* Everyone left got the same share within one turn. */
    int lo = N * ROUNDS, hi = 0;
    for (int i = 1; i <= N; i++) {
        if (i == 5)
            continue;
        lo = counts[i] < lo ? counts[i] : lo;
        hi = counts[i] > hi ? counts[i] : hi;
    }
    assert_true(hi - lo <= 1);
    assert_true(counts[5] == 3 || counts[5] == 4);
    trie_free(t);
}

static void
many_literal_siblings(void **state)
{
    enum { N = 100000 };
    struct trie *t = trie_new();
    char f[64];
    for (int i = 0; i < N; i++) {
        snprintf(f, sizeof(f), "dev/%d/status", i);
        struct sub_opts o = {.sub_id = (uint32_t)i};
        assert_int_equal(trie_insert(t, slice_cstr(f), OWNER(i + 1), &o), 1);
    }
    sub(t, "dev/+/status", N + 1);
    assert_int_equal(trie_count(t), N + 1);
    assert_int_equal(trie_node_count(t), 2 + 2 * (uint64_t)N + 2);

    /* Many lookups among 100 000 siblings: linear scans would take minutes here. */
    for (int i = 0; i < N; i += 7) {
        snprintf(f, sizeof(f), "dev/%d/status", i);
        struct hits *h = run(t, slice_cstr(f));
        assert_int_equal(h->n_sub, 2);
    }
    assert_int_equal(run(t, SLICE("dev/100000/status"))->n_sub, 1);
    assert_int_equal(run(t, SLICE("dev/5"))->n_sub, 0);

    for (int i = 0; i < N; i++) {
        snprintf(f, sizeof(f), "dev/%d/status", i);
        assert_int_equal(trie_remove(t, slice_cstr(f), OWNER(i + 1)), 0);
    }
    assert_int_equal(trie_node_count(t), 4);
    assert_int_equal(trie_remove(t, SLICE("dev/+/status"), OWNER(N + 1)), 0);
    assert_int_equal(trie_node_count(t), 1);
    trie_free(t);
}

static void
many_owners_of_one_filter(void **state)
{
    enum { N = 20000 };
    struct trie *t = trie_new();
    struct sub_opts o = {0};
    for (int i = 1; i <= N; i++) {
        o.sub_id = (uint32_t)i;
        assert_int_equal(trie_insert(t, SLICE("a/#"), OWNER(i), &o), 1);
        assert_int_equal(trie_insert(t, SLICE("$share/g/a/#"), OWNER(i), &o), 1);
    }
    o.sub_id = N / 2;
    assert_int_equal(trie_insert(t, SLICE("a/#"), OWNER(N / 2), &o), 0);
    struct hits *h = run(t, SLICE("a/b"));
    assert_int_equal(h->n_sub, N);
    assert_int_equal(h->n_group, 1);
    assert_int_equal(trie_group_size(h->groups[0]), N);
    for (int i = 1; i <= N; i += 2) {
        assert_int_equal(trie_remove(t, SLICE("a/#"), OWNER(i)), 0);
        assert_int_equal(trie_remove(t, SLICE("$share/g/a/#"), OWNER(i)), 0);
    }
    h = run(t, SLICE("a"));
    assert_int_equal(h->n_sub, N / 2);
    assert_int_equal(trie_group_size(h->groups[0]), N / 2);
    assert_int_equal(next_of(h->groups[0]) % 2, 0);
    assert_int_equal(trie_count(t), N);
    trie_free(t);
}

/* "a/a/.../a" with `levels` levels, the last one replaced by `last` when given. */
static char *
deep(size_t levels, const char *level, const char *last)
{
    size_t ll = strlen(level);
    char *s = malloc(levels * (ll + 1) + strlen(last ? last : "") + 1);
    char *p = s;
    for (size_t i = 0; i < levels; i++) {
        const char *l = (i + 1 == levels && last) ? last : level;
        size_t n = strlen(l);
        memcpy(p, l, n);
        p += n;
        *p++ = '/';
    }
    p[-1] = '\0';
    return s;
}

static void
very_deep_topic(void **state)
{
    enum { LEVELS = 10000 };
    struct trie *t = trie_new();
    char *topic = deep(LEVELS, "a", NULL);
    char *exact = deep(LEVELS, "a", NULL);
    char *pluses = deep(LEVELS, "+", NULL);
    char *hash_last = deep(LEVELS, "a", "#");
    char *longer = deep(LEVELS + 1, "a", NULL);
    assert_true(mqtt_topic_name_valid(slice_cstr(topic)));

    sub(t, "#", 1);
    sub(t, "a/#", 2);
    sub(t, "+/+/#", 3);
    sub(t, exact, 4);
    sub(t, pluses, 5);
    sub(t, hash_last, 6); /* matches the parent: LEVELS - 1 levels and more [MQTT-4.7.1-2] */
    sub(t, longer, 7);
    sub(t, "a/+", 8);
    /* Give the walk a '+' branch to come back to at each of the first 300 levels. */
    for (int i = 1; i <= 300; i++) {
        char *f = deep((size_t)i, "a", "+");
        sub(t, f, 9);
        free(f);
    }

    assert_int_equal(owners_of(t, topic), B(1) | B(2) | B(3) | B(4) | B(5) | B(6));
    assert_int_equal(owners_of(t, longer), B(1) | B(2) | B(3) | B(6) | B(7));
    assert_true(mqtt_topic_match(slice_cstr(hash_last), slice_cstr(topic)));

    assert_int_equal(trie_remove(t, slice_cstr(pluses), OWNER(5)), 0);
    assert_int_equal(trie_remove(t, slice_cstr(longer), OWNER(7)), 0);
    assert_int_equal(owners_of(t, topic), B(1) | B(2) | B(3) | B(4) | B(6));
    /* trie_free of a 10 000-level trie must not recurse. */
    free(topic);
    free(exact);
    free(pluses);
    free(hash_last);
    free(longer);
    trie_free(t);
}

/* ---- randomized cross-check against mqtt_topic_match() ---- */

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void
random_levels(char *out, bool filter)
{
    static const char *lits[] = {"a", "b", "", "$", "$a"};
    static const char *wild[] = {"a", "b", "", "$", "+", "+", "a"};
    int n = 1 + (int)rnd(4);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(out, "/");
        strcat(out, filter ? wild[rnd(7)] : lits[rnd(5)]);
    }
    if (filter && rnd(4) == 0)
        strcat(out, rnd(2) ? "/#" : "");
    if (filter && rnd(10) == 0)
        strcpy(out, "#");
    if (out[0] == '\0') /* "" is no topic [MQTT-4.7.3-1]; "/" is two empty levels */
        strcpy(out, "/");
}

static void
random_cross_check(void **state)
{
    enum { N_FILTERS = 400, N_TOPICS = 4000 };
    static char filters[N_FILTERS][64];
    static bool present[N_FILTERS];
    struct trie *t = trie_new();

    for (int i = 0; i < N_FILTERS; i++) {
        char f[48];
        random_levels(f, true);
        assert_true(mqtt_topic_filter_valid(slice_cstr(f)));
        /* Every fourth one shared, in one of two groups. */
        if (i % 4 == 0)
            snprintf(filters[i], sizeof(filters[i]), "$share/g%u/%s", rnd(2), f);
        else
            snprintf(filters[i], sizeof(filters[i]), "%s", f);
        sub(t, filters[i], i + 1);
        present[i] = true;
    }

    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < N_TOPICS / 2; k++) {
            char topic[48];
            random_levels(topic, false);
            struct hits *h = run(t, slice_cstr(topic));
            int n_expect = 0, n_groups = 0;
            /* A group is (name, inner filter): count the distinct matching ones. */
            for (int i = 0; i < N_FILTERS; i++) {
                struct slice g, inner;
                if (!present[i])
                    continue;
                if (mqtt_shared_split(slice_cstr(filters[i]), &g, &inner) == 1) {
                    if (!mqtt_topic_match(inner, slice_cstr(topic)))
                        continue;
                    bool seen = false;
                    for (int j = 0; j < i && !seen; j++)
                        seen = present[j] && strcmp(filters[j], filters[i]) == 0;
                    n_groups += !seen;
                    continue;
                }
                bool m = mqtt_topic_match(slice_cstr(filters[i]), slice_cstr(topic));
                assert_int_equal(h->per_owner[i + 1], m ? 1 : 0);
                n_expect += m;
            }
            assert_int_equal(h->n_sub, n_expect);
            assert_int_equal(h->n_group, n_groups);
        }
        /* Second pass with a random half removed. */
        for (int i = 0; i < N_FILTERS && pass == 0; i++) {
            if (rnd(2)) {
                assert_int_equal(trie_remove(t, slice_cstr(filters[i]), OWNER(i + 1)), 0);
                present[i] = false;
            }
        }
    }
    for (int i = 0; i < N_FILTERS; i++) {
        if (present[i])
            assert_int_equal(trie_remove(t, slice_cstr(filters[i]), OWNER(i + 1)), 0);
    }
    assert_int_equal(trie_count(t), 0);
    assert_int_equal(trie_node_count(t), 1);
    trie_free(t);
}

static void
null_callbacks(void **state)
{
    struct trie *t = trie_new();
    sub(t, "a", 1);
    sub(t, "$share/g/a", 2);
    struct trie_visitor v = {NULL, NULL, NULL};
    trie_match(t, SLICE("a"), &v);
    trie_free(t);
    trie_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_examples),
        cmocka_unit_test(dollar_topics_skip_leading_wildcards),
        cmocka_unit_test(empty_levels),
        cmocka_unit_test(reinsert_replaces_options),
        cmocka_unit_test(invalid_filters_rejected),
        cmocka_unit_test(remove_frees_empty_nodes),
        cmocka_unit_test(overlapping_filters_of_one_owner),
        cmocka_unit_test(shared_groups_reported_once),
        cmocka_unit_test(shared_round_robin_across_messages),
        cmocka_unit_test(shared_round_robin_is_fair),
        cmocka_unit_test(many_literal_siblings),
        cmocka_unit_test(many_owners_of_one_filter),
        cmocka_unit_test(very_deep_topic),
        cmocka_unit_test(random_cross_check),
        cmocka_unit_test(null_callbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
