/*
 * test_config.c - the configuration loader: every key, defaults, listener sections,
 * include_dir, message formats (file and line), keys that are refused or ignored, and the
 * shape of lines (comments, blanks, CRLF, very long lines).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define ERR_LEN 512

/* --- helpers --- */

static char warnings[8192];

static void
collect_warning(const char *msg)
{
    size_t len = strlen(warnings);
    snprintf(warnings + len, sizeof(warnings) - len, "%s\n", msg);
}

static int
load(struct config *c, const char *text, char *err)
{
    warnings[0] = '\0';
    return config_load_buffer("petrel.conf", text, strlen(text), c, err, ERR_LEN,
                              collect_warning);
}

/* Load `text` over the defaults; it must succeed. The caller calls config_fini. */
static void
load_ok(struct config *c, const char *text)
{
    char err[ERR_LEN];

    config_defaults(c);
    int rc = load(c, text, err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
}

static void
expect_error(const char *text, const char *msg)
{
    struct config c;
    char err[ERR_LEN];

    config_defaults(&c);
    assert_int_equal(load(&c, text, err), -1);
    assert_string_equal(err, msg);
    config_fini(&c);
}

/* `text` loads, and the warnings are exactly `expected` (one per line). */
static void
expect_warnings(const char *text, const char *expected)
{
    struct config c;

    load_ok(&c, text);
    assert_string_equal(warnings, expected);
    config_fini(&c);
}

static char tmp_root[128];

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int
make_tmp(void **state)
{
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/petrel-test-config-XXXXXX");
    assert_non_null(mkdtemp(tmp_root));
    return 0;
}

static int
remove_tmp(void **state)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static char *
tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp_root, name);
    return buf;
}

/* --- defaults --- */

static void
defaults_are_documented_values(void **state)
{
    struct config c;

    config_defaults(&c);
    assert_int_equal(c.n_listeners, 0);
    assert_null(c.listeners);
    assert_true(c.allow_anonymous);
    assert_true(c.allow_zero_length_clientid);
    assert_int_equal(c.max_connections, -1);
    assert_int_equal(c.max_inflight_messages, 20);
    assert_int_equal(c.max_inflight_bytes, 0);
    assert_int_equal(c.max_queued_messages, 1000);
    assert_int_equal(c.max_queued_bytes, 0);
    assert_int_equal(c.qos0_output_limit, 8 * 1024 * 1024);
    assert_int_equal(c.write_stall_timeout, 60);
    assert_int_equal(c.max_packet_size, 0);
    assert_int_equal(c.max_keepalive, 65535);
    assert_int_equal(c.message_size_limit, 0);
    assert_int_equal(c.max_topic_alias, 10);
    assert_int_equal(c.maximum_qos, 2);
    assert_true(c.retain_available);
    assert_false(c.per_listener_settings);
    assert_false(c.upgrade_outgoing_qos);
    assert_int_equal(c.persistent_client_expiration, -1);
    assert_true(c.set_tcp_nodelay);
    assert_int_equal(c.log_types, LOG_T_ERROR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO);
    assert_true(c.log_to_stderr);
    assert_false(c.log_to_stdout);
    assert_null(c.log_file);
    assert_true(c.log_timestamp);
    assert_int_equal(c.sys_interval, 10);
    assert_true(c.p2p_enabled);
    assert_string_equal(c.p2p_keyword, "p2p");
    assert_int_equal(c.n_p2p_parents, 0);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.max_subscriptions_per_client, 0);
    assert_int_equal(c.connect_timeout, 10);
    assert_int_equal(c.packet_timeout, 60);
    assert_int_equal(c.max_connection_rate, 0);
    assert_int_equal(c.memory_limit, 0);
    config_fini(&c);
}

static void
empty_file_keeps_defaults_and_no_listener(void **state)
{
    struct config c;

    load_ok(&c, "");
    assert_int_equal(c.n_listeners, 0);
    assert_int_equal(c.max_inflight_messages, 20);
    assert_string_equal(warnings, "");
    config_fini(&c);

    load_ok(&c, "# only a comment\n\n   \n");
    assert_int_equal(c.n_listeners, 0);
    config_fini(&c);
}

static void
load_keeps_earlier_settings(void **state)
{
    struct config c;
    char err[ERR_LEN];

    load_ok(&c, "max_queued_messages 5\nlistener 1883\n");
    assert_int_equal(load(&c, "max_keepalive 60\nlistener 1884\n", err), 0);
    assert_int_equal(c.max_queued_messages, 5);
    assert_int_equal(c.max_keepalive, 60);
    assert_int_equal(c.n_listeners, 2);
    config_fini(&c);
}

static void
default_listener_is_loopback(void **state)
{
    struct config c;

    load_ok(&c, "max_keepalive 60\n");
    assert_int_equal(c.n_listeners, 0);
    config_add_default_listener(&c, 1883);
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_int_equal(c.listeners[0].protocol, LISTENER_MQTT);
    assert_int_equal(c.listeners[0].max_connections, -1);
    assert_non_null(c.listeners[0].file);
    config_fini(&c);
}

/* --- typed keys --- */

struct bool_key {
    const char *key;
    size_t off;
};

static const struct bool_key bool_keys[] = {
    {"allow_anonymous", offsetof(struct config, allow_anonymous)},
    {"allow_zero_length_clientid", offsetof(struct config, allow_zero_length_clientid)},
    {"retain_available", offsetof(struct config, retain_available)},
    {"per_listener_settings", offsetof(struct config, per_listener_settings)},
    {"upgrade_outgoing_qos", offsetof(struct config, upgrade_outgoing_qos)},
    {"set_tcp_nodelay", offsetof(struct config, set_tcp_nodelay)},
    {"log_timestamp", offsetof(struct config, log_timestamp)},
    {"p2p_enabled", offsetof(struct config, p2p_enabled)},
};

