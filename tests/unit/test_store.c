/*
 * test_store.c - the durable store: every record kind through close/open/load, long keys,
 * message reference counting, cascades, batch atomicity, expiry purge by a fake wall clock
 * [MQTT-3.3.2-5] [MQTT-3.1.2-8], repair of orphans, and bad state: foreign format version,
 * truncated or garbled files, move-aside, a second opener.
 *
 * Group commit, disk full and crash safety are in test_store_commit.c. Each test works in a
 * fresh directory under /tmp, removed afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"
#include "store/store.h"
#include "store_wait.h"

/* ---- fixture ---- */

struct tctx {
    char root[64];                /* mkdtemp'd, removed at teardown */
    char dir[128];                /* the store, two levels below root (created by the store) */
    int64_t wall;                 /* the fake wall clock */
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
    snprintf(t->dir, sizeof(t->dir), "%s/a/b/store", t->root);
    t->wall = 1700000000;
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

static int64_t
fake_wall(void *ctx)
{
    return *(int64_t *)ctx;
}

static struct store_options
opts(struct tctx *t)
{
    return (struct store_options){.dir = t->dir, .wall_clock = fake_wall, .wall_ctx = &t->wall};
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


/* ---- a visitor writing one line per callback ---- */

struct vlog {
    char *text;
    size_t len;
    size_t cap;
    struct store_visitor v;
    bool keep_expired;   /* on_expired_session keeps a session with a will, as the broker does */
};

static void __attribute__((format(printf, 2, 3)))
lf(struct vlog *l, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (l->len + (size_t)n + 1 > l->cap) {
        l->cap = (l->len + (size_t)n + 1) * 2;
        l->text = realloc(l->text, l->cap);
    }
    va_start(ap, fmt);
    vsnprintf(l->text + l->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    l->len += (size_t)n;
}

/* Printable bytes as they are, others as \xNN; long strings shortened to head...tail(len). */
static void
ls(struct vlog *l, struct slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.len > 40 && i == 16) {
            lf(l, "...(%zu)", s.len);
            i = s.len - 8;
        }
        if (s.p[i] >= 0x20 && s.p[i] < 0x7f)
            lf(l, "%c", s.p[i]);
        else
            lf(l, "\\x%02x", s.p[i]);
    }
}

static int
v_session(void *ctx, const struct store_session *s)
{
    struct vlog *l = ctx;

    lf(l, "S ");
    ls(l, s->client_id);
    lf(l, " v=%u exp=%" PRIu32 " off=%" PRId64, s->version, s->expiry, s->offline_at);
    if (s->has_will) {
        lf(l, " will=");
        ls(l, s->will_topic);
        lf(l, ":");
        ls(l, s->will_payload);
        lf(l, ":");
        ls(l, s->will_props);
        lf(l, " q=%u r=%d d=%" PRIu32, s->will_qos, s->will_retain, s->will_delay);
    }
    lf(l, "\n");
    return 0;
}

static int
v_sub(void *ctx, const struct store_sub *sub)
{
    struct vlog *l = ctx;

    lf(l, "B ");
    ls(l, sub->client_id);
    lf(l, " ");
    ls(l, sub->filter);
    lf(l, " q=%u nl=%d rap=%d rh=%u id=%" PRIu32 "\n", sub->qos, sub->no_local,
       sub->retain_as_published, sub->retain_handling, sub->sub_id);
    return 0;
}

static void
msg_line(struct vlog *l, const struct store_msg *m)
{
    ls(l, m->topic);
    lf(l, ":");
    ls(l, m->payload);
    lf(l, ":");
    ls(l, m->props);
    lf(l, " q=%u r=%d x=%" PRId64, m->qos, m->retain, m->expiry_at);
}

static int
v_queue(void *ctx, const struct store_qentry *e, const struct store_msg *m)
{
    struct vlog *l = ctx;

    lf(l, "Q ");
    ls(l, e->client_id);
    lf(l, " seq=%" PRIu64 " st=%u q=%u r=%d sh=%d pid=%u ids=", e->seq, e->state, e->qos,
       e->retain, e->shared, e->packet_id);
    for (uint8_t i = 0; i < e->n_sub_ids; i++)
        lf(l, "%s%" PRIu32, i ? "," : "", e->sub_ids[i]);
    lf(l, " msg=");
    if (m) {
        assert_int_equal(m->id, e->msg_id);
        msg_line(l, m);
    } else {
        assert_int_equal(e->msg_id, 0);
        lf(l, "-");
    }
    lf(l, "\n");
    return 0;
}

static int
v_qos2(void *ctx, struct slice id, uint16_t packet_id)
{
    struct vlog *l = ctx;

    lf(l, "P ");
    ls(l, id);
    lf(l, " %u\n", packet_id);
    return 0;
}

static int
v_retained(void *ctx, const struct store_msg *m)
{
    struct vlog *l = ctx;

    lf(l, "R ");
    msg_line(l, m);
    lf(l, "\n");
    return 0;
}

static bool
v_expired(void *ctx, const struct store_session *s)
{
    struct vlog *l = ctx;

    lf(l, "X ");
    ls(l, s->client_id);
    if (s->has_will) {
        lf(l, " will=");
        ls(l, s->will_topic);
    }
    lf(l, "\n");
    return l->keep_expired && s->has_will;
}

static int
v_token(void *ctx, const struct store_token *t)
{
    struct vlog *l = ctx;

    lf(l, "T ");
    ls(l, t->hash);
    lf(l, " a=%u x=%" PRId64 " label=", t->actions, t->expires_at);
    ls(l, t->label);
    for (uint32_t i = 0; i < t->n_filters; i++) {
        lf(l, "%s", i ? "," : " f=");
        ls(l, t->filters[i]);
    }
    lf(l, "\n");
    return 0;
}

static void
vlog_init(struct vlog *l)
{
    memset(l, 0, sizeof(*l));
    l->text = calloc(1, 1);
    l->cap = 1;
    l->v = (struct store_visitor){l, v_session, v_sub, v_queue, v_qos2, v_retained, v_expired,
                                  v_token};
}

/* Load the store into a fresh log (freed by the caller). */
static char *
load_text_keeping(struct store *s, struct store_load_stats *st, bool keep_expired)
{
    struct vlog l;

    vlog_init(&l);
    l.keep_expired = keep_expired;
    assert_int_equal(store_load(s, &l.v, st), 0);
    return l.text;
}

static char *
load_text(struct store *s, struct store_load_stats *st)
{
    return load_text_keeping(s, st, false);
}

static void
expect_text(const char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fail_msg("loaded:\n%s\nexpected:\n%s", got, want);
}

static void
expect_consistent(struct store *s, uint64_t n_msgs, uint64_t n_refs)
{
    struct store_check c;

    assert_int_equal(store_check(s, &c), 0);
    assert_int_equal(c.n_bad_refcounts, 0);
    assert_int_equal(c.n_dangling, 0);
    assert_int_equal(c.n_orphans, 0);
    assert_int_equal(c.n_msgs, n_msgs);
    assert_int_equal(c.n_refs, n_refs);
}

/* ---- builders ---- */

#define S(lit) SLICE(lit)

static struct store_msg
msg(uint64_t id, const char *topic, const char *payload)
{
    return (struct store_msg){.id = id, .topic = slice_cstr(topic),
                              .payload = slice_cstr(payload), .qos = 1};
}

static void
put_msg(struct store_batch *b, uint64_t id, const char *topic, const char *payload)
{
    struct store_msg m = msg(id, topic, payload);

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
put_session(struct store_batch *b, const char *client, uint32_t expiry, int64_t offline_at)
{
    struct store_session s = {.client_id = slice_cstr(client), .version = 5, .expiry = expiry,
                              .offline_at = offline_at};

    assert_int_equal(store_batch_session_put(b, &s), 0);
}

/* ---- round trip ---- */

static void
round_trip_every_record(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);   /* creates a/b/store */
    struct store_batch *b = store_batch_new(s);
    static const uint8_t props[] = {0x01, 0x01, 0x23, 0x00, 0x05};   /* binary, with a NUL */
    char long_id[301], long_filter[700], long_topic[900];
    uint32_t ids[3] = {7, 268435455, 1};

    memset(long_id, 'i', 300);
    long_id[300] = 0;
    memset(long_filter, 'f', 699);
    long_filter[699] = 0;
    long_filter[0] = '#' - 1;          /* '"': keep it a plain filter */
    memset(long_topic, 't', 899);
    long_topic[899] = 0;

    struct store_session s1 = {
        .client_id = S("c1"), .version = 5, .expiry = 3600, .offline_at = 1699999000,
        .has_will = true, .will_qos = 2, .will_retain = true, .will_delay = 30,
        .will_topic = S("w/c1"), .will_payload = S("gone"), .will_props = {props, sizeof(props)},
    };
    assert_int_equal(store_batch_session_put(b, &s1), 0);
    struct store_session s2 = {.client_id = slice_cstr(long_id), .version = 4,
                               .expiry = STORE_EXPIRY_NEVER};
    assert_int_equal(store_batch_session_put(b, &s2), 0);

    struct store_sub sub1 = {.client_id = S("c1"), .filter = S("a/+/c"), .qos = 2,
                             .no_local = true, .retain_as_published = true,
                             .retain_handling = 2, .sub_id = 42};
    struct store_sub sub2 = {.client_id = S("c1"), .filter = slice_cstr(long_filter), .qos = 1};
    struct store_sub sub3 = {.client_id = slice_cstr(long_id), .filter = S("$share/g/x/#")};
    assert_int_equal(store_batch_sub_put(b, &sub1), 0);
    assert_int_equal(store_batch_sub_put(b, &sub2), 0);
    assert_int_equal(store_batch_sub_put(b, &sub3), 0);

    struct store_msg m1 = {.id = 1, .topic = S("a/b/c"), .payload = S("p1"),
                           .props = {props, sizeof(props)}, .qos = 2, .retain = false,
                           .expiry_at = 1800000000};
    assert_int_equal(store_batch_msg_put(b, &m1), 0);
    put_msg(b, 2, "a/x/c", "p2");
    put_msg(b, 3, long_topic, "p3");
    /* Sequence order is delivery order whatever the insertion order (big-endian keys). */
    struct store_qentry e = {.client_id = S("c1"), .seq = 256, .msg_id = 2, .qos = 1,
                             .state = STORE_Q_WAIT_PUBACK, .packet_id = 9};
    assert_int_equal(store_batch_queue_add(b, &e), 0);
    e = (struct store_qentry){.client_id = S("c1"), .seq = 2, .msg_id = 1, .qos = 2,
                              .retain = true, .shared = true, .state = STORE_Q_WAIT_PUBREC,
                              .packet_id = 65535, .n_sub_ids = 3, .sub_ids = ids};
    assert_int_equal(store_batch_queue_add(b, &e), 0);
    add_entry(b, "c1", 1, 2);
    add_entry(b, "c1", 3, 1);
    add_entry(b, long_id, 5, 2);
    assert_int_equal(store_batch_qos2_add(b, S("c1"), 513), 0);
    assert_int_equal(store_batch_qos2_add(b, S("c1"), 2), 0);
    assert_int_equal(store_batch_qos2_add(b, slice_cstr(long_id), 1), 0);
    assert_int_equal(store_batch_retained_set(b, S("a/b/c"), 1), 0);
    assert_int_equal(store_batch_retained_set(b, slice_cstr(long_topic), 3), 0);
    assert_int_equal(submit_wait(s, b), 0);

    /* QUEUED -> WAIT_PUBREC -> WAIT_PUBCOMP: the last releases the message. */
    b = store_batch_new(s);
    assert_int_equal(store_batch_queue_update(b, S("c1"), 3, STORE_Q_WAIT_PUBREC, 10), 0);
    assert_int_equal(store_batch_queue_update(b, S("c1"), 3, STORE_Q_WAIT_PUBCOMP, 10), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 3, 6);
    store_close(s);

    s = open_ok(&o);
    struct store_load_stats st;
    char *text = load_text(s, &st);
    expect_text(text,
        "S c1 v=5 exp=3600 off=1699999000 will=w/c1:gone:\\x01\\x01#\\x00\\x05 q=2 r=1 d=30\n"
        "B c1 \"fffffffffffffff...(699)ffffffff q=1 nl=0 rap=0 rh=0 id=0\n"
        "B c1 a/+/c q=2 nl=1 rap=1 rh=2 id=42\n"
        "Q c1 seq=1 st=0 q=1 r=0 sh=0 pid=0 ids= msg=a/x/c:p2: q=1 r=0 x=0\n"
        "Q c1 seq=2 st=2 q=2 r=1 sh=1 pid=65535 ids=7,268435455,1 "
        "msg=a/b/c:p1:\\x01\\x01#\\x00\\x05 q=2 r=0 x=1800000000\n"
        "Q c1 seq=3 st=3 q=1 r=0 sh=0 pid=10 ids= msg=-\n"
        "Q c1 seq=256 st=1 q=1 r=0 sh=0 pid=9 ids= msg=a/x/c:p2: q=1 r=0 x=0\n"
        "P c1 2\n"
        "P c1 513\n"
        "S iiiiiiiiiiiiiiii...(300)iiiiiiii v=4 exp=4294967295 off=0\n"
        "B iiiiiiiiiiiiiiii...(300)iiiiiiii $share/g/x/# q=0 nl=0 rap=0 rh=0 id=0\n"
        "Q iiiiiiiiiiiiiiii...(300)iiiiiiii seq=5 st=0 q=1 r=0 sh=0 pid=0 ids= "
        "msg=a/x/c:p2: q=1 r=0 x=0\n"
        "P iiiiiiiiiiiiiiii...(300)iiiiiiii 1\n"
        "R a/b/c:p1:\\x01\\x01#\\x00\\x05 q=2 r=0 x=1800000000\n"
        "R tttttttttttttttt...(899)tttttttt:p3: q=1 r=0 x=0\n");
    free(text);
    assert_int_equal(st.n_sessions, 2);
    assert_int_equal(st.n_subs, 3);
    assert_int_equal(st.n_queued, 5);
    assert_int_equal(st.n_qos2, 3);
    assert_int_equal(st.n_retained, 2);
    assert_int_equal(st.n_msgs, 3);
    assert_int_equal(st.n_repaired, 0);
    /* Message ids continue after the highest stored. */
    assert_true(store_msg_id_new(s) > 3);
    store_close(s);
}

/* Replacing records and deleting single ones. */
static void
replace_and_delete(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);

