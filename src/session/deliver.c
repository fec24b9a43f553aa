/*
 * deliver.c - messages on their way to one session: the queue and the inflight window.
 *
 *   QoS 0:  sent at once while connected (dropped while offline or when the client is slow)
 *   QoS 1:  QUEUED --PUBLISH--> WAIT_PUBACK --PUBACK--> freed
 *   QoS 2:  QUEUED --PUBLISH--> WAIT_PUBREC --PUBREC--> WAIT_PUBCOMP --PUBCOMP--> freed
 *
 * At most `send_window` deliveries (the client's Receive Maximum, capped by
 * max_inflight_messages) are inflight [MQTT-3.3.4-9]; the rest wait in order in the queue.
 * A packet id is in use exactly while its delivery is inflight. On resume, WAIT_PUBACK and
 * WAIT_PUBREC resend PUBLISH with DUP=1 and WAIT_PUBCOMP resends PUBREL [MQTT-4.4.0-1].
 *
 * Slow consumers (slow.c): QoS 0 is dropped once the client's output or queue backs up, QoS
 * 1/2 is refused once the queue is full, and `full` tells other hubs' routing so (the
 * publisher's PUBACK then says 0x97 when nobody took the message).
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "session/internal.h"

void
delivery_free(struct delivery *d)
{
    list_remove(&d->link);
    msg_unref(d->msg);
    free(d);
}

static bool
is_connected(const struct session *s)
{
    return s->client && s->client->state == CLIENT_CONNECTED;
}

static bool
packet_id_in_use(const struct session *s, uint16_t id)
{
    const struct list *pos;

    list_for_each(pos, &s->inflight)
    {
        if (list_entry(pos, const struct delivery, link)->packet_id == id)
            return true;
    }
    return false;
}

static uint16_t
next_packet_id(struct session *s)
{
    for (;;) {
        uint16_t id = s->next_packet_id++;
        if (s->next_packet_id == 0)
            s->next_packet_id = 1;
        if (id != 0 && (s->n_inflight == 0 || !packet_id_in_use(s, id)))
            return id;
    }
}

static bool
window_open(const struct session *s)
{
    uint64_t max_bytes = s->hub->cfg->max_inflight_bytes;

    return is_connected(s) && s->n_inflight < s->client->send_window &&
           (max_bytes == 0 || s->inflight_bytes < max_bytes);
}

/* Put a queued delivery on the wire. Returns false when it could not be sent and was freed. */
static bool
send_delivery(struct session *s, struct delivery *d)
{
    struct client *c = s->client;

    if (msg_expired(d->msg, s->hub->now)) {
        persist_delivery_drop(s, d->seq);
        delivery_free(d);
        return false;
    }
    d->packet_id = next_packet_id(s);
    d->state = d->qos == 1 ? DLV_WAIT_PUBACK : DLV_WAIT_PUBREC;
    if (!client_send_publish(c, d->msg, d->qos, d->retain, false, d->packet_id, d->sub_ids,
                             d->n_sub_ids)) {
        persist_delivery_drop(s, d->seq);
        delivery_free(d);
        return false;
    }
    persist_delivery_update(s, d);
    /* A QoS 2 PUBLISH whose packet id is not stored could be resent after a crash under a
     * new id, and a receiver would take it for a second message: it waits for the commit.
     * QoS 1 may be resent anyway. */
    if (d->qos == 2 && d->seq && persist_sess(s))
        persist_hold(c);
    list_push(&s->inflight, &d->link);
    s->n_inflight++;
    s->inflight_bytes += msg_size(d->msg);
    return true;
}

void
sess_queue_changed(struct session *s)
{
    bool full = slow_queue_full(&s->hub->limits, s->n_queued, s->queued_bytes);

    /* Written only when it changes: other hubs read it for every message they route here. */
    if (full != atomic_load_explicit(&s->full, memory_order_relaxed))
        atomic_store_explicit(&s->full, full, memory_order_relaxed);
}

void
sess_drain(struct session *s)
{
    struct list *pos;

    while (window_open(s) && (pos = list_first(&s->queue)) != NULL) {
        struct delivery *d = list_entry(pos, struct delivery, link);
        list_remove(pos);
        s->n_queued--;
        s->queued_bytes -= msg_size(d->msg);
        send_delivery(s, d);
    }
    /* Also when nothing moved: an acknowledgement or a resume clears a flag that a refusal
     * by bytes set (sess_deliver). */
    sess_queue_changed(s);
}

