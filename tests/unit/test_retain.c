/*
 * test_retain.c - the retained message store: exact, '+' and '#' matching [MQTT-4.7.1-2,
 * MQTT-4.7.1-3], '$' topics [MQTT-4.7.2-1], empty levels, replace and delete
 * [MQTT-3.3.1-10] with pruning of the tree, wide nodes, expiry (also of messages replaced or
 * deleted before they expire), a very deep topic, and randomized cross-checks against
 * mqtt_topic_match() over a brute-force list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/topic.h"
#include "route/retain.h"

#define MAX_HITS 4096

struct hits {
    size_t n;
    struct msg *m[MAX_HITS];
};

static void
on_msg(void *ctx, struct msg *m)
{
    struct hits *h = ctx;
    assert_true(h->n < MAX_HITS);
    h->m[h->n++] = m;
}

static struct hits *
match(struct retain *r, const char *filter)
{
    static struct hits h;
    h.n = 0;
    retain_match(r, slice_cstr(filter), on_msg, &h);
    return &h;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The topics matched by `filter`, sorted and joined by spaces: "a a/b". */
static const char *
matched(struct retain *r, const char *filter)
{
    static char out[8192];
    static char topics[MAX_HITS][128];
    char *sorted[MAX_HITS];
    struct hits *h = match(r, filter);

    for (size_t i = 0; i < h->n; i++) {
        struct slice t = h->m[i]->topic;
        assert_true(t.len < sizeof(topics[i]));
        memcpy(topics[i], t.p, t.len);
        topics[i][t.len] = '\0';
        sorted[i] = topics[i];
    }
    qsort(sorted, h->n, sizeof(*sorted), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < h->n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, sorted[i]);
    }
    return out;
}

static struct msg *
mk(const char *topic, const char *payload, uint32_t expiry_s, uint64_t now)
{
    struct mqtt_props p = {.has = MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY),
                           .message_expiry = expiry_s};
    struct msg *m = msg_new(slice_cstr(topic), slice_cstr(payload), expiry_s ? &p : NULL, 0,
                            true, 0, now);
    assert_non_null(m);
    return m;
}

/* Store (or with "" delete) and drop our reference. */
static void
put(struct retain *r, const char *topic, const char *payload)
{
    struct msg *m = mk(topic, payload, 0, 0);
    retain_set(r, m);
    msg_unref(m);
}

static void
put_exp(struct retain *r, const char *topic, const char *payload, uint32_t expiry_s,
        uint64_t now)
{
    struct msg *m = mk(topic, payload, expiry_s, now);
    retain_set(r, m);
    msg_unref(m);
}

static void
spec_examples(void **state)
{
    struct retain r;
    retain_init(&r);
    const char *topics[] = {"sport", "sport/", "sport/tennis", "sport/tennis/player1",
                            "sport/tennis/player1/ranking", "sport/tennis/player2",
                            "/finance", "finance"};
    for (size_t i = 0; i < sizeof(topics) / sizeof(*topics); i++)
        put(&r, topics[i], "x");
    assert_int_equal(retain_count(&r), 8);

    /* Exact. */
    assert_string_equal(matched(&r, "sport/tennis/player1"), "sport/tennis/player1");
    assert_string_equal(matched(&r, "sport/tennis/player3"), "");
    assert_string_equal(matched(&r, "sport/tennis/player1/ranking/x"), "");
    /* '+' is one level, an empty one too [MQTT-4.7.1-3]. */
    assert_string_equal(matched(&r, "sport/tennis/+"),
                        "sport/tennis/player1 sport/tennis/player2");
    assert_string_equal(matched(&r, "sport/+"), "sport/ sport/tennis");
    assert_string_equal(matched(&r, "+"), "finance sport");
    assert_string_equal(matched(&r, "+/+"), "/finance sport/ sport/tennis");
    assert_string_equal(matched(&r, "/+"), "/finance");
    assert_string_equal(matched(&r, "+/tennis/+/ranking"), "sport/tennis/player1/ranking");
    /* '#' includes the parent level [MQTT-4.7.1-2]. */
    assert_string_equal(matched(&r, "sport/tennis/player1/#"),
                        "sport/tennis/player1 sport/tennis/player1/ranking");
    assert_string_equal(matched(&r, "sport/#"),
                        "sport sport/ sport/tennis sport/tennis/player1 "
                        "sport/tennis/player1/ranking sport/tennis/player2");
    assert_string_equal(matched(&r, "sport/tennis/+/#"),
                        "sport/tennis/player1 sport/tennis/player1/ranking "
                        "sport/tennis/player2");
    assert_string_equal(matched(&r, "+/#"), matched(&r, "#"));
    assert_int_equal(match(&r, "#")->n, 8);
    assert_string_equal(matched(&r, "nothing/#"), "");
    retain_fini(&r);
}

