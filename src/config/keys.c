/*
 * keys.c - every configuration key Petrel knows, and what its value does to struct config.
 *
 * A key is one of:
 *   - a setting Petrel implements, its value parsed strictly (values.c);
 *   - a Mosquitto key whose absence would silently weaken security if we ignored it
 *     (authentication, TLS, plugins, client isolation, interface binding): the load stops
 *     with "'KEY' is not supported yet", so Petrel never runs more open than its file says;
 *   - another Mosquitto key (autosave, tuning, process settings): accepted and reported
 *     through warn_fn as "'KEY' is not supported yet and is ignored";
 *   - a bridge key: valid only after a `connection` line, ignored with its bridge;
 *   - anything else: "unknown key", which also catches typos.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "config/internal.h"

/* The largest MQTT packet: 1 byte of type, 4 of remaining length, 268435455 of body. */
#define MAX_PACKET 268435460u
#define MAX_PAYLOAD 268435455u

enum key_kind {
    KEY_BOOL,                   /* a bool field */
    KEY_U16,                    /* a uint16_t field, 0..max */
    KEY_U32,                    /* a uint32_t field, 0..max */
    KEY_U64,                    /* a uint64_t field, 0..max */
    KEY_UNSIGNED,               /* an unsigned field, 0..max */
    KEY_FN,                     /* its own handler */
    KEY_IGNORE,                 /* accepted with a warning */
    KEY_REFUSE,                 /* stops the load */
    KEY_REFUSE_TRUE,            /* a boolean: false is what Petrel does anyway; true stops */
    KEY_BRIDGE,                 /* only after `connection`; ignored with the bridge */
};

typedef int key_fn(struct config_parse *p, const char *key, char *rest);

struct key_def {
    const char *name;
    enum key_kind kind;
    size_t off;                 /* typed keys: offsetof(struct config, field) */
    uint64_t max;               /* typed numbers: the largest value */
    key_fn *fn;                 /* KEY_FN */
};

static int
typed(struct config_parse *p, const struct key_def *k, char *rest)
{
    char *field = (char *)p->c + k->off;
    uint64_t v;
    char *s;

    if (config_one_word(p, k->name, rest, &s) != 0)
        return -1;
    if (k->kind == KEY_BOOL)
        return config_bool(p, k->name, s, (bool *)field);
    if (config_number(p, k->name, s, 0, k->max, &v) != 0)
        return -1;
    switch (k->kind) {
    case KEY_U16:
        *(uint16_t *)field = (uint16_t)v;
        break;
    case KEY_U32:
        *(uint32_t *)field = (uint32_t)v;
        break;
    case KEY_U64:
        *(uint64_t *)field = v;
        break;
    default:
        *(unsigned *)field = (unsigned)v;
        break;
    }
    return 0;
}

/* --- include_dir --- */

static int
compare_names(const void *a, const void *b)
{
    /* Byte order, as Mosquitto: case-sensitive, capitals first. */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
k_include_dir(struct config_parse *p, const char *key, char *dir)
{
    char b[64];

    if (!*dir)
        return config_missing_value(p, key);
    if (p->depth >= CONFIG_MAX_DEPTH) {
        config_parse_warn(p, "%s is only read from the main configuration file; ignored", key);
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d)
        return config_parse_error(p, "%s: cannot open '%s': %s", key, CLIP(dir, b),
                                  strerror(errno));
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".conf") == 0) {
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), compare_names);

    size_t dir_len = strlen(dir);
    const char *sep = dir[dir_len - 1] == '/' ? "" : "/";
    int rc = 0;
    p->depth++;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            size_t len = dir_len + strlen(sep) + strlen(names[i]) + 1;
            char *path = xmalloc(len);
            snprintf(path, len, "%s%s%s", dir, sep, names[i]);
            rc = config_parse_file(p, path);
            free(path);
        }
        free(names[i]);
    }
    p->depth--;
    free(names);
    return rc;
}

/* --- logging --- */

