/*
 * main.c - start-up only: command line, configuration, logging, listeners, signals, and the
 * worker loop. Everything else lives in the modules.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "base/map.h"
#include "base/log.h"
#include "base/memstat.h"
#include "base/xalloc.h"
#include "cli/passwd.h"
#include "config/config.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/tls.h"
#include "net/ws.h"
#include "session/session.h"

#define MAX_WORKERS 256

/* One worker thread: its loop, its connections, its hub and its listening sockets. */
struct worker {
    pthread_t thread;
    struct loop *loop;
    struct conn_pool pool;
    struct hub *hub;
    struct api_worker *api;
    struct listener **listeners;
    size_t n_listeners;
};

/* What a listening socket needs at accept time, one per configured listener. */
struct listen_ctx {
    const struct config_listener *cfg;
    struct transport_factory *transports; /* NULL: plain MQTT over TCP */
    struct transport_factory *tls;        /* the TLS factory within `transports` (reload) */
};

struct app {
    struct config cfg;
    struct listen_ctx *listen;
    struct hubs *hubs;
    struct auth *auth;
    struct api *api;
    struct worker *workers;
    unsigned n_workers;
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: petrel [-c FILE] [-p PORT] [-v]\n"
                 "       petrel passwd [-c] [-b] [-D] FILE USER [PASSWORD]\n"
                 "  -c FILE   configuration file (Mosquitto format); without one, petrel\n"
                 "            listens on 127.0.0.1:1883 only\n"
                 "  -p PORT   listen on PORT instead of the configured ports (the first\n"
                 "            configured listener moves there, the others are dropped)\n"
                 "  -v        verbose: log everything, debug included\n");
}

static void
warn_config(const char *msg)
{
    log_warn("config %s", msg);
}

static void
on_accept(void *ud, struct listener *li, int fd, const char *peer)
{
    struct worker *w = ud;
    struct listen_ctx *lc = listener_data(li);
    struct transport *t = NULL;

    if (lc->transports && !(t = lc->transports->create(lc->transports, fd))) {
        log_warn("connection dropped, no transport addr=%s", peer);
        close(fd);
        return;
    }
    if (lc->cfg->protocol == LISTENER_HTTP)
        api_accept(w->api, fd, t, peer, lc->cfg);
    else
        hub_accept(w->hub, fd, t, peer, lc->cfg);
}

static void
worker_tick(void *ud)
{
    struct worker *w = ud;

    hub_tick(w->hub);
    api_worker_tick(w->api);
}

static const char *
protocol_name(enum listener_protocol p)
{
    return p == LISTENER_WEBSOCKETS ? "websockets" : p == LISTENER_HTTP ? "http" : "mqtt";
}

/* A listener with certfile speaks TLS. The keys that check clients (cafile, ...) mean nothing
 * without it, and ignoring them would leave the listener more open than written: an error. */
static int
open_tls(const struct config_listener *cl, struct listen_ctx *lc)
{
    const char *where = cl->file ? cl->file : "-";
    const char *stray = cl->keyfile                    ? "keyfile"
                        : cl->cafile                   ? "cafile"
                        : cl->capath                   ? "capath"
                        : cl->crlfile                  ? "crlfile"
                        : cl->require_certificate      ? "require_certificate"
                        : cl->use_identity_as_username ? "use_identity_as_username"
                                                       : NULL;
    char err[512];

    if (!cl->certfile) {
        if (stray) {
            log_error("listener port=%u (%s:%d): '%s' needs certfile: this listener is not TLS",
                      cl->port, where, cl->line, stray);
            return -1;
        }
        if (cl->tls_version || cl->ciphers || cl->ciphers_tls13)
            log_warn("listener port=%u (%s:%d): tls_version and ciphers are ignored without "
                     "certfile",
                     cl->port, where, cl->line);
        return 0;
    }
    if (cl->use_identity_as_username && !cl->require_certificate) {
        log_error("listener port=%u (%s:%d): use_identity_as_username needs "
                  "require_certificate true",
                  cl->port, where, cl->line);
        return -1;
    }
    struct tls_settings ts = {
        .certfile = cl->certfile,
        .keyfile = cl->keyfile,
        .cafile = cl->cafile,
        .capath = cl->capath,
        .crlfile = cl->crlfile,
        .tls_version = cl->tls_version,
        .ciphers = cl->ciphers,
        .ciphers_tls13 = cl->ciphers_tls13,
        .require_certificate = cl->require_certificate,
    };
    if (tls_factory_new(&ts, &lc->transports, err, sizeof(err)) != 0) {
        log_error("listener port=%u (%s:%d): %s", cl->port, where, cl->line, err);
        return -1;
    }
    lc->tls = lc->transports;
    return 0;
}

/* Every worker listens on every configured port (SO_REUSEPORT when there are several); the
 * first worker's socket decides the port when the configuration says 0. */
