/*
 * opts.c - petrel-bench's command line.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "petrel-bench/bench.h"

static const char *const scenario_names[] = {"pairs",  "fanin", "fanout", "p2p",
                                             "shared", "conn",  "http"};

const char *
opts_scenario_name(enum scenario s)
{
    return scenario_names[s];
}

void
opts_usage(FILE *f)
{
    fputs("usage: petrel-bench [options]\n"
          "  --scenario S        pairs | fanin | fanout | p2p | shared | conn | http  (pairs)\n"
          "  --host H --port P   broker address                    (127.0.0.1 1883)\n"
          "  --mqtt 3|5          protocol: 3 is MQTT 3.1.1          (3)\n"
          "  --qos 0|1|2         publish and subscribe QoS          (0)\n"
          "  --size BYTES        payload size, at least 16          (64)\n"
          "  --rate R            messages/s per publisher; 0 = unlimited, closed loop   (0)\n"
          "  --inflight N        QoS 1/2 window per publisher       (20)\n"
          "  --outstanding B     bytes a publisher may have sent and not yet seen delivered\n"
          "                      (any QoS; bounds what the broker buffers)  (16384)\n"
          "  --duration S        measured seconds                   (10)\n"
          "  --warmup S          seconds before measuring           (2)\n"
          "  --drain S           at most this long for stragglers   (2)\n"
          "  --settle S          wait this long after set-up before starting (0)\n"
          "  --clients N         pairs (pairs, p2p), connections (conn), receivers (http) (10)\n"
          "  --publishers P      fanin, shared                      (= clients)\n"
          "  --subscribers S     fanout, shared                     (= clients)\n"
          "  --background-subs N subscribe N unrelated filters first (0)\n"
          "  --background-pattern F   those filters, one %u         (bg/%u/+/x)\n"
          "  --conn-rate R       conn: connections opened per second; 0 = unlimited (0)\n"
          "  --connecting N      connection set-ups in progress at once, per thread (64)\n"
          "  --parent TOPIC      p2p parent topic                   (app; http: bench)\n"
          "  --p2p-subscribe     p2p receivers also subscribe to their own P2P topic\n"
          "                      (to run the p2p load on a broker without P2P)\n"
          "  --persistent        persistent sessions (clean session 0; MQTT 5: expiry 300 s),\n"
          "                      so that a durable broker stores the traffic\n"
          "  --group NAME        shared subscription group          (pb)\n"
          "  --client-prefix S   client ids and topics start with S (pb<pid>)\n"
          "  --threads N         event loops                        (1)\n"
          "  --keepalive S       MQTT keepalive                     (60)\n"
          "  --quiet             no summary on stderr\n"
          "  --tls               connect over TLS; the certificate must name --host\n"
          "  --cafile FILE       --tls: CA certificates to trust    (the system's)\n"
          "  --ws                MQTT over WebSocket, sub-protocol mqtt (wss with --tls)\n"
          "  --ws-path PATH      --ws: the request path             (/mqtt)\n"
          "http: --clients MQTT receivers (never subscribing) get P2P messages that HTTP\n"
          "keep-alive connections POST to the broker's API, round-robin; --rate and\n"
          "--outstanding count messages per connection\n"
          "  --http-port P       the API listener's port            (8080)\n"
          "  --http-key KEY      a write key of the API (Bearer); required\n"
          "  --http-conns H      HTTP connections                   (1)\n"
          "  --http-batch B      POST /api/v1/publish/batch with B messages (1-1000);\n"
          "                      0: one message per POST /api/v1/publish  (0)\n"
          "  --http-pipeline N   requests outstanding per connection (1)\n"
          "Prints one JSON line per run on stdout; exits 1 when the run could not be done.\n",
          f);
}

static int
fail(char *err, size_t err_len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, err_len, f, ap);
    va_end(ap);
    return -1;
}

static int
num(const char *name, const char *s, double lo, double hi, double *out, char *err, size_t err_len)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return fail(err, err_len, "--%s: '%s' is not a number from %g to %g", name, s, lo, hi);
    *out = v;
    return 0;
}

static int
integer(const char *name, const char *s, double lo, double hi, uint32_t *out, char *err,
        size_t err_len)
{
    double v = 0;
    if (num(name, s, lo, hi, &v, err, err_len) != 0)
        return -1;
    if (v != floor(v))
        return fail(err, err_len, "--%s: '%s' is not a whole number", name, s);
    *out = (uint32_t)v;
    return 0;
}

/* A background pattern must hold exactly one %u and no other conversion. */
static bool
pattern_ok(const char *f)
{
    int n = 0;
    for (const char *p = f; *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == 'u')
            n++;
        else
            return false;
        p++;
    }
    return n == 1 && strlen(f) < 512;
}

