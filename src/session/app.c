/*
 * app.c - the protocol engine's side of the HTTP API (session/app.h): publishing as the
 * broker, questions about clients answered by their owners, commit waits, counters and
 * connection events.
 *
 * A question about client IDs becomes one OP_APP_QUERY item per ID towards the ID's owner
 * (or an answer on the spot when the asking hub owns it). The owner writes its answer into
 * the query's slot for that ID and posts OP_APP_ANSWER back; only the asking hub touches the
 * rest of the query, so no lock is needed. A query whose requester went away stays allocated
 * until its last answer is back (or disposed of at shutdown).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "mqtt/rc.h"
#include "mqtt/topic.h"
#include "session/app.h"
#include "session/internal.h"

int64_t
app_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
app_sync(struct hub *h)
{
    mailbox_poll(h->inbox);
}

/* ---- publish ---- */

/* The checks a client's PUBLISH also passes (on_publish.c), in the API's terms. */
static int
check_message(struct hub *h, struct auth_identity *who, const struct app_message *m,
              const struct mqtt_props *props)
{
    const struct config *cfg = h->cfg;

    if (!mqtt_topic_name_valid(m->topic))
        return MQTT_RC_TOPIC_NAME_INVALID;
    if (m->topic.len >= 1 && m->topic.p[0] == '$')
        return MQTT_RC_NOT_AUTHORIZED; /* $SYS and the like belong to the broker */
    if (m->qos > cfg->maximum_qos)
        return MQTT_RC_QOS_NOT_SUPPORTED;
    if (m->retain && !cfg->retain_available)
        return MQTT_RC_RETAIN_NOT_SUPPORTED;
    if (cfg->message_size_limit && m->payload.len > cfg->message_size_limit)
        return MQTT_RC_QUOTA_EXCEEDED;
    if ((props->has & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) && props->payload_format == 1 &&
        !mqtt_utf8_valid(m->payload))
        return MQTT_RC_PAYLOAD_FORMAT_INVALID;
    if (access_publish(h, who, m->topic) != 0)
        return MQTT_RC_NOT_AUTHORIZED;
    if (m->qos > 0 && h->all->store &&
        atomic_load_explicit(&h->all->store_full, memory_order_relaxed))
        return MQTT_RC_QUOTA_EXCEEDED;
    /* memory_limit: a client's QoS 0 would be dropped silently from 90 %, its QoS 1/2 refused
     * from 100 %; an application is told either way. */
    enum mem_level level = overload_level(h);
    if (level == MEM_FULL || (level == MEM_HIGH && m->qos == 0))
        return MQTT_RC_QUOTA_EXCEEDED;
    return 0;
}

static enum app_p2p
p2p_outcome(struct hub *h, struct slice topic)
{
    struct slice parent, target;

    if (p2p_classify(&h->p2p, topic, &parent, &target) != P2P_DIRECT)
        return APP_P2P_NONE;
    struct session *s = sess_find(h, target);
    if (!s)
        return APP_P2P_UNKNOWN;
    return atomic_load_explicit(&s->online, memory_order_relaxed) ? APP_P2P_DELIVERED
                                                                   : APP_P2P_QUEUED;
}

int
app_publish(struct hub *h, struct auth_identity *who, const struct app_message *am,
            struct app_publish_result *r)
{
    struct mqtt_props props;
    int rc;

    memset(r, 0, sizeof(*r));
    h->now = clock_now_ms();
    if ((rc = mqtt_props_decode(am->props, MQTT_PUBLISH, false, &props)) != 0)
        return rc;
    if ((rc = check_message(h, who, am, &props)) != 0)
        return rc;
    struct msg *m = msg_new(am->topic, am->payload, am->props.len ? &props : NULL, am->qos,
                            am->retain, 0, h->now);
    if (!m)
        return MQTT_RC_QUOTA_EXCEEDED;
    /* Told before routing: a QoS 0 message to an offline target is dropped by the route,
     * yet the target was known and offline, which is what "queued" reports for QoS 1/2. */
    r->p2p = p2p_outcome(h, am->topic);
    size_t ops = persist_ops(h);
    rc = hub_route(h, NULL, m);
    msg_unref(m);
    r->id = ((uint64_t)h->index << 48) | ++h->api_msg_seq;
    r->wait_commit = am->qos > 0 && persist_ops(h) != ops;
    h->stats.api_published++;
    log_debug("api publish id=%016llx topic=%.*s qos=%u rc=0x%02x", (unsigned long long)r->id,
              SLICE_FMT(am->topic), am->qos, rc);
    return rc;
}

