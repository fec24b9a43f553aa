"""MQTT 5 properties: topic aliases (inbound and outbound), message expiry, request/response,
user properties, payload format and content type, maximum packet size both ways
(issue 2, point 3)."""

import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, assert_serves, drain_publishes
from support import MQTTv5, Paho, props
from paho.mqtt.packettypes import PacketTypes


def _pair(port, flt, qos=1, sub_props=None, cid="p5"):
    sub = RawClient(port, 5)
    sub.connect(cid + "-sub", props=sub_props)
    sub.subscribe((flt, qos))
    pub = RawClient(port, 5)
    ack = pub.connect(cid + "-pub")
    return sub, pub, ack


# ---------------------------------------------------------------- topic aliases (inbound)

def test_inbound_topic_alias(broker):
    """A client sets a Topic Alias with a topic, then publishes with an empty topic and the
    alias; the broker maps it back [MQTT-3.3.2-12] (section 3.3.2.3.4); aliases can be
    re-mapped."""
    b = broker("max_topic_alias 10")
    sub, pub, ack = _pair(b.port, "ta/#", cid="ta")
    assert ack.props.get(rm.TOPIC_ALIAS_MAXIMUM, 0) >= 2
    pub.publish("ta/first", b"1", qos=1, pid=1, props={rm.TOPIC_ALIAS: 1})
    pub.publish("", b"2", qos=1, pid=2, props={rm.TOPIC_ALIAS: 1})
    pub.publish("ta/second", b"3", qos=0, props={rm.TOPIC_ALIAS: 2})
    pub.publish("", b"4", qos=0, props={rm.TOPIC_ALIAS: 2})
    pub.publish("ta/remapped", b"5", qos=1, pid=3, props={rm.TOPIC_ALIAS: 1})
    pub.publish("", b"6", qos=1, pid=4, props={rm.TOPIC_ALIAS: 1})
    got = [(m.topic, m.payload) for m in drain_publishes(sub, window=1.0)]
    assert got == [("ta/first", b"1"), ("ta/first", b"2"), ("ta/second", b"3"),
                   ("ta/second", b"4"), ("ta/remapped", b"5"), ("ta/remapped", b"6")]
    pub.disconnect()
    sub.disconnect()


def test_inbound_topic_alias_paho(broker):
    """paho sending an alias then an empty topic [MQTT-3.3.2-12]."""
    b = broker("max_topic_alias 10")
    sub = Paho(b.port, "tap-sub", protocol=MQTTv5)
    sub.connect()
    sub.subscribe("tap/t", 1)
    pub = Paho(b.port, "tap-pub", protocol=MQTTv5)
    pub.connect()
    pub.publish("tap/t", b"a", qos=1, properties=props(TopicAlias=3))
    pub.publish("", b"b", qos=1, properties=props(TopicAlias=3))
    got = sub.expect_messages(2)
    assert [(m.topic, m.payload) for m in got] == [("tap/t", b"a"), ("tap/t", b"b")]
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("alias", [0, 11])
def test_topic_alias_out_of_range(broker, alias):
    """A Topic Alias of 0 or above the broker's Topic Alias Maximum: DISCONNECT 0x94 Topic
    Alias invalid [MQTT-3.3.2-8] (0), [MQTT-3.3.2-9] (over the maximum); broker keeps
    serving."""
    b = broker("max_topic_alias 10")
    c = RawClient(b.port, 5)
    c.connect("ta-bad")
    c.send(rm.publish("ta/x", b"x", qos=0, props={rm.TOPIC_ALIAS: alias}))
    c.expect_disconnect(rm.RC_TOPIC_ALIAS_INVALID)
    assert_serves(b.port)


def test_topic_alias_when_max_is_zero(broker):
    """max_topic_alias 0: the broker accepts no aliases [MQTT-3.2.2-18]; any alias is
    invalid (DISCONNECT 0x94)."""
    b = broker("max_topic_alias 0")
    c = RawClient(b.port, 5)
    ack = c.connect("ta-zero")
    assert ack.props.get(rm.TOPIC_ALIAS_MAXIMUM, 0) == 0
    c.send(rm.publish("ta/x", b"x", qos=0, props={rm.TOPIC_ALIAS: 1}))
    c.expect_disconnect(rm.RC_TOPIC_ALIAS_INVALID)
    assert_serves(b.port)


