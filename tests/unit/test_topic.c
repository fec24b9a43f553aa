/*
 * test_topic.c - topic name/filter validation, shared-subscription syntax and matching
 * [MQTT-4.7], [MQTT-4.8.2]. The matching examples are those of MQTT 3.1.1 / 5.0 sections
 * 4.7.1.2, 4.7.1.3 and 4.7.2.
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

static bool
name_ok(const char *s)
{
    return mqtt_topic_name_valid(slice_cstr(s));
}

static bool
filter_ok(const char *s)
{
    return mqtt_topic_filter_valid(slice_cstr(s));
}

static bool
match(const char *filter, const char *topic)
{
    return mqtt_topic_match(slice_cstr(filter), slice_cstr(topic));
}

static void
name_validity(void **state)
{
    assert_true(name_ok("a"));
    assert_true(name_ok("sport/tennis/player1"));
    assert_true(name_ok("/"));         /* two empty levels */
    assert_true(name_ok("a//b"));      /* empty levels are allowed */
    assert_true(name_ok("/finance"));
    assert_true(name_ok("finance/"));
    assert_true(name_ok("$SYS/uptime"));
    assert_true(name_ok("a b/ü"));     /* any UTF-8 but NUL and wildcards */
    assert_true(name_ok("$share/g/t")); /* a topic name, not a subscription */

    assert_false(name_ok(""));         /* [MQTT-4.7.3-1] */
    assert_false(name_ok("a/+"));      /* [MQTT-4.7.1-1, MQTT-3.3.2-2] */
    assert_false(name_ok("a/#"));
    assert_false(name_ok("a+b"));
    assert_false(name_ok("#"));
    assert_false(mqtt_topic_name_valid(slice_make("a\0b", 3))); /* [MQTT-4.7.3-2] */
}

static void
name_length_limit(void **state)
{
    size_t n = 65536;
    char *s = malloc(n);
    memset(s, 'a', n);
    assert_true(mqtt_topic_name_valid(slice_make(s, 65535)));  /* [MQTT-4.7.3-3] */
    assert_false(mqtt_topic_name_valid(slice_make(s, 65536)));
    assert_true(mqtt_topic_filter_valid(slice_make(s, 65535)));
    assert_false(mqtt_topic_filter_valid(slice_make(s, 65536)));
    free(s);
}

static void
filter_validity(void **state)
{
    /* [MQTT-4.7.1-2]: '#' alone or as the whole last level. */
    assert_true(filter_ok("#"));
    assert_true(filter_ok("sport/tennis/#"));
    assert_true(filter_ok("/#"));
    assert_true(filter_ok("a//#"));
    assert_false(filter_ok("sport/tennis#"));
    assert_false(filter_ok("sport/tennis/#/ranking"));
    assert_false(filter_ok("#/"));
    assert_false(filter_ok("##"));
    assert_false(filter_ok("a/#b"));

    /* [MQTT-4.7.1-3]: '+' a whole level, anywhere. */
    assert_true(filter_ok("+"));
    assert_true(filter_ok("+/tennis/#"));
    assert_true(filter_ok("sport/+/player1"));
    assert_true(filter_ok("+/+"));
    assert_true(filter_ok("/+"));
    assert_true(filter_ok("+/"));
    assert_true(filter_ok("+//+"));
    assert_false(filter_ok("sport+"));
    assert_false(filter_ok("sport/+x"));
    assert_false(filter_ok("++"));
    assert_false(filter_ok("a/+b/c"));

    /* Empty levels and plain names. */
    assert_true(filter_ok("/"));
    assert_true(filter_ok("a//b"));
    assert_true(filter_ok("$SYS/#"));
    assert_false(filter_ok(""));                                     /* [MQTT-4.7.3-1] */
    assert_false(mqtt_topic_filter_valid(slice_make("a/\0", 3)));     /* [MQTT-4.7.3-2] */
}

static int
split(const char *s, char *group, char *inner)
{
    struct slice g = SLICE("untouched"), in = SLICE("untouched");
    int rc = mqtt_shared_split(slice_cstr(s), &g, &in);
    snprintf(group, 64, "%.*s", SLICE_FMT(g));
    snprintf(inner, 64, "%.*s", SLICE_FMT(in));
    return rc;
}

static void
shared_split(void **state)
{
    char g[64], in[64];

    assert_int_equal(split("$share/grp/sport/#", g, in), 1);
    assert_string_equal(g, "grp");
    assert_string_equal(in, "sport/#");
    assert_int_equal(split("$share/g/+", g, in), 1);
    assert_string_equal(in, "+");
    assert_int_equal(split("$share/g//", g, in), 1); /* inner "/" is two empty levels */
    assert_string_equal(in, "/");
    assert_int_equal(split("$share/g/$share/h/x", g, in), 1);
    assert_string_equal(g, "g");
    assert_string_equal(in, "$share/h/x");

    /* Not shared: left alone. */
    assert_int_equal(split("sport/#", g, in), 0);
    assert_string_equal(g, "untouched");
    assert_int_equal(split("$share", g, in), 0);
    assert_int_equal(split("$SHARE/g/x", g, in), 0); /* case matters [MQTT-4.7.3-4] */
    assert_int_equal(split("$shared/g/x", g, in), 0);

    /* ShareName at least one character [MQTT-4.8.2-1]. */
    assert_int_equal(split("$share//x", g, in), -1);
    assert_int_equal(split("$share/", g, in), -1);
    /* No '/', '+' or '#' in it, and followed by '/' and a filter [MQTT-4.8.2-2]. */
    assert_int_equal(split("$share/g+/x", g, in), -1);
    assert_int_equal(split("$share/#", g, in), -1);
    assert_int_equal(split("$share/+/x", g, in), -1);
    assert_int_equal(split("$share/g", g, in), -1);
    assert_int_equal(split("$share/g/", g, in), -1);
    /* The inner filter must be valid itself. */
    assert_int_equal(split("$share/g/a#", g, in), -1);
    assert_int_equal(split("$share/g/#/a", g, in), -1);
    assert_string_equal(g, "untouched");
}