void
app_on_commit(struct hub *h, struct app_commit_wait *w)
{
    w->gen = h->batch_gen;
    list_push(&h->commit_waits, &w->link);
}

void
app_commit_cancel(struct app_commit_wait *w)
{
    list_remove(&w->link);
}

void
app_committed(struct hub *h, uint64_t gen, int rc)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &h->commit_waits)
    {
        struct app_commit_wait *w = list_entry(pos, struct app_commit_wait, link);
        if (w->gen > gen)
            break; /* waits are in batch order */
        list_remove(&w->link);
        w->fn(w, rc);
    }
}

/* ---- questions about clients ---- */

struct app_query {
    struct hub *hub;              /* the asking hub */
    enum app_query_kind kind;
    app_query_done_fn *done;
    void *ud;
    size_t n;
    size_t pending;               /* answers not yet back */
    bool abandoned;               /* the requester went away */
    struct slice *ids;            /* [n], into `id_bytes` */
    char *id_bytes;
    struct app_client_info *info; /* [n]; slot i written by the owner of ids[i] */
};

static void
fill_info(struct hub *h, struct session *s, struct app_client_info *info)
{
    struct client *c = s->client;

    info->session = true;
    info->online = c != NULL;
    info->persistent = s->expiry > 0;
    info->version = s->version;
    info->queued = s->n_queued;
    info->inflight = s->n_inflight;
    if (c) {
        info->connected_since = c->connack_wall_ms;
        info->connection_id = c->conn_id;
        snprintf(info->address, sizeof(info->address), "%s", conn_peer(c->conn));
    }
}

static void
kick(struct session *s, bool discard, struct app_client_info *info)
{
    if (s->client) {
        /* The will is published: the connection did not end by the client's choice. */
        log_notice("client disconnected by the api client=%s discard=%d", s->id, discard);
        s->discard = discard;
        client_kick(s->client, MQTT_RC_ADMIN_ACTION);
        info->kicked = true;
    } else if (discard) {
        log_notice("session discarded by the api client=%s", s->id);
        sess_destroy(s);
        info->kicked = true;
    }
}

/* On the owner: answer slot i. */
static void
answer(struct hub *h, struct app_query *q, size_t i)
{
    struct app_client_info *info = &q->info[i];
    struct session *s = sess_find(h, q->ids[i]);

    memset(info, 0, sizeof(*info));
    if (!s || s->hub != h || s->is_dead)
        return;
    fill_info(h, s, info);
    if (q->kind != APP_Q_INFO)
        kick(s, q->kind == APP_Q_KICK_DISCARD, info);
}

static void
query_free(struct app_query *q)
{
    free(q->ids);
    free(q->id_bytes);
    free(q->info);
    free(q);
}

/* One answer is back on the asking hub. */
static void
answered(struct app_query *q)
{
    if (--q->pending > 0)
        return;
    if (q->abandoned)
        query_free(q);
    else
        q->done(q->ud, q);
}

struct app_query *
app_query_new(struct hub *h, const struct slice *ids, size_t n, enum app_query_kind kind,
              app_query_done_fn *done, void *ud)
{
    struct app_query *q = xcalloc(1, sizeof(*q));
    size_t total = 0;

    q->hub = h;
    q->kind = kind;
    q->done = done;
    q->ud = ud;
    q->n = n;
    q->ids = xcalloc(n ? n : 1, sizeof(*q->ids));
    q->info = xcalloc(n ? n : 1, sizeof(*q->info));
    for (size_t i = 0; i < n; i++)
        total += ids[i].len;
    q->id_bytes = xmalloc(total + 1);
    total = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(q->id_bytes + total, ids[i].p, ids[i].len);
        q->ids[i] = slice_make(q->id_bytes + total, ids[i].len);
        total += ids[i].len;
    }
    return q;
}