    put_session(b, "c", 10, 0);
    put_session(b, "c", 20, 1699999995);              /* replaces */
    struct store_sub sub = {.client_id = S("c"), .filter = S("x"), .qos = 0};
    assert_int_equal(store_batch_sub_put(b, &sub), 0);
    sub.qos = 1;
    assert_int_equal(store_batch_sub_put(b, &sub), 0);
    sub.filter = S("y");
    assert_int_equal(store_batch_sub_put(b, &sub), 0);
    assert_int_equal(store_batch_sub_del(b, S("c"), S("y")), 0);
    assert_int_equal(store_batch_sub_del(b, S("c"), S("nothing")), 0);
    put_msg(b, 1, "t", "a");
    put_msg(b, 2, "t", "b");
    add_entry(b, "c", 1, 1);
    add_entry(b, "c", 1, 2);                          /* replaces: message 1 loses its ref */
    assert_int_equal(store_batch_qos2_add(b, S("c"), 7), 0);
    assert_int_equal(store_batch_qos2_drop(b, S("c"), 7), 0);
    assert_int_equal(store_batch_qos2_drop(b, S("c"), 8), 0);
    assert_int_equal(store_batch_retained_clear(b, S("nothing")), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 1);

    /* Updates and drops of missing entries are ignored and counted. */
    b = store_batch_new(s);
    assert_int_equal(store_batch_queue_update(b, S("c"), 99, STORE_Q_WAIT_PUBACK, 1), 0);
    assert_int_equal(store_batch_queue_drop(b, S("c"), 98), 0);
    assert_int_equal(submit_wait(s, b), 0);
    struct store_stats stats;
    store_stats(s, &stats);
    assert_int_equal(stats.ops_missing, 2);

