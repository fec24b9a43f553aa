/*
 * writer.c - the storage thread: group commit.
 *
 * It takes every batch waiting (up to a group limit), applies them all in one write
 * transaction, commits once (one fsync for the whole group with STORE_SYNC_ALWAYS), then runs
 * the completions in submission order.
 *
 * A batch that fails (a reference to a missing message, MDB_MAP_FULL) must leave no trace, and
 * the others must not suffer from it. Failures are rare, so the common path pays nothing for
 * that (nested transactions cost a 3 MiB allocation each in LMDB): the transaction is aborted,
 * the batches before the failed one are applied again and committed, and the failed batch is
 * retried alone, where MDB_MAP_FULL grows the map when max_size and the disk allow it (else
 * -ENOSPC). The rest of the group continues in a new transaction. A batch is applied a few
 * times at most, so a full disk costs O(group), not O(group^2).
 *
 *   commit fails   (ENOSPC from the disk) every batch of that transaction is retried alone,
 *                  so each gets its own result and none is reported done without being stored.
 *   MDB_PANIC      LMDB gave up on the environment: every later batch fails with -EIO.
 *
 * With STORE_SYNC_PERIODIC the environment runs with MDB_NOSYNC and this thread calls
 * mdb_env_sync once per period after a commit, and once more at close.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/internal.h"

#define GROUP_MAX_BATCHES 4096u
#define GROUP_MAX_BYTES (64ull * 1024 * 1024)
#define GROW_TRIES 16

/* One limit per kind of message, so that one kind does not hide another. */
static struct log_ratelimit full_limit, commit_limit, batch_limit;

/* Take the next group from the queue (q_lock held). */
static struct store_batch *
take_group(struct store *s)
{
    struct store_batch *head = s->q_head, **tail = &s->q_head;
    uint64_t bytes = 0;
    uint32_t n = 0;

    while (*tail && n < GROUP_MAX_BATCHES &&
           (n == 0 || bytes + (*tail)->ops.len <= GROUP_MAX_BYTES)) {
        bytes += (*tail)->ops.len;
        n++;
        tail = &(*tail)->next;
    }
    s->q_head = *tail;
    *tail = NULL;
    if (!s->q_head)
        s->q_tail = &s->q_head;
    s->q_n -= n;
    s->q_bytes -= bytes;
    return head;
}

/* Make the map larger after MDB_MAP_FULL: within max_size, and only when the file system has
 * room for what the batch needs (so a full disk fails this batch, not a whole commit later).
 * No transaction may be open in the process (txn_lock held, none begun). */
