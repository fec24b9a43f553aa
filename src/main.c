/*
 * main.c - start-up only: command line, configuration, logging, listeners, signals, and the
 * worker loop. Everything else lives in the modules.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/loop.h"
#include "session/session.h"

#define TICK_MS 250

struct app {
    struct config cfg;
    struct loop *loop;
    struct conn_pool pool;
    struct hub *hub;
    struct listener **listeners;
    size_t n_listeners;
    struct loop_watch sig_watch;
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: petrel [-c FILE] [-p PORT] [-v]\n"
                 "  -c FILE   configuration file (Mosquitto format); without one, petrel\n"
                 "            listens on 127.0.0.1:1883 only\n"
                 "  -p PORT   listen on PORT instead of the configured ports\n"
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
    struct app *app = ud;

    hub_accept(app->hub, fd, peer, listener_data(li));
}

static void
on_signal(void *ud, uint32_t events)
{
    struct app *app = ud;
    struct signalfd_siginfo si;

    if (read(app->sig_watch.fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGHUP) {
        log_notice("sighup received; nothing to reload yet");
        return;
    }
    log_notice("shutting down signal=%s", strsignal((int)si.ssi_signo));
    hub_shutdown(app->hub);
    loop_stop(app->loop);
}

static int
setup_signals(struct app *app)
{
    sigset_t mask;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
        return -errno;
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    app->sig_watch = (struct loop_watch){fd, on_signal, app};
    return loop_add(app->loop, &app->sig_watch, EPOLLIN);
}

static int
open_listeners(struct app *app)
{
    app->listeners = xcalloc(app->cfg.n_listeners, sizeof(*app->listeners));
    for (size_t i = 0; i < app->cfg.n_listeners; i++) {
        struct config_listener *cl = &app->cfg.listeners[i];
        char err[256];
        if (cl->protocol != LISTENER_MQTT) {
            log_error("listener port=%u: websockets are not supported yet", cl->port);
            return -1;
        }
        if (listener_new(app->loop, cl->bind_address, cl->port, on_accept, app,
                         &app->listeners[i], err, sizeof(err)) != 0) {
            log_error("listener failed: %s", err);
            return -1;
        }
        app->n_listeners++;
        listener_set_data(app->listeners[i], cl);
        log_notice("listening address=%s port=%u", cl->bind_address ? cl->bind_address : "*",
                   listener_port(app->listeners[i]));
    }
    return 0;
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
    if (port >= 0) {
        /* -p replaces the configured ports, keeping the first listener's address. */
        char *addr = app->cfg.n_listeners && app->cfg.listeners[0].bind_address
                         ? xstrdup(app->cfg.listeners[0].bind_address)
                         : NULL;
        for (size_t i = 1; i < app->cfg.n_listeners; i++) {
            free(app->cfg.listeners[i].bind_address);
            free(app->cfg.listeners[i].file);
        }
        if (app->cfg.n_listeners) {
            free(app->cfg.listeners[0].bind_address);
            free(app->cfg.listeners[0].file);
            app->cfg.n_listeners = 0;
        }
        config_add_default_listener(&app->cfg, (uint16_t)port);
        if (path) {
            free(app->cfg.listeners[0].bind_address);
            app->cfg.listeners[0].bind_address = addr;
        } else {
            free(addr);
        }
    } else if (app->cfg.n_listeners == 0) {
        config_add_default_listener(&app->cfg, 1883);
    }
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
    if (app.cfg.workers > 1)
        log_notice("workers=%u requested; this build runs one worker thread", app.cfg.workers);

    int rc = loop_new(&app.loop);
    if (rc != 0) {
        log_error("cannot create event loop: %s", strerror(-rc));
        return 1;
    }
    conn_pool_init(&app.pool, app.loop, app.cfg.set_tcp_nodelay);
    app.hub = hub_new(&app.cfg, &app.pool);
    if ((rc = setup_signals(&app)) != 0) {
        log_error("cannot set up signals: %s", strerror(-rc));
        return 1;
    }
    int status = 0;
    if (open_listeners(&app) != 0) {
        status = 1;
    } else {
        loop_set_tick(app.loop, TICK_MS, hub_tick, app.hub);
        loop_set_after(app.loop, conn_pool_after, &app.pool);
        log_notice("petrel started");
        if ((rc = loop_run(app.loop)) != 0) {
            log_error("event loop failed: %s", strerror(-rc));
            status = 1;
        }
    }
    for (size_t i = 0; i < app.n_listeners; i++)
        listener_free(app.listeners[i]);
    free(app.listeners);
    conn_pool_fini(&app.pool);
    hub_free(app.hub);
    loop_del(app.loop, &app.sig_watch);
    close(app.sig_watch.fd);
    loop_free(app.loop);
    config_fini(&app.cfg);
    log_notice("petrel stopped");
    log_close();
    return status;
}