enum {
    O_HOST = 256,
    O_PORT,
    O_SCEN,
    O_MQTT,
    O_QOS,
    O_SIZE,
    O_RATE,
    O_INFL,
    O_Q0W,
    O_DUR,
    O_WARM,
    O_DRAIN,
    O_CLIENTS,
    O_PUBS,
    O_SUBS,
    O_BG,
    O_BGPAT,
    O_CRATE,
    O_PARENT,
    O_P2PSUB,
    O_PERSIST,
    O_GROUP,
    O_PREFIX,
    O_THREADS,
    O_KA,
    O_QUIET,
    O_HELP,
    O_CONNECTING,
    O_SETTLE,
    O_TLS,
    O_CAFILE,
    O_WS,
    O_WSPATH,
    O_HPORT,
    O_HKEY,
    O_HCONNS,
    O_HBATCH,
    O_HPIPE,
};

static const struct option longopts[] = {
    {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},
    {"scenario", required_argument, NULL, O_SCEN},
    {"mqtt", required_argument, NULL, O_MQTT},
    {"qos", required_argument, NULL, O_QOS},
    {"size", required_argument, NULL, O_SIZE},
    {"rate", required_argument, NULL, O_RATE},
    {"inflight", required_argument, NULL, O_INFL},
    {"outstanding", required_argument, NULL, O_Q0W},
    {"duration", required_argument, NULL, O_DUR},
    {"warmup", required_argument, NULL, O_WARM},
    {"drain", required_argument, NULL, O_DRAIN},
    {"settle", required_argument, NULL, O_SETTLE},
    {"clients", required_argument, NULL, O_CLIENTS},
    {"publishers", required_argument, NULL, O_PUBS},
    {"subscribers", required_argument, NULL, O_SUBS},
    {"background-subs", required_argument, NULL, O_BG},
    {"background-pattern", required_argument, NULL, O_BGPAT},
    {"conn-rate", required_argument, NULL, O_CRATE},
    {"connecting", required_argument, NULL, O_CONNECTING},
    {"parent", required_argument, NULL, O_PARENT},
    {"p2p-subscribe", no_argument, NULL, O_P2PSUB},
    {"persistent", no_argument, NULL, O_PERSIST},
    {"group", required_argument, NULL, O_GROUP},
    {"client-prefix", required_argument, NULL, O_PREFIX},
    {"threads", required_argument, NULL, O_THREADS},
    {"keepalive", required_argument, NULL, O_KA},
    {"quiet", no_argument, NULL, O_QUIET},
    {"tls", no_argument, NULL, O_TLS},
    {"cafile", required_argument, NULL, O_CAFILE},
    {"ws", no_argument, NULL, O_WS},
    {"ws-path", required_argument, NULL, O_WSPATH},
    {"http-port", required_argument, NULL, O_HPORT},
    {"http-key", required_argument, NULL, O_HKEY},
    {"http-conns", required_argument, NULL, O_HCONNS},
    {"http-batch", required_argument, NULL, O_HBATCH},
    {"http-pipeline", required_argument, NULL, O_HPIPE},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void
defaults(struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 1883;
    o->scenario = SCEN_PAIRS;
    o->version = 4;
    o->qos = 0;
    o->size = 64;
    o->rate = 0;
    o->inflight = 20;
    o->outstanding = 16384;
    o->duration = 10;
    o->warmup = 2;
    o->drain = 2;
    o->clients = 10;
    o->background_pattern = "bg/%u/+/x";
    o->parent = NULL; /* by scenario, after parsing */
    o->group = "pb";
    o->client_prefix = NULL;
    o->threads = 1;
    o->keepalive = 60;
    o->connecting = 64;
    o->ws_path = "/mqtt";
    o->http_port = 8080;
    o->http_conns = 1;
    o->http_pipeline = 1;
}

static int
one(struct opts *o, int c, const char *a, char *err, size_t n)
{
    uint32_t u;

    switch (c) {
    case O_HOST:
        o->host = a;
        return 0;
    case O_PORT:
        if (integer("port", a, 1, 65535, &u, err, n))
            return -1;
        o->port = (uint16_t)u;
        return 0;
    case O_SCEN:
        for (size_t i = 0; i < sizeof(scenario_names) / sizeof(*scenario_names); i++) {
            if (strcmp(a, scenario_names[i]) == 0) {
                o->scenario = (enum scenario)i;
                return 0;
            }
        }
        return fail(err, n,
                    "--scenario: '%s' is not pairs, fanin, fanout, p2p, shared, conn or http", a);
    case O_MQTT:
        if (strcmp(a, "3") == 0 || strcmp(a, "4") == 0 || strcmp(a, "3.1.1") == 0)
            o->version = 4;
        else if (strcmp(a, "5") == 0)
            o->version = 5;
        else
            return fail(err, n, "--mqtt: '%s' is not 3 (3.1.1) or 5", a);
        return 0;
    case O_QOS:
        if (integer("qos", a, 0, 2, &u, err, n))
            return -1;
        o->qos = (uint8_t)u;
        return 0;
    case O_SIZE:
        return integer("size", a, WIRE_PAYLOAD_MIN, 16 * 1024 * 1024, &o->size, err, n);
    case O_RATE:
        return num("rate", a, 0, 1e9, &o->rate, err, n);
    case O_INFL:
        return integer("inflight", a, 1, 65535, &o->inflight, err, n);
    case O_Q0W:
        return integer("outstanding", a, 1, 1 << 30, &o->outstanding, err, n);
    case O_DUR:
        return num("duration", a, 0.1, 86400, &o->duration, err, n);
    case O_WARM:
        return num("warmup", a, 0, 3600, &o->warmup, err, n);
    case O_DRAIN:
        return num("drain", a, 0, 60, &o->drain, err, n);
    case O_SETTLE:
        return num("settle", a, 0, 600, &o->settle, err, n);
    case O_CLIENTS:
        return integer("clients", a, 1, 1000000, &o->clients, err, n);
    case O_PUBS:
        return integer("publishers", a, 1, 1000000, &o->publishers, err, n);
    case O_SUBS:
        return integer("subscribers", a, 1, 1000000, &o->subscribers, err, n);
    case O_BG:
        return integer("background-subs", a, 0, 10000000, &o->background_subs, err, n);
    case O_BGPAT:
        if (!pattern_ok(a))
            return fail(err, n, "--background-pattern: '%s' must hold exactly one %%u", a);
        o->background_pattern = a;
        return 0;
    case O_CRATE:
        return num("conn-rate", a, 0, 1e7, &o->conn_rate, err, n);
    case O_CONNECTING:
        return integer("connecting", a, 1, 100000, &o->connecting, err, n);
    case O_PARENT:
        if (!*a || *a == '$' || strpbrk(a, "/+#"))
            return fail(err, n, "--parent: '%s' must be one non-empty topic level", a);
        o->parent = a;
        return 0;
    case O_P2PSUB:
        o->p2p_subscribe = true;
        return 0;
    case O_PERSIST:
        o->persistent = true;
        return 0;
    case O_GROUP:
        if (!*a || strpbrk(a, "/+#"))
            return fail(err, n, "--group: '%s' is not a valid share name", a);
        o->group = a;
        return 0;
    case O_PREFIX:
        if (!*a || strpbrk(a, "/+#") || strlen(a) > 200)
            return fail(err, n, "--client-prefix: '%s' must be 1-200 characters, no / + #", a);
        o->client_prefix = a;
        return 0;
    case O_THREADS:
        return integer("threads", a, 1, 256, &o->threads, err, n);
    case O_KA:
        if (integer("keepalive", a, 0, 65535, &u, err, n))
            return -1;
        o->keepalive = (uint16_t)u;
        return 0;
    case O_QUIET:
        o->quiet = true;
        return 0;
    case O_TLS:
        o->tls = true;
        return 0;
    case O_CAFILE:
        o->cafile = a;
        return 0;
    case O_WS:
        o->ws = true;
        return 0;
    case O_WSPATH:
        if (*a != '/' || strpbrk(a, " \r\n") || strlen(a) > 512)
            return fail(err, n, "--ws-path: '%s' must start with / and hold no spaces", a);
        o->ws_path = a;
        return 0;
    case O_HPORT:
        if (integer("http-port", a, 1, 65535, &u, err, n))
            return -1;
        o->http_port = (uint16_t)u;
        return 0;
    case O_HKEY:
        if (!*a || strpbrk(a, " \t\r\n") || strlen(a) > 512)
            return fail(err, n, "--http-key: 1-512 characters, no white space");
        o->http_key = a;
        return 0;
    case O_HCONNS:
        return integer("http-conns", a, 1, 100000, &o->http_conns, err, n);
    case O_HBATCH:
        return integer("http-batch", a, 0, 1000, &o->http_batch, err, n);
    case O_HPIPE:
        return integer("http-pipeline", a, 1, 1024, &o->http_pipeline, err, n);
    default:
        return fail(err, n, "unknown option (try --help)");
    }
}

int
opts_parse(int argc, char **argv, struct opts *o, char *err, size_t err_len)
{
    int c;

    defaults(o);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == O_HELP) {
            opts_usage(stdout);
            return 1;
        }
        if (c == '?' || c == ':')
            return fail(err, err_len, "bad or incomplete option '%s' (try --help)",
                        argv[optind - 1]);
        if (one(o, c, optarg, err, err_len) != 0)
            return -1;
    }
    if (optind < argc)
        return fail(err, err_len, "unexpected argument '%s'", argv[optind]);
    if (!o->publishers)
        o->publishers = o->clients;
    if (!o->subscribers)
        o->subscribers = o->clients;
    if (o->cafile && !o->tls)
        return fail(err, err_len, "--cafile needs --tls");
    if (o->outstanding < o->size)
        o->outstanding = o->size + 1024;
    if (!o->parent)
        o->parent = o->scenario == SCEN_HTTP ? "bench" : "app";
    if (o->scenario == SCEN_HTTP) {
        if (!o->http_key)
            return fail(err, err_len, "the http scenario needs --http-key");
        if (o->tls || o->ws)
            return fail(err, err_len, "the http scenario runs over plain TCP only");
    }
    return 0;
}
