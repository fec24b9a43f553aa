/*
 * listeners.c - the listener keys: `listener PORT [ADDRESS]` sections and the default
 * listener of Mosquitto's older form (`port`, `bind_address` before any `listener`).
 *
 * Per-listener keys (bind_address, protocol, socket_domain, max_connections) apply to the
 * current section; before the file's first `listener` line they configure the default
 * listener, which is added at the end of the load, on port 1883 unless `port` says otherwise.
 * `port` always configures the default listener, as in Mosquitto.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "base/xalloc.h"
#include "config/internal.h"

static struct config_listener *
default_listener(struct config_parse *p)
{
    if (!p->has_deflt) {
        p->has_deflt = true;
        p->deflt.file = xstrdup(p->file);
        p->deflt.line = p->line;
    }
    return &p->deflt;
}

/* The listener a per-listener key configures: this file's current `listener` section, or
 * before any, the default listener (Mosquitto's rule). */
static struct config_listener *
current_listener(struct config_parse *p)
{
    return p->in_listener ? &p->c->listeners[p->cur] : default_listener(p);
}

static int
check_address(struct config_parse *p, const char *key, const char *addr)
{
    char b[64];

    /* Mosquitto reads "listener 0 /path" as a unix socket. */
    if (addr[0] == '/')
        return config_parse_error(p, "%s: unix socket '%s' is not supported yet", key,
                                  CLIP(addr, b));
    return 0;
}

static int
add_listener(struct config_parse *p, const char *key, char *rest, enum listener_protocol proto,
             const char *default_addr)
{
    char *addr = NULL;
    uint64_t port;

    if (!*rest)
        return config_missing_value(p, key);
    char *port_s = config_next_word(&rest);
    if (config_number(p, key, port_s, 0, UINT16_MAX, &port) != 0)
        return -1;
    /* Mosquitto takes "listener 1883 # comment"; say why it is an error here. */
    if (rest[0] == '#')
        return config_extra_value(p, key, rest);
    if (*rest && config_one_word(p, key, rest, &addr) != 0)
        return -1;
    if (addr && check_address(p, key, addr) != 0)
        return -1;

    if (!addr && default_addr)
        addr = (char *)default_addr;

    struct config_listener li = {
        .port = (uint16_t)port,
        .bind_address = addr ? xstrdup(addr) : NULL,
        .protocol = proto,
        .max_connections = -1,
        .file = xstrdup(p->file),
        .line = p->line,
        .socket_domain = LISTENER_DOMAIN_ANY,
    };
    p->cur = config_listener_add(p->c, &li);
    p->in_listener = true;
    return 0;
}

int
config_key_listener(struct config_parse *p, const char *key, char *rest)
{
    return add_listener(p, key, rest, LISTENER_MQTT, NULL);
}

/* `http_listener PORT [ADDRESS]`: a listener section for the HTTP API. Unlike MQTT listeners
 * it binds to loopback unless told otherwise: the API can publish as anybody. The TLS keys
 * after it make it HTTPS. */
int
config_key_http_listener(struct config_parse *p, const char *key, char *rest)
{
    return add_listener(p, key, rest, LISTENER_HTTP, "127.0.0.1");
}

/* Mosquitto's deprecated form: `port` always configures the default listener. */
int
config_key_port(struct config_parse *p, const char *key, char *rest)
{
    uint64_t port;
    char *s;

    if (config_one_word(p, key, rest, &s) != 0 || config_number(p, key, s, 0, UINT16_MAX, &port) != 0)
        return -1;
    struct config_listener *li = default_listener(p);
    if (p->deflt_port_set && li->port != port)
        config_parse_warn(p, "%s: given more than once; %" PRIu64 " is used", key, port);
    li->port = (uint16_t)port;
    p->deflt_port_set = true;
    return 0;
}

int
config_key_bind_address(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    char *addr;

    if (config_one_word(p, key, rest, &addr) != 0 || check_address(p, key, addr) != 0)
        return -1;
    struct config_listener *li = current_listener(p);
    if (li->bind_address)
        return config_parse_error(p, "%s: this listener already binds to '%s'", key,
                                  CLIP(li->bind_address, b));
    li->bind_address = xstrdup(addr);
    return 0;
}

int
config_key_protocol(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    if (strcmp(s, "mqtt") == 0)
        current_listener(p)->protocol = LISTENER_MQTT;
    else if (strcmp(s, "websockets") == 0)
        current_listener(p)->protocol = LISTENER_WEBSOCKETS;
    else if (strcmp(s, "http") == 0)
        current_listener(p)->protocol = LISTENER_HTTP;
    else
        return config_parse_error(p, "%s: '%s' is not mqtt, websockets or http", key, CLIP(s, b));
    return 0;
}

