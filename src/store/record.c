/*
 * record.c - keys and record values of the store, byte for byte as docs/storage-format.md
 * describes them.
 *
 * Every value starts with its record version and ends with a CRC32C over the key and the value
 * before the CRC, so a damaged record (or one moved under another key) is refused rather than
 * believed. Integers are little-endian, strings are a u32 length and the bytes. Keys put one
 * session's records next to each other: "<client id>\0..." with numbers big-endian, so LMDB's
 * order is the session's order.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "store/internal.h"

#define REC_V1 1u
#define CRC_LEN 4u

void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t
get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t
get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t
get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- keys ---- */

/* A key component: `s` itself when it fits `budget`, else its first budget-17 bytes, 0xFF
 * (never in UTF-8, so no short component equals a long one) and a keyed hash of all of it. */
static size_t
key_comp(uint8_t *out, const uint8_t hk[16], struct slice s, size_t budget)
{
    if (s.len <= budget) {
        if (s.len)
            memcpy(out, s.p, s.len);
        return s.len;
    }
    size_t keep = budget - KEY_HASH_LEN - 1;
    memcpy(out, s.p, keep);
    out[keep] = 0xFF;
    siphash128(hk, s.p, s.len, out + keep + 1);
    return budget;
}

size_t
key_session(uint8_t *out, const uint8_t hk[16], struct slice client_id)
{
    return key_comp(out, hk, client_id, KEY_ID_BUDGET);
}

/* "<id>\0": the prefix of every record of one session. */
static size_t
key_prefix(uint8_t *out, const uint8_t hk[16], struct slice client_id)
{
    size_t n = key_comp(out, hk, client_id, KEY_ID_BUDGET);

    out[n] = 0;
    return n + 1;
}

size_t
key_sub(uint8_t *out, const uint8_t hk[16], struct slice client_id, struct slice filter)
{
    size_t n = key_prefix(out, hk, client_id);

    return n + key_comp(out + n, hk, filter, KEY_FILTER_BUDGET);
}

size_t
key_queue(uint8_t *out, const uint8_t hk[16], struct slice client_id, uint64_t seq)
{
    size_t n = key_prefix(out, hk, client_id);

    put_be64(out + n, seq);
    return n + 8;
}

size_t
key_qos2(uint8_t *out, const uint8_t hk[16], struct slice client_id, uint16_t packet_id)
{
    size_t n = key_prefix(out, hk, client_id);

    out[n] = (uint8_t)(packet_id >> 8);
    out[n + 1] = (uint8_t)packet_id;
    return n + 2;
}

size_t
key_retained(uint8_t *out, const uint8_t hk[16], struct slice topic)
{
    return key_comp(out, hk, topic, KEY_TOPIC_BUDGET);
}

void
key_msg(uint8_t out[8], uint64_t id)
{
    put_be64(out, id);
}

/* ---- writing and reading values ---- */

struct wr {
    uint8_t *p;
};

static void
wr_u8(struct wr *w, uint8_t v)
{
    *w->p++ = v;
}

static void
wr_u16(struct wr *w, uint16_t v)
{
    put_le16(w->p, v);
    w->p += 2;
}

static void
wr_u32(struct wr *w, uint32_t v)
{
    put_le32(w->p, v);
    w->p += 4;
}

static void
wr_u64(struct wr *w, uint64_t v)
{
    put_le64(w->p, v);
    w->p += 8;
}

static void
wr_str(struct wr *w, struct slice s)
{
    wr_u32(w, (uint32_t)s.len);
    if (s.len)
        memcpy(w->p, s.p, s.len);
    w->p += s.len;
}

/* Close a record that started at `start`: append the checksum. */
static void
wr_crc(struct wr *w, const uint8_t *start, struct slice key)
{
    uint32_t crc = crc32c_update(0, key.p, key.len);

    crc = crc32c_update(crc, start, (size_t)(w->p - start));
    wr_u32(w, crc);
}

struct rd {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
};