static void
bool_keys_take_true_and_false(void **state)
{
    for (size_t i = 0; i < sizeof(bool_keys) / sizeof(bool_keys[0]); i++) {
        const struct bool_key *k = &bool_keys[i];
        static const struct {
            const char *word;
            bool value;
        } words[] = {{"true", true}, {"false", false}, {"1", true}, {"0", false}};
        char text[128], msg[256];
        struct config c;

        for (size_t j = 0; j < 4; j++) {
            snprintf(text, sizeof(text), "%s %s\n", k->key, words[j].word);
            load_ok(&c, text);
            assert_int_equal(*(bool *)((char *)&c + k->off), words[j].value);
            config_fini(&c);
        }
        snprintf(text, sizeof(text), "\n%s yes\n", k->key);
        snprintf(msg, sizeof(msg), "petrel.conf:2: %s: 'yes' is not true or false", k->key);
        expect_error(text, msg);
        snprintf(text, sizeof(text), "%s True\n", k->key);
        snprintf(msg, sizeof(msg), "petrel.conf:1: %s: 'True' is not true or false", k->key);
        expect_error(text, msg);
        snprintf(text, sizeof(text), "%s\n", k->key);
        snprintf(msg, sizeof(msg), "petrel.conf:1: %s: missing value", k->key);
        expect_error(text, msg);
        snprintf(text, sizeof(text), "%s true false\n", k->key);
        snprintf(msg, sizeof(msg), "petrel.conf:1: %s: unexpected extra value 'false'", k->key);
        expect_error(text, msg);
    }
}

struct num_key {
    const char *key;
    uint64_t max;
    size_t off;
    size_t size;
};

#define NUM(key, max, field)                                                                       \
    {key, max, offsetof(struct config, field), sizeof(((struct config *)0)->field)}

static const struct num_key num_keys[] = {
    NUM("max_inflight_messages", 65535, max_inflight_messages),
    NUM("max_inflight_bytes", UINT64_MAX, max_inflight_bytes),
    NUM("max_queued_messages", UINT32_MAX, max_queued_messages),
    NUM("max_queued_bytes", UINT64_MAX, max_queued_bytes),
    NUM("qos0_output_limit", UINT64_MAX, qos0_output_limit),
    NUM("write_stall_timeout", 86400, write_stall_timeout),
    NUM("max_keepalive", 65535, max_keepalive),
    NUM("message_size_limit", 268435455, message_size_limit),
    NUM("max_topic_alias", 65535, max_topic_alias),
    NUM("sys_interval", 65535, sys_interval),
    NUM("workers", 1024, workers),
    NUM("max_subscriptions_per_client", UINT32_MAX, max_subscriptions_per_client),
    NUM("packet_timeout", 86400, packet_timeout),
    NUM("max_connection_rate", 1000000, max_connection_rate),
};

static uint64_t
field_value(const struct config *c, const struct num_key *k)
{
    const char *p = (const char *)c + k->off;

    switch (k->size) {
    case 2:
        return *(const uint16_t *)p;
    case 4:
        return *(const uint32_t *)p;
    default:
        return *(const uint64_t *)p;
    }
}

static void
number_keys_are_strict_and_range_checked(void **state)
{
    for (size_t i = 0; i < sizeof(num_keys) / sizeof(num_keys[0]); i++) {
        const struct num_key *k = &num_keys[i];
        char text[256], msg[512], bad[64];
        struct config c;

        snprintf(text, sizeof(text), "%s 0\n", k->key);
        load_ok(&c, text);
        assert_int_equal(field_value(&c, k), 0);
        config_fini(&c);

        snprintf(text, sizeof(text), "%s 7\n", k->key);
        load_ok(&c, text);
        assert_int_equal(field_value(&c, k), 7);
        config_fini(&c);

        snprintf(text, sizeof(text), "%s %llu\n", k->key, (unsigned long long)k->max);
        load_ok(&c, text);
        assert_true(field_value(&c, k) == k->max);
        config_fini(&c);

        const char *bads[] = {"-1", "10x", "x", "1.5", "+3", "0x10", "99999999999999999999999"};
        for (size_t j = 0; j < sizeof(bads) / sizeof(bads[0]); j++) {
            snprintf(text, sizeof(text), "# c\n%s %s\n", k->key, bads[j]);
            snprintf(msg, sizeof(msg), "petrel.conf:2: %s: '%s' is not a number from 0 to %llu",
                     k->key, bads[j], (unsigned long long)k->max);
            expect_error(text, msg);
        }
        if (k->max < UINT64_MAX) {
            snprintf(bad, sizeof(bad), "%llu", (unsigned long long)k->max + 1);
            snprintf(text, sizeof(text), "%s %s\n", k->key, bad);
            snprintf(msg, sizeof(msg), "petrel.conf:1: %s: '%s' is not a number from 0 to %llu",
                     k->key, bad, (unsigned long long)k->max);
            expect_error(text, msg);
        }
        snprintf(text, sizeof(text), "%s\n", k->key);
        snprintf(msg, sizeof(msg), "petrel.conf:1: %s: missing value", k->key);
        expect_error(text, msg);
        snprintf(text, sizeof(text), "%s 1 2\n", k->key);
        snprintf(msg, sizeof(msg), "petrel.conf:1: %s: unexpected extra value '2'", k->key);
        expect_error(text, msg);
    }
}

static void
max_keepalive_message_matches_documentation(void **state)
{
    expect_error("listener 1883\n\n\n# limits\n\n\nmax_keepalive 70000\n",
                 "petrel.conf:7: max_keepalive: '70000' is not a number from 0 to 65535");
}

static void
max_connections_global_and_per_listener(void **state)
{
    struct config c;

    load_ok(&c, "max_connections 100\nlistener 1883\nmax_connections 5\nlistener 1884\n");
    assert_int_equal(c.max_connections, 100);
    assert_int_equal(c.n_listeners, 2);
    assert_int_equal(c.listeners[0].max_connections, 5);
    assert_int_equal(c.listeners[1].max_connections, -1);
    config_fini(&c);

    load_ok(&c, "max_connections 10\nmax_connections -1\n");
    assert_int_equal(c.max_connections, -1);
    assert_int_equal(c.n_listeners, 0);
    config_fini(&c);

    load_ok(&c, "max_connections 2147483647\n");
    assert_int_equal(c.max_connections, 2147483647);
    config_fini(&c);

    expect_error("max_connections -2\n",
                 "petrel.conf:1: max_connections: '-2' is not -1 or a number from 0 to "
                 "2147483647");
    expect_error("max_connections 2147483648\n",
                 "petrel.conf:1: max_connections: '2147483648' is not -1 or a number from 0 to "
                 "2147483647");
    expect_error("max_connections 5k\n",
                 "petrel.conf:1: max_connections: '5k' is not -1 or a number from 0 to "
                 "2147483647");
}

static void
max_packet_size_is_zero_or_at_least_twenty(void **state)
{
    struct config c;

    load_ok(&c, "max_packet_size 0\n");
    assert_int_equal(c.max_packet_size, 0);
    config_fini(&c);
    load_ok(&c, "max_packet_size 20\n");
    assert_int_equal(c.max_packet_size, 20);
    config_fini(&c);
    load_ok(&c, "max_packet_size 268435460\n");
    assert_int_equal(c.max_packet_size, 268435460);
    config_fini(&c);
    expect_error("max_packet_size 19\n",
                 "petrel.conf:1: max_packet_size: '19' is not 0 or a number from 20 to "
                 "268435460");
    expect_error("max_packet_size 268435461\n",
                 "petrel.conf:1: max_packet_size: '268435461' is not 0 or a number from 20 to "
                 "268435460");
}