def test_unknown_topic_alias_is_protocol_error(broker):
    """An empty topic with an alias that has no mapping yet is a Protocol Error
    (section 3.3.2.3.4; DISCONNECT 0x82 or 0x94)."""
    b = broker("max_topic_alias 10")
    c = RawClient(b.port, 5)
    c.connect("ta-unknown")
    c.send(rm.publish("", b"x", qos=0, props={rm.TOPIC_ALIAS: 4}))
    c.expect_disconnect((rm.RC_PROTOCOL_ERROR, rm.RC_TOPIC_ALIAS_INVALID))
    assert_serves(b.port)


def test_topic_aliases_are_per_connection(broker):
    """Topic alias mappings are scoped to one network connection [MQTT-3.3.2-7]
    (section 3.3.2.3.4): a new connection cannot use the old mapping."""
    b = broker("max_topic_alias 10")
    c = RawClient(b.port, 5)
    c.connect("ta-scope", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 60})
    c.publish("ta/scope", b"x", qos=1, props={rm.TOPIC_ALIAS: 1})
    c.disconnect()
    c = RawClient(b.port, 5)
    c.connect("ta-scope", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 60})
    c.send(rm.publish("", b"y", qos=0, props={rm.TOPIC_ALIAS: 1}))
    c.expect_disconnect((rm.RC_PROTOCOL_ERROR, rm.RC_TOPIC_ALIAS_INVALID))
    assert_serves(b.port)


# ---------------------------------------------------------------- topic aliases (outbound)

def test_no_outbound_alias_without_client_permission(broker):
    """A client that sent no Topic Alias Maximum (0) never receives a Topic Alias
    [MQTT-3.1.2-27]."""
    b = broker()
    sub, pub, _ = _pair(b.port, "oa/#", cid="oa0")
    for i in range(5):
        pub.publish("oa/same/topic", b"%d" % i, qos=0)
    got = [sub.recv_publish() for _ in range(5)]
    for m in got:
        assert rm.TOPIC_ALIAS not in m.props and m.sent_topic == "oa/same/topic"
    pub.disconnect()
    sub.disconnect()


def test_outbound_aliases_within_client_maximum(broker):
    """When the client allows Topic Alias Maximum 2 the broker may use aliases, never above 2
    [MQTT-3.1.2-26], and every message still resolves to its topic (section 3.3.2.3.4)."""
    b = broker()
    sub, pub, _ = _pair(b.port, "ob/#", sub_props={rm.TOPIC_ALIAS_MAXIMUM: 2}, cid="oa2")
    topics = ["ob/a", "ob/b", "ob/c", "ob/a", "ob/b", "ob/a", "ob/c", "ob/c"]
    for i, t in enumerate(topics):
        pub.publish(t, b"%d" % i, qos=1, pid=i + 1)
    got = [sub.recv_publish() for _ in topics]
    for m in got:
        alias = m.props.get(rm.TOPIC_ALIAS)
        assert alias is None or 1 <= alias <= 2, alias
    assert [m.topic for m in got] == topics  # resolved through the aliases we were sent
    pub.disconnect()
    sub.disconnect()


# ---------------------------------------------------------------- message expiry

