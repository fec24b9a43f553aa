/*
 * fuzz_session.c - libFuzzer target for the whole connection state machine: two real hubs on
 * one event loop, fed by up to four clients over socketpairs.
 *
 * The input is a script of records, each starting with an op byte whose low two bits name a
 * client (0-3) and whose next two bits say what it does:
 *
 *   0, 1  write: a 16-bit big-endian length follows, then that many bytes (fewer at the end of
 *         the input) for the broker; a client that has no socket gets a new one first, accepted
 *         by hub (client % 2), so a CONNECT on the "wrong" hub is handed off to its owner
 *   2     close the client's socket (takeovers, wills, resumption on the next write)
 *   3     run both hubs' periodic work (sweeps, $SYS)
 *
 * After each record the loop runs until it has nothing left to do and everything the broker
 * wrote is read back. Output is checked: it must frame, consist only of packets a server may
 * send, and decode in the protocol version of the client's CONNECT. At the end every socket
 * is closed, the hubs shut down and everything is freed: LeakSanitizer then finds what a
 * script left behind. Each input gets fresh hubs, so no state carries over between inputs.
 *
 * tests/fuzz/make_corpus.py writes seeds in this format (tests/fuzz/corpus/session/).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "config/config.h"
#include "mqtt/packet.h"
#include "net/conn.h"
#include "net/loop.h"
#include "session/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define N_CLIENTS 4
#define N_HUBS 2
/* Loop iterations per record: enough for a hand-off and the replies it causes. */
#define MAX_SPINS 64
/* The broker's max_packet_size here. */
#define MAX_PACKET 8192

struct peer {
    int fd;           /* our end of the socketpair, -1: none */
    int version;      /* of the CONNECT this client sent first; 0: none decoded yet */
    bool saw_connect; /* the first packet has been looked at */
    struct buf first; /* what the client wrote until its first packet is whole */
    struct buf out;   /* what the broker sent, not yet checked */
};

struct rig {
    struct config cfg;
    struct loop *loop;
    struct conn_pool pools[N_HUBS];
    struct hubs *hubs;
    struct hub *hub[N_HUBS];
    struct peer peers[N_CLIENTS];
};

static void
after_all(void *ud)
{
    struct rig *r = ud;

    for (unsigned k = 0; k < N_HUBS; k++)
        hub_after(r->hub[k]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_setup(0, false, false, NULL, false);
    return 0;
}

static void
rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    config_defaults(&r->cfg);
    config_add_default_listener(&r->cfg, 0);
    /* Small limits, so that a short script reaches them. */
    r->cfg.max_inflight_messages = 4;
    r->cfg.max_queued_messages = 8;
    r->cfg.max_queued_bytes = 16384;
    r->cfg.max_packet_size = MAX_PACKET;
    r->cfg.max_topic_alias = 4;
    r->cfg.max_subscriptions_per_client = 16;
    r->cfg.sys_interval = 1;
    r->cfg.workers = N_HUBS;
    CHECK(loop_new(&r->loop) == 0);
    r->hubs = hubs_new(&r->cfg, N_HUBS);
    for (unsigned k = 0; k < N_HUBS; k++) {
        conn_pool_init(&r->pools[k], r->loop, false);
        CHECK((r->hub[k] = hub_new(r->hubs, k, r->loop, &r->pools[k])) != NULL);
    }
    loop_set_after(r->loop, after_all, r);
    for (unsigned i = 0; i < N_CLIENTS; i++) {
        r->peers[i].fd = -1;
        buf_init(&r->peers[i].out);
        buf_init(&r->peers[i].first);
    }
}

static bool
server_may_send(uint8_t type)
{
    return type == MQTT_CONNACK || type == MQTT_PUBLISH ||
           (type >= MQTT_PUBACK && type <= MQTT_PUBCOMP) || type == MQTT_SUBACK ||
           type == MQTT_UNSUBACK || type == MQTT_PINGRESP || type == MQTT_DISCONNECT ||
           type == MQTT_AUTH;
}

/* The decoder is the server's: it refuses a PUBLISH carrying Subscription Identifiers, which
 * only a client may receive [MQTT-3.3.4-6]. So an MQTT 5 PUBLISH from the broker is decoded
 * with them taken out: its properties are decoded alone and encoded again without them. */
