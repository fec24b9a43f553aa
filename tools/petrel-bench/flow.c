/*
 * flow.c - publishers: how many messages each may send now, and their acknowledgements.
 *
 * Closed loop (no --rate): a QoS 1/2 publisher keeps at most `window` messages unacknowledged
 * (--inflight, lowered to the broker's MQTT 5 Receive Maximum [MQTT-4.9.0-1]). And at every
 * QoS a publisher keeps at most --outstanding bytes sent but not yet seen by its receivers
 * (their delivery feedback): a broker acknowledges a QoS 1 message on receipt, so the inflight
 * window alone would let publishers fill subscriber queues; this way the generator measures
 * what the broker delivers, not how much it can buffer. When messages are dropped the feedback
 * may stop moving: after STALL_NS without progress the outstanding ones are written off (they
 * are counted as lost at the end) and sending resumes.
 *
 * Fixed rate (--rate R): message n of a publisher is due at start + n / R; the windows still
 * apply. Publishers start staggered over one period so that their sends interleave.
 *
 * QoS 1:  PUBLISH --> PUBACK: slot freed
 * QoS 2:  PUBLISH --> PUBREC: PUBREL sent --> PUBCOMP: slot freed
 *         (a PUBREC with a reason code >= 0x80 ends the flow there, MQTT 5 section 4.3.3)
 * A message counts as acknowledged at PUBACK / PUBREC: the broker then owns it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "petrel-bench/internal.h"

void
flow_start(struct drive *d, struct pub *p, uint16_t server_receive_max)
{
    if (d->o->qos == 0)
        return;
    uint32_t w = d->o->inflight;
    if (d->o->version == 5 && server_receive_max && server_receive_max < w)
        w = server_receive_max;
    p->window = w;
    p->slot_seq = xcalloc(w, sizeof(*p->slot_seq));
    p->slot_state = xcalloc(w, 1);
    p->free_ids = xcalloc(w, sizeof(*p->free_ids));
    p->n_free = w;
    for (uint32_t i = 0; i < w; i++)
        p->free_ids[i] = (uint16_t)(w - i); /* popped from the end: 1, 2, ... */
}

uint32_t
flow_feedback(const struct pub *p)
{
    uint32_t v = atomic_load_explicit(&p->fb[0], memory_order_relaxed);
    for (uint32_t i = 1; i < p->n_fb; i++) {
        uint32_t x = atomic_load_explicit(&p->fb[i], memory_order_relaxed);
        if (p->fb_sum)
            v += x;
        else if (x < v)
            v = x;
    }
    return v;
}

bool
flow_drained(const struct pub *p)
{
    if (!p->link || p->link->state != LS_READY)
        return true;
    return p->link->out.len == 0 && p->n_inflight == 0 && flow_feedback(p) >= p->sent;
}

uint32_t
flow_room(struct drive *d, struct pub *p)
{
    uint32_t fb = flow_feedback(p);
    if (fb != p->last_fb) {
        p->last_fb = fb;
        p->last_fb_ns = d->now;
    }
    /* Counted receipts (fb_sum) never include refused messages: they are not on their way. */
    uint32_t delivered = fb + p->written_off + (p->fb_sum ? p->n_refused : 0);
    uint32_t out = p->sent > delivered ? p->sent - delivered : 0;
    if (out >= d->window_msgs && d->now - p->last_fb_ns > STALL_NS) {
        p->written_off += out;
        p->last_fb_ns = d->now;
        out = 0;
    }
    if (out >= d->window_msgs) {
        d->blocked = true;
        return 0;
    }
    return d->window_msgs - out;
}