def test_message_expiry_forwarded_remaining(broker):
    """The Message Expiry Interval is forwarded, reduced by the time the message waited in the
    broker [MQTT-3.3.2-6]."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("mexp", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 60})
    c.subscribe(("mexp/t", 1))
    c.disconnect()
    p = RawClient(b.port, 5)
    p.connect("mexp-pub")
    p.publish("mexp/t", b"x", qos=1, props={rm.MESSAGE_EXPIRY_INTERVAL: 60})
    p.disconnect()
    time.sleep(2.1)
    c = RawClient(b.port, 5)
    c.connect("mexp", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 60})
    m = c.recv_publish()
    assert m.payload == b"x"
    remaining = m.props.get(rm.MESSAGE_EXPIRY_INTERVAL)
    assert remaining is not None and remaining < 60, remaining
    assert remaining >= 50
    c.disconnect()


def test_message_expiry_live_delivery(broker):
    """A live delivery carries the expiry interval (no more than published) [MQTT-3.3.2-6]; a
    message without one carries none."""
    b = broker()
    sub, pub, _ = _pair(b.port, "mexl/t", cid="mexl")
    pub.publish("mexl/t", b"a", qos=1, props={rm.MESSAGE_EXPIRY_INTERVAL: 30})
    pub.publish("mexl/t", b"b", qos=1, pid=2)
    a = sub.recv_publish()
    bb = sub.recv_publish()
    assert 0 < a.props[rm.MESSAGE_EXPIRY_INTERVAL] <= 30
    assert rm.MESSAGE_EXPIRY_INTERVAL not in bb.props
    pub.disconnect()
    sub.disconnect()


def test_expired_queued_message_dropped(broker):
    """A queued message whose expiry passed while the subscriber was offline is not delivered
    [MQTT-3.3.2-5]; a non-expiring one queued with it is."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("mexd", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 60})
    c.subscribe(("mexd/t", 1))
    c.disconnect()
    p = RawClient(b.port, 5)
    p.connect("mexd-pub")
    p.publish("mexd/t", b"short", qos=1, pid=1, props={rm.MESSAGE_EXPIRY_INTERVAL: 1})
    p.publish("mexd/t", b"forever", qos=1, pid=2)
    p.disconnect()
    time.sleep(2.2)
    c = RawClient(b.port, 5)
    c.connect("mexd", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 60})
    got = drain_publishes(c, window=1.0)
    assert [m.payload for m in got] == [b"forever"]
    c.disconnect()


def test_message_expiry_to_v311_subscriber(broker):
    """Expiry applies to the message whatever the subscriber's protocol [MQTT-3.3.2-5]: a
    3.1.1 persistent session does not get an expired message."""
    b = broker()
    c = RawClient(b.port, 4)
    c.connect("mex311", clean=False)
    c.subscribe(("mex311/t", 1))
    c.disconnect()
    p = RawClient(b.port, 5)
    p.connect("mex311-pub")
    p.publish("mex311/t", b"short", qos=1, pid=1, props={rm.MESSAGE_EXPIRY_INTERVAL: 1})
    p.publish("mex311/t", b"kept", qos=1, pid=2)
    p.disconnect()
    time.sleep(2.2)
    c = RawClient(b.port, 4)
    c.connect("mex311", clean=False)
    got = drain_publishes(c, window=1.0)
    assert [m.payload for m in got] == [b"kept"]
    c.disconnect()


# ---------------------------------------------------------------- pass-through properties

def test_request_response_and_user_properties_pass_through(broker):
    """Response Topic [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User Properties in
    order [MQTT-3.3.2-17], [MQTT-3.3.2-18], Payload Format Indicator [MQTT-3.3.2-4] and
    Content Type [MQTT-3.3.2-20] reach the subscriber unaltered."""
    b = broker()
    sub, pub, _ = _pair(b.port, "pt/t", cid="pt")
    p = [(rm.PAYLOAD_FORMAT_INDICATOR, 1), (rm.CONTENT_TYPE, "application/json; charset=utf-8"),
         (rm.RESPONSE_TOPIC, "pt/reply/42"), (rm.CORRELATION_DATA, bytes(range(256))[:40]),
         (rm.USER_PROPERTY, ("z", "last")), (rm.USER_PROPERTY, ("a", "first")),
         (rm.USER_PROPERTY, ("z", "again")), (rm.USER_PROPERTY, ("ключ", "значение")),
         (rm.USER_PROPERTY, ("", ""))]
    pub.publish("pt/t", b'{"x": 1}', qos=1, props=p)
    m = sub.recv_publish()
    assert m.payload == b'{"x": 1}'
    assert m.props[rm.PAYLOAD_FORMAT_INDICATOR] == 1
    assert m.props[rm.CONTENT_TYPE] == "application/json; charset=utf-8"
    assert m.props[rm.RESPONSE_TOPIC] == "pt/reply/42"
    assert m.props[rm.CORRELATION_DATA] == bytes(range(256))[:40]
    assert m.props[rm.USER_PROPERTY] == [("z", "last"), ("a", "first"), ("z", "again"),
                                         ("ключ", "значение"), ("", "")]
    pub.disconnect()
    sub.disconnect()


