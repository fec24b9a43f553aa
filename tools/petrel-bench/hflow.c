/*
 * hflow.c - the http scenario's publishers: HTTP/1.1 keep-alive connections that POST
 * /api/v1/publish (one message a request) or /api/v1/publish/batch (--http-batch B), each
 * message P2P to one of the MQTT receivers in turn (hwire.h says which).
 *
 *   READY --request--> up to --http-pipeline requests outstanding --response--> READY
 *
 * Closed loop by default: a connection sends its next request as soon as it has room in its
 * pipeline and in the end-to-end window (--outstanding, as flow.c: what was sent and not yet
 * received by the receivers). With --rate R a request is due when its last message is, message
 * n of a connection being due at start + n / R.
 *
 * A message counts as acknowledged when its request is answered 200 (and, in a batch, its
 * answer holds no error). The messages of a request answered otherwise are exempt from the
 * loss count (report.c) and counted as errors: a benchmark run expects every answer to be 200.
 * Latency runs from the moment the request is queued for its socket (flushed in the same loop
 * iteration) to the MQTT receipt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "petrel-bench/hwire.h"
#include "petrel-bench/internal.h"

#define MAX_HEAD 16384

static uint32_t
per_request(const struct opts *o)
{
    return o->http_batch ? o->http_batch : 1;
}

void
hflow_start(struct drive *d, struct pub *p)
{
    uint32_t n = d->o->http_pipeline;

    p->req_first = xcalloc(n, sizeof(*p->req_first));
    p->req_t0 = xcalloc(n, sizeof(*p->req_t0));
}

bool
hflow_drained(const struct pub *p)
{
    if (!p->link || p->link->state != LS_READY)
        return true;
    return p->link->out.len == 0 && p->n_req == 0 && flow_feedback(p) + p->n_refused >= p->sent;
}

/* Rate mode: whether a request of `per` messages is due now (else note when it will be). */
static bool
due(struct drive *d, struct pub *p, uint32_t per)
{
    uint64_t at = p->next_ns + (uint64_t)((double)(p->sent + per - 1) * 1e9 / d->o->rate);

    if (d->now >= at)
        return true;
    if (at < d->next_due)
        d->next_due = at;
    return false;
}

static void
send_request(struct drive *d, struct pub *p, uint32_t per)
{
    const struct opts *o = d->o;
    const struct plan *pl = d->plan;
    struct buf *body = &d->scratch;

    body->len = 0;
    if (o->http_batch)
        hwire_raw(body, "{\"messages\":[");
    for (uint32_t i = 0; i < per; i++) {
        uint32_t seq = p->sent + i;
        uint32_t j = hwire_target(p->id, seq, pl->n_pubs, pl->n_recvs);
        size_t len = hwire_payload(d->payload, o->size, p->id, seq, d->now);
        if (i)
            hwire_raw(body, ",");
        hwire_message(body, o->parent, pl->recvs[j].client_id, slice_make(d->payload, len), o->qos);
    }
    if (o->http_batch)
        hwire_raw(body, "]}");

    struct link *l = p->link;
    hwire_request(&l->out, o->http_batch ? "/api/v1/publish/batch" : "/api/v1/publish", o->host,
                  o->http_port, o->http_key, buf_slice(body));
    uint32_t slot = (p->req_head + p->n_req) % o->http_pipeline;
    p->req_first[slot] = p->sent;
    p->req_t0[slot] = d->now;
    p->n_req++;
    p->n_inflight += per;
    p->sent += per;
    /* Receivers reject sequence numbers at or above this: published before the send. */
    atomic_store_explicit(&p->sent_pub, p->sent, memory_order_release);
    if (d->now >= d->t_meas)
        p->sent_measured += per;
    link_dirty(d, l);
}

void
hflow_produce(struct drive *d, struct pub *p)
{
    const struct opts *o = d->o;
    struct link *l = p->link;
    uint32_t per = per_request(o);

    if (!l || l->state != LS_READY || d->now >= d->t_end || d->phase != PH_RUN)
        return;
    while (p->n_req < o->http_pipeline) {
        if (o->rate > 0 && !due(d, p, per))
            return;
        if (flow_room(d, p) < per) {
            d->blocked = true;
            return;
        }
        send_request(d, p, per);
    }
}