void
app_query_start(struct app_query *q)
{
    struct hub *h = q->hub;
    size_t n = q->n;

    h->now = clock_now_ms();
    /* One extra count while posting, so that local answers cannot finish the query early. */
    q->pending = n + 1;
    for (size_t i = 0; i < n; i++) {
        struct hub *owner = hub_owner(h, q->ids[i]);
        if (owner == h) {
            answer(h, q, i);
            q->pending--;
            continue;
        }
        struct hub_item *it = hub_post(h, owner);
        it->op = OP_APP_QUERY;
        it->u.app.q = q;
        it->u.app.index = (uint32_t)i;
    }
    answered(q); /* the last use of q here: `done` may free it */
}

size_t
app_query_count(const struct app_query *q)
{
    return q->n;
}

struct slice
app_query_id(const struct app_query *q, size_t i)
{
    return q->ids[i];
}

const struct app_client_info *
app_query_info(const struct app_query *q, size_t i)
{
    return &q->info[i];
}

void
app_query_free(struct app_query *q)
{
    if (!q)
        return;
    if (q->pending > 0)
        q->abandoned = true; /* freed by its last answer */
    else
        query_free(q);
}

void
app_on_item(struct hub *h, struct hub_item *it)
{
    struct app_query *q = it->u.app.q;

    if (it->op == OP_APP_QUERY) {
        h->now = clock_now_ms();
        answer(h, q, it->u.app.index);
        struct hub_item *back = hub_post(h, q->hub);
        back->op = OP_APP_ANSWER;
        back->u.app = it->u.app;
    } else {
        answered(q);
    }
}

void
app_dispose_item(struct hub_item *it)
{
    struct app_query *q = it->u.app.q;

    /* Shutdown: the requester has gone (its server was freed first), so only the count
     * matters. Runs on one thread, after every loop has returned. */
    q->abandoned = true;
    answered(q);
}

/* ---- application connections ---- */

bool
app_admit(struct hub *h, const char *peer, const struct config_listener *li)
{
    _Atomic size_t *count = &h->all->listener_conns[li - h->cfg->listeners];

    h->now = clock_now_ms();
    if (!overload_accept(h, peer))
        return false;
    if (overload_level(h) != MEM_OK) {
        h->stats.conns_mem_refused++;
        return false;
    }
    if (li->max_connections >= 0 &&
        atomic_fetch_add_explicit(count, 1, memory_order_relaxed) >= (size_t)li->max_connections) {
        atomic_fetch_sub_explicit(count, 1, memory_order_relaxed);
        h->stats.conns_full_refused++;
        return false;
    }
    if (li->max_connections < 0)
        atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
    return true;
}

void
app_release(struct hub *h, const struct config_listener *li)
{
    atomic_fetch_sub_explicit(&h->all->listener_conns[li - h->cfg->listeners], 1,
                              memory_order_relaxed);
}

/* ---- counters ---- */

void
app_gauges(struct hub *h)
{
    struct list *pos;
    uint64_t queued = 0, inflight = 0;

    list_for_each(pos, &h->clients)
    {
        struct client *c = list_entry(pos, struct client, link);
        if (c->sess && c->sess->hub == h) {
            queued += c->sess->n_queued;
            inflight += c->sess->n_inflight;
        }
    }
    list_for_each(pos, &h->offline)
    {
        struct session *s = list_entry(pos, struct session, offline_link);
        queued += s->n_queued;
        inflight += s->n_inflight;
    }
    h->stats.queued = queued;
    h->stats.inflight = inflight;
}

