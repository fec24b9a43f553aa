/*
 * on_ack.c - PUBACK, PUBREC, PUBREL and PUBCOMP from a client.
 */
#include "base/log.h"
#include "session/internal.h"

void
on_ack(struct client *c, uint8_t type, uint8_t flags, struct slice body)
{
    struct session *s = c->sess;
    struct mqtt_ack a;
    int rc = mqtt_decode_ack(type, flags, body, c->version, &a);

    if (rc != 0) {
        client_fail(c, (uint8_t)rc);
        return;
    }
    switch (type) {
    case MQTT_PUBACK:
        rc = sess_on_puback(s, a.packet_id);
        break;
    case MQTT_PUBREC:
        rc = sess_on_pubrec(s, a.packet_id, a.rc);
        if (rc != 0) /* MQTT 5 3.6.2.1: PUBREL 0x92 lets the client finish the exchange */
            client_send_ack(c, MQTT_PUBREL, a.packet_id, MQTT_RC_PACKET_ID_NOT_FOUND);
        break;
    case MQTT_PUBREL:
        rc = qos2_release(s, a.packet_id) ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND;
        if (rc == 0 && persist_sess(s)) {
            /* A stored id that outlives our PUBCOMP would make the client's next PUBLISH
             * with this id look like a resend after a crash: PUBCOMP waits for the drop. */
            persist_qos2(s, a.packet_id, false);
            persist_hold(c);
        }
        /* PUBCOMP even for an id we do not know (0x92 in MQTT 5, 3.7.2.1): the client may be
         * resending after a reconnect that lost our first PUBCOMP. */
        client_send_ack(c, MQTT_PUBCOMP, a.packet_id, (uint8_t)rc);
        break;
    case MQTT_PUBCOMP:
        rc = sess_on_pubcomp(s, a.packet_id);
        break;
    }
    if (rc != 0)
        log_debug("ack for unknown packet id client=%s type=%u id=%u", s->id, type, a.packet_id);
}