static void
maximum_qos_and_its_mosquitto_alias(void **state)
{
    struct config c;

    load_ok(&c, "maximum_qos 1\n");
    assert_int_equal(c.maximum_qos, 1);
    config_fini(&c);
    load_ok(&c, "max_qos 0\n");
    assert_int_equal(c.maximum_qos, 0);
    config_fini(&c);
    expect_error("maximum_qos 3\n",
                 "petrel.conf:1: maximum_qos: '3' is not a number from 0 to 2");

    /* Per listener in Mosquitto; one value here, and the lowest wins. */
    load_ok(&c, "listener 1883\nmax_qos 1\nlistener 1884\nmax_qos 2\n");
    assert_int_equal(c.maximum_qos, 1);
    assert_string_equal(warnings, "petrel.conf:4: max_qos: Petrel has one value for all "
                                  "listeners; using the lowest, 1\n");
    config_fini(&c);
}

static void
persistent_client_expiration_units(void **state)
{
    static const struct {
        const char *text;
        int64_t seconds;
    } ok[] = {
        {"1h", 3600},          {"2d", 2 * 86400},     {"1w", 7 * 86400},
        {"6m", 6 * 30 * 86400}, {"1y", 365 * 86400},  {"never", -1},
        {"0010h", 36000},
    };
    char text[128];
    struct config c;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(text, sizeof(text), "persistent_client_expiration 3h\n"
                                     "persistent_client_expiration %s\n",
                 ok[i].text);
        load_ok(&c, text);
        assert_int_equal(c.persistent_client_expiration, ok[i].seconds);
        config_fini(&c);
    }
    const char *bad[] = {"2", "0d", "d", "2x", "-1d", "1.5d", "2D", "99999999999999999999y",
                         "1000000000000y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char msg[256];
        snprintf(text, sizeof(text), "persistent_client_expiration %s\n", bad[i]);
        snprintf(msg, sizeof(msg),
                 "petrel.conf:1: persistent_client_expiration: '%s' is not a duration such as "
                 "12h, 2d, 1w, 6m, 1y or never",
                 bad[i]);
        expect_error(text, msg);
    }
}

/* --- logging --- */

static void
log_type_first_line_replaces_defaults(void **state)
{
    struct config c;

    load_ok(&c, "log_type error\nlog_type debug\n");
    assert_int_equal(c.log_types, LOG_T_ERROR | LOG_T_DEBUG);
    config_fini(&c);

    load_ok(&c, "log_type all\n");
    assert_int_equal(c.log_types,
                     LOG_T_ERROR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO | LOG_T_DEBUG);
    config_fini(&c);

    load_ok(&c, "log_type warning\nlog_type none\n");
    assert_int_equal(c.log_types, 0);
    config_fini(&c);

    load_ok(&c, "log_type notice\nlog_type information\n");
    assert_int_equal(c.log_types, LOG_T_NOTICE | LOG_T_INFO);
    config_fini(&c);

    expect_warnings("log_type error\nlog_type subscribe\n",
                    "petrel.conf:2: log_type: 'subscribe' is not supported yet and is ignored\n");
    expect_error("log_type verbose\n",
                 "petrel.conf:1: log_type: 'verbose' is not one of error, warning, notice, "
                 "information, debug, all, none");
    expect_error("log_type error warning\n",
                 "petrel.conf:1: log_type: unexpected extra value 'warning'");
}

static void
log_dest_destinations(void **state)
{
    struct config c;

    load_ok(&c, "log_dest stdout\n");
    assert_false(c.log_to_stderr);
    assert_true(c.log_to_stdout);
    assert_null(c.log_file);
    config_fini(&c);

    load_ok(&c, "log_dest stderr\nlog_dest file /var/log/my petrel.log\n");
    assert_true(c.log_to_stderr);
    assert_false(c.log_to_stdout);
    assert_string_equal(c.log_file, "/var/log/my petrel.log");
    config_fini(&c);

    load_ok(&c, "log_dest file /tmp/a.log\nlog_dest none\n");
    assert_false(c.log_to_stderr);
    assert_null(c.log_file);
    config_fini(&c);

    expect_warnings("log_dest syslog\nlog_dest topic\n",
                    "petrel.conf:1: log_dest: 'syslog' is not supported yet and is ignored\n"
                    "petrel.conf:2: log_dest: 'topic' is not supported yet and is ignored\n");
    expect_error("log_dest file\n", "petrel.conf:1: log_dest: file: missing path");
    expect_error("log_dest file /a\nlog_dest file /b\n",
                 "petrel.conf:2: log_dest: file: a log file is already set ('/a')");
    expect_error("log_dest stderr stdout\n",
                 "petrel.conf:1: log_dest: unexpected extra value 'stdout'");
    expect_error("log_dest console\n",
                 "petrel.conf:1: log_dest: 'console' is not one of stderr, stdout, file, "
                 "syslog, topic, none");
    expect_error("log_dest\n", "petrel.conf:1: log_dest: missing value");
}

/* --- point-to-point --- */

static void
p2p_keyword_is_one_topic_level(void **state)
{
    struct config c;

    load_ok(&c, "p2p_keyword direct\n");
    assert_string_equal(c.p2p_keyword, "direct");
    config_fini(&c);
    load_ok(&c, "p2p_keyword a\np2p_keyword b\n");
    assert_string_equal(c.p2p_keyword, "b");
    config_fini(&c);

    const char *bad[] = {"a/b", "+", "#", "p2p/", "x+y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64], msg[256];
        snprintf(text, sizeof(text), "p2p_keyword %s\n", bad[i]);
        snprintf(msg, sizeof(msg),
                 "petrel.conf:1: p2p_keyword: '%s' is not a single topic level (no '/', '+' or "
                 "'#')",
                 bad[i]);
        expect_error(text, msg);
    }
    expect_error("p2p_keyword\n", "petrel.conf:1: p2p_keyword: missing value");
}

