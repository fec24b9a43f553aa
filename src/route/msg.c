/*
 * msg.c - refcounted immutable messages; see msg.h.
 */
#include "route/msg.h"

#include <stdlib.h>
#include <string.h>

/* Small messages take blocks of this size, reused by their home thread (see msg.h); at most
 * MSG_KEEP of them wait there. */
#define MSG_BLOCK 512
#define MSG_KEEP 4096

/* The calling thread's home, see msg.h. */
static _Thread_local struct msg_home *tl_home;

void
msg_home_enter(struct msg_home *home)
{
    tl_home = home;
}

/* On the home's thread: keep a block of one of its messages, or free it. */
static void
keep_or_free(struct msg_home *home, struct msg *m)
{
    if (m->is_block && home->n_free < MSG_KEEP) {
        m->next_returned = home->free;
        home->free = m;
        home->n_free++;
        return;
    }
    free(m);
}

void
msg_home_collect(struct msg_home *home)
{
    if (!atomic_load_explicit(&home->returned, memory_order_relaxed))
        return;
    struct msg *m = atomic_exchange_explicit(&home->returned, NULL, memory_order_acquire);
    while (m) {
        struct msg *next = m->next_returned;
        keep_or_free(home, m);
        m = next;
    }
}

void
msg_home_trim(struct msg_home *home)
{
    /* Keep at most as many as were taken since the last trim: a busy worker keeps its
     * blocks, an idle one gives them all back. */
    while (home->n_free > home->n_used) {
        struct msg *m = home->free;
        home->free = m->next_returned;
        home->n_free--;
        free(m);
    }
    home->n_used = 0;
}

void
msg_home_fini(struct msg_home *home)
{
    msg_home_collect(home);
    home->n_used = 0;
    msg_home_trim(home);
}

/* Memory for a message of `size` bytes: a kept block of the calling thread's home, or new. */
static struct msg *
alloc_msg(size_t size)
{
    struct msg_home *home = tl_home;
    struct msg *m;

    if (!home || size > MSG_BLOCK) {
        if ((m = malloc(size)) != NULL)
            m->is_block = false;
        return m;
    }
    if ((m = home->free) != NULL) {
        home->free = m->next_returned;
        home->n_free--;
    } else if ((m = malloc(MSG_BLOCK)) == NULL) {
        return NULL;
    }
    home->n_used++;
    m->is_block = true;
    return m;
}

/* Point a slice that referred into `from` at the same offset inside `to`. */
static void
rebase(struct slice *s, const uint8_t *from, const uint8_t *to)
{
    if (s->len)
        s->p = to + (s->p - from);
}

struct msg *
msg_new(struct slice topic, struct slice payload, const struct mqtt_props *props, uint8_t qos,
        bool retain, uint64_t origin, uint64_t now)
{
    size_t raw_len = props ? props->raw.len : 0;
    size_t size = sizeof(struct msg) + topic.len + payload.len + raw_len + 1;
    struct msg *m = alloc_msg(size);

    if (!m)
        return NULL;
    uint8_t *p = (uint8_t *)(m + 1);
    memset(&m->props, 0, sizeof(m->props));
    atomic_init(&m->refs, 1);
    m->qos = qos;
    m->retain = retain;
    m->origin = origin;
    m->expiry_at = 0;
    atomic_init(&m->store_id, 0);
    m->home = tl_home;
    m->next_returned = NULL;

    memcpy(p, topic.p, topic.len);
    m->topic = slice_make(p, topic.len);
    p += topic.len;
    if (payload.len)
        memcpy(p, payload.p, payload.len);
    m->payload = slice_make(p, payload.len);
    p += payload.len;

    if (props) {
        m->props = *props;
        if (raw_len) {
            const uint8_t *from = props->raw.p;
            memcpy(p, from, raw_len);
            m->props.raw = slice_make(p, raw_len);
            rebase(&m->props.content_type, from, p);
            rebase(&m->props.response_topic, from, p);
            rebase(&m->props.correlation_data, from, p);
            rebase(&m->props.reason_string, from, p);
        }
        if (props->has & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))
            m->expiry_at = now + (uint64_t)props->message_expiry * 1000u;
        /* Only what a PUBLISH may carry onward stays. */
        m->props.has &= MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) |
                        MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) |
                        MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
                        MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) | MQTT_PROP_BIT(MQTT_PROP_USER);
        m->props.sub_ids = NULL;
        m->props.n_sub_ids = 0;
    }
    return m;
}

void
msg_unref_n(struct msg *m, uint32_t n)
{
    if (!m || n == 0 || atomic_fetch_sub_explicit(&m->refs, n, memory_order_acq_rel) != n)
        return;
    struct msg_home *home = m->home;
    if (home && home == tl_home) {
        keep_or_free(home, m);
        return;
    }
    if (!home || !tl_home) {
        free(m);
        return;
    }
    /* The release orders this thread's reads of `m` before the home thread frees it. */
    struct msg *head = atomic_load_explicit(&home->returned, memory_order_relaxed);
    do
        m->next_returned = head;
    while (!atomic_compare_exchange_weak_explicit(&home->returned, &head, m,
                                                  memory_order_release, memory_order_relaxed));
}

uint32_t
msg_expiry_left(const struct msg *m, uint64_t now)
{
    if (m->expiry_at == 0)
        return 0;
    if (now >= m->expiry_at)
        return 0;
    uint64_t left = (m->expiry_at - now + 999) / 1000;
    return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}