static int
decode_publish_v5(uint8_t flags, struct slice body, struct mqtt_publish *out)
{
    size_t head = 2 + (body.len >= 2 ? (size_t)(body.p[0] << 8 | body.p[1]) : 0) +
                  (((flags >> 1) & 3) ? 2 : 0);
    uint32_t plen;
    int n;
    struct mqtt_props props;
    struct buf b;

    if (head > body.len || (n = mqtt_varint_get(slice_tail(body, head), &plen)) <= 0 ||
        plen > body.len - head - (size_t)n)
        return MQTT_RC_MALFORMED;
    struct slice raw = slice_make(body.p + head + (size_t)n, plen);
    if (mqtt_props_decode(raw, MQTT_PUBLISH, false, &props) != 0)
        return MQTT_RC_MALFORMED;
    props.has &= ~MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
    buf_init(&b);
    CHECK(buf_append(&b, body.p, head) == 0 && mqtt_props_encode(&b, &props) == 0);
    size_t rest = head + (size_t)n + plen;
    CHECK(buf_append(&b, body.p + rest, body.len - rest) == 0);
    int rc = mqtt_decode_publish(flags, buf_slice(&b), MQTT_V5, out);
    buf_fini(&b);
    return rc;
}

/* One packet from the broker, in the client's version. */
static void
check_packet(int v, const struct mqtt_fixed_header *fh, struct slice body)
{
    union {
        struct mqtt_connack connack;
        struct mqtt_publish publish;
        struct mqtt_ack ack;
        struct mqtt_suback suback;
        struct mqtt_disconnect disconnect;
    } u;

    CHECK(server_may_send(fh->type));
    switch (fh->type) {
    case MQTT_CONNACK:
        CHECK(mqtt_decode_connack(fh->flags, body, v, &u.connack) == 0);
        break;
    case MQTT_PUBLISH:
        CHECK((v == MQTT_V5 ? decode_publish_v5(fh->flags, body, &u.publish)
                            : mqtt_decode_publish(fh->flags, body, v, &u.publish)) == 0);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        CHECK(mqtt_decode_ack(fh->type, fh->flags, body, v, &u.ack) == 0);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        CHECK(mqtt_decode_suback(fh->type, fh->flags, body, v, &u.suback) == 0);
        break;
    case MQTT_PINGRESP:
        CHECK(fh->flags == 0 && body.len == 0);
        break;
    default:
        /* Only MQTT 5 has DISCONNECT and AUTH from the server. */
        CHECK(v == MQTT_V5);
        CHECK(mqtt_decode_disconnect(fh->type, fh->flags, body, v, &u.disconnect) == 0);
        break;
    }
}

/* Check and drop the whole packets in p->out. */
static void
check_output(struct peer *p)
{
    size_t off = 0;

    for (;;) {
        struct mqtt_fixed_header fh;
        struct slice rest = slice_make(p->out.p + off, p->out.len - off);
        int rc = mqtt_decode_fixed_header(rest, 0, &fh);
        if (rc == -EAGAIN)
            break;
        CHECK(rc == 0);
        size_t total = (size_t)fh.header_len + fh.remaining;
        if (rest.len < total)
            break;
        struct slice body = slice_make(rest.p + fh.header_len, fh.remaining);
        if (p->version) {
            check_packet(p->version, &fh, body);
        } else {
            /* A CONNECT that did not decode (say, an unknown protocol level) gets at most a
             * refusal, in one of the versions. */
            struct mqtt_connack ca;
            CHECK(fh.type == MQTT_CONNACK);
            CHECK(mqtt_decode_connack(fh.flags, body, MQTT_V311, &ca) == 0 ||
                  mqtt_decode_connack(fh.flags, body, MQTT_V5, &ca) == 0);
        }
        off += total;
    }
    buf_consume(&p->out, off);
}

static void
peer_close(struct peer *p)
{
    if (p->fd < 0)
        return;
    close(p->fd);
    p->fd = -1;
    /* A packet cut short by the close is fine; whatever was whole has been checked. */
    p->out.len = 0;
    p->first.len = 0;
    p->version = 0;
    p->saw_connect = false;
}

