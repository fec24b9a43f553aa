/*
 * fuzz_topic.c - libFuzzer target for topic validation and matching.
 *
 * Input: one byte n, then a filter of n bytes (fewer if the input ends), then the topic name
 * (the rest). Checks that the validators hold to their rules; that the trie, holding the filter
 * among a few fixed ones, reports for the topic exactly what mqtt_topic_match() says, plain and
 * shared; and that removal empties it again.
 * Any disagreement aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/topic.h"
#include "route/trie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort();                                                                           \
    } while (0)

/* Filters already in the trie, so that matching has branches to take and come back from. */
static const char *const background[] = {
    "#", "+", "+/+", "a/#", "a/+/b", "$SYS/#", "/", "a//b", "+/#", "a/b", "+/b/#", "$share/g/+/x",
};
#define N_BG (sizeof(background) / sizeof(background[0]))

struct seen {
    int n_sub[N_BG + 1]; /* per owner: background[i] is owner i, the fuzzed filter N_BG */
    int n_group[N_BG + 1];
};

static void
on_sub(void *ctx, void *owner, const struct sub_opts *opts)
{
    struct seen *s = ctx;
    size_t i = (size_t)(uintptr_t)owner - 1;
    CHECK(i <= N_BG && opts->sub_id == i);
    s->n_sub[i]++;
}

static void
on_group(void *ctx, struct trie_group *g)
{
    struct seen *s = ctx;
    uint32_t size = trie_group_size(g);
    CHECK(size >= 1 && size <= 2); /* 2 when the fuzzed filter is a background group's */
    /* One round of round robin visits every member once. */
    for (uint32_t k = 0; k < size; k++) {
        void *owner;
        const struct sub_opts *opts;
        CHECK(trie_group_next(g, &owner, &opts));
        size_t i = (size_t)(uintptr_t)owner - 1;
        CHECK(i <= N_BG && opts->sub_id == i);
        s->n_group[i]++;
    }
}

/* Would `filter` (plain or shared) see `topic`? */
static bool
expect_match(struct slice filter, struct slice topic, bool *is_shared)
{
    struct slice group, inner;
    *is_shared = mqtt_shared_split(filter, &group, &inner) == 1;
    return mqtt_topic_match(*is_shared ? inner : filter, topic);
}

/* Without wildcards or NUL, a name is its own filter. */
static void
check_name_rules(struct slice s)
{
    bool plain = s.len > 0 && s.len <= 65535 && !memchr(s.p, '+', s.len) &&
                 !memchr(s.p, '#', s.len) && !memchr(s.p, '\0', s.len);
    CHECK(mqtt_topic_name_valid(s) == plain);
    if (plain) {
        CHECK(mqtt_topic_filter_valid(s));
        CHECK(mqtt_topic_match(s, s));
    }
}

static void
check_shared_rules(struct slice f)
{
    struct slice group = {0}, inner = {0};
    int rc = mqtt_shared_split(f, &group, &inner);
    CHECK(rc == 0 || rc == 1 || rc == -1);
    CHECK((rc != 0) == slice_has_prefix(f, SLICE("$share/")));
    if (rc == 1) {
        CHECK(group.len > 0 && !memchr(group.p, '/', group.len));
        CHECK(!memchr(group.p, '+', group.len) && !memchr(group.p, '#', group.len));
        CHECK(group.p == f.p + 7 && inner.p == group.p + group.len + 1);
        CHECK(inner.p + inner.len == f.p + f.len);
        CHECK(mqtt_topic_filter_valid(inner));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = data[0] < size - 1 ? data[0] : size - 1;
    struct slice filter = slice_make(data + 1, n);
    struct slice topic = slice_make(data + 1 + n, size - 1 - n);

    check_name_rules(topic);
    check_name_rules(filter);
    check_shared_rules(filter);
    if (!mqtt_topic_name_valid(topic))
        return 0;
    /* A filter without wildcards matches exactly the same bytes [MQTT-4.7.3-4]. */
    if (mqtt_topic_name_valid(filter))
        CHECK(mqtt_topic_match(filter, topic) == slice_eq(filter, topic));

    struct slice group, inner;
    int shared = mqtt_shared_split(filter, &group, &inner);
    bool valid = shared == 1 || (shared == 0 && mqtt_topic_filter_valid(filter));
    struct trie *t = trie_new();
    for (size_t i = 0; i < N_BG; i++) {
        struct sub_opts o = {.sub_id = (uint32_t)i};
        CHECK(trie_insert(t, slice_cstr(background[i]), (void *)(uintptr_t)(i + 1), &o) == 1);
    }
    void *me = (void *)(uintptr_t)(N_BG + 1);
    struct sub_opts opts = {.qos = 1, .sub_id = N_BG};

    CHECK(trie_insert(t, filter, me, &opts) == (valid ? 1 : -EINVAL));
    if (valid)
        CHECK(trie_insert(t, filter, me, &opts) == 0); /* replaces */
    CHECK(trie_count(t) == N_BG + valid);

    struct seen seen = {0};
    struct trie_visitor v = {on_sub, on_group, &seen};
    trie_match(t, topic, &v);
    for (size_t i = 0; i <= N_BG; i++) {
        bool is_shared = false;
        bool m = i < N_BG ? expect_match(slice_cstr(background[i]), topic, &is_shared)
                          : valid && expect_match(filter, topic, &is_shared);
        /* A fuzzed filter equal to a background one is its own pair, reported on its own. */
        CHECK(seen.n_sub[i] == (m && !is_shared));
        CHECK(seen.n_group[i] == (m && is_shared));
    }

    if (valid) {
        CHECK(trie_remove(t, filter, me) == 0);
        CHECK(trie_remove(t, filter, me) == -ENOENT);
    }
    for (size_t i = 0; i < N_BG; i++)
        CHECK(trie_remove(t, slice_cstr(background[i]), (void *)(uintptr_t)(i + 1)) == 0);
    CHECK(trie_count(t) == 0 && trie_node_count(t) == 1);
    trie_free(t);
    return 0;
}