    char *text = load_text(s, NULL);
    expect_text(text, "S c v=5 exp=20 off=1699999995\n"
                      "B c x q=1 nl=0 rap=0 rh=0 id=0\n"
                      "Q c seq=1 st=0 q=1 r=0 sh=0 pid=0 ids= msg=t:b: q=1 r=0 x=0\n");
    free(text);
    store_close(s);
}

/* ---- reference counting ---- */

static void
message_shared_by_three_queues_and_retained(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);
    uint64_t id = store_msg_id_new(s);

    put_msg(b, id, "news", "hello");
    for (int i = 0; i < 3; i++) {
        char c[8];
        snprintf(c, sizeof(c), "s%d", i);
        put_session(b, c, 100, 0);
        add_entry(b, c, 1, id);
    }
    assert_int_equal(store_batch_retained_set(b, S("news"), id), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 4);

    /* Each drop in its own batch: the message stays until the last reference goes. */
    const char *clients[3] = {"s0", "s1", "s2"};
    for (int i = 0; i < 3; i++) {
        b = store_batch_new(s);
        assert_int_equal(store_batch_queue_drop(b, slice_cstr(clients[i]), 1), 0);
        assert_int_equal(submit_wait(s, b), 0);
        expect_consistent(s, 1, 3 - (uint64_t)i);
    }
    b = store_batch_new(s);
    assert_int_equal(store_batch_retained_clear(b, S("news")), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 0, 0);

    /* Drop the last reference and add a new one in the same batch: the message survives. */
    id = store_msg_id_new(s);
    b = store_batch_new(s);
    put_msg(b, id, "t", "x");
    add_entry(b, "s0", 2, id);
    assert_int_equal(submit_wait(s, b), 0);
    b = store_batch_new(s);
    assert_int_equal(store_batch_queue_drop(b, S("s0"), 2), 0);
    add_entry(b, "s1", 2, id);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 1);

    /* A message put without any reference does not stay. */
    b = store_batch_new(s);
    put_msg(b, store_msg_id_new(s), "t", "unreferenced");
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 1);

    /* Retained replaced by another message: the first one goes. */
    uint64_t r1 = store_msg_id_new(s), r2 = store_msg_id_new(s);
    b = store_batch_new(s);
    put_msg(b, r1, "r", "1");
    assert_int_equal(store_batch_retained_set(b, S("r"), r1), 0);
    assert_int_equal(submit_wait(s, b), 0);
    b = store_batch_new(s);
    put_msg(b, r2, "r", "2");
    assert_int_equal(store_batch_retained_set(b, S("r"), r2), 0);
    assert_int_equal(store_batch_retained_set(b, S("r"), r2), 0);   /* same again: no change */
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 2, 2);
    store_close(s);
}

