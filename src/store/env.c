/*
 * env.c - opening and closing the store: directory, process lock, LMDB environment, format
 * version, a full check of every record, moving a bad store aside.
 *
 * A store that cannot be trusted never opens: LMDB refusing the file, a data file shorter than
 * the pages its header claims (reading those would fault), a missing or foreign format record,
 * or any record failing its checksum. The caller gets a message naming the file; with
 * move_aside the directory is renamed (never deleted) and an empty store starts instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "store/internal.h"

#define MIB (1024ull * 1024)
#define DEFAULT_MAP_SIZE (64 * MIB)
#define DEFAULT_MAX_PENDING 4096u
#define DEFAULT_MAX_PENDING_BYTES (256 * MIB)

const char *const store_db_names[DB_COUNT] = {
    "meta", "sessions", "subs", "msgs", "refs", "queue", "qos2", "retained", "tokens", "rorder",
};

int
store_errno(int rc)
{
    if (rc == 0 || (rc < 0 && rc > -4096))
        return rc;                      /* ours: already a negative errno */
    if (rc > 0)
        return -rc;                     /* a system error passed through by LMDB */
    switch (rc) {
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return -EFBIG;
    case MDB_BAD_VALSIZE:
        return -EINVAL;
    default:
        return -EIO;
    }
}

bool
store_is_damage(int rc)
{
    return rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
           rc == MDB_PANIC || rc == MDB_INCOMPATIBLE || rc == MDB_BAD_TXN || rc == -EUCLEAN;
}

static const char *
rc_str(int rc)
{
    return rc < 0 && rc > -4096 ? strerror(-rc) : mdb_strerror(rc);
}

