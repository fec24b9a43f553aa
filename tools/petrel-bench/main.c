/*
 * petrel-bench - MQTT load generator: main thread.
 *
 * Parses the options, builds the plan, starts --threads event loops (drive.c), moves them
 * through the phases (bench.h), sleeps through warm-up, measured window and drain, then prints
 * the merged result as one JSON line on stdout and a summary on stderr.
 *
 * Everything is bounded: each set-up phase has a deadline, the run lasts warm-up + duration,
 * the drain at most --drain seconds.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "petrel-bench/bench.h"
#include "petrel-bench/drive.h"
#include "petrel-bench/report.h"
#include "petrel-bench/xport.h"

static void
sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                          .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double
cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
resolve(const char *host, uint16_t port, struct sockaddr_storage *addr, socklen_t *addr_len,
        char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    char service[8];

    snprintf(service, sizeof(service), "%u", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, err_len, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(addr, ai->ai_addr, ai->ai_addrlen);
    *addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Open files: one per connection, plus a few. Raise the soft limit if it is too low. */
static int
check_files(uint64_t conns, uint32_t threads, char *err, size_t err_len)
{
    struct rlimit rl;
    uint64_t need = conns + threads + 32;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        snprintf(err, err_len, "%llu connections need %llu open files; the limit is %llu",
                 (unsigned long long)conns, (unsigned long long)need,
                 (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(err, err_len, "cannot raise the open file limit to %llu: %s",
                 (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static const char *
fatal_reason(struct drive **d, uint32_t n)
{
    for (uint32_t t = 0; t < n; t++)
        if (atomic_load_explicit(&drive_out(d[t])->fatal, memory_order_acquire))
            return drive_out(d[t])->reason;
    return NULL;
}

/* Wait until the threads report `target` connections done (ready, or failed when failures
 * are allowed), a fatal error, or the deadline. Returns NULL or why it did not work. */
static const char *
wait_setup(struct drive **d, uint32_t n, uint32_t target, uint64_t deadline, bool allow_fail,
           char *buf, size_t buf_len)
{
    for (;;) {
        const char *why = fatal_reason(d, n);
        if (why)
            return why;
        uint32_t done = 0, failed = 0;
        for (uint32_t t = 0; t < n; t++) {
            done += atomic_load(&drive_out(d[t])->n_ready);
            failed += atomic_load(&drive_out(d[t])->n_failed);
        }
        if (done + (allow_fail ? failed : 0) >= target)
            return NULL;
        if (!allow_fail && failed)
            return "a connection failed";
        if (drive_now() >= deadline) {
            snprintf(buf, buf_len, "set-up timed out: %u of %u connections ready", done, target);
            return buf;
        }
        sleep_ns(1000000);
    }
}

static void
set_phase(struct run *r, int ph)
{
    atomic_store_explicit(&r->phase, ph, memory_order_release);
}

/* Sleep until `t`, returning early with the reason when a thread hits a fatal error. */
static const char *
sleep_until(struct drive **d, uint32_t n, uint64_t t)
{
    for (;;) {
        const char *why = fatal_reason(d, n);
        uint64_t now = drive_now();
        if (why || now >= t)
            return why;
        sleep_ns(t - now < 5000000 ? t - now : 5000000);
    }
}

static const char *
run_phases(struct run *r, struct drive **d, uint32_t n, char *buf, size_t buf_len)
{
    const struct opts *o = r->o;
    const struct plan *p = r->plan;
    uint32_t counts[4] = {p->n_bg, p->n_recvs, p->n_pubs, p->n_idle};
    uint32_t target = 0;
    const char *why;

    for (int ph = PH_SETUP_BG; ph <= PH_SETUP_IDLE; ph++) {
        if (!counts[ph])
            continue;
        target += counts[ph];
        double secs = 10 + counts[ph] / 200.0;
        if (ph == PH_SETUP_IDLE && o->conn_rate > 0)
            secs = 10 + counts[ph] / o->conn_rate;
        if (ph == PH_SETUP_BG)
            secs += o->background_subs / 2000.0;
        set_phase(r, ph);
        why = wait_setup(d, n, target, drive_now() + (uint64_t)(secs * 1e9), ph == PH_SETUP_IDLE,
                         buf, buf_len);
        if (why)
            return why;
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    struct opts o;
    struct run r;
    struct result res;
    char err[512], prefix[32], buf[256];
    const char *why = NULL;
    int rc;

    memset(&res, 0, sizeof(res));
    if ((rc = opts_parse(argc, argv, &o, err, sizeof(err))) != 0) {
        if (rc > 0)
            return 0;
        fprintf(stderr, "petrel-bench: %s\n", err);
        return 2;
    }
    if (!o.client_prefix) {
        snprintf(prefix, sizeof(prefix), "pb%ld", (long)getpid());
        o.client_prefix = prefix;
    }
    signal(SIGPIPE, SIG_IGN);

    memset(&r, 0, sizeof(r));
    r.o = &o;
    if (resolve(o.host, o.port, &r.addr, &r.addr_len, err, sizeof(err)) != 0 ||
        resolve(o.host, o.http_port, &r.http_addr, &r.http_addr_len, err, sizeof(err)) != 0) {
        fprintf(stderr, "petrel-bench: %s\n", err);
        return 1;
    }
    if (xport_setup(&r, err, sizeof(err)) != 0) {
        fprintf(stderr, "petrel-bench: %s\n", err);
        return 1;
    }
    r.plan = plan_new(&o);
    struct plan *p = r.plan;
    if (check_files((uint64_t)p->n_pubs + p->n_recvs + p->n_bg + p->n_idle, o.threads, err,
                    sizeof(err)) != 0) {
        fprintf(stderr, "petrel-bench: %s\n", err);
        plan_free(p);
        return 1;
    }
    atomic_store(&r.phase, -1);
    struct drive **d = xcalloc(o.threads, sizeof(*d));
    uint32_t started = 0;
    for (uint32_t t = 0; t < o.threads; t++) {
        d[t] = drive_new(&r, t);
        if ((rc = drive_start(d[t])) != 0) {
            snprintf(buf, sizeof(buf), "cannot start thread: %s", strerror(-rc));
            why = buf;
            break;
        }
        started++;
    }

    uint64_t t_begin = drive_now();
    if (!why)
        why = run_phases(&r, d, started, buf, sizeof(buf));
    res.setup_s = (double)(drive_now() - t_begin) / 1e9;
    if (!why && o.settle > 0)
        why = sleep_until(d, started, drive_now() + (uint64_t)(o.settle * 1e9));
    double cpu0 = 0, cpu1 = 0;
    if (!why) {
        r.t_run = drive_now();
        r.t_meas = r.t_run + (uint64_t)(o.warmup * 1e9);
        r.t_end = r.t_meas + (uint64_t)(o.duration * 1e9);
        if (o.scenario == SCEN_CONN) /* hold: nothing to warm up */
            r.t_meas = r.t_run, r.t_end = r.t_run + (uint64_t)(o.duration * 1e9);
        set_phase(&r, PH_RUN);
        why = sleep_until(d, started, r.t_meas);
        cpu0 = cpu_seconds();
        if (!why)
            why = sleep_until(d, started, r.t_end);
        cpu1 = cpu_seconds();
    }
    if (!why && o.scenario != SCEN_CONN) {
        uint64_t deadline = r.t_end + (uint64_t)(o.drain * 1e9);
        set_phase(&r, PH_DRAIN);
        for (;;) {
            bool all = true;
            for (uint32_t t = 0; t < started; t++)
                all = all && atomic_load(&drive_out(d[t])->drained);
            if (all || drive_now() >= deadline)
                break;
            sleep_ns(1000000);
        }
    }
    set_phase(&r, PH_STOP);
    for (uint32_t t = 0; t < started; t++)
        drive_join(d[t]);

    res.duration_s = why ? 0 : (double)(r.t_end - r.t_meas) / 1e9;
    report_collect(&res, p, d, started);
    if (res.duration_s > 0)
        res.bench_cpu = (cpu1 - cpu0) / res.duration_s;
    if (why)
        res.error = why;
    report_json(stdout, &o, p, &res);
    if (!o.quiet)
        report_human(stderr, &o, p, &res);

    int status = 0;
    if (why) {
        fprintf(stderr, "petrel-bench: could not run: %s\n", why);
        status = 1;
    } else if (o.scenario == SCEN_CONN ? res.connected == 0 : res.errors > 0) {
        fprintf(stderr, "petrel-bench: %llu error(s): %s\n", (unsigned long long)res.errors,
                res.error ? res.error : "see above");
        status = 1;
    }
    for (uint32_t t = 0; t < o.threads; t++)
        drive_free(d[t]);
    free(d);
    plan_free(p);
    xport_teardown(&r);
    return status;
}