static void
p2p_parent_topic_repeats(void **state)
{
    struct config c;

    load_ok(&c, "p2p_parent_topic devices\np2p_parent_topic apps\np2p_parent_topic devices\n");
    assert_int_equal(c.n_p2p_parents, 2);
    assert_string_equal(c.p2p_parents[0], "devices");
    assert_string_equal(c.p2p_parents[1], "apps");
    config_fini(&c);

    /* '$' topics are the server's; wildcards never match them [MQTT-4.7.2-1]. */
    expect_error("p2p_parent_topic $SYS\n",
                 "petrel.conf:1: p2p_parent_topic: '$SYS' must not start with '$'");
    expect_error("p2p_parent_topic a/b\n",
                 "petrel.conf:1: p2p_parent_topic: 'a/b' is not a single topic level (no '/', "
                 "'+' or '#')");
    expect_error("p2p_parent_topic #\n",
                 "petrel.conf:1: p2p_parent_topic: '#' is not a single topic level (no '/', '+' "
                 "or '#')");
    expect_error("p2p_parent_topic\n", "petrel.conf:1: p2p_parent_topic: missing value");
    expect_error("p2p_parent_topic a b\n",
                 "petrel.conf:1: p2p_parent_topic: unexpected extra value 'b'");
}

/* --- listeners --- */

/* The HTTP API's listener and keys (docs/http-api.md). */
static void
http_api_keys(void **state)
{
    struct config c;

    load_ok(&c, "listener 1883\n"
                "http_listener 8080\n"
                "certfile /etc/petrel/api.crt\n"
                "http_listener 8081 0.0.0.0\n"
                "listener 9000\n"
                "protocol http\n"
                "http_api_key_file /etc/petrel/keys\n"
                "http_max_body 1024\n"
                "http_rate_limit 0\n"
                "client_events true\n"
                "node_name edge-1\n");
    assert_int_equal(c.n_listeners, 4);
    assert_int_equal(c.listeners[1].protocol, LISTENER_HTTP);
    assert_string_equal(c.listeners[1].bind_address, "127.0.0.1"); /* loopback by default */
    assert_string_equal(c.listeners[1].certfile, "/etc/petrel/api.crt");
    assert_string_equal(c.listeners[2].bind_address, "0.0.0.0");
    assert_int_equal(c.listeners[3].protocol, LISTENER_HTTP);
    assert_string_equal(c.http_api_key_file, "/etc/petrel/keys");
    assert_int_equal(c.http_max_body, 1024);
    assert_int_equal(c.http_rate_limit, 0);
    assert_true(c.client_events);
    assert_string_equal(c.node_name, "edge-1");
    config_fini(&c);

    load_ok(&c, "");
    assert_int_equal(c.http_max_body, 4u * 1024 * 1024);
    assert_int_equal(c.http_rate_limit, 1000);
    assert_false(c.client_events);
    assert_null(c.http_api_key_file);
    config_fini(&c);
    expect_error("http_listener\n", "petrel.conf:1: http_listener: missing value");
    expect_error("http_max_body 1G\n",
                 "petrel.conf:1: http_max_body: '1G' is not a number from 0 to 268435456");
}

static void
listener_sections(void **state)
{
    struct config c;

    load_ok(&c, "listener 1883 127.0.0.1\n"
                "max_connections 10\n"
                "\n"
                "listener 8080\n"
                "protocol websockets\n"
                "bind_address ::1\n"
                "socket_domain ipv6\n"
                "listener 0\n"
                "protocol mqtt\n"
                "socket_domain ipv4\n");
    assert_int_equal(c.n_listeners, 3);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_int_equal(c.listeners[0].protocol, LISTENER_MQTT);
    assert_int_equal(c.listeners[0].max_connections, 10);
    assert_int_equal(c.listeners[0].socket_domain, LISTENER_DOMAIN_ANY);
    assert_string_equal(c.listeners[0].file, "petrel.conf");
    assert_int_equal(c.listeners[0].line, 1);
    assert_int_equal(c.listeners[1].port, 8080);
    assert_string_equal(c.listeners[1].bind_address, "::1");
    assert_int_equal(c.listeners[1].protocol, LISTENER_WEBSOCKETS);
    assert_int_equal(c.listeners[1].max_connections, -1);
    assert_int_equal(c.listeners[1].socket_domain, LISTENER_DOMAIN_IPV6);
    assert_int_equal(c.listeners[1].line, 4);
    assert_int_equal(c.listeners[2].port, 0);
    assert_null(c.listeners[2].bind_address);
    assert_int_equal(c.listeners[2].socket_domain, LISTENER_DOMAIN_IPV4);
    assert_int_equal(c.max_connections, -1);
    assert_string_equal(warnings, "");
    config_fini(&c);
}

static void
port_and_bind_address_make_the_default_listener(void **state)
{
    struct config c;

    load_ok(&c, "port 1884\n");
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 1884);
    assert_null(c.listeners[0].bind_address);
    assert_int_equal(c.listeners[0].line, 1);
    config_fini(&c);

    /* bind_address alone: Mosquitto's default port. */
    load_ok(&c, "# x\nbind_address 10.0.0.1\n");
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "10.0.0.1");
    assert_int_equal(c.listeners[0].line, 2);
    config_fini(&c);

    /* Per-listener keys before any listener configure the default listener; `port` does
     * wherever it is; the default listener comes after the explicit ones. */
    load_ok(&c, "protocol websockets\n"
                "socket_domain ipv4\n"
                "listener 9000\n"
                "port 9001\n");
    assert_int_equal(c.n_listeners, 2);
    assert_int_equal(c.listeners[0].port, 9000);
    assert_int_equal(c.listeners[0].protocol, LISTENER_MQTT);
    assert_int_equal(c.listeners[1].port, 9001);
    assert_int_equal(c.listeners[1].protocol, LISTENER_WEBSOCKETS);
    assert_int_equal(c.listeners[1].socket_domain, LISTENER_DOMAIN_IPV4);
    assert_int_equal(c.listeners[1].line, 1);
    config_fini(&c);

    load_ok(&c, "port 1884\nport 1885\n");
    assert_int_equal(c.listeners[0].port, 1885);
    assert_string_equal(warnings, "petrel.conf:2: port: given more than once; 1885 is used\n");
    config_fini(&c);
}

