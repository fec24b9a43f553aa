"""CONNECT / CONNACK: protocol versions, return and reason codes, session present, client
identifiers, keep alive and server keep alive, takeover (issue 2, point 3)."""

import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, assert_serves
from support import MQTTv31, MQTTv311, MQTTv5, Paho, props, scaled
from paho.mqtt.packettypes import PacketTypes


# ---------------------------------------------------------------- accepted connections

@pytest.mark.parametrize("protocol", [MQTTv31, MQTTv311, MQTTv5], ids=["3.1", "3.1.1", "5"])
def test_paho_connects_and_round_trips(broker, protocol):
    """Each protocol version is accepted: CONNACK 0 [MQTT-3.2.2-5 (3.1.1): rc 0 accepted],
    and a QoS 1 message flows back to the same client."""
    b = broker()
    c = Paho(b.port, "conn-%d" % protocol, protocol=protocol)
    rc, sp, _ = c.connect()
    assert rc == 0 and sp == 0
    c.subscribe("conn/echo", 1)
    c.publish("conn/echo", b"hi", qos=1)
    m = c.expect_message()
    assert (m.topic, m.payload, m.qos) == ("conn/echo", b"hi", 1)
    c.disconnect()


@pytest.mark.parametrize("version", [3, 4, 5])
def test_raw_connack_layout(broker, version):
    """CONNACK of a clean session is accepted with Session Present 0 [MQTT-3.2.2-1]
    (3.1.1; [MQTT-3.2.2-2] in 5.0) and code 0x00; a 3.x CONNACK is exactly 4 bytes."""
    b = broker()
    c = RawClient(b.port, version)
    ack = c.connect("raw-layout-%d" % version)
    assert ack.session_present is False
    if version < 5:
        assert ack.raw == b"\x20\x02\x00\x00"
    c.disconnect()


def test_v5_connack_advertises_supported_features(broker):
    """CONNACK properties describe what the server supports (section 3.2.2.3: absent means supported): wildcard,
    subscription identifiers and shared subscriptions are all implemented, so when present
    the 'available' properties are 1; Maximum QoS, when absent, means 2."""
    b = broker()
    c = RawClient(b.port, 5)
    ack = c.connect("features")
    for pid in (rm.WILDCARD_SUBSCRIPTION_AVAILABLE, rm.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                rm.SHARED_SUBSCRIPTION_AVAILABLE, rm.RETAIN_AVAILABLE):
        assert ack.props.get(pid, 1) == 1, "property 0x%02x = %r" % (pid, ack.props[pid])
    assert rm.MAXIMUM_QOS not in ack.props or ack.props[rm.MAXIMUM_QOS] in (0, 1)
    c.disconnect()


# ---------------------------------------------------------------- session present

def test_session_present_v311(broker):
    """Clean Session 0 with no stored session: Session Present 0 [MQTT-3.2.2-3]; reconnecting
    with Clean Session 0 finds the session: Session Present 1 [MQTT-3.2.2-2]; Clean Session 1
    always gives Session Present 0 [MQTT-3.2.2-1] and discards the session [MQTT-3.1.2-6]."""
    b = broker()
    c = RawClient(b.port, 4)
    assert c.connect("sp311", clean=False).session_present is False
    c.subscribe(("sp311/t", 1))
    c.disconnect()
    c = RawClient(b.port, 4)
    assert c.connect("sp311", clean=False).session_present is True
    c.disconnect()
    c = RawClient(b.port, 4)
    assert c.connect("sp311", clean=True).session_present is False
    c.disconnect()
    c = RawClient(b.port, 4)
    assert c.connect("sp311", clean=False).session_present is False
    c.disconnect()