static bool
map_grow(struct store *s, size_t need)
{
    uint64_t next = s->map_size * 2;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    struct statvfs vfs;

    if (s->max_size && s->map_size >= s->max_size)
        return false;
    if (statvfs(s->dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (avail < 2 * (uint64_t)need + 1024 * 1024) {
            if (log_ratelimit(&full_limit, 1))
                log_warn("store disk full dir=%s avail=%" PRIu64, s->dir, avail);
            return false;
        }
    }
    if (next < s->map_size + 2 * (uint64_t)need)
        next = s->map_size + 2 * (uint64_t)need;
    if (s->max_size && next > s->max_size)
        next = s->max_size;
    next = (next + page - 1) / page * page;
    if (next <= s->map_size)
        return false;
    int rc = mdb_env_set_mapsize(s->env, next);
    if (rc != 0) {
        log_error("store cannot grow map dir=%s size=%" PRIu64 " error=\"%s\"", s->dir, next,
                  mdb_strerror(rc));
        return false;
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    atomic_store(&s->n_map_size, s->map_size);
    log_info("store map grown dir=%s size=%" PRIu64, s->dir, s->map_size);
    return true;
}

/* LMDB reports a short write (the usual face of a full disk) as EIO: tell them apart by the
 * room left, as map_grow does. */
static int
commit_rc(struct store *s, int rc, uint64_t need)
{
    struct statvfs vfs;

    if (rc == EIO && statvfs(s->dir, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < 2 * need + 1024 * 1024) {
        if (log_ratelimit(&full_limit, 1))
            log_warn("store disk full dir=%s avail=%" PRIu64, s->dir,
                     (uint64_t)vfs.f_bavail * vfs.f_frsize);
        return ENOSPC;
    }
    return rc;
}

static void
committed(struct store *s)
{
    atomic_fetch_add_explicit(&s->n_commits, 1, memory_order_relaxed);
    if (s->sync == STORE_SYNC_PERIODIC && !s->dirty) {
        s->dirty = true;
        s->sync_due = clock_now_ms() + s->sync_period_ms;
    }
}

static int
txn_begin(struct store *s, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, 0, txn);

    if (rc == MDB_PANIC && !s->broken) {
        s->broken = true;
        log_error("store unusable dir=%s error=\"%s\": restart needed", s->dir, mdb_strerror(rc));
    }
    return rc;
}

/* One batch in its own transaction (after a failed group commit). */
static int
apply_alone(struct store *s, struct store_batch *b)
{
    for (int tries = 0;; tries++) {
        MDB_txn *txn;
        int rc = txn_begin(s, &txn);
        if (rc != 0)
            return rc;
        if ((rc = store_apply(s, txn, b)) == 0) {
            if ((rc = mdb_txn_commit(txn)) == 0) {
                committed(s);
                return 0;
            }
            rc = commit_rc(s, rc, b->ops.len);
        } else {
            mdb_txn_abort(txn);
        }
        if (rc != MDB_MAP_FULL || tries >= GROW_TRIES || !map_grow(s, b->ops.len))
            return rc;
    }
}

/* Commit the group transaction holding batches [from, to). When the commit fails, each of
 * those batches is retried alone. */
static void
finish(struct store *s, MDB_txn *txn, struct store_batch *from, struct store_batch *to)
{
    int rc = mdb_txn_commit(txn);
    uint64_t need = 0;

    if (rc == 0) {
        committed(s);
        return;
    }
    for (struct store_batch *b = from; b != to; b = b->next)
        need += b->ops.len;
    rc = commit_rc(s, rc, need);
    if (log_ratelimit(&commit_limit, 1))
        log_warn("store commit failed dir=%s error=\"%s\": retrying its batches alone", s->dir,
                 mdb_strerror(rc));
    for (struct store_batch *b = from; b != to; b = b->next)
        b->rc = store_errno(apply_alone(s, b));
}

/* Apply [from, to) again (they applied before on this same state) and commit them. */
static void
replay(struct store *s, struct store_batch *from, struct store_batch *to)
{
    MDB_txn *txn;
    int rc = txn_begin(s, &txn);
    bool open = rc == 0;

    for (struct store_batch *b = from; rc == 0 && b != to; b = b->next)
        rc = store_apply(s, txn, b);
    if (rc == 0) {
        finish(s, txn, from, to);
        return;
    }
    /* Not expected: the same operations on the same state. Fall back to one by one. */
    log_error("store replay failed dir=%s error=\"%s\"", s->dir, mdb_strerror(rc));
    if (open)
        mdb_txn_abort(txn);
    for (struct store_batch *b = from; b != to; b = b->next)
        b->rc = store_errno(apply_alone(s, b));
}

/* One write transaction over the batches from `from` on; returns where the next one starts
 * (NULL: the group is done). */
static struct store_batch *
group_txn(struct store *s, struct store_batch *from)
{
    struct store_batch *b;
    MDB_txn *txn;
    int rc = 0;

    if (s->broken || (rc = txn_begin(s, &txn)) != 0) {
        from->rc = s->broken ? -EIO : store_errno(rc);
        return from->next;
    }
    for (b = from; b; b = b->next) {
        b->rc = 0;
        if (store_apply(s, txn, b) != 0)
            break;
    }
    if (!b) {
        finish(s, txn, from, NULL);
        return NULL;
    }
    mdb_txn_abort(txn);
    if (from != b)
        replay(s, from, b);
    b->rc = s->broken ? -EIO : store_errno(apply_alone(s, b));
    return b->next;
}

static void
commit_group(struct store *s, struct store_batch *group)
{
    pthread_mutex_lock(&s->txn_lock);
    for (struct store_batch *b = group; b;)
        b = group_txn(s, b);
    pthread_mutex_unlock(&s->txn_lock);

    while (group) {
        struct store_batch *next = group->next;
        if (group->rc == 0) {
            atomic_fetch_add_explicit(&s->n_batches_ok, 1, memory_order_relaxed);
            if (group->n_missing)
                atomic_fetch_add_explicit(&s->n_ops_missing, group->n_missing,
                                          memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&s->n_batches_failed, 1, memory_order_relaxed);
            if (log_ratelimit(&batch_limit, 1))
                log_warn("store batch failed dir=%s ops=%zu error=\"%s\"", s->dir, group->n_ops,
                         strerror(-group->rc));
        }
        if (group->done)
            group->done(group->ctx, group->rc);
        store_batch_free(group);
        group = next;
    }
}

static void
sync_now(struct store *s)
{
    int rc = mdb_env_sync(s->env, 1);

    if (rc != 0)
        log_error("store sync failed dir=%s error=\"%s\"", s->dir, mdb_strerror(rc));
    atomic_fetch_add_explicit(&s->n_syncs, 1, memory_order_relaxed);
    s->dirty = false;
}

void *
store_writer_main(void *arg)
{
    struct store *s = arg;

    for (;;) {
        pthread_mutex_lock(&s->q_lock);
        while (!s->q_head && !s->stopping) {
            if (!s->dirty) {
                pthread_cond_wait(&s->q_cond, &s->q_lock);
                continue;
            }
            struct timespec ts = {(time_t)(s->sync_due / 1000),
                                  (long)(s->sync_due % 1000) * 1000000};
            if (pthread_cond_timedwait(&s->q_cond, &s->q_lock, &ts) == ETIMEDOUT)
                break;
        }
        struct store_batch *group = s->q_head ? take_group(s) : NULL;
        bool stop = s->stopping && !s->q_head;
        pthread_mutex_unlock(&s->q_lock);

        if (group)
            commit_group(s, group);
        if (s->dirty && (stop || clock_now_ms() >= s->sync_due))
            sync_now(s);
        if (stop)
            return NULL;
    }
}