def test_payload_format_zero_passes_binary(broker):
    """Payload Format Indicator 0 (unspecified bytes) with arbitrary binary payload is
    forwarded as is [MQTT-3.3.2-4]."""
    b = broker()
    sub, pub, _ = _pair(b.port, "bin/t", cid="bin")
    payload = bytes(range(256)) * 3
    pub.publish("bin/t", payload, qos=1, props={rm.PAYLOAD_FORMAT_INDICATOR: 0})
    m = sub.recv_publish()
    assert m.payload == payload
    assert m.props.get(rm.PAYLOAD_FORMAT_INDICATOR, 0) == 0
    pub.disconnect()
    sub.disconnect()


def test_request_response_paho(broker):
    """A request/response exchange between two paho clients: the responder answers on the
    Response Topic with the Correlation Data [MQTT-3.3.2-15], [MQTT-3.3.2-16]."""
    b = broker()
    requester = Paho(b.port, "requester", protocol=MQTTv5)
    requester.connect()
    requester.subscribe("rr/reply/requester", 1)
    responder = Paho(b.port, "responder", protocol=MQTTv5)
    responder.connect()
    responder.subscribe("rr/request", 1)
    requester.publish("rr/request", b"ping", qos=1,
                      properties=props(ResponseTopic="rr/reply/requester",
                                       CorrelationData=b"id-7",
                                       UserProperty=[("trace", "abc")]))
    req = responder.expect_message()
    assert req.properties.ResponseTopic == "rr/reply/requester"
    assert req.properties.CorrelationData == b"id-7"
    assert req.properties.UserProperty == [("trace", "abc")]
    responder.publish(req.properties.ResponseTopic, b"pong", qos=1,
                      properties=props(CorrelationData=req.properties.CorrelationData))
    resp = requester.expect_message()
    assert resp.payload == b"pong" and resp.properties.CorrelationData == b"id-7"
    requester.disconnect()
    responder.disconnect()


def test_response_topic_with_wildcard_rejected(broker):
    """A Response Topic must be a topic name, without wildcards [MQTT-3.3.2-14]: the broker
    closes the connection (DISCONNECT 0x82/0x90 first)."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("rt-wild")
    c.send(rm.publish("rt/t", b"x", qos=0, props={rm.RESPONSE_TOPIC: "rt/+/reply"}))
    c.expect_disconnect((rm.RC_PROTOCOL_ERROR, rm.RC_TOPIC_NAME_INVALID, rm.RC_MALFORMED))
    assert_serves(b.port)


def test_properties_to_v311_subscriber_dropped_cleanly(broker):
    """A 3.1.1 subscriber gets a message published with MQTT 5 properties as a plain 3.1.1
    PUBLISH (3.1.1 section 3.3: no properties field): topic and payload intact."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("v4-sub")
    sub.subscribe(("x5/t", 1))
    pub = RawClient(b.port, 5)
    pub.connect("v5-pub")
    pub.publish("x5/t", b"payload", qos=1,
                props={rm.USER_PROPERTY: [("a", "b")], rm.CONTENT_TYPE: "c"})
    m = sub.recv_publish()
    assert (m.topic, m.payload) == ("x5/t", b"payload")
    pub.disconnect()
    sub.disconnect()


# ---------------------------------------------------------------- maximum packet size