int
config_key_socket_domain(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    if (strcmp(s, "ipv4") == 0)
        current_listener(p)->socket_domain = LISTENER_DOMAIN_IPV4;
    else if (strcmp(s, "ipv6") == 0)
        current_listener(p)->socket_domain = LISTENER_DOMAIN_IPV6;
    else
        return config_parse_error(p, "%s: '%s' is not ipv4 or ipv6", key, CLIP(s, b));
    return 0;
}

/* In a listener section, that listener's limit; before any, the broker-wide one. */
int
config_key_max_connections(struct config_parse *p, const char *key, char *rest)
{
    char b[64];
    uint64_t v;
    char *s;
    int n;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    if (strcmp(s, "-1") == 0)
        n = -1;
    else if (config_parse_u64(s, &v) == 0 && v <= INT_MAX)
        n = (int)v;
    else
        return config_parse_error(p, "%s: '%s' is not -1 or a number from 0 to %d", key,
                                  CLIP(s, b), INT_MAX);
    if (p->in_listener)
        p->c->listeners[p->cur].max_connections = n;
    else
        p->c->max_connections = n;
    return 0;
}

static bool
same_address(const struct config_listener *a, const struct config_listener *b)
{
    if (!a->bind_address || !b->bind_address)
        return !a->bind_address && !b->bind_address;
    return strcmp(a->bind_address, b->bind_address) == 0;
}

static bool
domains_overlap(enum listener_domain a, enum listener_domain b)
{
    return a == LISTENER_DOMAIN_ANY || b == LISTENER_DOMAIN_ANY || a == b;
}

int
config_listeners_finish(struct config_parse *p)
{
    struct config *c = p->c;

    if (p->has_deflt) {
        config_listener_add(c, &p->deflt);
        memset(&p->deflt, 0, sizeof(p->deflt));
        p->has_deflt = false;
    }
    /* Two identical listeners are a mistake, and with SO_REUSEPORT (one socket per worker)
     * the kernel would even let both bind and split clients between them. */
    for (size_t i = 1; i < c->n_listeners; i++) {
        const struct config_listener *li = &c->listeners[i];
        for (size_t j = 0; j < i; j++) {
            const struct config_listener *lj = &c->listeners[j];
            if (li->port == 0 || li->port != lj->port || !same_address(li, lj) ||
                !domains_overlap(li->socket_domain, lj->socket_domain))
                continue;
            p->file = li->file;
            p->line = li->line;
            return config_parse_error(p, "listener: port %u is already used by the listener at "
                                         "%s:%d",
                                      li->port, lj->file, lj->line);
        }
    }
    return 0;
}

static const struct {
    const char *key;
    size_t off;
} listener_strings[] = {
    {"certfile", offsetof(struct config_listener, certfile)},
    {"keyfile", offsetof(struct config_listener, keyfile)},
    {"cafile", offsetof(struct config_listener, cafile)},
    {"capath", offsetof(struct config_listener, capath)},
    {"crlfile", offsetof(struct config_listener, crlfile)},
    {"tls_version", offsetof(struct config_listener, tls_version)},
    {"ciphers", offsetof(struct config_listener, ciphers)},
    {"ciphers_tls1.3", offsetof(struct config_listener, ciphers_tls13)},
    {"websockets_path", offsetof(struct config_listener, websockets_path)},
};

int
config_key_listener_string(struct config_parse *p, const char *key, char *rest)
{
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(listener_strings) / sizeof(listener_strings[0]); i++) {
        if (strcmp(key, listener_strings[i].key) == 0) {
            char **field = (char **)((char *)current_listener(p) + listener_strings[i].off);
            free(*field);
            *field = xstrdup(s);
            return 0;
        }
    }
    return config_parse_error(p, "unknown key '%s'", key);
}

int
config_key_listener_bool(struct config_parse *p, const char *key, char *rest)
{
    struct config_listener *li = current_listener(p);
    char *s;

    if (config_one_word(p, key, rest, &s) != 0)
        return -1;
    if (strcmp(key, "require_certificate") == 0)
        return config_bool(p, key, s, &li->require_certificate);
    if (strcmp(key, "use_identity_as_username") == 0)
        return config_bool(p, key, s, &li->use_identity_as_username);
    return config_parse_error(p, "unknown key '%s'", key);
}