static bool
rd_need(struct rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static uint8_t
rd_u8(struct rd *r)
{
    return rd_need(r, 1) ? *r->p++ : 0;
}

static uint16_t
rd_u16(struct rd *r)
{
    if (!rd_need(r, 2))
        return 0;
    r->p += 2;
    return get_le16(r->p - 2);
}

static uint32_t
rd_u32(struct rd *r)
{
    if (!rd_need(r, 4))
        return 0;
    r->p += 4;
    return get_le32(r->p - 4);
}

static uint64_t
rd_u64(struct rd *r)
{
    if (!rd_need(r, 8))
        return 0;
    r->p += 8;
    return get_le64(r->p - 8);
}

static struct slice
rd_str(struct rd *r)
{
    uint32_t n = rd_u32(r);

    if (!rd_need(r, n))
        return slice_make(NULL, 0);
    r->p += n;
    return slice_make(r->p - n, n);
}

/* Check version and checksum, and set up `r` over the body (after the version byte, before
 * the checksum). */
static int
rd_open_crc(struct rd *r, struct slice key, struct slice val, bool check_crc)
{
    if (val.len < 1 + CRC_LEN || val.p[0] != REC_V1)
        return -EUCLEAN;
    size_t body = val.len - CRC_LEN;
    if (check_crc) {
        uint32_t crc = crc32c_update(0, key.p, key.len);
        crc = crc32c_update(crc, val.p, body);
        if (crc != get_le32(val.p + body))
            return -EUCLEAN;
    }
    r->p = val.p + 1;
    r->end = val.p + body;
    r->bad = false;
    return 0;
}

static int
rd_open(struct rd *r, struct slice key, struct slice val)
{
    return rd_open_crc(r, key, val, true);
}

/* Everything read, nothing left over. */
static int
rd_close(const struct rd *r)
{
    return r->bad || r->p != r->end ? -EUCLEAN : 0;
}

/* Sum of sizes, 0 when a string or the total does not fit the format's u32 lengths. */
static size_t
fit(uint64_t fixed, const struct slice *strs, int n)
{
    uint64_t total = fixed;

    for (int i = 0; i < n; i++) {
        if (strs[i].len > UINT32_MAX)
            return 0;
        total += 4 + (uint64_t)strs[i].len;
    }
    return total > UINT32_MAX ? 0 : (size_t)total;
}

/* ---- sessions ---- */

size_t
rec_session_size(const struct store_session *s)
{
    struct slice strs[4] = {s->client_id, s->will_topic, s->will_props, s->will_payload};

    return fit(1 + 1 + 1 + 1 + 4 + 4 + 8 + CRC_LEN, strs, 4);
}

void
rec_session_encode(uint8_t *out, struct slice key, const struct store_session *s)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u8(&w, s->version);
    wr_u8(&w, (uint8_t)((s->has_will ? 1 : 0) | (s->will_retain ? 2 : 0)));
    wr_u8(&w, s->will_qos);
    wr_u32(&w, s->expiry);
    wr_u32(&w, s->will_delay);
    wr_u64(&w, (uint64_t)s->offline_at);
    wr_str(&w, s->client_id);
    wr_str(&w, s->will_topic);
    wr_str(&w, s->will_props);
    wr_str(&w, s->will_payload);
    wr_crc(&w, out, key);
}

int
rec_session_decode(struct slice key, struct slice val, struct store_session *out)
{
    struct rd r;

    if (rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    memset(out, 0, sizeof(*out));
    out->version = rd_u8(&r);
    uint8_t flags = rd_u8(&r);
    out->has_will = flags & 1;
    out->will_retain = flags & 2;
    out->will_qos = rd_u8(&r);
    out->expiry = rd_u32(&r);
    out->will_delay = rd_u32(&r);
    out->offline_at = (int64_t)rd_u64(&r);
    out->client_id = rd_str(&r);
    out->will_topic = rd_str(&r);
    out->will_props = rd_str(&r);
    out->will_payload = rd_str(&r);
    if (flags & ~3u || out->will_qos > 2 || out->client_id.len == 0)
        return -EUCLEAN;
    return rd_close(&r);
}

/* ---- subscriptions ---- */

size_t
rec_sub_size(const struct store_sub *sub)
{
    return fit(1 + 1 + 1 + 1 + 4 + CRC_LEN, &sub->filter, 1);
}

void
rec_sub_encode(uint8_t *out, struct slice key, const struct store_sub *sub)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u8(&w, sub->qos);
    wr_u8(&w, (uint8_t)((sub->no_local ? 1 : 0) | (sub->retain_as_published ? 2 : 0)));
    wr_u8(&w, sub->retain_handling);
    wr_u32(&w, sub->sub_id);
    wr_str(&w, sub->filter);
    wr_crc(&w, out, key);
}