static int
open_listeners(struct app *app)
{
    struct config *cfg = &app->cfg;
    bool reuse = app->n_workers > 1;

    for (unsigned k = 0; k < app->n_workers; k++) {
        struct worker *w = &app->workers[k];
        w->listeners = xcalloc(cfg->n_listeners, sizeof(*w->listeners));
    }
    app->listen = xcalloc(cfg->n_listeners, sizeof(*app->listen));
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct config_listener *cl = &cfg->listeners[i];
        char err[256];
        app->listen[i].cfg = cl;
        if (open_tls(cl, &app->listen[i]) != 0)
            return -1;
        /* MQTT over WebSocket. Over TLS (wss://) when a TLS factory was made above for this
         * listener: the WebSocket factory takes it as its inner transport. */
        if (cl->protocol == LISTENER_WEBSOCKETS &&
            !(app->listen[i].transports = ws_factory_new(
                  cl->websockets_path, cfg->max_packet_size, app->listen[i].transports))) {
            log_error("listener port=%u: out of memory", cl->port);
            return -1;
        }
        for (unsigned k = 0; k < app->n_workers; k++) {
            struct worker *w = &app->workers[k];
            if (listener_new(w->loop, cl->bind_address, cl->port, reuse, on_accept, w,
                             &w->listeners[i], err, sizeof(err)) != 0) {
                log_error("listener failed (%s:%d): %s", cl->file ? cl->file : "-", cl->line, err);
                return -1;
            }
            w->n_listeners++;
            listener_set_data(w->listeners[i], &app->listen[i]);
            cl->port = listener_port(w->listeners[i]);
        }
        log_notice("listening address=%s port=%u protocol=%s",
                   cl->bind_address ? cl->bind_address : "*", cl->port,
                   protocol_name(cl->protocol));
    }
    return 0;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    int rc = loop_run(w->loop);

    if (rc != 0)
        log_error("event loop failed: %s", strerror(-rc));
    return NULL;
}

static unsigned
worker_count(const struct config *cfg)
{
    long n = cfg->workers ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        n = 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

static int
start_workers(struct app *app)
{
    app->n_workers = worker_count(&app->cfg);
    app->workers = xcalloc(app->n_workers, sizeof(*app->workers));
    app->hubs = hubs_new(&app->cfg, app->n_workers);
    char err[512];
    if (auth_new(&app->cfg, app->n_workers, &app->auth, err, sizeof(err)) != 0) {
        log_error("config %s", err);
        return -1;
    }
    hubs_set_auth(app->hubs, app->auth);
    if (api_new(&app->cfg, app->hubs, app->auth, &app->api, err, sizeof(err)) != 0) {
        log_error("config http_api_key_file: %s", err);
        return -1;
    }
    api_set_tokens(app->api, hubs_tokens(app->hubs));
    for (unsigned k = 0; k < app->n_workers; k++) {
        struct worker *w = &app->workers[k];
        int rc = loop_new(&w->loop);
        if (rc != 0) {
            log_error("cannot create event loop: %s", strerror(-rc));
            return -1;
        }
        conn_pool_init(&w->pool, w->loop, app->cfg.set_tcp_nodelay);
        if (!(w->hub = hub_new(app->hubs, k, w->loop, &w->pool))) {
            log_error("cannot create worker %u", k);
            return -1;
        }
        w->api = api_worker_new(app->api, w->hub, k, &w->pool);
        loop_set_tick(w->loop, HUB_TICK_MS, worker_tick, w);
        loop_set_after(w->loop, hub_after, w->hub);
    }
    /* The store is loaded into the hubs before any worker runs or any client can connect. */
    if (hubs_open_store(app->hubs, err, sizeof(err)) != 0) {
        log_error("persistence: %s", err);
        return -1;
    }
    if (open_listeners(app) != 0)
        return -1;
    for (unsigned k = 0; k < app->n_workers; k++) {
        if (pthread_create(&app->workers[k].thread, NULL, worker_main, &app->workers[k]) != 0) {
            log_error("cannot start worker thread %u", k);
            return -1;
        }
    }
    log_notice("petrel started workers=%u memory_limit=%llu", app->n_workers,
               (unsigned long long)app->cfg.memory_limit);
    return 0;
}

static void
stop_workers(struct app *app)
{
    for (unsigned k = 0; k < app->n_workers; k++) {
        if (app->workers[k].thread)
            pthread_join(app->workers[k].thread, NULL);
    }
    for (unsigned k = 0; k < app->n_workers; k++) {
        struct worker *w = &app->workers[k];
        for (size_t i = 0; i < w->n_listeners; i++)
            listener_free(w->listeners[i]);
        free(w->listeners);
        /* The API's connections close with it, before the pool goes. */
        api_worker_free(w->api);
        if (w->loop)
            conn_pool_fini(&w->pool);
    }
    api_free(app->api);
    hubs_close_store(app->hubs);
    hubs_free(app->hubs);
    auth_free(app->auth);
    for (unsigned k = 0; k < app->n_workers; k++)
        loop_free(app->workers[k].loop);
    free(app->workers);
    for (size_t i = 0; app->listen && i < app->cfg.n_listeners; i++) {
        if (app->listen[i].transports)
            app->listen[i].transports->free(app->listen[i].transports);
    }
    free(app->listen);
}

/* SIGHUP: read the password, ACL and key files and the TLS certificates again. What fails to
 * load keeps its previous version. The configuration file itself is not re-read. */
static void
reload(struct app *app)
{
    char err[512];
    unsigned failed = 0;

    if (app->auth && auth_reload(app->auth, err, sizeof(err)) != 0) {
        log_error("reload failed, the previous files stay in force: %s", err);
        failed++;
    }
    if (app->api && api_reload(app->api, err, sizeof(err)) != 0) {
        log_error("reload failed, the previous API keys stay in force: %s", err);
        failed++;
    }
    for (size_t i = 0; app->listen && i < app->cfg.n_listeners; i++) {
        struct listen_ctx *lc = &app->listen[i];
        if (lc->tls && tls_factory_reload(lc->tls, err, sizeof(err)) != 0) {
            log_error("reload failed, listener port=%u keeps its certificates: %s",
                      lc->cfg->port, err);
            failed++;
        }
    }
    log_notice("sighup received; reloaded auth files, API keys and certificates errors=%u",
               failed);
}

/* The main thread only waits for signals; workers inherit the blocked mask. */
static void
wait_for_stop(struct app *app, const sigset_t *mask)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(mask, &si);
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            reload(app);
            continue;
        }
        log_notice("shutting down signal=%s", strsignal(sig));
        hubs_shutdown(app->hubs);
        return;
    }
}

