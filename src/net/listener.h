/*
 * listener.h - a listening TCP socket on the loop; hands accepted sockets to a callback.
 */
#ifndef PETREL_NET_LISTENER_H
#define PETREL_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"

struct listener;

/* `fd` is non-blocking and close-on-exec; the callback owns it. `peer` is "addr:port". */
typedef void listener_accept_fn(void *ud, struct listener *li, int fd, const char *peer);

/* Listen on `addr` (NULL: all addresses, IPv6 and IPv4) and `port` (0: ephemeral).
 * With `reuseport`, several listeners (one per worker) share the port and the kernel spreads
 * new connections over them. Returns 0 or a negative errno; `err` receives a message naming
 * what failed. */
int listener_new(struct loop *loop, const char *addr, uint16_t port, bool reuseport,
                 listener_accept_fn *fn, void *ud, struct listener **out, char *err,
                 size_t err_len);
void listener_free(struct listener *li);
/* The port actually bound (useful with port 0). */
uint16_t listener_port(const struct listener *li);
/* Opaque per-listener data for the accept callback (e.g. its config). */
void listener_set_data(struct listener *li, void *data);
void *listener_data(const struct listener *li);

/* Format a socket address as "addr:port" ("[v6]:port"). */
void listener_format_addr(const void *sockaddr, char *out, size_t out_len);

#endif
