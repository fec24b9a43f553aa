/*
 * test_token.c - access tokens (auth/token.c): issue, revoke, look-up, expiry, the filter
 * subset rule, the login strings, the refresh message, the persistence hook and restore, and
 * token logins through auth_connect with the identity's checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/token.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "mqtt/rc.h"

#define NOW 1700000000u

/* Issue a token; fails the test unless it works. */
static void
issue(struct tokens *t, const char *const *filters, size_t n, unsigned actions, uint32_t secs,
      char tok[TOKEN_LEN + 1])
{
    uint64_t exp = 0;

    assert_int_equal(tokens_issue(t, filters, n, actions, secs, NOW, tok, TOKEN_LEN + 1, &exp), 0);
    assert_int_equal(exp, NOW + secs);
}

static void
issue_and_look_up(void **state)
{
    struct tokens *t = tokens_new();
    const char *fs[] = {"a/#", "b/+/c"};
    char tok[TOKEN_LEN + 1], tok2[TOKEN_LEN + 1];
    struct token_grant *g;

    issue(t, fs, 2, TOKEN_READ, 3600, tok);
    assert_int_equal(strlen(tok), TOKEN_LEN);
    /* base64url: never the '|' of the login strings, nothing to escape in JSON or URLs. */
    assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     TOKEN_LEN);
    issue(t, fs, 1, TOKEN_WRITE, 60, tok2);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(tokens_count(t), 2);

    assert_int_equal(tokens_lookup(t, slice_cstr(tok), NOW, &g), 0);
    assert_int_equal(g->actions, TOKEN_READ);
    assert_int_equal(g->expires_at, NOW + 3600);
    assert_int_equal(g->n_filters, 2);
    assert_string_equal(g->filters[0], "a/#");
    assert_string_equal(g->filters[1], "b/+/c");
    assert_memory_equal(g->label, tok, TOKEN_LABEL_LEN);
    assert_int_equal(strlen(g->label), TOKEN_LABEL_LEN);
    token_grant_free(g);

    /* One character off, a prefix, or empty: unknown. */
    char bad[TOKEN_LEN + 1];
    memcpy(bad, tok, sizeof(bad));
    bad[5] = bad[5] == 'A' ? 'B' : 'A';
    assert_int_equal(tokens_lookup(t, slice_cstr(bad), NOW, &g), -ENOENT);
    assert_null(g);
    assert_int_equal(tokens_lookup(t, slice_make(tok, TOKEN_LEN - 1), NOW, &g), -ENOENT);
    assert_int_equal(tokens_lookup(t, SLICE(""), NOW, &g), -ENOENT);
    tokens_free(t);
}

