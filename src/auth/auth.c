/*
 * auth.c - the snapshot of every credential and ACL file, its reload, CONNECT decisions and
 * the slowing down of failed logins. See auth.h for the threading contract.
 *
 * Publishing a snapshot: the main thread builds it, then under `lock` swaps `cur` and bumps
 * `gen`. A reader compares `gen` with the one it last saw (one acquire load per check); only
 * when it moved does it take the lock once to swap its own reference. Snapshots are freed by
 * whoever drops the last reference: the main thread, a reader, or an identity being freed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/internal.h"
#include "auth/token.h"
#include "base/hash.h"
#include "base/xalloc.h"
#include "mqtt/rc.h"

#define MAX_FILE (64u * 1024 * 1024)
/* Failed-login tracking: a bounded table, addresses forgotten an hour after their last failure
 * (or sooner when the table needs the room). */
#define FAIL_SLOTS 1024
#define FAIL_PROBE 8
#define FAIL_FORGET_MS (3600u * 1000)
/* Topics up to this length are remembered by the per-identity delivery cache. */
#define RECEIVE_CACHE_MAX 128

struct auth_view {
    struct auth_snap *snap;
    uint64_t gen;
} __attribute__((aligned(64))); /* one cache line per reader: no false sharing */

struct fail_entry {
    char addr[48]; /* "" when free */
    uint32_t fails;
    uint64_t last; /* monotonic ms of the last failure */
};

struct auth {
    const struct config *cfg;
    pthread_mutex_t lock; /* cur, and readers re-taking it */
    struct auth_snap *cur;
    _Atomic uint64_t gen;
    unsigned n_readers;
    struct auth_view *views; /* [n_readers], each touched by its reader only */
    pthread_mutex_t fail_lock;
    _Atomic size_t n_failing;   /* used entries; 0 skips the lock */
    struct fail_entry *failing; /* [FAIL_SLOTS] */
};

struct auth_identity {
    char *user; /* for the ACL; NULL: anonymous */
    char *client_id;
    size_t client_id_len;
    size_t group_len;       /* client_id[0, group_len) is its GID group; 0: none */
    struct auth_snap *snap; /* `acl` was compiled from this snapshot (a reference) */
    struct acl_view acl;
    /* Token login: [0] read, [1] write; the same object for an RW token (freed once). */
    struct token_grant *tokens[2];
    /* The last delivery check, allocated at the first one: a stream of messages on one topic
     * is checked once, and a client that receives nothing through an ACL (most idle ones)
     * does not carry the cache. */
    struct receive_cache *last;
};

struct receive_cache {
    bool has_last;
    bool last_ok;
    uint8_t last_len;
    char last_topic[RECEIVE_CACHE_MAX];
};

/* ---- files ---- */