static void
listener_errors(void **state)
{
    expect_error("listener\n", "petrel.conf:1: listener: missing value");
    expect_error("listener 65536\n",
                 "petrel.conf:1: listener: '65536' is not a number from 0 to 65535");
    expect_error("listener -1\n", "petrel.conf:1: listener: '-1' is not a number from 0 to 65535");
    expect_error("listener 1883 127.0.0.1 extra\n",
                 "petrel.conf:1: listener: unexpected extra value 'extra'");
    expect_error("listener 1883 # mqtt\n",
                 "petrel.conf:1: listener: unexpected extra value '#' (comments must be on a "
                 "line of their own)");
    expect_error("listener 0 /run/petrel.sock\n",
                 "petrel.conf:1: listener: unix socket '/run/petrel.sock' is not supported yet");
    expect_error("listener 1883 127.0.0.1\nbind_address 10.0.0.1\n",
                 "petrel.conf:2: bind_address: this listener already binds to '127.0.0.1'");
    expect_error("listener 1883\nprotocol mqtts\n",
                 "petrel.conf:2: protocol: 'mqtts' is not mqtt, websockets or http");
    expect_error("listener 1883\nsocket_domain ipv5\n",
                 "petrel.conf:2: socket_domain: 'ipv5' is not ipv4 or ipv6");
    expect_error("port 70000\n", "petrel.conf:1: port: '70000' is not a number from 0 to 65535");
    expect_error("listener 1883\nlistener 1883\n",
                 "petrel.conf:2: listener: port 1883 is already used by the listener at "
                 "petrel.conf:1");
    expect_error("listener 1883 ::1\n\nlistener 1883 ::1\n",
                 "petrel.conf:3: listener: port 1883 is already used by the listener at "
                 "petrel.conf:1");
    expect_error("port 1883\nlistener 1883\n",
                 "petrel.conf:1: listener: port 1883 is already used by the listener at "
                 "petrel.conf:2");
}

static void
listeners_that_do_not_clash(void **state)
{
    struct config c;

    load_ok(&c, "listener 1883 127.0.0.1\nlistener 1883 ::1\n"
                "listener 1884\nsocket_domain ipv4\nlistener 1884\nsocket_domain ipv6\n"
                "listener 0\nlistener 0\n");
    assert_int_equal(c.n_listeners, 6);
    config_fini(&c);
}

/* --- include_dir --- */

static void
include_dir_reads_conf_files_in_sorted_order(void **state)
{
    char dir[256], path[512], main_path[512], err[ERR_LEN];
    struct config c;

    tmp_path(dir, sizeof(dir), "conf.d");
    assert_int_equal(mkdir(dir, 0700), 0);
    /* Byte order: capitals first, as Mosquitto. */
    snprintf(path, sizeof(path), "%s/b.conf", dir);
    write_file(path, "max_keepalive 20\np2p_parent_topic b\n");
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    write_file(path, "max_keepalive 10\np2p_parent_topic a\n");
    snprintf(path, sizeof(path), "%s/Z.conf", dir);
    write_file(path, "max_keepalive 5\np2p_parent_topic Z\n");
    snprintf(path, sizeof(path), "%s/skip.txt", dir);
    write_file(path, "this is not a config\n");
    snprintf(path, sizeof(path), "%s/.conf", dir);
    write_file(path, "nor is this\n");

    tmp_path(main_path, sizeof(main_path), "main.conf");
    char text[1024];
    snprintf(text, sizeof(text), "listener 1883\ninclude_dir %s\nmax_queued_messages 3\n", dir);
    write_file(main_path, text);

    config_defaults(&c);
    warnings[0] = '\0';
    assert_int_equal(config_load(main_path, &c, err, sizeof(err), collect_warning), 0);
    assert_int_equal(c.max_keepalive, 20);
    assert_int_equal(c.max_queued_messages, 3);
    assert_int_equal(c.n_p2p_parents, 3);
    assert_string_equal(c.p2p_parents[0], "Z");
    assert_string_equal(c.p2p_parents[1], "a");
    assert_string_equal(c.p2p_parents[2], "b");
    assert_int_equal(c.n_listeners, 1);
    config_fini(&c);

    /* A trailing slash, and an error inside an included file names that file and line. */
    snprintf(path, sizeof(path), "%s/c.conf", dir);
    write_file(path, "# ok\n\nmax_keepalive nope\n");
    snprintf(text, sizeof(text), "include_dir %s/\nmax_keepalive 1\n", dir);
    config_defaults(&c);
    assert_int_equal(load(&c, text, err), -1);
    char msg[1024];
    snprintf(msg, sizeof(msg),
             "%s/c.conf:3: max_keepalive: 'nope' is not a number from 0 to 65535", dir);
    assert_string_equal(err, msg);
    config_fini(&c);
}

static void
include_dir_sections_end_with_their_file(void **state)
{
    char dir[256], path[512], text[1024];
    struct config c;

    tmp_path(dir, sizeof(dir), "sections");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    write_file(path, "listener 1884\nmax_connections 7\n");
    snprintf(path, sizeof(path), "%s/b.conf", dir);
    /* Before this file's first listener: the broker-wide limit, not a.conf's listener. */
    write_file(path, "max_connections 9\n");

    snprintf(text, sizeof(text), "listener 1883\ninclude_dir %s\nmax_connections 3\n", dir);
    load_ok(&c, text);
    assert_int_equal(c.n_listeners, 2);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_int_equal(c.listeners[0].max_connections, 3);
    assert_int_equal(c.listeners[1].port, 1884);
    assert_int_equal(c.listeners[1].max_connections, 7);
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    assert_string_equal(c.listeners[1].file, path);
    assert_int_equal(c.listeners[1].line, 1);
    assert_int_equal(c.max_connections, 9);
    config_fini(&c);
}

static void
include_dir_is_read_from_the_main_file_only(void **state)
{
    char dir[256], path[512], text[1024], expected[1024];
    struct config c;

    tmp_path(dir, sizeof(dir), "nested");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    snprintf(text, sizeof(text), "include_dir %s\nmax_keepalive 30\n", dir);
    write_file(path, text);

    snprintf(text, sizeof(text), "include_dir %s\n", dir);
    load_ok(&c, text);
    assert_int_equal(c.max_keepalive, 30);
    snprintf(expected, sizeof(expected),
             "%s:1: include_dir is only read from the main configuration file; ignored\n", path);
    assert_string_equal(warnings, expected);
    config_fini(&c);
}

static void
include_dir_errors(void **state)
{
    char dir[256], text[1024], msg[1024];

    tmp_path(dir, sizeof(dir), "missing");
    snprintf(text, sizeof(text), "\ninclude_dir %s\n", dir);
    snprintf(msg, sizeof(msg),
             "petrel.conf:2: include_dir: cannot open '%s': No such file or directory", dir);
    expect_error(text, msg);
    expect_error("include_dir\n", "petrel.conf:1: include_dir: missing value");

    /* An empty directory is fine. */
    struct config c;
    tmp_path(dir, sizeof(dir), "empty");
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(text, sizeof(text), "include_dir %s\n", dir);
    load_ok(&c, text);
    config_fini(&c);
}

