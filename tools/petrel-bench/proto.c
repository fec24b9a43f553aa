/*
 * proto.c - what petrel-bench does with each packet the broker sends: set-up (CONNACK,
 * SUBACK), messages to receivers (counted, timed, acknowledged), acknowledgements to
 * publishers (flow.c).
 *
 * Receivers answer QoS 1 with PUBACK and QoS 2 with PUBREC, then PUBREL with PUBCOMP, at
 * once (spec section 4.3). A message counts when its PUBLISH arrives.
 */
#include <stdio.h>
#include <string.h>

#include "petrel-bench/internal.h"

static void
subscribe_bg(struct drive *d, struct link *l)
{
    const struct opts *o = d->o;
    uint32_t first = l->idx * BG_PER_CONN;
    uint32_t last = first + BG_PER_CONN;
    char names[BG_PER_PACKET][520];
    struct slice filters[BG_PER_PACKET];
    uint16_t pid = 1;

    if (last > o->background_subs)
        last = o->background_subs;
    for (uint32_t i = first; i < last; pid++) {
        size_t n = 0;
        for (; n < BG_PER_PACKET && i < last; n++, i++) {
            plan_bg_filter(o, i, names[n], sizeof(names[n]));
            filters[n] = slice_cstr(names[n]);
        }
        wire_subscribe(&l->out, o->version, pid, filters, n, 0);
        l->subacks_pending++;
    }
}

static void
on_connack(struct drive *d, struct link *l, struct slice body)
{
    struct wire_connack ack;

    if (l->state != LS_CONNACK) {
        link_fail(d, l, "unexpected CONNACK");
        return;
    }
    if (wire_parse_connack(body, d->o->version, &ack) != 0) {
        link_fail(d, l, "malformed CONNACK");
        return;
    }
    if (ack.rc != 0) {
        link_fail(d, l, "connection refused, CONNACK code 0x%02x", ack.rc);
        return;
    }
    hist_record(&d->out.conn_lat, d->now - l->t_start);
    if (ack.maximum_qos < d->o->qos && l->kind != LK_IDLE && l->kind != LK_BG) {
        link_fail(d, l, "the broker's maximum QoS is %u", ack.maximum_qos);
        return;
    }
    switch (l->kind) {
    case LK_PUB:
        flow_start(d, l->pub, ack.receive_max);
        link_ready(d, l);
        break;
    case LK_RECV: {
        struct recv *r = l->recv;
        if (r->n_filters == 0) {
            link_ready(d, l);
            break;
        }
        struct slice f[8];
        uint32_t n = r->n_filters < 8 ? r->n_filters : 8;
        for (uint32_t i = 0; i < n; i++)
            f[i] = slice_cstr(r->filters[i]);
        wire_subscribe(&l->out, d->o->version, 1, f, n, (uint8_t)d->plan->recv_qos);
        l->subacks_pending = 1;
        l->state = LS_SUBACK;
        link_dirty(d, l);
        break;
    }
    case LK_BG:
        subscribe_bg(d, l);
        l->state = LS_SUBACK;
        link_dirty(d, l);
        break;
    case LK_IDLE:
        /* An idle connection keeps no buffer: it is what the conn scenario measures. */
        buf_fini(&l->out);
        link_ready(d, l);
        break;
    }
}

static void
on_suback(struct drive *d, struct link *l, struct slice body)
{
    uint16_t pid;
    struct slice rcs;

    if (l->state != LS_SUBACK || wire_parse_suback(body, d->o->version, &pid, &rcs) != 0) {
        link_fail(d, l, "unexpected or malformed SUBACK");
        return;
    }
    for (size_t i = 0; i < rcs.len; i++) {
        if (rcs.p[i] >= 0x80) {
            link_fail(d, l, "subscription refused, SUBACK code 0x%02x", rcs.p[i]);
            return;
        }
        if (l->kind == LK_RECV && rcs.p[i] < d->plan->recv_qos) {
            link_fail(d, l, "subscription granted at QoS %u only", rcs.p[i]);
            return;
        }
    }
    if (--l->subacks_pending == 0) {
        if (l->kind == LK_BG)
            buf_shrink(&l->out, 0);
        link_ready(d, l);
    }
}

