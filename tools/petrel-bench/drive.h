/*
 * drive.h - one petrel-bench thread: an epoll loop over the connections the plan gives it.
 *
 * main.c owns the struct run, moves `phase` forward and reads each thread's struct drive_out:
 * the atomics at any time, the rest after drive_join().
 */
#ifndef PETREL_BENCH_DRIVE_H
#define PETREL_BENCH_DRIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "petrel-bench/bench.h"
#include "petrel-bench/hist.h"

enum phase {
    PH_SETUP_BG = 0, /* background subscriptions (thread 0) */
    PH_SETUP_RECV,   /* receivers connect and subscribe */
    PH_SETUP_PUB,    /* publishers connect */
    PH_SETUP_IDLE,   /* conn scenario: idle connections, at --conn-rate */
    PH_RUN,          /* warm-up, then the measured window, then publishers stop */
    PH_DRAIN,        /* stragglers arrive, acks complete */
    PH_STOP,         /* DISCONNECT, close, thread ends */
};

struct run {
    const struct opts *o;
    struct plan *plan;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct sockaddr_storage http_addr; /* http scenario: the API listener */
    socklen_t http_addr_len;
    /* Monotonic ns, written before phase becomes PH_RUN (release) and read after (acquire). */
    uint64_t t_run;  /* publishers start */
    uint64_t t_meas; /* measured window [t_meas, t_end) */
    uint64_t t_end;  /* publishers stop */
    _Atomic int phase;
    struct ssl_ctx_st *tls; /* --tls: the client context (tls.c) */
};

struct drive_out {
    /* Read by main during the run. */
    _Atomic uint32_t n_ready;  /* connections set up (CONNACK, SUBACKs), all phases */
    _Atomic uint32_t n_failed; /* conn scenario: connections that could not be set up */
    _Atomic bool drained;      /* in PH_DRAIN: every publisher of ours is fully delivered */
    _Atomic bool fatal;        /* the run cannot go on; reason says why */
    char reason[256];          /* first error (fatal or not); written before `fatal` */

    /* Read by main after the thread ended. */
    struct hist lat;          /* end-to-end latency of messages received in the window, ns */
    struct hist conn_lat;     /* TCP connect() to CONNACK, ns */
    uint64_t received;        /* messages received in the measured window */
    uint64_t received_all;    /* ... at any time */
    uint64_t errors;          /* protocol errors, refused messages, lost connections */
    uint64_t dropped;         /* connections lost after set-up */
    uint64_t n_connected;     /* conn scenario: connections that got a CONNACK */
    uint64_t t_first_connect; /* conn scenario: first connect(), ns; 0 if none */
    uint64_t t_last_connack;  /* ... last CONNACK or failure */
    /* http scenario */
    uint64_t http_answers;     /* responses received in the measured window */
    uint64_t http_answers_all; /* ... at any time */
    uint64_t http_status[600]; /* responses by status (index 0: anything outside) */
    uint64_t http_item_errors; /* per-message errors inside 200 batch answers */
    struct hist http_lat;      /* request sent to response read, ns (window) */
};

struct drive;

/* Thread `index` of `r` (which outlives it). Aborts on out of memory. */
struct drive *drive_new(struct run *r, uint32_t index);
/* Start the thread. Returns 0 or a negative errno. */
int drive_start(struct drive *d);
void drive_join(struct drive *d);
struct drive_out *drive_out(struct drive *d);
void drive_free(struct drive *d);

/* CLOCK_MONOTONIC in ns (the clock of the payload timestamps). */
uint64_t drive_now(void);

#endif
