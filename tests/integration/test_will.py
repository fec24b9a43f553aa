"""Will messages: published on abnormal disconnection (socket closed, keep alive timeout,
protocol error), not on a normal DISCONNECT, DISCONNECT 0x04, will retain/QoS/properties,
MQTT 5 Will Delay Interval (issue 2, point 5)."""

import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, drain_publishes
from support import MQTTv311, MQTTv5, Paho, props, scaled
from paho.mqtt.packettypes import PacketTypes


def _watcher(port, flt="will/#", version=5, cid="watcher"):
    w = RawClient(port, version)
    w.connect(cid)
    w.subscribe((flt, 2))
    return w


def _will(topic="will/t", payload=b"gone", qos=1, retain=False, props=None):
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain, "props": props}


@pytest.mark.parametrize("version", [3, 4, 5])
def test_will_on_socket_close(broker, version):
    """The Will Message is published when the network connection is closed without a
    DISCONNECT [MQTT-3.1.2-8]."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, version)
    c.connect("dying-%d" % version, will=_will(payload=b"v%d" % version))
    c.close()
    m = w.recv_publish()
    assert (m.topic, m.payload, m.qos) == ("will/t", b"v%d" % version, 1)
    w.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_no_will_on_normal_disconnect(broker, version):
    """A normal DISCONNECT discards the Will Message without publishing it [MQTT-3.14.4-3]
    (3.1.1) / [MQTT-3.1.2-10] (5.0)."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, version)
    c.connect("polite-%d" % version, will=_will())
    c.disconnect()
    w.expect_nothing(1.0)
    w.disconnect()


def test_will_on_keepalive_timeout(broker):
    """A client that misses its keep alive loses its connection and its will is published
    [MQTT-3.1.2-8] (the server closes the connection), [MQTT-3.1.2-24] (3.1.1 keep alive)."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 4)
    c.connect("silent", keepalive=1, will=_will(payload=b"timed out"))
    m = w.recv_publish(timeout=scaled(6))
    assert m.payload == b"timed out"
    c.close()
    w.disconnect()


def test_will_on_protocol_error(broker):
    """A connection closed by the server because of a protocol error publishes the will
    [MQTT-3.1.2-8]."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 4)
    c.connect("rude", will=_will(payload=b"malformed"))
    c.send(rm.connect("rude", version=4))  # a second CONNECT [MQTT-3.1.0-2]
    c.expect_closed()
    m = w.recv_publish()
    assert m.payload == b"malformed"
    w.disconnect()


def test_will_disconnect_with_will_message(broker):
    """MQTT 5 DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will
    (section 3.14.2.1), [MQTT-3.1.2-8]."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 5)
    c.connect("leaving", will=_will(payload=b"asked for it"))
    c.disconnect(rc=rm.RC_DISCONNECT_WITH_WILL)
    m = w.recv_publish()
    assert m.payload == b"asked for it"
    w.disconnect()


def test_will_retained(broker):
    """Will Retain 1: the will is published as a retained message [MQTT-3.1.2-17]
    (3.1.1; [MQTT-3.1.2-15] in 5.0)."""
    b = broker()
    c = RawClient(b.port, 4)
    c.connect("retwill", will=_will(topic="will/ret", payload=b"last words", retain=True))
    c.close()
    time.sleep(0.3)
    # a later subscriber gets it as a retained message
    from support import wait_for

    def retained_seen():
        s = RawClient(b.port, 4)
        s.connect("late")
        s.subscribe(("will/ret", 1))
        got = drain_publishes(s, window=0.3)
        s.disconnect()
        return got
    got = wait_for(retained_seen, timeout=5, what="the retained will")
    assert got[0].payload == b"last words" and got[0].retain is True
    # clean up
    p = RawClient(b.port, 4)
    p.connect("cleanup")
    p.publish("will/ret", b"", retain=True, qos=1)
    p.disconnect()


def test_will_qos2(broker):
    """The will is published at its Will QoS (section 3.1.2.6) [MQTT-3.1.2-14]: QoS 2 to a QoS 2
    subscriber."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 5)
    c.connect("q2will", will=_will(qos=2, payload=b"q2"))
    c.close()
    m = w.recv_publish()
    assert m.qos == 2 and m.payload == b"q2"
    w.disconnect()


