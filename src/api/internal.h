/*
 * internal.h - what the files of api/ share: the shared and per-worker state, one request in
 * progress, and the JSON answer helpers.
 *
 *   server.c   routing, API keys and their budgets, answers
 *   keys.c     the API key file
 *   publish.c  POST /api/v1/publish and /publish/batch
 *   clients.c  GET and DELETE /api/v1/clients...
 *   tokens.c   POST and DELETE /api/v1/tokens
 *   metrics.c  GET /metrics, /healthz, /readyz
 */
#ifndef PETREL_API_INTERNAL_H
#define PETREL_API_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "api/http.h"
#include "base/list.h"
#include "session/app.h"

#define API_KEY_HASH_LEN 32 /* SHA-256 */

enum api_access {
    API_READ = 1,
    API_WRITE = 2,                /* implies read */
};

struct api_key {
    uint8_t hash[API_KEY_HASH_LEN]; /* of the key: the key itself is not kept */
    enum api_access access;
    char *name;                   /* the ACL username of what it publishes */
    /* request budget (token bucket), shared by the workers */
    pthread_mutex_t lock;
    double tokens;
    uint64_t refilled_at;         /* monotonic ms */
};

struct api_keys {
    struct api_key *keys;
    size_t n;
};

/* One reading of the key file, shared by the workers; replaced whole by a reload (SIGHUP). */
struct api_keyset {
    _Atomic unsigned refs;
    struct api_keys keys;
};

struct api {
    const struct config *cfg;
    struct hubs *hubs;
    struct auth *auth;
    struct tokens *tokens;
    pthread_mutex_t keys_lock;    /* guards `keys` (the pointer) */
    struct api_keyset *keys;      /* the current key set */
    _Atomic uint64_t keys_gen;    /* bumped by each reload */
};

struct api_worker {
    struct api *api;
    struct hub *hub;
    unsigned index;
    struct http_server *http;
    struct api_keyset *keys;      /* this worker's reference to the key set ... */
    uint64_t keys_gen;            /* ... as of this reload */
    struct auth_identity **idents; /* [keys.n], the ACL identity of each key (lazily) */
    struct list calls;            /* struct api_call waiting for other workers or the store */
};

/* A request whose answer waits (for owners' answers or a commit). */
struct api_call {
    struct list link;             /* api_worker->calls */
    struct api_worker *w;
    struct http_exchange *x;
    struct app_query *q;
    struct app_commit_wait wait;
    json_t *answer;               /* the body to send once the wait ends (owned) */
    bool discard;                 /* DELETE ...?discard=true */
};

/* What the router knows of a request once its key was checked. */
struct api_ctx {
    struct api_worker *w;
    struct http_exchange *x;
    const struct http_request *req;
    const struct api_key *key;
    size_t key_index;
};

/* ---- server.c ---- */
/* Answer with a JSON body (takes the reference) and status. */
void api_reply_json(struct http_exchange *x, int status, json_t *body);
/* Answer with {"code": code, "message": msg}. */
void api_reply_error(struct http_exchange *x, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The parsed JSON object body, or NULL after answering 400. */
json_t *api_body_object(struct api_ctx *ctx);
/* The ACL identity of the request's key on this worker. */
struct auth_identity *api_identity(struct api_ctx *ctx);
struct api_call *api_call_new(struct api_ctx *ctx);
/* Send the call's answer (status 200, or `status` with an error when rc != 0) and free it. */
void api_call_finish(struct api_call *call, int status);
void api_call_free(struct api_call *call);

/* ---- keys.c ---- */
int api_keys_load(const char *path, struct api_keys *out, char *err, size_t err_len);
void api_keys_fini(struct api_keys *k);
/* The key a bearer token names, or NULL (constant time in the keys' contents). */
const struct api_key *api_keys_find(const struct api_keys *k, const char *token, size_t *index);

/* ---- handlers ---- */
void api_publish(struct api_ctx *ctx);
void api_publish_batch(struct api_ctx *ctx);
void api_client_get(struct api_ctx *ctx, const char *id);
void api_clients_get(struct api_ctx *ctx);
void api_client_delete(struct api_ctx *ctx, const char *id);
void api_token_create(struct api_ctx *ctx);
void api_token_delete(struct api_ctx *ctx, const char *token);
void api_metrics(struct api_ctx *ctx);
void api_healthz(struct api_ctx *ctx);
void api_readyz(struct api_ctx *ctx);

#endif
