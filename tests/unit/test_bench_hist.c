/*
 * test_bench_hist.c - petrel-bench's latency histogram: bucket layout (exact below 256,
 * log-linear above, contiguous, at most 1/128 wide), quantiles against known distributions,
 * merging across threads, and the edges (empty, one value, 0, UINT64_MAX).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "petrel-bench/hist.h"

/* |got - want| <= want * rel */
static void
assert_near(uint64_t got, uint64_t want, double rel)
{
    double diff = got > want ? (double)(got - want) : (double)(want - got);
    if (diff > (double)want * rel)
        fail_msg("got %llu, want %llu within %.2f%%", (unsigned long long)got,
                 (unsigned long long)want, rel * 100);
}

static struct hist *
hist_alloc(void)
{
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_init(h);
    return h;
}

static void
small_values_are_exact(void **state)
{
    for (uint64_t v = 0; v < 2 * HIST_SUB; v++) {
        uint32_t i = hist_index(v);
        assert_int_equal(i, v);
        assert_int_equal(hist_bucket_low(i), v);
        assert_int_equal(hist_bucket_high(i), v);
    }
}

/* Every value lies in its bucket; buckets follow each other without gaps and are at most
 * 1/HIST_SUB of their low value wide (the ~1% precision promised). */
static void
buckets_are_contiguous_and_narrow(void **state)
{
    for (uint32_t i = 0; i + 1 < HIST_BUCKETS; i++) {
        uint64_t low = hist_bucket_low(i), high = hist_bucket_high(i);
        assert_true(low <= high);
        assert_int_equal(hist_bucket_low(i + 1), high + 1);
        assert_int_equal(hist_index(low), i);
        assert_int_equal(hist_index(high), i);
        if (low >= 2 * HIST_SUB)
            assert_true((double)(high - low + 1) <= (double)low / HIST_SUB);
    }
    assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
    assert_true(hist_bucket_high(HIST_BUCKETS - 1) == UINT64_MAX);

    uint64_t v = 1;
    for (int shift = 0; shift < 64; shift++, v <<= 1) {
        uint64_t probes[] = {v - 1, v, v + 1, v + v / 3};
        for (size_t k = 0; k < sizeof(probes) / sizeof(*probes); k++) {
            uint32_t i = hist_index(probes[k]);
            assert_true(hist_bucket_low(i) <= probes[k]);
            assert_true(probes[k] <= hist_bucket_high(i));
        }
    }
}

static void
empty_and_single(void **state)
{
    struct hist *h = hist_alloc();
    assert_int_equal(hist_quantile(h, 0.5), 0);
    assert_int_equal(hist_quantile(h, 1.0), 0);

    hist_record(h, 123456789);
    /* One value: every quantile is that value, clamped into [min, max]. */
    assert_int_equal(hist_quantile(h, 0.5), 123456789);
    assert_int_equal(hist_quantile(h, 0.999), 123456789);
    assert_int_equal(hist_quantile(h, 1.0), 123456789);
    assert_int_equal(h->min, 123456789);
    assert_int_equal(h->max, 123456789);
    assert_int_equal(h->n, 1);
    free(h);
}

static void
uniform_percentiles(void **state)
{
    struct hist *h = hist_alloc();
    for (uint64_t v = 1; v <= 1000000; v++)
        hist_record(h, v * 1000); /* 1 us .. 1 s in ns */
    assert_near(hist_quantile(h, 0.5), 500000000, 0.01);
    assert_near(hist_quantile(h, 0.99), 990000000, 0.01);
    assert_near(hist_quantile(h, 0.999), 999000000, 0.01);
    assert_near(hist_quantile(h, 0.001), 1000000, 0.01);
    assert_int_equal(hist_quantile(h, 1.0), 1000000000);
    assert_int_equal(h->min, 1000);
    free(h);
}

/* The quantile is the value at rank ceil(q * n): a tail of 1% does not move p99, a tail of
 * 0.1% moves p99.9 only. */
static void
quantile_rank(void **state)
{
    struct hist *h = hist_alloc();
    for (int i = 0; i < 9990; i++)
        hist_record(h, 100);
    for (int i = 0; i < 10; i++)
        hist_record(h, 5000000);
    assert_int_equal(hist_quantile(h, 0.5), 100);
    assert_int_equal(hist_quantile(h, 0.99), 100);
    assert_int_equal(hist_quantile(h, 0.999), 100); /* rank 9990 is still 100 */
    assert_near(hist_quantile(h, 0.9991), 5000000, 0.005);
    assert_int_equal(hist_quantile(h, 1.0), 5000000);
    free(h);
}

static void
merge_equals_single_recording(void **state)
{
    struct hist *a = hist_alloc(), *b = hist_alloc(), *all = hist_alloc(), *empty = hist_alloc();
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        uint64_t v = x % 50000000;
        hist_record(i % 3 ? a : b, v);
        hist_record(all, v);
    }
    hist_merge(a, b);
    hist_merge(a, empty); /* no effect */
    assert_int_equal(a->n, all->n);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        assert_int_equal(a->counts[i], all->counts[i]);
    assert_int_equal(hist_quantile(a, 0.99), hist_quantile(all, 0.99));

    hist_merge(empty, all); /* into an empty one */
    assert_int_equal(empty->min, all->min);
    assert_int_equal(hist_quantile(empty, 0.5), hist_quantile(all, 0.5));
    free(a);
    free(b);
    free(all);
    free(empty);
}

static void
extremes(void **state)
{
    struct hist *h = hist_alloc();
    hist_record(h, 0);
    hist_record(h, UINT64_MAX);
    assert_int_equal(hist_quantile(h, 0.5), 0);
    assert_true(hist_quantile(h, 0.9) >= hist_bucket_low(HIST_BUCKETS - 1));
    assert_true(hist_quantile(h, 1.0) == UINT64_MAX);
    free(h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_values_are_exact),
        cmocka_unit_test(buckets_are_contiguous_and_narrow),
        cmocka_unit_test(empty_and_single),
        cmocka_unit_test(uniform_percentiles),
        cmocka_unit_test(quantile_rank),
        cmocka_unit_test(merge_equals_single_recording),
        cmocka_unit_test(extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
