/*
 * client.c - one connection speaking MQTT: framing of the input into packets, dispatch to the
 * on_*.c handlers, and the small encoders every handler uses.
 *
 *   NEW --CONNECT ok--> CONNECTED --DISCONNECT / error / close--> CLOSING --conn gone--> freed
 *    \--anything else, or no CONNECT within connect_timeout--> CLOSING [MQTT-3.1.0-1]
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "session/app.h"
#include "session/internal.h"

static void client_on_input(void *ud, struct conn *conn);
static void client_on_close(void *ud, struct conn *conn);

static const struct conn_ops client_ops = {
    .on_input = client_on_input,
    .on_close = client_on_close,
};

struct client *
client_new(struct hub *h, int fd, struct transport *t, const char *peer,
           const struct config_listener *li)
{
    struct client *c = xcalloc(1, sizeof(*c));

    c->hub = h;
    c->listener = li;
    c->last_rx = h->now;
    c->connected_at = h->now;
    list_init(&c->held_link);
    list_init(&c->token_link);
    slow_stall_init(&c->stall, h->now);
    if (!(c->conn = conn_new(h->pool, fd, t, peer, &client_ops, c))) {
        free(c);
        return NULL;
    }
    list_push(&h->clients, &c->link);
    return c;
}

const char *
client_id_str(const struct client *c)
{
    return c->sess ? c->sess->id : "-";
}

struct buf *
client_out(struct client *c)
{
    return conn_out(c->conn);
}

void
client_wrote(struct client *c)
{
    conn_wrote(c->conn);
}

static void
send_disconnect(struct client *c, uint8_t rc)
{
    if (c->version != MQTT_V5 || c->state != CLIENT_CONNECTED)
        return;
    struct mqtt_disconnect d = {.rc = rc};
    if (mqtt_encode_disconnect(client_out(c), MQTT_DISCONNECT, c->version, &d) == 0)
        client_wrote(c);
}

void
client_fail(struct client *c, uint8_t rc)
{
    static struct log_ratelimit rl;

    if (c->state == CLIENT_CLOSING)
        return;
    c->end_reason = mqtt_rc_str(rc);
    if (log_ratelimit(&rl, 20))
        log_info("client error client=%s addr=%s reason=0x%02x (%s)", client_id_str(c),
                 conn_peer(c->conn), rc, mqtt_rc_str(rc));
    send_disconnect(c, rc);
    c->state = CLIENT_CLOSING;
    conn_close(c->conn);
}

void
client_kick(struct client *c, uint8_t rc)
{
    if (c->state == CLIENT_CLOSING)
        return;
    c->end_reason = mqtt_rc_str(rc);
    send_disconnect(c, rc);
    c->state = CLIENT_CLOSING;
    conn_close(c->conn);
}

bool
client_send_ack(struct client *c, enum mqtt_type type, uint16_t id, uint8_t rc)
{
    struct mqtt_ack a = {.packet_id = id, .rc = rc};

    if (mqtt_encode_ack(client_out(c), type, c->version, &a) != 0)
        return false;
    client_wrote(c);
    return true;
}

/* The alias to use for `topic` towards this client: an existing one (*is_new false), a new one
 * (*is_new true), or 0 when the client takes no (more) aliases. */
static uint16_t
alias_for(struct client *c, struct slice topic, bool *is_new)
{
    *is_new = false;
    if (c->alias_max_out == 0)
        return 0;
    struct client_aliases *al = c->aliases_out;
    if (al) {
        void *v = map_get(&al->by_topic, topic);
        if (v)
            return (uint16_t)(uintptr_t)v;
        if (al->n >= c->alias_max_out)
            return 0;
    } else {
        /* The first alias: most clients never get here, so they do not carry the table. */
        size_t n_slots = (size_t)c->alias_max_out + 1;
        al = c->aliases_out = xcalloc(1, sizeof(*al) + n_slots * sizeof(char *));
        map_init(&al->by_topic);
    }
    uint16_t a = ++al->n;
    char *copy = xstrndup(topic.p, topic.len);
    al->topics[a] = copy;
    map_put(&al->by_topic, slice_make(copy, topic.len), (void *)(uintptr_t)a);
    *is_new = true;
    return a;
}

static void
release_msg(void *arg)
{
    msg_unref(arg);
}

/* Large payloads are not copied into the output: the connection writes them from the message
 * itself, holding a reference until they have left. Small ones are cheaper to copy. */
