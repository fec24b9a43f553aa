"""Malformed and out-of-order input on raw sockets (issue 2, point 2): every case closes the
connection (MQTT 5: after a DISCONNECT with 0x81 Malformed Packet / 0x82 Protocol Error, or
the specific code such as 0x90), never crashes or hangs the broker, and the broker keeps
serving another client afterwards (checked in every test)."""

import struct

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, assert_serves
from support import scaled

GENERIC = (rm.RC_MALFORMED, rm.RC_PROTOCOL_ERROR)


def _closes(port, data, version=5, connect=True, allowed=GENERIC, cid="bad"):
    """Send `data` (after a good CONNECT when `connect`) and assert the broker closes the
    connection: MQTT 5 with a DISCONNECT carrying an `allowed` reason code first, 3.1.1
    without sending anything (a 3.1.1 server has no DISCONNECT)."""
    c = RawClient(port, version)
    if connect:
        c.connect(cid)
    try:
        c.send(data)
    except OSError:
        pass  # already closed on us: still checked below
    if version == 5 and connect:
        c.expect_disconnect(allowed)
    else:
        got = c.expect_closed(timeout=scaled(5))
        assert got == [], "broker answered %r instead of closing" % got
    c.close()


def _checked(broker_factory, data, version=5, connect=True, allowed=GENERIC):
    b = broker_factory()
    _closes(b.port, data, version, connect, allowed)
    assert_serves(b.port, 5)
    assert_serves(b.port, 4)


# ---------------------------------------------------------------- connection start

@pytest.mark.parametrize("first", [rm.pingreq(), rm.publish("t", b"x", version=4),
                                   rm.subscribe(1, ["t"], version=4), rm.disconnect(version=4),
                                   b"\x20\x02\x00\x00"])
def test_first_packet_not_connect(broker, first):
    """The first packet from a client must be CONNECT [MQTT-3.1.0-1]: anything else closes
    the connection without an answer."""
    b = broker()
    c = RawClient(b.port, 4)
    c.send(first)
    assert c.expect_closed() == []
    assert_serves(b.port)


@pytest.mark.parametrize("version", [4, 5])
def test_second_connect(broker, version):
    """A second CONNECT is a Protocol Error and closes the connection [MQTT-3.1.0-2]
    (MQTT 5: DISCONNECT 0x82)."""
    _checked(broker, rm.connect("again", version=version), version=version)


def test_bad_protocol_level(broker):
    """An unsupported protocol level: CONNACK 0x01 unacceptable protocol version (3.1.1
    layout) or 0x84 Unsupported Protocol Version (5.0 layout), then close [MQTT-3.1.2-2]
    (3.1.1 and 5.0)."""
    b = broker()
    c = RawClient(b.port, 4)
    c.send(_connect_with_level(6))
    got = c.expect_closed()
    assert len(got) <= 1
    if got:
        ack = got[0]
        assert ack.type == rm.CONNACK
        body = ack.raw[2:]
        assert body in (b"\x00\x01", b"\x00\x84", b"\x00\x84\x00"), ack.raw
    assert_serves(b.port)


def _connect_with_level(level, name="MQTT"):
    body = rm.utf8(name) + bytes([level, 0x02]) + struct.pack("!H", 60) + rm.utf8("lvl")
    return rm.packet(rm.CONNECT, 0, body)


@pytest.mark.parametrize("name,level", [("MQTX", 4), ("mqtt", 4), ("MQTX", 5), ("", 4)])
def test_bad_protocol_name(broker, name, level):
    """A protocol name that does not belong with the level is refused: the connection is
    closed, with at most a refusing CONNACK (0x01 / 0x84) first [MQTT-3.1.2-1]."""
    b = broker()
    c = RawClient(b.port, 4)
    c.send(_connect_with_level(level, name))
    got = c.expect_closed()
    for p in got:
        assert p.type == rm.CONNACK and p.rc in (0x01, rm.RC_UNSUPPORTED_PROTOCOL_VERSION), p
    assert_serves(b.port)


