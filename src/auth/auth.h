/*
 * auth.h - who may connect, and what they may publish, subscribe to and receive.
 *
 * The data comes from files the configuration names: a Mosquitto password file, a Mosquitto
 * ACL file, and ApsaraMQ-style access-key and device-credential files (docs/security.md).
 * They are read into one immutable, refcounted snapshot. auth_reload() (SIGHUP) reads them
 * again into a new snapshot and publishes it by swapping a pointer and bumping a generation
 * counter; each reader (worker thread) keeps its own reference and re-takes one only when the
 * generation changed, so a check costs one atomic load and takes no lock.
 *
 * Threads: auth_new/auth_reload/auth_free run on the main thread. Every other function names
 * the calling worker's `reader` index (0 .. n_readers-1) and may run on that worker only.
 * An identity is used by one worker at a time (its session's owner).
 */
#ifndef PETREL_AUTH_AUTH_H
#define PETREL_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"
#include "config/config.h"

struct auth;
/* One connected client's identity (username for the ACL, client ID, GID group) and its ACL
 * compiled for it (patterns expanded). Recompiled lazily after a reload. */
struct auth_identity;

/* Read every file `cfg` names. `cfg` is borrowed and must outlive the auth. Returns 0, or -1
 * with a message naming the key, file and line in err. */
int auth_new(const struct config *cfg, unsigned n_readers, struct auth **out, char *err,
             size_t err_len);
/* Read the files again. On failure the old data stays in force; returns -1 with err set. */
int auth_reload(struct auth *a, char *err, size_t err_len);
/* After every reader has stopped and every identity is freed or about to be. */
void auth_free(struct auth *a);

/* What a CONNECT presents. Everything is borrowed for the call. */
struct auth_request {
    struct slice client_id; /* the client ID in use (possibly assigned) */
    bool has_username;
    struct slice username;
    bool has_password;
    struct slice password;
    const char *cert_identity; /* CN of a verified client certificate, or NULL */
    const struct config_listener *listener;
    const char *peer; /* "address:port", for slowing down failed logins */
    uint64_t now;     /* monotonic ms */
    struct tokens *tokens; /* token logins ("Token|..."): the table; NULL refuses them */
    uint64_t wall_s;       /* wall-clock seconds, for token expiry */
};

/* Decide a CONNECT. Returns 0 with a new identity in *out, or the CONNACK reason code:
 * MQTT_RC_BAD_CREDENTIALS (wrong or unknown credentials), MQTT_RC_NOT_AUTHORIZED (anonymous
 * refused, no certificate identity, GID group not allowed), MQTT_RC_CLIENT_ID_INVALID (not a
 * GID client ID where one is required) or MQTT_RC_CONNECTION_RATE_EXCEEDED (this address
 * failed too often lately). *reason is a short text for the log (never a secret). */
int auth_connect(struct auth *a, unsigned reader, const struct auth_request *rq,
                 struct auth_identity **out, const char **reason);
void auth_identity_free(struct auth_identity *id);
/* The identity of an application (an HTTP API key): the ACL sees `user` as the username and
 * `client_id` for %c patterns, as if a client had logged in with them. */
struct auth_identity *auth_identity_for_app(struct auth *a, unsigned reader, const char *user,
                                            const char *client_id);
/* The username the ACL sees (NULL: anonymous). Valid until auth_identity_free. */
const char *auth_identity_user(const struct auth_identity *id);

/* ---- token logins (auth/token.h) ----
 * A client that logged in with tokens ("Token|<AccessKeyId>|<InstanceId>") holds a read and/or
 * a write grant. Its publishes, subscriptions and deliveries are limited to the grants'
 * filters, in addition to the ACL file if any. Without tokens the checks return true. */
struct token_grant;
bool auth_identity_has_tokens(const struct auth_identity *id);
/* The grant for TOKEN_READ or TOKEN_WRITE, NULL when none (the same object for both when one
 * RW token gives both). Valid until replaced or the identity is freed. */
const struct token_grant *auth_identity_token(const struct auth_identity *id, unsigned action);
/* Give the identity `g` (taken) for `actions` (TOKEN_READ, TOKEN_WRITE or both), replacing
 * what it held for them. */
void auth_identity_set_token(struct auth_identity *id, unsigned actions, struct token_grant *g);
/* PUBLISH (a P2P one too: its full topic): a write grant must match the topic. */
bool auth_token_may_publish(const struct auth_identity *id, struct slice topic);
/* SUBSCRIBE: a read grant's filter must cover the filter (every topic it matches). */
bool auth_token_may_subscribe(const struct auth_identity *id, struct slice filter);
/* Delivery: a read grant must match the topic (after a refresh narrowed it). */
bool auth_token_may_receive(const struct auth_identity *id, struct slice topic);

/* Is an ACL file loaded? Without one every topic is allowed and the checks below return true
 * at once; callers on hot paths may skip work when this is false. */
bool auth_has_acl(struct auth *a, unsigned reader);
/* PUBLISH to an ordinary topic: `write` access. */
bool auth_may_publish(struct auth *a, unsigned reader, struct auth_identity *id,
                      struct slice topic);
/* PUBLISH to a P2P topic `<parent>/p2p/<target>`: `write` on the full topic or on `parent`
 * (an explicit deny of the full topic wins), and `target` allowed by the sender's p2p rules. */
bool auth_may_send_p2p(struct auth *a, unsigned reader, struct auth_identity *id,
                       struct slice topic, struct slice parent, struct slice target);
/* SUBSCRIBE: refused when a deny rule covers the whole filter or no `read` rule reaches any
 * topic it matches; what is granted is then filtered per message by auth_may_receive. */
bool auth_may_subscribe(struct auth *a, unsigned reader, struct auth_identity *id,
                        struct slice filter);
/* Delivery of a message on `topic`: `read` access. */
bool auth_may_receive(struct auth *a, unsigned reader, struct auth_identity *id,
                      struct slice topic);

/* ---- password files (petrel passwd) ---- */

/* A new Mosquitto "$7$" entry (PBKDF2-SHA512, 101 iterations, random 12-byte salt) for
 * `password`, written NUL-terminated into out (AUTH_HASH_MAX bytes suffice). 0 or -EIO. */
#define AUTH_HASH_MAX 160
int auth_passwd_hash(struct slice password, char *out, size_t out_len);
/* Does `password` match a "$6$" or "$7$" entry? Constant time in the password's content. */
bool auth_passwd_verify(const char *entry, struct slice password);

#endif