static bool
encode_publish(struct client *c, struct msg *m, const struct mqtt_publish *p)
{
    if (p->payload.len < ZERO_COPY_MIN)
        return mqtt_encode_publish(client_out(c), c->version, p) == 0;
    if (mqtt_encode_publish_head(client_out(c), c->version, p) != 0)
        return false;
    /* The head is written: on failure the connection cannot stay in sync, so it ends. */
    if (conn_write_ref(c->conn, p->payload.p, p->payload.len, release_msg, msg_ref(m)) != 0) {
        client_fail(c, MQTT_RC_SERVER_BUSY);
        return false;
    }
    return true;
}

bool
client_send_publish(struct client *c, struct msg *m, uint8_t qos, bool retain, bool dup,
                    uint16_t id, const uint32_t *sub_ids, uint32_t n_sub_ids)
{
    struct mqtt_publish p = {
        .qos = qos, .dup = dup, .retain = retain, .topic = m->topic, .packet_id = id,
        .payload = m->payload,
    };

    if (c->version == MQTT_V5) {
        p.props = m->props;
        p.props.sub_ids = sub_ids;
        p.props.n_sub_ids = n_sub_ids;
        if (m->expiry_at) {
            p.props.has |= MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY);
            p.props.message_expiry = msg_expiry_left(m, c->hub->now);
        }
    }
    size_t size = mqtt_publish_size(c->version, &p);
    if (c->max_packet_out && size > c->max_packet_out) {
        /* [MQTT-3.1.2-25]: never send a packet larger than the client allows; the message is
         * discarded as if it had been delivered. */
        c->hub->stats.msgs_dropped++;
        return false;
    }
    /* An alias costs at most 3 bytes more than the plain packet, so it is used only where
     * those fit as well. */
    if (c->version == MQTT_V5 && c->alias_max_out &&
        (c->max_packet_out == 0 || size + 3 <= c->max_packet_out)) {
        bool is_new;
        uint16_t a = alias_for(c, m->topic, &is_new);
        if (a) {
            p.props.has |= MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
            p.props.topic_alias = a;
            if (!is_new)
                p.topic = slice_make("", 0);
        }
    }
    if (!encode_publish(c, m, &p)) {
        c->hub->stats.msgs_dropped++;
        return false;
    }
    c->hub->stats.msgs_sent++;
    c->hub->stats.msgs_sent_qos[qos]++;
    c->hub->stats.payload_out_qos[qos] += m->payload.len;
    client_wrote(c);
    return true;
}

static void
dispatch(struct client *c, const struct mqtt_fixed_header *fh, struct slice body)
{
    if (c->state == CLIENT_NEW && fh->type != MQTT_CONNECT) {
        /* [MQTT-3.1.0-1] the first packet must be CONNECT */
        client_fail(c, MQTT_RC_PROTOCOL_ERROR);
        return;
    }
    switch (fh->type) {
    case MQTT_CONNECT:
        if (c->state != CLIENT_NEW) {
            client_fail(c, MQTT_RC_PROTOCOL_ERROR); /* [MQTT-3.1.0-2] */
            return;
        }
        on_connect(c, fh->flags, body);
        break;
    case MQTT_PUBLISH:
        on_publish(c, fh->flags, body);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        on_ack(c, fh->type, fh->flags, body);
        break;
    case MQTT_SUBSCRIBE:
        on_subscribe(c, fh->flags, body);
        break;
    case MQTT_UNSUBSCRIBE:
        on_unsubscribe(c, fh->flags, body);
        break;
    case MQTT_PINGREQ:
        if (fh->flags != 0 || body.len != 0) {
            client_fail(c, MQTT_RC_MALFORMED);
            return;
        }
        if (mqtt_encode_pingresp(client_out(c)) == 0)
            client_wrote(c);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        on_disconnect(c, fh->type, fh->flags, body);
        break;
    default:
        /* CONNACK, SUBACK, UNSUBACK, PINGRESP only travel to clients. */
        client_fail(c, MQTT_RC_PROTOCOL_ERROR);
        break;
    }
}

/* With several hubs, the session for a client ID lives on the hub the ID hashes to. A CONNECT
 * that arrived elsewhere moves there with its connection: the socket and every byte read so
 * far go through the owner's mailbox. Returns true when the connection was handed off. */
