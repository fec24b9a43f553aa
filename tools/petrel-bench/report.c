/*
 * report.c - losses, duplicates and percentiles of a finished run, as JSON and as text.
 *
 * Lost: for each (publisher, receiver) stream, the sequence numbers the publisher sent (at QoS
 * 0) or had acknowledged (QoS 1/2: every one sent but those still unacknowledged at the end or
 * refused) that the receiver never got by the end of the drain. For a shared group the members'
 * streams from one publisher are united first: each message is owed to the group once, and a
 * message received by two members counts as duplicated. In the http scenario a connection's
 * messages are spread over the receivers (hwire.h): each stream owes its share of what was
 * answered 200, and exempt messages count against the stream they were meant for.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "petrel-bench/hwire.h"
#include "petrel-bench/report.h"

/* Sequences of `p` that need not have arrived: unacknowledged or refused. */
static uint32_t *
exempt_of(const struct pub *p, size_t *n)
{
    size_t cap = p->window + p->n_refused, k = 0;
    uint32_t *e = xcalloc(cap ? cap : 1, sizeof(*e));
    for (uint32_t i = 0; i < p->window; i++)
        if (p->slot_state && p->slot_state[i] == 1)
            e[k++] = p->slot_seq[i];
    for (uint32_t i = 0; i < p->n_refused; i++)
        e[k++] = p->refused[i];
    *n = k;
    return e;
}

/* The http scenario: stream (connection i, receiver j) is numbered seq / n_recvs. */
static void
count_http(struct result *res, const struct plan *p)
{
    uint32_t h = p->n_pubs, n = p->n_recvs;

    for (uint32_t i = 0; i < h; i++) {
        const struct pub *pb = &p->pubs[i];
        uint32_t per = p->o->http_batch ? p->o->http_batch : 1;
        size_t n_all = pb->n_refused + (size_t)pb->n_req * per;
        uint32_t *ex = xcalloc(n_all + 1, sizeof(*ex));
        if (pb->n_refused)
            memcpy(ex, pb->refused, pb->n_refused * sizeof(*ex));
        /* unanswered requests at the end (the drain ran out): not owed either */
        for (uint32_t q = 0; q < pb->n_req; q++) {
            uint32_t first = pb->req_first[(pb->req_head + q) % p->o->http_pipeline];
            for (uint32_t m = 0; m < per; m++)
                ex[pb->n_refused + q * per + m] = first + m;
        }
        uint32_t *mine = xcalloc(n_all + 1, sizeof(*mine));
        for (uint32_t j = 0; j < n; j++) {
            const struct track *t = &p->recvs[j].streams[h == 1 ? 0 : i];
            size_t n_mine = 0;
            for (size_t e = 0; e < n_all; e++)
                if (hwire_target(i, ex[e], h, n) == j)
                    mine[n_mine++] = ex[e] / n;
            res->lost += track_missing(t, hwire_stream_sent(i, j, pb->sent, h, n), mine, n_mine);
            res->duplicated += t->n_dup;
            res->out_of_order += t->n_ooo;
        }
        free(mine);
        free(ex);
    }
}

static void
count_streams(struct result *res, const struct plan *p)
{
    const struct opts *o = p->o;

    if (o->scenario == SCEN_HTTP) {
        count_http(res, p);
        return;
    }
    if (o->scenario == SCEN_SHARED) {
        for (uint32_t i = 0; i < p->n_pubs; i++) {
            struct track u;
            uint64_t unique = 0;
            size_t n_ex;
            track_init(&u);
            for (uint32_t j = 0; j < p->n_recvs; j++) {
                const struct track *t = &p->recvs[j].streams[i];
                track_union(&u, t);
                unique += t->n_unique;
                res->duplicated += t->n_dup;
                res->out_of_order += t->n_ooo;
            }
            uint32_t *ex = exempt_of(&p->pubs[i], &n_ex);
            res->lost += track_missing(&u, p->pubs[i].sent, ex, n_ex);
            res->duplicated += unique - u.n_unique;
            free(ex);
            track_fini(&u);
        }
        return;
    }
    for (uint32_t j = 0; j < p->n_recvs; j++) {
        const struct recv *r = &p->recvs[j];
        for (uint32_t k = 0; k < r->n_src; k++) {
            const struct pub *pb = &p->pubs[r->n_src == 1 ? r->src0 : k];
            const struct track *t = &r->streams[k];
            size_t n_ex;
            uint32_t *ex = exempt_of(pb, &n_ex);
            res->lost += track_missing(t, pb->sent, ex, n_ex);
            res->duplicated += t->n_dup;
            res->out_of_order += t->n_ooo;
            free(ex);
        }
    }
}

