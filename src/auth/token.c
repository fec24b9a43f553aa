/*
 * token.c - the table of issued tokens (see token.h), the token login strings and the
 * refresh message.
 *
 * The table maps SHA-256(token) to the token's rights. Issuing and revoking call the
 * persistence hook outside the mutex (it waits for a commit), so a slow disk never stalls a
 * CONNECT on another worker: issue stores first and publishes the token after; revoke removes
 * it first (it stops working at once) and stores the deletion after.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "auth/token.h"
#include "base/map.h"
#include "base/xalloc.h"
#include "mqtt/topic.h"

struct token_entry {
    uint8_t hash[TOKEN_HASH_LEN]; /* the map's key */
    char label[TOKEN_LABEL_LEN + 1];
    unsigned actions;
    uint64_t expires_at;
    size_t n_filters;
    char **filters;
};

struct tokens {
    pthread_mutex_t lock;
    struct map by_hash; /* hash -> struct token_entry */
    _Atomic uint64_t gen;
    tokens_persist_fn *persist;
    void *persist_ctx;
};

static void
entry_free(struct token_entry *e)
{
    for (size_t i = 0; i < e->n_filters; i++)
        free(e->filters[i]);
    free(e->filters);
    free(e);
}

struct tokens *
tokens_new(void)
{
    struct tokens *t = xcalloc(1, sizeof(*t));

    pthread_mutex_init(&t->lock, NULL);
    map_init(&t->by_hash);
    atomic_init(&t->gen, 1);
    return t;
}