static void
dollar_topics(void **state)
{
    struct retain r;
    retain_init(&r);
    put(&r, "$SYS/broker/uptime", "1");
    put(&r, "$SYS", "2");
    put(&r, "$", "3");
    put(&r, "a/$x", "4");
    put(&r, "a$", "5");

    /* [MQTT-4.7.2-1]: wildcards at the first level skip '$' topics... */
    assert_string_equal(matched(&r, "#"), "a$ a/$x");
    assert_string_equal(matched(&r, "+"), "a$");
    assert_string_equal(matched(&r, "+/broker/uptime"), "");
    assert_string_equal(matched(&r, "+/#"), "a$ a/$x");
    /* ...but not a filter that names them, nor a '$' below the first level. */
    assert_string_equal(matched(&r, "$SYS/#"), "$SYS $SYS/broker/uptime");
    assert_string_equal(matched(&r, "$SYS/+/uptime"), "$SYS/broker/uptime");
    assert_string_equal(matched(&r, "$"), "$");
    assert_string_equal(matched(&r, "a/+"), "a/$x");
    retain_fini(&r);
}

static void
empty_levels(void **state)
{
    struct retain r;
    retain_init(&r);
    put(&r, "/", "1");
    put(&r, "/a", "2");
    put(&r, "a/", "3");
    put(&r, "a//b", "4");
    put(&r, "//", "5");
    put(&r, "a", "6");

    assert_string_equal(matched(&r, "/"), "/");
    assert_string_equal(matched(&r, "a/"), "a/");
    assert_string_equal(matched(&r, "a//b"), "a//b");
    assert_string_equal(matched(&r, "+/+"), "/ /a a/");
    assert_string_equal(matched(&r, "/+"), "/ /a");
    assert_string_equal(matched(&r, "+/+/+"), "// a//b");
    assert_string_equal(matched(&r, "a/+/b"), "a//b");
    assert_string_equal(matched(&r, "a/+"), "a/");
    assert_string_equal(matched(&r, "/#"), "/ // /a");
    assert_string_equal(matched(&r, "a/#"), "a a/ a//b");
    assert_string_equal(matched(&r, "+"), "a");
    assert_int_equal(match(&r, "#")->n, 6);
    /* Every empty level is a node: "", "a", then "/" + "", "/" + "a", "//" + "", "a/" + "",
     * "a//" + "b". Deleting "a//b" and "a/" prunes the two below "a". */
    assert_int_equal(retain_node_count(&r), 7);
    put(&r, "a//b", "");
    put(&r, "a/", "");
    assert_int_equal(retain_node_count(&r), 5);
    assert_string_equal(matched(&r, "a/#"), "a");
    retain_fini(&r);
}

static void
replace_keeps_one_message_per_topic(void **state)
{
    struct retain r;
    retain_init(&r);
    struct msg *first = mk("a/b", "one", 0, 0);
    retain_set(&r, first);
    struct msg *second = mk("a/b", "two", 0, 0);
    retain_set(&r, second);

    assert_int_equal(retain_count(&r), 1);
    struct hits *h = match(&r, "a/b");
    assert_int_equal(h->n, 1);
    assert_ptr_equal(h->m[0], second);
    /* The store let go of the first message, and holds one reference to the second. */
    assert_int_equal(atomic_load(&first->refs), 1);
    assert_int_equal(atomic_load(&second->refs), 2);
    msg_unref(first);
    msg_unref(second);
    retain_fini(&r);
}

static void
delete_prunes_empty_nodes(void **state)
{
    struct retain r;
    retain_init(&r);
    put(&r, "a/b/c", "1");
    put(&r, "a/b/d", "2");
    put(&r, "a", "3");
    assert_int_equal(retain_node_count(&r), 4); /* a, b, c, d */

    /* An empty payload deletes [MQTT-3.3.1-10]; deleting what is not there changes nothing. */
    put(&r, "a/b/x", "");
    put(&r, "a/b", "");
    assert_int_equal(retain_node_count(&r), 4);
    put(&r, "a/b/c", "");
    assert_int_equal(retain_count(&r), 2);
    assert_int_equal(retain_node_count(&r), 3);
    put(&r, "a/b/d", "");
    assert_int_equal(retain_node_count(&r), 1); /* "a" keeps its own message */
    assert_string_equal(matched(&r, "#"), "a");
    put(&r, "a", "");
    assert_int_equal(retain_count(&r), 0);
    assert_int_equal(retain_node_count(&r), 0);
    assert_string_equal(matched(&r, "#"), "");
    retain_fini(&r);
}