static int
k_log_type(struct config_parse *p, const char *key, char *rest)
{
    static const struct {
        const char *name;
        unsigned bits;
    } types[] = {
        {"error", LOG_T_ERROR},
        {"warning", LOG_T_WARNING},
        {"notice", LOG_T_NOTICE},
        {"information", LOG_T_INFO},
        {"debug", LOG_T_DEBUG},
        {"all", LOG_T_ERROR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO | LOG_T_DEBUG},
    };
    static const char *const mosquitto_only[] = {"subscribe", "unsubscribe", "websockets",
                                                 "internal"};
    char b[64];
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    /* As in Mosquitto, the first log_type of a load replaces the defaults. */
    if (!p->log_types_set) {
        p->c->log_types = 0;
        p->log_types_set = true;
    }
    if (strcmp(s, "none") == 0) {
        p->c->log_types = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i].name) == 0) {
            p->c->log_types |= types[i].bits;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(mosquitto_only) / sizeof(mosquitto_only[0]); i++) {
        if (strcmp(s, mosquitto_only[i]) == 0) {
            config_parse_warn(p, "%s: '%s' is not supported yet and is ignored", key, s);
            return 0;
        }
    }
    return config_parse_error(
        p, "%s: '%s' is not one of error, warning, notice, information, debug, all, none", key,
        CLIP(s, b));
}

static int
k_log_dest(struct config_parse *p, const char *key, char *rest)
{
    struct config *c = p->c;
    char b[64];

    if (!*rest)
        return config_missing_value(p, key);
    char *s = config_next_word(&rest);
    /* As in Mosquitto, the first log_dest of a load replaces the default (stderr). */
    if (!p->log_dests_set) {
        c->log_to_stderr = false;
        c->log_to_stdout = false;
        free(c->log_file);
        c->log_file = NULL;
        p->log_dests_set = true;
    }
    if (strcmp(s, "file") == 0) {
        /* The path is the rest of the line: it may hold blanks. */
        if (!*rest)
            return config_parse_error(p, "%s: file: missing path", key);
        if (c->log_file)
            return config_parse_error(p, "%s: file: a log file is already set ('%s')", key,
                                      CLIP(c->log_file, b));
        c->log_file = xstrdup(rest);
        return 0;
    }
    if (*rest)
        return config_extra_value(p, key, rest);
    if (strcmp(s, "stderr") == 0) {
        c->log_to_stderr = true;
    } else if (strcmp(s, "stdout") == 0) {
        c->log_to_stdout = true;
    } else if (strcmp(s, "none") == 0) {
        c->log_to_stderr = false;
        c->log_to_stdout = false;
        free(c->log_file);
        c->log_file = NULL;
    } else if (strcmp(s, "syslog") == 0 || strcmp(s, "topic") == 0 || strcmp(s, "dlt") == 0) {
        config_parse_warn(p, "%s: '%s' is not supported yet and is ignored", key, s);
    } else {
        return config_parse_error(
            p, "%s: '%s' is not one of stderr, stdout, file, syslog, topic, none", key,
            CLIP(s, b));
    }
    return 0;
}

/* --- other settings --- */

/* Mosquitto's syntax: a count and a unit, h(ours) d(ays) w(eeks) m(onths: 30 days)
 * y(ears: 365 days). "never" (Petrel's) turns expiry off again. */
static int
k_persistent_client_expiration(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    int64_t unit;
    uint64_t v;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    if (strcmp(s, "never") == 0) {
        p->c->persistent_client_expiration = -1;
        return 0;
    }
    size_t len = strlen(s);
    switch (s[len - 1]) {
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    case 'm':
        unit = 30 * 86400;
        break;
    case 'y':
        unit = 365 * 86400;
        break;
    default:
        unit = 0;
        break;
    }
    if (unit == 0 || config_parse_u64n(s, len - 1, &v) != 0 || v == 0 ||
        v > (uint64_t)(INT64_MAX / unit))
        return config_parse_error(
            p, "%s: '%s' is not a duration such as 12h, 2d, 1w, 6m, 1y or never", key,
            CLIP(s, b));
    p->c->persistent_client_expiration = (int64_t)v * unit;
    return 0;
}

/* Mosquitto's maximum_qos (alias max_qos) is per listener; Petrel has one for the broker and
 * keeps the lowest given, so no listener allows more than its section asked for. */
