"""Retained messages: set, replace, delete with an empty payload, delivery on subscribe with
the RETAIN flag, retain handling 0/1/2, expiry, retain_available (issue 2, point 5)."""

import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, assert_serves, drain_publishes, sub_opts
from support import MQTTv311, MQTTv5, Paho


def _retain(port, topic, payload, qos=1, version=4, props=None):
    c = RawClient(port, version)
    c.connect("retainer")
    c.publish(topic, payload, qos=qos, retain=True, props=props)
    c.disconnect()


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_retained_delivered_on_subscribe(broker, protocol):
    """A retained message is stored [MQTT-3.3.1-5] and sent to a new subscription with
    RETAIN 1 [MQTT-3.3.1-6], [MQTT-3.3.1-8] (3.1.1) / [MQTT-3.3.1-9] (5.0)."""
    b = broker()
    pub = Paho(b.port, "rpub", protocol=protocol)
    pub.connect()
    pub.publish("ret/a", b"stored", qos=1, retain=True)
    pub.disconnect()
    sub = Paho(b.port, "rsub", protocol=protocol)
    sub.connect()
    sub.subscribe("ret/a", 1)
    m = sub.expect_message()
    assert (m.topic, m.payload, m.retain, m.qos) == ("ret/a", b"stored", 1, 1)
    sub.disconnect()


