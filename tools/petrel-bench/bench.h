/*
 * bench.h - petrel-bench's options and the run plan shared by its threads.
 *
 * main.c parses the options (opts.c), builds the plan (plan.c: who publishes where, who
 * receives what, which thread owns each connection), starts one drive.c loop per thread and
 * steps them through the phases below, then merges what they measured (report.c).
 *
 * In the http scenario the publishers are HTTP keep-alive connections to the broker's API.
 *
 *   SETUP_BG --> SETUP_RECV --> SETUP_PUB --> RUN (warm-up, then measured) --> DRAIN --> STOP
 *
 * Threads share nothing mutable during a run except: the phase and times main publishes, the
 * counters each thread publishes for main, each publisher's sent count (read by receivers to
 * reject impossible sequence numbers) and the per-stream delivery feedback a publisher reads
 * to bound what it has outstanding. All of those are atomics.
 */
#ifndef PETREL_BENCH_BENCH_H
#define PETREL_BENCH_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "petrel-bench/hist.h"
#include "petrel-bench/track.h"
#include "petrel-bench/wire.h"

enum scenario {
    SCEN_PAIRS = 0,
    SCEN_FANIN,
    SCEN_FANOUT,
    SCEN_P2P,
    SCEN_SHARED,
    SCEN_CONN,
    SCEN_HTTP, /* HTTP API publishes to P2P receivers (hflow.c) */
};

struct opts {
    const char *host;
    uint16_t port;
    enum scenario scenario;
    int version; /* 4 (MQTT 3.1.1) or 5 */
    uint8_t qos;
    uint32_t size;                  /* payload bytes */
    double rate;                    /* messages/s per publisher; 0: unlimited (closed loop) */
    uint32_t inflight;              /* QoS 1/2 window per publisher */
    uint32_t outstanding;           /* bytes a publisher may have sent and not seen delivered */
    double duration;                /* seconds measured */
    double warmup;                  /* seconds before, not counted */
    double drain;                   /* at most this many seconds after, for stragglers */
    double settle;                  /* seconds between set-up and the run (broker catching up) */
    uint32_t clients;               /* pairs (pairs, p2p) or connections (conn) */
    uint32_t publishers;            /* fanin, shared; 0: clients */
    uint32_t subscribers;           /* fanout, shared; 0: clients */
    uint32_t background_subs;       /* unrelated filters subscribed before the run */
    const char *background_pattern; /* printf pattern with one %u, e.g. "bg/%u/+/x" */
    double conn_rate;               /* conn: new connections/s; 0: as fast as they complete */
    uint32_t connecting;            /* connection set-ups in progress at once, per thread */
    const char *parent;             /* p2p parent topic */
    bool p2p_subscribe;             /* p2p receivers also subscribe to their own P2P topic */
    bool persistent;                /* persistent sessions: clean 0 (3.1.1), expiry 300 s (5) */
    const char *client_prefix;      /* client ids and topics start with it */
    const char *group;              /* shared subscription group */
    uint32_t threads;
    uint16_t keepalive; /* seconds */
    bool quiet;         /* no human summary on stderr */
    bool tls;           /* connect over TLS, verifying the server's certificate */
    const char *cafile; /* --tls: the CAs to trust; NULL: the system's */
    bool ws;            /* MQTT over WebSocket (over TLS with --tls) */
    const char *ws_path;
    /* http scenario */
    uint16_t http_port;
    const char *http_key;   /* Bearer key of the API */
    uint32_t http_conns;    /* keep-alive connections, each one publisher */
    uint32_t http_batch;    /* 0: POST /api/v1/publish; B: /api/v1/publish/batch of B */
    uint32_t http_pipeline; /* requests outstanding per connection */
};

/* Fill `o` from the command line. Returns 0, 1 when --help was asked (usage printed), or -1
 * with a message in err. Strings point into argv or are literals. */
int opts_parse(int argc, char **argv, struct opts *o, char *err, size_t err_len);
const char *opts_scenario_name(enum scenario s);
void opts_usage(FILE *f);

/* ---- the plan ---- */

struct link;

/* One publisher. Fields under "thread" belong to its owning thread during the run and are
 * read by main after the threads have joined. */
struct pub {
    uint32_t id; /* carried in every payload */
    uint32_t thread;
    char *client_id;
    char *topic;
    struct wire_pubtmpl tmpl;
    /* Delivery feedback, one slot per receiver of this publisher. Each receiver gets every
     * message: the slot holds the receiver's highest sequence + 1 from us, and the publisher
     * reads the minimum (a lost message does not hold it back). In a shared group each
     * message goes to one member: the slot holds how many the member got, and the publisher
     * reads the sum. */
    uint32_t n_fb;
    _Atomic uint32_t *fb;
    bool fb_sum;
    /* Sequence numbers handed to the socket layer so far; receivers reject any at or above. */
    _Atomic uint32_t sent_pub;

    /* thread */
    struct link *link;
    uint32_t sent;          /* next sequence number */
    uint64_t sent_measured; /* sent inside the measured window */
    uint64_t next_ns;       /* rate mode: when the stream started (sequence 0 due) */
    uint32_t written_off;   /* stalled messages counted as delivered (see flow.c) */
    uint32_t last_fb;       /* stall detection */
    uint64_t last_fb_ns;
    uint32_t window; /* QoS 1/2: effective inflight window */
    uint32_t n_inflight;
    uint32_t *slot_seq;  /* QoS 1/2, by packet id - 1: sequence in flight */
    uint8_t *slot_state; /* 0 free, 1 waiting PUBACK/PUBREC, 2 waiting PUBCOMP */
    uint16_t *free_ids;  /* stack of free packet ids */
    uint32_t n_free;
    uint32_t *refused; /* sequences the broker refused (MQTT 5 reason >= 0x80) */
    uint32_t n_refused, refused_cap;
    uint64_t n_acked;
    /* http scenario: requests sent and not yet answered, a ring of --http-pipeline, oldest
     * first (each holds http_batch or 1 messages from req_first[i] on) */
    uint32_t *req_first;
    uint64_t *req_t0;
    uint32_t req_head, n_req;
};

/* One receiver (subscriber, P2P target or shared group member). */
struct recv {
    uint32_t id;
    uint32_t thread;
    char *client_id;
    char **filters; /* what it subscribes to; n_filters may be 0 (p2p) */
    uint32_t n_filters;
    /* Streams: one per publisher it may hear from. With n_src == 1 the only source is
     * publisher src0; otherwise streams are indexed by publisher id. */
    uint32_t n_src;
    uint32_t src0;
    struct track *streams;
    _Atomic uint32_t **fb; /* per stream: the publisher's feedback slot for us */
    bool fb_count;         /* store counts (shared group), not highest sequences */
    struct link *link;
};

struct plan {
    const struct opts *o;
    struct pub *pubs;
    uint32_t n_pubs;
    struct recv *recvs;
    uint32_t n_recvs;
    uint32_t n_bg;     /* background connections (thread 0) */
    uint32_t n_idle;   /* conn scenario: idle connections */
    uint32_t recv_qos; /* QoS of the subscriptions */
};

/* Build the plan for `o` (which must outlive it). Aborts on out of memory. */
struct plan *plan_new(const struct opts *o);
void plan_free(struct plan *p);
/* The background filter number i, written into out (NUL-terminated). */
void plan_bg_filter(const struct opts *o, uint32_t i, char *out, size_t out_len);
/* Thread that owns idle connection i (conn scenario) or background connection i. */
uint32_t plan_idle_thread(const struct plan *p, uint32_t i);

#endif
