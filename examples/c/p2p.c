/*
 * p2p.c - point-to-point messaging with Petrel and libmosquitto (MQTT 5).
 *
 * A receiver connects and subscribes to nothing. A requester publishes to
 * "demo/p2p/<receiver's client ID>": Petrel hands the message to exactly that client. Each
 * request carries a Response Topic (the requester's own P2P topic) and Correlation Data, so the
 * receiver answers point-to-point as well and the requester matches replies to requests.
 *
 *   make -C examples/c            (needs libmosquitto-dev)
 *   examples/c/p2p [HOST] [PORT] [COUNT]      (defaults: 127.0.0.1 1883 3)
 *
 * Prints one "receiver:" and one "requester:" line per request, then "done: N requests
 * answered"; exits 1 if anything is missing after 10 seconds.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PARENT "demo"
#define WAIT_SECONDS 10

/* State shared by the two clients' network threads and main(). */
struct demo {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int n_connected;
    int n_answered;
};

static void
demo_lock(struct demo *d)
{
    pthread_mutex_lock(&d->lock);
}

static void
demo_unlock_signal(struct demo *d)
{
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
}

/* Wait until *counter reaches want; false after WAIT_SECONDS. */
static bool
demo_wait(struct demo *d, const int *counter, int want)
{
    struct timespec until;
    bool ok = true;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&d->lock);
    while (*counter < want && ok)
        ok = pthread_cond_timedwait(&d->changed, &d->lock, &until) != ETIMEDOUT;
    ok = *counter >= want;
    pthread_mutex_unlock(&d->lock);
    return ok;
}

static void
on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
    struct demo *d = obj;

    (void)mosq;
    (void)flags;
    (void)props;
    if (rc != 0) {
        fprintf(stderr, "connection refused: %s\n", mosquitto_reason_string(rc));
        return;
    }
    demo_lock(d);
    d->n_connected++;
    demo_unlock_signal(d);
}

/* The receiver: it never subscribed, yet every P2P message for it arrives here with the full
 * topic name. A request with a Response Topic is answered there, echoing Correlation Data. */
static void
on_request(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
           const mosquitto_property *props)
{
    struct demo *d = obj;
    char *reply_to = NULL;
    void *corr = NULL;
    uint16_t corr_len = 0;
    mosquitto_property *reply_props = NULL;
    char reply[256];

    demo_lock(d);
    printf("receiver: %s %.*s\n", msg->topic, msg->payloadlen, (const char *)msg->payload);
    fflush(stdout);
    demo_unlock_signal(d);

    if (!mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &reply_to, false))
        return;
    if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len,
                                       false))
        mosquitto_property_add_binary(&reply_props, MQTT_PROP_CORRELATION_DATA, corr, corr_len);
    int n = snprintf(reply, sizeof(reply), "re: %.*s", msg->payloadlen,
                     (const char *)msg->payload);
    mosquitto_publish_v5(mosq, NULL, reply_to, n, reply, 1, false, reply_props);
    mosquitto_property_free_all(&reply_props);
    free(corr);
    free(reply_to);
}

static void
on_reply(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
         const mosquitto_property *props)
{
    struct demo *d = obj;
    void *corr = NULL;
    uint16_t corr_len = 0;

    (void)mosq;
    mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len, false);
    demo_lock(d);
    printf("requester: %.*s correlation=%.*s\n", msg->payloadlen, (const char *)msg->payload,
           (int)corr_len, corr ? (const char *)corr : "");
    fflush(stdout);
    d->n_answered++;
    demo_unlock_signal(d);
    free(corr);
}

static struct mosquitto *
client_start(const char *id, struct demo *d, const char *host, int port,
             void (*on_message)(struct mosquitto *, void *, const struct mosquitto_message *,
                                const mosquitto_property *))
{
    struct mosquitto *mosq = mosquitto_new(id, true, d);

    if (!mosq)
        return NULL;
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_v5_callback_set(mosq, on_connect);
    mosquitto_message_v5_callback_set(mosq, on_message);
    int rc = mosquitto_connect_bind_v5(mosq, host, port, 30, NULL, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_start(mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "%s: %s\n", id, mosquitto_strerror(rc));
        mosquitto_destroy(mosq);
        return NULL;
    }
    return mosq;
}

static void
client_stop(struct mosquitto *mosq)
{
    if (!mosq)
        return;
    mosquitto_disconnect_v5(mosq, 0, NULL);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
}

int
main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 1883;
    int count = argc > 3 ? atoi(argv[3]) : 3;
    struct demo d = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
    char receiver_id[64], requester_id[64], receiver_topic[128], requester_topic[128];
    int status = 1;

    /* ApsaraMQ-style client IDs: group ID, "@@@", device ID. The P2P topic of a client is
     * "<parent>/p2p/<client id>", the ID verbatim. */
    snprintf(receiver_id, sizeof(receiver_id), "GID_demo@@@DEVICE_%ld", (long)getpid());
    snprintf(requester_id, sizeof(requester_id), "GID_demo@@@REQUESTER_%ld", (long)getpid());
    snprintf(receiver_topic, sizeof(receiver_topic), PARENT "/p2p/%s", receiver_id);
    snprintf(requester_topic, sizeof(requester_topic), PARENT "/p2p/%s", requester_id);

    mosquitto_lib_init();
    struct mosquitto *receiver = client_start(receiver_id, &d, host, port, on_request);
    struct mosquitto *requester = client_start(requester_id, &d, host, port, on_reply);
    if (!receiver || !requester || !demo_wait(&d, &d.n_connected, 2)) {
        fprintf(stderr, "could not connect to %s:%d\n", host, port);
        goto out;
    }
    for (int i = 1; i <= count; i++) {
        mosquitto_property *props = NULL;
        char payload[32], corr[32];
        int n = snprintf(payload, sizeof(payload), "hello %d", i);
        int corr_len = snprintf(corr, sizeof(corr), "req-%d", i);

        mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, requester_topic);
        mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr,
                                      (uint16_t)corr_len);
        int rc = mosquitto_publish_v5(requester, NULL, receiver_topic, n, payload, 1, false,
                                      props);
        mosquitto_property_free_all(&props);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
            goto out;
        }
    }
    if (!demo_wait(&d, &d.n_answered, count)) {
        fprintf(stderr, "timed out waiting for replies\n");
        goto out;
    }
    printf("done: %d requests answered\n", count);
    status = 0;
out:
    client_stop(requester);
    client_stop(receiver);
    mosquitto_lib_cleanup();
    return status;
}
