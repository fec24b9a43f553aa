/*
 * slow.c - the slow-consumer policy; see slow.h.
 *
 * A client that does not keep up costs memory in two places: QoS 0 messages and inflight
 * PUBLISHes wait in its connection's output, and QoS 1/2 messages beyond the inflight window
 * wait in its session queue. Both are bounded, QoS 0 first (it promises nothing), and a socket
 * that takes no byte for write_stall_timeout ends the connection. Nothing here waits for the
 * slow client, so nobody else slows down. At the full queue queue_full_policy decides: refuse
 * the new message (the default), or drop the oldest queued one to make room for it.
 */
#include "session/slow.h"

bool
slow_queue_full(const struct slow_limits *l, uint32_t n_queued, uint64_t queued_bytes)
{
    if (l->drop_oldest)
        return false;
    return (l->max_queued_messages && n_queued >= l->max_queued_messages) ||
           (l->max_queued_bytes && queued_bytes >= l->max_queued_bytes);
}

bool
slow_queue_over(const struct slow_limits *l, uint32_t n_queued, uint64_t queued_bytes)
{
    return (l->max_queued_messages && n_queued > l->max_queued_messages) ||
           (l->max_queued_bytes && queued_bytes > l->max_queued_bytes);
}

/* At least half of either queue limit used: the client is falling behind. */
static bool
queue_half_full(const struct slow_limits *l, const struct slow_backlog *b)
{
    return (l->max_queued_messages && b->n_queued >= (l->max_queued_messages + 1) / 2) ||
           (l->max_queued_bytes && b->queued_bytes >= (l->max_queued_bytes + 1) / 2);
}

enum slow_verdict
slow_judge(const struct slow_limits *l, const struct slow_backlog *b, uint8_t qos, size_t size)
{
    if (qos == 0) {
        if (!b->is_connected)
            return SLOW_DROP_OFFLINE;
        if ((l->qos0_output_limit && b->out_pending > l->qos0_output_limit) ||
            queue_half_full(l, b))
            return SLOW_DROP_QOS0;
        return SLOW_ACCEPT;
    }
    bool full = (l->max_queued_messages && b->n_queued >= l->max_queued_messages) ||
                (l->max_queued_bytes && b->queued_bytes + size > l->max_queued_bytes);
    if (!full)
        return SLOW_ACCEPT;
    /* Room is made by dropping the oldest queued messages, unless none is left to drop: a
     * message larger than max_queued_bytes on its own cannot be queued either way. */
    return l->drop_oldest && b->n_queued > 0 ? SLOW_DROP_OLDEST : SLOW_FULL;
}

void
slow_stall_init(struct slow_stall *st, uint64_t now)
{
    st->since = now;
    st->acked = 0;
}

bool
slow_stall_check(struct slow_stall *st, uint64_t now, bool is_blocked, uint64_t acked,
                 uint64_t limit_ms)
{
    /* Any progress, or nothing waiting, restarts the clock: only a socket that takes nothing
     * at all for the whole period counts, not one that reads slowly. */
    if (!is_blocked || acked != st->acked) {
        st->since = now;
        st->acked = acked;
        return false;
    }
    return limit_ms && now - st->since > limit_ms;
}
