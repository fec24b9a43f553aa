/*
 * test_base.c - base/: the hash map (against a plain array model), buffers and lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/list.h"
#include "base/map.h"

#define N_KEYS 2000

static void
map_matches_a_model_under_churn(void **state)
{
    static char keys[N_KEYS][16];
    static int present[N_KEYS];
    struct map m;
    unsigned seed = 12345;

    memset(present, 0, sizeof(present)); /* the test runs twice (map_works_under_a_random_key) */
    map_init(&m);
    for (int i = 0; i < N_KEYS; i++)
        snprintf(keys[i], sizeof(keys[i]), "client-%d", i);
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % N_KEYS);
        struct slice key = slice_cstr(keys[k]);
        if ((seed >> 4) & 1) {
            void *old = map_put(&m, key, keys[k]);
            assert_ptr_equal(old, present[k] ? keys[k] : NULL);
            present[k] = 1;
        } else {
            void *old = map_del(&m, key);
            assert_ptr_equal(old, present[k] ? keys[k] : NULL);
            present[k] = 0;
        }
    }
    size_t n = 0;
    for (int i = 0; i < N_KEYS; i++) {
        assert_ptr_equal(map_get(&m, slice_cstr(keys[i])), present[i] ? keys[i] : NULL);
        n += (size_t)present[i];
    }
    assert_int_equal(m.n, n);
    size_t pos = 0, walked = 0;
    while (map_next(&m, &pos))
        walked++;
    assert_int_equal(walked, n);
    map_fini(&m);
}

static void
map_empty_key_and_binary_keys(void **state)
{
    struct map m;
    static const char bin[] = {'a', 0, 'b'};

    map_init(&m);
    assert_null(map_get(&m, SLICE("")));
    map_put(&m, SLICE(""), "empty");
    map_put(&m, slice_make(bin, 3), "bin");
    assert_string_equal(map_get(&m, SLICE("")), "empty");
    assert_string_equal(map_get(&m, slice_make(bin, 3)), "bin");
    assert_null(map_get(&m, SLICE("a")));
    map_fini(&m);
}

/* tests/integration/test_slow_consumers.py computes which worker owns a client ID with the
 * same function: these are the values it checks too. */
static void
hash_fixed_is_the_same_in_every_run(void **state)
{
    assert_true(hash_fixed("slow-pub", 8) == 15145049186344098179ull);
    assert_true(hash_fixed("abcdefghijklmnopq", 17) == 11064456238532617293ull);
}

/* What the keyed hash is for: keys found to share a slot under one key (as a client could
 * find them offline against a fixed hash) spread out under another. */
static void
hash_keyed_spreads_keys_chosen_against_another_key(void **state)
{
    enum { SLOTS = 1024, WANT = 64 };
    uint64_t k1[2] = {1, 2}, k2[2];
    static char found[WANT][24];
    int n = 0;

    for (unsigned i = 0; n < WANT && i < 10000000u; i++) {
        char id[24];
        int len = snprintf(id, sizeof(id), "evil-%u", i);
        if ((hash_keyed(k1, id, (size_t)len) & (SLOTS - 1)) == 7)
            memcpy(found[n++], id, sizeof(id));
    }
    assert_int_equal(n, WANT);
    hash_key_random(k2);
    assert_true(k2[0] != k1[0] || k2[1] != k1[1]);
    int count[SLOTS] = {0}, worst = 0;
    for (int i = 0; i < WANT; i++) {
        uint64_t h = hash_keyed(k2, found[i], strlen(found[i]));
        int c = ++count[h & (SLOTS - 1)];
        worst = c > worst ? c : worst;
        assert_true(h == hash_keyed(k2, found[i], strlen(found[i]))); /* deterministic */
    }
    /* 64 random keys in 1024 slots put 5 in one slot about once in 150 000 runs */
    assert_true(worst <= 4);
}

/* The maps keep working once their key is random (it must be set before any entry exists). */
static void
map_works_under_a_random_key(void **state)
{
    map_key_random();
    map_matches_a_model_under_churn(state);
    map_empty_key_and_binary_keys(state);
}

static void
buf_appends_and_consumes(void **state)
{
    struct buf b;

    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10000);
    buf_consume(&b, 9995);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.p, "56789", 5);
    buf_consume(&b, 5);
    buf_shrink(&b, 0);
    assert_null(b.p);
    buf_fini(&b);
}

struct item {
    struct list link;
    int v;
};

static void
buf_fit_gives_back_room_around_small_contents(void **state)
{
    (void)state;
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_reserve(&b, 64 * 1024), 0);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    buf_fit(&b, 4096); /* a partial packet of 3 bytes keeps 4 KiB, not 64 */
    assert_int_equal(b.cap, 4096);
    assert_memory_equal(b.p, "abc", 3);
    assert_int_equal(buf_reserve(&b, 8192), 0);
    memset(b.p + b.len, 'x', 8192);
    b.len += 8192;
    buf_fit(&b, 4096); /* more than `keep` is in use: nothing to give back */
    assert_true(b.cap >= 8195);
    buf_consume(&b, b.len);
    buf_fit(&b, 4096); /* empty: as buf_shrink */
    assert_null(b.p);
    assert_int_equal(b.cap, 0);
    buf_fini(&b);
}

static void
list_keeps_order(void **state)
{
    struct list head = LIST_INIT(head);
    struct item items[5];
    struct list *pos;
    int expect = 0;

    for (int i = 0; i < 5; i++) {
        items[i].v = i;
        list_push(&head, &items[i].link);
    }
    list_remove(&items[2].link);
    list_remove(&items[2].link); /* harmless twice */
    list_for_each(pos, &head)
    {
        if (expect == 2)
            expect++;
        assert_int_equal(list_entry(pos, struct item, link)->v, expect++);
    }
    assert_int_equal(expect, 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_matches_a_model_under_churn),
        cmocka_unit_test(map_empty_key_and_binary_keys),
        cmocka_unit_test(buf_appends_and_consumes),
        cmocka_unit_test(buf_fit_gives_back_room_around_small_contents),
        cmocka_unit_test(list_keeps_order),
        cmocka_unit_test(hash_fixed_is_the_same_in_every_run),
        cmocka_unit_test(hash_keyed_spreads_keys_chosen_against_another_key),
        cmocka_unit_test(map_works_under_a_random_key), /* last: it changes the maps' key */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
