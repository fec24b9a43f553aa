/*
 * slow.h - the slow-consumer policy as pure decisions: what one message does to one session's
 * backlog, whether a queue is full, and whether a connection's output has stalled. No state
 * of its own and no clock: deliver.c and hub.c feed it numbers (docs/design.md, "Delivery").
 */
#ifndef PETREL_SESSION_SLOW_H
#define PETREL_SESSION_SLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The limits of one broker (from struct config); 0 means no limit. */
struct slow_limits {
    uint32_t max_queued_messages;   /* QoS 1/2 deliveries waiting beyond the inflight window */
    uint64_t max_queued_bytes;
    uint64_t qos0_output_limit;     /* unsent output bytes beyond which QoS 0 is dropped */
    bool drop_oldest;               /* queue_full_policy drop_oldest: a full queue makes room */
};

/* One session's backlog as the owner sees it. */
struct slow_backlog {
    bool is_connected;
    size_t out_pending;             /* bytes waiting in the connection's output */
    uint32_t n_queued;
    uint64_t queued_bytes;
};

enum slow_verdict {
    SLOW_ACCEPT = 0,                /* send now or queue */
    SLOW_DROP_OFFLINE,              /* QoS 0 to a session without a connection */
    SLOW_DROP_QOS0,                 /* QoS 0 to a backlogged client */
    SLOW_FULL,                      /* QoS 1/2 and the queue has no room for it */
    SLOW_DROP_OLDEST,               /* drop_oldest: drop the oldest queued one, judge again */
};

/* What to do with a message of `size` bytes (msg_size) at `qos` for a session whose backlog
 * is `b`. QoS 0 gives way first: it is dropped once the output passes qos0_output_limit or
 * the queue is half full, so it goes before QoS 1/2 is refused at the full queue. With
 * drop_oldest a QoS 1/2 message meeting a full queue that holds anything gets
 * SLOW_DROP_OLDEST; SLOW_FULL then means it is larger than max_queued_bytes on its own. */
enum slow_verdict slow_judge(const struct slow_limits *l, const struct slow_backlog *b,
                             uint8_t qos, size_t size);

/* Is the queue full for any message (the flag other hubs read)? A queue short of its byte
 * limit may still refuse a message too large for the bytes left. Never with drop_oldest: a
 * full queue makes room instead of refusing. */
bool slow_queue_full(const struct slow_limits *l, uint32_t n_queued, uint64_t queued_bytes);

/* Does the queue hold more than its limits allow (drop_oldest trims it back, e.g. after a
 * restart with lower limits)? */
bool slow_queue_over(const struct slow_limits *l, uint32_t n_queued, uint64_t queued_bytes);

/* Write-stall tracking for one connection, sampled on the hub tick. */
struct slow_stall {
    uint64_t since;                 /* when the output last moved, or began to wait */
    uint64_t acked;                 /* bytes the peer had acknowledged at that moment */
};

/* A new connection at `now`. */
void slow_stall_init(struct slow_stall *st, uint64_t now);

/* Sample: `is_blocked` (the socket refused output that still waits) and `acked` (bytes the
 * peer has acknowledged so far). Returns true once the output has waited without one more
 * byte reaching the peer for more than `limit_ms` (0: never). */
bool slow_stall_check(struct slow_stall *st, uint64_t now, bool is_blocked, uint64_t acked,
                      uint64_t limit_ms);

#endif
