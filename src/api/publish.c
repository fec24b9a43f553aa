/*
 * publish.c - POST /api/v1/publish and /api/v1/publish/batch: an application's message, as
 * the broker, routed like a client's PUBLISH (P2P included).
 *
 * A message is {"topic", "second_topic"?, "payload" | "payload_base64", "qos"?, "retain"?,
 * "message_expiry"?, "content_type"?, "response_topic"?, "correlation_data" |
 * "correlation_data_base64"?, "payload_format_indicator"?, "user_properties"?}. The second
 * topic is appended to the topic as ApsaraMQ's MqttSecondTopic property is (with a '/' between
 * them unless it starts with one), so "/p2p/<clientId>" makes it P2P. The MQTT 5 fields become
 * the message's properties: MQTT 5 subscribers get them, 3.1.1 ones just the payload.
 *
 * A QoS 1/2 message that wrote durable state (a queue entry of a persistent session, a
 * retained message) is answered once the store has committed it, as a client's PUBACK is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/buf.h"
#include "mqtt/packet.h"
#include "mqtt/rc.h"

#define BATCH_MAX 1000
#define TOPIC_MAX 65535

/* One refusal: its HTTP status, a stable code and a message. */
struct pub_error {
    int status;
    const char *code;
    char message[160];
};

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Base64 (standard or URL-safe alphabet, padding optional) into out; -1 when malformed. */
static int
b64_decode(const char *s, size_t len, struct buf *out)
{
    uint32_t acc = 0;
    int bits = 0;

    while (len > 0 && s[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            uint8_t byte = (uint8_t)(acc >> bits);
            if (buf_append(out, &byte, 1) != 0)
                return -1;
        }
    }
    /* Left-over bits must be the zero padding of the last character. */
    return bits >= 6 || (acc & ((1u << bits) - 1)) ? -1 : 0;
}

static int
put_bytes_prop(struct buf *b, uint8_t id, const void *p, size_t len)
{
    uint8_t head[3] = {id, (uint8_t)(len >> 8), (uint8_t)len};

    if (len > 65535)
        return -1;
    return buf_append(b, head, 3) == 0 && buf_append(b, p, len) == 0 ? 0 : -1;
}

/* A User Property: its id, then key and value as UTF-8 strings, each with a 16-bit length
 * (MQTT 5 section 2.2.2.2). Both lengths are checked: a longer value would run into the
 * next property. */
static int
put_user_prop(struct buf *b, const char *k, size_t k_len, const char *v, size_t v_len)
{
    uint8_t vlen[2] = {(uint8_t)(v_len >> 8), (uint8_t)v_len};

    if (v_len > 65535 || put_bytes_prop(b, MQTT_PROP_USER, k, k_len) != 0)
        return -1;
    return buf_append(b, vlen, 2) == 0 && buf_append(b, v, v_len) == 0 ? 0 : -1;
}

#define FAIL(e, st, c, ...)                                                                     \
    do {                                                                                        \
        (e)->status = (st);                                                                     \
        (e)->code = (c);                                                                        \
        snprintf((e)->message, sizeof((e)->message), __VA_ARGS__);                              \
        return -1;                                                                              \
    } while (0)

static int
user_properties(json_t *v, struct buf *props, struct pub_error *e)
{
    const char *k;
    json_t *val;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, k, val)
        {
            if (!json_is_string(val))
                FAIL(e, 400, "invalid_argument", "user_properties values must be strings");
            if (put_user_prop(props, k, strlen(k), json_string_value(val),
                              json_string_length(val)) != 0)
                FAIL(e, 400, "invalid_argument", "a user property key or value is over 65535 bytes");
        }
        return 0;
    }
    if (!json_is_array(v))
        FAIL(e, 400, "invalid_argument", "user_properties must be an object or [[k, v], ...]");
    json_array_foreach(v, i, val)
    {
        json_t *pk = json_array_get(val, 0), *pv = json_array_get(val, 1);
        if (!json_is_array(val) || json_array_size(val) != 2 || !json_is_string(pk) ||
            !json_is_string(pv))
            FAIL(e, 400, "invalid_argument", "user_properties[%zu] must be [key, value]", i);
        if (put_user_prop(props, json_string_value(pk), json_string_length(pk),
                          json_string_value(pv), json_string_length(pv)) != 0)
            FAIL(e, 400, "invalid_argument", "a user property key or value is over 65535 bytes");
    }
    return 0;
}

