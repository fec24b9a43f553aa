/*
 * session.h - the MQTT protocol engine of one worker: connections speaking MQTT (clients),
 * the sessions they attach to, and the delivery of messages between them.
 *
 * The hub is the state this engine needs (configuration, session table, subscription trie,
 * retained store, counters). It is passed explicitly; there is no global. Sockets stay in
 * net/: a client reads and writes only its connection's buffers.
 */
#ifndef PETREL_SESSION_SESSION_H
#define PETREL_SESSION_SESSION_H

#include <stdint.h>

#include "config/config.h"
#include "net/conn.h"

struct hub;

/* Borrows cfg and pool, which outlive the hub. */
struct hub *hub_new(const struct config *cfg, struct conn_pool *pool);
void hub_free(struct hub *h);

/* Start speaking MQTT on an accepted socket (takes the fd). */
void hub_accept(struct hub *h, int fd, const char *peer, const struct config_listener *li);

/* Periodic work: keepalive, connect timeouts, will delays, session and message expiry, $SYS.
 * Suits loop_set_tick(). */
void hub_tick(void *hub);

/* Orderly shutdown: MQTT 5 clients get DISCONNECT 0x8B, then every connection is closed. */
void hub_shutdown(struct hub *h);

#endif