/* Two workers change one retained topic at once: each takes its number under the broker's
 * retained lock, but their batches may be submitted in the other order. The store keeps the
 * change with the higher number (docs/design.md "Durability"). */
static void
retained_order_beats_commit_order(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    uint64_t first = store_retained_seq_new(s), second = store_retained_seq_new(s);
    uint64_t m1 = store_msg_id_new(s), m2 = store_msg_id_new(s);
    struct store_batch *b;

    assert_true(second > first);
    /* The later set commits first; the earlier one is then ignored, its message not kept. */
    b = store_batch_new(s);
    put_msg(b, m2, "r/t", "later");
    assert_int_equal(store_batch_retained_set_seq(b, S("r/t"), m2, second), 0);
    assert_int_equal(submit_wait(s, b), 0);
    b = store_batch_new(s);
    put_msg(b, m1, "r/t", "earlier");
    assert_int_equal(store_batch_retained_set_seq(b, S("r/t"), m1, first), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 1);
    char *text = load_text(s, NULL);
    expect_text(text, "R r/t:later: q=1 r=0 x=0\n");
    free(text);

    /* A clear that commits before an earlier set still wins (it leaves a tombstone). */
    uint64_t set_seq = store_retained_seq_new(s), clear_seq = store_retained_seq_new(s);
    uint64_t m3 = store_msg_id_new(s);
    b = store_batch_new(s);
    assert_int_equal(store_batch_retained_clear_seq(b, S("r/t"), clear_seq), 0);
    assert_int_equal(submit_wait(s, b), 0);
    b = store_batch_new(s);
    put_msg(b, m3, "r/t", "stale");
    assert_int_equal(store_batch_retained_set_seq(b, S("r/t"), m3, set_seq), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 0, 0);
    /* In order, a newer set replaces as usual. */
    uint64_t m4 = store_msg_id_new(s), newest = store_retained_seq_new(s);
    b = store_batch_new(s);
    put_msg(b, m4, "r/t", "newest");
    assert_int_equal(store_batch_retained_set_seq(b, S("r/t"), m4, newest), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 1);
    store_close(s);

    /* After a restart numbering goes on above every stored one, so a change made now wins
     * over any made before. */
    s = open_ok(&o);
    assert_true(store_retained_seq_new(s) > newest);
    text = load_text(s, NULL);
    expect_text(text, "R r/t:newest: q=1 r=0 x=0\n");
    free(text);
    store_close(s);
}