/* --- files --- */

static void
unreadable_files_name_the_file(void **state)
{
    char path[256], err[ERR_LEN], msg[1024];
    struct config c;

    config_defaults(&c);
    tmp_path(path, sizeof(path), "nope.conf");
    assert_int_equal(config_load(path, &c, err, sizeof(err), NULL), -1);
    snprintf(msg, sizeof(msg), "%s: cannot open: No such file or directory", path);
    assert_string_equal(err, msg);

    assert_int_equal(config_load(tmp_root, &c, err, sizeof(err), NULL), -1);
    snprintf(msg, sizeof(msg), "%s: cannot read: Is a directory", tmp_root);
    assert_string_equal(err, msg);

    /* A NULL or tiny error buffer is tolerated. */
    assert_int_equal(config_load(path, &c, NULL, 0, NULL), -1);
    char tiny[8];
    assert_int_equal(config_load(path, &c, tiny, sizeof(tiny), NULL), -1);
    assert_int_equal(strlen(tiny), 7);
    config_fini(&c);
}

static void
file_errors_give_the_right_line(void **state)
{
    char path[256], err[ERR_LEN], msg[1024];
    struct config c;

    tmp_path(path, sizeof(path), "lines.conf");
    write_file(path, "# Petrel\r\n\r\nlistener 1883\r\n   # indented comment\r\n"
                     "\t\r\nmax_inflight_messages 20\r\nmax_inflight_messages 20x\r\n");
    config_defaults(&c);
    assert_int_equal(config_load(path, &c, err, sizeof(err), NULL), -1);
    snprintf(msg, sizeof(msg),
             "%s:7: max_inflight_messages: '20x' is not a number from 0 to 65535", path);
    assert_string_equal(err, msg);
    config_fini(&c);
}

/* --- refused, ignored and unknown keys --- */

static void
keys_that_would_weaken_security_stop_the_load(void **state)
{
    const char *refused[] = {
        "psk_file",
        "psk_hint",      "plugin",        "auth_plugin",    "global_plugin",
        "plugin_load",   "plugin_use",    "mount_point",    "bind_interface",
        "clientid_prefixes", "websockets_origin",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char text[128], msg[256];
        snprintf(text, sizeof(text), "listener 1883\n%s /etc/mosquitto/x\n", refused[i]);
        snprintf(msg, sizeof(msg), "petrel.conf:2: '%s' is not supported yet", refused[i]);
        expect_error(text, msg);
    }

    /* Booleans whose false is what Petrel does anyway. */
    const char *when_true[] = {"use_subject_as_username", "use_username_as_clientid"};
    for (size_t i = 0; i < sizeof(when_true) / sizeof(when_true[0]); i++) {
        char text[128], msg[256];
        snprintf(text, sizeof(text), "%s false\n", when_true[i]);
        expect_warnings(text, "");
        snprintf(text, sizeof(text), "%s true\n", when_true[i]);
        snprintf(msg, sizeof(msg), "petrel.conf:1: '%s' is not supported yet", when_true[i]);
        expect_error(text, msg);
        snprintf(text, sizeof(text), "%s maybe\n", when_true[i]);
        snprintf(msg, sizeof(msg), "petrel.conf:1: %s: 'maybe' is not true or false",
                 when_true[i]);
        expect_error(text, msg);
    }
}

static void
tls_and_websocket_keys_belong_to_their_listener(void **state)
{
    struct config c;
    char err[256];
    const char *text = "listener 8883\n"
                       "certfile /c/server.crt\n"
                       "keyfile /c/server.key\n"
                       "cafile /c/ca.crt\n"
                       "tls_version tlsv1.3\n"
                       "ciphers_tls1.3 TLS_AES_128_GCM_SHA256\n"
                       "require_certificate true\n"
                       "use_identity_as_username true\n"
                       "listener 8080\n"
                       "protocol websockets\n"
                       "websockets_path /ws\n";

    config_defaults(&c);
    assert_int_equal(config_load_buffer("petrel.conf", text, strlen(text), &c, err, sizeof(err),
                                        NULL),
                     0);
    assert_int_equal(c.n_listeners, 2);
    assert_string_equal(c.listeners[0].certfile, "/c/server.crt");
    assert_string_equal(c.listeners[0].keyfile, "/c/server.key");
    assert_string_equal(c.listeners[0].cafile, "/c/ca.crt");
    assert_string_equal(c.listeners[0].tls_version, "tlsv1.3");
    assert_string_equal(c.listeners[0].ciphers_tls13, "TLS_AES_128_GCM_SHA256");
    assert_true(c.listeners[0].require_certificate);
    assert_true(c.listeners[0].use_identity_as_username);
    assert_null(c.listeners[0].websockets_path);
    assert_null(c.listeners[1].certfile);
    assert_int_equal(c.listeners[1].protocol, LISTENER_WEBSOCKETS);
    assert_string_equal(c.listeners[1].websockets_path, "/ws");
    config_fini(&c);
}

static void
other_mosquitto_keys_are_ignored_with_a_warning(void **state)
{
    const char *ignored[] = {
        "persistence_file", "autosave_interval",
        "autosave_on_changes", "dhparamfile",
        "connection_messages", "pid_file", "user", "queue_qos0_messages", "retry_interval",
        "check_retain_source", "websockets_log_level",
        "websockets_headers_size", "http_dir", "auto_id_prefix", "allow_duplicate_messages",
        "log_facility", "log_timestamp_format", "store_clean_interval",
        "max_topic_alias_broker", "plugin_opt_db_host", "auth_opt_backends",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        char text[128], msg[256];
        snprintf(text, sizeof(text), "\n%s some value\n", ignored[i]);
        snprintf(msg, sizeof(msg), "petrel.conf:2: '%s' is not supported yet and is ignored\n",
                 ignored[i]);
        expect_warnings(text, msg);
        snprintf(text, sizeof(text), "%s\n", ignored[i]);
        snprintf(msg, sizeof(msg), "petrel.conf:1: %s: missing value", ignored[i]);
        expect_error(text, msg);
    }

    expect_error("persistence maybe\n",
                 "petrel.conf:1: persistence: 'maybe' is not true or false");
}

