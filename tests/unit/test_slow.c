/*
 * test_slow.c - the slow-consumer policy (session/slow.c): which messages a backlogged
 * session drops or refuses, when its queue counts as full, and when output has stalled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "session/slow.h"

static const struct slow_limits limits = {
    .max_queued_messages = 10,
    .max_queued_bytes = 1000,
    .qos0_output_limit = 4096,
};

static struct slow_backlog
backlog(size_t out_pending, uint32_t n_queued, uint64_t queued_bytes)
{
    return (struct slow_backlog){
        .is_connected = true,
        .out_pending = out_pending,
        .n_queued = n_queued,
        .queued_bytes = queued_bytes,
    };
}

static void
idle_client_takes_everything(void **state)
{
    struct slow_backlog b = backlog(0, 0, 0);

    assert_int_equal(slow_judge(&limits, &b, 0, 100), SLOW_ACCEPT);
    assert_int_equal(slow_judge(&limits, &b, 1, 100), SLOW_ACCEPT);
    assert_int_equal(slow_judge(&limits, &b, 2, 100), SLOW_ACCEPT);
}

static void
qos0_dropped_while_offline(void **state)
{
    struct slow_backlog b = backlog(0, 0, 0);

    b.is_connected = false;
    assert_int_equal(slow_judge(&limits, &b, 0, 10), SLOW_DROP_OFFLINE);
    /* QoS 1/2 wait in the queue of an offline session. */
    assert_int_equal(slow_judge(&limits, &b, 1, 10), SLOW_ACCEPT);
}

static void
qos0_dropped_beyond_output_limit(void **state)
{
    struct slow_backlog at = backlog(4096, 0, 0), over = backlog(4097, 0, 0);

    assert_int_equal(slow_judge(&limits, &at, 0, 10), SLOW_ACCEPT);
    assert_int_equal(slow_judge(&limits, &over, 0, 10), SLOW_DROP_QOS0);
    /* The output limit is for QoS 0 only: QoS 1/2 are bounded by the queue. */
    assert_int_equal(slow_judge(&limits, &over, 1, 10), SLOW_ACCEPT);
}

static void
qos0_goes_before_qos1_is_refused(void **state)
{
    /* Half the queue's messages or bytes: QoS 0 gives way while QoS 1 is still taken. */
    struct slow_backlog half_n = backlog(0, 5, 50), half_bytes = backlog(0, 1, 500);
    struct slow_backlog below = backlog(0, 4, 499);

    assert_int_equal(slow_judge(&limits, &below, 0, 10), SLOW_ACCEPT);
    assert_int_equal(slow_judge(&limits, &half_n, 0, 10), SLOW_DROP_QOS0);
    assert_int_equal(slow_judge(&limits, &half_n, 1, 10), SLOW_ACCEPT);
    assert_int_equal(slow_judge(&limits, &half_bytes, 0, 10), SLOW_DROP_QOS0);
    assert_int_equal(slow_judge(&limits, &half_bytes, 2, 10), SLOW_ACCEPT);
}

static void
qos1_refused_when_queue_full(void **state)
{
    struct slow_backlog by_count = backlog(0, 10, 100), by_bytes = backlog(0, 3, 950);

    assert_int_equal(slow_judge(&limits, &by_count, 1, 1), SLOW_FULL);
    assert_int_equal(slow_judge(&limits, &by_count, 2, 1), SLOW_FULL);
    /* 950 + 50 fits exactly; one byte more does not. */
    assert_int_equal(slow_judge(&limits, &by_bytes, 1, 50), SLOW_ACCEPT);
    assert_int_equal(slow_judge(&limits, &by_bytes, 1, 51), SLOW_FULL);
}

static void
zero_means_no_limit(void **state)
{
    struct slow_limits none = {0};
    struct slow_backlog b = backlog(SIZE_MAX / 2, UINT32_MAX - 1, UINT64_MAX / 4);

    assert_int_equal(slow_judge(&none, &b, 0, 10), SLOW_ACCEPT);
    assert_int_equal(slow_judge(&none, &b, 1, 10), SLOW_ACCEPT);
    assert_false(slow_queue_full(&none, UINT32_MAX, UINT64_MAX));
}

