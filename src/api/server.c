/*
 * server.c - the HTTP API's routing: which handler a request reaches, with which key, within
 * which budget; and the JSON answers every handler shares.
 *
 * Every route but /healthz and /readyz needs `Authorization: Bearer <key>` with a key of the
 * key file: read keys may look (GET), write keys may also act. Each key has a budget of
 * http_rate_limit requests a second (a token bucket holding one second's worth), shared by
 * every worker; beyond it the answer is 429.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/internal.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"

#define API_PREFIX "/api/v1/"

/* Request heads and bodies: the body limit is the configuration's; heads stay small. */
#define HTTP_MAX_HEAD (16u * 1024)
#define HTTP_IDLE_TIMEOUT_MS 60000u
/* Answers waiting for a client beyond which its further requests wait (pipelining clients that
 * do not read). */
#define HTTP_MAX_OUT (1024u * 1024)

void
api_reply_json(struct http_exchange *x, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"code\":\"internal\",\"message\":\"out of memory\"}";
        http_respond(x, 500, "application/json", oom, sizeof(oom) - 1, NULL);
        return;
    }
    http_respond(x, status, "application/json", text, strlen(text), NULL);
    free(text);
}

void
api_reply_error(struct http_exchange *x, int status, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *body = json_object();
    json_object_set_new(body, "code", json_string(code));
    /* A message may quote the request, which need not be UTF-8: json_string refuses that. */
    json_t *m = json_string(msg);
    json_object_set_new(body, "message", m ? m : json_string("(not UTF-8)"));
    api_reply_json(x, status, body);
}

