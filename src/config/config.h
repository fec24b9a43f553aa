/*
 * config.h - the broker's configuration: one typed struct, its defaults, and the loader for
 * Mosquitto-compatible configuration files.
 *
 * The file format is Mosquitto's: one "key value..." per line, '#' comments, blank lines
 * ignored, `listener` starting a new listener section that the per-listener keys after it
 * apply to. Unknown keys and bad values are errors naming the file and line.
 */
#ifndef PETREL_CONFIG_CONFIG_H
#define PETREL_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum listener_protocol {
    LISTENER_MQTT = 0,
    LISTENER_WEBSOCKETS,
    LISTENER_HTTP,              /* the application API (src/api), not MQTT */
};

/* Mosquitto's socket_domain: which address family a listener without a numeric bind
 * address (or with a host name) uses. */
enum listener_domain {
    LISTENER_DOMAIN_ANY = 0,    /* both IPv6 and IPv4 */
    LISTENER_DOMAIN_IPV4,
    LISTENER_DOMAIN_IPV6,
};

struct config_listener {
    uint16_t port;              /* 0: an ephemeral port (tests) */
    char *bind_address;         /* NULL: all addresses */
    enum listener_protocol protocol;
    int max_connections;        /* -1: unlimited */
    char *file;                 /* where it was defined, for messages */
    int line;
    /* TLS: the listener speaks TLS when certfile is set (Mosquitto's keys) */
    char *certfile;
    char *keyfile;
    char *cafile;
    char *capath;
    char *crlfile;
    char *tls_version;          /* "tlsv1.2", "tlsv1.3"; NULL: 1.2 and 1.3 */
    char *ciphers;              /* TLS 1.2 cipher list */
    char *ciphers_tls13;        /* TLS 1.3 cipher suites */
    bool require_certificate;
    bool use_identity_as_username;
    /* WebSocket (protocol websockets) */
    char *websockets_path;      /* the HTTP path that upgrades; NULL: "/mqtt" */
    enum listener_domain socket_domain;
};

/* log_type bits */
enum log_type_bits {
    LOG_T_ERROR = 1 << 0,
    LOG_T_WARNING = 1 << 1,
    LOG_T_NOTICE = 1 << 2,
    LOG_T_INFO = 1 << 3,
    LOG_T_DEBUG = 1 << 4,
};

struct config {
    struct config_listener *listeners;
    size_t n_listeners;

    /* security (docs/security.md) */
    bool allow_anonymous;
    bool allow_anonymous_set;         /* given in the file; else the default of security.md */
    bool allow_zero_length_clientid;
    char *password_file;              /* Mosquitto password file; NULL: none */
    char *acl_file;                   /* Mosquitto ACL file; NULL: none */
    char *access_key_file;            /* ApsaraMQ Signature mode: "AccessKeyId SecretKey [Inst]" */
    char *device_credential_file;     /* ApsaraMQ DeviceCredential mode */
    bool require_gid_clientid;        /* client IDs must be GID_<group>@@@<device> */
    char **gid_groups;                /* groups a GID client ID may name; none: any */
    size_t n_gid_groups;
    uint32_t auth_fail_limit;         /* failed logins per address before slowing down; 0: off */
    uint32_t auth_fail_max_delay;     /* seconds, the longest wait imposed */

    /* limits */
    int max_connections;              /* -1: unlimited */
    uint32_t max_inflight_messages;   /* per client, outgoing QoS 1/2 window; 0: 65535 */
    uint64_t max_inflight_bytes;      /* 0: unlimited */
    uint32_t max_queued_messages;     /* per offline or busy session; 0: unlimited */
    uint64_t max_queued_bytes;        /* 0: unlimited */
    bool queue_full_drop_oldest;      /* queue_full_policy drop_oldest; false: refuse */
    uint64_t qos0_output_limit;       /* unsent output bytes beyond which QoS 0 is dropped */
    uint32_t write_stall_timeout;     /* seconds a socket may take no output; 0: forever */
    uint32_t max_packet_size;         /* 0: the protocol's own limit */
    uint16_t max_keepalive;           /* seconds; clients asking for more (or 0) are told this */
    uint32_t message_size_limit;      /* payload bytes; 0: unlimited */
    uint16_t max_topic_alias;         /* inbound topic aliases per MQTT 5 client */
    uint8_t maximum_qos;
    bool retain_available;
    bool per_listener_settings;
    bool upgrade_outgoing_qos;
    int64_t persistent_client_expiration; /* seconds; -1: never */
    bool set_tcp_nodelay;