static int
k_maximum_qos(struct config_parse *p, const char *key, char *rest)
{
    uint64_t v;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || config_number(p, key, s, 0, 2, &v) != 0)
        return -1;
    if ((p->seen & SEEN_MAXIMUM_QOS) && v != p->c->maximum_qos) {
        if (v > p->c->maximum_qos)
            v = p->c->maximum_qos;
        config_parse_warn(p, "%s: Petrel has one value for all listeners; using the lowest, %u",
                          key, (unsigned)v);
    }
    p->c->maximum_qos = (uint8_t)v;
    p->seen |= SEEN_MAXIMUM_QOS;
    return 0;
}

/* allow_anonymous and allow_zero_length_clientid. With per_listener_settings Mosquitto
 * keeps one per listener; Petrel has one for the broker, so then "false" anywhere wins:
 * no listener is opened wider than its section asked for. */
static int
security_bool(struct config_parse *p, const char *key, char *rest, bool *field, unsigned bit)
{
    bool v;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || config_bool(p, key, s, &v) != 0)
        return -1;
    if (p->c->per_listener_settings && (p->seen & bit) && v != *field) {
        v = false;
        config_parse_warn(p, "%s: Petrel has one value for all listeners; using false", key);
    }
    *field = v;
    p->seen |= bit;
    return 0;
}

static int
k_allow_anonymous(struct config_parse *p, const char *key, char *rest)
{
    p->c->allow_anonymous_set = true;
    return security_bool(p, key, rest, &p->c->allow_anonymous, SEEN_ALLOW_ANONYMOUS);
}

/* password_file, acl_file, access_key_file, device_credential_file: a path, the rest of the
 * line. Petrel has one of each for all listeners (Mosquitto's per_listener_settings may give
 * one per listener), so two different paths are an error rather than a silent choice. */
static int
k_auth_file(struct config_parse *p, const char *key, char *rest)
{
    static const struct {
        const char *key;
        size_t off;
    } files[] = {
        {"password_file", offsetof(struct config, password_file)},
        {"acl_file", offsetof(struct config, acl_file)},
        {"access_key_file", offsetof(struct config, access_key_file)},
        {"device_credential_file", offsetof(struct config, device_credential_file)},
        {"http_api_key_file", offsetof(struct config, http_api_key_file)},
        {"node_name", offsetof(struct config, node_name)},
    };
    char b[64];

    if (!*rest)
        return config_missing_value(p, key);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (strcmp(key, files[i].key) != 0)
            continue;
        char **field = (char **)((char *)p->c + files[i].off);
        if (*field && strcmp(*field, rest) != 0)
            return config_parse_error(p, "%s: already set to '%s'; Petrel has one for all "
                                         "listeners",
                                      key, CLIP(*field, b));
        free(*field);
        *field = xstrdup(rest);
        return 0;
    }
    return config_parse_error(p, "unknown key '%s'", key);
}

/* An ApsaraMQ group ID: 7 to 64 letters, digits, '-' or '_', starting with GID_ or GID-. */
static int
k_allowed_gid_group(struct config_parse *p, const char *key, char *rest)
{
    struct config *c = p->c;
    char b[64];
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    size_t len = strlen(s);
    bool ok = len >= 7 && len <= 64 &&
              (strncmp(s, "GID_", 4) == 0 || strncmp(s, "GID-", 4) == 0) &&
              strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == len;
    if (!ok)
        return config_parse_error(p, "%s: '%s' is not a group ID (GID_ or GID- and 3 to 60 more "
                                     "letters, digits, '-' or '_')",
                                  key, CLIP(s, b));
    for (size_t i = 0; i < c->n_gid_groups; i++) {
        if (strcmp(c->gid_groups[i], s) == 0)
            return 0;
    }
    c->gid_groups = xrealloc(c->gid_groups, (c->n_gid_groups + 1) * sizeof(char *));
    c->gid_groups[c->n_gid_groups++] = xstrdup(s);
    return 0;
}

static int
k_allow_zero_length_clientid(struct config_parse *p, const char *key, char *rest)
{
    return security_bool(p, key, rest, &p->c->allow_zero_length_clientid,
                         SEEN_ALLOW_ZERO_LENGTH_CLIENTID);
}

static int
k_persistence(struct config_parse *p, const char *key, char *rest)
{
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || config_bool(p, key, s, &p->c->persistence) != 0)
        return -1;
    return 0;
}