/* The MQTT 5 property block of the message's optional fields. */
static int
properties(json_t *o, struct buf *props, struct pub_error *e)
{
    json_t *v;

    if ((v = json_object_get(o, "payload_format_indicator"))) {
        if (!json_is_integer(v) || (json_integer_value(v) != 0 && json_integer_value(v) != 1))
            FAIL(e, 400, "invalid_argument", "payload_format_indicator must be 0 or 1");
        uint8_t p[2] = {MQTT_PROP_PAYLOAD_FORMAT, (uint8_t)json_integer_value(v)};
        buf_append(props, p, 2);
    }
    if ((v = json_object_get(o, "message_expiry"))) {
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
        if (n < 1 || n > UINT32_MAX)
            FAIL(e, 400, "invalid_argument", "message_expiry must be seconds from 1 to %u",
                 UINT32_MAX);
        uint8_t p[5] = {MQTT_PROP_MESSAGE_EXPIRY, (uint8_t)(n >> 24), (uint8_t)(n >> 16),
                        (uint8_t)(n >> 8), (uint8_t)n};
        buf_append(props, p, 5);
    }
    static const struct {
        const char *name;
        uint8_t id;
    } strings[] = {
        {"content_type", MQTT_PROP_CONTENT_TYPE},
        {"response_topic", MQTT_PROP_RESPONSE_TOPIC},
        {"correlation_data", MQTT_PROP_CORRELATION_DATA},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (!(v = json_object_get(o, strings[i].name)))
            continue;
        if (!json_is_string(v) ||
            put_bytes_prop(props, strings[i].id, json_string_value(v), json_string_length(v)) != 0)
            FAIL(e, 400, "invalid_argument", "%s must be a string of at most 65535 bytes",
                 strings[i].name);
    }
    if ((v = json_object_get(o, "correlation_data_base64"))) {
        struct buf raw;
        buf_init(&raw);
        int bad = !json_is_string(v) ||
                  b64_decode(json_string_value(v), json_string_length(v), &raw) != 0 ||
                  json_object_get(o, "correlation_data") ||
                  put_bytes_prop(props, MQTT_PROP_CORRELATION_DATA, raw.p, raw.len) != 0;
        buf_fini(&raw);
        if (bad)
            FAIL(e, 400, "invalid_argument",
                 "correlation_data_base64 must be base64 (and not given with correlation_data)");
    }
    if ((v = json_object_get(o, "user_properties")) && user_properties(v, props, e) != 0)
        return -1;
    return 0;
}

/* The topic (with the second topic) and payload of `o`, into topic and payload. */
static int
topic_and_payload(json_t *o, struct buf *topic, struct buf *payload, struct pub_error *e)
{
    json_t *t = json_object_get(o, "topic"), *second = json_object_get(o, "second_topic");
    json_t *text = json_object_get(o, "payload"), *b64 = json_object_get(o, "payload_base64");

    if (!json_is_string(t) || json_string_length(t) == 0)
        FAIL(e, 400, "invalid_argument", "topic must be a non-empty string");
    buf_append(topic, json_string_value(t), json_string_length(t));
    if (second) {
        if (!json_is_string(second) || json_string_length(second) == 0)
            FAIL(e, 400, "invalid_argument", "second_topic must be a non-empty string");
        if (json_string_value(second)[0] != '/')
            buf_append(topic, "/", 1);
        buf_append(topic, json_string_value(second), json_string_length(second));
    }
    if (topic->len > TOPIC_MAX)
        FAIL(e, 400, "invalid_topic", "the topic is longer than %u bytes", TOPIC_MAX);
    if (text && b64)
        FAIL(e, 400, "invalid_argument", "give payload or payload_base64, not both");
    if (text) {
        if (!json_is_string(text))
            FAIL(e, 400, "invalid_argument", "payload must be a string (or use payload_base64)");
        buf_append(payload, json_string_value(text), json_string_length(text));
    } else if (b64) {
        if (!json_is_string(b64) ||
            b64_decode(json_string_value(b64), json_string_length(b64), payload) != 0)
            FAIL(e, 400, "invalid_argument", "payload_base64 is not base64");
    }
    return 0;
}

static int
refusal(int rc, struct pub_error *e)
{
    switch (rc) {
    case MQTT_RC_TOPIC_NAME_INVALID:
        FAIL(e, 400, "invalid_topic",
             "not a valid topic name for publishing (or a P2P parent topic not allowed)");
    case MQTT_RC_NOT_AUTHORIZED:
        FAIL(e, 403, "not_authorized", "the ACL does not let this key publish there");
    case MQTT_RC_QOS_NOT_SUPPORTED:
        FAIL(e, 400, "invalid_argument", "qos above the broker's maximum_qos");
    case MQTT_RC_RETAIN_NOT_SUPPORTED:
        FAIL(e, 400, "invalid_argument", "retained messages are off (retain_available)");
    case MQTT_RC_PAYLOAD_FORMAT_INVALID:
        FAIL(e, 400, "invalid_argument", "payload_format_indicator 1 needs a UTF-8 payload");
    case MQTT_RC_QUOTA_EXCEEDED:
        FAIL(e, 503, "quota_exceeded",
             "the broker cannot take it now (message_size_limit, every target's queue full, "
             "store full or memory_limit)");
    default:
        FAIL(e, 400, "invalid_argument", "refused: %s", mqtt_rc_str(rc));
    }
}