void
report_collect(struct result *res, const struct plan *p, struct drive *const *d, uint32_t n_threads)
{
    uint64_t first = UINT64_MAX, last = 0;

    hist_init(&res->lat);
    hist_init(&res->http_lat);
    for (uint32_t t = 0; t < n_threads; t++) {
        struct drive_out *o = drive_out(d[t]);
        hist_merge(&res->http_lat, &o->http_lat);
        res->http_answers += o->http_answers;
        res->http_answers_total += o->http_answers_all;
        res->http_item_errors += o->http_item_errors;
        for (int s = 0; s < 600; s++) {
            res->http_status[s] += o->http_status[s];
            if (s != 200)
                res->http_non200 += o->http_status[s];
        }
        hist_merge(&res->lat, p->o->scenario == SCEN_CONN ? &o->conn_lat : &o->lat);
        res->received += o->received;
        res->received_total += o->received_all;
        res->errors += o->errors;
        res->dropped += o->dropped;
        res->connected += o->n_connected;
        res->connect_failed += atomic_load(&o->n_failed);
        if (o->t_first_connect && o->t_first_connect < first)
            first = o->t_first_connect;
        if (o->t_last_connack > last)
            last = o->t_last_connack;
        if (!res->error && o->reason[0] && (o->errors || atomic_load(&o->n_failed)))
            res->error = o->reason;
    }
    for (uint32_t i = 0; i < p->n_pubs; i++) {
        res->sent += p->pubs[i].sent_measured;
        res->sent_total += p->pubs[i].sent;
        res->acked_total += p->pubs[i].n_acked;
    }
    res->msgs_per_s = res->duration_s > 0 ? (double)res->received / res->duration_s : 0;
    res->http_req_per_s = res->duration_s > 0 ? (double)res->http_answers / res->duration_s : 0;
    if (p->o->scenario == SCEN_CONN && last > first) {
        res->connect_s = (double)(last - first) / 1e9;
        res->connect_rate = (double)res->connected / res->connect_s;
    }
    count_streams(res, p);
}

static double
us(const struct hist *h, double q)
{
    return (double)hist_quantile(h, q) / 1000.0;
}