@pytest.mark.parametrize("version", [4, 5])
def test_connect_reserved_flag(broker, version):
    """The reserved CONNECT flag (bit 0) must be 0 or the connection is closed
    [MQTT-3.1.2-3]."""
    b = broker()
    c = RawClient(b.port, version)
    c.send(rm.connect("resv", version=version, reserved_flag=True))
    got = c.expect_closed()
    for p in got:
        assert p.type == rm.CONNACK and p.rc in GENERIC, p
    assert_serves(b.port)


@pytest.mark.parametrize("desc,flags", [("will qos without will flag", 0x02 | 0x08),
                                        ("will retain without will flag", 0x02 | 0x20),
                                        ("password without username (3.1.1)", 0x02 | 0x40)])
def test_connect_flag_rules_v311(broker, desc, flags):
    """3.1.1 CONNECT flag rules: Will QoS and Will Retain must be 0 without the Will Flag
    [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]; no Password flag without User Name flag
    [MQTT-3.1.2-22]. The connection is closed."""
    b = broker()
    c = RawClient(b.port, 4)
    body = rm.utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + rm.utf8("flags")
    if flags & 0x40:
        body += rm.utf8(b"pw")
    c.send(rm.packet(rm.CONNECT, 0, body))
    got = c.expect_closed()
    assert not any(p.type == rm.CONNACK and p.rc == 0 for p in got), got
    assert_serves(b.port)


def test_connect_will_qos_3(broker):
    """Will QoS 3 is malformed [MQTT-3.1.2-14] (3.1.1) / 5.0 section 3.1.2.6."""
    b = broker()
    c = RawClient(b.port, 5)
    c.send(rm.connect("wq3", version=5, will={"topic": "w", "payload": b"x", "qos": 3}))
    got = c.expect_closed()
    assert not any(p.type == rm.CONNACK and p.rc == 0 for p in got), got
    assert_serves(b.port)


def test_connect_header_flags_nonzero(broker):
    """CONNECT fixed-header flags are reserved 0000 [MQTT-2.2.2-2] (3.1.1) /
    [MQTT-2.1.3-1] (5.0): otherwise the connection is closed."""
    b = broker()
    c = RawClient(b.port, 4)
    c.send(rm.connect("hdr", version=4, header_flags=0x01))
    got = c.expect_closed()
    assert not any(p.type == rm.CONNACK and p.rc == 0 for p in got), got
    assert_serves(b.port)


@pytest.mark.parametrize("cid", [b"\xff\xfe", b"a\x00b", b"\xed\xa0\x80", b"\xc0\x80"])
def test_connect_invalid_utf8_client_id(broker, cid):
    """The Client Identifier must be well-formed UTF-8 without U+0000, surrogates or overlong
    forms [MQTT-1.5.3-1], [MQTT-1.5.3-2] (3.1.1) / [MQTT-1.5.4-1], [MQTT-1.5.4-2] (5.0):
    the connection is closed (a refusing CONNACK may come first)."""
    b = broker()
    c = RawClient(b.port, 5)
    c.send(rm.connect(cid, version=5))
    got = c.expect_closed()
    for p in got:
        assert p.type in (rm.CONNACK, rm.DISCONNECT) and p.rc >= 0x80, p
    assert_serves(b.port)


def test_connect_truncated_will(broker):
    """A CONNECT whose Will Flag promises fields that are missing is malformed
    [MQTT-3.1.2-9]."""
    b = broker()
    c = RawClient(b.port, 4)
    body = rm.utf8("MQTT") + bytes([4, 0x02 | 0x04]) + struct.pack("!H", 60) + rm.utf8("tw")
    c.send(rm.packet(rm.CONNECT, 0, body))
    got = c.expect_closed()
    assert not any(p.type == rm.CONNACK and p.rc == 0 for p in got), got
    assert_serves(b.port)


# ---------------------------------------------------------------- remaining length / framing

def test_remaining_length_five_bytes(broker):
    """A Remaining Length longer than 4 bytes is malformed (section 1.5.5 / 3.1.1 section
    2.2.3: at most four bytes)."""
    _checked(broker, b"\x30\xff\xff\xff\xff\x7f")