static void
session_delete_cascades(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);

    /* "ab" sorts between "a" and "a\0...": deleting "a" must leave "ab" whole. */
    put_msg(b, 1, "t", "shared");
    for (int i = 0; i < 3; i++) {
        const char *c = i == 0 ? "a" : i == 1 ? "ab" : "b";
        put_session(b, c, 100, 0);
        struct store_sub sub = {.client_id = slice_cstr(c), .filter = S("t")};
        assert_int_equal(store_batch_sub_put(b, &sub), 0);
        for (uint64_t seq = 1; seq <= 5; seq++)
            add_entry(b, c, seq, 1);
        assert_int_equal(store_batch_qos2_add(b, slice_cstr(c), 1), 0);
    }
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 15);

    b = store_batch_new(s);
    assert_int_equal(store_batch_session_del(b, S("a")), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 1, 10);
    b = store_batch_new(s);
    assert_int_equal(store_batch_session_del(b, S("ab")), 0);
    assert_int_equal(store_batch_session_del(b, S("b")), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 0, 0);
    char *text = load_text(s, NULL);
    expect_text(text, "");
    free(text);
    store_close(s);
}

/* A batch fails whole: referencing a missing message undoes everything else in it, and the
 * batches around it are not affected. */
static void
failed_batch_changes_nothing(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);

    put_session(b, "before", 1, 0);
    assert_int_equal(submit_wait(s, b), 0);
    b = store_batch_new(s);
    put_session(b, "bad", 1, 0);
    put_msg(b, 5, "t", "x");
    add_entry(b, "bad", 1, 5);
    add_entry(b, "bad", 2, 6);                         /* message 6 does not exist */
    assert_int_equal(submit_wait(s, b), -ENOENT);
    b = store_batch_new(s);
    assert_int_equal(store_batch_retained_set(b, S("t"), 77), 0);
    assert_int_equal(submit_wait(s, b), -ENOENT);
    b = store_batch_new(s);
    put_session(b, "after", 1, 0);
    assert_int_equal(submit_wait(s, b), 0);
    /* An entry in WAIT_PUBCOMP has no message left: it cannot go back. */
    b = store_batch_new(s);
    put_msg(b, 8, "t", "y");
    add_entry(b, "after", 1, 8);
    assert_int_equal(store_batch_queue_update(b, S("after"), 1, STORE_Q_WAIT_PUBCOMP, 3), 0);
    assert_int_equal(submit_wait(s, b), 0);
    b = store_batch_new(s);
    assert_int_equal(store_batch_queue_update(b, S("after"), 1, STORE_Q_WAIT_PUBACK, 3), 0);
    assert_int_equal(submit_wait(s, b), -EINVAL);
    expect_consistent(s, 0, 0);

    char *text = load_text(s, NULL);
    expect_text(text, "S after v=5 exp=1 off=0\n"
                      "Q after seq=1 st=3 q=1 r=0 sh=0 pid=3 ids= msg=-\n"
                      "S before v=5 exp=1 off=0\n");
    free(text);
    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.batches_failed, 3);
    store_close(s);
}

static void
builders_refuse_bad_arguments(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);
    uint32_t ids[STORE_MAX_SUB_IDS + 1] = {0};

    struct store_session sess = {.client_id = S("")};
    assert_int_equal(store_batch_session_put(b, &sess), -EINVAL);
    sess.client_id = S("a\xff");
    assert_int_equal(store_batch_session_put(b, &sess), -EINVAL);
    assert_int_equal(store_batch_session_del(b, slice_make("a\0b", 3)), -EINVAL);
    struct store_sub sub = {.client_id = S("a"), .filter = S("x"), .qos = 3};
    assert_int_equal(store_batch_sub_put(b, &sub), -EINVAL);
    sub = (struct store_sub){.client_id = S("a"), .filter = S(""), .qos = 1};
    assert_int_equal(store_batch_sub_put(b, &sub), -EINVAL);
    struct store_msg m = msg(0, "t", "p");
    assert_int_equal(store_batch_msg_put(b, &m), -EINVAL);
    struct store_qentry e = {.client_id = S("a"), .seq = 1, .msg_id = 0, .qos = 1};
    assert_int_equal(store_batch_queue_add(b, &e), -EINVAL);      /* queued without message */
    e.msg_id = 1;
    e.n_sub_ids = STORE_MAX_SUB_IDS + 1;
    e.sub_ids = ids;
    assert_int_equal(store_batch_queue_add(b, &e), -EINVAL);
    assert_int_equal(store_batch_queue_update(b, S("a"), 1, 4, 0), -EINVAL);
    assert_int_equal(store_batch_retained_set(b, S("t"), 0), -EINVAL);
    assert_int_equal(store_batch_ops(b), 0);
    assert_int_equal(store_batch_bytes(b), 0);
    /* An empty batch is a barrier: it completes. */
    assert_int_equal(submit_wait(s, b), 0);
    store_close(s);
}

/* ---- expiry across a restart (wall clock) ---- */