static void
overload_keys(void **state)
{
    (void)state;
    struct config c;

    load_ok(&c, "connect_timeout 3\nmemory_limit 512M\n");
    assert_int_equal(c.connect_timeout, 3);
    assert_int_equal(c.memory_limit, 512ull * 1024 * 1024);
    config_fini(&c);
    load_ok(&c, "connect_timeout 3600\nmemory_limit 1000000\n");
    assert_int_equal(c.connect_timeout, 3600);
    assert_int_equal(c.memory_limit, 1000000);
    config_fini(&c);
    /* 0 would close every connection before its CONNECT could arrive. */
    expect_error("connect_timeout 0\n",
                 "petrel.conf:1: connect_timeout: '0' is not a number from 1 to 3600");
    expect_error("connect_timeout 3601\n",
                 "petrel.conf:1: connect_timeout: '3601' is not a number from 1 to 3600");
    expect_error("memory_limit lots\n",
                 "petrel.conf:1: memory_limit: 'lots' is not a size such as 0, 1048576, 512M or "
                 "2G");
    expect_warnings("memory_limit 0\n", "");
}

static void
persistence_keys(void **state)
{
    (void)state;
    struct config c;
    char err[256];

    config_defaults(&c);
    assert_false(c.persistence);
    assert_null(c.persistence_location);
    assert_false(c.persistence_sync_periodic);
    assert_int_equal(c.persistence_max_size, 0);
    assert_false(c.persistence_move_aside);
    const char *text = "persistence true\n"
                       "persistence_location /var/lib/petrel data\n"
                       "persistence_sync periodic 250\n"
                       "persistence_max_size 512M\n"
                       "persistence_move_aside true\n";
    assert_int_equal(config_load_buffer("petrel.conf", text, strlen(text), &c, err, sizeof(err),
                                        NULL),
                     0);
    assert_true(c.persistence);
    assert_string_equal(c.persistence_location, "/var/lib/petrel data");
    assert_true(c.persistence_sync_periodic);
    assert_int_equal(c.persistence_sync_ms, 250);
    assert_int_equal(c.persistence_max_size, 512ull * 1024 * 1024);
    assert_true(c.persistence_move_aside);
    text = "persistence_sync always\npersistence_max_size 4096\nretained_persistence true\n";
    assert_int_equal(config_load_buffer("petrel.conf", text, strlen(text), &c, err, sizeof(err),
                                        NULL),
                     0);
    assert_false(c.persistence_sync_periodic);
    assert_int_equal(c.persistence_max_size, 4096);
    config_fini(&c);

    expect_warnings("persistence true\n", "");
    expect_warnings("persistence false\n", "");
    expect_error("persistence_sync sometimes\n",
                 "petrel.conf:1: persistence_sync: 'sometimes' is not 'always' or 'periodic N' "
                 "(milliseconds)");
    expect_error("persistence_sync periodic 0\n",
                 "petrel.conf:1: persistence_sync: '0' is not a number from 1 to 3600000");
    expect_error("persistence_max_size 12X\n",
                 "petrel.conf:1: persistence_max_size: '12X' is not a size such as 0, 1048576, "
                 "512M or 2G");
    expect_error("persistence_location\n", "petrel.conf:1: persistence_location: missing value");
}

static void
queue_full_policy_key(void **state)
{
    struct config c;
    char err[256];

    config_defaults(&c);
    assert_false(c.queue_full_drop_oldest); /* refuse */
    const char *text = "queue_full_policy drop_oldest\n";
    assert_int_equal(config_load_buffer("petrel.conf", text, strlen(text), &c, err, sizeof(err),
                                        NULL),
                     0);
    assert_true(c.queue_full_drop_oldest);
    text = "queue_full_policy refuse\n";
    assert_int_equal(config_load_buffer("petrel.conf", text, strlen(text), &c, err, sizeof(err),
                                        NULL),
                     0);
    assert_false(c.queue_full_drop_oldest);
    config_fini(&c);
    expect_error("queue_full_policy drop_newest\n",
                 "petrel.conf:1: queue_full_policy: 'drop_newest' is not 'refuse' or "
                 "'drop_oldest'");
}

static void
bridge_keys_only_after_connection(void **state)
{
    expect_warnings("connection cloud\n"
                    "address broker.example.com:1883\n"
                    "topic sensors/# out 1\n"
                    "remote_username u\n"
                    "bridge_cafile /etc/ca.pem\n",
                    "petrel.conf:1: 'connection' is not supported yet and is ignored, with the "
                    "bridge settings that follow it\n");
    expect_error("topic a/b out 1\n",
                 "petrel.conf:1: 'topic' belongs to a bridge: it must follow a 'connection' "
                 "line");
    expect_error("connection\n", "petrel.conf:1: connection: missing value");
}

static void
unknown_keys_are_errors(void **state)
{
    expect_error("\n\nlistener 1883\nmax_keeplive 60\n",
                 "petrel.conf:4: unknown key 'max_keeplive'");
    expect_error("Port 1883\n", "petrel.conf:1: unknown key 'Port'");
    expect_error("plugin_opt\n", "petrel.conf:1: unknown key 'plugin_opt'");
}

/* --- security keys with per_listener_settings --- */

static void
per_listener_security_settings_keep_the_strictest(void **state)
{
    struct config c;

    /* Without per_listener_settings: one broker-wide value, the last wins. */
    load_ok(&c, "allow_anonymous false\nallow_anonymous true\n");
    assert_true(c.allow_anonymous);
    assert_string_equal(warnings, "");
    config_fini(&c);

    load_ok(&c, "per_listener_settings true\n"
                "listener 1883 127.0.0.1\nallow_anonymous false\n"
                "listener 1884\nallow_anonymous true\n");
    assert_false(c.allow_anonymous);
    assert_string_equal(warnings, "petrel.conf:5: allow_anonymous: Petrel has one value for all "
                                  "listeners; using false\n");
    config_fini(&c);

    load_ok(&c, "per_listener_settings true\n"
                "listener 1883\nallow_zero_length_clientid true\n"
                "listener 1884\nallow_zero_length_clientid false\n");
    assert_false(c.allow_zero_length_clientid);
    config_fini(&c);
}

/* --- line shapes --- */