/* The slow-consumer verdict for `m` at `qos`; counts and logs a drop. */
static enum slow_verdict
judge(struct session *s, const struct msg *m, uint8_t qos)
{
    struct hub *h = s->hub;
    struct slow_backlog b = {
        .is_connected = is_connected(s),
        .out_pending = is_connected(s) ? conn_out_pending(s->client->conn) : 0,
        .n_queued = s->n_queued,
        .queued_bytes = s->queued_bytes,
    };
    enum slow_verdict v = slow_judge(&h->limits, &b, qos, msg_size(m));

    switch (v) {
    case SLOW_ACCEPT:
    case SLOW_DROP_OLDEST: /* counted by drop_oldest() */
        return v;
    case SLOW_DROP_OFFLINE:
        h->stats.dropped_qos0_offline++;
        break;
    case SLOW_DROP_QOS0:
        h->stats.dropped_qos0_slow++;
        break;
    case SLOW_FULL: {
        static struct log_ratelimit rl;
        h->stats.dropped_queue_full++;
        if (log_ratelimit(&rl, 5))
            log_notice("queue full, message dropped client=%s queued=%u bytes=%llu", s->id,
                       s->n_queued, (unsigned long long)s->queued_bytes);
        break;
    }
    }
    h->stats.msgs_dropped++;
    return v;
}

/* queue_full_policy drop_oldest: the oldest queued delivery (never an inflight one: its
 * PUBLISH has gone out) goes to make room, its durable entry with it in this hub's batch. */
static void
drop_oldest(struct session *s)
{
    static struct log_ratelimit rl;
    struct hub *h = s->hub;
    struct delivery *d = list_entry(list_first(&s->queue), struct delivery, link);

    s->n_queued--;
    s->queued_bytes -= msg_size(d->msg);
    persist_delivery_drop(s, d->seq);
    delivery_free(d);
    h->stats.dropped_queue_oldest++;
    h->stats.msgs_dropped++;
    if (log_ratelimit(&rl, 5))
        log_notice("queue full, oldest message dropped client=%s queued=%u bytes=%llu", s->id,
                   s->n_queued, (unsigned long long)s->queued_bytes);
}

void
sess_queue_trim(struct session *s)
{
    while (s->hub->limits.drop_oldest && !list_empty(&s->queue) &&
           slow_queue_over(&s->hub->limits, s->n_queued, s->queued_bytes))
        drop_oldest(s);
    sess_queue_changed(s);
}

int
sess_deliver(struct session *s, struct msg *m, uint8_t qos, bool retain, const uint32_t *sub_ids,
             uint32_t n_sub_ids, bool shared, uint64_t seq)
{
    struct hub *h = s->hub;

    if (msg_expired(m, h->now) || !access_receive(s, m)) {
        persist_delivery_drop(s, seq); /* access_receive: the ACL denies `read` on the topic */
        return MQTT_RC_UNSPECIFIED;
    }
    if (s->version != MQTT_V5)
        n_sub_ids = 0;
    if (qos == 0) {
        persist_delivery_drop(s, seq);
        if (judge(s, m, 0) != SLOW_ACCEPT)
            return MQTT_RC_UNSPECIFIED;
        return client_send_publish(s->client, m, 0, retain, false, 0, sub_ids, n_sub_ids)
                   ? 0
                   : MQTT_RC_UNSPECIFIED;
    }
    /* A message that goes out at once never waits in the queue, so only one that would wait
     * is judged against the queue's limits. */
    bool now = list_empty(&s->queue) && window_open(s);
    enum slow_verdict v = now ? SLOW_ACCEPT : judge(s, m, qos);
    while (v == SLOW_DROP_OLDEST) {
        drop_oldest(s);
        v = judge(s, m, qos);
    }
    if (v == SLOW_FULL) {
        persist_delivery_drop(s, seq);
        /* Below the byte limit a large message can be refused before slow_queue_full says
         * so: other hubs then refuse messages too, until the queue grows or the client next
         * acknowledges or comes back (sess_drain). With drop_oldest only a message larger
         * than the byte limit on its own is refused, and smaller ones still fit. */
        if (!h->limits.drop_oldest)
            atomic_store_explicit(&s->full, true, memory_order_relaxed);
        return MQTT_RC_QUOTA_EXCEEDED;
    }
    if (n_sub_ids > 255)
        n_sub_ids = 255;
    struct delivery *d = malloc(sizeof(*d) + n_sub_ids * sizeof(uint32_t));
    if (!d) {
        persist_delivery_drop(s, seq);
        h->stats.msgs_dropped++;
        return MQTT_RC_UNSPECIFIED;
    }
    list_init(&d->link);
    d->msg = msg_ref(m);
    d->packet_id = 0;
    d->qos = qos;
    d->state = DLV_QUEUED;
    d->retain = retain;
    d->shared = shared;
    d->n_sub_ids = (uint8_t)n_sub_ids;
    if (n_sub_ids)
        memcpy(d->sub_ids, sub_ids, n_sub_ids * sizeof(uint32_t));
    /* The publisher's hub normally wrote the entry (seq); otherwise it is written here. */
    if (persist_sess(s)) {
        d->seq = seq ? seq : persist_enqueue(h, s, m, qos, retain, shared, sub_ids, n_sub_ids);
    } else {
        persist_delivery_drop(s, seq);
        d->seq = 0;
    }
    if (now) {
        send_delivery(s, d);
        return 0;
    }
    list_push(&s->queue, &d->link);
    s->n_queued++;
    s->queued_bytes += msg_size(m);
    sess_queue_changed(s);
    return 0;
}

