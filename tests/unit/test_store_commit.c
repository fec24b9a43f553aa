/*
 * test_store_commit.c - the store's storage thread: group commit from two submitting threads
 * (completions all called, in order per thread), periodic sync, disk full through a maximum
 * size (-ENOSPC, then recovery after deletions), map growth, and crash safety: a child process
 * writing batches is killed with SIGKILL mid-way, and every batch it saw completed must be in
 * the store, which must be exactly the state after some later batch, with consistent
 * reference counts.
 *
 * PETREL_STORE_BENCH=1 makes the group commit tests larger and prints their rates, and adds
 * a start-up benchmark (1 000 000 retained messages, 100 000 sessions).
 * PETREL_TEST_SMALLFS=<dir on a small file system> adds a real disk-full run there.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"
#include "store/store.h"
#include "store_wait.h"

/* ---- fixture (as in test_store.c) ---- */

struct tctx {
    char root[64];
    char dir[128];
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
setup(void **state)
{
    struct tctx *t = calloc(1, sizeof(*t));

    strcpy(t->root, "/tmp/petrel-store-XXXXXX");
    if (!mkdtemp(t->root))
        return -1;
    snprintf(t->dir, sizeof(t->dir), "%s/store", t->root);
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    struct tctx *t = *state;

    nftw(t->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

static struct store *
open_ok(const struct store_options *o)
{
    struct store *s = NULL;
    char err[512] = "";
    int rc = store_open(o, &s, err, sizeof(err));

    if (rc != 0)
        fail_msg("store_open: %d %s", rc, err);
    return s;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


/* Submit, retrying while the queue pushes back (bounded). */
static void
submit_retry(struct store *s, struct store_batch *b, store_done_fn *done, void *ctx)
{
    double until = now_s() + 60;
    int rc;

    while ((rc = store_submit(s, b, done, ctx)) == -EAGAIN) {
        if (now_s() > until)
            fail_msg("store pushed back for 60 s");
        usleep(50);
    }
    assert_int_equal(rc, 0);
}

static void
put_msg(struct store_batch *b, uint64_t id, const char *topic, const void *payload, size_t len)
{
    struct store_msg m = {.id = id, .topic = slice_cstr(topic), .payload = {payload, len},
                          .qos = 1};

    assert_int_equal(store_batch_msg_put(b, &m), 0);
}

static void
add_entry(struct store_batch *b, const char *client, uint64_t seq, uint64_t msg_id)
{
    struct store_qentry e = {.client_id = slice_cstr(client), .seq = seq, .msg_id = msg_id,
                             .qos = 1};

    assert_int_equal(store_batch_queue_add(b, &e), 0);
}

static void
expect_consistent(struct store *s)
{
    struct store_check c;

    assert_int_equal(store_check(s, &c), 0);
    assert_int_equal(c.n_bad_refcounts, 0);
    assert_int_equal(c.n_dangling, 0);
    assert_int_equal(c.n_orphans, 0);
}

/* ---- group commit ---- */

#define MAX_THREADS 2

struct producer {
    struct store *s;
    int index;
    int n;
    int next_done;                /* written by completions (storage thread) only */
    int n_bad;
    pthread_t thread;
};

struct slot {
    struct producer *p;
    int i;
};

static void
slot_done(void *ctx, int rc)
{
    struct slot *sl = ctx;
    struct producer *p = sl->p;

    if (rc != 0 || sl->i != p->next_done)
        p->n_bad++;
    p->next_done = sl->i + 1;
}

static void *
producer_main(void *arg)
{
    struct producer *p = arg;
    char client[8], payload[64];
    struct slot *slots = calloc((size_t)p->n, sizeof(*slots));

    snprintf(client, sizeof(client), "t%d", p->index);
    memset(payload, 'p', sizeof(payload));
    for (int i = 0; i < p->n; i++) {
        struct store_batch *b = store_batch_new(p->s);
        uint64_t id = store_msg_id_new(p->s);
        struct store_session sess = {.client_id = slice_cstr(client), .version = 5};
        if (i == 0)
            assert_int_equal(store_batch_session_put(b, &sess), 0);
        put_msg(b, id, "t/x", payload, sizeof(payload));
        add_entry(b, client, (uint64_t)i + 1, id);
        slots[i] = (struct slot){p, i};
        submit_retry(p->s, b, slot_done, &slots[i]);
    }
    return slots;                 /* freed by the joiner, after the completions */
}

static int
count_entry(void *ctx, const struct store_qentry *e, const struct store_msg *m)
{
    uint64_t *last = ctx;
    int t = e->client_id.p[1] - '0';

    if (e->seq != last[t] + 1 || !m || m->payload.len != 64)
        return -1;
    last[t] = e->seq;
    return 0;
}

static void
group_commit(struct tctx *t, enum store_sync sync, const char *name)
{
    int n = getenv("PETREL_STORE_BENCH") ? 50000 : 2000;
    struct store_options o = {.dir = t->dir, .sync = sync, .sync_period_ms = 20,
                              .max_pending = 256};
    struct store *s = open_ok(&o);
    struct producer ps[MAX_THREADS];
    void *slots[MAX_THREADS];
    double t0 = now_s();

    for (int i = 0; i < MAX_THREADS; i++) {
        ps[i] = (struct producer){.s = s, .index = i, .n = n};
        assert_int_equal(pthread_create(&ps[i].thread, NULL, producer_main, &ps[i]), 0);
    }
    for (int i = 0; i < MAX_THREADS; i++)
        pthread_join(ps[i].thread, &slots[i]);
    /* The last completions may still be running: close waits for them. */
    struct store_stats st;
    double until = now_s() + 60;
    do {
        store_stats(s, &st);
    } while (st.batches_ok < (uint64_t)n * MAX_THREADS && now_s() < until && !usleep(100));
    uint64_t commits = st.commits;
    store_close(s);
    double dt = now_s() - t0;
    for (int i = 0; i < MAX_THREADS; i++) {
        free(slots[i]);
        assert_int_equal(ps[i].n_bad, 0);
        assert_int_equal(ps[i].next_done, n);
    }

    s = open_ok(&o);
    uint64_t last[MAX_THREADS] = {0};
    struct store_visitor v = {.ctx = last, .on_queue = count_entry};
    assert_int_equal(store_load(s, &v, NULL), 0);
    for (int i = 0; i < MAX_THREADS; i++)
        assert_int_equal(last[i], n);
    expect_consistent(s);

    /* One batch at a time (a lone publisher waiting for each PUBACK): commit latency. */
    int n_one = n / 10;
    double t1 = now_s();
    for (int i = 0; i < n_one; i++) {
        struct store_batch *b = store_batch_new(s);
        uint64_t id = store_msg_id_new(s);
        put_msg(b, id, "t/x", "one", 3);
        add_entry(b, "t0", (uint64_t)(n + i + 1), id);
        assert_int_equal(submit_wait(s, b), 0);
    }
    double dt1 = now_s() - t1;
    store_close(s);
    print_message("%s: %d batches (1 message, 1 queue entry each) from %d threads in %.3f s: "
                  "%.0f batches/s, %" PRIu64 " commits; one at a time: %.0f batches/s\n",
                  name, n * MAX_THREADS, MAX_THREADS, dt, n * MAX_THREADS / dt, commits,
                  n_one / dt1);
}

static void
group_commit_sync_always(void **state)
{
    group_commit(*state, STORE_SYNC_ALWAYS, "sync always");
}

static void
group_commit_sync_periodic(void **state)
{
    struct tctx *t = *state;

    group_commit(t, STORE_SYNC_PERIODIC, "sync periodic 20 ms");

    /* A commit is followed by a sync within the period. */
    struct store_options o = {.dir = t->dir, .sync = STORE_SYNC_PERIODIC, .sync_period_ms = 20};
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);
    assert_int_equal(store_batch_qos2_add(b, SLICE("t0"), 1), 0);
    assert_int_equal(submit_wait(s, b), 0);
    struct store_stats st;
    double until = now_s() + 10;
    do {
        usleep(5000);
        store_stats(s, &st);
    } while (st.syncs == 0 && now_s() < until);
    assert_true(st.syncs >= 1);
    store_close(s);
}

/* Many small batches land in few transactions. */
static void
batches_share_commits(void **state)
{
    struct tctx *t = *state;
    struct store_options o = {.dir = t->dir, .max_pending = 100000};
    struct store *s = open_ok(&o);
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
    int n = 3000;

    for (int i = 0; i < n; i++) {
        struct store_batch *b = store_batch_new(s);
        assert_int_equal(store_batch_qos2_add(b, SLICE("c"), (uint16_t)(i + 1)), 0);
        assert_int_equal(store_submit(s, b, i == n - 1 ? on_done : NULL, &w), 0);
    }
    struct store_batch *b = store_batch_new(s);
    assert_int_equal(submit_wait(s, b), 0);           /* a barrier behind all of them */
    assert_true(w.done);
    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.batches_ok, n + 1);
    print_message("%d batches in %" PRIu64 " commits\n", n + 1, st.commits);
    assert_true(st.commits < (uint64_t)n / 2);
    store_close(s);
}

/* ---- disk full ---- */

static int
count_retained(void *ctx, const struct store_msg *m)
{
    (*(int *)ctx)++;
    return 0;
}

static int
loaded_retained(struct store *s)
{
    int n = 0;
    struct store_visitor v = {.ctx = &n, .on_retained = count_retained};

    assert_int_equal(store_load(s, &v, NULL), 0);
    return n;
}

static int
put_retained(struct store *s, int i, size_t len)
{
    struct store_batch *b = store_batch_new(s);
    char topic[32];
    void *payload = calloc(1, len);
    uint64_t id = store_msg_id_new(s);

    snprintf(topic, sizeof(topic), "r/%d", i);
    put_msg(b, id, topic, payload, len);
    assert_int_equal(store_batch_retained_set(b, slice_cstr(topic), id), 0);
    free(payload);
    return submit_wait(s, b);
}

static int
clear_retained(struct store *s, int i)
{
    struct store_batch *b = store_batch_new(s);
    char topic[32];

    snprintf(topic, sizeof(topic), "r/%d", i);
    assert_int_equal(store_batch_retained_clear(b, slice_cstr(topic)), 0);
    return submit_wait(s, b);
}

/* A failing batch inside a group leaves the others alone, and completions keep their order. */
struct order {
    int next;
    int bad;
    int rcs[8];
};

struct order_slot {
    struct order *o;
    int i;
};

static void
order_done(void *ctx, int rc)
{
    struct order_slot *sl = ctx;

    if (sl->i != sl->o->next)
        sl->o->bad++;
    sl->o->next = sl->i + 1;
    sl->o->rcs[sl->i] = rc;
}

static void
failure_inside_a_group(void **state)
{
    struct tctx *t = *state;
    struct store_options o = {.dir = t->dir, .max_size = 1024 * 1024,
                              .initial_map_size = 1024 * 1024};
    struct store *s = open_ok(&o);
    struct order ord = {0};
    struct order_slot slots[8];
    void *big = calloc(1, 2 * 1024 * 1024);

    for (int i = 0; i < 8; i++) {
        struct store_batch *b = store_batch_new(s);
        uint64_t id = store_msg_id_new(s);
        struct store_session sess = {.client_id = SLICE("g"), .version = 5, .expiry = i};
        assert_int_equal(store_batch_session_put(b, &sess), 0);
        if (i == 2)
            add_entry(b, "g", 100, 999999);        /* no such message: -ENOENT */
        else if (i == 5)
            put_msg(b, id, "t", big, 2 * 1024 * 1024);  /* over max_size: -ENOSPC */
        else
            put_msg(b, id, "t", "x", 1);
        add_entry(b, "g", (uint64_t)i + 1, id);
        slots[i] = (struct order_slot){&ord, i};
        assert_int_equal(store_submit(s, b, order_done, &slots[i]), 0);
    }
    free(big);
    store_close(s);
    assert_int_equal(ord.bad, 0);
    assert_int_equal(ord.next, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ord.rcs[i], i == 2 ? -ENOENT : i == 5 ? -ENOSPC : 0);

    s = open_ok(&o);
    struct store_check c;
    assert_int_equal(store_check(s, &c), 0);
    assert_int_equal(c.n_refs, 6);                  /* entries 1, 2, 4, 5, 7, 8 */
    assert_int_equal(c.n_msgs, 6);
    assert_int_equal(c.n_bad_refcounts + c.n_dangling + c.n_orphans, 0);
    store_close(s);
}

/* Fill until -ENOSPC, free half, write again. Returns how many were accepted at first. */
static int
fill_and_recover(struct store *s, size_t len, int bound)
{
    int n_ok = 0, rc = 0;

    for (int i = 0; i < bound && (rc = put_retained(s, i, len)) == 0; i++)
        n_ok++;
    assert_int_equal(rc, -ENOSPC);
    assert_true(n_ok > 0);
    /* Stays refused, and nothing half-written appears. */
    assert_int_equal(put_retained(s, bound + 1, len), -ENOSPC);
    assert_int_equal(loaded_retained(s), n_ok);
    for (int i = 0; i < (n_ok + 1) / 2; i++)
        assert_int_equal(clear_retained(s, i), 0);
    assert_int_equal(put_retained(s, bound + 2, len), 0);
    expect_consistent(s);
    return n_ok;
}

static void
max_size_gives_enospc_then_recovers(void **state)
{
    struct tctx *t = *state;
    uint64_t max = 2 * 1024 * 1024;
    struct store_options o = {.dir = t->dir, .max_size = max, .initial_map_size = 256 * 1024};
    struct store *s = open_ok(&o);
    struct stat st;
    char path[256];

    assert_int_equal(put_retained(s, 1000000, 4 * 1024 * 1024), -ENOSPC);
    assert_int_equal(put_retained(s, 1000001, 1000), 0);          /* small ones still go */
    assert_int_equal(clear_retained(s, 1000001), 0);
    int n_ok = fill_and_recover(s, 64 * 1024, 200);
    struct store_stats stats;
    store_stats(s, &stats);
    assert_true(stats.map_size <= max);
    store_close(s);
    snprintf(path, sizeof(path), "%s/data.mdb", t->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= max);
    print_message("max_size %" PRIu64 ": %d x 64 KiB accepted, data file %lld bytes\n", max,
                  n_ok, (long long)st.st_size);

    /* What was acknowledged is there after a restart. */
    s = open_ok(&o);
    assert_int_equal(loaded_retained(s), n_ok - (n_ok + 1) / 2 + 1);
    store_close(s);
}

static void
map_grows_on_demand(void **state)
{
    struct tctx *t = *state;
    struct store_options o = {.dir = t->dir, .initial_map_size = 1024 * 1024};
    struct store *s = open_ok(&o);
    struct store_stats st;

    for (int i = 0; i < 8; i++)
        assert_int_equal(put_retained(s, i, 1024 * 1024), 0);
    store_stats(s, &st);
    assert_true(st.map_size >= 8 * 1024 * 1024);
    store_close(s);
    s = open_ok(&o);
    assert_int_equal(loaded_retained(s), 8);
    expect_consistent(s);
    store_close(s);
}

/* A real small file system (e.g. tmpfs mounted with size=8m). */
static void
small_file_system_fills_up(void **state)
{
    const char *fs = getenv("PETREL_TEST_SMALLFS");
    char dir[256];

    if (!fs) {
        skip();
        return;
    }
    snprintf(dir, sizeof(dir), "%s/petrel-store-%d", fs, (int)getpid());
    struct store_options o = {.dir = dir, .initial_map_size = 1024 * 1024};
    struct store *s = open_ok(&o);
    /* The map grows until the disk has no room for it: MDB_MAP_FULL becomes -ENOSPC. */
    int n_ok = fill_and_recover(s, 256 * 1024, 100000);
    int kept = n_ok - (n_ok + 1) / 2 + 1;
    store_close(s);
    /* Reopened, the map is larger than the disk: now the disk itself refuses the writes
     * (ENOSPC at commit), and each batch of the failed commit is retried alone. */
    s = open_ok(&o);
    assert_int_equal(loaded_retained(s), kept);
    int n_ok2 = 0, rc = 0;
    for (int i = 200000; i < 300000 && (rc = put_retained(s, i, 256 * 1024)) == 0; i++)
        n_ok2++;
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(loaded_retained(s), kept + n_ok2);
    for (int i = (n_ok + 1) / 2; i < n_ok; i++)
        assert_int_equal(clear_retained(s, i), 0);
    assert_int_equal(put_retained(s, 300001, 256 * 1024), 0);
    expect_consistent(s);
    print_message("%s: %d then %d x 256 KiB accepted before ENOSPC\n", fs, n_ok, n_ok2);
    store_close(s);
    s = open_ok(&o);
    assert_int_equal(loaded_retained(s), kept + n_ok2 - (n_ok - (n_ok + 1) / 2) + 1);
    store_close(s);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- start-up cost (PETREL_STORE_BENCH only) ---- */

struct bench_done {
    _Atomic int pending;
};

static void
bench_done(void *ctx, int rc)
{
    struct bench_done *d = ctx;

    if (rc != 0)
        abort();
    atomic_fetch_sub(&d->pending, 1);
}

static void
bench_submit(struct store *s, struct store_batch *b, struct bench_done *d)
{
    atomic_fetch_add(&d->pending, 1);
    submit_retry(s, b, bench_done, d);
}

/* 1 000 000 retained messages (100-byte payloads, 1000 per batch), then 100 000 offline
 * sessions with 2 subscriptions and 2 queued entries of one message each (500 per batch);
 * then open (which checks every record) and load. */
static void
bench_startup(void **state)
{
    struct tctx *t = *state;
    struct store_options o = {.dir = t->dir};
    long n_retained = 1000000, n_sessions = 100000;
    struct bench_done d = {0};
    char payload[100];

    if (!getenv("PETREL_STORE_BENCH")) {
        skip();
        return;
    }
    memset(payload, 'x', sizeof(payload));
    struct store *s = open_ok(&o);
    double t0 = now_s();
    for (long i = 0; i < n_retained;) {
        struct store_batch *b = store_batch_new(s);
        for (int k = 0; k < 1000 && i < n_retained; k++, i++) {
            char topic[64];
            snprintf(topic, sizeof(topic), "sensors/%ld/%ld/temp", i / 1000, i);
            struct store_msg m = {.id = store_msg_id_new(s), .topic = slice_cstr(topic),
                                  .payload = {(const uint8_t *)payload, 100}, .qos = 1,
                                  .retain = true};
            assert_int_equal(store_batch_msg_put(b, &m), 0);
            assert_int_equal(store_batch_retained_set(b, m.topic, m.id), 0);
        }
        bench_submit(s, b, &d);
    }
    for (long i = 0; i < n_sessions;) {
        struct store_batch *b = store_batch_new(s);
        for (int k = 0; k < 500 && i < n_sessions; k++, i++) {
            char id[32];
            snprintf(id, sizeof(id), "client-%08ld", i);
            struct store_session sess = {.client_id = slice_cstr(id), .version = 5,
                                         .expiry = 86400, .offline_at = time(NULL)};
            assert_int_equal(store_batch_session_put(b, &sess), 0);
            struct store_sub sub = {.client_id = slice_cstr(id), .filter = SLICE("cmd/+/x"),
                                    .qos = 1};
            assert_int_equal(store_batch_sub_put(b, &sub), 0);
            sub.filter = SLICE("cfg/#");
            assert_int_equal(store_batch_sub_put(b, &sub), 0);
            uint64_t mid = store_msg_id_new(s);
            put_msg(b, mid, "cmd/a/x", payload, sizeof(payload));
            add_entry(b, id, 1, mid);
            add_entry(b, id, 2, mid);
        }
        bench_submit(s, b, &d);
    }
    while (atomic_load(&d.pending) > 0)
        usleep(1000);
    double t1 = now_s();
    store_close(s);
    s = open_ok(&o);
    double t2 = now_s();
    struct store_load_stats st;
    assert_int_equal(store_load(s, NULL, &st), 0);
    double t3 = now_s();
    store_close(s);
    assert_int_equal(st.n_retained, n_retained);
    assert_int_equal(st.n_sessions, n_sessions);
    struct stat fst;
    char path[256];
    snprintf(path, sizeof(path), "%s/data.mdb", t->dir);
    stat(path, &fst);
    print_message("start-up: wrote %ld retained + %ld sessions (%.0f messages/s) in %.2f s; "
                  "data.mdb %lld MB; open %.2f s, load %.2f s\n", n_retained, n_sessions,
                  (n_retained + n_sessions) / (t1 - t0), t1 - t0,
                  (long long)fst.st_size / 1000000, t2 - t1, t3 - t2);
}

/* ---- crash safety ---- */

/*
 * Batch i (from 1) of the crash workload, on sessions a, b, c:
 *   sessions a, b, c put with expiry = i (so each record tells the last batch applied)
 *   message "m<i>" queued to a and b (QUEUED) and to c (WAIT_PUBACK, packet id i % 65535 + 1)
 *   entries i-20 dropped from a, b, c; c's entry i-1 moves to WAIT_PUBCOMP
 *   i % 10 == 0: retained "r/<(i/10) % 7>" set to the message
 *   odd i: QoS 2 id (i % 50) + 1 of a added; even i: the one of batch i-1 dropped
 */
#define WINDOW 20

static void
crash_batch(struct store *s, struct store_batch *b, uint64_t i)
{
    static const char *const clients[3] = {"a", "b", "c"};
    char payload[100], topic[32];
    uint64_t id = store_msg_id_new(s);

    memset(payload, '.', sizeof(payload));
    snprintf(payload, sizeof(payload), "m%" PRIu64, i);
    /* A retained message carries its retained topic. */
    snprintf(topic, sizeof(topic), "r/%d", (int)((i / 10) % 7));
    for (int c = 0; c < 3; c++) {
        struct store_session sess = {.client_id = slice_cstr(clients[c]), .version = 5,
                                     .expiry = (uint32_t)i};
        assert_int_equal(store_batch_session_put(b, &sess), 0);
    }
    put_msg(b, id, i % 10 == 0 ? topic : "t", payload, sizeof(payload));
    add_entry(b, "a", i, id);
    add_entry(b, "b", i, id);
    struct store_qentry e = {.client_id = SLICE("c"), .seq = i, .msg_id = id, .qos = 1,
                             .state = STORE_Q_WAIT_PUBACK,
                             .packet_id = (uint16_t)(i % 65535 + 1)};
    assert_int_equal(store_batch_queue_add(b, &e), 0);
    if (i > WINDOW)
        for (int c = 0; c < 3; c++)
            assert_int_equal(store_batch_queue_drop(b, slice_cstr(clients[c]), i - WINDOW), 0);
    if (i > 1)
        assert_int_equal(store_batch_queue_update(b, SLICE("c"), i - 1, STORE_Q_WAIT_PUBCOMP,
                                                  (uint16_t)((i - 1) % 65535 + 1)), 0);
    if (i % 10 == 0)
        assert_int_equal(store_batch_retained_set(b, slice_cstr(topic), id), 0);
    if (i % 2)
        assert_int_equal(store_batch_qos2_add(b, SLICE("a"), (uint16_t)(i % 50 + 1)), 0);
    else
        assert_int_equal(store_batch_qos2_drop(b, SLICE("a"), (uint16_t)((i - 1) % 50 + 1)), 0);
}

/* What a load finds, to compare with the state after batch J. */
struct crash_view {
    uint64_t expiry[3];
    uint64_t n_entries[3];
    uint64_t seq[3][WINDOW + 1];
    uint64_t payload[3][WINDOW + 1];  /* i of "m<i>", 0: no message */
    uint8_t state[3][WINDOW + 1];
    uint64_t retained[7];
    int n_qos2;
    uint16_t qos2;
    bool bad;
};

static uint64_t
payload_i(const struct store_msg *m)
{
    char buf[32];
    size_t n = m->payload.len < sizeof(buf) - 1 ? m->payload.len : sizeof(buf) - 1;

    memcpy(buf, m->payload.p, n);
    buf[n] = 0;
    return buf[0] == 'm' ? strtoull(buf + 1, NULL, 10) : 0;
}

static int
cv_session(void *ctx, const struct store_session *s)
{
    struct crash_view *v = ctx;
    int c = s->client_id.p[0] - 'a';

    if (s->client_id.len != 1 || c < 0 || c > 2)
        v->bad = true;
    else
        v->expiry[c] = s->expiry;
    return 0;
}

static int
cv_queue(void *ctx, const struct store_qentry *e, const struct store_msg *m)
{
    struct crash_view *v = ctx;
    int c = e->client_id.p[0] - 'a';

    if (c < 0 || c > 2 || v->n_entries[c] > WINDOW) {
        v->bad = true;
        return 0;
    }
    uint64_t k = v->n_entries[c]++;
    v->seq[c][k] = e->seq;
    v->payload[c][k] = m ? payload_i(m) : 0;
    v->state[c][k] = e->state;
    return 0;
}

static int
cv_qos2(void *ctx, struct slice id, uint16_t packet_id)
{
    struct crash_view *v = ctx;

    v->n_qos2++;
    v->qos2 = packet_id;
    return 0;
}

static int
cv_retained(void *ctx, const struct store_msg *m)
{
    struct crash_view *v = ctx;
    int k = m->topic.len == 3 ? m->topic.p[2] - '0' : -1;

    if (k < 0 || k > 6)
        v->bad = true;
    else
        v->retained[k] = payload_i(m);
    return 0;
}

/* Load and check the store is exactly the state after some batch J >= at_least; returns J. */
static uint64_t
crash_verify(const char *dir, uint64_t at_least)
{
    struct store_options o = {.dir = dir};
    struct store *s = open_ok(&o);
    struct crash_view v = {0};
    struct store_visitor vis = {.ctx = &v, .on_session = cv_session, .on_queue = cv_queue,
                                .on_qos2 = cv_qos2, .on_retained = cv_retained};

    assert_int_equal(store_load(s, &vis, NULL), 0);
    expect_consistent(s);
    store_close(s);
    assert_false(v.bad);
    uint64_t j = v.expiry[0];
    if (j < at_least)
        fail_msg("batch %" PRIu64 " was reported done but the store ends at %" PRIu64,
                 at_least, j);
    assert_int_equal(v.expiry[1], j);
    assert_int_equal(v.expiry[2], j);
    uint64_t first = j > WINDOW ? j - WINDOW + 1 : 1;
    for (int c = 0; c < 3; c++) {
        assert_int_equal(v.n_entries[c], j - first + 1);
        for (uint64_t k = 0; k < v.n_entries[c]; k++) {
            uint64_t seq = first + k;
            assert_int_equal(v.seq[c][k], seq);
            bool done = c == 2 && seq != j;        /* c's older entries are past PUBREC */
            assert_int_equal(v.payload[c][k], done ? 0 : seq);
            assert_int_equal(v.state[c][k], c < 2 ? STORE_Q_QUEUED
                                         : done   ? STORE_Q_WAIT_PUBCOMP
                                                  : STORE_Q_WAIT_PUBACK);
        }
    }
    for (int k = 0; k < 7; k++) {
        uint64_t want = 0;
        for (uint64_t i = 10; i <= j; i += 10)
            if ((i / 10) % 7 == (uint64_t)k)
                want = i;
        assert_int_equal(v.retained[k], want);
    }
    assert_int_equal(v.n_qos2, j % 2);
    if (j % 2)
        assert_int_equal(v.qos2, j % 50 + 1);
    return j;
}

struct child_batch {
    int fd;
    uint64_t i;
};

static void
child_done(void *ctx, int rc)
{
    struct child_batch *cb = ctx;
    int64_t v = rc == 0 ? (int64_t)cb->i : -1;

    if (write(cb->fd, &v, sizeof(v)) != sizeof(v))
        _exit(3);
    free(cb);
}

static int
child_last(void *ctx, const struct store_session *s)
{
    *(uint64_t *)ctx = s->expiry;
    return 0;
}

/* The child: continue the workload from the store's state until killed (or 60 s). */
static void __attribute__((noreturn))
crash_child(const char *dir, enum store_sync sync, int fd)
{
    struct store_options o = {.dir = dir, .sync = sync, .sync_period_ms = 50,
                              .max_pending = 64};
    struct store *s = NULL;
    char err[512];
    uint64_t j = 0;

    if (store_open(&o, &s, err, sizeof(err)) != 0)
        _exit(2);
    struct store_visitor v = {.ctx = &j, .on_session = child_last};
    if (store_load(s, &v, NULL) != 0)
        _exit(2);
    double until = now_s() + 60;
    for (uint64_t i = j + 1; now_s() < until; i++) {
        struct store_batch *b = store_batch_new(s);
        struct child_batch *cb = malloc(sizeof(*cb));
        *cb = (struct child_batch){fd, i};
        crash_batch(s, b, i);
        while (store_submit(s, b, child_done, cb) == -EAGAIN)
            usleep(50);
    }
    _exit(4);
}

/* Run the child until `reports` completions came back, kill it; returns the highest batch
 * it reported done. */
static uint64_t
crash_round(const char *dir, enum store_sync sync, uint64_t reports)
{
    int p[2];
    uint64_t seen = 0, highest = 0;

    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(dir, sync, p[1]);
    }
    close(p[1]);
    double until = now_s() + 60;
    while (seen < reports) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        int64_t v = 0;
        if (now_s() > until || poll(&pfd, 1, 10000) <= 0 ||
            read(p[0], &v, sizeof(v)) != sizeof(v)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("child stopped reporting after %" PRIu64 " batches", seen);
        }
        assert_true(v > 0);
        seen++;
        highest = (uint64_t)v;
    }
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Completions reported before it died count too. */
    int64_t v;
    while (read(p[0], &v, sizeof(v)) == sizeof(v)) {
        assert_true(v > 0);
        highest = (uint64_t)v;
    }
    close(p[0]);
    return highest;
}

static void
crash(struct tctx *t, enum store_sync sync)
{
    uint64_t reports[] = {5, 100, 1000, 5000};
    unsigned seed = (unsigned)time(NULL);

    srand(seed);
    for (size_t r = 0; r < sizeof(reports) / sizeof(reports[0]); r++) {
        uint64_t n = reports[r] + (uint64_t)(rand() % (int)reports[r]);
        uint64_t highest = crash_round(t->dir, sync, n);
        uint64_t j = crash_verify(t->dir, highest);
        print_message("crash round %zu (seed %u): killed after %" PRIu64 " reported, last "
                      "reported %" PRIu64 ", store at %" PRIu64 "\n", r, seed, n, highest, j);
    }
}

static void
crash_kill9_sync_always(void **state)
{
    crash(*state, STORE_SYNC_ALWAYS);
}

static void
crash_kill9_sync_periodic(void **state)
{
    /* A killed process loses nothing committed: the page cache has it. */
    crash(*state, STORE_SYNC_PERIODIC);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(group_commit_sync_always, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commit_sync_periodic, setup, teardown),
        cmocka_unit_test_setup_teardown(batches_share_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(max_size_gives_enospc_then_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(map_grows_on_demand, setup, teardown),
        cmocka_unit_test_setup_teardown(failure_inside_a_group, setup, teardown),
        cmocka_unit_test_setup_teardown(small_file_system_fills_up, setup, teardown),
        cmocka_unit_test_setup_teardown(bench_startup, setup, teardown),
        cmocka_unit_test_setup_teardown(crash_kill9_sync_always, setup, teardown),
        cmocka_unit_test_setup_teardown(crash_kill9_sync_periodic, setup, teardown),
    };

    /* PETREL_TEST_LOG=1 shows the store's warnings and info lines. */
    log_setup(getenv("PETREL_TEST_LOG") ? LOG_ERROR | LOG_WARN | LOG_INFO : LOG_ERROR, true, false,
              NULL, false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
