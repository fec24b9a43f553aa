/*
 * test_addr_rate.c - net/addr_rate.c: per-address token buckets for new connections
 * (max_connection_rate).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "net/addr_rate.h"

/* Connections allowed out of `n` tries from `peer` at time `now`. */
static int
allowed(struct addr_rate *r, const char *peer, int n, uint64_t now)
{
    int ok = 0;

    for (int i = 0; i < n; i++)
        ok += addr_rate_allow(r, peer, now);
    return ok;
}

static void
burst_then_refill(void **state)
{
    (void)state;
    struct addr_rate *r = addr_rate_new(5);

    assert_int_equal(allowed(r, "10.0.0.1:1000", 20, 1000), 5); /* a burst of per_sec */
    assert_int_equal(allowed(r, "10.0.0.1:1001", 5, 1100), 0);  /* 0.5 token back */
    assert_int_equal(allowed(r, "10.0.0.1:1002", 5, 1200), 1);  /* 1 token after 200 ms */
    assert_int_equal(allowed(r, "10.0.0.1:1003", 20, 5000), 5); /* full again, never more */
    addr_rate_free(r);
}

static void
port_is_ignored_addresses_are_not(void **state)
{
    (void)state;
    struct addr_rate *r = addr_rate_new(2);

    assert_int_equal(allowed(r, "10.0.0.1:1", 1, 0), 1);
    assert_int_equal(allowed(r, "10.0.0.1:2", 1, 0), 1);
    assert_int_equal(allowed(r, "10.0.0.1:3", 1, 0), 0);
    assert_int_equal(allowed(r, "10.0.0.2:3", 2, 0), 2);
    assert_int_equal(allowed(r, "[::1]:5", 3, 0), 2);
    assert_int_equal(allowed(r, "[::1]:6", 1, 0), 0);
    assert_int_equal(allowed(r, "[::2]:6", 1, 0), 1);
    addr_rate_free(r);
}

static void
many_addresses_keep_the_table_bounded(void **state)
{
    (void)state;
    struct addr_rate *r = addr_rate_new(1);
    char peer[64];

    /* Far more addresses than slots (16 x 256), one new one per millisecond: each still gets
     * its first connection (an evicted one starts afresh), and the address that tries all
     * the time is never the stalest of its neighbourhood, so it stays limited to its rate. */
    int hammered = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(peer, sizeof(peer), "10.%d.%d.%d:80", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_true(addr_rate_allow(r, peer, (uint64_t)i));
        hammered += allowed(r, "192.168.1.1:9", 1, (uint64_t)i);
    }
    assert_int_equal(hammered, 1 + 19); /* the burst, then one per second */
    addr_rate_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_refill),
        cmocka_unit_test(port_is_ignored_addresses_are_not),
        cmocka_unit_test(many_addresses_keep_the_table_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