/* The messages of a request that was not (wholly) taken need not arrive. */
static void
exempt(struct pub *p, uint32_t first, uint32_t n)
{
    if (p->n_refused + n > p->refused_cap) {
        while (p->n_refused + n > p->refused_cap)
            p->refused_cap = p->refused_cap ? p->refused_cap * 2 : 16;
        p->refused = xrealloc(p->refused, p->refused_cap * sizeof(*p->refused));
    }
    for (uint32_t i = 0; i < n; i++)
        p->refused[p->n_refused++] = first + i;
}

static void
answer(struct drive *d, struct link *l, int status, struct slice body)
{
    const struct opts *o = d->o;
    struct pub *p = l->pub;
    uint32_t per = per_request(o);

    if (p->n_req == 0) {
        link_fail(d, l, "HTTP response %d with no request outstanding", status);
        return;
    }
    uint32_t first = p->req_first[p->req_head];
    uint64_t t0 = p->req_t0[p->req_head];
    p->req_head = (p->req_head + 1) % o->http_pipeline;
    p->n_req--;
    p->n_inflight -= per;

    d->out.http_answers_all++;
    d->out.http_status[status < 600 ? status : 0]++;
    if (d->now >= d->t_meas && d->now < d->t_end) {
        d->out.http_answers++;
        hist_record(&d->out.http_lat, d->now - t0);
    }
    if (status != 200) {
        exempt(p, first, per);
        drive_error(d, "%s: HTTP status %d: %.*s", p->client_id, status,
                    (int)(body.len < 120 ? body.len : 120), (const char *)body.p);
        return;
    }
    uint32_t bad = o->http_batch ? hwire_count(body, "\"error\"") : 0;
    if (bad) {
        /* Which ones failed is in the answer's order; all are exempt, none is owed. */
        exempt(p, first, per);
        d->out.http_item_errors += bad;
        drive_error(d, "%s: %u message(s) of a batch refused: %.*s", p->client_id, bad,
                    (int)(body.len < 120 ? body.len : 120), (const char *)body.p);
    }
    p->n_acked += per - (bad < per ? bad : per);
}

size_t
hflow_input(struct drive *d, struct link *l, const uint8_t *p, size_t n)
{
    size_t used = 0;

    while (used < n && l->state != LS_CLOSED) {
        int status;
        struct slice body;
        long r = hwire_response(p + used, n - used, MAX_HEAD, &status, &body);
        if (r < 0) {
            link_fail(d, l, "malformed HTTP response from the broker");
            break;
        }
        if (r == 0) {
            if (n - used > d->rbuf_cap / 2)
                link_fail(d, l, "HTTP response over %zu bytes", d->rbuf_cap / 2);
            break;
        }
        answer(d, l, status, body);
        used += (size_t)r;
    }
    return used;
}

bool
hflow_payload(struct drive *d, struct recv *r, struct slice payload, uint32_t *k, uint32_t *seq,
              uint64_t *ts)
{
    const struct plan *pl = d->plan;
    uint32_t pub, s;

    if (!hwire_payload_get(payload, &pub, &s, ts)) {
        drive_error(d, "%s: message with a payload not from this run (%zu bytes)", r->client_id,
                    payload.len);
        return false;
    }
    if (pub >= pl->n_pubs) {
        drive_error(d, "%s: message from unknown HTTP connection %u", r->client_id, pub);
        return false;
    }
    if (hwire_target(pub, s, pl->n_pubs, pl->n_recvs) != r->id) {
        drive_error(d, "%s: message %u of HTTP connection %u was for another receiver",
                    r->client_id, s, pub);
        return false;
    }
    if (s >= atomic_load_explicit(&pl->pubs[pub].sent_pub, memory_order_acquire)) {
        drive_error(d, "%s: message %u of HTTP connection %u was never sent", r->client_id, s, pub);
        return false;
    }
    *k = r->n_src == 1 ? 0 : pub;
    *seq = s / pl->n_recvs;
    return true;
}
