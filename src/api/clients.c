/*
 * clients.c - presence: GET /api/v1/clients/<id>, GET /api/v1/clients?ids=a,b,c and
 * DELETE /api/v1/clients/<id>[?discard=true].
 *
 * The answers come from the hubs that own the sessions (app_query_clients), so they are what
 * the owner knew a moment ago, never a stale copy. A client ID nobody uses is answered like
 * any other, with "session": false, so that a batch reads as one list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "base/xalloc.h"

#define IDS_MAX 1000
#define QUERY_MAX (256u * 1024)

static json_t *
client_json(struct slice id, const struct app_client_info *in)
{
    json_t *o = json_object();
    json_t *jid = json_stringn((const char *)id.p, id.len);

    json_object_set_new(o, "client_id", jid ? jid : json_string(""));
    json_object_set_new(o, "online", json_boolean(in->online));
    json_object_set_new(o, "session", json_boolean(in->session));
    if (!in->session)
        return o;
    json_object_set_new(o, "persistent", json_boolean(in->persistent));
    json_object_set_new(o, "protocol_version", json_integer(in->version));
    json_object_set_new(o, "queued", json_integer(in->queued));
    json_object_set_new(o, "inflight", json_integer(in->inflight));
    if (in->online) {
        json_object_set_new(o, "connected_since_ms", json_integer(in->connected_since));
        json_object_set_new(o, "connection_id", json_integer((json_int_t)in->connection_id));
        json_object_set_new(o, "address", json_string(in->address));
    }
    return o;
}

static void
one_done(void *ud, struct app_query *q)
{
    struct api_call *call = ud;

    call->answer = client_json(app_query_id(q, 0), app_query_info(q, 0));
    api_call_finish(call, 200);
}

static void
many_done(void *ud, struct app_query *q)
{
    struct api_call *call = ud;
    json_t *list = json_array();

    for (size_t i = 0; i < app_query_count(q); i++)
        json_array_append_new(list, client_json(app_query_id(q, i), app_query_info(q, i)));
    call->answer = json_pack("{s:o}", "clients", list);
    api_call_finish(call, 200);
}

static void
delete_done(void *ud, struct app_query *q)
{
    struct api_call *call = ud;
    const struct app_client_info *in = app_query_info(q, 0);

    if (!in->session) {
        api_reply_error(call->x, 404, "not_found", "no session with this client ID");
        api_call_free(call);
        return;
    }
    struct slice id = app_query_id(q, 0);
    json_t *jid = json_stringn((const char *)id.p, id.len);
    call->answer = json_pack("{s:o, s:b, s:b}", "client_id", jid ? jid : json_string(""),
                             "disconnected", in->online, "session_discarded",
                             call->discard && in->kicked);
    api_call_finish(call, 200);
}

/* Ask about `ids`; the call is answered by `done` (perhaps before this returns). */
static void
ask(struct api_ctx *ctx, const struct slice *ids, size_t n, enum app_query_kind kind,
    app_query_done_fn *done, bool discard)
{
    struct api_call *call = api_call_new(ctx);

    call->discard = discard;
    call->q = app_query_new(ctx->w->hub, ids, n, kind, done, call);
    app_query_start(call->q); /* `done` frees the call and the query, perhaps right now */
}

void
api_client_get(struct api_ctx *ctx, const char *id)
{
    struct slice s = slice_cstr(id);

    ask(ctx, &s, 1, APP_Q_INFO, one_done, false);
}

void
api_clients_get(struct api_ctx *ctx)
{
    char *ids = xmalloc(QUERY_MAX);
    struct slice list[IDS_MAX];
    size_t n = 0;

    if (!http_query_param(ctx->req->query, "ids", ids, QUERY_MAX) || !ids[0]) {
        free(ids);
        api_reply_error(ctx->x, 400, "invalid_argument", "give ?ids=a,b,c (at most %d)",
                        IDS_MAX);
        return;
    }
    for (char *p = ids; p;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p) {
            if (n == IDS_MAX) {
                free(ids);
                api_reply_error(ctx->x, 400, "invalid_argument", "at most %d ids", IDS_MAX);
                return;
            }
            list[n++] = slice_cstr(p);
        }
        p = comma ? comma + 1 : NULL;
    }
    ask(ctx, list, n, APP_Q_INFO, many_done, false);
    free(ids);
}

void
api_client_delete(struct api_ctx *ctx, const char *id)
{
    struct slice s = slice_cstr(id);
    char v[8];
    bool discard = http_query_param(ctx->req->query, "discard", v, sizeof(v)) &&
                   (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
                    strcasecmp(v, "yes") == 0 || v[0] == '\0');

    ask(ctx, &s, 1, discard ? APP_Q_KICK_DISCARD : APP_Q_KICK, delete_done, discard);
}