def test_will_properties_passed_through(broker):
    """Will Properties (payload format, content type, response topic, correlation data, user
    properties, message expiry) are sent with the Will Message (section 3.1.3.2),
    user properties in order [MQTT-3.1.3-10]."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 5)
    wp = [(rm.PAYLOAD_FORMAT_INDICATOR, 1), (rm.CONTENT_TYPE, "text/plain"),
          (rm.RESPONSE_TOPIC, "will/reply"), (rm.CORRELATION_DATA, b"\x00\x01corr"),
          (rm.USER_PROPERTY, ("k1", "v1")), (rm.USER_PROPERTY, ("k2", "v2")),
          (rm.USER_PROPERTY, ("k1", "v3")), (rm.MESSAGE_EXPIRY_INTERVAL, 100)]
    c.connect("propwill", will=_will(payload="texte é".encode(), props=wp))
    c.close()
    m = w.recv_publish()
    assert m.payload == "texte é".encode()
    assert m.props[rm.PAYLOAD_FORMAT_INDICATOR] == 1
    assert m.props[rm.CONTENT_TYPE] == "text/plain"
    assert m.props[rm.RESPONSE_TOPIC] == "will/reply"
    assert m.props[rm.CORRELATION_DATA] == b"\x00\x01corr"
    assert m.props[rm.USER_PROPERTY] == [("k1", "v1"), ("k2", "v2"), ("k1", "v3")]
    assert 0 < m.props[rm.MESSAGE_EXPIRY_INTERVAL] <= 100
    w.disconnect()


def test_will_delay(broker):
    """Will Delay Interval: the will is published only after the delay has passed
    [MQTT-3.1.3-9] (section 3.1.3.2.2)."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 5)
    c.connect("delayed", clean=True, props={rm.SESSION_EXPIRY_INTERVAL: 60},
              will=_will(payload=b"late", props={rm.WILL_DELAY_INTERVAL: 3}))
    c.close()
    w.expect_nothing(1.0)
    m = w.recv_publish(timeout=scaled(8))
    assert m.payload == b"late"
    w.disconnect()


def test_will_delay_cancelled_by_reconnect(broker):
    """A new connection for the session before the Will Delay Interval passes means the will
    is not sent [MQTT-3.1.3-9]."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 5)
    c.connect("comeback", clean=True, props={rm.SESSION_EXPIRY_INTERVAL: 60},
              will=_will(payload=b"never", props={rm.WILL_DELAY_INTERVAL: 2}))
    c.close()
    time.sleep(0.3)
    c = RawClient(b.port, 5)
    ack = c.connect("comeback", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 60})
    assert ack.session_present is True
    w.expect_nothing(3.0)
    c.disconnect()
    w.disconnect()


def test_will_delay_ends_with_session(broker):
    """The will is published when the session ends, if that comes before the Will Delay
    Interval (section 3.1.3.2.2; [MQTT-3.1.2-8])."""
    b = broker()
    w = _watcher(b.port)
    c = RawClient(b.port, 5)
    c.connect("shortsess", props={rm.SESSION_EXPIRY_INTERVAL: 1},
              will=_will(payload=b"session over", props={rm.WILL_DELAY_INTERVAL: 60}))
    c.close()
    m = w.recv_publish(timeout=scaled(6))
    assert m.payload == b"session over"
    w.disconnect()


def test_will_paho_v5(broker):
    """paho MQTT 5 will with properties, published when the connection drops
    [MQTT-3.1.2-8]."""
    b = broker()
    w = Paho(b.port, "pwatch", protocol=MQTTv5)
    w.connect()
    w.subscribe("pwill/#", 1)
    c = Paho(b.port, "pdying", protocol=MQTTv5)
    c.will_set("pwill/t", b"bye", qos=1,
               properties=props(PacketTypes.WILLMESSAGE, ContentType="text/x",
                                UserProperty=[("a", "1")]))
    c.connect()
    c.close()
    m = w.expect_message()
    assert m.payload == b"bye" and m.properties.ContentType == "text/x"
    assert m.properties.UserProperty == [("a", "1")]
    w.disconnect()


def test_will_paho_v311_clean_disconnect(broker):
    """paho 3.1.1 disconnect() sends DISCONNECT: no will [MQTT-3.14.4-3]."""
    b = broker()
    w = Paho(b.port, "pwatch311")
    w.connect()
    w.subscribe("pw311/#", 1)
    c = Paho(b.port, "pclean311", protocol=MQTTv311)
    c.will_set("pw311/t", b"bye", qos=1)
    c.connect()
    c.disconnect()
    w.expect_no_message(1.0)
    w.disconnect()
