/*
 * internal.h - what the configuration loader's files share; not part of config.h's contract.
 *
 * parse.c turns files into "key rest-of-line" pairs and owns messages; keys.c knows every key
 * and applies it, with values.c parsing values and listeners.c the listener sections;
 * defaults.c builds and frees the struct.
 */
#ifndef PETREL_CONFIG_INTERNAL_H
#define PETREL_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"

/* Deepest include_dir nesting; Mosquitto reads include_dir only from the main file. */
#define CONFIG_MAX_DEPTH 1

/* The state of one config_load call. */
struct config_parse {
    struct config *c;
    char *err;
    size_t err_len;
    void (*warn_fn)(const char *msg);

    /* Where we are, for messages. Borrowed; valid while that file is being read. */
    const char *file;
    int line;
    int depth;                  /* 0: the main file */

    /* Per file, as in Mosquitto: a `listener` line opens a section that lasts until the next
     * one or the end of the file; per-listener keys before any listener configure the
     * default listener. */
    bool in_listener;
    size_t cur;                 /* index into c->listeners while in_listener */
    bool in_bridge;             /* after a `connection` line */

    /* The default listener (Mosquitto's `port` / `bind_address` form), added at the end of
     * the load when any of its keys appeared. */
    bool has_deflt;
    bool deflt_port_set;
    struct config_listener deflt;

    /* Per load: the first log_type / log_dest line replaces the defaults, later ones add. */
    bool log_types_set;
    bool log_dests_set;
    unsigned seen;              /* enum config_seen: keys given at least once in this load */
};

enum config_seen {
    SEEN_MAXIMUM_QOS = 1 << 0,
    SEEN_ALLOW_ANONYMOUS = 1 << 1,
    SEEN_ALLOW_ZERO_LENGTH_CLIENTID = 1 << 2,
};

/* Write "FILE:LINE: <message>" into p->err. Always returns -1. */
int config_parse_error(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Send "FILE:LINE: <message>" to p->warn_fn, if any. */
void config_parse_warn(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Read and apply one more file (include_dir). Returns 0 or -1 with p->err set. */
int config_parse_file(struct config_parse *p, const char *path);

/* Apply one line: `key` is its first word, `rest` the remainder without surrounding blanks
 * ("" when there is none). Both are writable and borrowed. Returns 0 or -1 with p->err set. */
int config_keys_apply(struct config_parse *p, char *key, char *rest);

/* values.c: each returns 0, or -1 with p->err naming the key and the reason. */

/* Blanks between words; a line's ends are trimmed of the same. */
#define CONFIG_BLANKS " \t\r\v\f"
/* config_clip of a whole string into a char array. */
#define CLIP(s, b) config_clip((s), strlen(s), (b), sizeof(b))

/* Split the first word off `*rest` (writing a NUL after it); *rest then points past the
 * blanks that follow it, at "" when nothing does. */
char *config_next_word(char **rest);
int config_missing_value(struct config_parse *p, const char *key);
/* "unexpected extra value": `extra` is what follows the last expected word. */
int config_extra_value(struct config_parse *p, const char *key, const char *extra);
/* The value of a key that takes exactly one word. */
int config_one_word(struct config_parse *p, const char *key, char *rest, char **out);
/* Digits only, at least one; -1 when not, or on overflow. Sets no message. */
int config_parse_u64n(const char *s, size_t len, uint64_t *out);
int config_parse_u64(const char *s, uint64_t *out);
/* A number from min to max. */
int config_number(struct config_parse *p, const char *key, const char *s, uint64_t min,
                  uint64_t max, uint64_t *out);
int config_bool(struct config_parse *p, const char *key, const char *s, bool *out);

/* listeners.c: the handlers of listener, port, bind_address, protocol, socket_domain and
 * max_connections, with config_keys_apply's contract. */
int config_key_listener(struct config_parse *p, const char *key, char *rest);
int config_key_http_listener(struct config_parse *p, const char *key, char *rest);
int config_key_port(struct config_parse *p, const char *key, char *rest);
int config_key_bind_address(struct config_parse *p, const char *key, char *rest);
int config_key_protocol(struct config_parse *p, const char *key, char *rest);
int config_key_socket_domain(struct config_parse *p, const char *key, char *rest);
int config_key_max_connections(struct config_parse *p, const char *key, char *rest);
/* A per-listener string (certfile, keyfile, ..., websockets_path) or boolean
 * (require_certificate, use_identity_as_username) of the current listener. */
int config_key_listener_string(struct config_parse *p, const char *key, char *rest);
int config_key_listener_bool(struct config_parse *p, const char *key, char *rest);

/* After the last line: add the default listener if the file configured one, and check that
 * no two listeners claim the same port. Returns 0 or -1 with p->err set. */
int config_listeners_finish(struct config_parse *p);

/* Append a listener to c->listeners (taking bind_address and file) and return its index. */
size_t config_listener_add(struct config *c, const struct config_listener *li);

/* A short, printable rendering of the first `len` bytes of a user-supplied value, for
 * messages: at most 60 bytes, "..." when cut, control bytes as '?'. Writes into `buf`, which
 * holds at least 64 bytes, and returns it. */
const char *config_clip(const char *s, size_t len, char *buf, size_t buf_len);

#endif