/* Mosquitto's retained_persistence is an alias of persistence; Petrel stores retained
 * messages and persistent sessions together, so it only accepts the same value. */
static int
k_retained_persistence(struct config_parse *p, const char *key, char *rest)
{
    bool on;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || config_bool(p, key, s, &on) != 0)
        return -1;
    if (on)
        p->c->persistence = true;
    return 0;
}

static int
k_persistence_location(struct config_parse *p, const char *key, char *rest)
{
    if (!*rest)
        return config_missing_value(p, key);
    free(p->c->persistence_location);
    p->c->persistence_location = xstrdup(rest);
    return 0;
}

/* "always" or "periodic N" (milliseconds, 1..3600000). */
static int
k_persistence_sync(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    uint64_t ms;
    char *s;

    if (!*rest)
        return config_missing_value(p, key);
    if (strcmp(rest, "always") == 0) {
        p->c->persistence_sync_periodic = false;
        return 0;
    }
    if (strncmp(rest, "periodic", 8) == 0 && (rest[8] == ' ' || rest[8] == '\t')) {
        s = rest + 9;
        s += strspn(s, CONFIG_BLANKS);
        if (config_number(p, key, s, 1, 3600000, &ms) != 0)
            return -1;
        p->c->persistence_sync_periodic = true;
        p->c->persistence_sync_ms = (uint32_t)ms;
        return 0;
    }
    return config_parse_error(p, "%s: '%s' is not 'always' or 'periodic N' (milliseconds)", key,
                              CLIP(rest, b));
}

/* What a full session queue does with one more QoS 1/2 message (docs/design.md "Slow
 * consumers"). */
static int
k_queue_full_policy(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    if (strcmp(s, "refuse") == 0)
        p->c->queue_full_drop_oldest = false;
    else if (strcmp(s, "drop_oldest") == 0)
        p->c->queue_full_drop_oldest = true;
    else
        return config_parse_error(p, "%s: '%s' is not 'refuse' or 'drop_oldest'", key,
                                  CLIP(s, b));
    return 0;
}

/* Bytes, with an optional k, M or G suffix (powers of 1024); 0: no limit. */
static int
size_value(struct config_parse *p, const char *key, char *rest, uint64_t *out)
{
    char b[64];
    uint64_t v, unit = 1;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    size_t len = strlen(s);
    switch (s[len - 1]) {
    case 'k':
    case 'K':
        unit = 1024;
        break;
    case 'm':
    case 'M':
        unit = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        unit = 1024 * 1024 * 1024;
        break;
    default:
        break;
    }
    if (unit != 1)
        len--;
    if (len == 0 || config_parse_u64n(s, len, &v) != 0 || v > UINT64_MAX / unit)
        return config_parse_error(p, "%s: '%s' is not a size such as 0, 1048576, 512M or 2G",
                                  key, CLIP(s, b));
    *out = v * unit;
    return 0;
}

static int
k_persistence_max_size(struct config_parse *p, const char *key, char *rest)
{
    return size_value(p, key, rest, &p->c->persistence_max_size);
}

/* At least a second: 0 would close every connection before it could say CONNECT. */
static int
k_connect_timeout(struct config_parse *p, const char *key, char *rest)
{
    uint64_t v;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || config_number(p, key, s, 1, 3600, &v) != 0)
        return -1;
    p->c->connect_timeout = (uint32_t)v;
    return 0;
}

/* Mosquitto's key, in bytes; Petrel also takes the k, M and G suffixes. */
static int
k_memory_limit(struct config_parse *p, const char *key, char *rest)
{
    p->c->memory_limit_set = true;
    return size_value(p, key, rest, &p->c->memory_limit);
}

/* --- point-to-point --- */

/* P2P topics are <parent>/<keyword>/<client id>: both must be one topic level that can
 * appear in a topic name: not empty, no wildcards [MQTT-4.7.3-1, MQTT-3.3.2-2]. */
static int
topic_level(struct config_parse *p, const char *key, const char *s)
{
    char b[64];

    if (strpbrk(s, "/+#"))
        return config_parse_error(p, "%s: '%s' is not a single topic level (no '/', '+' or '#')",
                                  key, CLIP(s, b));
    return 0;
}