static void
expiry_purged_at_load(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);

    struct store_session gone = {.client_id = S("gone"), .version = 5, .expiry = 100,
                                 .offline_at = 1000, .has_will = true, .will_topic = S("w"),
                                 .will_payload = S("bye")};
    assert_int_equal(store_batch_session_put(b, &gone), 0);
    put_session(b, "kept", 10000, 1000);
    put_session(b, "online", 1, 0);                    /* online when the broker stopped */
    put_session(b, "never", STORE_EXPIRY_NEVER, 1000);
    struct store_sub sub = {.client_id = S("gone"), .filter = S("x")};
    assert_int_equal(store_batch_sub_put(b, &sub), 0);

    struct store_msg old = msg(1, "t", "stale");
    old.expiry_at = 1500;
    assert_int_equal(store_batch_msg_put(b, &old), 0);
    put_msg(b, 2, "t", "fresh");
    struct store_msg ret_old = msg(3, "r/old", "stale");
    ret_old.expiry_at = 1999;
    assert_int_equal(store_batch_msg_put(b, &ret_old), 0);
    struct store_msg ret_new = msg(4, "r/new", "fresh");
    ret_new.expiry_at = 2001;
    assert_int_equal(store_batch_msg_put(b, &ret_new), 0);

    add_entry(b, "gone", 1, 2);
    add_entry(b, "kept", 1, 1);                        /* queued and expired: purged */
    add_entry(b, "kept", 2, 2);
    struct store_qentry inflight = {.client_id = S("kept"), .seq = 3, .msg_id = 1, .qos = 1,
                                    .state = STORE_Q_WAIT_PUBACK, .packet_id = 4};
    assert_int_equal(store_batch_queue_add(b, &inflight), 0);   /* inflight: kept */
    add_entry(b, "never", 1, 1);                       /* purged */
    assert_int_equal(store_batch_retained_set(b, S("r/old"), 3), 0);
    assert_int_equal(store_batch_retained_set(b, S("r/new"), 4), 0);
    assert_int_equal(submit_wait(s, b), 0);
    expect_consistent(s, 4, 7);
    store_close(s);

    t->wall = 2000;                                    /* the broker was down until now */
    s = open_ok(&o);
    struct store_load_stats st;
    char *text = load_text(s, &st);
    expect_text(text, "X gone will=w\n"
                      "S kept v=5 exp=10000 off=1000\n"
                      "Q kept seq=2 st=0 q=1 r=0 sh=0 pid=0 ids= msg=t:fresh: q=1 r=0 x=0\n"
                      "Q kept seq=3 st=1 q=1 r=0 sh=0 pid=4 ids= msg=t:stale: q=1 r=0 x=1500\n"
                      "S never v=5 exp=4294967295 off=1000\n"
                      "S online v=5 exp=1 off=0\n"
                      "R r/new:fresh: q=1 r=0 x=2001\n");
    free(text);
    assert_int_equal(st.n_expired_sessions, 1);
    assert_int_equal(st.n_expired_msgs, 3);
    assert_int_equal(st.n_repaired, 0);
    assert_int_equal(st.n_msgs, 3);
    expect_consistent(s, 3, 3);
    store_close(s);

    /* The purge was written: a second load finds nothing more to do. */
    s = open_ok(&o);
    text = load_text(s, &st);
    free(text);
    assert_int_equal(st.n_expired_sessions + st.n_expired_msgs + st.n_repaired, 0);
    assert_int_equal(st.n_sessions, 3);
    store_close(s);
}

/* A session that expired while the broker was down and has a will: the visitor may keep its
 * record (the broker deletes it in the batch holding the will's deliveries), so a crash before
 * that batch commits finds the will again at the next start. Its queue entries go at once. */
static void
expired_session_with_will_kept_until_its_batch(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);
    struct store_session gone = {.client_id = S("gone"), .version = 5, .expiry = 100,
                                 .offline_at = 1000, .has_will = true, .will_topic = S("w"),
                                 .will_payload = S("bye")};
    struct store_sub sub = {.client_id = S("gone"), .filter = S("x")};

    assert_int_equal(store_batch_session_put(b, &gone), 0);
    assert_int_equal(store_batch_sub_put(b, &sub), 0);
    put_msg(b, 1, "t", "queued");
    add_entry(b, "gone", 1, 1);
    assert_int_equal(submit_wait(s, b), 0);
    store_close(s);

    t->wall = 2000;
    struct store_load_stats st;
    for (int crash = 0; crash < 2; crash++) { /* each time as if the broker died right after */
        s = open_ok(&o);
        char *text = load_text_keeping(s, &st, true);
        expect_text(text, "X gone will=w\n");
        free(text);
        assert_int_equal(st.n_expired_sessions, 1);
        expect_consistent(s, 0, 0); /* the entry and its message went with the first load */
        store_close(s);
    }

    s = open_ok(&o);
    b = store_batch_new(s);
    assert_int_equal(store_batch_session_del(b, S("gone")), 0);
    assert_int_equal(submit_wait(s, b), 0);
    store_close(s);
    s = open_ok(&o);
    char *text = load_text_keeping(s, &st, true);
    expect_text(text, "");
    free(text);
    assert_int_equal(st.n_expired_sessions + st.n_sessions + st.n_subs, 0);
    store_close(s);
}

/* Tokens: keyed by their hash, replaced, deleted, purged at load once expired; a store made
 * before the tokens database existed gets one when it opens. */
