/*
 * plan.c - who connects, publishes and receives what, on which thread.
 *
 *   pairs   publisher i -> <prefix>/pairs/<i> -> receiver i          (same thread)
 *   p2p     publisher i -> <parent>/p2p/<prefix>-s<i> -> receiver i  (no SUBSCRIBE)
 *   fanin   publishers 0..P-1 -> <prefix>/fanin -> receiver 0
 *   fanout  publisher 0 -> <prefix>/fanout -> receivers 0..S-1
 *   shared  publishers 0..P-1 -> <prefix>/shared -> one of S members of $share/<group>/...
 *   conn    C idle connections
 *   http    HTTP connections 0..H-1 -> POST <parent> + /p2p/<prefix>-s<j> -> receivers 0..N-1,
 *           each connection's messages round-robin over the receivers (hwire.h)
 *
 * Client ids are <prefix>-p<i> (publishers), -s<i> (receivers), -b<i> (background),
 * -c<i> (idle); HTTP connections are named <prefix>-h<i> in messages. Connections are spread over
 * threads round-robin; a pair stays on one thread so that its feedback never crosses threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "petrel-bench/bench.h"

static char *
fmt(const char *f, const char *a, uint32_t i)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), f, a, i);
    return xstrdup(tmp);
}

static void
init_pub(struct plan *p, uint32_t i, uint32_t thread, char *topic, uint32_t n_fb, bool fb_sum)
{
    const struct opts *o = p->o;
    struct pub *pb = &p->pubs[i];

    pb->id = i;
    pb->thread = thread;
    pb->client_id = fmt("%s-p%u", o->client_prefix, i);
    pb->topic = topic;
    wire_pubtmpl_init(&pb->tmpl, o->version, slice_cstr(topic), o->qos, o->size);
    pb->n_fb = n_fb;
    pb->fb = xcalloc(n_fb, sizeof(*pb->fb));
    pb->fb_sum = fb_sum;
}

static void
init_recv(struct plan *p, uint32_t j, uint32_t thread, const char *filter, uint32_t n_src,
          uint32_t src0)
{
    struct recv *r = &p->recvs[j];

    r->id = j;
    r->thread = thread;
    r->client_id = fmt("%s-s%u", p->o->client_prefix, j);
    if (filter) {
        r->filters = xcalloc(1, sizeof(char *));
        r->filters[0] = xstrdup(filter);
        r->n_filters = 1;
    }
    r->n_src = n_src;
    r->src0 = src0;
    r->streams = xcalloc(n_src, sizeof(*r->streams));
    for (uint32_t k = 0; k < n_src; k++)
        track_init(&r->streams[k]);
    r->fb = xcalloc(n_src, sizeof(*r->fb));
}

static void
plan_pairs(struct plan *p, bool p2p)
{
    const struct opts *o = p->o;
    uint32_t n = o->clients;
    char tmp[1024];

    p->n_pubs = p->n_recvs = n;
    p->pubs = xcalloc(n, sizeof(*p->pubs));
    p->recvs = xcalloc(n, sizeof(*p->recvs));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = i % o->threads;
        char *topic;
        const char *filter = NULL;
        if (p2p) {
            snprintf(tmp, sizeof(tmp), "%s/p2p/%s-s%u", o->parent, o->client_prefix, i);
            topic = xstrdup(tmp);
            if (o->p2p_subscribe)
                filter = topic;
        } else {
            topic = fmt("%s/pairs/%u", o->client_prefix, i);
            filter = topic;
        }
        init_pub(p, i, t, topic, 1, false);
        init_recv(p, i, t, filter, 1, i);
        p->recvs[i].fb[0] = &p->pubs[i].fb[0];
    }
}

static void
plan_many(struct plan *p, uint32_t n_pubs, uint32_t n_recvs, const char *topic, const char *filter,
          bool shared)
{
    const struct opts *o = p->o;
    bool fanout = n_pubs == 1 && !shared;

    p->n_pubs = n_pubs;
    p->n_recvs = n_recvs;
    p->pubs = xcalloc(n_pubs, sizeof(*p->pubs));
    p->recvs = xcalloc(n_recvs, sizeof(*p->recvs));
    for (uint32_t i = 0; i < n_pubs; i++)
        init_pub(p, i, i % o->threads, xstrdup(topic), n_recvs, shared);
    for (uint32_t j = 0; j < n_recvs; j++) {
        /* fanout: each receiver has the one publisher as its only source */
        init_recv(p, j, j % o->threads, filter, fanout ? 1 : n_pubs, 0);
        p->recvs[j].fb_count = shared;
        for (uint32_t i = 0; i < (fanout ? 1 : n_pubs); i++)
            p->recvs[j].fb[i] = &p->pubs[i].fb[j];
    }
}

