/*
 * pubsub.c - publish/subscribe with Petrel and libmosquitto (MQTT 3.1.1).
 *
 * A subscriber subscribes to "demo/news/#" (QoS 1); a publisher sends COUNT messages to
 * "demo/news/1", "demo/news/2", ...; the subscriber prints each one.
 *
 *   make -C examples/c            (needs libmosquitto-dev)
 *   examples/c/pubsub [HOST] [PORT] [COUNT]      (defaults: 127.0.0.1 1883 3)
 *
 * Prints one "subscriber:" line per message, then "done: N messages received"; exits 1 if
 * anything is missing after 10 seconds.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define WAIT_SECONDS 10

/* State shared by the clients' network threads and main(). */
struct demo {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int n_connected;
    int n_subscribed;
    int n_received;
};

static void
bump(struct demo *d, int *counter)
{
    pthread_mutex_lock(&d->lock);
    (*counter)++;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
}

/* Wait until *counter reaches want; false after WAIT_SECONDS. */
static bool
wait_for(struct demo *d, const int *counter, int want)
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
on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    if (rc != 0) {
        fprintf(stderr, "connection refused: %s\n", mosquitto_connack_string(rc));
        return;
    }
    bump(obj, &((struct demo *)obj)->n_connected);
}

static void
on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n_granted, const int *granted)
{
    (void)mosq;
    (void)mid;
    (void)n_granted;
    (void)granted;
    bump(obj, &((struct demo *)obj)->n_subscribed);
}

static void
on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    struct demo *d = obj;

    (void)mosq;
    pthread_mutex_lock(&d->lock);
    printf("subscriber: %s %.*s\n", msg->topic, msg->payloadlen, (const char *)msg->payload);
    fflush(stdout);
    pthread_mutex_unlock(&d->lock);
    bump(d, &d->n_received);
}

static struct mosquitto *
client_start(const char *id, struct demo *d, const char *host, int port)
{
    struct mosquitto *mosq = mosquitto_new(id, true, d);

    if (!mosq)
        return NULL;
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_message_callback_set(mosq, on_message);
    int rc = mosquitto_connect(mosq, host, port, 30);
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
    mosquitto_disconnect(mosq);
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
    struct mosquitto *subscriber = NULL, *publisher = NULL;
    char sub_id[64], pub_id[64];
    int status = 1;

    snprintf(sub_id, sizeof(sub_id), "demo-sub-%ld", (long)getpid());
    snprintf(pub_id, sizeof(pub_id), "demo-pub-%ld", (long)getpid());
    mosquitto_lib_init();
    subscriber = client_start(sub_id, &d, host, port);
    if (!subscriber || !wait_for(&d, &d.n_connected, 1)) {
        fprintf(stderr, "could not connect to %s:%d\n", host, port);
        goto out;
    }
    if (mosquitto_subscribe(subscriber, NULL, "demo/news/#", 1) != MOSQ_ERR_SUCCESS ||
        !wait_for(&d, &d.n_subscribed, 1)) {
        fprintf(stderr, "subscribe failed\n");
        goto out;
    }
    publisher = client_start(pub_id, &d, host, port);
    if (!publisher || !wait_for(&d, &d.n_connected, 2)) {
        fprintf(stderr, "could not connect to %s:%d\n", host, port);
        goto out;
    }
    for (int i = 1; i <= count; i++) {
        char topic[64], payload[32];
        snprintf(topic, sizeof(topic), "demo/news/%d", i);
        int n = snprintf(payload, sizeof(payload), "news %d", i);
        int rc = mosquitto_publish(publisher, NULL, topic, n, payload, 1, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
            goto out;
        }
    }
    if (!wait_for(&d, &d.n_received, count)) {
        fprintf(stderr, "timed out waiting for messages\n");
        goto out;
    }
    printf("done: %d messages received\n", count);
    status = 0;
out:
    client_stop(publisher);
    client_stop(subscriber);
    mosquitto_lib_cleanup();
    return status;
}