def test_session_present_v5(broker):
    """MQTT 5: Clean Start 0 resumes a session kept by Session Expiry Interval: Session
    Present 1 [MQTT-3.2.2-3]; Clean Start 1 discards it: Session Present 0 [MQTT-3.1.2-4],
    [MQTT-3.2.2-2]."""
    b = broker()
    exp = {rm.SESSION_EXPIRY_INTERVAL: 60}
    c = RawClient(b.port, 5)
    assert c.connect("sp5", clean=False, props=exp).session_present is False
    c.disconnect()
    c = RawClient(b.port, 5)
    assert c.connect("sp5", clean=False, props=exp).session_present is True
    c.disconnect()
    c = RawClient(b.port, 5)
    assert c.connect("sp5", clean=True, props=exp).session_present is False
    c.disconnect()


def test_session_present_paho(broker):
    """The same rule seen by paho 3.1.1 [MQTT-3.2.2-2]."""
    b = broker()
    c = Paho(b.port, "sp-paho", clean=False)
    assert c.connect()[1] == 0
    c.disconnect()
    c = Paho(b.port, "sp-paho", clean=False)
    assert c.connect()[1] == 1
    c.disconnect()


# ---------------------------------------------------------------- client identifiers

def test_v5_empty_client_id_gets_assigned_identifier(broker):
    """A zero-byte ClientID is given a unique identifier returned in the CONNACK's Assigned
    Client Identifier [MQTT-3.1.3-6], [MQTT-3.1.3-7], [MQTT-3.2.2-16]."""
    b = broker()
    ids = []
    clients = []
    for _ in range(2):
        c = RawClient(b.port, 5)
        ack = c.connect("")
        assert ack.rc == 0
        cid = ack.props.get(rm.ASSIGNED_CLIENT_IDENTIFIER)
        assert cid, "no Assigned Client Identifier in %r" % ack
        ids.append(cid)
        clients.append(c)
    assert ids[0] != ids[1]
    for c in clients:
        # both connections stay usable: neither took the other over
        assert c.ping().type == rm.PINGRESP
        c.disconnect()


def test_v5_empty_client_id_paho(broker):
    """paho MQTT 5 with an empty client id is accepted and told its id [MQTT-3.2.2-16]."""
    b = broker()
    c = Paho(b.port, "", protocol=MQTTv5)
    rc, _, p = c.connect()
    assert rc == 0
    assert getattr(p, "AssignedClientIdentifier", None)
    c.disconnect()


def test_v311_empty_client_id_clean_session_accepted(broker):
    """3.1.1: a zero-byte ClientId with CleanSession 1 is accepted and given a unique
    ClientId [MQTT-3.1.3-6]."""
    b = broker()
    c1 = RawClient(b.port, 4)
    c1.connect("", clean=True)
    c2 = RawClient(b.port, 4)
    c2.connect("", clean=True)
    # two anonymous clients coexist (neither takes the other over)
    assert c1.ping().type == rm.PINGRESP
    assert c2.ping().type == rm.PINGRESP
    c1.disconnect()
    c2.disconnect()


def test_v311_empty_client_id_persistent_session_refused(broker):
    """3.1.1: a zero-byte ClientId with CleanSession 0 gets CONNACK 0x02 (identifier
    rejected) and the connection is closed [MQTT-3.1.3-8]."""
    b = broker()
    c = RawClient(b.port, 4)
    ack = c.connect("", clean=False, expect_rc=0x02)
    assert ack.session_present is False  # [MQTT-3.2.2-4]
    c.expect_closed()
    assert_serves(b.port)


@pytest.mark.parametrize("version,code", [(4, 0x02), (5, rm.RC_CLIENT_ID_NOT_VALID)])
def test_zero_length_client_id_disallowed_by_config(broker, version, code):
    """allow_zero_length_clientid false: an empty ClientID is refused with 0x02 (3.1.1)
    / 0x85 Client Identifier not valid (5.0) [MQTT-3.1.3-8], [MQTT-3.2.2-4]: Session
    Present 0 on a non-zero code, then the connection is closed [MQTT-3.2.2-5]."""
    b = broker("allow_zero_length_clientid false")
    c = RawClient(b.port, version)
    ack = c.connect("", clean=True, expect_rc=code)
    assert ack.session_present is False
    c.expect_closed()
    ok = RawClient(b.port, version)
    ok.connect("named")
    ok.disconnect()


