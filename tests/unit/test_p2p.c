/*
 * test_p2p.c - recognising point-to-point topics and filters (route/p2p.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/p2p.h"

static struct p2p_rules
rules(void)
{
    return (struct p2p_rules){.enabled = true, .keyword = SLICE("p2p")};
}

static void
expect_kind(const struct p2p_rules *r, const char *topic, enum p2p_kind kind, const char *target)
{
    struct slice parent, t;
    enum p2p_kind got = p2p_classify(r, slice_cstr(topic), &parent, &t);

    assert_int_equal(got, kind);
    if (target)
        assert_true(slice_eq(t, slice_cstr(target)));
}

static void
classifies_p2p_topics(void **state)
{
    struct p2p_rules r = rules();

    expect_kind(&r, "app/p2p/dev1", P2P_DIRECT, "dev1");
    expect_kind(&r, "app/p2p/GID_demo@@@DEVICE_001", P2P_DIRECT, "GID_demo@@@DEVICE_001");
    /* The client ID is everything after the keyword, slashes included. */
    expect_kind(&r, "app/p2p/a/b/c", P2P_DIRECT, "a/b/c");
    expect_kind(&r, "app/p2p/p2p", P2P_DIRECT, "p2p");
}

static void
ordinary_topics_are_not_p2p(void **state)
{
    struct p2p_rules r = rules();

    expect_kind(&r, "app/p2p", P2P_NONE, NULL);        /* no target */
    expect_kind(&r, "app/p2p/", P2P_NONE, NULL);       /* empty target */
    expect_kind(&r, "/p2p/dev1", P2P_NONE, NULL);      /* empty parent */
    expect_kind(&r, "$SYS/p2p/dev1", P2P_NONE, NULL);  /* '$' parent */
    expect_kind(&r, "app/x/p2p/dev1", P2P_NONE, NULL); /* keyword not second */
    expect_kind(&r, "app/P2P/dev1", P2P_NONE, NULL);   /* case matters */
    expect_kind(&r, "app/p2px/dev1", P2P_NONE, NULL);
    expect_kind(&r, "p2p/dev1", P2P_NONE, NULL);
}

static void
disabled_means_never(void **state)
{
    struct p2p_rules r = rules();

    r.enabled = false;
    expect_kind(&r, "app/p2p/dev1", P2P_NONE, NULL);
}

static void
keyword_is_configurable(void **state)
{
    struct p2p_rules r = rules();

    r.keyword = SLICE("direct");
    expect_kind(&r, "app/direct/dev1", P2P_DIRECT, "dev1");
    expect_kind(&r, "app/p2p/dev1", P2P_NONE, NULL);
}

static void
parent_list_refuses_others(void **state)
{
    char *parents[] = {"app", "fleet"};
    struct p2p_rules r = rules();

    r.parents = parents;
    r.n_parents = 2;
    expect_kind(&r, "app/p2p/dev1", P2P_DIRECT, "dev1");
    expect_kind(&r, "fleet/p2p/dev1", P2P_DIRECT, "dev1");
    expect_kind(&r, "other/p2p/dev1", P2P_REFUSED, "dev1");
    expect_kind(&r, "ap/p2p/dev1", P2P_REFUSED, "dev1");
}

static void
filters_naming_other_clients_are_refused(void **state)
{
    struct p2p_rules r = rules();
    struct slice me = SLICE("dev1");

    assert_true(p2p_filter_allowed(&r, SLICE("app/p2p/dev1"), me));
    assert_true(p2p_filter_allowed(&r, SLICE("app/p2p/+"), me));
    assert_true(p2p_filter_allowed(&r, SLICE("app/p2p/#"), me));
    assert_false(p2p_filter_allowed(&r, SLICE("app/p2p/dev2"), me));
    assert_false(p2p_filter_allowed(&r, SLICE("app/p2p/dev1/x"), me));
    /* An ID with levels: only filters matching it. */
    assert_true(p2p_filter_allowed(&r, SLICE("app/p2p/GID/#"), SLICE("GID/dev1")));
    assert_false(p2p_filter_allowed(&r, SLICE("app/p2p/+"), SLICE("GID/dev1")));
    /* Filters that cannot name a P2P topic are ordinary. */
    assert_true(p2p_filter_allowed(&r, SLICE("app/#"), me));
    assert_true(p2p_filter_allowed(&r, SLICE("+/p2p/dev2"), me));
    assert_true(p2p_filter_allowed(&r, SLICE("#"), me));
    assert_true(p2p_filter_allowed(&r, SLICE("app/other/dev2"), me));
    assert_true(p2p_filter_allowed(&r, SLICE("app/p2p/"), me)); /* empty target: not P2P */
}

static void
only_p2p_shaped_filters_take_part(void **state)
{
    struct p2p_rules r = rules();

    assert_true(p2p_filter_is_p2p(&r, SLICE("app/p2p/dev1")));
    assert_true(p2p_filter_is_p2p(&r, SLICE("app/p2p/+")));
    assert_true(p2p_filter_is_p2p(&r, SLICE("app/p2p/#")));
    assert_false(p2p_filter_is_p2p(&r, SLICE("#")));
    assert_false(p2p_filter_is_p2p(&r, SLICE("app/#")));
    assert_false(p2p_filter_is_p2p(&r, SLICE("+/p2p/dev1")));
    assert_false(p2p_filter_is_p2p(&r, SLICE("app/p2p/")));
    assert_false(p2p_filter_is_p2p(&r, SLICE("$SYS/p2p/x")));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classifies_p2p_topics),
        cmocka_unit_test(ordinary_topics_are_not_p2p),
        cmocka_unit_test(disabled_means_never),
        cmocka_unit_test(keyword_is_configurable),
        cmocka_unit_test(parent_list_refuses_others),
        cmocka_unit_test(filters_naming_other_clients_are_refused),
        cmocka_unit_test(only_p2p_shaped_filters_take_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
