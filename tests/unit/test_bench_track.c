/*
 * test_bench_track.c - petrel-bench's per-stream accounting: duplicates, out-of-order
 * arrivals, losses with exemptions (unacknowledged or refused messages), bitmap growth, and
 * the union used for shared subscription groups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "petrel-bench/track.h"

static void
in_order_stream(void **state)
{
    struct track t;
    track_init(&t);
    for (uint32_t s = 0; s < 100000; s++)
        assert_int_equal(track_add(&t, s), 1);
    assert_int_equal(t.n_unique, 100000);
    assert_int_equal(t.n_dup, 0);
    assert_int_equal(t.n_ooo, 0);
    assert_int_equal(t.hi, 100000);
    assert_int_equal(track_missing(&t, 100000, NULL, 0), 0);
    track_fini(&t);
}

static void
duplicates_and_reordering(void **state)
{
    struct track t;
    track_init(&t);
    track_add(&t, 0);
    track_add(&t, 2);
    assert_int_equal(track_add(&t, 1), 1); /* late: new, but out of order */
    assert_int_equal(track_add(&t, 2), 0); /* repeat */
    assert_int_equal(track_add(&t, 0), 0); /* repeat, however late */
    assert_int_equal(t.n_unique, 3);
    assert_int_equal(t.n_dup, 2);
    assert_int_equal(t.n_ooo, 1);
    assert_int_equal(t.hi, 3);
    track_fini(&t);
}

static void
losses_and_exemptions(void **state)
{
    struct track t;
    track_init(&t);
    for (uint32_t s = 0; s < 1000; s++)
        if (s != 10 && s != 500 && s != 998)
            track_add(&t, s);
    /* 1000 sent, 3 never arrived, and 2 more sent but not received at all (tail). */
    assert_int_equal(track_missing(&t, 1002, NULL, 0), 5);
    /* 998..1001 were still unacknowledged at the end: not owed. 10 was refused. */
    uint32_t exempt[] = {998, 999, 1000, 1001, 10, 5000};
    assert_int_equal(track_missing(&t, 1002, exempt, 6), 1); /* only 500 */
    /* Fewer sent than the bitmap holds: only [0, n_sent) counts. */
    assert_int_equal(track_missing(&t, 64, NULL, 0), 1);
    assert_int_equal(track_missing(&t, 0, NULL, 0), 0);
    track_fini(&t);
}

static void
nothing_received(void **state)
{
    struct track t;
    track_init(&t);
    assert_int_equal(track_missing(&t, 77, NULL, 0), 77);
    assert_false(track_has(&t, 0));
    track_fini(&t);
}

static void
sparse_growth(void **state)
{
    struct track t;
    track_init(&t);
    track_add(&t, 3000000);
    assert_true(t.cap > 3000000);
    assert_true(track_has(&t, 3000000));
    assert_false(track_has(&t, 2999999));
    assert_int_equal(track_missing(&t, 3000001, NULL, 0), 3000000);
    track_fini(&t);
}

/* A shared group: members got disjoint parts, one message twice. */
static void
union_of_members(void **state)
{
    struct track a, b, u;
    track_init(&a);
    track_init(&b);
    track_init(&u);
    for (uint32_t s = 0; s < 10000; s++)
        track_add(s % 2 ? &a : &b, s);
    track_add(&a, 4); /* also delivered to the other member */
    track_union(&u, &a);
    track_union(&u, &b);
    assert_int_equal(u.n_unique, 10000);
    assert_int_equal(a.n_unique + b.n_unique - u.n_unique, 1);
    assert_int_equal(track_missing(&u, 10000, NULL, 0), 0);
    assert_int_equal(track_missing(&a, 10000, NULL, 0), 4999);
    track_fini(&a);
    track_fini(&b);
    track_fini(&u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(in_order_stream),       cmocka_unit_test(duplicates_and_reordering),
        cmocka_unit_test(losses_and_exemptions), cmocka_unit_test(nothing_received),
        cmocka_unit_test(sparse_growth),         cmocka_unit_test(union_of_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