static int
k_p2p_keyword(struct config_parse *p, const char *key, char *rest)
{
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || topic_level(p, key, s) != 0)
        return -1;
    free(p->c->p2p_keyword);
    p->c->p2p_keyword = xstrdup(s);
    return 0;
}

static int
k_p2p_parent_topic(struct config_parse *p, const char *key, char *rest)
{
    struct config *c = p->c;
    char b[64];
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || topic_level(p, key, s) != 0)
        return -1;
    /* Topics starting with '$' are the server's (MQTT 4.7.2); wildcards never match them
     * [MQTT-4.7.2-1]. */
    if (s[0] == '$')
        return config_parse_error(p, "%s: '%s' must not start with '$'", key, CLIP(s, b));
    for (size_t i = 0; i < c->n_p2p_parents; i++) {
        if (strcmp(c->p2p_parents[i], s) == 0)
            return 0;
    }
    c->p2p_parents = xrealloc(c->p2p_parents, (c->n_p2p_parents + 1) * sizeof(char *));
    c->p2p_parents[c->n_p2p_parents++] = xstrdup(s);
    return 0;
}

/* --- not supported --- */

static int
k_connection(struct config_parse *p, const char *key, char *rest)
{
    char *name;

    if (config_one_word(p, key, rest, &name) != 0)
        return -1;
    config_parse_warn(p, "'%s' is not supported yet and is ignored, with the bridge settings "
                         "that follow it",
                      key);
    p->in_bridge = true;
    return 0;
}

/* 0 (no limit) or at least 20 bytes, as Mosquitto; at most the largest MQTT packet. */
static int
k_max_packet_size(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    uint64_t v;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    if (config_parse_u64(s, &v) != 0 || (v != 0 && v < 20) || v > MAX_PACKET)
        return config_parse_error(p, "%s: '%s' is not 0 or a number from 20 to %u", key,
                                  CLIP(s, b), MAX_PACKET);
    p->c->max_packet_size = (uint32_t)v;
    return 0;
}

/* --- the table --- */

#define BOOL(name, field) {name, KEY_BOOL, offsetof(struct config, field), 0, NULL}
#define U16(name, field, max) {name, KEY_U16, offsetof(struct config, field), max, NULL}
#define U32(name, field, max) {name, KEY_U32, offsetof(struct config, field), max, NULL}
#define U64(name, field, max) {name, KEY_U64, offsetof(struct config, field), max, NULL}
#define UNSIGNED(name, field, max) {name, KEY_UNSIGNED, offsetof(struct config, field), max, NULL}
#define FN(name, fn) {name, KEY_FN, 0, 0, fn}
#define IGNORE(name) {name, KEY_IGNORE, 0, 0, NULL}
#define REFUSE(name) {name, KEY_REFUSE, 0, 0, NULL}
#define REFUSE_TRUE(name) {name, KEY_REFUSE_TRUE, 0, 0, NULL}
#define BRIDGE(name) {name, KEY_BRIDGE, 0, 0, NULL}