void
flow_produce(struct drive *d, struct pub *p)
{
    const struct opts *o = d->o;
    struct link *l = p->link;
    uint64_t now = d->now;
    uint32_t n = PUB_BATCH;

    if (!l || l->state != LS_READY || now >= d->t_end || d->phase != PH_RUN)
        return;
    if (o->rate > 0) {
        if (now < p->next_ns) {
            if (p->next_ns < d->next_due)
                d->next_due = p->next_ns;
            return;
        }
        double due = (double)(now - p->next_ns) * o->rate / 1e9 + 1.0;
        uint64_t total = (uint64_t)due;
        if (total <= p->sent) {
            uint64_t at = p->next_ns + (uint64_t)((double)p->sent * 1e9 / o->rate);
            if (at < d->next_due)
                d->next_due = at;
            return;
        }
        if (total - p->sent < n)
            n = (uint32_t)(total - p->sent);
    }
    if (o->qos && p->n_free < n)
        n = p->n_free;
    uint32_t room = flow_room(d, p);
    if (room < n)
        n = room;
    if (n == 0)
        return;
    if (n == PUB_BATCH)
        d->more = true;

    size_t len = wire_pubtmpl_len(&p->tmpl);
    wire_reserve(&l->out, (size_t)n * len);
    for (uint32_t i = 0; i < n; i++) {
        uint16_t pid = 0;
        if (o->qos) {
            pid = p->free_ids[--p->n_free];
            p->slot_seq[pid - 1] = p->sent;
            p->slot_state[pid - 1] = 1;
            p->n_inflight++;
        }
        wire_publish(&l->out, &p->tmpl, pid, p->id, p->sent, now);
        p->sent++;
    }
    atomic_store_explicit(&p->sent_pub, p->sent, memory_order_release);
    if (now >= d->t_meas)
        p->sent_measured += n;
    if (o->rate > 0) {
        uint64_t at = p->next_ns + (uint64_t)((double)p->sent * 1e9 / o->rate);
        if (at < d->next_due)
            d->next_due = at;
    }
    link_dirty(d, l);
}

static void
refuse(struct drive *d, struct pub *p, uint32_t seq, uint8_t rc)
{
    if (p->n_refused == p->refused_cap) {
        p->refused_cap = p->refused_cap ? p->refused_cap * 2 : 16;
        p->refused = xrealloc(p->refused, p->refused_cap * sizeof(*p->refused));
    }
    p->refused[p->n_refused++] = seq;
    drive_error(d, "%s: message refused by the broker, reason 0x%02x", p->client_id, rc);
}

static void
release(struct pub *p, uint16_t pid)
{
    p->slot_state[pid - 1] = 0;
    p->free_ids[p->n_free++] = pid;
    p->n_inflight--;
}

void
flow_ack(struct drive *d, struct link *l, uint8_t type, struct slice body)
{
    struct pub *p = l->pub;
    uint16_t pid;
    uint8_t rc;

    if (wire_parse_ack(body, d->o->version, &pid, &rc) != 0 || pid == 0 || pid > p->window) {
        link_fail(d, l, "malformed or unknown acknowledgement (type %u)", type);
        return;
    }
    uint8_t state = p->slot_state[pid - 1];
    uint32_t seq = p->slot_seq[pid - 1];
    bool ok = (type == WIRE_PUBACK && d->o->qos == 1 && state == 1) ||
              (type == WIRE_PUBREC && d->o->qos == 2 && state == 1) ||
              (type == WIRE_PUBCOMP && state == 2);
    if (!ok) {
        link_fail(d, l, "acknowledgement type %u for packet id %u in state %u", type, pid, state);
        return;
    }
    switch (type) {
    case WIRE_PUBACK:
        if (rc >= 0x80)
            refuse(d, p, seq, rc);
        else
            p->n_acked++;
        release(p, pid);
        break;
    case WIRE_PUBREC:
        if (rc >= 0x80) {
            refuse(d, p, seq, rc);
            release(p, pid);
            break;
        }
        p->n_acked++;
        p->slot_state[pid - 1] = 2;
        wire_ack(&l->out, WIRE_PUBREL, pid);
        link_dirty(d, l);
        break;
    case WIRE_PUBCOMP:
        release(p, pid);
        break;
    }
}