/* Receivers count what they got from each connection (fb_count) and a connection sums its
 * receivers' counts (fb_sum), as in a shared group: each message goes to one receiver. */
static void
plan_http(struct plan *p)
{
    const struct opts *o = p->o;
    uint32_t h = o->http_conns, n = o->clients;
    char tmp[1024];

    p->n_pubs = h;
    p->n_recvs = n;
    p->pubs = xcalloc(h, sizeof(*p->pubs));
    p->recvs = xcalloc(n, sizeof(*p->recvs));
    /* The template is never sent: it sizes --outstanding in the messages receivers get. */
    snprintf(tmp, sizeof(tmp), "%s/p2p/%s-s0", o->parent, o->client_prefix);
    for (uint32_t i = 0; i < h; i++) {
        init_pub(p, i, i % o->threads, xstrdup(tmp), n, true);
        free(p->pubs[i].client_id);
        p->pubs[i].client_id = fmt("%s-h%u", o->client_prefix, i);
    }
    for (uint32_t j = 0; j < n; j++) {
        init_recv(p, j, j % o->threads, NULL, h, 0);
        p->recvs[j].fb_count = true;
        for (uint32_t i = 0; i < h; i++)
            p->recvs[j].fb[i] = &p->pubs[i].fb[j];
    }
}

struct plan *
plan_new(const struct opts *o)
{
    struct plan *p = xcalloc(1, sizeof(*p));
    char topic[1024], filter[1100];

    p->o = o;
    p->recv_qos = o->qos;
    p->n_bg = o->background_subs ? (o->background_subs + 49999) / 50000 : 0;
    switch (o->scenario) {
    case SCEN_PAIRS:
        plan_pairs(p, false);
        break;
    case SCEN_P2P:
        plan_pairs(p, true);
        break;
    case SCEN_FANIN:
        snprintf(topic, sizeof(topic), "%s/fanin", o->client_prefix);
        plan_many(p, o->publishers, 1, topic, topic, false);
        break;
    case SCEN_FANOUT:
        snprintf(topic, sizeof(topic), "%s/fanout", o->client_prefix);
        plan_many(p, 1, o->subscribers, topic, topic, false);
        break;
    case SCEN_SHARED:
        snprintf(topic, sizeof(topic), "%s/shared", o->client_prefix);
        snprintf(filter, sizeof(filter), "$share/%s/%s", o->group, topic);
        plan_many(p, o->publishers, o->subscribers, topic, filter, true);
        break;
    case SCEN_CONN:
        p->n_idle = o->clients;
        break;
    case SCEN_HTTP:
        plan_http(p);
        break;
    }
    return p;
}

void
plan_free(struct plan *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->n_pubs; i++) {
        struct pub *pb = &p->pubs[i];
        free(pb->client_id);
        free(pb->topic);
        wire_pubtmpl_fini(&pb->tmpl);
        free(pb->fb);
        free(pb->slot_seq);
        free(pb->slot_state);
        free(pb->free_ids);
        free(pb->refused);
        free(pb->req_first);
        free(pb->req_t0);
    }
    for (uint32_t j = 0; j < p->n_recvs; j++) {
        struct recv *r = &p->recvs[j];
        free(r->client_id);
        for (uint32_t k = 0; k < r->n_filters; k++)
            free(r->filters[k]);
        free(r->filters);
        for (uint32_t k = 0; k < r->n_src; k++)
            track_fini(&r->streams[k]);
        free(r->streams);
        free(r->fb);
    }
    free(p->pubs);
    free(p->recvs);
    free(p);
}

void
plan_bg_filter(const struct opts *o, uint32_t i, char *out, size_t out_len)
{
    /* The pattern was checked by opts_parse to hold exactly one %u and no other conversion. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(out, out_len, o->background_pattern, i);
#pragma GCC diagnostic pop
}

uint32_t
plan_idle_thread(const struct plan *p, uint32_t i)
{
    return i % p->o->threads;
}