void
sess_resume(struct session *s)
{
    struct client *c = s->client;
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &s->inflight)
    {
        struct delivery *d = list_entry(pos, struct delivery, link);
        if (d->state == DLV_WAIT_PUBCOMP) {
            client_send_ack(c, MQTT_PUBREL, d->packet_id, 0);
        } else if (!client_send_publish(c, d->msg, d->qos, d->retain, true, d->packet_id,
                                        d->sub_ids, d->n_sub_ids)) {
            persist_delivery_drop(s, d->seq);
            s->inflight_bytes -= msg_size(d->msg);
            s->n_inflight--;
            delivery_free(d);
        }
    }
    sess_drain(s);
}

static struct delivery *
find_inflight(struct session *s, uint16_t id, uint8_t state)
{
    struct list *pos;

    /* Acknowledgements mostly arrive in order, so the match is usually the first entry. */
    list_for_each(pos, &s->inflight)
    {
        struct delivery *d = list_entry(pos, struct delivery, link);
        if (d->packet_id == id)
            return d->state == state ? d : NULL;
    }
    return NULL;
}

static void
complete(struct session *s, struct delivery *d)
{
    if (d->msg)
        s->inflight_bytes -= msg_size(d->msg);
    s->n_inflight--;
    persist_delivery_drop(s, d->seq);
    delivery_free(d);
    sess_drain(s);
}

int
sess_on_puback(struct session *s, uint16_t id)
{
    struct delivery *d = find_inflight(s, id, DLV_WAIT_PUBACK);

    if (!d)
        return MQTT_RC_PACKET_ID_NOT_FOUND;
    complete(s, d);
    return 0;
}

int
sess_on_pubrec(struct session *s, uint16_t id, uint8_t rc)
{
    struct delivery *d = find_inflight(s, id, DLV_WAIT_PUBREC);

    if (!d)
        return MQTT_RC_PACKET_ID_NOT_FOUND;
    if (rc >= 0x80) {
        /* A PUBREC reason code of 0x80 or more ends the exchange: no PUBREL follows. */
        complete(s, d);
        return 0;
    }
    d->state = DLV_WAIT_PUBCOMP;
    s->inflight_bytes -= msg_size(d->msg);
    msg_unref(d->msg);
    d->msg = NULL;
    /* After a crash a stored WAIT_PUBREC would resend the PUBLISH, which a receiver that has
     * seen our PUBREL takes for a new message: PUBREL waits for WAIT_PUBCOMP to commit. */
    persist_delivery_update(s, d);
    if (d->seq && persist_sess(s))
        persist_hold(s->client);
    client_send_ack(s->client, MQTT_PUBREL, id, 0);
    return 0;
}

int
sess_on_pubcomp(struct session *s, uint16_t id)
{
    struct delivery *d = find_inflight(s, id, DLV_WAIT_PUBCOMP);

    if (!d)
        return MQTT_RC_PACKET_ID_NOT_FOUND;
    complete(s, d);
    return 0;
}