/* The stream index, sequence and send time of an MQTT publisher's message to r. */
static bool
mqtt_payload(struct drive *d, struct recv *r, struct slice payload, uint32_t *k_out,
             uint32_t *seq_out, uint64_t *ts)
{
    struct plan *p = d->plan;
    uint32_t pub, seq;
    uint32_t k;

    if (!wire_payload_get(payload, &pub, &seq, ts)) {
        drive_error(d, "%s: message with a %zu-byte payload", r->client_id, payload.len);
        return false;
    }
    if (r->n_src == 1) {
        if (pub != r->src0) {
            drive_error(d, "%s: message from publisher %u, expected %u only", r->client_id, pub,
                        r->src0);
            return false;
        }
        k = 0;
    } else {
        if (pub >= r->n_src) {
            drive_error(d, "%s: message from unknown publisher %u", r->client_id, pub);
            return false;
        }
        k = pub;
    }
    /* A sequence number is published (release) before its message is handed to the socket. */
    if (seq >= atomic_load_explicit(&p->pubs[pub].sent_pub, memory_order_acquire)) {
        drive_error(d, "%s: sequence %u of publisher %u was never sent", r->client_id, seq, pub);
        return false;
    }
    *k_out = k;
    *seq_out = seq;
    return true;
}

/* A message for receiver r: find its stream, count it, time it. */
static void
count_message(struct drive *d, struct recv *r, struct slice payload)
{
    uint32_t k, seq;
    uint64_t ts;
    bool ok = d->o->scenario == SCEN_HTTP ? hflow_payload(d, r, payload, &k, &seq, &ts)
                                          : mqtt_payload(d, r, payload, &k, &seq, &ts);

    if (!ok)
        return;
    struct track *t = &r->streams[k];
    track_add(t, seq);
    atomic_store_explicit(r->fb[k], r->fb_count ? (uint32_t)t->n_unique : t->hi,
                          memory_order_relaxed);
    d->out.received_all++;
    if (d->now >= d->t_meas && d->now < d->t_end) {
        d->out.received++;
        hist_record(&d->out.lat, d->now > ts ? d->now - ts : 0);
    }
}

static void
on_publish(struct drive *d, struct link *l, uint8_t flags, struct slice body)
{
    struct wire_publish m;

    if (l->kind != LK_RECV)
        drive_error(d, "message to a connection that did not subscribe (kind %u)", l->kind);
    if (wire_parse_publish(flags, body, d->o->version, &m) != 0) {
        link_fail(d, l, "malformed PUBLISH");
        return;
    }
    if (m.qos && m.packet_id == 0) {
        link_fail(d, l, "PUBLISH with packet id 0");
        return;
    }
    if (l->kind == LK_RECV)
        count_message(d, l->recv, m.payload);
    if (m.qos) {
        wire_ack(&l->out, m.qos == 1 ? WIRE_PUBACK : WIRE_PUBREC, m.packet_id);
        link_dirty(d, l);
    }
}

void
proto_packet(struct drive *d, struct link *l, uint8_t type, uint8_t flags, struct slice body)
{
    uint16_t pid;
    uint8_t rc;

    switch (type) {
    case WIRE_CONNACK:
        on_connack(d, l, body);
        return;
    case WIRE_SUBACK:
        on_suback(d, l, body);
        return;
    case WIRE_PUBLISH:
        on_publish(d, l, flags, body);
        return;
    case WIRE_PUBACK:
    case WIRE_PUBREC:
    case WIRE_PUBCOMP:
        if (l->kind != LK_PUB) {
            link_fail(d, l, "unexpected acknowledgement (type %u)", type);
            return;
        }
        flow_ack(d, l, type, body);
        return;
    case WIRE_PUBREL:
        if (wire_parse_ack(body, d->o->version, &pid, &rc) != 0) {
            link_fail(d, l, "malformed PUBREL");
            return;
        }
        wire_ack(&l->out, WIRE_PUBCOMP, pid);
        link_dirty(d, l);
        return;
    case WIRE_PINGRESP:
        return;
    case WIRE_DISCONNECT:
        link_fail(d, l, "DISCONNECT from the broker, reason 0x%02x", body.len ? body.p[0] : 0);
        return;
    default:
        link_fail(d, l, "unexpected packet type %u", type);
        return;
    }
}