    /* logging */
    unsigned log_types;               /* enum log_type_bits */
    bool log_to_stderr;
    bool log_to_stdout;
    char *log_file;                   /* NULL: none */
    bool log_timestamp;

    /* $SYS */
    uint32_t sys_interval;            /* seconds; 0: no $SYS updates */

    /* point-to-point */
    bool p2p_enabled;
    char *p2p_keyword;                /* second topic level marking P2P, default "p2p" */
    char **p2p_parents;               /* allowed parent topics; none: any */
    size_t n_p2p_parents;

    /* durable storage (docs/design.md "Durability", docs/storage-format.md) */
    bool persistence;                 /* keep persistent sessions and retained messages */
    char *persistence_location;       /* directory of the store; NULL: "petrel-data" */
    bool persistence_sync_periodic;   /* false: fdatasync before acknowledging (always) */
    uint32_t persistence_sync_ms;     /* periodic: the sync period, ms */
    uint64_t persistence_max_size;    /* bytes the store may reach; 0: what the disk has */
    bool persistence_move_aside;      /* damaged or foreign store: rename it, start empty */

    /* HTTP API (src/api, docs/http-api.md); its listeners are protocol LISTENER_HTTP */
    char *http_api_key_file;          /* "KEY read|write [NAME]" lines; NULL: no API keys */
    uint64_t http_max_body;           /* request body bytes (413 beyond) */
    uint32_t http_rate_limit;         /* requests per second per API key; 0: unlimited */
    bool client_events;               /* publish $SYS/brokers/<node>/clients/<id>/... events */
    char *node_name;                  /* <node> in those topics; NULL: the host name */

    /* engine */
    unsigned workers;                 /* 0: number of cores */
    uint32_t max_subscriptions_per_client; /* 0: unlimited */

    /* hostile clients and overload (docs/design.md "Hostile clients and overload") */
    uint32_t connect_timeout;         /* seconds from accept to a complete CONNECT */
    uint32_t packet_timeout;          /* seconds one packet may take to arrive; 0: no limit */
    uint32_t max_connection_rate;     /* new connections per second per address; 0: no limit */
    uint64_t memory_limit;            /* heap bytes; 0: no limit */
    bool memory_limit_set;            /* given in the file; else main.c sets 80 % of the RAM */
};

/* Fill `c` with the defaults (no listeners). Allocates (p2p_keyword): pair with config_fini. */
void config_defaults(struct config *c);

/* Read `path` into `c` (which holds defaults or earlier settings). On failure returns -1 and
 * writes "FILE:LINE: reason" (or "FILE: reason") into err. Warnings for accepted keys that
 * are not supported yet are written to `warn_fn` when given. On failure `c` may hold part of
 * the file's settings and still needs config_fini. */
int config_load(const char *path, struct config *c, char *err, size_t err_len,
                void (*warn_fn)(const char *msg));

/* config_load on a file already in memory; `name` is used in messages. `data` is borrowed and
 * need not be NUL-terminated. include_dir lines in it are read from disk. For tests and fuzzing. */
int config_load_buffer(const char *name, const char *data, size_t len, struct config *c,
                       char *err, size_t err_len, void (*warn_fn)(const char *msg));

/* Add the default listener used when no file gives one: 127.0.0.1:1883 (or `port`). */
void config_add_default_listener(struct config *c, uint16_t port);

/* Free what one listener owns (config_fini does this for all). */
void config_listener_fini(struct config_listener *li);

void config_fini(struct config *c);

#endif