/* Read what the broker wrote to every client. */
static void
drain(struct rig *r)
{
    uint8_t tmp[65536];

    for (unsigned i = 0; i < N_CLIENTS; i++) {
        struct peer *p = &r->peers[i];
        while (p->fd >= 0) {
            ssize_t n = recv(p->fd, tmp, sizeof(tmp), MSG_DONTWAIT);
            if (n > 0) {
                CHECK(buf_append(&p->out, tmp, (size_t)n) == 0);
                check_output(p);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                peer_close(p); /* the broker closed the connection */
            } else {
                break;
            }
        }
    }
}

/* Run the loop until an iteration finds no event. */
static void
settle(struct rig *r)
{
    for (int i = 0; i < MAX_SPINS; i++) {
        int n = loop_run_once(r->loop, 0);
        drain(r);
        if (n == 0)
            break;
    }
}

static void
peer_open(struct rig *r, unsigned i)
{
    int sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    r->peers[i].fd = sv[0];
    hub_accept(r->hub[i % N_HUBS], sv[1], NULL, "fuzz:1", &r->cfg.listeners[0]);
}

/* The version of the client's first packet, once it is whole, if it is a CONNECT that
 * decodes. */
static void
note_version(struct peer *p, const uint8_t *d, size_t len)
{
    struct mqtt_fixed_header fh;
    struct mqtt_connect cn;

    CHECK(buf_append(&p->first, d, len) == 0);
    struct slice in = buf_slice(&p->first);
    int rc = mqtt_decode_fixed_header(in, 0, &fh);
    if (rc == -EAGAIN ||
        (rc == 0 && (size_t)fh.header_len + fh.remaining > in.len && fh.remaining <= MAX_PACKET))
        return;
    p->saw_connect = true;
    if (rc == 0 && fh.type == MQTT_CONNECT && (size_t)fh.header_len + fh.remaining <= in.len &&
        mqtt_decode_connect(fh.flags, slice_make(in.p + fh.header_len, fh.remaining), &cn) == 0)
        p->version = cn.version;
    buf_fini(&p->first);
    buf_init(&p->first);
}

static void
peer_write(struct rig *r, unsigned i, const uint8_t *d, size_t len)
{
    struct peer *p = &r->peers[i];

    if (p->fd < 0)
        peer_open(r, i);
    if (!p->saw_connect)
        note_version(p, d, len);
    /* The socket may be full: let the broker read between partial writes. */
    for (int spins = 0; len > 0 && p->fd >= 0 && spins < MAX_SPINS; spins++) {
        ssize_t n = send(p->fd, d, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            d += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            break; /* the broker has closed it */
        }
        if (len > 0)
            settle(r); /* the caller settles after the whole record */
    }
}

static void
rig_fini(struct rig *r)
{
    for (unsigned i = 0; i < N_CLIENTS; i++)
        peer_close(&r->peers[i]);
    settle(r);
    hubs_shutdown(r->hubs);
    settle(r);
    for (unsigned k = 0; k < N_HUBS; k++) {
        /* Every socket was closed above, so the broker has closed every connection. */
        CHECK(r->pools[k].n_conns == 0);
        conn_pool_fini(&r->pools[k]);
    }
    hubs_free(r->hubs);
    loop_free(r->loop);
    for (unsigned i = 0; i < N_CLIENTS; i++) {
        buf_fini(&r->peers[i].out);
        buf_fini(&r->peers[i].first);
    }
    config_fini(&r->cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rig r;
    size_t pos = 0;

    rig_init(&r);
    while (pos < size) {
        uint8_t op = data[pos++];
        unsigned who = op & 3;
        switch ((op >> 2) & 3) {
        case 0:
        case 1: {
            size_t len = 0;
            for (int k = 0; k < 2 && pos < size; k++)
                len = len << 8 | data[pos++];
            if (len > size - pos)
                len = size - pos;
            peer_write(&r, who, data + pos, len);
            pos += len;
            break;
        }
        case 2:
            peer_close(&r.peers[who]);
            break;
        default:
            for (unsigned k = 0; k < N_HUBS; k++)
                hub_tick(r.hub[k]);
            break;
        }
        settle(&r);
    }
    rig_fini(&r);
    return 0;
}