def test_retained_live_forward_has_retain_0_v311(broker):
    """3.1.1: a retained PUBLISH forwarded to an existing subscription has RETAIN 0
    [MQTT-3.3.1-9] (3.1.1 numbering)."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("live311")
    sub.subscribe(("live/t", 1))
    _retain(b.port, "live/t", b"x")
    m = sub.recv_publish()
    assert m.payload == b"x" and m.retain is False
    sub.disconnect()


def test_retained_replaced(broker):
    """A new retained message replaces the previous one on that topic [MQTT-3.3.1-5]."""
    b = broker()
    _retain(b.port, "rep/t", b"first")
    _retain(b.port, "rep/t", b"second", qos=0)  # QoS 0 replaces too [MQTT-3.3.1-7] (3.1.1)
    sub = RawClient(b.port, 4)
    sub.connect("rep-sub")
    sub.subscribe(("rep/t", 1))
    got = drain_publishes(sub, window=1.0)
    assert [(m.payload, m.retain, m.qos) for m in got] == [(b"second", True, 0)]
    sub.disconnect()


def test_retained_deleted_by_empty_payload(broker):
    """A retained PUBLISH with an empty payload removes the retained message
    [MQTT-3.3.1-10] and is itself not stored [MQTT-3.3.1-11] (3.1.1 numbering); it is still
    forwarded to current subscribers [MQTT-3.3.1-10 (5.0)]."""
    b = broker()
    _retain(b.port, "del/keep", b"keep")
    _retain(b.port, "del/gone", b"gone")
    live = RawClient(b.port, 4)
    live.connect("del-live")
    live.subscribe(("del/gone", 1))
    assert live.recv_publish().payload == b"gone"
    _retain(b.port, "del/gone", b"")
    m = live.recv_publish()
    assert m.payload == b"" and m.retain is False
    sub = RawClient(b.port, 4)
    sub.connect("del-sub")
    sub.subscribe(("del/#", 1))
    got = drain_publishes(sub, window=1.0)
    assert [(m.topic, m.payload) for m in got] == [("del/keep", b"keep")]
    live.disconnect()
    sub.disconnect()


def test_retained_wildcard_subscription_gets_all(broker):
    """A wildcard subscription receives every matching retained message [MQTT-3.3.1-6];
    non-matching ones and '$' topics under '#' are not sent [MQTT-4.7.2-1]."""
    b = broker()
    for t in ("wc/a", "wc/b/c", "other/x", "$wc/d"):
        _retain(b.port, t, t.encode())
    sub = RawClient(b.port, 4)
    sub.connect("wc-sub")
    sub.subscribe(("wc/#", 1))
    got = drain_publishes(sub, window=1.0)
    assert sorted(m.topic for m in got) == ["wc/a", "wc/b/c"]
    assert all(m.retain for m in got)
    sub2 = RawClient(b.port, 4)
    sub2.connect("wc-sub2")
    sub2.subscribe(("#", 0))
    got = drain_publishes(sub2, window=1.0)
    assert sorted(m.topic for m in got) == ["other/x", "wc/a", "wc/b/c"]
    sub.disconnect()
    sub2.disconnect()


def test_retained_qos_is_minimum(broker):
    """A retained message goes out at min(stored QoS, granted QoS) [MQTT-3.8.4-8]."""
    b = broker()
    _retain(b.port, "rq/two", b"2", qos=2)
    _retain(b.port, "rq/zero", b"0", qos=0)
    sub = RawClient(b.port, 4)
    sub.connect("rq-sub")
    sub.subscribe([("rq/two", 1), ("rq/zero", 2)])
    got = {m.topic: m.qos for m in drain_publishes(sub, window=1.0)}
    assert got == {"rq/two": 1, "rq/zero": 0}
    sub.disconnect()


def test_retained_sent_again_on_resubscribe_v311(broker):
    """3.1.1: every SUBSCRIBE, even a repeat of an existing one, re-sends matching retained
    messages [MQTT-3.8.4-3]."""
    b = broker()
    _retain(b.port, "again/t", b"r")
    sub = RawClient(b.port, 4)
    sub.connect("again")
    sub.subscribe(("again/t", 1))
    assert sub.recv_publish().retain is True
    sub.subscribe(("again/t", 1), pid=2)
    m = sub.recv_publish()
    assert m.payload == b"r" and m.retain is True
    sub.disconnect()


@pytest.mark.parametrize("rh", [0, 1, 2])
def test_retain_handling(broker, rh):
    """Retain Handling: 0 sends retained messages at every subscribe [MQTT-3.3.1-9]; 1 only
    if the subscription did not exist [MQTT-3.3.1-10]; 2 never [MQTT-3.3.1-11]."""
    b = broker()
    _retain(b.port, "rh/t", b"r", version=5)
    c = RawClient(b.port, 5)
    c.connect("rh%d" % rh)
    c.subscribe(("rh/t", sub_opts(qos=1, rh=rh)))
    first = drain_publishes(c, window=0.8)
    c.subscribe(("rh/t", sub_opts(qos=1, rh=rh)), pid=2)
    second = drain_publishes(c, window=0.8)
    expect_first = {0: 1, 1: 1, 2: 0}[rh]
    expect_second = {0: 1, 1: 0, 2: 0}[rh]
    assert len(first) == expect_first and len(second) == expect_second, (first, second)
    for m in first + second:
        assert m.retain is True and m.payload == b"r"
    c.disconnect()


def test_retained_message_expiry(broker):
    """A retained message whose Message Expiry Interval has passed is no longer sent to new
    subscribers [MQTT-3.3.2-5]; one still valid is sent with the remaining interval
    [MQTT-3.3.2-6]."""
    b = broker()
    _retain(b.port, "rexp/short", b"short", version=5, props={rm.MESSAGE_EXPIRY_INTERVAL: 1})
    _retain(b.port, "rexp/long", b"long", version=5, props={rm.MESSAGE_EXPIRY_INTERVAL: 100})
    time.sleep(2.2)
    c = RawClient(b.port, 5)
    c.connect("rexp-sub")
    c.subscribe(("rexp/#", 1))
    got = drain_publishes(c, window=1.0)
    assert [m.topic for m in got] == ["rexp/long"]
    assert got[0].props.get(rm.MESSAGE_EXPIRY_INTERVAL, 100) < 100
    c.disconnect()


def test_retain_not_available(broker):
    """retain_available false: CONNACK Retain Available 0 and a retained PUBLISH gets
    DISCONNECT 0x9A Retain not supported (section 3.3.1.3; the client broke [MQTT-3.2.2-14]);
    nothing is stored."""
    b = broker("retain_available false")
    c = RawClient(b.port, 5)
    ack = c.connect("noretain")
    assert ack.props.get(rm.RETAIN_AVAILABLE) == 0
    c.send(rm.publish("nr/t", b"x", qos=1, pid=1, retain=True))
    c.expect_disconnect(rm.RC_RETAIN_NOT_SUPPORTED)
    sub = RawClient(b.port, 5)
    sub.connect("noretain-sub")
    sub.subscribe(("nr/t", 1))
    sub.expect_nothing(1.0)
    sub.disconnect()
    assert_serves(b.port)


def test_retained_keeps_properties(broker):
    """A retained message keeps its properties (content type, user properties, response
    topic, correlation data, payload format) when delivered later [MQTT-3.3.2-4],
    [MQTT-3.3.2-15..20] and the retain flag [MQTT-3.3.1-9]."""
    b = broker()
    p = [(rm.PAYLOAD_FORMAT_INDICATOR, 1), (rm.CONTENT_TYPE, "text/csv"),
         (rm.RESPONSE_TOPIC, "rp/reply"), (rm.CORRELATION_DATA, b"\x01\x02"),
         (rm.USER_PROPERTY, ("u", "1")), (rm.USER_PROPERTY, ("u", "2"))]
    _retain(b.port, "rp/t", b"a,b", version=5, props=p)
    c = RawClient(b.port, 5)
    c.connect("rp-sub")
    c.subscribe(("rp/t", 1))
    m = c.recv_publish()
    assert m.retain is True and m.payload == b"a,b"
    assert m.props[rm.PAYLOAD_FORMAT_INDICATOR] == 1
    assert m.props[rm.CONTENT_TYPE] == "text/csv"
    assert m.props[rm.RESPONSE_TOPIC] == "rp/reply"
    assert m.props[rm.CORRELATION_DATA] == b"\x01\x02"
    assert m.props[rm.USER_PROPERTY] == [("u", "1"), ("u", "2")]
    c.disconnect()


def test_retained_survives_publisher_and_subscriber_churn(broker):
    """Retained state is the server's, independent of client sessions [MQTT-3.3.1-5]: many
    subscribers in turn each get it once."""
    b = broker()
    _retain(b.port, "churn/t", b"r")
    for i in range(5):
        c = RawClient(b.port, 4)
        c.connect("churn%d" % i)
        c.subscribe(("churn/+", 1))
        got = drain_publishes(c, window=0.3)
        assert [m.payload for m in got] == [b"r"]
        c.disconnect()