static bool
hand_off(struct client *c, const struct mqtt_fixed_header *fh, struct slice from_connect)
{
    struct hub *h = c->hub;
    struct mqtt_connect cn;

    if (h->all->n_hubs == 1 ||
        mqtt_decode_connect(fh->flags, slice_make(from_connect.p + fh->header_len, fh->remaining),
                            &cn) != 0 ||
        cn.client_id.len == 0)
        return false; /* errors and server-assigned IDs are handled here */
    struct hub *owner = hub_owner(h, cn.client_id);
    if (owner == h)
        return false;
    struct hub_item *it = hub_post(h, owner);
    it->op = OP_HANDOFF;
    it->u.handoff.fd = conn_fd(c->conn);
    it->u.handoff.transport = conn_transport(c->conn);
    it->u.handoff.listener = c->listener;
    it->u.handoff.peer = xstrdup(conn_peer(c->conn));
    it->u.handoff.data = xmalloc(from_connect.len);
    memcpy(it->u.handoff.data, from_connect.p, from_connect.len);
    it->u.handoff.len = from_connect.len;
    c->state = CLIENT_CLOSING;
    c->handed_off = true;
    conn_release(c->conn);
    return true;
}

void
client_adopt(struct hub *h, struct hub_item *it)
{
    struct client *c = client_new(h, it->u.handoff.fd, it->u.handoff.transport,
                                  it->u.handoff.peer, it->u.handoff.listener);

    if (c && conn_push_input(c->conn, it->u.handoff.data, it->u.handoff.len) != 0)
        client_fail(c, MQTT_RC_SERVER_BUSY);
    free(it->u.handoff.peer);
    free(it->u.handoff.data);
}

static uint32_t
max_inbound_packet(const struct client *c)
{
    uint32_t max = c->hub->cfg->max_packet_size;
    return max ? max : MQTT_VARINT_MAX + 5;
}

static void
client_on_input(void *ud, struct conn *conn)
{
    struct client *c = ud;
    struct buf *in = conn_in(conn);
    size_t off = 0;

    c->hub->now = clock_now_ms();
    /* Apply what other hubs posted before these bytes were sent (see hub_after). */
    mailbox_poll(c->hub->inbox);
    overload_input(c->hub);
    while (c->state != CLIENT_CLOSING) {
        struct mqtt_fixed_header fh;
        struct slice rest = slice_make(in->p + off, in->len - off);
        int rc = mqtt_decode_fixed_header(rest, max_inbound_packet(c), &fh);
        if (rc == -EAGAIN)
            break;
        if (rc != 0) {
            client_fail(c, (uint8_t)rc);
            break;
        }
        size_t total = (size_t)fh.header_len + fh.remaining;
        if (rest.len < total)
            break;
        c->last_rx = c->hub->now;
        if (c->state == CLIENT_NEW && fh.type == MQTT_CONNECT && hand_off(c, &fh, rest))
            break;
        dispatch(c, &fh, slice_make(rest.p + fh.header_len, fh.remaining));
        off += total;
    }
    hub_flush_early(c->hub);
    if (c->state == CLIENT_CLOSING) {
        in->len = 0;
        return;
    }
    buf_consume(in, off);
    /* The clock of packet_timeout runs from the first byte of an incomplete packet; a packet
     * completed in this read restarts it for the one that follows. */
    if (in->len == 0)
        c->partial_since = 0;
    else if (off > 0 || !c->partial_since)
        c->partial_since = c->hub->now;
}

void
client_detach(struct client *c)
{
    struct session *s = c->sess;

    if (!s)
        return;
    /* send_will is set at CONNACK and cleared only by a normal DISCONNECT, so any other
     * end publishes the will [MQTT-3.1.2-8]. */
    if (!c->send_will)
        sess_clear_will(s);
    log_info("client disconnected client=%s addr=%s", s->id, conn_peer(c->conn));
    app_event_disconnected(c);
    s->client = NULL;
    c->sess = NULL;
    atomic_fetch_sub_explicit(&c->hub->all->n_connected, 1, memory_order_relaxed);
    sess_detach(s);
}

static void
client_on_close(void *ud, struct conn *conn)
{
    struct client *c = ud;
    struct hub *h = c->hub;

    persist_forget(c);
    client_detach(c);
    if (!c->handed_off)
        atomic_fetch_sub_explicit(&h->all->listener_conns[c->listener - h->cfg->listeners], 1,
                                  memory_order_relaxed);
    list_remove(&c->link);
    list_remove(&c->token_link);
    for (uint32_t i = 0; c->alias_in && i <= c->n_alias_in; i++)
        free(c->alias_in[i]);
    free(c->alias_in);
    if (c->aliases_out) {
        for (uint32_t i = 0; i <= c->aliases_out->n; i++)
            free(c->aliases_out->topics[i]);
        map_fini(&c->aliases_out->by_topic);
        free(c->aliases_out);
    }
    free(c);
}