static int __attribute__((format(printf, 4, 5)))
fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err && err_len) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* mkdir -p */
static int
mkdirs(const char *path)
{
    char *p = xstrdup(path);
    struct stat st;
    int rc = 0;

    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -errno;
        *c = '/';
        if (rc)
            break;
    }
    if (rc == 0 && mkdir(p, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    if (rc == 0 && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = -ENOTDIR;
    free(p);
    return rc;
}

/* Make a directory entry (a new file, a rename) survive a power cut. */
static void
sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int64_t
wall_now(const struct store *s)
{
    return s->wall_clock ? s->wall_clock(s->wall_ctx) : clock_wall_s();
}

static uint64_t
round_up(uint64_t n, uint64_t to)
{
    return (n + to - 1) / to * to;
}

/* Create the databases and the meta records of a new store. */
static int
meta_create(struct store *s, MDB_txn *txn, char *err, size_t err_len)
{
    uint8_t v[12];
    int rc;

    for (int i = 0; i < DB_COUNT; i++)
        if ((rc = mdb_dbi_open(txn, store_db_names[i], MDB_CREATE, &s->dbi[i])) != 0)
            return fail(err, err_len, store_errno(rc), "%s: cannot create database %s: %s",
                        s->data_path, store_db_names[i], rc_str(rc));
    if (getrandom(s->hashkey, sizeof(s->hashkey), 0) != (ssize_t)sizeof(s->hashkey))
        return fail(err, err_len, -EIO, "%s: no random bytes for the key hash", s->data_path);
    struct { const char *name; void *p; size_t len; } recs[3] = {
        {"format", v, 4}, {"hashkey", s->hashkey, 16}, {"created", v + 4, 8},
    };
    put_le32(v, STORE_FORMAT_VERSION);
    put_le64(v + 4, (uint64_t)wall_now(s));
    for (int i = 0; i < 3; i++) {
        MDB_val key = {strlen(recs[i].name), (void *)recs[i].name}, val = {recs[i].len, recs[i].p};
        if ((rc = mdb_put(txn, s->dbi[DB_META], &key, &val, 0)) != 0)
            return fail(err, err_len, store_errno(rc), "%s: cannot write meta: %s",
                        s->data_path, rc_str(rc));
    }
    return 0;
}

/* Check the format record of an existing store and open its databases. */
static int
meta_check(struct store *s, MDB_txn *txn, char *err, size_t err_len)
{
    MDB_val key = {6, "format"}, val;
    int rc = mdb_get(txn, s->dbi[DB_META], &key, &val);

    if (rc == MDB_NOTFOUND)
        return fail(err, err_len, -EPROTONOSUPPORT, "%s: no format version record",
                    s->data_path);
    if (rc != 0 || val.mv_size != 4)
        return fail(err, err_len, -EUCLEAN, "%s: format version record damaged", s->data_path);
    uint32_t version = get_le32(val.mv_data);
    if (version != STORE_FORMAT_VERSION)
        return fail(err, err_len, -EPROTONOSUPPORT,
                    "%s: format version %" PRIu32 ", this build reads version %u",
                    s->data_path, version, STORE_FORMAT_VERSION);
    key = (MDB_val){7, "hashkey"};
    if (mdb_get(txn, s->dbi[DB_META], &key, &val) != 0 || val.mv_size != 16)
        return fail(err, err_len, -EUCLEAN, "%s: key hash record missing or damaged",
                    s->data_path);
    memcpy(s->hashkey, val.mv_data, 16);
    /* Databases added after format 1 shipped are created in stores made before them (older
     * builds never look at them, so the format version stays). */
    for (int i = 1; i < DB_COUNT; i++)
        if ((rc = mdb_dbi_open(txn, store_db_names[i], i >= DB_TOKENS ? MDB_CREATE : 0,
                               &s->dbi[i])) != 0)
            return fail(err, err_len, -EUCLEAN, "%s: database %s missing: %s", s->data_path,
                        store_db_names[i], mdb_strerror(rc));
    return 0;
}

/* Find or make the meta database, then the others. */
static int
meta_open(struct store *s, bool *created, char *err, size_t err_len)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

    *created = false;
    if (rc != 0)
        return fail(err, err_len, store_is_damage(rc) ? -EUCLEAN : store_errno(rc),
                    "%s: cannot begin a transaction: %s", s->data_path, mdb_strerror(rc));
    rc = mdb_dbi_open(txn, store_db_names[DB_META], 0, &s->dbi[DB_META]);
    if (rc == MDB_NOTFOUND) {
        MDB_dbi main;
        MDB_stat st;
        if ((rc = mdb_dbi_open(txn, NULL, 0, &main)) == 0 &&
            (rc = mdb_stat(txn, main, &st)) == 0 && st.ms_entries > 0)
            rc = fail(err, err_len, -EPROTONOSUPPORT,
                      "%s: not a Petrel store (no meta database)", s->data_path);
        else if (rc == 0 && (rc = meta_create(s, txn, err, err_len)) == 0)
            *created = true;
    } else if (rc != 0) {
        rc = fail(err, err_len, store_is_damage(rc) ? -EUCLEAN : store_errno(rc),
                  "%s: cannot open the meta database: %s", s->data_path, mdb_strerror(rc));
    } else {
        rc = meta_check(s, txn, err, err_len);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc < 0 && rc > -4096 ? rc : fail(err, err_len, store_errno(rc), "%s: %s",
                                                  s->data_path, mdb_strerror(rc));
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return fail(err, err_len, store_errno(rc), "%s: cannot commit: %s", s->data_path,
                    mdb_strerror(rc));
    return 0;
}

/* Retained order numbers start above every stored one, so that a change made after the
 * restart always wins over one made before. */
static int
rorder_max(struct store *s, MDB_cursor *c)
{
    MDB_val key, val;
    uint64_t max = 0, seq;
    MDB_cursor_op op = MDB_FIRST;
    int rc;

    while ((rc = mdb_cursor_get(c, &key, &val, op)) == 0) {
        op = MDB_NEXT;
        if (rec_rorder_decode(mdb_slice(&key), mdb_slice(&val), &seq) != 0)
            return -EUCLEAN;
        if (seq > max)
            max = seq;
    }
    atomic_store(&s->next_rseq, max + 1);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Read every record once and check it; find the highest message id and retained order. */
static int
validate(struct store *s, uint64_t *n_records, char *err, size_t err_len)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

    *n_records = 0;
    if (rc != 0)
        return fail(err, err_len, store_is_damage(rc) ? -EUCLEAN : store_errno(rc),
                    "%s: cannot begin a transaction: %s", s->data_path, mdb_strerror(rc));
    for (int db = DB_SESSIONS; db < DB_COUNT && rc == 0; db++) {
        MDB_cursor *c;
        MDB_val key = {0, NULL}, val;
        if ((rc = mdb_cursor_open(txn, s->dbi[db], &c)) != 0)
            break;
        while ((rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) == 0) {
            (*n_records)++;
            if (rec_check(db, mdb_slice(&key), mdb_slice(&val)) != 0) {
                rc = -EUCLEAN;
                break;
            }
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc == 0 && db == DB_MSGS && mdb_cursor_get(c, &key, &val, MDB_LAST) == 0)
            atomic_store(&s->next_msg_id, get_be64(key.mv_data) + 1);
        if (rc == 0 && db == DB_RORDER)
            rc = rorder_max(s, c);
        mdb_cursor_close(c);
        if (rc != 0) {
            char shown[64] = "";
            size_t n = key.mv_size < 24 ? key.mv_size : 24;
            for (size_t i = 0; rc == -EUCLEAN && i < n; i++)
                snprintf(shown + 2 * i, 3, "%02x", ((const uint8_t *)key.mv_data)[i]);
            rc = fail(err, err_len, store_is_damage(rc) ? -EUCLEAN : store_errno(rc),
                      "%s: damaged record in database %s (key %s): %s", s->data_path,
                      store_db_names[db], shown, rc == -EUCLEAN ? "does not decode" :
                      mdb_strerror(rc));
        }
    }
    mdb_txn_abort(txn);
    return rc;
}

static struct store *
store_alloc(const struct store_options *opt)
{
    struct store *s = xcalloc(1, sizeof(*s));
    pthread_condattr_t ca;

    s->dir = xstrdup(opt->dir);
    s->data_path = xmalloc(strlen(opt->dir) + sizeof("/data.mdb"));
    sprintf(s->data_path, "%s/data.mdb", opt->dir);
    s->lock_fd = -1;
    s->sync = opt->sync;
    s->sync_period_ms = opt->sync_period_ms ? opt->sync_period_ms : 1000;
    s->max_size = opt->max_size;
    s->max_pending = opt->max_pending ? opt->max_pending : DEFAULT_MAX_PENDING;
    s->max_pending_bytes = opt->max_pending_bytes ? opt->max_pending_bytes :
                                                    DEFAULT_MAX_PENDING_BYTES;
    s->wall_clock = opt->wall_clock;
    s->wall_ctx = opt->wall_ctx;
    atomic_init(&s->next_msg_id, 1);
    atomic_init(&s->next_rseq, 1);
    pthread_mutex_init(&s->txn_lock, NULL);
    pthread_mutex_init(&s->q_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->q_cond, &ca);
    pthread_condattr_destroy(&ca);
    s->q_tail = &s->q_head;
    buf_init(&s->scratch);
    return s;
}

static void
store_free(struct store *s)
{
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->txn_lock);
    pthread_mutex_destroy(&s->q_lock);
    pthread_cond_destroy(&s->q_cond);
    ref_table_fini(&s->refs);
    buf_fini(&s->scratch);
    free(s->data_path);
    free(s->dir);
    free(s);
}

/* LMDB does not write a page that a transaction allocated and freed again (it goes to the
 * free list unwritten), so the file can end before the last page its meta page counts: after
 * a SIGKILL (seen in the crash tests), or even a clean close. Such a file is sound. It is
 * extended to cover every counted page (sparse zeros, so nothing read through the map
 * faults) and each page that was missing must be on the free list; a file that lost pages in
 * use was cut short. Returns true when sound (the file stays extended); otherwise the file
 * is put back at its size. */
static bool
tail_is_free(struct store *s, uint64_t have, uint64_t need, uint64_t psize)
{
    uint64_t from = have / psize, n = need / psize - from, found = 0;
    int fd = open(s->data_path, O_RDWR | O_CLOEXEC);
    uint8_t *seen = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *c;
    MDB_val key, val;

    if (fd < 0)
        return false;
    if (ftruncate(fd, (off_t)need) != 0)
        goto out;
    seen = xcalloc(n / 8 + 1, 1);
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0 ||
        mdb_cursor_open(txn, 0 /* the free list */, &c) != 0)
        goto out;
    /* Each record: a count, then that many page numbers (LMDB's ID list, size_t words). */
    while (mdb_cursor_get(c, &key, &val, MDB_NEXT) == 0) {
        size_t cnt, pg;
        if (val.mv_size < sizeof(cnt))
            break;
        memcpy(&cnt, val.mv_data, sizeof(cnt));
        if (cnt > val.mv_size / sizeof(pg) - 1)
            break;
        for (size_t i = 1; i <= cnt; i++) {
            memcpy(&pg, (const char *)val.mv_data + i * sizeof(pg), sizeof(pg));
            if (pg < from || pg - from >= n)
                continue;
            uint64_t k = pg - from;
            if (!(seen[k / 8] & (1u << (k % 8)))) {
                seen[k / 8] |= (uint8_t)(1u << (k % 8));
                found++;
            }
        }
    }
    mdb_cursor_close(c);
out:
    if (txn)
        mdb_txn_abort(txn);
    free(seen);
    if (found != n && ftruncate(fd, (off_t)have) != 0)
        log_error("store cannot restore the size of %s: %s", s->data_path, strerror(errno));
    close(fd);
    return found == n;
}