static void
tokens_round_trip_and_expiry(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);
    uint8_t h1[32], h2[32], h3[32];
    struct slice f1[2] = {S("a/#"), S("b/+")}, f2[1] = {S("c")};

    memset(h1, 'A', 32);
    memset(h2, 'B', 32);
    memset(h3, 0, 32); /* hashes are any bytes, 00 and FF included */
    h3[31] = 0xFF;
    struct store_token t1 = {.hash = slice_make(h1, 32), .actions = 1, .expires_at = 5000,
                             .label = S("abcdefgh"), .n_filters = 2, .filters = f1};
    struct store_token t2 = {.hash = slice_make(h2, 32), .actions = 3, .expires_at = 1500,
                             .label = S("zz"), .n_filters = 1, .filters = f2};
    struct store_token t3 = {.hash = slice_make(h3, 32), .actions = 2, .expires_at = 9000,
                             .label = S("x"), .n_filters = 1, .filters = f2};
    assert_int_equal(store_batch_token_put(b, &t1), 0);
    assert_int_equal(store_batch_token_put(b, &t2), 0);
    assert_int_equal(store_batch_token_put(b, &t3), 0);
    struct store_token bad = t1;
    bad.hash = slice_make(h1, 31);
    assert_int_equal(store_batch_token_put(b, &bad), -EINVAL);
    bad = t1;
    bad.n_filters = 0;
    assert_int_equal(store_batch_token_put(b, &bad), -EINVAL);
    bad = t1;
    bad.actions = 0;
    assert_int_equal(store_batch_token_put(b, &bad), -EINVAL);
    assert_int_equal(store_batch_token_del(b, slice_make(h1, 5)), -EINVAL);
    assert_int_equal(submit_wait(s, b), 0);
    b = store_batch_new(s);
    t1.actions = 3; /* replaced */
    assert_int_equal(store_batch_token_put(b, &t1), 0);
    assert_int_equal(store_batch_token_del(b, slice_make(h3, 32)), 0);
    assert_int_equal(store_batch_token_del(b, slice_make(h3, 32)), 0); /* missing: ignored */
    assert_int_equal(submit_wait(s, b), 0);
    store_close(s);

    t->wall = 2000; /* t2 expired while the broker was down */
    s = open_ok(&o);
    struct store_load_stats st;
    char *text = load_text(s, &st);
    expect_text(text, "T AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA a=3 x=5000 label=abcdefgh f=a/#,b/+\n");
    free(text);
    assert_int_equal(st.n_tokens, 1);
    assert_int_equal(st.n_expired_tokens, 1);
    store_close(s);

    /* A store from before the tokens database: dropped here with LMDB itself. */
    char data[256];
    snprintf(data, sizeof(data), "%s", t->dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, data, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "tokens", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    s = open_ok(&o);
    text = load_text(s, &st);
    expect_text(text, "");
    free(text);
    b = store_batch_new(s);
    assert_int_equal(store_batch_token_put(b, &t3), 0);
    assert_int_equal(submit_wait(s, b), 0);
    store_close(s);
    s = open_ok(&o);
    text = load_text(s, &st);
    assert_int_equal(st.n_tokens, 1);
    free(text);
    store_close(s);
}

/* Records without a session are found by store_check and removed by the load. */
static void
orphans_repaired_at_load(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);

    put_session(b, "m", 100, 0);
    struct store_sub sub = {.client_id = S("a"), .filter = S("x")};   /* before "m" */
    assert_int_equal(store_batch_sub_put(b, &sub), 0);
    sub.client_id = S("z");                                          /* after every session */
    assert_int_equal(store_batch_sub_put(b, &sub), 0);
    put_msg(b, 1, "t", "p");
    add_entry(b, "n", 1, 1);
    assert_int_equal(store_batch_qos2_add(b, S("zz"), 5), 0);
    assert_int_equal(submit_wait(s, b), 0);

    struct store_check c;
    assert_int_equal(store_check(s, &c), 0);
    assert_int_equal(c.n_orphans, 4);
    struct store_load_stats st;
    char *text = load_text(s, &st);
    expect_text(text, "S m v=5 exp=100 off=0\n");
    free(text);
    assert_int_equal(st.n_repaired, 4);
    assert_int_equal(st.n_msgs, 0);
    expect_consistent(s, 0, 0);
    store_close(s);
}

/* ---- bad and foreign state ---- */

static void
data_path(const struct tctx *t, char *out, size_t len)
{
    snprintf(out, len, "%s/data.mdb", t->dir);
}

/* A store with some records, closed. */
static void
make_store(struct tctx *t, int n_msgs, size_t payload_len)
{
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    char *payload = malloc(payload_len + 1);

    for (int i = 0; i < n_msgs; i++) {
        struct store_batch *b = store_batch_new(s);
        char topic[32];
        memset(payload, 'A' + i % 26, payload_len);
        memcpy(payload, "MARKER", payload_len >= 6 ? 6 : 0);
        payload[payload_len] = 0;
        snprintf(topic, sizeof(topic), "r/%d", i);
        uint64_t id = store_msg_id_new(s);
        put_msg(b, id, topic, payload);
        assert_int_equal(store_batch_retained_set(b, slice_cstr(topic), id), 0);
        assert_int_equal(submit_wait(s, b), 0);
    }
    free(payload);
    store_close(s);
}

/* Open must fail with rc and a message naming data.mdb and containing `what`. */
static void
expect_refused(struct tctx *t, int rc, const char *what)
{
    struct store_options o = opts(t);
    struct store *s = NULL;
    char err[512] = "", path[256];

    data_path(t, path, sizeof(path));
    assert_int_equal(store_open(&o, &s, err, sizeof(err)), rc);
    assert_null(s);
    if (!strstr(err, path) || !strstr(err, what))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err, path, what);
}

static void
set_format_version(struct tctx *t, uint32_t version, bool remove)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val key = {6, "format"}, val = {4, &version};

    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, t->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    if (remove)
        assert_int_equal(mdb_del(txn, dbi, &key, NULL), 0);
    else
        assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
