/*
 * rc.c - names of MQTT 5 reason codes for logs; see rc.h.
 */
#include "mqtt/rc.h"

const char *
mqtt_rc_str(int rc)
{
    switch (rc) {
    case MQTT_RC_SUCCESS: return "success";
    case MQTT_RC_GRANTED_QOS1: return "granted qos 1";
    case MQTT_RC_GRANTED_QOS2: return "granted qos 2";
    case MQTT_RC_DISCONNECT_WITH_WILL: return "disconnect with will message";
    case MQTT_RC_NO_MATCHING_SUBSCRIBERS: return "no matching subscribers";
    case MQTT_RC_NO_SUBSCRIPTION_EXISTED: return "no subscription existed";
    case MQTT_RC_CONTINUE_AUTH: return "continue authentication";
    case MQTT_RC_REAUTHENTICATE: return "re-authenticate";
    case MQTT_RC_UNSPECIFIED: return "unspecified error";
    case MQTT_RC_MALFORMED: return "malformed packet";
    case MQTT_RC_PROTOCOL_ERROR: return "protocol error";
    case MQTT_RC_IMPL_SPECIFIC: return "implementation specific error";
    case MQTT_RC_UNSUPPORTED_VERSION: return "unsupported protocol version";
    case MQTT_RC_CLIENT_ID_INVALID: return "client identifier not valid";
    case MQTT_RC_BAD_CREDENTIALS: return "bad user name or password";
    case MQTT_RC_NOT_AUTHORIZED: return "not authorized";
    case MQTT_RC_SERVER_UNAVAILABLE: return "server unavailable";
    case MQTT_RC_SERVER_BUSY: return "server busy";
    case MQTT_RC_BANNED: return "banned";
    case MQTT_RC_SERVER_SHUTTING_DOWN: return "server shutting down";
    case MQTT_RC_BAD_AUTH_METHOD: return "bad authentication method";
    case MQTT_RC_KEEP_ALIVE_TIMEOUT: return "keep alive timeout";
    case MQTT_RC_SESSION_TAKEN_OVER: return "session taken over";
    case MQTT_RC_TOPIC_FILTER_INVALID: return "topic filter invalid";
    case MQTT_RC_TOPIC_NAME_INVALID: return "topic name invalid";
    case MQTT_RC_PACKET_ID_IN_USE: return "packet identifier in use";
    case MQTT_RC_PACKET_ID_NOT_FOUND: return "packet identifier not found";
    case MQTT_RC_RECEIVE_MAX_EXCEEDED: return "receive maximum exceeded";
    case MQTT_RC_TOPIC_ALIAS_INVALID: return "topic alias invalid";
    case MQTT_RC_PACKET_TOO_LARGE: return "packet too large";
    case MQTT_RC_MESSAGE_RATE_TOO_HIGH: return "message rate too high";
    case MQTT_RC_QUOTA_EXCEEDED: return "quota exceeded";
    case MQTT_RC_ADMIN_ACTION: return "administrative action";
    case MQTT_RC_PAYLOAD_FORMAT_INVALID: return "payload format invalid";
    case MQTT_RC_RETAIN_NOT_SUPPORTED: return "retain not supported";
    case MQTT_RC_QOS_NOT_SUPPORTED: return "qos not supported";
    case MQTT_RC_USE_ANOTHER_SERVER: return "use another server";
    case MQTT_RC_SERVER_MOVED: return "server moved";
    case MQTT_RC_SHARED_SUB_NOT_SUPPORTED: return "shared subscriptions not supported";
    case MQTT_RC_CONNECTION_RATE_EXCEEDED: return "connection rate exceeded";
    case MQTT_RC_MAX_CONNECT_TIME: return "maximum connect time";
    case MQTT_RC_SUB_IDS_NOT_SUPPORTED: return "subscription identifiers not supported";
    case MQTT_RC_WILDCARD_SUB_NOT_SUPPORTED: return "wildcard subscriptions not supported";
    }
    return "unknown reason code";
}