/* The environment: map size, flags, and the checks LMDB does not do. */
static int
env_open(struct store *s, const struct store_options *opt, char *err, size_t err_len)
{
    struct stat st;
    uint64_t file_size = stat(s->data_path, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t map = opt->initial_map_size ? opt->initial_map_size : DEFAULT_MAP_SIZE;
    int rc;

    if (map < 2 * file_size)
        map = 2 * file_size;
    if (s->max_size && map > s->max_size)
        map = s->max_size > file_size ? s->max_size : file_size;
    map = round_up(map, page);
    if ((rc = mdb_env_create(&s->env)) != 0)
        return fail(err, err_len, store_errno(rc), "%s: %s", s->data_path, mdb_strerror(rc));
    mdb_env_set_maxdbs(s->env, DB_COUNT + 2);
    mdb_env_set_mapsize(s->env, map);
    rc = mdb_env_open(s->env, s->dir, s->sync == STORE_SYNC_PERIODIC ? MDB_NOSYNC : 0, 0600);
    if (rc != 0) {
        mdb_env_close(s->env);
        s->env = NULL;
        if (rc == MDB_VERSION_MISMATCH)
            return fail(err, err_len, -EPROTONOSUPPORT,
                        "%s: written by an incompatible LMDB version", s->data_path);
        if (store_is_damage(rc))
            return fail(err, err_len, -EUCLEAN, "%s: not an LMDB file, or damaged: %s",
                        s->data_path, mdb_strerror(rc));
        return fail(err, err_len, store_errno(rc), "%s: %s", s->data_path, mdb_strerror(rc));
    }
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &est);
    if (stat(s->data_path, &st) != 0)
        return fail(err, err_len, -errno, "%s: %s", s->data_path, strerror(errno));
    /* Pages past the end of the file would fault (SIGBUS) when read through the map. */
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
    if ((uint64_t)st.st_size < need) {
        if (!tail_is_free(s, (uint64_t)st.st_size, need, est.ms_psize))
            return fail(err, err_len, -EUCLEAN,
                        "%s: truncated: %" PRIu64 " bytes, its pages need %" PRIu64,
                        s->data_path, (uint64_t)st.st_size, need);
        log_info("store %s ended at %" PRIu64 " bytes before its last free pages; extended to "
                 "%" PRIu64, s->data_path, (uint64_t)st.st_size, need);
    }
    if (mdb_env_get_maxkeysize(s->env) < (int)KEY_MAX)
        return fail(err, err_len, -ENOTSUP, "%s: LMDB built with keys under %u bytes",
                    s->data_path, KEY_MAX);
    s->map_size = info.me_mapsize;
    atomic_store(&s->n_map_size, s->map_size);
    return 0;
}