static void
multi_level_examples(void **state)
{
    /* 4.7.1.2: "sport/tennis/player1/#" */
    assert_true(match("sport/tennis/player1/#", "sport/tennis/player1"));
    assert_true(match("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    assert_true(match("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
    assert_false(match("sport/tennis/player1/#", "sport/tennis/player2"));
    assert_false(match("sport/tennis/player1/#", "sport/tennis"));
    /* "sport/#" also matches the singular "sport", '#' including the parent level. */
    assert_true(match("sport/#", "sport"));
    assert_true(match("sport/#", "sport/"));
    assert_true(match("#", "sport/tennis"));
    assert_true(match("#", "/"));
    assert_false(match("sport/tennis/#", "sport"));
    assert_false(match("sport/#", "sports"));
}

static void
single_level_examples(void **state)
{
    /* 4.7.1.3: "sport/tennis/+" */
    assert_true(match("sport/tennis/+", "sport/tennis/player1"));
    assert_true(match("sport/tennis/+", "sport/tennis/player2"));
    assert_false(match("sport/tennis/+", "sport/tennis/player1/ranking"));
    /* "sport/+" does not match "sport" but does match "sport/". */
    assert_false(match("sport/+", "sport"));
    assert_true(match("sport/+", "sport/"));
    /* "+/+" and "/+" match "/finance", "+" does not. */
    assert_true(match("+/+", "/finance"));
    assert_true(match("/+", "/finance"));
    assert_false(match("+", "/finance"));
    /* "+/tennis/#" and "sport/+/player1" */
    assert_true(match("+/tennis/#", "sport/tennis/player1"));
    assert_true(match("sport/+/player1", "sport/tennis/player1"));
    assert_false(match("sport/+/player1", "sport/tennis/player2"));
    assert_true(match("+/#", "a"));
    assert_true(match("+", "a"));
    assert_false(match("+", "a/b"));
}

static void
dollar_topics(void **state)
{
    /* [MQTT-4.7.2-1]: a leading wildcard does not match a topic starting with '$'. */
    assert_false(match("#", "$SYS/monitor/Clients"));
    assert_false(match("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert_false(match("+", "$SYS"));
    assert_false(match("+/#", "$SYS"));
    assert_true(match("$SYS/#", "$SYS/monitor/Clients"));
    assert_true(match("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert_true(match("$SYS/#", "$SYS"));
    assert_true(match("$SYS", "$SYS"));
    /* Only the first character counts: '$' further in is ordinary. */
    assert_true(match("+/$x", "a/$x"));
    assert_true(match("a/+", "a/$x"));
    assert_true(match("a/#", "a/$x"));
    assert_true(match("#", "a$"));
}

static void
empty_levels(void **state)
{
    assert_true(match("a//b", "a//b"));
    assert_true(match("a/+/b", "a//b"));
    assert_false(match("a/b", "a//b"));
    assert_false(match("a/+", "a//b"));
    assert_true(match("a/#", "a//b"));
    assert_true(match("/", "/"));
    assert_true(match("+/+", "/"));
    assert_false(match("+", "/"));
    assert_true(match("/#", "/"));
    assert_true(match("/#", "/a"));
    assert_false(match("/a", "a"));
    assert_false(match("a", "a/"));
    assert_true(match("a/", "a/"));
    assert_true(match("a/+", "a/"));
    assert_true(match("a/#", "a/"));
    assert_true(match("+/", "a/"));
    assert_false(match("+/", "a"));
}

static void
literal_matching(void **state)
{
    assert_true(match("a/b/c", "a/b/c"));
    assert_false(match("a/b/c", "a/b"));
    assert_false(match("a/b", "a/b/c"));
    assert_false(match("a/b/c", "a/b/cd"));
    assert_false(match("ACCOUNTS", "Accounts")); /* case-sensitive [MQTT-4.7.3-4] */
    assert_false(match("a/b ", "a/b"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(name_validity),        cmocka_unit_test(name_length_limit),
        cmocka_unit_test(filter_validity),      cmocka_unit_test(shared_split),
        cmocka_unit_test(multi_level_examples), cmocka_unit_test(single_level_examples),
        cmocka_unit_test(dollar_topics),        cmocka_unit_test(empty_levels),
        cmocka_unit_test(literal_matching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