static bool
has_mqtt_listener(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (cfg->listeners[i].protocol != LISTENER_HTTP)
            return true;
    }
    return false;
}

static int
load_config(struct app *app, const char *path, int port, bool verbose)
{
    char err[512];

    config_defaults(&app->cfg);
    if (path && config_load(path, &app->cfg, err, sizeof(err), warn_config) != 0) {
        fprintf(stderr, "petrel: %s\n", err);
        return -1;
    }
    if (port >= 0 && app->cfg.n_listeners > 0) {
        /* -p moves the first configured MQTT listener (address, TLS, protocol) to PORT and
         * drops the other MQTT ones; HTTP API listeners stay. */
        size_t kept = 0;
        bool moved = false;
        for (size_t i = 0; i < app->cfg.n_listeners; i++) {
            struct config_listener *li = &app->cfg.listeners[i];
            if (li->protocol != LISTENER_HTTP && moved) {
                config_listener_fini(li);
                continue;
            }
            if (li->protocol != LISTENER_HTTP) {
                li->port = (uint16_t)port;
                moved = true;
            }
            app->cfg.listeners[kept++] = *li;
        }
        app->cfg.n_listeners = kept;
        if (!moved)
            config_add_default_listener(&app->cfg, (uint16_t)port);
    } else if (port >= 0) {
        config_add_default_listener(&app->cfg, (uint16_t)port);
    } else if (!has_mqtt_listener(&app->cfg)) {
        /* An HTTP API listener alone does not take the place of the MQTT one. */
        config_add_default_listener(&app->cfg, 1883);
    }
    /* Without a memory_limit line the ceiling is 80 % of what the machine (or the cgroup)
     * has, so that the broker refuses work before the kernel's OOM killer ends it; the
     * remaining fifth covers the stacks, the LMDB map's pages and the allocator's slack.
     * `memory_limit 0` turns the ceiling off, as in Mosquitto. */
    if (!app->cfg.memory_limit_set)
        app->cfg.memory_limit = (uint64_t)memstat_ram_limit() / 5 * 4;
    unsigned levels = verbose ? 0x1f : app->cfg.log_types;
    FILE *file = NULL;
    if (app->cfg.log_file && !(file = fopen(app->cfg.log_file, "a"))) {
        fprintf(stderr, "petrel: cannot open log file %s: %s\n", app->cfg.log_file,
                strerror(errno));
        return -1;
    }
    log_setup(levels, app->cfg.log_to_stderr, app->cfg.log_to_stdout, file,
              app->cfg.log_timestamp);
    return 0;
}

int
main(int argc, char **argv)
{
    static struct app app;
    const char *path = NULL;
    int port = -1, opt;
    bool verbose = false;
    sigset_t mask;

    map_key_random(); /* before any map holds an entry */
    if (argc > 1 && strcmp(argv[1], "passwd") == 0)
        return cli_passwd(argc - 1, argv + 1);
    while ((opt = getopt(argc, argv, "c:p:vh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "petrel: -p: '%s' is not a port number\n", optarg);
                return 2;
            }
            port = (int)v;
            break;
        }
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (load_config(&app, path, port, verbose) != 0)
        return 1;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);

    int status = 0;
    if (start_workers(&app) == 0)
        wait_for_stop(&app, &mask);
    else
        status = 1;
    if (status != 0 && app.hubs)
        hubs_shutdown(app.hubs);
    stop_workers(&app);
    config_fini(&app.cfg);
    log_notice("petrel stopped");
    log_close();
    return status;
}
