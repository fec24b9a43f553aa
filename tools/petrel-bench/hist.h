/*
 * hist.h - a latency histogram with log-linear buckets (petrel-bench).
 *
 * Values are unsigned 64-bit integers (petrel-bench records nanoseconds). Values below
 * 2 * HIST_SUB are counted exactly; above, every power-of-two range is cut into HIST_SUB
 * equal buckets, so a bucket is at most 1/HIST_SUB (0.78%) of its lowest value wide and a
 * reported percentile is within 0.4% of a value really recorded in its bucket. The whole u64
 * range fits in HIST_BUCKETS counters (~59 KB), so recording never allocates or clamps:
 * each thread owns one histogram and they are merged after the run.
 */
#ifndef PETREL_BENCH_HIST_H
#define PETREL_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS) /* 128 */
/* The largest index is for UINT64_MAX: shift 64 - 1 - HIST_SUB_BITS, mantissa 2 * SUB - 1. */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS) * HIST_SUB + HIST_SUB)

struct hist {
    uint64_t n;   /* values recorded */
    uint64_t min; /* UINT64_MAX while empty */
    uint64_t max;
    uint64_t counts[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
/* Add every value of `from` to `into`. */
void hist_merge(struct hist *into, const struct hist *from);

/* Index of the bucket holding v, and the lowest and highest value a bucket holds. */
uint32_t hist_index(uint64_t v);
uint64_t hist_bucket_low(uint32_t idx);
uint64_t hist_bucket_high(uint32_t idx);

/* The value at quantile q (0 < q <= 1; 0.99 for p99): the smallest recorded value v such that
 * at least ceil(q * n) values are <= v, known to the bucket's precision (the middle of its
 * bucket, kept within [min, max]). q >= 1 gives max exactly. Returns 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
