/*
 * tokens.c - POST /api/v1/tokens and DELETE /api/v1/tokens/<token>: ApsaraMQ-style login
 * tokens for devices (docs/security.md, "Token login").
 *
 * POST takes {"resources": [filters], "actions": "R" | "W" | "RW", "expire_seconds": N} and
 * answers {"token": ..., "expires_at": unix seconds}. The table itself is auth/'s.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "auth/token.h"
#include "base/clock.h"

#define TOKEN_FILTERS_MAX 100

void
api_token_create(struct api_ctx *ctx)
{
    struct tokens *t = ctx->w->api->tokens;
    const char *filters[TOKEN_FILTERS_MAX];
    json_t *o, *v;
    size_t i;

    if (!t) {
        api_reply_error(ctx->x, 404, "not_found", "tokens are not available");
        return;
    }
    if (!(o = api_body_object(ctx)))
        return;
    json_t *res = json_object_get(o, "resources");
    json_t *act = json_object_get(o, "actions");
    json_t *exp = json_object_get(o, "expire_seconds");
    if (!json_is_array(res) || json_array_size(res) == 0 ||
        json_array_size(res) > TOKEN_FILTERS_MAX || !json_is_string(act) ||
        !json_is_integer(exp)) {
        json_decref(o);
        api_reply_error(ctx->x, 400, "invalid_argument",
                        "give resources (1 to %d topic filters), actions (R, W or RW) and "
                        "expire_seconds",
                        TOKEN_FILTERS_MAX);
        return;
    }
    json_array_foreach(res, i, v)
    {
        if (!json_is_string(v)) {
            json_decref(o);
            api_reply_error(ctx->x, 400, "invalid_argument", "resources[%zu] is not a string", i);
            return;
        }
        filters[i] = json_string_value(v);
    }
    const char *a = json_string_value(act);
    unsigned actions = strcmp(a, "R") == 0    ? TOKEN_READ
                       : strcmp(a, "W") == 0  ? TOKEN_WRITE
                       : strcmp(a, "RW") == 0 ? TOKEN_READ | TOKEN_WRITE
                                              : 0;
    json_int_t secs = json_integer_value(exp);
    char token[TOKEN_LEN + 1];
    uint64_t expires_at = 0;
    int rc = actions == 0 || secs < 0 || secs > UINT32_MAX
                 ? -EINVAL
                 : tokens_issue(t, filters, json_array_size(res), actions, (uint32_t)secs,
                                (uint64_t)clock_wall_s(), token, sizeof(token), &expires_at);
    json_decref(o);
    if (rc == -EINVAL) {
        api_reply_error(ctx->x, 400, "invalid_argument",
                        "resources must be valid topic filters, actions R, W or RW, and "
                        "expire_seconds from 60 to 2592000");
        return;
    }
    if (rc != 0) {
        api_reply_error(ctx->x, 503, rc == -ENOSPC ? "quota_exceeded" : "store_failed",
                        "cannot issue a token now (the table or the disk is full, or the "
                        "store failed)");
        return;
    }
    api_reply_json(ctx->x, 200, json_pack("{s:s, s:I}", "token", token, "expires_at",
                                          (json_int_t)expires_at));
}

void
api_token_delete(struct api_ctx *ctx, const char *token)
{
    struct tokens *t = ctx->w->api->tokens;

    int rc = t ? tokens_revoke(t, token) : -ENOENT;
    if (rc == -ENOENT) {
        api_reply_error(ctx->x, 404, "not_found", "no such token");
        return;
    }
    if (rc != 0) {
        api_reply_error(ctx->x, 503, "store_failed",
                        "revoked, but the store could not record it: the token may come back "
                        "after a restart");
        return;
    }
    api_reply_json(ctx->x, 200, json_pack("{s:b}", "revoked", 1));
}
