/*
 * api.h - the HTTP API for applications and operators (docs/http-api.md): publish (P2P
 * included), presence, disconnects, tokens, Prometheus metrics and health checks.
 *
 * `struct api` is shared by every worker: the configuration, the API keys and their request
 * budgets. Each worker has its own `struct api_worker`, serving the HTTP connections its
 * listeners accept on its own loop and acting through its own hub (session/app.h).
 *
 * Start-up: api_new (main thread, before the workers run), api_worker_new per worker.
 * Shut-down, after every loop has returned: api_worker_free for each, then api_free, both
 * before the hubs are freed.
 */
#ifndef PETREL_API_API_H
#define PETREL_API_API_H

#include <stddef.h>

#include "config/config.h"
#include "net/conn.h"
#include "net/transport.h"

struct api;
struct api_worker;
struct hub;
struct hubs;
struct auth;
struct tokens;

/* Read the API key file the configuration names (if any). `auth` may be NULL. Returns 0, or
 * -1 with "FILE:LINE: reason" in err. */
int api_new(const struct config *cfg, struct hubs *hs, struct auth *auth, struct api **out,
            char *err, size_t err_len);
void api_free(struct api *a);
/* SIGHUP: read the key file again (main thread). On failure the old keys stay in force and
 * -1 is returned with the reason in err. Requests in progress finish with the keys they
 * started with; budgets start afresh. */
int api_reload(struct api *a, char *err, size_t err_len);
/* The token table that POST /api/v1/tokens fills (NULL: no token endpoints). Borrowed. */
void api_set_tokens(struct api *a, struct tokens *t);

/* The worker with hub `h` (its index is the auth reader index) and connection pool `pool`. */
struct api_worker *api_worker_new(struct api *a, struct hub *h, unsigned index,
                                  struct conn_pool *pool);
void api_worker_free(struct api_worker *w);
/* Serve an accepted socket of HTTP listener `li` (takes fd and t), unless the connection
 * limits refuse it (max_connection_rate, the listener's max_connections, memory_limit). */
void api_accept(struct api_worker *w, int fd, struct transport *t, const char *peer,
                const struct config_listener *li);
/* Periodic work (idle connections); from the worker's tick. */
void api_worker_tick(struct api_worker *w);

#endif
