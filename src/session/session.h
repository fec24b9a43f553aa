/*
 * session.h - the MQTT protocol engine: connections speaking MQTT (clients), the sessions they
 * attach to, and the delivery of messages between them.
 *
 * There is one hub per worker thread; `struct hubs` is what they share. Each hub runs on its
 * own loop and is touched only by its thread; hubs talk through mailboxes. Sockets stay in
 * net/: a client reads and writes only its connection's buffers.
 *
 * Start-up: hubs_new(), then hub_new() for every index (before any loop runs), then each
 * worker runs its loop with hub_tick as the tick and hub_after as the after-iteration hook.
 * Shut-down: hubs_shutdown() from any thread; each loop stops after closing its clients; once
 * every worker thread has returned, hubs_free().
 */
#ifndef PETREL_SESSION_SESSION_H
#define PETREL_SESSION_SESSION_H

#include <stdint.h>

#include "config/config.h"
#include "net/conn.h"
#include "net/loop.h"
#include "net/transport.h"

struct hubs;
struct hub;

/* How often hub_tick is meant to run (the worker's loop_set_tick interval). */
#define HUB_TICK_MS 250

/* Borrows cfg, which outlives the hubs. */
struct hubs *hubs_new(const struct config *cfg, unsigned n_hubs);
/* Frees every hub and what they own. Only after all worker loops have returned. */
void hubs_free(struct hubs *hs);
/* Ask every hub to shut down: MQTT 5 clients get DISCONNECT 0x8B, then each loop stops. */
void hubs_shutdown(struct hubs *hs);

/* Use `auth` (borrowed, outlives the hubs) for logins and the ACL; before any hub runs. The
 * reader index of each hub is its own index. */
struct auth;
void hubs_set_auth(struct hubs *hs, struct auth *auth);
/* The table of access tokens (auth/token.h), made by hubs_new and freed by hubs_free; the HTTP
 * API issues and revokes through it. With persistence, hubs_open_store loads it and from then
 * on tokens_issue/tokens_revoke wait for their commit. */
struct tokens;
struct tokens *hubs_tokens(struct hubs *hs);

/* Durable storage (cfg->persistence): open the store, start its thread and load what it holds
 * into the hubs (sessions on their owners, subscriptions into every replica, retained
 * messages). After every hub_new, before any loop runs. Returns 0, or -1 with a message
 * naming the file in `err`. */
int hubs_open_store(struct hubs *hs, char *err, size_t err_len);
/* Commit what is pending and close the store; after every loop has returned, before
 * hubs_free. Nothing without a store. */
void hubs_close_store(struct hubs *hs);

/* Create hub `index` on `loop` (borrowed, like pool). Returns NULL when the loop refuses
 * its mailbox. */
struct hub *hub_new(struct hubs *hs, unsigned index, struct loop *loop, struct conn_pool *pool);

/* Start speaking MQTT on an accepted socket (takes the fd and the transport, NULL for plain
 * TCP). */
void hub_accept(struct hub *h, int fd, struct transport *t, const char *peer,
                const struct config_listener *li);

/* Periodic work: keepalive, connect timeouts, will delays, session and message expiry, $SYS.
 * Suits loop_set_tick(). */
void hub_tick(void *hub);
/* After each batch of events: flush output, finish closes, send staged mailbox items. Suits
 * loop_set_after(). */
void hub_after(void *hub);

#endif