static const char *
p2p_name(enum app_p2p p)
{
    switch (p) {
    case APP_P2P_DELIVERED:
        return "delivered";
    case APP_P2P_QUEUED:
        return "queued";
    case APP_P2P_UNKNOWN:
        return "unknown";
    default:
        return NULL;
    }
}

/* Publish one message object. Returns its result object, or NULL with *e filled. */
static json_t *
publish_one(struct api_ctx *ctx, json_t *o, bool *wait_commit, struct pub_error *e)
{
    struct buf topic, payload, props;
    json_t *result = NULL;
    json_t *q = json_object_get(o, "qos"), *r = json_object_get(o, "retain");

    buf_init(&topic);
    buf_init(&payload);
    buf_init(&props);
    if (!json_is_object(o)) {
        e->status = 400;
        e->code = "invalid_argument";
        snprintf(e->message, sizeof(e->message), "a message must be a JSON object");
        goto out;
    }
    if ((q && (!json_is_integer(q) || json_integer_value(q) < 0 || json_integer_value(q) > 2)) ||
        (r && !json_is_boolean(r))) {
        e->status = 400;
        e->code = "invalid_argument";
        snprintf(e->message, sizeof(e->message), "qos must be 0, 1 or 2 and retain a boolean");
        goto out;
    }
    if (topic_and_payload(o, &topic, &payload, e) != 0 || properties(o, &props, e) != 0)
        goto out;
    struct app_message m = {
        .topic = slice_make(topic.p, topic.len),
        .payload = slice_make(payload.p, payload.len),
        .props = slice_make(props.p, props.len),
        .qos = q ? (uint8_t)json_integer_value(q) : 0,
        .retain = r && json_is_true(r),
    };
    struct app_publish_result res;
    int rc = app_publish(ctx->w->hub, api_identity(ctx), &m, &res);
    if (rc >= 0x80 && rc != MQTT_RC_NO_MATCHING_SUBSCRIBERS) {
        refusal(rc, e);
        goto out;
    }
    char id[24];
    snprintf(id, sizeof(id), "%016llx", (unsigned long long)res.id);
    result = json_object();
    json_object_set_new(result, "id", json_string(id));
    if (res.p2p != APP_P2P_NONE)
        json_object_set_new(result, "p2p", json_string(p2p_name(res.p2p)));
    else
        json_object_set_new(result, "matched", json_boolean(rc == MQTT_RC_SUCCESS));
    *wait_commit |= res.wait_commit;
out:
    buf_fini(&topic);
    buf_fini(&payload);
    buf_fini(&props);
    return result;
}

static void
on_committed(struct app_commit_wait *w, int rc)
{
    struct api_call *call = (struct api_call *)((char *)w - offsetof(struct api_call, wait));

    if (rc != 0) {
        json_decref(call->answer);
        call->answer = json_pack("{s:s, s:s}", "code", "store_failed", "message",
                                 "the store could not commit the message; it may be lost");
        api_call_finish(call, 503);
        return;
    }
    api_call_finish(call, 200);
}

/* Answer now, or once the store has committed what the request wrote. */
static void
answer(struct api_ctx *ctx, json_t *body, bool wait_commit)
{
    if (!wait_commit) {
        api_reply_json(ctx->x, 200, body);
        return;
    }
    struct api_call *call = api_call_new(ctx);
    call->answer = body;
    call->wait.fn = on_committed;
    app_on_commit(ctx->w->hub, &call->wait);
}

void
api_publish(struct api_ctx *ctx)
{
    json_t *o = api_body_object(ctx);
    struct pub_error e;
    bool wait = false;

    if (!o)
        return;
    json_t *result = publish_one(ctx, o, &wait, &e);
    json_decref(o);
    if (!result) {
        api_reply_error(ctx->x, e.status, e.code, "%s", e.message);
        return;
    }
    answer(ctx, result, wait);
}

void
api_publish_batch(struct api_ctx *ctx)
{
    json_t *o = api_body_object(ctx);
    bool wait = false;
    size_t i;
    json_t *m;

    if (!o)
        return;
    json_t *msgs = json_object_get(o, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0 ||
        json_array_size(msgs) > BATCH_MAX) {
        json_decref(o);
        api_reply_error(ctx->x, 400, "invalid_argument",
                        "messages must be an array of 1 to %d messages", BATCH_MAX);
        return;
    }
    json_t *results = json_array();
    json_array_foreach(msgs, i, m)
    {
        struct pub_error e;
        json_t *r = publish_one(ctx, m, &wait, &e);
        if (!r)
            r = json_pack("{s:{s:s, s:s, s:i}}", "error", "code", e.code, "message", e.message,
                          "status", e.status);
        json_array_append_new(results, r);
    }
    json_decref(o);
    answer(ctx, json_pack("{s:o}", "results", results), wait);
}