int
rec_sub_decode(struct slice key, struct slice val, struct store_sub *out)
{
    struct rd r;

    if (rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    memset(out, 0, sizeof(*out));
    out->qos = rd_u8(&r);
    uint8_t flags = rd_u8(&r);
    out->no_local = flags & 1;
    out->retain_as_published = flags & 2;
    out->retain_handling = rd_u8(&r);
    out->sub_id = rd_u32(&r);
    out->filter = rd_str(&r);
    if (flags & ~3u || out->qos > 2 || out->retain_handling > 2 || out->filter.len == 0)
        return -EUCLEAN;
    return rd_close(&r);
}

/* ---- messages and their reference counts ---- */

size_t
rec_msg_size(const struct store_msg *m)
{
    struct slice strs[3] = {m->topic, m->props, m->payload};

    return fit(1 + 1 + 1 + 1 + 8 + CRC_LEN, strs, 3);
}

void
rec_msg_encode(uint8_t *out, struct slice key, const struct store_msg *m)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u8(&w, m->qos);
    wr_u8(&w, m->retain ? 1 : 0);
    wr_u8(&w, 0);
    wr_u64(&w, (uint64_t)m->expiry_at);
    wr_str(&w, m->topic);
    wr_str(&w, m->props);
    wr_str(&w, m->payload);
    wr_crc(&w, out, key);
}

static int
msg_decode(struct slice key, struct slice val, struct store_msg *out, bool check_crc)
{
    struct rd r;

    if (key.len != 8 || rd_open_crc(&r, key, val, check_crc) != 0)
        return -EUCLEAN;
    memset(out, 0, sizeof(*out));
    out->id = get_be64(key.p);
    out->qos = rd_u8(&r);
    uint8_t flags = rd_u8(&r);
    out->retain = flags & 1;
    uint8_t reserved = rd_u8(&r);
    out->expiry_at = (int64_t)rd_u64(&r);
    out->topic = rd_str(&r);
    out->props = rd_str(&r);
    out->payload = rd_str(&r);
    if (flags & ~1u || reserved || out->qos > 2 || out->id == 0)
        return -EUCLEAN;
    return rd_close(&r);
}

int
rec_msg_decode(struct slice key, struct slice val, struct store_msg *out)
{
    return msg_decode(key, val, out, true);
}

int
rec_msg_view(struct slice key, struct slice val, struct store_msg *out)
{
    return msg_decode(key, val, out, false);
}

void
rec_refs_encode(uint8_t *out, struct slice key, uint32_t refs)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u32(&w, refs);
    wr_crc(&w, out, key);
}

int
rec_refs_decode(struct slice key, struct slice val, uint32_t *refs)
{
    struct rd r;

    if (key.len != 8 || rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    *refs = rd_u32(&r);
    return rd_close(&r);
}

/* ---- queue entries ---- */

size_t
rec_qentry_size(const struct store_qentry *e)
{
    return 1 + 1 + 1 + 1 + 2 + 1 + 1 + 8 + 4u * e->n_sub_ids + CRC_LEN;
}

void
rec_qentry_encode(uint8_t *out, struct slice key, const struct store_qentry *e)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u8(&w, e->qos);
    wr_u8(&w, (uint8_t)((e->retain ? 1 : 0) | (e->shared ? 2 : 0)));
    wr_u8(&w, e->state);
    wr_u16(&w, e->packet_id);
    wr_u8(&w, e->n_sub_ids);
    wr_u8(&w, 0);
    wr_u64(&w, e->msg_id);
    for (uint8_t i = 0; i < e->n_sub_ids; i++)
        wr_u32(&w, e->sub_ids[i]);
    wr_crc(&w, out, key);
}

int
rec_qentry_decode(struct slice key, struct slice val, struct store_qentry *out, uint32_t *ids)
{
    struct rd r;

    if (key.len < 10 || key.p[key.len - 9] != 0 || rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    memset(out, 0, sizeof(*out));
    out->seq = get_be64(key.p + key.len - 8);
    out->qos = rd_u8(&r);
    uint8_t flags = rd_u8(&r);
    out->retain = flags & 1;
    out->shared = flags & 2;
    out->state = rd_u8(&r);
    out->packet_id = rd_u16(&r);
    out->n_sub_ids = rd_u8(&r);
    uint8_t reserved = rd_u8(&r);
    out->msg_id = rd_u64(&r);
    if (flags & ~3u || reserved || out->qos > 2 || out->state > STORE_Q_WAIT_PUBCOMP ||
        out->n_sub_ids > STORE_MAX_SUB_IDS ||
        (out->msg_id == 0) != (out->state == STORE_Q_WAIT_PUBCOMP))
        return -EUCLEAN;
    for (uint8_t i = 0; i < out->n_sub_ids; i++)
        ids[i] = rd_u32(&r);
    out->sub_ids = ids;
    return rd_close(&r);
}

/* ---- QoS 2 ids and retained records ---- */

void
rec_qos2_encode(uint8_t *out, struct slice key)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_crc(&w, out, key);
}