json_t *
api_body_object(struct api_ctx *ctx)
{
    json_error_t e;
    json_t *root = json_loadb((const char *)ctx->req->body, ctx->req->body_len,
                              JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        api_reply_error(ctx->x, 400, "invalid_json", "line %d column %d: %s", e.line, e.column,
                        e.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        api_reply_error(ctx->x, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

struct auth_identity *
api_identity(struct api_ctx *ctx)
{
    struct api_worker *w = ctx->w;
    struct api *a = w->api;

    if (!a->auth)
        return NULL;
    if (!w->idents[ctx->key_index]) {
        char cid[128];
        snprintf(cid, sizeof(cid), "http:%s", ctx->key->name);
        w->idents[ctx->key_index] = auth_identity_for_app(a->auth, w->index, ctx->key->name, cid);
    }
    return w->idents[ctx->key_index];
}

struct api_call *
api_call_new(struct api_ctx *ctx)
{
    struct api_call *call = xcalloc(1, sizeof(*call));

    call->w = ctx->w;
    call->x = ctx->x;
    list_push(&ctx->w->calls, &call->link);
    return call;
}

void
api_call_free(struct api_call *call)
{
    list_remove(&call->link);
    app_query_free(call->q);
    json_decref(call->answer);
    free(call);
}

void
api_call_finish(struct api_call *call, int status)
{
    json_t *body = call->answer;

    call->answer = NULL;
    api_reply_json(call->x, status, body ? body : json_object());
    api_call_free(call);
}

static struct api_keyset *
keyset_ref(struct api_keyset *ks)
{
    atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    return ks;
}

static void
keyset_unref(struct api_keyset *ks)
{
    if (!ks || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    api_keys_fini(&ks->keys);
    free(ks);
}

static void
forget_identities(struct api_worker *w)
{
    for (size_t i = 0; w->keys && i < w->keys->keys.n; i++)
        auth_identity_free(w->idents[i]);
    free(w->idents);
    w->idents = NULL;
}

/* The worker's key set, re-taken after a reload (one atomic load when nothing changed). */
static struct api_keyset *
worker_keys(struct api_worker *w)
{
    struct api *a = w->api;

    if (atomic_load_explicit(&a->keys_gen, memory_order_acquire) != w->keys_gen || !w->keys) {
        forget_identities(w);
        pthread_mutex_lock(&a->keys_lock);
        struct api_keyset *old = w->keys;
        w->keys = keyset_ref(a->keys);
        w->keys_gen = atomic_load_explicit(&a->keys_gen, memory_order_relaxed);
        pthread_mutex_unlock(&a->keys_lock);
        keyset_unref(old);
        w->idents = xcalloc(w->keys->keys.n + 1, sizeof(*w->idents));
    }
    return w->keys;
}

/* Take one request from the key's budget. */
static bool
within_budget(struct api *a, struct api_key *k)
{
    uint32_t rate = a->cfg->http_rate_limit;
    bool ok;

    if (rate == 0)
        return true;
    uint64_t now = clock_now_ms();
    pthread_mutex_lock(&k->lock);
    if (k->tokens < 0) {
        k->tokens = rate;
        k->refilled_at = now;
    }
    k->tokens += (double)(now - k->refilled_at) * rate / 1000.0;
    if (k->tokens > rate)
        k->tokens = rate;
    k->refilled_at = now;
    ok = k->tokens >= 1.0;
    if (ok)
        k->tokens -= 1.0;
    pthread_mutex_unlock(&k->lock);
    return ok;
}

/* The key of the request, or NULL after answering 401/403/429. */
static const struct api_key *
authorize(struct api_ctx *ctx, enum api_access need)
{
    struct api *a = ctx->w->api;
    const char *h = ctx->req->authorization;
    static const char challenge[] = "WWW-Authenticate: Bearer realm=\"petrel\"\r\n";

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        http_respond(ctx->x, 401, "application/json",
                     "{\"code\":\"unauthorized\",\"message\":\"an API key is needed "
                     "(Authorization: Bearer KEY)\"}",
                     strlen("{\"code\":\"unauthorized\",\"message\":\"an API key is needed "
                            "(Authorization: Bearer KEY)\"}"),
                     challenge);
        return NULL;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    size_t index = 0;
    const struct api_key *k = api_keys_find(&worker_keys(ctx->w)->keys, token, &index);
    if (!k) {
        static struct log_ratelimit rl;
        if (log_ratelimit(&rl, 5))
            log_notice("api request refused, unknown key addr=%s", ctx->req->peer);
        http_respond(ctx->x, 401, "application/json",
                     "{\"code\":\"unauthorized\",\"message\":\"unknown API key\"}",
                     strlen("{\"code\":\"unauthorized\",\"message\":\"unknown API key\"}"),
                     challenge);
        return NULL;
    }
    if (need == API_WRITE && k->access != API_WRITE) {
        api_reply_error(ctx->x, 403, "forbidden", "this key may only read");
        return NULL;
    }
    if (!within_budget(a, (struct api_key *)k)) {
        http_respond(ctx->x, 429, "application/json",
                     "{\"code\":\"rate_limited\",\"message\":\"too many requests for this key\"}",
                     strlen("{\"code\":\"rate_limited\",\"message\":\"too many requests for "
                            "this key\"}"),
                     "Retry-After: 1\r\n");
        return NULL;
    }
    ctx->key = k;
    ctx->key_index = index;
    return k;
}

static void
not_allowed(struct api_ctx *ctx, const char *allow)
{
    char hdr[64];
    static const char body[] =
        "{\"code\":\"method_not_allowed\",\"message\":\"method not allowed here\"}";

    snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
    http_respond(ctx->x, 405, "application/json", body, sizeof(body) - 1, hdr);
}

/* A route: the path (exact, or a prefix when it ends in '/'), the handlers by method. */
static void
route(struct api_ctx *ctx)
{
    const struct http_request *r = ctx->req;
    const char *path = r->path;
    enum http_method m = r->method;
    bool get = m == HTTP_M_GET || m == HTTP_M_HEAD;

    if (strcmp(path, "/healthz") == 0) {
        get ? api_healthz(ctx) : not_allowed(ctx, "GET, HEAD");
    } else if (strcmp(path, "/readyz") == 0) {
        get ? api_readyz(ctx) : not_allowed(ctx, "GET, HEAD");
    } else if (strcmp(path, "/metrics") == 0) {
        if (!get)
            not_allowed(ctx, "GET, HEAD");
        else if (authorize(ctx, API_READ))
            api_metrics(ctx);
    } else if (strcmp(path, API_PREFIX "publish") == 0) {
        if (m != HTTP_M_POST)
            not_allowed(ctx, "POST");
        else if (authorize(ctx, API_WRITE))
            api_publish(ctx);
    } else if (strcmp(path, API_PREFIX "publish/batch") == 0) {
        if (m != HTTP_M_POST)
            not_allowed(ctx, "POST");
        else if (authorize(ctx, API_WRITE))
            api_publish_batch(ctx);
    } else if (strcmp(path, API_PREFIX "clients") == 0) {
        if (!get)
            not_allowed(ctx, "GET, HEAD");
        else if (authorize(ctx, API_READ))
            api_clients_get(ctx);
    } else if (strncmp(path, API_PREFIX "clients/", strlen(API_PREFIX "clients/")) == 0 &&
               path[strlen(API_PREFIX "clients/")]) {
        const char *id = path + strlen(API_PREFIX "clients/");
        if (get && authorize(ctx, API_READ))
            api_client_get(ctx, id);
        else if (m == HTTP_M_DELETE && authorize(ctx, API_WRITE))
            api_client_delete(ctx, id);
        else if (!get && m != HTTP_M_DELETE)
            not_allowed(ctx, "GET, HEAD, DELETE");
    } else if (strcmp(path, API_PREFIX "tokens") == 0) {
        if (m != HTTP_M_POST)
            not_allowed(ctx, "POST");
        else if (authorize(ctx, API_WRITE))
            api_token_create(ctx);
    } else if (strncmp(path, API_PREFIX "tokens/", strlen(API_PREFIX "tokens/")) == 0 &&
               path[strlen(API_PREFIX "tokens/")]) {
        if (m != HTTP_M_DELETE)
            not_allowed(ctx, "DELETE");
        else if (authorize(ctx, API_WRITE))
            api_token_delete(ctx, path + strlen(API_PREFIX "tokens/"));
    } else {
        api_reply_error(ctx->x, 404, "not_found", "no such route");
    }
}

static void
on_request(void *ud, struct http_exchange *x, const struct http_request *req)
{
    struct api_ctx ctx = {.w = ud, .x = x, .req = req};

    app_sync(ctx.w->hub);
    route(&ctx);
}

/* Before a body is read: only the health checks may come without a known key, so nobody
 * unknown can make the broker hold request bodies. Whether the key may do what it asks (and
 * within its budget) is judged with the whole request. */
static bool
check_head(void *ud, const struct http_request *head, struct http_refusal *out)
{
    struct api_worker *w = ud;
    const char *h = head->authorization;
    size_t index;

    if (strcmp(head->path, "/healthz") == 0 || strcmp(head->path, "/readyz") == 0)
        return true;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ')
            h++;
        if (api_keys_find(&worker_keys(w)->keys, h, &index))
            return true;
    }
    *out = (struct http_refusal){
        .status = 401,
        .code = "unauthorized",
        .message = h ? "unknown API key" : "an API key is needed (Authorization: Bearer KEY)",
        .headers = "WWW-Authenticate: Bearer realm=\"petrel\"\r\n",
    };
    return false;
}

static void
on_conn_closed(void *ud, void *tag)
{
    struct api_worker *w = ud;

    app_release(w->hub, tag);
}

int
api_new(const struct config *cfg, struct hubs *hs, struct auth *auth, struct api **out,
        char *err, size_t err_len)
{
    struct api *a = xcalloc(1, sizeof(*a));

    a->cfg = cfg;
    a->hubs = hs;
    a->auth = auth;
    pthread_mutex_init(&a->keys_lock, NULL);
    a->keys = xcalloc(1, sizeof(*a->keys));
    a->keys->refs = 1;
    if (cfg->http_api_key_file &&
        api_keys_load(cfg->http_api_key_file, &a->keys->keys, err, err_len) != 0) {
        api_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

int
api_reload(struct api *a, char *err, size_t err_len)
{
    if (!a->cfg->http_api_key_file)
        return 0;
    struct api_keyset *ks = xcalloc(1, sizeof(*ks));
    if (api_keys_load(a->cfg->http_api_key_file, &ks->keys, err, err_len) != 0) {
        free(ks);
        return -1;
    }
    ks->refs = 1;
    pthread_mutex_lock(&a->keys_lock);
    struct api_keyset *old = a->keys;
    a->keys = ks;
    atomic_fetch_add_explicit(&a->keys_gen, 1, memory_order_release);
    pthread_mutex_unlock(&a->keys_lock);
    keyset_unref(old);
    return 0;
}

void
api_free(struct api *a)
{
    if (!a)
        return;
    keyset_unref(a->keys);
    pthread_mutex_destroy(&a->keys_lock);
    free(a);
}

void
api_set_tokens(struct api *a, struct tokens *t)
{
    a->tokens = t;
}

struct api_worker *
api_worker_new(struct api *a, struct hub *h, unsigned index, struct conn_pool *pool)
{
    struct api_worker *w = xcalloc(1, sizeof(*w));
    struct http_limits lim = {
        .max_head = HTTP_MAX_HEAD,
        .max_body = a->cfg->http_max_body,
        .idle_timeout_ms = HTTP_IDLE_TIMEOUT_MS,
        .max_out = HTTP_MAX_OUT,
    };

    w->api = a;
    w->hub = h;
    w->index = index;
    list_init(&w->calls);
    w->http = http_server_new(pool, &lim, on_request, w);
    http_server_set_head_check(w->http, check_head);
    http_server_set_close_hook(w->http, on_conn_closed);
    return w;
}

void
api_worker_free(struct api_worker *w)
{
    struct list *pos, *tmp;

    if (!w)
        return;
    /* Calls still waiting are dropped unanswered: the broker is going away. */
    list_for_each_safe(pos, tmp, &w->calls)
    {
        struct api_call *call = list_entry(pos, struct api_call, link);
        if (call->wait.fn)
            app_commit_cancel(&call->wait);
        api_call_free(call);
    }
    http_server_free(w->http);
    forget_identities(w);
    keyset_unref(w->keys);
    free(w);
}

void
api_accept(struct api_worker *w, int fd, struct transport *t, const char *peer,
           const struct config_listener *li)
{
    if (!app_admit(w->hub, peer, li)) {
        if (t)
            t->ops->free(t);
        close(fd);
        return;
    }
    http_accept(w->http, fd, t, peer, (void *)li);
}

void
api_worker_tick(struct api_worker *w)
{
    http_server_tick(w->http, clock_now_ms());
}