static int
open_once(const struct store_options *opt, struct store **out, char *err, size_t err_len)
{
    struct store *s = store_alloc(opt);
    uint64_t t0 = clock_now_ms(), n_records = 0;
    bool created;
    int rc;

    if ((rc = mkdirs(s->dir)) != 0) {
        rc = fail(err, err_len, rc, "%s: cannot create directory: %s", s->dir, strerror(-rc));
        goto out;
    }
    char lock_path[PATH_MAX];
    snprintf(lock_path, sizeof(lock_path), "%s/petrel.lock", s->dir);
    if ((s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        rc = fail(err, err_len, -errno, "%s: %s", lock_path, strerror(errno));
        goto out;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        rc = fail(err, err_len, rc, "%s: store in use by another process", s->dir);
        goto out;
    }
    if ((rc = env_open(s, opt, err, err_len)) != 0 ||
        (rc = meta_open(s, &created, err, err_len)) != 0)
        goto out;
    if (created)
        sync_dir(s->dir);
    else if ((rc = validate(s, &n_records, err, err_len)) != 0)
        goto out;
    s->thread_started = pthread_create(&s->thread, NULL, store_writer_main, s) == 0;
    if (!s->thread_started) {
        rc = fail(err, err_len, -EAGAIN, "%s: cannot start the storage thread", s->dir);
        goto out;
    }
    log_info("store opened dir=%s records=%" PRIu64 " map=%" PRIu64 " sync=%s ms=%" PRIu64,
             s->dir, n_records, s->map_size, s->sync == STORE_SYNC_ALWAYS ? "always" : "periodic",
             clock_now_ms() - t0);
    *out = s;
    return 0;
out:
    store_free(s);
    return rc;
}

/* Rename dir to "<dir>.broken-<UTC time>" (with "-N" when taken). */
static int
move_aside(const struct store_options *opt, char *moved, size_t moved_len)
{
    time_t now = opt->wall_clock ? (time_t)opt->wall_clock(opt->wall_ctx) : time(NULL);
    struct tm tm;
    char stamp[32];

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    for (int i = 0; i < 100; i++) {
        if (i == 0)
            snprintf(moved, moved_len, "%s.broken-%s", opt->dir, stamp);
        else
            snprintf(moved, moved_len, "%s.broken-%s-%d", opt->dir, stamp, i);
        if (access(moved, F_OK) == 0)
            continue;
        if (rename(opt->dir, moved) != 0)
            return -errno;
        char *parent = xstrdup(opt->dir);
        char *slash = strrchr(parent, '/');
        if (slash)
            *(slash == parent ? slash + 1 : slash) = 0;
        sync_dir(slash ? parent : ".");
        free(parent);
        return 0;
    }
    return -EEXIST;
}

int
store_open(const struct store_options *opt, struct store **out, char *err, size_t err_len)
{
    struct store_options o = *opt;
    char moved[PATH_MAX], *dir = xstrdup(opt->dir ? opt->dir : "");
    size_t len = strlen(dir);
    int rc;

    /* "<dir>/" would be moved aside into itself. */
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = 0;
    o.dir = dir;
    *out = NULL;
    if (len == 0) {
        rc = fail(err, err_len, -EINVAL, "store: no directory given");
        goto out;
    }
    rc = open_once(&o, out, err, err_len);
    if ((rc != -EUCLEAN && rc != -EPROTONOSUPPORT) || !o.move_aside)
        goto out;
    int mrc = move_aside(&o, moved, sizeof(moved));
    if (mrc != 0) {
        size_t n = err ? strlen(err) : 0;
        if (err && n < err_len)
            snprintf(err + n, err_len - n, "; cannot move it aside: %s", strerror(-mrc));
        goto out;
    }
    log_warn("store moved aside dir=%s to=%s reason=\"%s\"", dir, moved, err ? err : "");
    rc = open_once(&o, out, err, err_len);
out:
    free(dir);
    return rc;
}

void
store_close(struct store *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->q_lock);
        s->stopping = true;
        pthread_cond_signal(&s->q_cond);
        pthread_mutex_unlock(&s->q_lock);
        pthread_join(s->thread, NULL);
    }
    store_free(s);
}