static void
wide_node_grows_and_shrinks(void **state)
{
    struct retain r;
    char topic[32];
    retain_init(&r);

    /* Past RETAIN_FEW children a node switches to a map, and back when they go. */
    for (int i = 0; i < 300; i++) {
        snprintf(topic, sizeof(topic), "w/%d/s", i);
        put(&r, topic, "x");
        assert_int_equal(match(&r, "w/+/s")->n, (size_t)i + 1);
    }
    assert_string_equal(matched(&r, "w/123/s"), "w/123/s");
    assert_string_equal(matched(&r, "w/123/+"), "w/123/s");
    for (int i = 299; i >= 0; i -= 2) {
        snprintf(topic, sizeof(topic), "w/%d/s", i);
        put(&r, topic, "");
    }
    assert_int_equal(retain_count(&r), 150);
    assert_int_equal(match(&r, "w/#")->n, 150);
    for (int i = 0; i < 300; i += 2) {
        snprintf(topic, sizeof(topic), "w/%d/s", i);
        assert_int_equal(match(&r, topic)->n, 1);
        put(&r, topic, "");
        assert_int_equal(match(&r, "w/+/s")->n, 150 - (size_t)i / 2 - 1);
    }
    assert_int_equal(retain_node_count(&r), 0);
    retain_fini(&r);
}

static void
expiry_drops_only_expired(void **state)
{
    struct retain r;
    retain_init(&r);
    put_exp(&r, "e/1", "x", 1, 0);  /* expires at 1000 ms */
    put_exp(&r, "e/3", "x", 3, 0);  /* 3000 */
    put_exp(&r, "e/2", "x", 2, 0);  /* 2000 */
    put(&r, "e/never", "x");

    retain_expire(&r, 999);
    assert_int_equal(retain_count(&r), 4);
    retain_expire(&r, 1000);
    assert_string_equal(matched(&r, "e/+"), "e/2 e/3 e/never");
    retain_expire(&r, 2500);
    assert_string_equal(matched(&r, "e/+"), "e/3 e/never");
    retain_expire(&r, UINT64_MAX);
    assert_string_equal(matched(&r, "#"), "e/never");
    assert_int_equal(retain_count(&r), 1);
    assert_int_equal(retain_node_count(&r), 2); /* expired topics were pruned */
    retain_fini(&r);
}

static void
expiry_of_replaced_or_deleted_message(void **state)
{
    struct retain r;
    retain_init(&r);
    /* Replaced by a message without expiry: the old deadline must not delete it. */
    put_exp(&r, "t/a", "old", 1, 0);
    put(&r, "t/a", "new");
    /* Replaced by one that expires later: only the later deadline counts. */
    put_exp(&r, "t/b", "old", 1, 0);
    put_exp(&r, "t/b", "new", 5, 0);
    /* Replaced by one that expires sooner. */
    put_exp(&r, "t/c", "old", 9, 0);
    put_exp(&r, "t/c", "new", 2, 0);
    /* Deleted, then stored again without expiry. */
    put_exp(&r, "t/d", "old", 1, 0);
    put(&r, "t/d", "");
    put(&r, "t/d", "again");

    retain_expire(&r, 1500);
    assert_string_equal(matched(&r, "t/+"), "t/a t/b t/c t/d");
    struct hits *h = match(&r, "t/b");
    assert_true(slice_eq(h->m[0]->payload, SLICE("new")));
    retain_expire(&r, 2000);
    assert_string_equal(matched(&r, "t/+"), "t/a t/b t/d");
    retain_expire(&r, 4999);
    assert_string_equal(matched(&r, "t/+"), "t/a t/b t/d");
    retain_expire(&r, 5000);
    assert_string_equal(matched(&r, "t/+"), "t/a t/d");
    retain_expire(&r, UINT64_MAX);
    assert_int_equal(retain_count(&r), 2);
    retain_fini(&r);
}

static void
very_deep_topic(void **state)
{
    /* 32 000 levels: matching and freeing must not recurse. */
    size_t len = 32000;
    char *topic = malloc(len + 1);
    char *filter = malloc(len + 2);
    assert_non_null(topic);
    assert_non_null(filter);
    memset(topic, '/', len - 1);
    topic[len - 1] = 'z';
    topic[len] = '\0';
    struct retain r;
    retain_init(&r);
    put(&r, topic, "deep");
    assert_int_equal(retain_node_count(&r), len);
    assert_int_equal(match(&r, topic)->n, 1);
    assert_int_equal(match(&r, "#")->n, 1);
    assert_int_equal(match(&r, "/#")->n, 1);
    /* "+/+/.../+": one '+' per level. */
    for (size_t i = 0; i < len; i++)
        filter[i] = (i % 2 == 0) ? '+' : '/';
    filter[len - 1] = '\0'; /* 16 000 '+' levels: too short */
    assert_int_equal(match(&r, filter)->n, 0);
    retain_fini(&r);
    free(topic);
    free(filter);
}

/* ---- randomized cross-checks ----------------------------------------------------------------- */