int
auth_read_file(const char *path, char **data, size_t *len, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0) {
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE) {
        snprintf(err, err_len, "%s: not a regular file of at most 64 MiB", path);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 == cap) {
            if (cap > MAX_FILE)
                break;
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* ---- snapshots ---- */

static struct auth_snap *
snap_ref(struct auth_snap *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

static void
snap_unref(struct auth_snap *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (s->has_passwd)
        passwd_fini(&s->passwd);
    if (s->has_acl)
        acl_fini(&s->acl);
    if (s->has_keys)
        apsara_fini(&s->keys);
    if (s->has_devices)
        apsara_fini(&s->devices);
    free(s);
}

/* Read every file the configuration names into a new snapshot (one reference). */
static int
snap_load(const struct config *cfg, struct auth_snap **out, char *err, size_t err_len)
{
    struct auth_snap *s = xcalloc(1, sizeof(*s));
    char msg[512];
    const char *key = NULL;

    atomic_init(&s->refs, 1);
    if (cfg->password_file) {
        s->has_passwd = true;
        if (passwd_load(cfg->password_file, &s->passwd, msg, sizeof(msg)) != 0) {
            key = "password_file";
            goto fail;
        }
    }
    if (cfg->acl_file) {
        s->has_acl = true;
        if (acl_load(cfg->acl_file, &s->acl, msg, sizeof(msg)) != 0) {
            key = "acl_file";
            goto fail;
        }
    }
    if (cfg->access_key_file) {
        s->has_keys = true;
        if (apsara_load(cfg->access_key_file, false, &s->keys, msg, sizeof(msg)) != 0) {
            key = "access_key_file";
            goto fail;
        }
    }
    if (cfg->device_credential_file) {
        s->has_devices = true;
        if (apsara_load(cfg->device_credential_file, true, &s->devices, msg, sizeof(msg)) != 0) {
            key = "device_credential_file";
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    snprintf(err, err_len, "%s %s", key, msg);
    snap_unref(s);
    return -1;
}

/* This reader's snapshot, re-taken when a reload published a newer one. */
static struct auth_snap *
current(struct auth *a, unsigned reader)
{
    struct auth_view *v = &a->views[reader];

    if (atomic_load_explicit(&a->gen, memory_order_acquire) != v->gen) {
        struct auth_snap *old = v->snap;
        pthread_mutex_lock(&a->lock);
        v->snap = snap_ref(a->cur);
        v->gen = atomic_load_explicit(&a->gen, memory_order_relaxed);
        pthread_mutex_unlock(&a->lock);
        snap_unref(old);
    }
    return v->snap;
}

int
auth_new(const struct config *cfg, unsigned n_readers, struct auth **out, char *err, size_t err_len)
{
    struct auth *a = xcalloc(1, sizeof(*a));

    a->cfg = cfg;
    a->n_readers = n_readers ? n_readers : 1;
    if (snap_load(cfg, &a->cur, err, err_len) != 0) {
        free(a);
        return -1;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->fail_lock, NULL);
    atomic_init(&a->gen, 1);
    atomic_init(&a->n_failing, 0);
    /* Aligned like its type (one cache line per reader); gen 0: first use takes `cur`. */
    void *views = NULL;
    if (posix_memalign(&views, _Alignof(struct auth_view), a->n_readers * sizeof(*a->views)) != 0)
        abort();
    a->views = memset(views, 0, a->n_readers * sizeof(*a->views));
    a->failing = xcalloc(FAIL_SLOTS, sizeof(*a->failing));
    *out = a;
    return 0;
}

int
auth_reload(struct auth *a, char *err, size_t err_len)
{
    struct auth_snap *s, *old;

    if (snap_load(a->cfg, &s, err, err_len) != 0)
        return -1;
    pthread_mutex_lock(&a->lock);
    old = a->cur;
    a->cur = s;
    atomic_fetch_add_explicit(&a->gen, 1, memory_order_release);
    pthread_mutex_unlock(&a->lock);
    snap_unref(old);
    return 0;
}

void
auth_free(struct auth *a)
{
    if (!a)
        return;
    for (unsigned i = 0; i < a->n_readers; i++)
        snap_unref(a->views[i].snap);
    snap_unref(a->cur);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->fail_lock);
    free(a->views);
    free(a->failing);
    free(a);
}

/* ---- failed logins ---- */

/* The address part of "1.2.3.4:5678" or "[::1]:5678". */
static void
peer_address(const char *peer, char *out, size_t out_len)
{
    const char *p = peer ? peer : "";
    size_t len = strlen(p);
    const char *colon = strrchr(p, ':');

    if (p[0] == '[') {
        const char *close = strchr(p, ']');
        p++;
        len = close ? (size_t)(close - p) : strlen(p);
    } else if (colon) {
        len = (size_t)(colon - p);
    }
    snprintf(out, out_len, "%.*s", (int)len, p);
}

static uint64_t
fail_delay_ms(const struct config *cfg, uint32_t fails)
{
    uint32_t over = fails - cfg->auth_fail_limit;
    uint64_t d = 1000ull << (over > 20 ? 20 : over);
    uint64_t max = (uint64_t)cfg->auth_fail_max_delay * 1000;

    return d < max ? d : max;
}

/* The entry for `addr` (NULL when absent); with `make`, one is made, evicting the stalest of
 * the probe window when it is full. Under fail_lock. */
static struct fail_entry *
fail_find(struct auth *a, const char *addr, bool make)
{
    size_t h = (size_t)hash_fixed(addr, strlen(addr));
    struct fail_entry *free_slot = NULL, *oldest = NULL;

    for (size_t i = 0; i < FAIL_PROBE; i++) {
        struct fail_entry *e = &a->failing[(h + i) & (FAIL_SLOTS - 1)];
        if (e->addr[0] && strcmp(e->addr, addr) == 0)
            return e;
        if (!e->addr[0] && !free_slot)
            free_slot = e;
        if (e->addr[0] && (!oldest || e->last < oldest->last))
            oldest = e;
    }
    if (!make)
        return NULL;
    struct fail_entry *e = free_slot ? free_slot : oldest;
    if (free_slot)
        atomic_fetch_add_explicit(&a->n_failing, 1, memory_order_relaxed);
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    e->fails = 0;
    e->last = 0;
    return e;
}

static bool
fail_throttled(struct auth *a, const char *addr, uint64_t now)
{
    const struct config *cfg = a->cfg;
    bool throttled = false;

    if (!cfg->auth_fail_limit || atomic_load_explicit(&a->n_failing, memory_order_relaxed) == 0)
        return false;
    pthread_mutex_lock(&a->fail_lock);
    struct fail_entry *e = fail_find(a, addr, false);
    if (e && e->fails >= cfg->auth_fail_limit && now < e->last + fail_delay_ms(cfg, e->fails))
        throttled = true;
    pthread_mutex_unlock(&a->fail_lock);
    return throttled;
}

static void
fail_note(struct auth *a, const char *addr, uint64_t now, bool failed)
{
    if (!a->cfg->auth_fail_limit ||
        (!failed && atomic_load_explicit(&a->n_failing, memory_order_relaxed) == 0))
        return;
    pthread_mutex_lock(&a->fail_lock);
    struct fail_entry *e = fail_find(a, addr, failed);
    if (e && failed) {
        if (e->fails && now - e->last > FAIL_FORGET_MS)
            e->fails = 0;
        e->fails++;
        e->last = now;
    } else if (e) {
        /* A good login from the address ends its penalty. */
        e->addr[0] = '\0';
        atomic_fetch_sub_explicit(&a->n_failing, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&a->fail_lock);
}

/* ---- CONNECT ---- */

static bool
listener_is_loopback(const struct config_listener *li)
{
    struct in_addr v4;
    struct in6_addr v6;

    if (!li)
        return true; /* in-process use without a network listener */
    if (!li->bind_address)
        return false;
    if (strcmp(li->bind_address, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, li->bind_address, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, li->bind_address, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    return false;
}

/* May a client that nothing authenticated connect through `li`? allow_anonymous when the
 * file gives it; otherwise no once any credentials file is configured (Mosquitto 2's
 * default), yes on a listener that verified a client certificate, and yes on loopback only. */
static bool
anonymous_allowed(const struct config *cfg, const struct auth_snap *s,
                  const struct config_listener *li)
{
    if (cfg->allow_anonymous_set)
        return cfg->allow_anonymous;
    if (s->has_passwd || s->has_keys || s->has_devices)
        return false;
    if (li && li->require_certificate)
        return true;
    return listener_is_loopback(li);
}

static bool
group_listed(const struct config *cfg, struct slice group)
{
    for (size_t i = 0; i < cfg->n_gid_groups; i++) {
        if (slice_eq(group, slice_cstr(cfg->gid_groups[i])))
            return true;
    }
    return false;
}

static void
identity_compile(struct auth_identity *id, struct auth_snap *s)
{
    if (id->snap)
        acl_view_fini(&id->acl);
    snap_unref(id->snap);
    id->snap = snap_ref(s);
    if (id->last)
        id->last->has_last = false;
    if (s->has_acl)
        acl_compile(&s->acl, id->user, slice_make(id->client_id, id->client_id_len),
                    slice_make(id->client_id, id->group_len), &id->acl);
}

/* A new identity for `client_id`, which is copied into the same block (one allocation less
 * per connection). */
static struct auth_identity *
identity_new(struct slice client_id)
{
    struct auth_identity *id = xcalloc(1, sizeof(*id) + client_id.len + 1);

    id->client_id = (char *)(id + 1);
    if (client_id.len)
        memcpy(id->client_id, client_id.p, client_id.len);
    id->client_id_len = client_id.len;
    return id;
}

int
auth_connect(struct auth *a, unsigned reader, const struct auth_request *rq,
             struct auth_identity **out, const char **reason)
{
    const struct config *cfg = a->cfg;
    struct auth_snap *s = current(a, reader);
    struct slice group = {NULL, 0}, user = {NULL, 0};
    bool has_user = false, verified = false;
    char addr[48];

    *out = NULL;
    peer_address(rq->peer, addr, sizeof(addr));
    if (fail_throttled(a, addr, rq->now)) {
        *reason = "too many failed logins from this address";
        return MQTT_RC_CONNECTION_RATE_EXCEEDED;
    }
    bool is_gid = apsara_gid_parse(rq->client_id, &group);
    if (!is_gid)
        group.len = 0;
    if (cfg->require_gid_clientid && !is_gid) {
        *reason = "client id is not GID_<group>@@@<device>";
        return MQTT_RC_CLIENT_ID_INVALID;
    }
    if (is_gid && cfg->n_gid_groups && !group_listed(cfg, group)) {
        *reason = "GID group not allowed";
        return MQTT_RC_NOT_AUTHORIZED;
    }
    struct token_grant *grants[2] = {NULL, NULL};
    struct slice key_id, instance;
    if (rq->listener && rq->listener->use_identity_as_username) {
        /* The certificate is the credential; a username or password sent along is not
         * looked at (as in Mosquitto). */
        if (!rq->cert_identity || !*rq->cert_identity) {
            *reason = "no client certificate identity";
            return MQTT_RC_NOT_AUTHORIZED;
        }
        user = slice_cstr(rq->cert_identity);
        has_user = verified = true;
    } else if (rq->has_username && token_username_parse(rq->username, &key_id, &instance)) {
        /* The tokens are the credential; the instance is not checked (one broker is one
         * instance), and the ACL sees the AccessKeyId, as with signatures. */
        struct slice password = rq->has_password ? rq->password : slice_make(NULL, 0);
        int trc = rq->tokens ? tokens_login(rq->tokens, password, rq->wall_s, grants) : -ENOENT;
        has_user = true;
        user = key_id;
        if (trc != 0) {
            *reason = trc == -EINVAL        ? "malformed token password"
                      : trc == -EKEYEXPIRED ? "token expired"
                      : trc == -EACCES      ? "token lacks the action of its type"
                                            : "unknown or revoked token";
            goto bad;
        }
        verified = true;
    } else if (rq->has_username) {
        struct slice password = rq->has_password ? rq->password : slice_make(NULL, 0);
        enum apsara_mode mode = apsara_username(rq->username, &key_id, &instance);
        const struct apsara_keys *keys = mode == APSARA_SIGNATURE && s->has_keys   ? &s->keys
                                         : mode == APSARA_DEVICE && s->has_devices ? &s->devices
                                                                                   : NULL;
        has_user = true;
        user = rq->username;
        if (keys) {
            if (apsara_verify(keys, mode, key_id, instance, rq->client_id, password) != 0) {
                *reason = mode == APSARA_SIGNATURE ? "bad signature" : "bad device credential";
                goto bad;
            }
            user = key_id; /* the ACL names keys, not whole "Signature|..." usernames */
            verified = true;
        } else if (s->has_passwd) {
            if (passwd_check(&s->passwd, rq->username, password) != 0) {
                *reason = "bad username or password";
                goto bad;
            }
            verified = true;
        }
        /* Otherwise nothing can check the username: the client counts as anonymous, and
         * the ACL still sees its username (Mosquitto does the same). */
    }
    if (!verified && !anonymous_allowed(cfg, s, rq->listener)) {
        *reason = has_user ? "username cannot be verified and anonymous clients are refused"
                           : "anonymous clients are refused";
        return MQTT_RC_NOT_AUTHORIZED;
    }
    if (verified)
        fail_note(a, addr, rq->now, false);

    struct auth_identity *id = identity_new(rq->client_id);
    id->user = has_user ? xstrndup(user.p, user.len) : NULL;
    id->group_len = group.len;
    id->tokens[0] = grants[0];
    id->tokens[1] = grants[1];
    identity_compile(id, s);
    *out = id;
    *reason = verified ? "authenticated" : "anonymous";
    return 0;
bad:
    fail_note(a, addr, rq->now, true);
    return MQTT_RC_BAD_CREDENTIALS;
}

struct auth_identity *
auth_identity_for_app(struct auth *a, unsigned reader, const char *user, const char *client_id)
{
    struct auth_identity *id = identity_new(slice_cstr(client_id));

    id->user = xstrdup(user);
    identity_compile(id, current(a, reader));
    return id;
}

void
auth_identity_free(struct auth_identity *id)
{
    if (!id)
        return;
    if (id->snap)
        acl_view_fini(&id->acl);
    snap_unref(id->snap);
    if (id->tokens[1] != id->tokens[0])
        token_grant_free(id->tokens[1]);
    token_grant_free(id->tokens[0]);
    free(id->user);
    free(id->last);
    free(id);
}

const char *
auth_identity_user(const struct auth_identity *id)
{
    return id ? id->user : NULL;
}

/* ---- ACL checks ---- */

bool
auth_has_acl(struct auth *a, unsigned reader)
{
    return current(a, reader)->has_acl;
}

/* The identity's view against the current snapshot, or NULL when no ACL is loaded. */
static const struct acl_view *
view_of(struct auth *a, unsigned reader, struct auth_identity *id, bool *deny)
{
    struct auth_snap *s = current(a, reader);

    *deny = false;
    if (!s->has_acl)
        return NULL;
    if (!id) {
        *deny = true; /* no identity where an ACL applies: nothing is allowed */
        return NULL;
    }
    if (id->snap != s)
        identity_compile(id, s);
    return &id->acl;
}

bool
auth_may_publish(struct auth *a, unsigned reader, struct auth_identity *id, struct slice topic)
{
    bool deny;
    const struct acl_view *v = view_of(a, reader, id, &deny);

    return v ? acl_check_topic(v, ACL_WRITE, topic) == ACL_ALLOW : !deny;
}

bool
auth_may_send_p2p(struct auth *a, unsigned reader, struct auth_identity *id, struct slice topic,
                  struct slice parent, struct slice target)
{
    bool deny;
    const struct acl_view *v = view_of(a, reader, id, &deny);

    if (!v)
        return !deny;
    enum acl_result r = acl_check_topic(v, ACL_WRITE, topic);
    if (r == ACL_DENIED)
        return false;
    if (r != ACL_ALLOW && acl_check_topic(v, ACL_WRITE, parent) != ACL_ALLOW)
        return false;
    return acl_check_target(v, slice_make(id->client_id, id->group_len), target);
}

bool
auth_may_subscribe(struct auth *a, unsigned reader, struct auth_identity *id, struct slice filter)
{
    bool deny;
    const struct acl_view *v = view_of(a, reader, id, &deny);

    return v ? acl_check_filter(v, filter) : !deny;
}

bool
auth_may_receive(struct auth *a, unsigned reader, struct auth_identity *id, struct slice topic)
{
    bool deny;
    const struct acl_view *v = view_of(a, reader, id, &deny);

    if (!v)
        return !deny;
    struct receive_cache *rc = id->last;
    if (rc && rc->has_last && topic.len == rc->last_len &&
        memcmp(topic.p, rc->last_topic, topic.len) == 0)
        return rc->last_ok;
    bool ok = acl_check_topic(v, ACL_READ, topic) == ACL_ALLOW;
    if (topic.len < RECEIVE_CACHE_MAX) {
        if (!rc)
            rc = id->last = xcalloc(1, sizeof(*rc));
        memcpy(rc->last_topic, topic.p, topic.len);
        rc->last_len = (uint8_t)topic.len;
        rc->last_ok = ok;
        rc->has_last = true;
    }
    return ok;
}

/* ---- token grants ---- */

bool
auth_identity_has_tokens(const struct auth_identity *id)
{
    return id && (id->tokens[0] || id->tokens[1]);
}

const struct token_grant *
auth_identity_token(const struct auth_identity *id, unsigned action)
{
    return action == TOKEN_READ ? id->tokens[0] : action == TOKEN_WRITE ? id->tokens[1] : NULL;
}

void
auth_identity_set_token(struct auth_identity *id, unsigned actions, struct token_grant *g)
{
    struct token_grant *old[2] = {id->tokens[0], id->tokens[1]};

    if (actions & TOKEN_READ)
        id->tokens[0] = g;
    if (actions & TOKEN_WRITE)
        id->tokens[1] = g;
    /* Free what no slot holds any more (an RW grant may survive in the other slot). */
    for (int i = 0; i < 2; i++) {
        if (old[i] && old[i] != id->tokens[0] && old[i] != id->tokens[1] &&
            (i == 0 || old[1] != old[0]))
            token_grant_free(old[i]);
    }
}

bool
auth_token_may_publish(const struct auth_identity *id, struct slice topic)
{
    if (!auth_identity_has_tokens(id))
        return true;
    return id->tokens[1] && token_grant_matches(id->tokens[1], topic);
}

bool
auth_token_may_subscribe(const struct auth_identity *id, struct slice filter)
{
    if (!auth_identity_has_tokens(id))
        return true;
    return id->tokens[0] && token_grant_covers(id->tokens[0], filter);
}

bool
auth_token_may_receive(const struct auth_identity *id, struct slice topic)
{
    if (!auth_identity_has_tokens(id))
        return true;
    return id->tokens[0] && token_grant_matches(id->tokens[0], topic);
}