static void
json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void
report_json(FILE *f, const struct opts *o, const struct plan *p, const struct result *res)
{
    uint32_t clients = o->scenario == SCEN_CONN ? p->n_idle : p->n_pubs + p->n_recvs;

    fprintf(f, "{\"scenario\":\"%s\",\"qos\":%u,\"mqtt\":%d,\"clients\":%u,\"size\":%u,",
            opts_scenario_name(o->scenario), o->qos, o->version == 5 ? 5 : 3, clients, o->size);
    fprintf(f, "\"duration_s\":%.3f,\"sent\":%llu,\"received\":%llu,\"msgs_per_s\":%.1f,",
            res->duration_s, (unsigned long long)res->sent, (unsigned long long)res->received,
            res->msgs_per_s);
    fprintf(f, "\"lat_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},",
            us(&res->lat, 0.5), us(&res->lat, 0.99), us(&res->lat, 0.999),
            (double)res->lat.max / 1000.0 * (res->lat.n > 0));
    fprintf(f, "\"lost\":%llu,\"duplicated\":%llu,\"out_of_order\":%llu,\"errors\":%llu,",
            (unsigned long long)res->lost, (unsigned long long)res->duplicated,
            (unsigned long long)res->out_of_order, (unsigned long long)res->errors);
    fprintf(f,
            "\"publishers\":%u,\"subscribers\":%u,\"threads\":%u,\"rate\":%g,"
            "\"inflight\":%u,\"background_subs\":%u,\"warmup_s\":%g,\"setup_s\":%.3f,"
            "\"settle_s\":%g,",
            p->n_pubs, p->n_recvs, o->threads, o->rate, o->inflight, o->background_subs, o->warmup,
            res->setup_s, o->settle);
    fprintf(f,
            "\"sent_total\":%llu,\"received_total\":%llu,\"acked_total\":%llu,"
            "\"dropped_connections\":%llu,\"bench_cpu\":%.2f",
            (unsigned long long)res->sent_total, (unsigned long long)res->received_total,
            (unsigned long long)res->acked_total, (unsigned long long)res->dropped, res->bench_cpu);
    if (o->scenario == SCEN_CONN)
        fprintf(f,
                ",\"connected\":%llu,\"connect_failed\":%llu,\"connect_s\":%.3f,"
                "\"connect_rate\":%.1f",
                (unsigned long long)res->connected, (unsigned long long)res->connect_failed,
                res->connect_s, res->connect_rate);
    if (o->scenario == SCEN_HTTP) {
        fprintf(f,
                ",\"http_conns\":%u,\"http_batch\":%u,\"http_pipeline\":%u,"
                "\"http_requests\":%llu,\"http_req_per_s\":%.1f,\"http_requests_total\":%llu,"
                "\"http_non200\":%llu,\"http_item_errors\":%llu,\"http_status\":{",
                o->http_conns, o->http_batch, o->http_pipeline,
                (unsigned long long)res->http_answers, res->http_req_per_s,
                (unsigned long long)res->http_answers_total, (unsigned long long)res->http_non200,
                (unsigned long long)res->http_item_errors);
        const char *sep = "";
        for (int s = 0; s < 600; s++) {
            if (res->http_status[s]) {
                fprintf(f, "%s\"%d\":%llu", sep, s, (unsigned long long)res->http_status[s]);
                sep = ",";
            }
        }
        fprintf(f, "},\"http_lat_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}",
                us(&res->http_lat, 0.5), us(&res->http_lat, 0.99), us(&res->http_lat, 0.999),
                (double)res->http_lat.max / 1000.0 * (res->http_lat.n > 0));
    }
    if (res->error) {
        fputs(",\"error\":", f);
        json_str(f, res->error);
    }
    fputs("}\n", f);
    fflush(f);
}

void
report_human(FILE *f, const struct opts *o, const struct plan *p, const struct result *res)
{
    fprintf(f,
            "petrel-bench %s: MQTT %s QoS %u, %u-byte payloads, %u publishers, "
            "%u receivers, %u thread(s)\n",
            opts_scenario_name(o->scenario), o->version == 5 ? "5" : "3.1.1", o->qos, o->size,
            p->n_pubs, p->n_recvs, o->threads);
    if (o->scenario == SCEN_CONN) {
        fprintf(f,
                "  connected %llu of %u (%llu failed) in %.2f s: %.0f connections/s; "
                "CONNACK p50 %.0f us, p99 %.0f us\n",
                (unsigned long long)res->connected, p->n_idle,
                (unsigned long long)res->connect_failed, res->connect_s, res->connect_rate,
                us(&res->lat, 0.5), us(&res->lat, 0.99));
    } else {
        fprintf(f, "  %.2f s measured: sent %llu, received %llu = %.0f msgs/s\n", res->duration_s,
                (unsigned long long)res->sent, (unsigned long long)res->received, res->msgs_per_s);
        fprintf(f, "  latency us: p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", us(&res->lat, 0.5),
                us(&res->lat, 0.99), us(&res->lat, 0.999),
                (double)res->lat.max / 1000.0 * (res->lat.n > 0));
        fprintf(f,
                "  lost %llu, duplicated %llu, out of order %llu (whole run: sent %llu, "
                "received %llu)\n",
                (unsigned long long)res->lost, (unsigned long long)res->duplicated,
                (unsigned long long)res->out_of_order, (unsigned long long)res->sent_total,
                (unsigned long long)res->received_total);
    }
    if (o->scenario == SCEN_HTTP)
        fprintf(f,
                "  HTTP: %llu requests = %.0f/s over %u connection(s), %u message(s) each; "
                "%llu not 200; answer p50 %.0f us, p99 %.0f us\n",
                (unsigned long long)res->http_answers, res->http_req_per_s, o->http_conns,
                o->http_batch ? o->http_batch : 1, (unsigned long long)res->http_non200,
                us(&res->http_lat, 0.5), us(&res->http_lat, 0.99));
    fprintf(f, "  errors %llu%s%s; petrel-bench used %.0f%% of a core\n",
            (unsigned long long)res->errors, res->error ? ": " : "", res->error ? res->error : "",
            res->bench_cpu * 100);
}
