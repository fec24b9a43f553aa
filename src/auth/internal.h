/*
 * internal.h - what the files of auth/ share; not part of auth.h's contract (unit tests use
 * it too).
 *
 *   passwd.c   Mosquitto password files: "$6$" (salted SHA-512) and "$7$" (PBKDF2-SHA512)
 *   acl.c      Mosquitto ACL files, plus Petrel's p2p rules; compiling one client's view
 *   apsara.c   ApsaraMQ access keys, device credentials, signatures, GID client IDs
 *   auth.c     the snapshot of all of them, reload, CONNECT decisions, failed-login throttle
 */
#ifndef PETREL_AUTH_INTERNAL_H
#define PETREL_AUTH_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/map.h"
#include "base/slice.h"

/* ---- passwd.c ---- */

#define PASSWD_HASH_LEN 64 /* SHA-512 */
#define PASSWD_SALT_MAX 64

struct passwd_entry {
    char *user;          /* owned; the map's key */
    int kind;            /* 6 or 7 */
    unsigned iterations; /* $7$ only */
    uint8_t salt[PASSWD_SALT_MAX];
    size_t salt_len;
    uint8_t hash[PASSWD_HASH_LEN];
};

struct passwd_file {
    struct map users; /* user -> struct passwd_entry */
};

/* Read a password file. Lines: "user:$7$iterations$salt$hash" or "user:$6$salt$hash";
 * '#' comments and lines without ':' are skipped; malformed entries are skipped with a
 * warning (as Mosquitto does), so that user cannot log in. Returns 0, or -1 with err set
 * when the file cannot be read. */
int passwd_load(const char *path, struct passwd_file *pf, char *err, size_t err_len);
/* The same from memory (`name` for messages). */
int passwd_parse(const char *name, const char *data, size_t len, struct passwd_file *pf, char *err,
                 size_t err_len);
void passwd_fini(struct passwd_file *pf);
/* Decode one entry's hash part ("$7$..."). Returns 0 or -1 (malformed). */
int passwd_entry_parse(const char *s, struct passwd_entry *e);
bool passwd_entry_verify(const struct passwd_entry *e, struct slice password);
/* 0 when `user` is known and `password` matches; -1 otherwise. Runs the hash even for an
 * unknown user, so timing does not tell which usernames exist. */
int passwd_check(const struct passwd_file *pf, struct slice user, struct slice password);

/* Base64 (standard alphabet, padded). b64_encode writes 4*ceil(len/3) characters and a NUL.
 * b64_decode returns the decoded length, or -1 when `s` is not valid base64 or would not
 * fit in `cap` bytes. */
size_t b64_encode(const uint8_t *in, size_t len, char *out);
int b64_decode(const char *s, size_t len, uint8_t *out, size_t cap);

/* ---- acl.c ---- */

enum acl_access {
    ACL_DENY = 0,
    ACL_READ = 1 << 0,
    ACL_WRITE = 1 << 1,
};

struct acl_rule {
    uint8_t access; /* enum acl_access bits; ACL_DENY: deny */
    char *topic;    /* owned, a valid filter (patterns: before expansion) */
};

/* A p2p rule: which targets a sender may address. */
struct acl_p2p_rule {
    bool same_group; /* target in the sender's GID group */
    char *pattern;   /* else: target client ID glob ('*'; %c %u %g) */
};

/* The rules of one user (or of anonymous clients). Deny rules come first, then the others
 * in file order, as Mosquitto orders them. */
struct acl_section {
    char *user; /* owned; NULL for the anonymous section and patterns */
    struct acl_rule *rules;
    size_t n_rules;
    size_t n_denies; /* rules[0 .. n_denies) are the deny rules */
    struct acl_p2p_rule *p2p;
    size_t n_p2p;
};

struct acl {
    struct acl_section anon;     /* topic/p2p lines before any user line */
    struct acl_section patterns; /* pattern and p2p_pattern lines, for everyone */
    struct map users;            /* user -> struct acl_section */
};

/* Read an ACL file. Returns 0, or -1 with "FILE:LINE: reason" in err; either way the acl
 * needs acl_fini (on failure it may hold part of the file). */
int acl_load(const char *path, struct acl *acl, char *err, size_t err_len);
int acl_parse(const char *name, const char *data, size_t len, struct acl *acl, char *err,
              size_t err_len);
void acl_fini(struct acl *acl);

/* One client's rules with %c/%u/%g expanded, in the order they are tried. */
struct acl_entry {
    uint8_t access;
    struct slice filter; /* into the acl (borrowed) or the view's arena */
};

struct acl_target {
    bool same_group;
    struct slice pattern;
};