static const struct key_def keys[] = {
    /* listeners */
    FN("listener", config_key_listener),
    FN("port", config_key_port),
    FN("bind_address", config_key_bind_address),
    FN("protocol", config_key_protocol),
    FN("socket_domain", config_key_socket_domain),
    FN("max_connections", config_key_max_connections),
    FN("include_dir", k_include_dir),

    /* security */
    FN("allow_anonymous", k_allow_anonymous),
    FN("allow_zero_length_clientid", k_allow_zero_length_clientid),
    BOOL("per_listener_settings", per_listener_settings),
    FN("password_file", k_auth_file),
    FN("acl_file", k_auth_file),
    FN("access_key_file", k_auth_file),
    FN("device_credential_file", k_auth_file),
    BOOL("require_gid_clientid", require_gid_clientid),
    FN("allowed_gid_group", k_allowed_gid_group),
    U32("auth_fail_limit", auth_fail_limit, UINT16_MAX),
    U32("auth_fail_max_delay", auth_fail_max_delay, 86400),

    /* limits and protocol */
    U32("max_inflight_messages", max_inflight_messages, UINT16_MAX),
    U64("max_inflight_bytes", max_inflight_bytes, UINT64_MAX),
    U32("max_queued_messages", max_queued_messages, UINT32_MAX),
    U64("max_queued_bytes", max_queued_bytes, UINT64_MAX),
    FN("queue_full_policy", k_queue_full_policy),
    U64("qos0_output_limit", qos0_output_limit, UINT64_MAX),
    U32("write_stall_timeout", write_stall_timeout, 86400),
    FN("max_packet_size", k_max_packet_size),
    U16("max_keepalive", max_keepalive, UINT16_MAX),
    U32("message_size_limit", message_size_limit, MAX_PAYLOAD),
    U16("max_topic_alias", max_topic_alias, UINT16_MAX),
    FN("maximum_qos", k_maximum_qos),
    FN("max_qos", k_maximum_qos),
    BOOL("retain_available", retain_available),
    BOOL("upgrade_outgoing_qos", upgrade_outgoing_qos),
    FN("persistent_client_expiration", k_persistent_client_expiration),
    BOOL("set_tcp_nodelay", set_tcp_nodelay),
    U32("max_subscriptions_per_client", max_subscriptions_per_client, UINT32_MAX),
    UNSIGNED("workers", workers, 1024),
    FN("connect_timeout", k_connect_timeout),
    U32("packet_timeout", packet_timeout, 86400),
    U32("max_connection_rate", max_connection_rate, 1000000),
    FN("memory_limit", k_memory_limit),

    /* HTTP API (src/api) */
    FN("http_listener", config_key_http_listener),
    FN("http_api_key_file", k_auth_file),
    U64("http_max_body", http_max_body, 256u * 1024 * 1024),
    U32("http_rate_limit", http_rate_limit, UINT32_MAX),
    BOOL("client_events", client_events),
    FN("node_name", k_auth_file),

    /* logging and $SYS */
    FN("log_type", k_log_type),
    FN("log_dest", k_log_dest),
    BOOL("log_timestamp", log_timestamp),
    U32("sys_interval", sys_interval, UINT16_MAX),

    /* point-to-point */
    BOOL("p2p_enabled", p2p_enabled),
    FN("p2p_keyword", k_p2p_keyword),
    FN("p2p_parent_topic", k_p2p_parent_topic),

    /* durable storage (src/store) */
    FN("persistence", k_persistence),
    FN("retained_persistence", k_retained_persistence),
    FN("persistence_location", k_persistence_location),
    FN("persistence_sync", k_persistence_sync),
    FN("persistence_max_size", k_persistence_max_size),
    BOOL("persistence_move_aside", persistence_move_aside),
    IGNORE("persistence_file"),
    IGNORE("autosave_interval"),
    IGNORE("autosave_on_changes"),

    /* Ignoring these would leave the broker more open than its file says. */
    REFUSE("psk_file"),
    REFUSE("psk_hint"),
    REFUSE("plugin"),
    REFUSE("auth_plugin"),
    REFUSE("global_plugin"),
    REFUSE("plugin_load"),
    REFUSE("plugin_use"),
    REFUSE("clientid_prefixes"),
    REFUSE("mount_point"),
    REFUSE("bind_interface"),
    REFUSE("websockets_origin"),
    REFUSE_TRUE("use_subject_as_username"),
    REFUSE_TRUE("use_username_as_clientid"),

    /* TLS, per listener (net/tls.c) */
    FN("certfile", config_key_listener_string),
    FN("keyfile", config_key_listener_string),
    FN("cafile", config_key_listener_string),
    FN("capath", config_key_listener_string),
    FN("crlfile", config_key_listener_string),
    FN("tls_version", config_key_listener_string),
    FN("ciphers", config_key_listener_string),
    FN("ciphers_tls1.3", config_key_listener_string),
    FN("require_certificate", config_key_listener_bool),
    FN("use_identity_as_username", config_key_listener_bool),
    FN("websockets_path", config_key_listener_string),
    IGNORE("dhparamfile"),
    IGNORE("tls_engine"),
    IGNORE("tls_engine_kpass_sha1"),
    IGNORE("tls_keyform"),
    IGNORE("disable_client_cert_date_checks"),

    /* other Mosquitto settings */
    IGNORE("accept_protocol_versions"),
    IGNORE("allow_duplicate_messages"),
    IGNORE("auth_plugin_deny_special_chars"),
    IGNORE("auto_id_prefix"),
    IGNORE("check_retain_source"),
    IGNORE("connection_messages"),
    IGNORE("enable_control_api"),
    IGNORE("global_max_clients"),
    IGNORE("global_max_connections"),
    IGNORE("http_dir"),
    IGNORE("log_facility"),
    IGNORE("log_timestamp_format"),
    IGNORE("max_topic_alias_broker"),
    IGNORE("pid_file"),
    IGNORE("queue_qos0_messages"),
    IGNORE("quic_log_level"),
    IGNORE("retry_interval"),
    IGNORE("store_clean_interval"),
    IGNORE("user"),
    IGNORE("websockets_headers_size"),
    IGNORE("websockets_log_level"),

    /* bridges */
    FN("connection", k_connection),
    BRIDGE("address"),
    BRIDGE("addresses"),
    BRIDGE("bridge_alpn"),
    BRIDGE("bridge_attempt_unsubscribe"),
    BRIDGE("bridge_bind_address"),
    BRIDGE("bridge_cafile"),
    BRIDGE("bridge_capath"),
    BRIDGE("bridge_certfile"),
    BRIDGE("bridge_ciphers"),
    BRIDGE("bridge_ciphers_tls1.3"),
    BRIDGE("bridge_identity"),
    BRIDGE("bridge_insecure"),
    BRIDGE("bridge_keyfile"),
    BRIDGE("bridge_max_packet_size"),
    BRIDGE("bridge_max_topic_alias"),
    BRIDGE("bridge_outgoing_retain"),
    BRIDGE("bridge_protocol_version"),
    BRIDGE("bridge_psk"),
    BRIDGE("bridge_receive_maximum"),
    BRIDGE("bridge_reload_type"),
    BRIDGE("bridge_require_ocsp"),
    BRIDGE("bridge_session_expiry_interval"),
    BRIDGE("bridge_tcp_keepalive"),
    BRIDGE("bridge_tcp_user_timeout"),
    BRIDGE("bridge_tls_version"),
    BRIDGE("cleansession"),
    BRIDGE("clientid"),
    BRIDGE("idle_timeout"),
    BRIDGE("keepalive_interval"),
    BRIDGE("local_cleansession"),
    BRIDGE("local_clientid"),
    BRIDGE("local_password"),
    BRIDGE("local_username"),
    BRIDGE("notification_topic"),
    BRIDGE("notifications"),
    BRIDGE("notifications_local_only"),
    BRIDGE("password"),
    BRIDGE("remote_clientid"),
    BRIDGE("remote_password"),
    BRIDGE("remote_username"),
    BRIDGE("restart_timeout"),
    BRIDGE("round_robin"),
    BRIDGE("start_type"),
    BRIDGE("threshold"),
    BRIDGE("topic"),
    BRIDGE("try_private"),
    BRIDGE("username"),
};