static void
queue_full_flag(void **state)
{
    assert_false(slow_queue_full(&limits, 9, 999));
    assert_true(slow_queue_full(&limits, 10, 0));
    assert_true(slow_queue_full(&limits, 0, 1000));
}

static void
drop_oldest_makes_room_instead_of_refusing(void **state)
{
    struct slow_limits l = limits;
    struct slow_backlog by_count = backlog(0, 10, 100), by_bytes = backlog(0, 3, 950);
    struct slow_backlog empty = backlog(0, 0, 0);

    l.drop_oldest = true;
    assert_int_equal(slow_judge(&l, &by_count, 1, 1), SLOW_DROP_OLDEST);
    assert_int_equal(slow_judge(&l, &by_bytes, 2, 51), SLOW_DROP_OLDEST);
    assert_int_equal(slow_judge(&l, &by_bytes, 1, 50), SLOW_ACCEPT);
    /* Nothing left to drop: a message over the byte limit on its own is still refused. */
    assert_int_equal(slow_judge(&l, &empty, 1, 1001), SLOW_FULL);
    /* QoS 0 still gives way first. */
    assert_int_equal(slow_judge(&l, &by_count, 0, 1), SLOW_DROP_QOS0);
    /* The queue never refuses, so other workers never see it full. */
    assert_false(slow_queue_full(&l, 10, 1000));
    assert_false(slow_queue_over(&l, 10, 1000));
    assert_true(slow_queue_over(&l, 11, 0));
    assert_true(slow_queue_over(&l, 0, 1001));
}

static void
stall_needs_a_whole_period_without_progress(void **state)
{
    struct slow_stall st;

    slow_stall_init(&st, 1000);
    /* Blocked with nothing sent yet: the clock runs from the start. */
    assert_false(slow_stall_check(&st, 1500, true, 0, 2000));
    assert_false(slow_stall_check(&st, 3000, true, 0, 2000));
    assert_true(slow_stall_check(&st, 3001, true, 0, 2000));
}

static void
stall_clock_restarts_on_progress(void **state)
{
    struct slow_stall st;

    slow_stall_init(&st, 0);
    assert_false(slow_stall_check(&st, 1900, true, 0, 2000));
    /* One byte left: a slow reader is not a stalled one. */
    assert_false(slow_stall_check(&st, 2500, true, 1, 2000));
    assert_false(slow_stall_check(&st, 4400, true, 1, 2000));
    assert_true(slow_stall_check(&st, 4501, true, 1, 2000));
}

static void
stall_clock_restarts_when_output_empties(void **state)
{
    struct slow_stall st;

    slow_stall_init(&st, 0);
    assert_false(slow_stall_check(&st, 1900, true, 0, 2000));
    assert_false(slow_stall_check(&st, 2000, false, 0, 2000)); /* written, or held */
    assert_false(slow_stall_check(&st, 3900, true, 0, 2000));
    assert_true(slow_stall_check(&st, 4001, true, 0, 2000));
}

static void
stall_limit_zero_never_fires(void **state)
{
    struct slow_stall st;

    slow_stall_init(&st, 0);
    assert_false(slow_stall_check(&st, UINT64_MAX / 2, true, 0, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_client_takes_everything),
        cmocka_unit_test(qos0_dropped_while_offline),
        cmocka_unit_test(qos0_dropped_beyond_output_limit),
        cmocka_unit_test(qos0_goes_before_qos1_is_refused),
        cmocka_unit_test(qos1_refused_when_queue_full),
        cmocka_unit_test(zero_means_no_limit),
        cmocka_unit_test(queue_full_flag),
        cmocka_unit_test(drop_oldest_makes_room_instead_of_refusing),
        cmocka_unit_test(stall_needs_a_whole_period_without_progress),
        cmocka_unit_test(stall_clock_restarts_on_progress),
        cmocka_unit_test(stall_clock_restarts_when_output_empties),
        cmocka_unit_test(stall_limit_zero_never_fires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
