/*
 * defaults.c - the configuration's defaults, its listeners list, and freeing it all.
 *
 * Defaults follow Mosquitto 2 except where docs/configuration.md says otherwise
 * (allow_anonymous, set_tcp_nodelay).
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "config/internal.h"

void
config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));

    /* Counts only when the file sets it (allow_anonymous_set); otherwise anonymous clients
     * are let in on loopback listeners with no credentials file (docs/security.md). */
    c->allow_anonymous = true;
    c->allow_zero_length_clientid = true;
    c->auth_fail_limit = 10;
    c->auth_fail_max_delay = 60;

    c->max_connections = -1;
    c->max_inflight_messages = 20;
    c->max_inflight_bytes = 0;
    c->max_queued_messages = 1000;
    c->max_queued_bytes = 0;
    /* Above the 1 MiB one publisher's read can land at once, so a subscriber that keeps up
     * loses no QoS 0 message in a burst. */
    c->qos0_output_limit = 8u * 1024 * 1024;
    c->write_stall_timeout = 60;
    c->max_packet_size = 0;
    c->max_keepalive = 65535;
    c->message_size_limit = 0;
    c->max_topic_alias = 10;
    c->maximum_qos = 2;
    c->retain_available = true;
    c->per_listener_settings = false;
    c->upgrade_outgoing_qos = false;
    c->persistent_client_expiration = -1;
    c->persistence = false;
    c->persistence_location = NULL;
    c->persistence_sync_periodic = false;
    c->persistence_sync_ms = 1000;
    c->persistence_max_size = 0;
    c->persistence_move_aside = false;
    /* Mosquitto's default is false; small MQTT packets are latency-bound, so Petrel sends
     * them at once. */
    c->set_tcp_nodelay = true;

    c->log_types = LOG_T_ERROR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO;
    c->log_to_stderr = true;
    c->log_to_stdout = false;
    c->log_file = NULL;
    c->log_timestamp = true;

    c->sys_interval = 10;

    c->p2p_enabled = true;
    c->p2p_keyword = xstrdup("p2p");
    c->p2p_parents = NULL;
    c->n_p2p_parents = 0;

    c->http_api_key_file = NULL;
    c->http_max_body = 4u * 1024 * 1024; /* a batch of 1 000 messages of a few KiB */
    c->http_rate_limit = 1000;
    c->client_events = false;
    c->node_name = NULL;

    c->workers = 0;
    c->max_subscriptions_per_client = 0;

    c->connect_timeout = 10;
    c->packet_timeout = 60;
    c->max_connection_rate = 0;
    c->memory_limit = 0;
}

size_t
config_listener_add(struct config *c, const struct config_listener *li)
{
    c->listeners = xrealloc(c->listeners, (c->n_listeners + 1) * sizeof(*c->listeners));
    c->listeners[c->n_listeners] = *li;
    return c->n_listeners++;
}

void
config_add_default_listener(struct config *c, uint16_t port)
{
    struct config_listener li = {
        .port = port,
        .bind_address = xstrdup("127.0.0.1"),
        .protocol = LISTENER_MQTT,
        .max_connections = -1,
        .file = xstrdup("(built-in)"),
        .line = 0,
        .socket_domain = LISTENER_DOMAIN_ANY,
    };

    config_listener_add(c, &li);
}

void
config_listener_fini(struct config_listener *li)
{
    free(li->bind_address);
    free(li->file);
    free(li->certfile);
    free(li->keyfile);
    free(li->cafile);
    free(li->capath);
    free(li->crlfile);
    free(li->tls_version);
    free(li->ciphers);
    free(li->ciphers_tls13);
    free(li->websockets_path);
    memset(li, 0, sizeof(*li));
}

void
config_fini(struct config *c)
{
    for (size_t i = 0; i < c->n_listeners; i++)
        config_listener_fini(&c->listeners[i]);
    free(c->listeners);
    free(c->log_file);
    free(c->persistence_location);
    free(c->password_file);
    free(c->acl_file);
    free(c->access_key_file);
    free(c->device_credential_file);
    free(c->http_api_key_file);
    free(c->node_name);
    for (size_t i = 0; i < c->n_gid_groups; i++)
        free(c->gid_groups[i]);
    free(c->gid_groups);
    free(c->p2p_keyword);
    for (size_t i = 0; i < c->n_p2p_parents; i++)
        free(c->p2p_parents[i]);
    free(c->p2p_parents);
    memset(c, 0, sizeof(*c));
}