@pytest.mark.parametrize("version,code", [(3, 0x05), (4, 0x05), (5, rm.RC_NOT_AUTHORIZED)])
def test_anonymous_refused(broker, version, code):
    """allow_anonymous false with no password file: every client is refused with CONNACK
    0x05 Not authorized (3.x) / 0x87 Not authorized (5.0), then closed [MQTT-3.2.2-5]."""
    b = broker("allow_anonymous false")
    c = RawClient(b.port, version)
    c.connect("anon-%d" % version, expect_rc=code)
    c.expect_closed()
    c = RawClient(b.port, version)
    c.connect("anon-user", username="user", password=b"pw", expect_rc=code)
    c.expect_closed()


def test_unsupported_auth_method(broker):
    """An Authentication Method the server does not support: CONNACK 0x8C Bad authentication
    method (or 0x87) and the connection is closed [MQTT-4.12.0-1]."""
    b = broker()
    c = RawClient(b.port, 5)
    ack = c.connect("auth-x", props={rm.AUTHENTICATION_METHOD: "NO-SUCH-METHOD"},
                    expect_rc=None)
    assert ack.rc in (rm.RC_BAD_AUTH_METHOD, rm.RC_NOT_AUTHORIZED), ack
    c.expect_closed()
    assert_serves(b.port)


# ---------------------------------------------------------------- keep alive

@pytest.mark.parametrize("version", [4, 5])
def test_keepalive_timeout_disconnects(broker, version):
    """A client silent for one and a half times its Keep Alive is disconnected [MQTT-3.1.2-24]
    (3.1.1) / [MQTT-3.1.2-22] (5.0)
    (MQTT 5 may say DISCONNECT 0x8D first)."""
    b = broker()
    c = RawClient(b.port, version)
    c.connect("ka-%d" % version, keepalive=1)
    got = c.expect_closed(timeout=scaled(6))
    for p in got:
        assert p.type == rm.DISCONNECT and p.rc == rm.RC_KEEP_ALIVE_TIMEOUT, got
    assert_serves(b.port)


