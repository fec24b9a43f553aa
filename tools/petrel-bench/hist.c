/*
 * hist.c - log-linear latency histogram (see hist.h for the bucket layout).
 *
 * Index of v:  v < 2*SUB        -> v itself
 *              otherwise        -> shift * SUB + (v >> shift), where shift puts v >> shift in
 *                                  [SUB, 2*SUB); consecutive shifts give consecutive ranges.
 */
#include <math.h>
#include <string.h>

#include "petrel-bench/hist.h"

void
hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

uint32_t
hist_index(uint64_t v)
{
    if (v < 2 * (uint64_t)HIST_SUB)
        return (uint32_t)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
    unsigned shift = top - HIST_SUB_BITS;
    return shift * HIST_SUB + (uint32_t)(v >> shift);
}

uint64_t
hist_bucket_low(uint32_t idx)
{
    if (idx < 2 * HIST_SUB)
        return idx;
    unsigned shift = idx / HIST_SUB - 1;
    uint64_t mant = idx % HIST_SUB + HIST_SUB;
    return mant << shift;
}

uint64_t
hist_bucket_high(uint32_t idx)
{
    if (idx < 2 * HIST_SUB)
        return idx;
    unsigned shift = idx / HIST_SUB - 1;
    uint64_t low = hist_bucket_low(idx);
    /* low + 2^shift - 1 cannot overflow: the last bucket ends exactly at UINT64_MAX. */
    return low + ((UINT64_C(1) << shift) - 1);
}

void
hist_record(struct hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->n++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void
hist_merge(struct hist *into, const struct hist *from)
{
    if (from->n == 0)
        return;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->n += from->n;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
    if (h->n == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    if (q <= 0.0)
        return h->min;
    /* The rank of the wanted value, 1-based: ceil(q * n), at least 1. */
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t low = hist_bucket_low(i), high = hist_bucket_high(i);
            uint64_t mid = low + (high - low) / 2;
            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max;
}