moved_dir(const struct tctx *t, char *out, size_t len)
{
    time_t now = (time_t)t->wall;
    struct tm tm;
    char stamp[32];

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(out, len, "%s.broken-%s", t->dir, stamp);
}

/* With move_aside the bad store is renamed (kept whole) and an empty one opens. */
static void
expect_moved_aside(struct tctx *t)
{
    struct store_options o = opts(t);
    char moved[256], path[300], slashed[200];
    struct stat st;

    snprintf(slashed, sizeof(slashed), "%s/", t->dir);   /* moved as "<dir>.broken-..." */
    o.dir = slashed;
    o.move_aside = true;
    struct store *s = open_ok(&o);
    struct store_load_stats ls_;
    char *text = load_text(s, &ls_);
    expect_text(text, "");
    free(text);
    store_close(s);
    moved_dir(t, moved, sizeof(moved));
    snprintf(path, sizeof(path), "%s/data.mdb", moved);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0);
}

static void
format_version_mismatch_refused(void **state)
{
    struct tctx *t = *state;

    make_store(t, 3, 10);
    set_format_version(t, 99, false);
    expect_refused(t, -EPROTONOSUPPORT, "format version 99");
    expect_moved_aside(t);
}

static void
missing_format_record_refused(void **state)
{
    struct tctx *t = *state;

    make_store(t, 1, 10);
    set_format_version(t, 0, true);
    expect_refused(t, -EPROTONOSUPPORT, "no format version record");
}

static void
foreign_lmdb_refused(void **state)
{
    struct tctx *t = *state;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val key = {1, "k"}, val = {1, "v"};
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "mkdir -p %s", t->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    assert_int_equal(mdb_env_open(env, t->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "theirs", MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    expect_refused(t, -EPROTONOSUPPORT, "not a Petrel store");
}

static void
truncated_file_refused(void **state)
{
    struct tctx *t = *state;
    char path[256];
    struct stat st;

    make_store(t, 40, 3000);       /* overflow pages: the file is well past its header */
    data_path(t, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    expect_refused(t, -EUCLEAN, "truncated");
    expect_moved_aside(t);
}

static void
garbled_header_refused(void **state)
{
    struct tctx *t = *state;
    char path[256], junk[8192];

    make_store(t, 3, 10);
    data_path(t, path, sizeof(path));
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 131 + 7);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 0), sizeof(junk));   /* both meta pages */
    close(fd);
    expect_refused(t, -EUCLEAN, "not an LMDB file");
    expect_moved_aside(t);
}

/* A flipped byte inside a record fails its checksum. */
static void
garbled_record_refused(void **state)
{
    struct tctx *t = *state;
    char path[256];
    struct stat st;

    make_store(t, 5, 100);
    data_path(t, path, sizeof(path));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    char *data = malloc((size_t)st.st_size);
    assert_int_equal(pread(fd, data, (size_t)st.st_size, 0), st.st_size);
    /* Old copies of pages (free since) hold the marker too: damage every copy. */
    int n_hits = 0;
    for (char *hit = data; (hit = memmem(hit, (size_t)(data + st.st_size - hit), "MARKER", 6));
         hit += 6, n_hits++) {
        char flipped = (char)(hit[10] ^ 0x20);
        assert_int_equal(pwrite(fd, &flipped, 1, (hit - data) + 10), 1);
    }
    assert_true(n_hits > 0);
    close(fd);
    free(data);
    expect_refused(t, -EUCLEAN, "damaged record in database msgs");
    expect_moved_aside(t);
}

static void
second_opener_refused(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o), *s2 = NULL;
    char err[512] = "";

    assert_int_equal(store_open(&o, &s2, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use"));
    o.move_aside = true;                               /* never moves a store in use */
    assert_int_equal(store_open(&o, &s2, err, sizeof(err)), -EBUSY);
    store_close(s);
    s = open_ok(&o);
    store_close(s);
}

/* A visitor's non-zero return stops the load and comes back unchanged. */
static int
stop_at_session(void *ctx, const struct store_session *sess)
{
    return 7;
}

static void
visitor_stops_load(void **state)
{
    struct tctx *t = *state;
    struct store_options o = opts(t);
    struct store *s = open_ok(&o);
    struct store_batch *b = store_batch_new(s);

    put_session(b, "c", 1, 0);
    assert_int_equal(submit_wait(s, b), 0);
    struct store_visitor v = {.on_session = stop_at_session};
    assert_int_equal(store_load(s, &v, NULL), 7);
    store_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip_every_record, setup, teardown),
        cmocka_unit_test_setup_teardown(replace_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(retained_order_beats_commit_order, setup, teardown),
        cmocka_unit_test_setup_teardown(message_shared_by_three_queues_and_retained, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(session_delete_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_batch_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(builders_refuse_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_purged_at_load, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_session_with_will_kept_until_its_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(tokens_round_trip_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(orphans_repaired_at_load, setup, teardown),
        cmocka_unit_test_setup_teardown(format_version_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_format_record_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_lmdb_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(garbled_header_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(garbled_record_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(second_opener_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(visitor_stops_load, setup, teardown),
    };

    /* PETREL_TEST_LOG=1 shows the store's warnings and info lines. */
    log_setup(getenv("PETREL_TEST_LOG") ? LOG_ERROR | LOG_WARN | LOG_INFO : LOG_ERROR, true, false,
              NULL, false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