int
rec_qos2_decode(struct slice key, struct slice val)
{
    struct rd r;

    if (key.len < 4 || key.p[key.len - 3] != 0 || rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    return rd_close(&r);
}

void
rec_retained_encode(uint8_t *out, struct slice key, uint64_t msg_id)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u64(&w, msg_id);
    wr_crc(&w, out, key);
}

int
rec_retained_decode(struct slice key, struct slice val, uint64_t *msg_id)
{
    struct rd r;

    if (rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    *msg_id = rd_u64(&r);
    if (*msg_id == 0)
        return -EUCLEAN;
    return rd_close(&r);
}

void
rec_rorder_encode(uint8_t *out, struct slice key, uint64_t seq)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u64(&w, seq);
    wr_crc(&w, out, key);
}

int
rec_rorder_decode(struct slice key, struct slice val, uint64_t *seq)
{
    struct rd r;

    if (rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    *seq = rd_u64(&r);
    if (*seq == 0)
        return -EUCLEAN;
    return rd_close(&r);
}

/* ---- tokens ---- */

size_t
rec_token_size(const struct store_token *t)
{
    uint64_t total = 1 + 1 + 2 + 8 + 4 + (uint64_t)t->label.len + CRC_LEN;

    for (uint32_t i = 0; i < t->n_filters; i++)
        total += 4 + (uint64_t)t->filters[i].len;
    return total > UINT32_MAX ? 0 : (size_t)total;
}

void
rec_token_encode(uint8_t *out, struct slice key, const struct store_token *t)
{
    struct wr w = {out};

    wr_u8(&w, REC_V1);
    wr_u8(&w, t->actions);
    wr_u16(&w, (uint16_t)t->n_filters);
    wr_u64(&w, (uint64_t)t->expires_at);
    wr_str(&w, t->label);
    for (uint32_t i = 0; i < t->n_filters; i++)
        wr_str(&w, t->filters[i]);
    wr_crc(&w, out, key);
}

int
rec_token_decode(struct slice key, struct slice val, struct store_token *out,
                 struct slice *filters)
{
    struct rd r;

    if (key.len != STORE_TOKEN_HASH_LEN || rd_open(&r, key, val) != 0)
        return -EUCLEAN;
    memset(out, 0, sizeof(*out));
    out->hash = key;
    out->actions = rd_u8(&r);
    out->n_filters = rd_u16(&r);
    out->expires_at = (int64_t)rd_u64(&r);
    out->label = rd_str(&r);
    if (out->actions == 0 || out->actions > 3 || out->n_filters == 0 ||
        out->n_filters > STORE_MAX_TOKEN_FILTERS)
        return -EUCLEAN;
    for (uint32_t i = 0; i < out->n_filters; i++) {
        filters[i] = rd_str(&r);
        if (filters[i].len == 0)
            r.bad = true;
    }
    out->filters = filters;
    return rd_close(&r);
}

int
rec_check(enum store_db db, struct slice key, struct slice val)
{
    union {
        struct store_session sess;
        struct store_sub sub;
        struct store_msg msg;
        struct store_qentry e;
        struct store_token t;
    } u;
    struct slice filters[STORE_MAX_TOKEN_FILTERS];
    uint32_t ids[STORE_MAX_SUB_IDS];
    uint32_t refs;
    uint64_t id;

    switch (db) {
    case DB_SESSIONS:
        return rec_session_decode(key, val, &u.sess);
    case DB_SUBS:
        return rec_sub_decode(key, val, &u.sub);
    case DB_MSGS:
        return rec_msg_decode(key, val, &u.msg);
    case DB_REFS:
        return rec_refs_decode(key, val, &refs);
    case DB_QUEUE:
        return rec_qentry_decode(key, val, &u.e, ids);
    case DB_QOS2:
        return rec_qos2_decode(key, val);
    case DB_RETAINED:
        return rec_retained_decode(key, val, &id);
    case DB_TOKENS:
        return rec_token_decode(key, val, &u.t, filters);
    case DB_RORDER:
        return rec_rorder_decode(key, val, &id);
    default:
        return 0;
    }
}
