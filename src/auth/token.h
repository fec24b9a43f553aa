/*
 * token.h - ApsaraMQ-style access tokens: a shared table of issued tokens, each granting
 * read (R), write (W) or both on up to 100 topic filters until it expires or is revoked;
 * parsing of the token login strings and of the refresh message.
 *
 * A token is 32 random bytes in base64url (43 characters of [A-Za-z0-9_-], so it never
 * contains the '|' of the login strings). The table keeps only its SHA-256 (and its first
 * TOKEN_LABEL_LEN characters, to name it in logs and notices): a copy of the store or of the
 * broker's memory gives no usable token. No salt or slow hash is needed: with 256 random bits
 * there is nothing to guess.
 *
 * Threads: every function may run on any thread; the table takes its own mutex, held only for
 * a hash lookup or insertion. Look-ups happen at CONNECT, at a refresh and when a revocation
 * happened, never per message: a connected client carries copies of its tokens' rights
 * (struct token_grant) that it checks without a lock.
 *
 * Time: expiry is wall-clock seconds since the epoch (tokens outlive restarts).
 */
#ifndef PETREL_AUTH_TOKEN_H
#define PETREL_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"

#define TOKEN_READ 1u
#define TOKEN_WRITE 2u

#define TOKEN_MAX_FILTERS 100
#define TOKEN_MIN_EXPIRE 60u      /* seconds */
#define TOKEN_MAX_EXPIRE 2592000u /* 30 days */
#define TOKEN_LEN 43              /* characters, without the NUL */
#define TOKEN_HASH_LEN 32         /* SHA-256 */
#define TOKEN_LABEL_LEN 8         /* characters of the token shown in logs and notices */
#define TOKENS_MAX 1000000        /* tokens in the table (-ENOSPC beyond) */

/* The topics on which clients refresh their tokens and learn about their end. */
#define TOKEN_UPLOAD_TOPIC "$SYS/uploadToken"
#define TOKEN_EXPIRE_TOPIC "$SYS/tokenExpireNotice"
#define TOKEN_INVALID_TOPIC "$SYS/tokenInvalidNotice"
/* The expiry notice goes out this long before a token expires. */
#define TOKEN_NOTICE_BEFORE 300u /* seconds */

struct tokens;

/* One token's rights, copied out of the table for one client. Owned by whoever got it from
 * tokens_lookup / tokens_login; freed with token_grant_free. */
struct token_grant {
    uint8_t hash[TOKEN_HASH_LEN];
    char label[TOKEN_LABEL_LEN + 1];
    unsigned actions;    /* TOKEN_READ | TOKEN_WRITE */
    uint64_t expires_at; /* wall-clock seconds */
    size_t n_filters;
    char **filters; /* valid topic filters, not shared ("$share/..." is refused at issue) */
};

/* A token as the table keeps it and the store saves it (persistence hook, restore). */
struct token_record {
    const uint8_t *hash; /* TOKEN_HASH_LEN bytes */
    const char *label;   /* NUL-terminated, at most TOKEN_LABEL_LEN characters */
    unsigned actions;
    uint64_t expires_at;
    size_t n_filters;
    const struct slice *filters;
};

struct tokens *tokens_new(void);
/* Accepts NULL. */
void tokens_free(struct tokens *t);

/*
 * Issue a token for `filters` (n_filters of them, 1..TOKEN_MAX_FILTERS, each a valid MQTT
 * topic filter, wildcards allowed, not "$share/..."), `actions` (TOKEN_READ, TOKEN_WRITE or
 * both) and a lifetime of `expire_seconds` (TOKEN_MIN_EXPIRE..TOKEN_MAX_EXPIRE) from
 * `now_unix_s`. Writes the token (TOKEN_LEN characters and a NUL; out_len must be at least
 * TOKEN_LEN + 1) and its expiry. With a persistence hook set, returns only once the token is
 * stored (the hook waits for the commit).
 * Returns 0, -EINVAL (a bad argument), -ENOSPC (TOKENS_MAX live tokens), or the hook's error
 * (then no token was issued).
 */
