/*
 * internal.h - what drive.c, link.c, proto.c and flow.c share: one thread's loop state and its
 * connections. Nothing here is touched by another thread.
 */
#ifndef PETREL_BENCH_INTERNAL_H
#define PETREL_BENCH_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "petrel-bench/bench.h"
#include "petrel-bench/drive.h"

#define READS_PER_WAKE 8      /* reads of one socket before others get a turn */
#define PUB_BATCH 1024        /* messages per publisher per loop iteration */
#define BG_PER_CONN 50000     /* background filters per connection */
#define BG_PER_PACKET 100     /* ... per SUBSCRIBE */
#define STALL_NS 200000000ull /* no delivery progress for this long: write off */

enum link_kind { LK_PUB = 0, LK_RECV, LK_BG, LK_IDLE, LK_HTTP };

/*
 *   LK_HTTP: NEW --connect()--> TCP --writable--> READY
 *   NEW --connect()--> TCP --writable--> CONNACK --CONNACK--> [SUBACK --SUBACKs-->] READY
 *   any --error / EOF--> CLOSED
 */
enum link_state { LS_NEW = 0, LS_TCP, LS_CONNACK, LS_SUBACK, LS_READY, LS_CLOSED };

struct link {
    int fd;
    uint8_t kind;      /* enum link_kind */
    uint8_t state;     /* enum link_state */
    bool dirty;        /* on the thread's flush list */
    bool read_pending; /* on the thread's read-again list */
    bool want_write;   /* the socket was full: wait for EPOLLOUT */
    uint32_t idx;      /* index among its kind (client id number) */
    struct pub *pub;   /* LK_PUB */
    struct recv *recv; /* LK_RECV */
    struct buf out;    /* bytes to send, flushed once per loop iteration */
    uint8_t *part;     /* an incomplete packet kept between reads */
    uint32_t part_len, part_cap;
    uint32_t subacks_pending;
    uint64_t t_start; /* connect() */
    uint64_t last_tx; /* last send, for keepalive */
    struct xport *x;  /* TLS / WebSocket (xport.h); NULL for plain TCP */
};

struct drive {
    struct run *r;
    const struct opts *o;
    struct plan *plan;
    uint32_t index;
    int epfd;
    pthread_t tid;

    struct link *links;
    uint32_t n_links;
    struct link **setup[4]; /* links to start in PH_SETUP_BG .. PH_SETUP_IDLE */
    uint32_t n_setup[4];
    uint32_t next_setup; /* in the current setup phase */
    uint32_t n_connecting;
    struct pub **pubs; /* publishers of this thread */
    uint32_t n_pubs;

    struct link **dirty;
    uint32_t n_dirty;
    struct link **again; /* read_pending links */
    uint32_t n_again;

    struct buf scratch; /* http: the request body being built */
    char *payload;      /* http: the payload being built (--size or HWIRE_PAYLOAD_MAX bytes) */
    uint8_t *rbuf;      /* every read lands here; leftovers go to link->part */
    size_t rbuf_cap;

    uint64_t now;
    int phase;
    uint64_t phase_start;
    uint64_t t_meas, t_end; /* measured window; UINT64_MAX before PH_RUN */
    bool more;              /* work left for the next iteration at once */
    bool blocked;           /* a publisher waits for delivery feedback */
    uint64_t next_due;      /* rate mode: earliest moment a publisher has to send */
    uint64_t next_sweep;    /* keepalive sweep */
    uint32_t window_msgs;   /* --outstanding in messages */

    struct drive_out out;
};

/* link.c */
void link_start(struct drive *d, struct link *l);
void link_read(struct drive *d, struct link *l);
void link_flush(struct drive *d, struct link *l);
/* Mark for flushing at the end of the iteration. */
void link_dirty(struct drive *d, struct link *l);
/* The set-up of `l` finished. */
void link_ready(struct drive *d, struct link *l);
/* Close `l` because of `why` (printf format). What that means depends on the phase and kind. */
void link_fail(struct drive *d, struct link *l, const char *why, ...)
    __attribute__((format(printf, 3, 4)));
void link_close(struct link *l);
/* MQTT bytes received by `l` (from a transport: xport.h): parsed, the rest kept. */
void link_deliver(struct drive *d, struct link *l, const uint8_t *p, size_t n);
/* `l` may have more to read: read it again in this iteration's read-again pass. */
void link_read_later(struct drive *d, struct link *l);
/* Client id of `l` into buf. */
void link_client_id(const struct drive *d, const struct link *l, char *buf, size_t len);

/* proto.c: one complete packet from the broker. */
void proto_packet(struct drive *d, struct link *l, uint8_t type, uint8_t flags, struct slice body);

/* flow.c: publishers. */
void flow_start(struct drive *d, struct pub *p, uint16_t server_receive_max);
void flow_produce(struct drive *d, struct pub *p);
void flow_ack(struct drive *d, struct link *l, uint8_t type, struct slice body);
/* Highest delivered sequence + 1 seen by the publisher's receivers (min or max). */
uint32_t flow_feedback(const struct pub *p);
/* How many messages `p` may send now without more than --outstanding bytes on their way
 * (sets d->blocked when none). */
uint32_t flow_room(struct drive *d, struct pub *p);
bool flow_drained(const struct pub *p);

/* hflow.c: HTTP publishers (http scenario). */
void hflow_start(struct drive *d, struct pub *p);
void hflow_produce(struct drive *d, struct pub *p);
/* Responses in p[0..n) for `l`; returns the bytes used (whole responses). */
size_t hflow_input(struct drive *d, struct link *l, const uint8_t *p, size_t n);
bool hflow_drained(const struct pub *p);
/* A receiver's message in the http scenario: stream index, stream sequence, send time.
 * Returns false (error counted) when it does not belong to receiver r. */
bool hflow_payload(struct drive *d, struct recv *r, struct slice payload, uint32_t *k,
                   uint32_t *seq, uint64_t *ts);

/* drive.c: count a non-fatal error; the first reason is kept. */
void drive_error(struct drive *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The run cannot go on. */
void drive_fatal(struct drive *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