def test_keepalive_not_enforced_early(broker):
    """The server waits one and a half times the Keep Alive [MQTT-3.1.2-24] (3.1.1) /
    [MQTT-3.1.2-22] (5.0): with Keep Alive 2 a silent client is still connected after 1.5 s,
    and is disconnected afterwards."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("ka-early", keepalive=2)
    assert c.is_open(window=1.5), "disconnected before the keep alive period passed"
    c.expect_closed(timeout=scaled(8))
    assert_serves(b.port)


def test_keepalive_respected_when_client_pings(broker):
    """A client that sends PINGREQ within its Keep Alive stays connected, and each PINGREQ is
    answered with PINGRESP [MQTT-3.12.4-1]."""
    b = broker()
    c = RawClient(b.port, 4)
    c.connect("ka-ping", keepalive=1)
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        assert c.ping().type == rm.PINGRESP
        time.sleep(0.4)
    assert c.is_open()
    c.disconnect()


def test_keepalive_paho_stays_connected(broker):
    """paho's own PINGREQs keep a keepalive-1 connection alive [MQTT-3.1.2-23]
    (3.1.1: the client sends PINGREQ; the server keeps the connection)."""
    b = broker()
    c = Paho(b.port, "ka-paho", keepalive=1)
    c.connect()
    time.sleep(3.0)
    assert not c.disconnected.is_set()
    c.subscribe("ka/t", 0)
    c.publish("ka/t", b"x")
    c.expect_message()
    c.disconnect()


def test_max_keepalive_sends_server_keep_alive(broker):
    """max_keepalive: an MQTT 5 client asking for more gets Server Keep Alive in CONNACK
    [MQTT-3.2.2-21]; a client asking for less is left alone."""
    b = broker("max_keepalive 10")
    c = RawClient(b.port, 5)
    ack = c.connect("ska", keepalive=60)
    assert ack.props.get(rm.SERVER_KEEP_ALIVE) == 10, ack
    c.disconnect()
    c = RawClient(b.port, 5)
    ack = c.connect("ska2", keepalive=5)
    assert ack.props.get(rm.SERVER_KEEP_ALIVE, 5) == 5, ack
    c.disconnect()


def test_server_keep_alive_is_enforced(broker):
    """The Server Keep Alive replaces the client's value [MQTT-3.2.2-22]: with max_keepalive
    2 a silent client that asked for 60 s is disconnected after about 3 s."""
    b = broker("max_keepalive 2")
    c = RawClient(b.port, 5)
    ack = c.connect("ska-enforce", keepalive=60)
    assert ack.props.get(rm.SERVER_KEEP_ALIVE) == 2
    c.expect_closed(timeout=scaled(8))
    assert_serves(b.port)


# ---------------------------------------------------------------- takeover

def test_takeover_v311_paho(broker):
    """A second connection with the same ClientId closes the first [MQTT-3.1.4-2]; the new
    one works."""
    b = broker()
    old = Paho(b.port, "dup-id")
    old.connect()
    new = Paho(b.port, "dup-id")
    new.connect()
    old.wait_disconnected()
    new.subscribe("take/t", 1)
    new.publish("take/t", b"new", qos=1)
    assert new.expect_message().payload == b"new"
    new.disconnect()
    old.disconnect()


def test_takeover_v5_sends_0x8e(broker):
    """MQTT 5 takeover: the existing connection gets DISCONNECT 0x8E Session taken over
    and is closed [MQTT-3.1.4-3]."""
    b = broker()
    old = RawClient(b.port, 5)
    old.connect("dup5")
    new = RawClient(b.port, 5)
    new.connect("dup5")
    got = old.expect_closed()
    assert [p.type for p in got] == [rm.DISCONNECT], got
    assert got[0].rc == rm.RC_SESSION_TAKEN_OVER
    assert new.ping().type == rm.PINGRESP
    new.disconnect()


def test_takeover_keeps_session_when_not_clean(broker):
    """Takeover with Clean Session 0 resumes the session: Session Present 1 and the
    subscription still delivers [MQTT-3.1.4-3], [MQTT-3.2.2-2]."""
    b = broker()
    old = RawClient(b.port, 4)
    old.connect("takesess", clean=False)
    old.subscribe(("takesess/t", 1))
    new = RawClient(b.port, 4)
    ack = new.connect("takesess", clean=False)
    assert ack.session_present is True
    old.expect_closed()
    pub = RawClient(b.port, 4)
    pub.connect("takesess-pub")
    pub.publish("takesess/t", b"after takeover", qos=1)
    m = new.recv_publish()
    assert m.payload == b"after takeover"
    pub.disconnect()
    new.disconnect()


def test_takeover_cross_version(broker):
    """Takeover applies whatever the protocol version of the new connection [MQTT-3.1.4-2]."""
    b = broker()
    old = RawClient(b.port, 5)
    old.connect("xver")
    new = RawClient(b.port, 4)
    new.connect("xver")
    old.expect_closed()
    assert new.ping().type == rm.PINGRESP
    new.disconnect()


# ---------------------------------------------------------------- connection-level limits

def test_max_connections(broker):
    """max_connections 2: a third simultaneous client is not served (refused or closed) while
    two are connected; once one leaves a new client gets in."""
    b = broker("max_connections 2")
    a = RawClient(b.port, 4)
    a.connect("mc-a")
    c = RawClient(b.port, 4)
    c.connect("mc-b")
    third_ok = False
    try:
        t = RawClient(b.port, 4)
        t.send(rm.connect("mc-c", version=4))
        try:
            ack = t.recv(timeout=scaled(3))
            third_ok = ack.type == rm.CONNACK and ack.rc == 0
        except (rm.Closed, rm.Timeout):
            pass
        t.close()
    except OSError:
        pass
    assert not third_ok, "a third client was accepted with max_connections 2"
    a.disconnect()

    def fourth():
        try:
            d = RawClient(b.port, 4)
            d.send(rm.connect("mc-d", version=4))
            ack = d.recv(timeout=scaled(2))
            d.disconnect()
            return ack.type == rm.CONNACK and ack.rc == 0
        except (AssertionError, OSError):
            return False
    from support import wait_for
    wait_for(fourth, timeout=5, interval=0.2, what="a free connection slot")
    c.disconnect()


def test_v5_connack_reports_configured_limits(broker):
    """CONNACK carries the server's limits: Maximum Packet Size (section 3.2.2.3.6), Topic Alias
    Maximum (max_topic_alias) and Maximum QoS (maximum_qos 1) [MQTT-3.2.2-9], Retain Available
    0 (retain_available false)."""
    b = broker("max_packet_size 5000", "max_topic_alias 7", "maximum_qos 1",
               "retain_available false")
    c = RawClient(b.port, 5)
    ack = c.connect("limits")
    assert ack.props.get(rm.MAXIMUM_PACKET_SIZE) == 5000, ack
    assert ack.props.get(rm.TOPIC_ALIAS_MAXIMUM) == 7, ack
    assert ack.props.get(rm.MAXIMUM_QOS) == 1, ack
    assert ack.props.get(rm.RETAIN_AVAILABLE) == 0, ack
    c.disconnect()


def test_will_qos_above_maximum_qos_refused(broker):
    """A Will QoS above the server's Maximum QoS: the connection is refused, CONNACK 0x9B QoS
    not supported, then closed [MQTT-3.2.2-12]."""
    b = broker("maximum_qos 1")
    c = RawClient(b.port, 5)
    ack = c.connect("willq2", will={"topic": "w/t", "payload": b"x", "qos": 2},
                    expect_rc=None)
    assert ack.rc == rm.RC_QOS_NOT_SUPPORTED and ack.session_present is False, ack
    c.expect_closed()
    assert_serves(b.port)


def test_will_retain_without_retain_available_refused(broker):
    """Will Retain 1 when retained messages are not supported: the connection is refused,
    CONNACK 0x9A Retain not supported, then closed [MQTT-3.2.2-13]."""
    b = broker("retain_available false")
    c = RawClient(b.port, 5)
    ack = c.connect("willret", will={"topic": "w/t", "payload": b"x", "retain": True},
                    expect_rc=None)
    assert ack.rc == rm.RC_RETAIN_NOT_SUPPORTED, ack
    c.expect_closed()
    assert_serves(b.port)


def test_keepalive_zero_never_times_out(broker):
    """Keep Alive 0 turns the mechanism off (section 3.1.2.10): a silent client stays
    connected (bounded 2.5 s window)."""
    b = broker()
    c = RawClient(b.port, 4)
    c.connect("ka-zero", keepalive=0)
    assert c.is_open(window=2.5)
    assert c.ping().type == rm.PINGRESP
    c.disconnect()


def test_one_connack_only(broker):
    """The server sends exactly one CONNACK per connection [MQTT-3.2.0-2]; with clean start it
    is the first packet [MQTT-3.2.0-1]."""
    b = broker()
    c = RawClient(b.port, 5)
    c.send(rm.connect("oneack") + rm.pingreq())
    assert c.recv().type == rm.CONNACK
    assert c.recv().type == rm.PINGRESP
    c.expect_nothing(0.5)
    c.disconnect()


def test_paho_v5_connect_properties_accepted(broker):
    """A CONNECT carrying every client-side property (section 3.1.2.11) is accepted with
    0x00 Success [MQTT-3.2.2-3]."""
    b = broker()
    c = Paho(b.port, "allprops", protocol=MQTTv5)
    p = props(PacketTypes.CONNECT, SessionExpiryInterval=10, ReceiveMaximum=20,
              MaximumPacketSize=100000, TopicAliasMaximum=5, RequestResponseInformation=1,
              RequestProblemInformation=1, UserProperty=[("a", "b")])
    rc, sp, _ = c.connect(properties=p)
    assert rc == 0
    c.disconnect()