int tokens_issue(struct tokens *t, const char *const *filters, size_t n_filters, unsigned actions,
                 uint32_t expire_seconds, uint64_t now_unix_s, char *out_token, size_t out_len,
                 uint64_t *expires_at_unix_s);

/* Revoke a token: from now on nobody can log in or refresh with it, and the hubs disconnect
 * the clients holding it at their next tick (see tokens_gen). With a persistence hook the
 * deletion is stored before the call returns.
 * Returns 0, -ENOENT (unknown, or already revoked), or the hook's error (the token is revoked
 * in memory all the same, but could come back after a restart). */
int tokens_revoke(struct tokens *t, const char *token);

/* The token's rights when it exists and has not expired at `now_unix_s`: 0 and a new grant in
 * *out; -ENOENT (unknown or revoked) or -EKEYEXPIRED. */
int tokens_lookup(struct tokens *t, struct slice token, uint64_t now_unix_s,
                  struct token_grant **out);
/* Is the token behind `g` still in force? 0, -ENOENT (revoked) or -EKEYEXPIRED. */
int tokens_check(struct tokens *t, const struct token_grant *g, uint64_t now_unix_s);
/* A counter that moves at every revocation: a hub rechecks its clients' tokens only when it
 * differs from the value it saw last. One atomic load. */
uint64_t tokens_gen(struct tokens *t);
/* Live tokens in the table (expired ones included until they are swept). */
size_t tokens_count(struct tokens *t);

/* ---- persistence (the session layer connects these to the store) ---- */

/* Store (del false) or delete (del true) one token; returns 0 once it is durable, or a
 * negative errno. Called without the table's lock, on the thread issuing or revoking. */
typedef int tokens_persist_fn(void *ctx, const struct token_record *rec, bool del);
/* Set (or clear, with NULL) the hook. Not while another thread issues or revokes. */
void tokens_set_persist(struct tokens *t, tokens_persist_fn *fn, void *ctx);
/* Put a stored token back at start-up (no hook call). Expired or malformed ones are skipped.
 * Returns 0 or -EINVAL (skipped). */
int tokens_restore(struct tokens *t, const struct token_record *rec, uint64_t now_unix_s);

/* ---- grants ---- */

void token_grant_free(struct token_grant *g);
/* Does one of the grant's filters match `topic` (a topic name)? */
bool token_grant_matches(const struct token_grant *g, struct slice topic);
/* Is every topic that `filter` (a valid, not shared filter) matches also matched by one of the
 * grant's filters? (The filter is a subset of one token filter; a filter spread over two
 * token filters, as "a/+" over "a/x" and "a/y", is not recognised and so refused.) */
bool token_grant_covers(const struct token_grant *g, struct slice filter);

/* ---- login strings and the refresh message ---- */

/* "Token|<AccessKeyId>|<InstanceId>": both parts non-empty and free of '|'. */
bool token_username_parse(struct slice username, struct slice *key_id, struct slice *instance);
/*
 * Resolve a login password "R|<token>|W|<token>" (pairs in any order; types R, W or RW, each
 * action at most once, at least one pair) against the table: every token must exist, be in
 * force at `now_unix_s` and carry the action(s) of its type. On success grants[0] is the read
 * grant and grants[1] the write grant (NULL when not given; the same object for an RW pair),
 * both new. Returns 0, -EINVAL (malformed), -ENOENT (unknown or revoked), -EKEYEXPIRED or
 * -EACCES (the token lacks the action); on failure nothing is allocated.
 */
int tokens_login(struct tokens *t, struct slice password, uint64_t now_unix_s,
                 struct token_grant *grants[2]);
/* The refresh message published to TOKEN_UPLOAD_TOPIC: a JSON object with the string members
 * "token" and "type" ("R", "W" or "RW"); other members are ignored. Sets *token (a slice into
 * `payload`) and *actions. Returns 0 or -EINVAL. */
int token_upload_parse(struct slice payload, struct slice *token, unsigned *actions);
/* "R", "W" or "RW" for TOKEN_READ, TOKEN_WRITE or both. */
const char *token_type_str(unsigned actions);

#endif