def test_remaining_length_non_minimal_is_tolerated_or_closed(broker):
    """A non-minimal Remaining Length encoding ([MQTT-1.5.5-1] in 5.0): the broker either
    accepts it or closes the connection; it never crashes."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("nonmin")
    c.send(b"\xc0\x80\x00")  # PINGREQ with length 0 encoded in 2 bytes
    try:
        p = c.recv(timeout=scaled(3))
        assert p.type in (rm.PINGRESP, rm.DISCONNECT)
    except rm.Closed:
        pass
    c.close()
    assert_serves(b.port)


def test_remaining_length_too_short_for_content(broker):
    """A PUBLISH whose Remaining Length ends inside the topic is malformed."""
    _checked(broker, b"\x30\x03\x00\x05ab")


def test_connect_remaining_length_too_short(broker):
    """A CONNECT cut short by its Remaining Length is malformed."""
    b = broker()
    c = RawClient(b.port, 4)
    c.send(b"\x10\x04\x00\x04MQ")
    got = c.expect_closed()
    assert not any(p.type == rm.CONNACK and p.rc == 0 for p in got)
    assert_serves(b.port)


def test_reserved_packet_type_zero(broker):
    """Packet type 0 is reserved and forbidden (section 2.1.2, Table 2-1) [MQTT-2.1.3-1]."""
    _checked(broker, b"\x00\x00")


def test_auth_packet_in_v311(broker):
    """AUTH (type 15) does not exist in 3.1.1: reserved, the connection is closed."""
    _checked(broker, b"\xf0\x00", version=4)


@pytest.mark.parametrize("version", [4, 5])
def test_server_only_packet_from_client(broker, version):
    """A client sending a server-to-client packet (CONNACK, SUBACK, PINGRESP) is a protocol
    error: closed."""
    _checked(broker, b"\x20\x02\x00\x00", version=version)


def test_partial_packet_does_not_block_others(broker):
    """A client that sends half a packet and stalls does not stop the broker serving others
    (never hangs)."""
    b = broker()
    stuck = RawClient(b.port, 5)
    stuck.connect("stuck")
    stuck.send(b"\x30\x80\x01\x00\x05")  # PUBLISH of 128 bytes, only 3 of them sent
    assert_serves(b.port)
    big = RawClient(b.port, 5)
    big.send(b"\x10\xff\xff\xff\x7f")  # CONNECT announcing ~256 MB, body never sent
    assert_serves(b.port)
    stuck.close()
    big.close()
    assert_serves(b.port)


def test_garbage_bytes(broker):
    """Garbage after CONNECT (starting with a PUBREC header with reserved flags 0111
    [MQTT-2.2.2-2] / [MQTT-2.1.3-1]) closes the connection."""
    _checked(broker, bytes([0x57, 0x13, 0x99, 0xAA, 0xFF, 0x00, 0x42] * 20))


def test_connection_closed_mid_packet(broker):
    """A client that disconnects in the middle of a packet costs nothing."""
    b = broker()
    for i in range(5):
        c = RawClient(b.port, 5)
        c.connect("midway%d" % i)
        c.send(rm.publish("mid/t", b"x" * 1000, qos=1, pid=1)[:500])
        c.close()
    assert_serves(b.port)


# ---------------------------------------------------------------- fixed-header flags

@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_wrong_flags(broker, version):
    """SUBSCRIBE fixed-header flags must be 0010 [MQTT-3.8.1-1]."""
    _checked(broker, rm.subscribe(1, [("t", 0)], version=version, flags=0x00),
             version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_wrong_flags(broker, version):
    """UNSUBSCRIBE fixed-header flags must be 0010 [MQTT-3.10.1-1]."""
    _checked(broker, rm.unsubscribe(1, ["t"], version=version, flags=0x00), version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_pubrel_wrong_flags(broker, version):
    """PUBREL fixed-header flags must be 0010 [MQTT-3.6.1-1]."""
    _checked(broker, rm.pubrel(1, version=version, flags=0x00), version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_pingreq_wrong_flags(broker, version):
    """PINGREQ flags are reserved 0000 [MQTT-2.2.2-2] (3.1.1) / [MQTT-2.1.3-1] (5.0)."""
    _checked(broker, b"\xc1\x00", version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_disconnect_wrong_flags(broker, version):
    """DISCONNECT flags are reserved 0000 [MQTT-3.14.1-1]."""
    _checked(broker, b"\xe2\x00", version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_publish_qos3(broker, version):
    """A PUBLISH with both QoS bits set is malformed [MQTT-3.3.1-4]."""
    _checked(broker, rm.publish("q3/t", b"x", version=version, flags=0x06, pid=1),
             version=version)


# ---------------------------------------------------------------- topic names

TOPIC_NAME_CODES = GENERIC + (rm.RC_TOPIC_NAME_INVALID,)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("topic", [b"a/+/c", b"a/#", b"#", b"+"])
def test_publish_wildcard_topic(broker, version, topic):
    """The Topic Name of a PUBLISH must not contain wildcards [MQTT-3.3.2-2]: closed (MQTT 5:
    0x90 Topic Name invalid, or 0x81/0x82)."""
    _checked(broker, rm.publish(topic, b"x", qos=0, version=version), version=version,
             allowed=TOPIC_NAME_CODES)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("topic", [b"bad\xff", b"nul\x00here", b"\xed\xa0\x80surrogate",
                                   b"\xc0\xafoverlong", b"trunc\xe2\x82"])
def test_publish_invalid_utf8_topic(broker, version, topic):
    """A Topic Name must be valid UTF-8 without U+0000 or surrogates [MQTT-1.5.3-1],
    [MQTT-1.5.3-2] (3.1.1) / [MQTT-1.5.4-1], [MQTT-1.5.4-2] (5.0): closed."""
    _checked(broker, rm.publish(topic, b"x", qos=1, pid=1, version=version), version=version,
             allowed=TOPIC_NAME_CODES)


@pytest.mark.parametrize("version", [4, 5])
def test_publish_empty_topic_without_alias(broker, version):
    """An empty Topic Name without a Topic Alias is invalid [MQTT-4.7.3-1] (3.1.1);
    Protocol Error in 5.0 (section 3.3.2.1)."""
    _checked(broker, rm.publish("", b"x", qos=0, version=version), version=version,
             allowed=TOPIC_NAME_CODES)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_invalid_utf8_filter(broker, version):
    """A Topic Filter must be valid UTF-8 [MQTT-1.5.3-1] / [MQTT-1.5.4-1]: closed."""
    _checked(broker, rm.subscribe(1, [(b"f\x00ilter", 0)], version=version), version=version,
             allowed=GENERIC + (rm.RC_TOPIC_FILTER_INVALID,))


# ---------------------------------------------------------------- packet identifiers

@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [1, 2])
def test_publish_packet_id_zero(broker, version, qos):
    """QoS > 0 PUBLISH needs a non-zero Packet Identifier [MQTT-2.3.1-1] (3.1.1) /
    [MQTT-2.2.1-3] (5.0): closed."""
    _checked(broker, rm.publish("pid/t", b"x", qos=qos, pid=0, version=version),
             version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_packet_id_zero(broker, version):
    """SUBSCRIBE needs a non-zero Packet Identifier [MQTT-2.3.1-1] / [MQTT-2.2.1-3]."""
    _checked(broker, rm.subscribe(0, [("t", 0)], version=version), version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_packet_id_zero(broker, version):
    """UNSUBSCRIBE needs a non-zero Packet Identifier [MQTT-2.3.1-1] / [MQTT-2.2.1-3]."""
    _checked(broker, rm.unsubscribe(0, ["t"], version=version), version=version)


# ---------------------------------------------------------------- SUBSCRIBE payloads

@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_without_filters(broker, version):
    """A SUBSCRIBE with no Topic Filter is a protocol violation [MQTT-3.8.3-3] (3.1.1) /
    [MQTT-3.8.3-2] (5.0)."""
    _checked(broker, rm.subscribe(1, [], version=version), version=version)


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_without_filters(broker, version):
    """An UNSUBSCRIBE with no Topic Filter is a protocol violation [MQTT-3.10.3-2]."""
    _checked(broker, rm.unsubscribe(1, [], version=version), version=version)


def test_subscribe_requested_qos_3_v311(broker):
    """3.1.1: requested QoS 3 or reserved bits set is malformed [MQTT-3.8.3-4]."""
    _checked(broker, rm.subscribe(1, [("t", 3)], version=4), version=4)


def test_subscribe_retain_handling_3(broker):
    """MQTT 5: Retain Handling 3 is a Protocol Error (section 3.8.3.1)."""
    _checked(broker, rm.subscribe(1, [("t", 0x30)]))


def test_subscribe_missing_options_byte(broker):
    """A Topic Filter without its options byte is malformed."""
    body = struct.pack("!H", 1) + b"\x00" + rm.utf8("t")
    _checked(broker, rm.packet(rm.SUBSCRIBE, 2, body))


# ---------------------------------------------------------------- MQTT 5 properties

def test_duplicate_property(broker):
    """Including a property more than once (other than User Property / Subscription
    Identifier) is a Protocol Error (section 2.2.2.2)."""
    _checked(broker, rm.publish("dp/t", b"x", props=[(rm.MESSAGE_EXPIRY_INTERVAL, 10),
                                                       (rm.MESSAGE_EXPIRY_INTERVAL, 20)]))


def test_unknown_property(broker):
    """An unknown property identifier is malformed (section 2.2.2.2)."""
    _checked(broker, rm.publish("up/t", b"x", props=[(0x7F, b"\x01")]))


def test_property_not_valid_for_packet(broker):
    """A property that is not allowed in the packet type (Session Expiry Interval in
    PUBLISH) is malformed or a protocol error (section 2.2.2.2)."""
    _checked(broker, rm.publish("pv/t", b"x", props=[(rm.SESSION_EXPIRY_INTERVAL, 5)]))


def test_property_length_beyond_packet(broker):
    """A Property Length that runs past the end of the packet is malformed."""
    body = rm.utf8("pl/t") + rm.varint(50) + b"\x02\x00\x00\x00\x05"
    _checked(broker, rm.packet(rm.PUBLISH, 0, body))


def test_connect_duplicate_property(broker):
    """A CONNECT with a duplicated property (Receive Maximum twice) is refused and closed
    (section 2.2.2.2)."""
    b = broker()
    c = RawClient(b.port, 5)
    c.send(rm.connect("cdp", props=[(rm.RECEIVE_MAXIMUM, 10), (rm.RECEIVE_MAXIMUM, 20)]))
    got = c.expect_closed()
    for p in got:
        assert p.type == rm.CONNACK and p.rc in GENERIC, p
    assert_serves(b.port)


@pytest.mark.parametrize("prop,value", [(rm.RECEIVE_MAXIMUM, 0), (rm.MAXIMUM_PACKET_SIZE, 0),
                                        (rm.REQUEST_PROBLEM_INFORMATION, 2),
                                        (rm.REQUEST_RESPONSE_INFORMATION, 5)])
def test_connect_property_bad_value(broker, prop, value):
    """CONNECT property values that are Protocol Errors: Receive Maximum 0, Maximum Packet Size
    0, Request Problem/Response Information other than 0/1 (section 3.1.2.11)."""
    b = broker()
    c = RawClient(b.port, 5)
    c.send(rm.connect("cbv", props=[(prop, value)]))
    got = c.expect_closed()
    for p in got:
        assert p.type == rm.CONNACK and p.rc in GENERIC, p
    assert_serves(b.port)


def test_puback_reason_code_on_v5_from_client_is_fine(broker):
    """Not malformed: a client PUBACK with a reason code and empty properties is accepted
    (section 3.4.2.2): control case for the tests above."""
    b = broker()
    sub = RawClient(b.port, 5)
    sub.connect("ok-sub")
    sub.subscribe(("ok/t", 1))
    pub = RawClient(b.port, 5)
    pub.connect("ok-pub")
    pub.publish("ok/t", b"x", qos=1)
    m = sub.recv_type(rm.PUBLISH)
    sub.send(rm.puback(m.pid, rc=0, props={}))
    assert sub.ping().type == rm.PINGRESP
    sub.disconnect()
    pub.disconnect()


def test_many_bad_clients_in_a_row(broker):
    """Fifty malformed connections in a row leave the broker healthy (no leak or crash shows
    up in the teardown check)."""
    b = broker()
    samples = [b"\x30\xff\xff\xff\xff\x7f", rm.publish("a/#", b"x"), b"\x00\x00",
               rm.subscribe(0, ["t"]), rm.pubrel(1, flags=0)]
    for i in range(50):
        _closes(b.port, samples[i % len(samples)], cid="churn%d" % i,
                allowed=GENERIC + (rm.RC_TOPIC_NAME_INVALID,))
    assert_serves(b.port)