static const struct key_def *
find_key(const char *name)
{
    static const struct key_def plugin_option = IGNORE("plugin_opt_*");

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    if (strncmp(name, "plugin_opt_", 11) == 0 || strncmp(name, "auth_opt_", 9) == 0)
        return &plugin_option;
    return NULL;
}

int
config_keys_apply(struct config_parse *p, char *key, char *rest)
{
    const struct key_def *k = find_key(key);
    char b[64];
    bool on;
    char *s;

    if (!k)
        return config_parse_error(p, "unknown key '%s'", CLIP(key, b));
    switch (k->kind) {
    case KEY_FN:
        return k->fn(p, key, rest);
    case KEY_IGNORE:
        if (!*rest)
            return config_missing_value(p, key);
        config_parse_warn(p, "'%s' is not supported yet and is ignored", key);
        return 0;
    case KEY_REFUSE:
        return config_parse_error(p, "'%s' is not supported yet", key);
    case KEY_REFUSE_TRUE:
        if (config_one_word(p, key, rest, &s) != 0 || config_bool(p, key, s, &on) != 0)
            return -1;
        return on ? config_parse_error(p, "'%s' is not supported yet", key) : 0;
    case KEY_BRIDGE:
        if (!p->in_bridge)
            return config_parse_error(p, "'%s' belongs to a bridge: it must follow a "
                                         "'connection' line",
                                      key);
        return 0;
    default:
        return typed(p, k, rest);
    }
}