static void
issue_refuses_bad_arguments(void **state)
{
    struct tokens *t = tokens_new();
    const char *ok[] = {"a/#"};
    const char *bad_hash[] = {"a/#/b"};
    const char *bad_plus[] = {"a/b+"};
    const char *shared[] = {"$share/g/a"};
    const char *empty[] = {""};
    const char *many[TOKEN_MAX_FILTERS + 1];
    char tok[TOKEN_LEN + 1];
    uint64_t exp;

    for (size_t i = 0; i <= TOKEN_MAX_FILTERS; i++)
        many[i] = "x/+";
#define ISSUE(fs, n, act, secs, len) tokens_issue(t, fs, n, act, secs, NOW, tok, len, &exp)
    assert_int_equal(ISSUE(ok, 0, TOKEN_READ, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(many, TOKEN_MAX_FILTERS + 1, TOKEN_READ, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(many, TOKEN_MAX_FILTERS, TOKEN_READ, 60, sizeof(tok)), 0);
    assert_int_equal(ISSUE(bad_hash, 1, TOKEN_READ, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(bad_plus, 1, TOKEN_READ, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(shared, 1, TOKEN_READ, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(empty, 1, TOKEN_READ, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(ok, 1, 0, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(ok, 1, 4, 60, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(ok, 1, TOKEN_READ, 59, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(ok, 1, TOKEN_READ, 2592001, sizeof(tok)), -EINVAL);
    assert_int_equal(ISSUE(ok, 1, TOKEN_READ, 2592000, sizeof(tok)), 0);
    assert_int_equal(ISSUE(ok, 1, TOKEN_READ, 60, TOKEN_LEN), -EINVAL);
    assert_int_equal(ISSUE(NULL, 1, TOKEN_READ, 60, sizeof(tok)), -EINVAL);
#undef ISSUE
    assert_int_equal(tokens_count(t), 2);
    tokens_free(t);
}

static void
revoke_and_expiry(void **state)
{
    struct tokens *t = tokens_new();
    const char *fs[] = {"a/#"};
    char tok[TOKEN_LEN + 1], other[TOKEN_LEN + 1];
    struct token_grant *g, *g2;

    issue(t, fs, 1, TOKEN_READ | TOKEN_WRITE, 120, tok);
    issue(t, fs, 1, TOKEN_READ, 600, other);
    assert_int_equal(tokens_lookup(t, slice_cstr(tok), NOW, &g), 0);
    assert_int_equal(tokens_lookup(t, slice_cstr(other), NOW, &g2), 0);
    assert_int_equal(tokens_check(t, g, NOW + 119), 0);
    /* Expiry is exact to the second: at expires_at it no longer works. */
    assert_int_equal(tokens_check(t, g, NOW + 120), -EKEYEXPIRED);
    struct token_grant *none;
    assert_int_equal(tokens_lookup(t, slice_cstr(tok), NOW + 120, &none), -EKEYEXPIRED);
    assert_null(none);

    uint64_t gen = tokens_gen(t);
    assert_int_equal(tokens_revoke(t, tok), 0);
    assert_true(tokens_gen(t) != gen);
    assert_int_equal(tokens_check(t, g, NOW), -ENOENT);
    assert_int_equal(tokens_check(t, g2, NOW), 0); /* the other token is untouched */
    assert_int_equal(tokens_lookup(t, slice_cstr(tok), NOW, &none), -ENOENT);
    gen = tokens_gen(t);
    assert_int_equal(tokens_revoke(t, tok), -ENOENT);
    assert_int_equal(tokens_revoke(t, "nonsense"), -ENOENT);
    assert_int_equal(tokens_gen(t), gen); /* nothing revoked: the hubs need not look */
    assert_int_equal(tokens_count(t), 1);
    token_grant_free(g);
    token_grant_free(g2);
    tokens_free(t);
}

static void
filter_subset_and_match(void **state)
{
    struct tokens *t = tokens_new();
    const char *fs[] = {"a/#", "b/+/c", "d", "#"};
    char tok[TOKEN_LEN + 1], all[TOKEN_LEN + 1];
    struct token_grant *g, *ga;

    issue(t, fs, 3, TOKEN_READ, 60, tok);
    issue(t, fs + 3, 1, TOKEN_READ, 60, all);
    assert_int_equal(tokens_lookup(t, slice_cstr(tok), NOW, &g), 0);
    assert_int_equal(tokens_lookup(t, slice_cstr(all), NOW, &ga), 0);

    assert_true(token_grant_covers(g, SLICE("a/#")));
    assert_true(token_grant_covers(g, SLICE("a")));      /* "a/#" matches "a" [MQTT-4.7.1-2] */
    assert_true(token_grant_covers(g, SLICE("a/+/x")));
    assert_true(token_grant_covers(g, SLICE("a/b/#")));
    assert_true(token_grant_covers(g, SLICE("b/x/c")));
    assert_true(token_grant_covers(g, SLICE("b/+/c")));
    assert_true(token_grant_covers(g, SLICE("d")));
    assert_false(token_grant_covers(g, SLICE("#")));
    assert_false(token_grant_covers(g, SLICE("+/x")));   /* reaches b/x, d/x... */
    assert_false(token_grant_covers(g, SLICE("b/#")));   /* reaches b/x/d */
    assert_false(token_grant_covers(g, SLICE("b/x/+"))); /* reaches b/x/d */
    assert_false(token_grant_covers(g, SLICE("d/#")));   /* reaches d/x */
    assert_false(token_grant_covers(g, SLICE("e")));
    /* '#' in a token reaches no '$' topic [MQTT-4.7.2-1]. */
    assert_true(token_grant_covers(ga, SLICE("x/y")));
    assert_false(token_grant_covers(ga, SLICE("$SYS/#")));
    assert_false(token_grant_matches(ga, SLICE("$SYS/broker/uptime")));

    assert_true(token_grant_matches(g, SLICE("a")));
    assert_true(token_grant_matches(g, SLICE("a/b/c")));
    assert_true(token_grant_matches(g, SLICE("b/1/c")));
    assert_false(token_grant_matches(g, SLICE("b/1/d")));
    assert_true(token_grant_matches(g, SLICE("d")));
    assert_false(token_grant_matches(g, SLICE("d/x")));
    assert_false(token_grant_matches(g, SLICE("c")));
    token_grant_free(g);
    token_grant_free(ga);
    tokens_free(t);
}

static void
username_strings(void **state)
{
    struct slice key, inst;

    assert_true(token_username_parse(SLICE("Token|AK1|mqtt-inst"), &key, &inst));
    assert_true(slice_eq(key, SLICE("AK1")));
    assert_true(slice_eq(inst, SLICE("mqtt-inst")));
    assert_false(token_username_parse(SLICE("Token|AK1"), &key, &inst));
    assert_false(token_username_parse(SLICE("Token||inst"), &key, &inst));
    assert_false(token_username_parse(SLICE("Token|AK1|"), &key, &inst));
    assert_false(token_username_parse(SLICE("Token|AK1|inst|x"), &key, &inst));
    assert_false(token_username_parse(SLICE("token|AK1|inst"), &key, &inst));
    assert_false(token_username_parse(SLICE("Signature|AK1|inst"), &key, &inst));
    assert_false(token_username_parse(SLICE("Token"), &key, &inst));
    assert_false(token_username_parse(SLICE(""), &key, &inst));
}

static int
login(struct tokens *t, const char *password, uint64_t now, struct token_grant *g[2])
{
    return tokens_login(t, slice_cstr(password), now, g);
}

static void
free_grants(struct token_grant *g[2])
{
    if (g[1] != g[0])
        token_grant_free(g[1]);
    token_grant_free(g[0]);
    g[0] = g[1] = NULL;
}

static void
password_strings(void **state)
{
    struct tokens *t = tokens_new();
    const char *fa[] = {"a/#"}, *fb[] = {"b/#"};
    char r[TOKEN_LEN + 1], w[TOKEN_LEN + 1], rw[TOKEN_LEN + 1], pw[256];
    struct token_grant *g[2];

    issue(t, fa, 1, TOKEN_READ, 600, r);
    issue(t, fb, 1, TOKEN_WRITE, 600, w);
    issue(t, fa, 1, TOKEN_READ | TOKEN_WRITE, 600, rw);

    snprintf(pw, sizeof(pw), "R|%s|W|%s", r, w);
    assert_int_equal(login(t, pw, NOW, g), 0);
    assert_string_equal(g[0]->filters[0], "a/#");
    assert_string_equal(g[1]->filters[0], "b/#");
    free_grants(g);
    snprintf(pw, sizeof(pw), "W|%s|R|%s", w, r); /* any order */
    assert_int_equal(login(t, pw, NOW, g), 0);
    assert_string_equal(g[0]->filters[0], "a/#");
    free_grants(g);
    snprintf(pw, sizeof(pw), "R|%s", r);
    assert_int_equal(login(t, pw, NOW, g), 0);
    assert_non_null(g[0]);
    assert_null(g[1]);
    free_grants(g);
    snprintf(pw, sizeof(pw), "RW|%s", rw);
    assert_int_equal(login(t, pw, NOW, g), 0);
    assert_ptr_equal(g[0], g[1]);
    free_grants(g);
    /* An RW token may serve as R only. */
    snprintf(pw, sizeof(pw), "R|%s", rw);
    assert_int_equal(login(t, pw, NOW, g), 0);
    assert_null(g[1]);
    free_grants(g);

    /* Malformed: nothing, a lone type, an empty token, an unknown type, an action twice. */
    const char *malformed[] = {"", "R", "R|", "X|abc", "r|abc", "R|a|R|b", "RW|a|W|b", "|abc",
                               "R|a|W|b|R|c", "R|a|W"};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++) {
        assert_int_equal(login(t, malformed[i], NOW, g), -EINVAL);
        assert_null(g[0]);
        assert_null(g[1]);
    }
    snprintf(pw, sizeof(pw), "W|%s", r); /* a read token as W */
    assert_int_equal(login(t, pw, NOW, g), -EACCES);
    snprintf(pw, sizeof(pw), "RW|%s", r);
    assert_int_equal(login(t, pw, NOW, g), -EACCES);
    /* One bad token spoils the login, and the good one's grant is not leaked (ASan). */
    snprintf(pw, sizeof(pw), "R|%s|W|nosuchtoken", r);
    assert_int_equal(login(t, pw, NOW, g), -ENOENT);
    assert_null(g[0]);
    snprintf(pw, sizeof(pw), "R|%s|W|%s", r, w);
    assert_int_equal(login(t, pw, NOW + 600, g), -EKEYEXPIRED);
    assert_int_equal(tokens_revoke(t, w), 0);
    assert_int_equal(login(t, pw, NOW, g), -ENOENT);
    tokens_free(t);
}

static void
refresh_message(void **state)
{
    struct slice tok;
    unsigned act;

#define UP(s) token_upload_parse(SLICE(s), &tok, &act)
    assert_int_equal(UP("{\"token\":\"abc\",\"type\":\"R\"}"), 0);
    assert_true(slice_eq(tok, SLICE("abc")));
    assert_int_equal(act, TOKEN_READ);
    assert_int_equal(UP(" {\n \"type\" : \"W\" , \"token\" : \"x-_y\" } \n"), 0);
    assert_true(slice_eq(tok, SLICE("x-_y")));
    assert_int_equal(act, TOKEN_WRITE);
    assert_int_equal(UP("{\"type\":\"RW\",\"token\":\"t\"}"), 0);
    assert_int_equal(act, TOKEN_READ | TOKEN_WRITE);
    /* Other members are skipped, whatever their value. */
    assert_int_equal(UP("{\"n\":-1.5e3,\"o\":{\"a\":[1,{\"b\":\"}\"}]},\"s\":\"q\\\"\",\"t\":true,"
                        "\"z\":null,\"token\":\"abc\",\"type\":\"R\",\"e\":[]}"),
                     0);
    assert_true(slice_eq(tok, SLICE("abc")));

    const char *bad[] = {
        "",
        "[]",
        "{}",
        "{\"token\":\"abc\"}",
        "{\"type\":\"R\"}",
        "{\"token\":\"\",\"type\":\"R\"}",
        "{\"token\":\"abc\",\"type\":\"X\"}",
        "{\"token\":\"abc\",\"type\":\"r\"}",
        "{\"token\":\"a\\u0062c\",\"type\":\"R\"}", /* tokens never need escapes */
        "{\"token\":\"abc\",\"type\":\"R\"} x",
        "{\"token\":\"abc\",\"type\":\"R\"",
        "{\"token\":\"abc\" \"type\":\"R\"}",
        "{\"token\":abc,\"type\":\"R\"}",
        "{\"token\":\"abc,\"type\":\"R\"}",
        "{\"x\":,\"token\":\"abc\",\"type\":\"R\"}",
        "{\"x\":{\"token\":\"abc\",\"type\":\"R\"}",
        "{\"token\":\"ab\nc\",\"type\":\"R\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (token_upload_parse(slice_cstr(bad[i]), &tok, &act) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
#undef UP
}

/* ---- persistence hook and restore ---- */

struct hook_log {
    int n_put, n_del;
    int fail; /* returned by the hook */
    uint8_t hash[TOKEN_HASH_LEN];
    char label[TOKEN_LABEL_LEN + 1];
    unsigned actions;
    uint64_t expires_at;
    size_t n_filters;
    char filters[4][32];
};

static int
hook(void *ctx, const struct token_record *rec, bool del)
{
    struct hook_log *l = ctx;

    if (l->fail)
        return l->fail;
    del ? l->n_del++ : l->n_put++;
    memcpy(l->hash, rec->hash, TOKEN_HASH_LEN);
    snprintf(l->label, sizeof(l->label), "%s", rec->label);
    if (!del) {
        l->actions = rec->actions;
        l->expires_at = rec->expires_at;
        l->n_filters = rec->n_filters;
        for (size_t i = 0; i < rec->n_filters && i < 4; i++)
            snprintf(l->filters[i], sizeof(l->filters[i]), "%.*s", SLICE_FMT(rec->filters[i]));
    }
    return 0;
}

static void
persistence_hook_and_restore(void **state)
{
    struct tokens *t = tokens_new(), *t2 = tokens_new();
    struct hook_log l = {0};
    const char *fs[] = {"a/#", "p/+"};
    char tok[TOKEN_LEN + 1];
    uint64_t exp;
    struct token_grant *g;

    tokens_set_persist(t, hook, &l);
    issue(t, fs, 2, TOKEN_WRITE, 3600, tok);
    assert_int_equal(l.n_put, 1);
    /* What is stored names the token without giving it away: the hash and a label. */
    assert_memory_not_equal(l.hash, tok, TOKEN_HASH_LEN);
    assert_memory_equal(l.label, tok, TOKEN_LABEL_LEN);
    assert_int_equal(l.actions, TOKEN_WRITE);
    assert_int_equal(l.expires_at, NOW + 3600);
    assert_int_equal(l.n_filters, 2);
    assert_string_equal(l.filters[1], "p/+");

    /* A store that fails: no token is issued. */
    l.fail = -ENOSPC;
    char tok2[TOKEN_LEN + 1] = "";
    assert_int_equal(tokens_issue(t, fs, 1, TOKEN_READ, 60, NOW, tok2, sizeof(tok2), &exp),
                     -ENOSPC);
    assert_int_equal(tokens_count(t), 1);
    l.fail = 0;

    /* The record restores into another table (a restart): the token works there. */
    struct slice sf[2] = {SLICE("a/#"), SLICE("p/+")};
    struct token_record rec = {.hash = l.hash, .label = l.label, .actions = l.actions,
                               .expires_at = l.expires_at, .n_filters = 2, .filters = sf};
    assert_int_equal(tokens_restore(t2, &rec, NOW), 0);
    assert_int_equal(tokens_lookup(t2, slice_cstr(tok), NOW, &g), 0);
    assert_int_equal(g->actions, TOKEN_WRITE);
    assert_string_equal(g->filters[0], "a/#");
    token_grant_free(g);
    /* Expired or malformed records are skipped. */
    assert_int_equal(tokens_restore(t2, &rec, NOW + 3600), -EINVAL);
    struct slice badf[1] = {SLICE("a/#/b")};
    struct token_record bad = rec;
    bad.n_filters = 1;
    bad.filters = badf;
    assert_int_equal(tokens_restore(t2, &bad, NOW), -EINVAL);
    bad = rec;
    bad.actions = 0;
    assert_int_equal(tokens_restore(t2, &bad, NOW), -EINVAL);
    assert_int_equal(tokens_count(t2), 1);

    /* Revocation deletes the record (even when storing that fails, memory forgets it). */
    assert_int_equal(tokens_revoke(t, tok), 0);
    assert_int_equal(l.n_del, 1);
    assert_int_equal(tokens_revoke(t, tok), -ENOENT);
    assert_int_equal(l.n_del, 1);
    l.fail = -EIO;
    assert_int_equal(tokens_revoke(t2, tok), 0); /* t2 has no hook */
    tokens_free(t);
    tokens_free(t2);
}

/* ---- token logins through auth_connect ---- */

static int
connect_with(struct auth *a, struct tokens *t, const char *user, const char *password,
             struct auth_identity **id)
{
    struct config_listener li = {.bind_address = "0.0.0.0"};
    struct auth_request rq = {
        .client_id = SLICE("GID_x@@@1"),
        .has_username = true,
        .username = slice_cstr(user),
        .has_password = password != NULL,
        .password = slice_cstr(password),
        .listener = &li,
        .peer = "10.0.0.1:1000",
        .now = 1000,
        .tokens = t,
        .wall_s = NOW,
    };
    const char *reason = NULL;
    int rc = auth_connect(a, 0, &rq, id, &reason);

    assert_non_null(reason);
    return rc;
}

static void
token_logins(void **state)
{
    struct config cfg;
    struct auth *a;
    char err[256];
    struct tokens *t = tokens_new();
    const char *fr[] = {"in/#", "shared/+"}, *fw[] = {"out/+", "app/p2p/#"}, *fo[] = {"other"};
    char r[TOKEN_LEN + 1], w[TOKEN_LEN + 1], r2[TOKEN_LEN + 1], rw[TOKEN_LEN + 1], pw[256];
    struct auth_identity *id = NULL;

    config_defaults(&cfg);
    cfg.allow_anonymous_set = true;
    cfg.allow_anonymous = false; /* only the tokens can let anybody in */
    assert_int_equal(auth_new(&cfg, 1, &a, err, sizeof(err)), 0);
    issue(t, fr, 2, TOKEN_READ, 600, r);
    issue(t, fw, 2, TOKEN_WRITE, 600, w);
    issue(t, fo, 1, TOKEN_READ, 600, r2);
    issue(t, fo, 1, TOKEN_READ | TOKEN_WRITE, 600, rw);

    snprintf(pw, sizeof(pw), "R|%s|W|%s", r, w);
    assert_int_equal(connect_with(a, t, "Token|AK|inst", pw, &id), 0);
    assert_string_equal(auth_identity_user(id), "AK"); /* the ACL sees the AccessKeyId */
    assert_true(auth_identity_has_tokens(id));
    assert_true(auth_token_may_subscribe(id, SLICE("in/a/#")));
    assert_true(auth_token_may_subscribe(id, SLICE("shared/x")));
    assert_false(auth_token_may_subscribe(id, SLICE("out/x"))); /* write only */
    assert_false(auth_token_may_subscribe(id, SLICE("#")));
    assert_true(auth_token_may_receive(id, SLICE("in/a/b")));
    assert_false(auth_token_may_receive(id, SLICE("out/a")));
    assert_true(auth_token_may_publish(id, SLICE("out/a")));
    assert_true(auth_token_may_publish(id, SLICE("app/p2p/GID_x@@@2"))); /* P2P: its topic */
    assert_false(auth_token_may_publish(id, SLICE("in/a")));
    assert_false(auth_token_may_publish(id, SLICE("out/a/b")));

    /* A refresh of R replaces the read token only. */
    struct token_grant *g;
    assert_int_equal(tokens_lookup(t, slice_cstr(r2), NOW, &g), 0);
    auth_identity_set_token(id, TOKEN_READ, g);
    assert_ptr_equal(auth_identity_token(id, TOKEN_READ), g);
    assert_false(auth_token_may_receive(id, SLICE("in/a/b")));
    assert_true(auth_token_may_receive(id, SLICE("other")));
    assert_true(auth_token_may_publish(id, SLICE("out/a")));
    /* An RW token in both slots, then one slot replaced: the RW grant stays in the other and
     * is freed once, when the identity goes (ASan checks both). */
    assert_int_equal(tokens_lookup(t, slice_cstr(rw), NOW, &g), 0);
    auth_identity_set_token(id, TOKEN_READ | TOKEN_WRITE, g);
    assert_ptr_equal(auth_identity_token(id, TOKEN_WRITE), g);
    assert_true(auth_token_may_publish(id, SLICE("other")));
    assert_false(auth_token_may_publish(id, SLICE("out/a")));
    assert_int_equal(tokens_lookup(t, slice_cstr(w), NOW, &g), 0);
    auth_identity_set_token(id, TOKEN_WRITE, g);
    assert_true(auth_token_may_publish(id, SLICE("out/a")));
    assert_true(auth_token_may_receive(id, SLICE("other")));
    auth_identity_free(id);

    /* Only a write token: nothing to read. */
    snprintf(pw, sizeof(pw), "W|%s", w);
    assert_int_equal(connect_with(a, t, "Token|AK|inst", pw, &id), 0);
    assert_false(auth_token_may_subscribe(id, SLICE("out/x")));
    assert_false(auth_token_may_receive(id, SLICE("out/x")));
    auth_identity_free(id);

    /* Wrong credentials: 0x86 (CONNACK 5 in 3.1.1). */
    snprintf(pw, sizeof(pw), "R|%s", w);
    assert_int_equal(connect_with(a, t, "Token|AK|inst", pw, &id), MQTT_RC_BAD_CREDENTIALS);
    assert_null(id);
    assert_int_equal(connect_with(a, t, "Token|AK|inst", "R|nosuch", &id),
                     MQTT_RC_BAD_CREDENTIALS);
    assert_int_equal(connect_with(a, t, "Token|AK|inst", NULL, &id), MQTT_RC_BAD_CREDENTIALS);
    snprintf(pw, sizeof(pw), "R|%s", r);
    assert_int_equal(connect_with(a, NULL, "Token|AK|inst", pw, &id), MQTT_RC_BAD_CREDENTIALS);
    /* Not a token username: anonymous, which this configuration refuses. */
    assert_int_equal(connect_with(a, t, "Token|AK", pw, &id), MQTT_RC_NOT_AUTHORIZED);
    /* An ordinary login carries no tokens and is not limited by them. */
    cfg.allow_anonymous = true;
    assert_int_equal(connect_with(a, t, "alice", "x", &id), 0);
    assert_false(auth_identity_has_tokens(id));
    assert_true(auth_token_may_publish(id, SLICE("anything")));
    assert_true(auth_token_may_subscribe(id, SLICE("#")));
    assert_true(auth_token_may_receive(id, SLICE("x")));
    auth_identity_free(id);
    assert_false(auth_identity_has_tokens(NULL));

    auth_free(a);
    config_fini(&cfg);
    tokens_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_and_look_up),
        cmocka_unit_test(issue_refuses_bad_arguments),
        cmocka_unit_test(revoke_and_expiry),
        cmocka_unit_test(filter_subset_and_match),
        cmocka_unit_test(username_strings),
        cmocka_unit_test(password_strings),
        cmocka_unit_test(refresh_message),
        cmocka_unit_test(persistence_hook_and_restore),
        cmocka_unit_test(token_logins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
