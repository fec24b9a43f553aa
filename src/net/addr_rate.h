/*
 * addr_rate.h - a limit on new connections per second from one network address, shared by
 * every worker: with SO_REUSEPORT the kernel spreads one address's connections over all of
 * them, so each worker alone would let N times the limit through.
 *
 * Each address has a token bucket: it holds at most `per_sec` tokens (a burst), refills at
 * `per_sec` tokens per second, and a connection takes one. The table is small and fixed
 * (sharded, each shard behind its own mutex; accept is not the message path): an address
 * whose bucket is full again is forgotten, and when a shard's neighbourhood is full of busy
 * addresses the least recently seen one is forgotten (so a flood from very many addresses
 * is limited by max_connections, not here).
 */
#ifndef PETREL_NET_ADDR_RATE_H
#define PETREL_NET_ADDR_RATE_H

#include <stdbool.h>
#include <stdint.h>

struct addr_rate;

/* A limiter allowing `per_sec` (at least 1) new connections per second per address. */
struct addr_rate *addr_rate_new(uint32_t per_sec);
void addr_rate_free(struct addr_rate *r);

/* May a connection from `peer` ("1.2.3.4:5678" or "[::1]:5678"; the port is ignored) be
 * accepted at `now` (monotonic ms)? Takes a token when it may. Any thread. */
bool addr_rate_allow(struct addr_rate *r, const char *peer, uint64_t now);

#endif