void
tokens_free(struct tokens *t)
{
    struct token_entry *e;
    size_t pos = 0;

    if (!t)
        return;
    while ((e = map_next(&t->by_hash, &pos)) != NULL)
        entry_free(e);
    map_fini(&t->by_hash);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static void
hash_token(struct slice token, uint8_t out[TOKEN_HASH_LEN])
{
    SHA256(token.p, token.len, out);
}

/* base64url without padding: 32 bytes -> 43 characters. */
static void
encode_token(const uint8_t in[32], char out[TOKEN_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < 32; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits)
        out[o++] = alphabet[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

static bool
filter_ok(struct slice f)
{
    struct slice group, inner;

    /* Shared filters name a subscription, not topics: a token grants topics. */
    return mqtt_shared_split(f, &group, &inner) == 0 && mqtt_topic_filter_valid(f);
}

static struct token_entry *
entry_make(const struct token_record *r)
{
    struct token_entry *e = xcalloc(1, sizeof(*e));

    memcpy(e->hash, r->hash, TOKEN_HASH_LEN);
    snprintf(e->label, sizeof(e->label), "%s", r->label);
    e->actions = r->actions;
    e->expires_at = r->expires_at;
    e->n_filters = r->n_filters;
    e->filters = xcalloc(r->n_filters, sizeof(*e->filters));
    for (size_t i = 0; i < r->n_filters; i++)
        e->filters[i] = xstrndup(r->filters[i].p, r->filters[i].len);
    return e;
}

/* Drop expired tokens (under the lock). They are few compared with the table only when it is
 * full, which is when this runs. */
static void
sweep_locked(struct tokens *t, uint64_t now)
{
    struct token_entry **gone = xcalloc(t->by_hash.n + 1, sizeof(*gone));
    struct token_entry *e;
    size_t pos = 0, n = 0;

    while ((e = map_next(&t->by_hash, &pos)) != NULL) {
        if (e->expires_at <= now)
            gone[n++] = e;
    }
    for (size_t i = 0; i < n; i++) {
        map_del(&t->by_hash, slice_make(gone[i]->hash, TOKEN_HASH_LEN));
        entry_free(gone[i]);
    }
    free(gone);
}

int
tokens_issue(struct tokens *t, const char *const *filters, size_t n_filters, unsigned actions,
             uint32_t expire_seconds, uint64_t now_unix_s, char *out_token, size_t out_len,
             uint64_t *expires_at_unix_s)
{
    struct slice fs[TOKEN_MAX_FILTERS];
    uint8_t raw[32], hash[TOKEN_HASH_LEN];
    char token[TOKEN_LEN + 1], label[TOKEN_LABEL_LEN + 1];

    if (!filters || n_filters == 0 || n_filters > TOKEN_MAX_FILTERS || actions == 0 ||
        (actions & ~(TOKEN_READ | TOKEN_WRITE)) || expire_seconds < TOKEN_MIN_EXPIRE ||
        expire_seconds > TOKEN_MAX_EXPIRE || out_len < TOKEN_LEN + 1)
        return -EINVAL;
    for (size_t i = 0; i < n_filters; i++) {
        if (!filters[i] || !filter_ok(fs[i] = slice_cstr(filters[i])))
            return -EINVAL;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    encode_token(raw, token);
    hash_token(slice_make(token, TOKEN_LEN), hash);
    memcpy(label, token, TOKEN_LABEL_LEN);
    label[TOKEN_LABEL_LEN] = '\0';
    struct token_record rec = {
        .hash = hash,
        .label = label,
        .actions = actions,
        .expires_at = now_unix_s + expire_seconds,
        .n_filters = n_filters,
        .filters = fs,
    };

    pthread_mutex_lock(&t->lock);
    if (t->by_hash.n >= TOKENS_MAX)
        sweep_locked(t, now_unix_s);
    bool full = t->by_hash.n >= TOKENS_MAX;
    pthread_mutex_unlock(&t->lock);
    if (full)
        return -ENOSPC;
    /* Stored before it exists: a token the caller hands out survives a crash. */
    if (t->persist) {
        int rc = t->persist(t->persist_ctx, &rec, false);
        if (rc != 0)
            return rc < 0 ? rc : -EIO;
    }
    struct token_entry *e = entry_make(&rec);
    pthread_mutex_lock(&t->lock);
    map_put(&t->by_hash, slice_make(e->hash, TOKEN_HASH_LEN), e);
    pthread_mutex_unlock(&t->lock);
    memcpy(out_token, token, TOKEN_LEN + 1);
    *expires_at_unix_s = rec.expires_at;
    return 0;
}

int
tokens_revoke(struct tokens *t, const char *token)
{
    uint8_t hash[TOKEN_HASH_LEN];

    if (!token)
        return -ENOENT;
    hash_token(slice_cstr(token), hash);
    pthread_mutex_lock(&t->lock);
    struct token_entry *e = map_del(&t->by_hash, slice_make(hash, TOKEN_HASH_LEN));
    if (e)
        atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
    pthread_mutex_unlock(&t->lock);
    if (!e)
        return -ENOENT;
    int rc = 0;
    if (t->persist) {
        struct token_record rec = {.hash = hash, .label = e->label};
        rc = t->persist(t->persist_ctx, &rec, true);
        if (rc > 0)
            rc = -EIO;
    }
    entry_free(e);
    return rc;
}

static struct token_grant *
grant_of(const struct token_entry *e)
{
    struct token_grant *g = xcalloc(1, sizeof(*g));

    memcpy(g->hash, e->hash, TOKEN_HASH_LEN);
    memcpy(g->label, e->label, sizeof(g->label));
    g->actions = e->actions;
    g->expires_at = e->expires_at;
    g->n_filters = e->n_filters;
    g->filters = xcalloc(e->n_filters, sizeof(*g->filters));
    for (size_t i = 0; i < e->n_filters; i++)
        g->filters[i] = xstrdup(e->filters[i]);
    return g;
}

int
tokens_lookup(struct tokens *t, struct slice token, uint64_t now_unix_s, struct token_grant **out)
{
    uint8_t hash[TOKEN_HASH_LEN];
    int rc = 0;

    *out = NULL;
    hash_token(token, hash);
    pthread_mutex_lock(&t->lock);
    struct token_entry *e = map_get(&t->by_hash, slice_make(hash, TOKEN_HASH_LEN));
    if (!e)
        rc = -ENOENT;
    else if (e->expires_at <= now_unix_s)
        rc = -EKEYEXPIRED;
    else
        *out = grant_of(e);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int
tokens_check(struct tokens *t, const struct token_grant *g, uint64_t now_unix_s)
{
    int rc = 0;

    if (g->expires_at <= now_unix_s)
        return -EKEYEXPIRED;
    pthread_mutex_lock(&t->lock);
    if (!map_get(&t->by_hash, slice_make(g->hash, TOKEN_HASH_LEN)))
        rc = -ENOENT;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

uint64_t
tokens_gen(struct tokens *t)
{
    return atomic_load_explicit(&t->gen, memory_order_acquire);
}

size_t
tokens_count(struct tokens *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->by_hash.n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void
tokens_set_persist(struct tokens *t, tokens_persist_fn *fn, void *ctx)
{
    t->persist = fn;
    t->persist_ctx = fn ? ctx : NULL;
}

int
tokens_restore(struct tokens *t, const struct token_record *rec, uint64_t now_unix_s)
{
    if (rec->expires_at <= now_unix_s || rec->n_filters == 0 ||
        rec->n_filters > TOKEN_MAX_FILTERS || rec->actions == 0 ||
        (rec->actions & ~(TOKEN_READ | TOKEN_WRITE)))
        return -EINVAL;
    for (size_t i = 0; i < rec->n_filters; i++) {
        if (!filter_ok(rec->filters[i]))
            return -EINVAL;
    }
    struct token_entry *e = entry_make(rec);
    pthread_mutex_lock(&t->lock);
    struct token_entry *old = map_put(&t->by_hash, slice_make(e->hash, TOKEN_HASH_LEN), e);
    pthread_mutex_unlock(&t->lock);
    if (old)
        entry_free(old);
    return 0;
}

/* ---- grants ---- */

void
token_grant_free(struct token_grant *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_filters; i++)
        free(g->filters[i]);
    free(g->filters);
    free(g);
}

bool
token_grant_matches(const struct token_grant *g, struct slice topic)
{
    for (size_t i = 0; i < g->n_filters; i++) {
        if (mqtt_topic_match(slice_cstr(g->filters[i]), topic))
            return true;
    }
    return false;
}

bool
token_grant_covers(const struct token_grant *g, struct slice filter)
{
    for (size_t i = 0; i < g->n_filters; i++) {
        if (acl_filter_covers(slice_cstr(g->filters[i]), filter))
            return true;
    }
    return false;
}

/* ---- login strings ---- */

/* The next '|'-separated field of `s` from *pos; false when none is left. */
static bool
field_next(struct slice s, size_t *pos, struct slice *out)
{
    if (*pos > s.len)
        return false;
    const uint8_t *p = s.p + *pos;
    size_t left = s.len - *pos;
    const uint8_t *bar = left ? memchr(p, '|', left) : NULL;
    size_t len = bar ? (size_t)(bar - p) : left;

    *out = slice_make(p, len);
    *pos += len + 1;
    return true;
}

bool
token_username_parse(struct slice username, struct slice *key_id, struct slice *instance)
{
    size_t pos = 0;
    struct slice mode;

    if (!field_next(username, &pos, &mode) || !slice_eq(mode, SLICE("Token")) ||
        !field_next(username, &pos, key_id) || !field_next(username, &pos, instance))
        return false;
    struct slice extra;
    return key_id->len > 0 && instance->len > 0 && !field_next(username, &pos, &extra);
}

static unsigned
type_parse(struct slice s)
{
    if (slice_eq(s, SLICE("R")))
        return TOKEN_READ;
    if (slice_eq(s, SLICE("W")))
        return TOKEN_WRITE;
    if (slice_eq(s, SLICE("RW")))
        return TOKEN_READ | TOKEN_WRITE;
    return 0;
}

const char *
token_type_str(unsigned actions)
{
    switch (actions & (TOKEN_READ | TOKEN_WRITE)) {
    case TOKEN_READ:
        return "R";
    case TOKEN_WRITE:
        return "W";
    case TOKEN_READ | TOKEN_WRITE:
        return "RW";
    }
    return "-";
}

int
tokens_login(struct tokens *t, struct slice password, uint64_t now_unix_s,
             struct token_grant *grants[2])
{
    struct slice toks[2];
    unsigned kinds[2], seen = 0;
    size_t n = 0, pos = 0;
    struct slice type, tok;
    int rc = 0;

    grants[0] = grants[1] = NULL;
    /* At most two pairs: each action once. */
    while (field_next(password, &pos, &type)) {
        if (n == 2 || !field_next(password, &pos, &tok) || tok.len == 0)
            return -EINVAL;
        unsigned k = type_parse(type);
        if (!k || (k & seen))
            return -EINVAL;
        seen |= k;
        toks[n] = tok;
        kinds[n++] = k;
    }
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct token_grant *g;
        if ((rc = tokens_lookup(t, toks[i], now_unix_s, &g)) != 0)
            break;
        if ((g->actions & kinds[i]) != kinds[i]) {
            token_grant_free(g);
            rc = -EACCES;
            break;
        }
        if (kinds[i] & TOKEN_READ)
            grants[0] = g;
        if (kinds[i] & TOKEN_WRITE)
            grants[1] = g;
    }
    if (rc != 0) {
        if (grants[1] != grants[0])
            token_grant_free(grants[1]);
        token_grant_free(grants[0]);
        grants[0] = grants[1] = NULL;
    }
    return rc;
}

/* ---- the refresh message: a small JSON reader for one flat object ---- */

struct json_rd {
    const uint8_t *p, *end;
};

static void
json_ws(struct json_rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* A string at r->p: its raw contents (escapes left as they are) in *out, *escaped when it has
 * any. Returns false when it is not a well-formed string. */
static bool
json_string(struct json_rd *r, struct slice *out, bool *escaped)
{
    if (r->p >= r->end || *r->p != '"')
        return false;
    const uint8_t *start = ++r->p;
    *escaped = false;
    while (r->p < r->end && *r->p != '"') {
        if (*r->p < 0x20)
            return false;
        if (*r->p == '\\') {
            *escaped = true;
            if (++r->p >= r->end)
                return false;
        }
        r->p++;
    }
    if (r->p >= r->end)
        return false;
    *out = slice_make(start, (size_t)(r->p - start));
    r->p++;
    return true;
}

/* Skip any value; nested ones by counting brackets outside strings (leniently: members the
 * refresh does not use are not validated further). */
static bool
json_skip(struct json_rd *r)
{
    int depth = 0;

    do {
        json_ws(r);
        if (r->p >= r->end)
            return false;
        uint8_t ch = *r->p;
        struct slice s;
        bool esc;
        if (ch == '"') {
            if (!json_string(r, &s, &esc))
                return false;
        } else if (ch == '{' || ch == '[') {
            if (++depth > 32)
                return false;
            r->p++;
        } else if (ch == '}' || ch == ']' || ch == ',' || ch == ':') {
            if (depth == 0)
                return false;
            if (ch == '}' || ch == ']')
                depth--;
            r->p++;
        } else {
            const uint8_t *start = r->p;
            while (r->p < r->end && (isalnum(*r->p) || *r->p == '-' || *r->p == '+' ||
                                     *r->p == '.'))
                r->p++;
            if (r->p == start)
                return false;
        }
    } while (depth > 0);
    return true;
}

int
token_upload_parse(struct slice payload, struct slice *token, unsigned *actions)
{
    struct json_rd r = {payload.p, payload.p + payload.len};
    bool has_token = false, has_type = false;

    *actions = 0;
    json_ws(&r);
    if (r.p >= r.end || *r.p++ != '{')
        return -EINVAL;
    json_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
    } else {
        for (;;) {
            struct slice name, val;
            bool esc;
            json_ws(&r);
            if (!json_string(&r, &name, &esc))
                return -EINVAL;
            json_ws(&r);
            if (r.p >= r.end || *r.p++ != ':')
                return -EINVAL;
            json_ws(&r);
            bool want_token = !esc && slice_eq(name, SLICE("token"));
            bool want_type = !esc && slice_eq(name, SLICE("type"));
            if (want_token || want_type) {
                /* Tokens and types never need escapes: one that has any is not valid. */
                if (!json_string(&r, &val, &esc) || esc)
                    return -EINVAL;
                if (want_token) {
                    *token = val;
                    has_token = true;
                } else if (!(*actions = type_parse(val))) {
                    return -EINVAL;
                } else {
                    has_type = true;
                }
            } else if (!json_skip(&r)) {
                return -EINVAL;
            }
            json_ws(&r);
            if (r.p < r.end && *r.p == ',') {
                r.p++;
                continue;
            }
            if (r.p < r.end && *r.p == '}') {
                r.p++;
                break;
            }
            return -EINVAL;
        }
    }
    json_ws(&r);
    if (r.p != r.end || !has_token || !has_type || token->len == 0)
        return -EINVAL;
    return 0;
}