static void
comments_blanks_and_crlf(void **state)
{
    struct config c;

    load_ok(&c, "\xEF\xBB\xBF# Petrel\r\n"
                "\r\n"
                "   \t  \r\n"
                "   # indented comment\r\n"
                "\t listener   1883 \t 127.0.0.1  \r\n"
                "max_keepalive\t60\r\n"
                "#max_keepalive 70000\r\n"
                "p2p_parent_topic devices   \r\n"
                "log_dest file /var/log/petrel.log \r\n"
                "max_queued_messages 9");        /* no final newline */
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_int_equal(c.listeners[0].line, 5);
    assert_int_equal(c.max_keepalive, 60);
    assert_string_equal(c.p2p_parents[0], "devices");
    assert_string_equal(c.log_file, "/var/log/petrel.log");
    assert_int_equal(c.max_queued_messages, 9);
    config_fini(&c);

    /* '#' starts a comment only at the start of a line. */
    expect_error("max_keepalive 60 # seconds\n",
                 "petrel.conf:1: max_keepalive: unexpected extra value '#' (comments must be on "
                 "a line of their own)");
    expect_error("max_keepalive #60\n",
                 "petrel.conf:1: max_keepalive: '#60' is not a number from 0 to 65535");
    expect_error("\r\nmax_keepalive 7x\r\n",
                 "petrel.conf:2: max_keepalive: '7x' is not a number from 0 to 65535");
}

static void
nul_bytes_are_errors(void **state)
{
    static const char text[] = "listener 1883\nmax_keepalive 6\0" "0\n";
    struct config c;
    char err[ERR_LEN];

    config_defaults(&c);
    assert_int_equal(config_load_buffer("petrel.conf", text, sizeof(text) - 1, &c, err,
                                        sizeof(err), NULL),
                     -1);
    assert_string_equal(err, "petrel.conf:2: line contains a NUL byte");
    config_fini(&c);
}

static void
very_long_lines(void **state)
{
    size_t n = 1 << 20;
    char *text = malloc(n + 64);
    struct config c;
    char err[ERR_LEN];

    assert_non_null(text);
    /* A long value is kept whole. */
    strcpy(text, "p2p_parent_topic ");
    size_t at = strlen(text);
    memset(text + at, 'x', n);
    strcpy(text + at + n, "\nmax_keepalive 5\n");
    load_ok(&c, text);
    assert_int_equal(c.n_p2p_parents, 1);
    assert_int_equal(strlen(c.p2p_parents[0]), n);
    assert_int_equal(c.max_keepalive, 5);
    config_fini(&c);

    /* A long bad value is cut short in the message. */
    strcpy(text, "max_keepalive ");
    at = strlen(text);
    memset(text + at, '9', n);
    strcpy(text + at + n, "\n");
    config_defaults(&c);
    assert_int_equal(load(&c, text, err), -1);
    assert_string_equal(err, "petrel.conf:1: max_keepalive: "
                             "'999999999999999999999999999999999999999999999999999999999999..."
                             "' is not a number from 0 to 65535");
    config_fini(&c);

    /* A long unknown key too. */
    memset(text, 'k', n);
    strcpy(text + n, " 1\n");
    config_defaults(&c);
    assert_int_equal(load(&c, text, err), -1);
    assert_string_equal(err, "petrel.conf:1: unknown key "
                             "'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'");
    config_fini(&c);
    free(text);
}

static void
control_bytes_in_messages_are_masked(void **state)
{
    expect_error("max_keepalive 1\x1b[2J\n",
                 "petrel.conf:1: max_keepalive: '1?[2J' is not a number from 0 to 65535");
}

/* --- the shipped example --- */

static void
shipped_petrel_conf_loads(void **state)
{
    char path[1024], err[ERR_LEN];
    const char *suffix = "tests/unit/test_config.c";
    const char *me = __FILE__;
    size_t len = strlen(me), slen = strlen(suffix);
    struct config c;

    if (len < slen || strcmp(me + len - slen, suffix) != 0 || me[0] != '/')
        skip();
    snprintf(path, sizeof(path), "%.*spetrel.conf", (int)(len - slen), me);
    if (access(path, R_OK) != 0)
        skip();
    config_defaults(&c);
    warnings[0] = '\0';
    assert_int_equal(config_load(path, &c, err, sizeof(err), collect_warning), 0);
    assert_string_equal(warnings, "");
    assert_int_equal(c.n_listeners, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_true(c.p2p_enabled);
    assert_string_equal(c.p2p_keyword, "p2p");
    config_fini(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_documented_values),
        cmocka_unit_test(empty_file_keeps_defaults_and_no_listener),
        cmocka_unit_test(load_keeps_earlier_settings),
        cmocka_unit_test(default_listener_is_loopback),
        cmocka_unit_test(bool_keys_take_true_and_false),
        cmocka_unit_test(number_keys_are_strict_and_range_checked),
        cmocka_unit_test(max_keepalive_message_matches_documentation),
        cmocka_unit_test(max_connections_global_and_per_listener),
        cmocka_unit_test(max_packet_size_is_zero_or_at_least_twenty),
        cmocka_unit_test(maximum_qos_and_its_mosquitto_alias),
        cmocka_unit_test(persistent_client_expiration_units),
        cmocka_unit_test(persistence_keys),
        cmocka_unit_test(log_type_first_line_replaces_defaults),
        cmocka_unit_test(log_dest_destinations),
        cmocka_unit_test(p2p_keyword_is_one_topic_level),
        cmocka_unit_test(p2p_parent_topic_repeats),
        cmocka_unit_test(listener_sections),
        cmocka_unit_test(port_and_bind_address_make_the_default_listener),
        cmocka_unit_test(listener_errors),
        cmocka_unit_test(listeners_that_do_not_clash),
        cmocka_unit_test(keys_that_would_weaken_security_stop_the_load),
        cmocka_unit_test(other_mosquitto_keys_are_ignored_with_a_warning),
        cmocka_unit_test(tls_and_websocket_keys_belong_to_their_listener),
        cmocka_unit_test(bridge_keys_only_after_connection),
        cmocka_unit_test(queue_full_policy_key),
        cmocka_unit_test(unknown_keys_are_errors),
        cmocka_unit_test(per_listener_security_settings_keep_the_strictest),
        cmocka_unit_test(comments_blanks_and_crlf),
        cmocka_unit_test(nul_bytes_are_errors),
        cmocka_unit_test(very_long_lines),
        cmocka_unit_test(control_bytes_in_messages_are_masked),
        cmocka_unit_test(shipped_petrel_conf_loads),
    };
    const struct CMUnitTest file_tests[] = {
        cmocka_unit_test(include_dir_reads_conf_files_in_sorted_order),
        cmocka_unit_test(include_dir_sections_end_with_their_file),
        cmocka_unit_test(include_dir_is_read_from_the_main_file_only),
        cmocka_unit_test(include_dir_errors),
        cmocka_unit_test(http_api_keys),
        cmocka_unit_test(overload_keys),
        cmocka_unit_test(unreadable_files_name_the_file),
        cmocka_unit_test(file_errors_give_the_right_line),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed += cmocka_run_group_tests(file_tests, make_tmp, remove_tmp);
    return failed;
}
