/*
 * persist_tokens.c - the token table's (auth/token.h) persistence hook on the durable store,
 * and putting stored tokens back at start-up.
 *
 * Tokens are issued and revoked by the HTTP API, off the message path. Each change is a batch
 * of its own, and the call waits for its commit (fsync'd with persistence_sync always) on the
 * calling thread: a token the API has handed out survives a crash, and so does a revocation
 * it has confirmed. The wait costs that thread one commit (milliseconds); the storage thread
 * never waits for a worker, so it cannot deadlock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/token.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "session/internal.h"

/* Tries when the store's queue is full (-EAGAIN), 1 ms apart. */
#define SUBMIT_TRIES 5000
/* How long a commit may take before the change is reported failed. */
#define COMMIT_TIMEOUT_S 30

struct commit_wait {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    bool abandoned; /* the waiter gave up: the completion frees this */
    int rc;
};

static void
commit_done(void *ctx, int rc)
{
    struct commit_wait *w = ctx;

    pthread_mutex_lock(&w->m);
    if (w->abandoned) {
        pthread_mutex_unlock(&w->m);
        pthread_mutex_destroy(&w->m);
        pthread_cond_destroy(&w->c);
        free(w);
        return;
    }
    w->rc = rc;
    w->done = true;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

/* Submit `b` (taken) and wait for its commit. 0 or a negative errno. */
static int
commit(struct store *st, struct store_batch *b)
{
    struct commit_wait *w = xcalloc(1, sizeof(*w));
    struct timespec until;
    int rc = -EAGAIN;

    pthread_mutex_init(&w->m, NULL);
    pthread_cond_init(&w->c, NULL);
    for (int i = 0; i < SUBMIT_TRIES && rc == -EAGAIN; i++) {
        if ((rc = store_submit(st, b, commit_done, w)) == -EAGAIN)
            usleep(1000);
    }
    if (rc != 0) {
        store_batch_free(b);
        pthread_mutex_destroy(&w->m);
        pthread_cond_destroy(&w->c);
        free(w);
        return rc;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += COMMIT_TIMEOUT_S;
    pthread_mutex_lock(&w->m);
    while (!w->done && rc == 0)
        rc = pthread_cond_timedwait(&w->c, &w->m, &until);
    if (!w->done) {
        /* The completion will come later and free the wait. */
        w->abandoned = true;
        pthread_mutex_unlock(&w->m);
        return -ETIMEDOUT;
    }
    rc = w->rc;
    pthread_mutex_unlock(&w->m);
    pthread_mutex_destroy(&w->m);
    pthread_cond_destroy(&w->c);
    free(w);
    return rc;
}

static int
persist_token(void *ctx, const struct token_record *rec, bool del)
{
    struct hubs *hs = ctx;
    struct store_batch *b = store_batch_new(hs->store);
    struct slice hash = slice_make(rec->hash, TOKEN_HASH_LEN);
    int rc;

    if (del) {
        rc = store_batch_token_del(b, hash);
    } else {
        struct store_token t = {
            .hash = hash,
            .actions = (uint8_t)rec->actions,
            .expires_at = (int64_t)rec->expires_at,
            .label = slice_cstr(rec->label),
            .n_filters = (uint32_t)rec->n_filters,
            .filters = rec->filters,
        };
        rc = store_batch_token_put(b, &t);
    }
    if (rc == 0)
        rc = commit(hs->store, b);
    else
        store_batch_free(b);
    if (rc != 0)
        log_error("store: cannot %s token=%s: %s", del ? "delete" : "record", rec->label,
                  strerror(-rc));
    return rc;
}

void
persist_tokens_attach(struct hubs *hs)
{
    if (hs->store)
        tokens_set_persist(hs->tokens, persist_token, hs);
}

void
persist_tokens_detach(struct hubs *hs)
{
    tokens_set_persist(hs->tokens, NULL, NULL);
}

void
persist_token_restore(struct hubs *hs, const struct store_token *r, int64_t wall)
{
    char label[TOKEN_LABEL_LEN + 1];
    struct token_record rec = {
        .hash = r->hash.p,
        .label = label,
        .actions = r->actions,
        .expires_at = (uint64_t)r->expires_at,
        .n_filters = r->n_filters,
        .filters = r->filters,
    };

    snprintf(label, sizeof(label), "%.*s", SLICE_FMT(r->label));
    if (r->expires_at <= 0 || tokens_restore(hs->tokens, &rec, (uint64_t)wall) != 0)
        log_warn("store: token not restored token=%s (expired or malformed)", label);
}