void
app_metrics_read(struct hubs *hs, struct app_metrics *out)
{
    memset(out, 0, sizeof(*out));
    out->n_workers = hs->n_hubs;
    out->loop_lag_ms = xcalloc(hs->n_hubs, sizeof(*out->loop_lag_ms));
    out->loop_lag_max_ms = xcalloc(hs->n_hubs, sizeof(*out->loop_lag_max_ms));
    pthread_mutex_lock(&hs->stats_lock);
    for (unsigned k = 0; k < hs->n_hubs; k++) {
        struct hub_stats *st = &hs->snapshots[k];
        for (int q = 0; q < 3; q++) {
            out->msgs_received[q] += st->msgs_received_qos[q];
            out->msgs_sent[q] += st->msgs_sent_qos[q];
            out->payload_in[q] += st->payload_in_qos[q];
            out->payload_out[q] += st->payload_out_qos[q];
        }
        out->bytes_in += st->bytes_in;
        out->bytes_out += st->bytes_out;
        out->api_published += st->api_published;
        out->p2p_routed += st->p2p_routed;
        out->p2p_queued += st->p2p_queued;
        out->p2p_dropped += st->p2p_dropped;
        out->p2p_refused += st->p2p_refused;
        out->dropped += st->msgs_dropped;
        out->dropped_qos0_offline += st->dropped_qos0_offline;
        out->dropped_qos0_slow += st->dropped_qos0_slow;
        out->dropped_queue_full += st->dropped_queue_full;
        out->dropped_queue_oldest += st->dropped_queue_oldest;
        out->publish_refused_full += st->publish_refused_full;
        out->publish_mem_dropped += st->msgs_mem_dropped;
        out->publish_mem_refused += st->msgs_mem_refused;
        out->conns_rate_refused += st->conns_rate_refused;
        out->conns_full_refused += st->conns_full_refused;
        out->conns_mem_refused += st->conns_mem_refused;
        out->connect_timeouts += st->connect_timeouts;
        out->slow_senders += st->slow_senders;
        out->write_stalls += st->write_stalls;
        out->clients_total += st->clients_total;
        out->sessions += st->n_sessions;
        out->queued += st->queued;
        out->inflight += st->inflight;
        out->loop_lag_ms[k] = st->loop_lag_ms;
        out->loop_lag_max_ms[k] = st->loop_lag_max_ms;
    }
    pthread_mutex_unlock(&hs->stats_lock);
    out->connections = atomic_load_explicit(&hs->n_connected, memory_order_relaxed);
    out->heap_bytes = atomic_load_explicit(&hs->mem_used, memory_order_relaxed);
    out->heap_peak_bytes = atomic_load_explicit(&hs->mem_peak, memory_order_relaxed);
    out->heap_limit_bytes = hs->cfg->memory_limit;
    out->memory_level = (unsigned)atomic_load_explicit(&hs->mem_level, memory_order_relaxed);
    pthread_mutex_lock(&hs->retained_lock);
    out->retained = retain_count(&hs->retained);
    pthread_mutex_unlock(&hs->retained_lock);
    if (hs->store) {
        out->store = true;
        store_stats(hs->store, &out->store_stats);
        out->store_full = atomic_load_explicit(&hs->store_full, memory_order_relaxed);
    }
}

void
app_metrics_fini(struct app_metrics *m)
{
    free(m->loop_lag_ms);
    free(m->loop_lag_max_ms);
}

/* ---- connection events ---- */

static void
publish_event(struct client *c, const char *what, json_t *body)
{
    struct hub *h = c->hub;
    struct session *s = c->sess;
    size_t cap = sizeof("$SYS/brokers//clients//disconnected") + sizeof(h->all->node) + s->id_len;
    char *topic = xmalloc(cap);

    json_object_set_new(body, "client_id", json_stringn(s->id, s->id_len));
    json_object_set_new(body, "connection_id", json_integer((json_int_t)c->conn_id));
    json_object_set_new(body, "address", json_string(conn_peer(c->conn)));
    json_object_set_new(body, "time_ms", json_integer(app_wall_ms()));
    json_object_set_new(body, "protocol_version", json_integer(c->version));
    int n = snprintf(topic, cap, "$SYS/brokers/%s/clients/%.*s/%s", h->all->node,
                     (int)s->id_len, s->id, what);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    /* A client ID with a wildcard character cannot be part of a topic name. */
    if (text && n > 0 && (size_t)n < cap && mqtt_topic_name_valid(slice_make(topic, (size_t)n))) {
        struct msg *m = msg_new(slice_make(topic, (size_t)n), slice_cstr(text), NULL, 0, false,
                                0, h->now);
        if (m) {
            hub_route(h, NULL, m);
            msg_unref(m);
        }
    }
    free(text);
    free(topic);
}

void
app_event_connected(struct client *c)
{
    if (!c->hub->cfg->client_events || !c->sess)
        return;
    json_t *body = json_object();
    json_object_set_new(body, "persistent_session", json_boolean(c->sess->expiry > 0));
    publish_event(c, "connected", body);
}

void
app_event_disconnected(struct client *c)
{
    if (!c->hub->cfg->client_events || !c->sess)
        return;
    json_t *body = json_object();
    json_object_set_new(body, "reason",
                        json_string(c->end_reason ? c->end_reason : "connection closed"));
    publish_event(c, "disconnected", body);
}
