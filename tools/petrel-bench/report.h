/*
 * report.h - merge what the threads measured into one result, and print it.
 */
#ifndef PETREL_BENCH_REPORT_H
#define PETREL_BENCH_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "petrel-bench/bench.h"
#include "petrel-bench/drive.h"
#include "petrel-bench/hist.h"

struct result {
    double duration_s; /* measured window */
    uint64_t sent;     /* messages sent in the window */
    uint64_t received; /* messages received in the window */
    uint64_t sent_total, received_total, acked_total;
    double msgs_per_s; /* received / duration */
    struct hist lat;   /* ns */
    uint64_t lost, duplicated, out_of_order, errors, dropped;
    double bench_cpu; /* CPU seconds of petrel-bench per second of the window */
    double setup_s;   /* start to the end of set-up (connections, subscriptions) */
    /* conn scenario */
    uint64_t connected, connect_failed;
    double connect_s, connect_rate;
    /* http scenario */
    uint64_t http_answers, http_answers_total, http_non200, http_item_errors;
    uint64_t http_status[600];
    double http_req_per_s; /* answers in the window / duration */
    struct hist http_lat;  /* request to answer, ns */
    const char *error;     /* why the run failed, or NULL */
};

/* Fill `res` from the plan and the finished threads. */
void report_collect(struct result *res, const struct plan *p, struct drive *const *d,
                    uint32_t n_threads);
/* One JSON line. */
void report_json(FILE *f, const struct opts *o, const struct plan *p, const struct result *res);
/* A few human-readable lines. */
void report_human(FILE *f, const struct opts *o, const struct plan *p, const struct result *res);

#endif