def test_client_maximum_packet_size_respected(broker):
    """The broker does not send a packet bigger than the client's Maximum Packet Size; it
    drops it and carries on [MQTT-3.1.2-24], [MQTT-3.1.2-25]."""
    b = broker()
    sub, pub, _ = _pair(b.port, "mps/t", sub_props={rm.MAXIMUM_PACKET_SIZE: 200}, cid="mps")
    pub.publish("mps/t", b"B" * 1000, qos=1, pid=1)
    pub.publish("mps/t", b"small", qos=1, pid=2)
    m = sub.recv_publish()
    assert m.payload == b"small"
    assert len(m.raw) <= 200
    sub.expect_nothing(0.5)
    pub.disconnect()
    sub.disconnect()


def test_client_maximum_packet_size_paho(broker):
    """paho with MaximumPacketSize 100 receives only what fits [MQTT-3.1.2-24]."""
    b = broker()
    sub = Paho(b.port, "mps-paho", protocol=MQTTv5)
    sub.connect(properties=props(PacketTypes.CONNECT, MaximumPacketSize=100))
    sub.subscribe("mpsp/t", 1)
    pub = Paho(b.port, "mps-paho-pub", protocol=MQTTv5)
    pub.connect()
    pub.publish("mpsp/t", b"L" * 500, qos=1)
    pub.publish("mpsp/t", b"fits", qos=1)
    assert sub.expect_message().payload == b"fits"
    sub.expect_no_message(0.5)
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_broker_max_packet_size(broker, version):
    """max_packet_size 1000: a bigger PUBLISH closes the connection; MQTT 5 gets DISCONNECT
    0x95 Packet too large first (section 3.2.2.3.6; the client broke [MQTT-3.2.2-15]); the broker
    keeps serving and a smaller PUBLISH is fine."""
    b = broker("max_packet_size 1000")
    c = RawClient(b.port, version)
    ack = c.connect("big-%d" % version)
    if version == 5:
        assert ack.props.get(rm.MAXIMUM_PACKET_SIZE) == 1000
    c.publish("mp/t", b"s" * 500, qos=1)
    c.send(rm.publish("mp/t", b"L" * 2000, qos=1, pid=2, version=version))
    if version == 5:
        c.expect_disconnect(rm.RC_PACKET_TOO_LARGE)
    else:
        assert c.expect_closed() == []
    assert_serves(b.port, version)


def test_broker_max_packet_size_limits_huge_remaining_length(broker):
    """A header announcing a packet far beyond max_packet_size is refused at once, without
    waiting for (or buffering) the body (section 3.2.2.3.6, 0x95)."""
    b = broker("max_packet_size 10000")
    c = RawClient(b.port, 5)
    c.connect("huge")
    c.send(b"\x30" + rm.varint(200 * 1024 * 1024) + b"\x00\x01t")
    c.expect_disconnect(rm.RC_PACKET_TOO_LARGE)
    assert_serves(b.port)


# ---------------------------------------------------------------- CONNACK / misc

def test_request_problem_information_zero(broker):
    """Request Problem Information 0: the broker may still send a Reason String only on
    PUBLISH, CONNACK or DISCONNECT [MQTT-3.1.2-29]; a PUBACK carries none."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("rpi", props={rm.REQUEST_PROBLEM_INFORMATION: 0})
    ack = c.publish("rpi/t", b"x", qos=1)
    assert rm.REASON_STRING not in ack.props and rm.USER_PROPERTY not in ack.props
    c.disconnect()


def test_puback_reason_code(broker):
    """MQTT 5 PUBACK reason code is 0x00 Success or 0x10 No matching subscribers
    (section 3.4.2.1) for an accepted message."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("pubackrc")
    ack = c.publish("nobody/listens", b"x", qos=1)
    assert ack.rc in (rm.RC_SUCCESS, rm.RC_NO_MATCHING_SUBSCRIBERS)
    c.subscribe(("somebody/listens", 0))
    ack = c.publish("somebody/listens", b"x", qos=1, pid=2)
    assert ack.rc == rm.RC_SUCCESS
    c.disconnect()