#define N_TOPICS 1024

static const char *levels[] = {"a", "b", "", "$s", "cc"};

static void
random_topic(char *out, size_t cap, int max_levels)
{
    do {
        int n = 1 + rand() % max_levels;
        out[0] = '\0';
        for (int i = 0; i < n; i++) {
            if (i)
                strncat(out, "/", cap - strlen(out) - 1);
            strncat(out, levels[rand() % 5], cap - strlen(out) - 1);
        }
    } while (!mqtt_topic_name_valid(slice_cstr(out))); /* "" is not a topic */
}

static void
random_filter(char *out, size_t cap)
{
    do {
        int n = 1 + rand() % 4;
        out[0] = '\0';
        for (int i = 0; i < n; i++) {
            if (i)
                strncat(out, "/", cap - strlen(out) - 1);
            int k = rand() % 8;
            if (k == 7 && i == n - 1)
                strncat(out, "#", cap - strlen(out) - 1);
            else if (k >= 5)
                strncat(out, "+", cap - strlen(out) - 1);
            else
                strncat(out, levels[k], cap - strlen(out) - 1);
        }
    } while (!mqtt_topic_filter_valid(slice_cstr(out)));
}

struct model {
    char topic[N_TOPICS][64];
    struct msg *m[N_TOPICS]; /* what the store should hold per topic (our reference), or NULL */
    int n;
};

static int
model_find(struct model *md, const char *topic)
{
    for (int i = 0; i < md->n; i++) {
        if (strcmp(md->topic[i], topic) == 0)
            return i;
    }
    assert_true(md->n < N_TOPICS);
    strcpy(md->topic[md->n], topic);
    md->m[md->n] = NULL;
    return md->n++;
}

static void
check_filter(struct retain *r, struct model *md, const char *filter)
{
    struct hits *h = match(r, filter);
    size_t expect = 0;

    for (int i = 0; i < md->n; i++) {
        if (!md->m[i] || !mqtt_topic_match(slice_cstr(filter), slice_cstr(md->topic[i])))
            continue;
        expect++;
        size_t seen = 0;
        for (size_t j = 0; j < h->n; j++)
            seen += h->m[j] == md->m[i];
        if (seen != 1)
            fail_msg("filter %s topic %s reported %zu times", filter, md->topic[i], seen);
    }
    if (h->n != expect)
        fail_msg("filter %s: %zu matches, expected %zu", filter, h->n, expect);
}

static void
random_cross_check(void **state)
{
    struct model md = {.n = 0};
    struct retain r;
    char topic[64], filter[64];
    uint64_t now = 0;

    srand(4242);
    retain_init(&r);
    for (int step = 0; step < 20000; step++) {
        random_topic(topic, sizeof(topic), 4);
        int i = model_find(&md, topic);
        int op = rand() % 10;
        struct msg *m;
        if (op < 3) {
            m = mk(topic, "", 0, now); /* delete */
        } else {
            uint32_t exp = op < 6 ? (uint32_t)(1 + rand() % 5) : 0;
            m = mk(topic, "p", exp, now);
        }
        retain_set(&r, m);
        msg_unref(md.m[i]);
        md.m[i] = m->payload.len ? m : NULL;
        if (!md.m[i])
            msg_unref(m);
        if (step % 50 == 0) {
            now += 700;
            retain_expire(&r, now);
            for (int k = 0; k < md.n; k++) {
                if (md.m[k] && msg_expired(md.m[k], now)) {
                    msg_unref(md.m[k]);
                    md.m[k] = NULL;
                }
            }
        }
        size_t n_live = 0;
        for (int k = 0; k < md.n; k++)
            n_live += md.m[k] != NULL;
        assert_int_equal(retain_count(&r), n_live);
        if (step % 20 == 0) {
            for (int k = 0; k < 5; k++) {
                random_filter(filter, sizeof(filter));
                check_filter(&r, &md, filter);
            }
            check_filter(&r, &md, topic);
        }
    }
    for (int k = 0; k < md.n; k++) {
        if (md.m[k])
            put(&r, md.topic[k], "");
        msg_unref(md.m[k]);
    }
    assert_int_equal(retain_count(&r), 0);
    assert_int_equal(retain_node_count(&r), 0);
    retain_fini(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_examples),
        cmocka_unit_test(dollar_topics),
        cmocka_unit_test(empty_levels),
        cmocka_unit_test(replace_keeps_one_message_per_topic),
        cmocka_unit_test(delete_prunes_empty_nodes),
        cmocka_unit_test(wide_node_grows_and_shrinks),
        cmocka_unit_test(expiry_drops_only_expired),
        cmocka_unit_test(expiry_of_replaced_or_deleted_message),
        cmocka_unit_test(very_deep_topic),
        cmocka_unit_test(random_cross_check),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