struct acl_view {
    struct acl_entry *entries;
    size_t n_entries;
    bool p2p_restricted; /* some p2p rule applies to this client */
    struct acl_target *targets;
    size_t n_targets;
    char *arena; /* expanded patterns */
};

/* Compile the view of a client: `user` NULL for anonymous; `group` empty when the client ID
 * is not a GID one. Borrows `acl`, which must outlive the view. */
void acl_compile(const struct acl *acl, const char *user, struct slice client_id,
                 struct slice group, struct acl_view *out);
void acl_view_fini(struct acl_view *v);

enum acl_result {
    ACL_NO_MATCH = 0,
    ACL_ALLOW,
    ACL_DENIED,
};

/* The first rule matching `topic` decides: a deny rule denies, a rule granting `access`
 * allows, others are passed over. */
enum acl_result acl_check_topic(const struct acl_view *v, unsigned access, struct slice topic);
/* SUBSCRIBE to `filter` (valid, not shared): refused when a deny rule covers it, granted when
 * a read rule intersects it. */
bool acl_check_filter(const struct acl_view *v, struct slice filter);
/* May this client address `target` with P2P? */
bool acl_check_target(const struct acl_view *v, struct slice group, struct slice target);

/* Does every topic `filter` matches also match `rule`? Both valid filters. */
bool acl_filter_covers(struct slice rule, struct slice filter);
/* Is there a topic both filters match? */
bool acl_filter_intersects(struct slice a, struct slice b);
/* `s` against a glob where '*' matches any run of bytes. */
bool acl_glob_match(struct slice pattern, struct slice s);

/* ---- apsara.c ---- */

struct apsara_key {
    char *id; /* AccessKeyId / DeviceAccessKeyId; the map's key */
    char *secret;
    char *instance;  /* NULL: any instance */
    char *client_id; /* device credentials: the one client ID it is for */
};

struct apsara_keys {
    struct map ids; /* id -> struct apsara_key */
};

/* access_key_file lines "AccessKeyId SecretKey [InstanceId]"; device_credential_file lines
 * "DeviceAccessKeyId DeviceSecret ClientId [InstanceId]". '#' comments and blank lines are
 * skipped. Returns 0, or -1 with "FILE:LINE: reason" in err; either way `k` needs
 * apsara_fini. */
int apsara_load(const char *path, bool devices, struct apsara_keys *k, char *err, size_t err_len);
int apsara_parse(const char *name, const char *data, size_t len, bool devices,
                 struct apsara_keys *k, char *err, size_t err_len);
void apsara_fini(struct apsara_keys *k);

enum apsara_mode {
    APSARA_NONE = 0,
    APSARA_SIGNATURE, /* "Signature|AccessKeyId|InstanceId" */
    APSARA_DEVICE,    /* "DeviceCredential|DeviceAccessKeyId|InstanceId" */
};

/* Which ApsaraMQ scheme a username names, with its key id and instance. */
enum apsara_mode apsara_username(struct slice username, struct slice *key_id,
                                 struct slice *instance);
/* Base64(HMAC-SHA1(key = secret, data = client_id)): 28 characters and a NUL. */
#define APSARA_SIG_LEN 28
void apsara_sign(struct slice secret, struct slice client_id, char out[APSARA_SIG_LEN + 1]);
/* 0 when the password is the signature of the client ID with the key's secret, the instance
 * matches (when the key names one) and, for a device credential, the client ID is the
 * credential's. -1 otherwise. */
int apsara_verify(const struct apsara_keys *k, enum apsara_mode mode, struct slice key_id,
                  struct slice instance, struct slice client_id, struct slice password);

/* A client ID "GID_<group>@@@<device>": group 7 to 64 characters of letters, digits, '-' and
 * '_' starting with "GID_" or "GID-", a device ID that is not empty, 64 characters in all,
 * no blanks, control characters, '/', '+' or '#'. Sets *group ("GID_xxx") on success. */
bool apsara_gid_parse(struct slice client_id, struct slice *group);
bool apsara_group_valid(struct slice group);

/* ---- auth.c ---- */

/* Read a whole file (at most 64 MiB) into a new NUL-terminated buffer. Returns 0, or -1 with
 * "PATH: reason" in err. */
int auth_read_file(const char *path, char **data, size_t *len, char *err, size_t err_len);

/* Everything read from the files at one time. Immutable once published. */
struct auth_snap {
    _Atomic unsigned refs;
    bool has_passwd, has_acl, has_keys, has_devices;
    struct passwd_file passwd;
    struct acl acl;
    struct apsara_keys keys;
    struct apsara_keys devices;
};

#endif
