/*
 * on_disconnect.c - DISCONNECT (and AUTH, which Petrel does not offer yet) from a client.
 */
#include "base/log.h"
#include "session/internal.h"

void
on_disconnect(struct client *c, uint8_t type, uint8_t flags, struct slice body)
{
    struct session *s = c->sess;
    struct mqtt_disconnect d;
    int rc = mqtt_decode_disconnect(type, flags, body, c->version, &d);

    if (rc != 0) {
        client_fail(c, (uint8_t)rc);
        return;
    }
    if (type == MQTT_AUTH) {
        /* No extended authentication was negotiated, so AUTH is out of place [MQTT-4.12.0-1]. */
        client_fail(c, MQTT_RC_PROTOCOL_ERROR);
        return;
    }
    if (c->version == MQTT_V5 && (d.props.has & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY))) {
        if (s->expiry == 0 && d.props.session_expiry != 0) {
            client_fail(c, MQTT_RC_PROTOCOL_ERROR); /* [MQTT-3.14.2-2] */
            return;
        }
        s->expiry = d.props.session_expiry;
    }
    /* A normal DISCONNECT discards the will [MQTT-3.14.4-3]; 0x04 asks for it to be sent. */
    c->send_will = c->version == MQTT_V5 && d.rc == MQTT_RC_DISCONNECT_WITH_WILL;
    c->end_reason = "client disconnected";
    log_debug("disconnect received client=%s reason=0x%02x", s->id, d.rc);
    c->state = CLIENT_CLOSING;
    conn_close(c->conn);
    /* At once, not when the socket is gone: a reconnect read in this same iteration must find
     * the session already ended (or offline) as this DISCONNECT asked. */
    client_detach(c);
}
