"""Point-to-point messaging: a PUBLISH to `<parent>/p2p/<clientId>` reaches exactly that client,
which never subscribed (issue 3; docs/design.md "Point-to-point (P2P) semantics";
shared/seed/apsaramq-mqtt-p2p.txt: "The receiver can obtain the message without subscribing to
the topic in advance").

Spec points cited below are the numbered points of issue 3:
  1 recognition (keyword, parent, verbatim client ID, p2p_parent_topic -> 0x90 / dropped)
  2 direct route over the ordinary outbound path (QoS, inflight, expiry, aliases, properties)
  3 no subscription needed; an own subscription gives its identifier and QoS cap, once
  4 offline receivers: queued for a persistent session, else dropped with 0x10
  5 privacy: no wildcard or shared subscription sees P2P; SUBSCRIBE to another client's P2P
    topic refused (0x87 / 0x80); retain stores nothing; a will may be P2P
  6 observability: $SYS counters routed / queued / dropped / refused
"""

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

import rawmqtt as rm
from rawmqtt import RawClient, assert_serves, drain_publishes
from support import MQTTv311, MQTTv5, Paho, props, scaled, wait_for

PROTOCOLS = [MQTTv311, MQTTv5]
PROTO_IDS = ["3.1.1", "5"]
VERSION = {MQTTv311: 4, MQTTv5: 5}
SUBACK_REFUSED = {4: 0x80, 5: rm.RC_NOT_AUTHORIZED}  # 3.1.1 Failure / MQTT 5 0x87
EAVESDROP_WINDOW = 1.0  # "nothing arrives within a generous window" (issue 3, how it is checked)


def p2p(target, parent="app", keyword="p2p"):
    return "%s/%s/%s" % (parent, keyword, target)


def persistent_props():
    return props(PacketTypes.CONNECT, SessionExpiryInterval=300)


# ------------------------------------------------------------------ 3: no subscription needed

@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTO_IDS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_p2p_without_subscription_paho(broker, protocol, qos):
    """Point 3: the receiver gets the message with the full topic name and no SUBSCRIBE;
    DESIGN: "at the publish's QoS" (the broker maximum is 2 here)."""
    b = broker()
    rx = Paho(b.port, "rx-%d-%d" % (protocol, qos), protocol=protocol)
    rx.connect()
    tx = Paho(b.port, "tx-%d-%d" % (protocol, qos), protocol=protocol)
    tx.connect()
    topic = p2p("rx-%d-%d" % (protocol, qos))
    tx.publish(topic, b"hello-%d" % qos, qos=qos)
    m = rx.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == (topic, b"hello-%d" % qos, qos, 0)
    rx.expect_no_message(0.5)  # exactly once
    tx.expect_no_message(0.1)  # the sender does not get it back
    tx.disconnect()
    rx.disconnect()


@pytest.mark.parametrize("tx_proto,rx_proto", [(MQTTv311, MQTTv5), (MQTTv5, MQTTv311)],
                         ids=["3.1.1-to-5", "5-to-3.1.1"])
def test_p2p_across_protocol_versions(broker, tx_proto, rx_proto):
    """Point 2: delivery uses the ordinary outbound path, so the receiver's own protocol
    version decides the wire format."""
    b = broker()
    rx = Paho(b.port, "xrx", protocol=rx_proto)
    rx.connect()
    tx = Paho(b.port, "xtx", protocol=tx_proto)
    tx.connect()
    tx.publish(p2p("xrx"), b"cross", qos=1)
    m = rx.expect_message()
    assert (m.topic, m.payload, m.qos) == (p2p("xrx"), b"cross", 1)
    tx.disconnect()
    rx.disconnect()


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_p2p_raw_flows(broker, version, qos):
    """Point 2: the QoS 1/2 flows towards the receiver are the ordinary ones (packet id set,
    DUP 0 on first delivery [MQTT-3.3.1-2]); the MQTT 5 sender of a delivered message gets
    reason 0x00 (not 0x10)."""
    b = broker()
    rx = RawClient(b.port, version)
    rx.connect("rawrx")
    tx = RawClient(b.port, version)
    tx.connect("rawtx")
    ack = tx.publish(p2p("rawrx"), b"raw", qos=qos, pid=41)
    if qos:
        assert ack.rc == rm.RC_SUCCESS
    m = rx.recv_publish()
    assert (m.topic, m.payload, m.qos, m.dup, m.retain) == (p2p("rawrx"), b"raw", qos, False,
                                                            False)
    assert (m.pid is None) == (qos == 0)
    rx.expect_nothing(0.5)
    tx.disconnect()
    rx.disconnect()


def test_p2p_to_self(broker):
    """Point 3: a client that sends to its own P2P topic is its own target and gets the
    message (no subscription, so No Local does not apply)."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("selfie")
    c.publish(p2p("selfie"), b"me", qos=1, pid=2)
    m = c.recv_publish()
    assert (m.topic, m.payload) == (p2p("selfie"), b"me")
    c.disconnect()


def test_p2p_payload_and_properties_forwarded(broker):
    """Point 2: user properties, content type, payload format and message expiry are
    forwarded; the payload arrives byte for byte."""
    b = broker()
    rx = RawClient(b.port, 5)
    rx.connect("proprx")
    tx = RawClient(b.port, 5)
    tx.connect("proptx")
    payload = bytes(range(256)) * 40
    tx.publish(p2p("proprx"), payload, qos=1, pid=5, props={
        rm.USER_PROPERTY: [("k1", "v1"), ("k2", "v2")],
        rm.CONTENT_TYPE: "application/octet-stream",
        rm.MESSAGE_EXPIRY_INTERVAL: 100,
    })
    m = rx.recv_publish()
    assert m.payload == payload
    assert m.props[rm.USER_PROPERTY] == [("k1", "v1"), ("k2", "v2")]  # order kept [MQTT-3.3.2-18]
    assert m.props[rm.CONTENT_TYPE] == "application/octet-stream"
    assert 0 < m.props[rm.MESSAGE_EXPIRY_INTERVAL] <= 100  # [MQTT-3.3.2-6]
    tx.disconnect()
    rx.disconnect()


def test_p2p_inbound_topic_alias(broker):
    """Point 2: a topic alias set by the sender [MQTT-3.3.2-12] resolves to the P2P topic
    before routing, so a PUBLISH carrying only the alias still reaches the target."""
    b = broker("max_topic_alias 10")
    rx = RawClient(b.port, 5)
    rx.connect("aliasrx")
    tx = RawClient(b.port, 5)
    tx.connect("aliastx")
    tx.publish(p2p("aliasrx"), b"first", qos=1, pid=1, props={rm.TOPIC_ALIAS: 3})
    tx.publish("", b"second", qos=1, pid=2, props={rm.TOPIC_ALIAS: 3})
    got = [rx.recv_publish() for _ in range(2)]
    assert [(m.topic, m.payload) for m in got] == [(p2p("aliasrx"), b"first"),
                                                   (p2p("aliasrx"), b"second")]
    tx.disconnect()
    rx.disconnect()


def test_p2p_respects_receive_maximum(broker):
    """Point 2: the inflight window applies: with Receive Maximum 2 the broker has at most two
    unacknowledged QoS 1 P2P messages out [MQTT-3.3.4-7] and sends the rest, in order, as
    acknowledgements come back."""
    b = broker()
    rx = RawClient(b.port, 5)
    rx.connect("winrx", props={rm.RECEIVE_MAXIMUM: 2})
    tx = RawClient(b.port, 5)
    tx.connect("wintx")
    for i in range(5):
        tx.publish(p2p("winrx"), b"w%d" % i, qos=1, pid=i + 1)
    first = [rx.recv_publish(ack=False) for _ in range(2)]
    rx.expect_nothing(0.5)
    got = list(first)
    for m in first:
        rx.ack(m)
    deadline = time.monotonic() + scaled(5)
    while len(got) < 5 and time.monotonic() < deadline:
        m = rx.recv_publish()
        got.append(m)
    assert [m.payload for m in got] == [b"w%d" % i for i in range(5)]
    tx.disconnect()
    rx.disconnect()


# ------------------------------------------------------------------ 1: recognition

@pytest.mark.parametrize("cid", ["fleet/truck/7", "GID_demo@@@DEVICE_001", "a b.c:d", "x/",
                                 "\u8bbe\u5907-7"],
                         ids=["slashes", "apsaramq", "odd-chars", "trailing-slash", "unicode"])
@pytest.mark.parametrize("version", [4, 5])
def test_p2p_client_id_taken_verbatim(broker, cid, version):
    """Point 1: everything after `<parent>/p2p/` is the target client ID, verbatim: it may
    contain '/' and ApsaraMQ-style IDs such as GID_demo@@@DEVICE_001 (seed: "set the level-3
    topic to the client ID of the target receiver"). A client whose ID is a prefix of the
    target's gets nothing."""
    b = broker()
    rx = RawClient(b.port, version)
    rx.connect(cid)
    other = RawClient(b.port, version)
    other.connect(cid.split("/")[0] if "/" in cid else cid[:-1])
    tx = RawClient(b.port, version)
    tx.connect("verbatim-tx")
    tx.publish(p2p(cid), b"to " + cid.encode(), qos=1, pid=3)
    m = rx.recv_publish()
    assert (m.topic, m.payload) == (p2p(cid), b"to " + cid.encode())
    other.expect_nothing(EAVESDROP_WINDOW)
    for c in (tx, other, rx):
        c.disconnect()


@pytest.mark.parametrize("topic,flt", [
    ("app/p2p", "app/p2p"),                  # only two levels: no client ID
    ("app/p2p/", "app/p2p/"),                # empty client ID
    ("/p2p/rcpt", "/p2p/rcpt"),              # empty parent
    ("$app/p2p/rcpt", "$app/p2p/rcpt"),      # parent starting with '$'
    ("a/b/p2p/rcpt", "a/b/p2p/rcpt"),        # keyword is not the second level
    ("app/P2P/rcpt", "app/P2P/rcpt"),        # the keyword is case-sensitive
    ("app/p2px/rcpt", "app/p2px/rcpt"),      # the whole level must be the keyword
])
def test_not_p2p_topics_are_ordinary(broker, topic, flt):
    """Point 1: a topic is P2P only when its second level is exactly the keyword and its first
    level is non-empty and does not start with '$'. Other topics route through subscriptions:
    client 'rcpt' (no subscription) gets nothing, a subscriber of the topic gets it."""
    b = broker()
    rcpt = RawClient(b.port, 5)
    rcpt.connect("rcpt")
    sub = RawClient(b.port, 5)
    sub.connect("plain-sub")
    assert sub.subscribe((flt, 1)).rcs == [1]
    tx = RawClient(b.port, 5)
    tx.connect("plain-tx")
    tx.publish(topic, b"ordinary", qos=1, pid=4)
    m = sub.recv_publish()
    assert (m.topic, m.payload) == (topic, b"ordinary")
    rcpt.expect_nothing(EAVESDROP_WINDOW)
    for c in (tx, sub, rcpt):
        c.disconnect()


def test_p2p_keyword_changed(broker):
    """Point 1: the keyword is configurable (`p2p_keyword`): `app/direct/<id>` is then P2P and
    `app/p2p/<id>` an ordinary topic that needs a subscription."""
    b = broker("p2p_keyword direct")
    rx = Paho(b.port, "kwrx", protocol=MQTTv5)
    rx.connect()
    sub = Paho(b.port, "kwsub", protocol=MQTTv5)
    sub.connect()
    assert sub.subscribe("#", 1) == [1]
    tx = Paho(b.port, "kwtx", protocol=MQTTv5)
    tx.connect()
    tx.publish("app/direct/kwrx", b"p2p now", qos=1)
    m = rx.expect_message()
    assert (m.topic, m.payload) == ("app/direct/kwrx", b"p2p now")
    tx.publish("app/p2p/kwrx", b"ordinary now", qos=1)
    m = sub.expect_message()
    assert (m.topic, m.payload) == ("app/p2p/kwrx", b"ordinary now")
    sub.expect_no_message(EAVESDROP_WINDOW)  # the `app/direct/...` one was private
    rx.expect_no_message(0.2)                # and the ordinary one needed a subscription
    for c in (tx, sub, rx):
        c.disconnect()


def test_p2p_disabled_makes_ordinary_topic(broker):
    """Point 1: `p2p_enabled false` switches P2P off: `app/p2p/<id>` is an ordinary topic (no
    delivery without a subscription, wildcards match, another client may subscribe to it,
    retain stores it)."""
    b = broker("p2p_enabled false")
    rx = RawClient(b.port, 5)
    rx.connect("offrx")
    sub = RawClient(b.port, 5)
    sub.connect("offsub")
    assert sub.subscribe([("#", 1), ("app/p2p/offrx", 1)]).rcs == [1, 1]
    tx = RawClient(b.port, 5)
    tx.connect("offtx")
    ack = tx.publish(p2p("offrx"), b"plain", qos=1, pid=6, retain=True)
    assert ack.rc == rm.RC_SUCCESS
    m = sub.recv_publish()
    assert (m.topic, m.payload) == (p2p("offrx"), b"plain")
    assert m.props.get(rm.SUBSCRIPTION_IDENTIFIER) is None
    sub.expect_nothing(0.3)  # two matching subscriptions, one delivery [MQTT-3.3.4-2..5]
    rx.expect_nothing(0.5)
    late = RawClient(b.port, 5)
    late.connect("offlate")
    late.subscribe(("app/#", 1))
    r = late.recv_publish()
    assert (r.topic, r.payload, r.retain) == (p2p("offrx"), b"plain", True)
    for c in (tx, sub, rx, late):
        c.disconnect()


def test_p2p_parent_topic_restriction_v5(broker):
    """Point 1: with `p2p_parent_topic` lines only those parents are accepted; a P2P publish
    under another parent is refused with PUBACK / PUBREC 0x90 (Topic Name invalid), delivered
    to nobody (neither the target nor subscribers of that parent), and the connection stays."""
    b = broker("p2p_parent_topic app", "p2p_parent_topic dev")
    rx = RawClient(b.port, 5)
    rx.connect("parx")
    sub = RawClient(b.port, 5)
    sub.connect("pasub")
    assert sub.subscribe(("other/#", 1)).rcs == [1]
    tx = RawClient(b.port, 5)
    tx.connect("patx")
    ack = tx.publish("other/p2p/parx", b"refused", qos=1, pid=7)
    assert (ack.type, ack.rc) == (rm.PUBACK, rm.RC_TOPIC_NAME_INVALID)
    rec = tx.publish("other/p2p/parx", b"refused2", qos=2, pid=8)
    assert (rec.type, rec.rc) == (rm.PUBREC, rm.RC_TOPIC_NAME_INVALID)
    for parent in ("app", "dev"):
        assert tx.publish(p2p("parx", parent), parent.encode(), qos=1, pid=9).rc == 0
        m = rx.recv_publish()
        assert (m.topic, m.payload) == (p2p("parx", parent), parent.encode())
    rx.expect_nothing(0.3)
    sub.expect_nothing(0.5)
    tx.ping()  # still connected
    for c in (tx, sub, rx):
        c.disconnect()


def test_p2p_parent_topic_restriction_v311(broker):
    """Point 1: a 3.1.1 sender of a P2P message under a parent that is not allowed has it
    dropped (acknowledged without a reason code, which 3.1.1 cannot carry), and stays
    connected."""
    b = broker("p2p_parent_topic app")
    rx = RawClient(b.port, 4)
    rx.connect("pa4rx")
    tx = RawClient(b.port, 4)
    tx.connect("pa4tx")
    ack = tx.publish("other/p2p/pa4rx", b"refused", qos=1, pid=7)
    assert ack.type == rm.PUBACK and ack.pid == 7
    tx.publish("other/p2p/pa4rx", b"refused", qos=0)
    rx.expect_nothing(EAVESDROP_WINDOW)
    tx.publish(p2p("pa4rx"), b"ok", qos=1, pid=8)
    assert rx.recv_publish().payload == b"ok"
    for c in (tx, rx):
        c.disconnect()


# ------------------------------------------------------------------ 4: no session / offline

@pytest.mark.parametrize("qos", [1, 2])
def test_unknown_target_v5_gets_0x10(broker, qos):
    """Point 4: a target with no session: dropped, and the MQTT 5 sender's PUBACK/PUBREC
    carries 0x10 No matching subscribers; 0x10 is a success code, so the QoS 2 flow goes on
    to PUBREL/PUBCOMP [MQTT-4.3.3-...]."""
    b = broker()
    tx = RawClient(b.port, 5)
    tx.connect("ghost-tx")
    tx.send(rm.publish(p2p("nobody-here"), b"lost", qos=qos, pid=11))
    ack = tx.recv()
    assert ack.type == (rm.PUBACK if qos == 1 else rm.PUBREC) and ack.pid == 11
    assert ack.rc == rm.RC_NO_MATCHING_SUBSCRIBERS
    if qos == 2:
        tx.send(rm.pubrel(11))
        assert tx.recv_type(rm.PUBCOMP).pid == 11
    tx.ping()
    tx.disconnect()


def test_unknown_target_paho_v311_and_v5_ok(broker):
    """Point 4 with real clients: the publish completes (3.1.1: plain PUBACK; 5: 0x10 is not
    an error), nothing is delivered anywhere, and the sender stays connected."""
    b = broker()
    eve = Paho(b.port, "ghost-eve", protocol=MQTTv5)
    eve.connect()
    eve.subscribe("#", 2)
    for proto in PROTOCOLS:
        tx = Paho(b.port, "ghost-%d" % proto, protocol=proto)
        tx.connect()
        for qos in (0, 1, 2):
            tx.publish(p2p("nobody"), b"x", qos=qos)
        tx.disconnect()
    eve.expect_no_message(EAVESDROP_WINDOW)
    eve.disconnect()


def test_target_whose_session_ended_gets_0x10(broker):
    """Point 4: a clean-start client that disconnected has no session any more: no session
    means nobody can receive it (DESIGN), so 0x10."""
    b = broker()
    gone = RawClient(b.port, 5)
    gone.connect("gone-soon")  # clean start, session expiry 0
    gone.disconnect()
    tx = RawClient(b.port, 5)
    tx.connect("gone-tx")

    def answered_0x10():
        return tx.publish(p2p("gone-soon"), b"late", qos=1, pid=12).rc == \
            rm.RC_NO_MATCHING_SUBSCRIBERS
    wait_for(answered_0x10, timeout=5, interval=0.1, what="0x10 after the target left")
    tx.disconnect()


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTO_IDS)
def test_offline_persistent_receiver_gets_queue_in_order(broker, protocol):
    """Point 4: a receiver with a persistent session (3.1.1 clean session 0 / MQTT 5 session
    expiry > 0) that is offline gets its QoS 1/2 P2P messages queued and delivered on
    reconnect, in order [MQTT-4.6.0-6]; the MQTT 5 sender's acknowledgement is 0x00 (someone
    will receive it), not 0x10."""
    b = broker()
    version = VERSION[protocol]
    rx = RawClient(b.port, version)
    kw = {"props": {rm.SESSION_EXPIRY_INTERVAL: 300}} if version == 5 else {}
    rx.connect("sleeper", clean=(version == 5), **kw)
    rx.disconnect()
    tx = RawClient(b.port, 5)
    tx.connect("waker")
    for i in range(10):
        qos = 1 + i % 2
        ack = tx.publish(p2p("sleeper"), b"q%d" % i, qos=qos, pid=100 + i)
        assert ack.rc == rm.RC_SUCCESS, "message %d: 0x%02x" % (i, ack.rc)
    rx = RawClient(b.port, version)
    ack = rx.connect("sleeper", clean=False, **kw)
    assert ack.session_present is True
    got = drain_publishes(rx, window=1.0)
    assert [(m.topic, m.payload, m.qos) for m in got] == \
        [(p2p("sleeper"), b"q%d" % i, 1 + i % 2) for i in range(10)]
    tx.disconnect()
    rx.disconnect()


def test_offline_queue_paho_reconnect(broker):
    """Point 4 with paho (3.1.1 clean_session False): messages sent while the receiver is away
    arrive after it reconnects, in order, once each."""
    b = broker()
    rx = Paho(b.port, "paho-sleeper", protocol=MQTTv311, clean=False)
    rx.connect()
    rx.disconnect()
    tx = Paho(b.port, "paho-waker", protocol=MQTTv5)
    tx.connect()
    for i in range(5):
        tx.publish(p2p("paho-sleeper"), b"m%d" % i, qos=1)
    rx = Paho(b.port, "paho-sleeper", protocol=MQTTv311, clean=False)
    rc, session_present, _ = rx.connect()
    assert session_present == 1
    got = rx.expect_messages(5)
    assert [m.payload for m in got] == [b"m%d" % i for i in range(5)]
    rx.expect_no_message(0.5)
    tx.disconnect()
    rx.disconnect()


def test_offline_queue_message_expiry(broker):
    """Point 2/4: message expiry applies to a queued P2P message [MQTT-3.3.2-5]: one whose
    interval passed while the receiver was offline is not delivered; the other one is, with its
    remaining interval [MQTT-3.3.2-6]."""
    b = broker()
    rx = RawClient(b.port, 5)
    rx.connect("exp-rx", props={rm.SESSION_EXPIRY_INTERVAL: 300})
    rx.disconnect()
    tx = RawClient(b.port, 5)
    tx.connect("exp-tx")
    tx.publish(p2p("exp-rx"), b"short", qos=1, pid=1, props={rm.MESSAGE_EXPIRY_INTERVAL: 1})
    tx.publish(p2p("exp-rx"), b"long", qos=1, pid=2, props={rm.MESSAGE_EXPIRY_INTERVAL: 100})
    time.sleep(2.2)
    rx = RawClient(b.port, 5)
    rx.connect("exp-rx", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 300})
    got = drain_publishes(rx, window=1.0)
    assert [m.payload for m in got] == [b"long"]
    assert 0 < got[0].props[rm.MESSAGE_EXPIRY_INTERVAL] < 100
    tx.disconnect()
    rx.disconnect()


# ------------------------------------------------------------------ 5: privacy

# Each eavesdropping filter, and an ordinary publish that this filter does match, to show the
# eavesdropper's subscription is live (None: a P2P message to the eavesdropper itself).
EAVESDROP_FILTERS = [
    ("#", "app/plain"),
    ("+/p2p/#", "app/p2p"),
    ("app/#", "app/plain"),
    ("app/p2p/+", None),
    ("app/p2p/#", None),
    ("$share/g/#", "app/plain"),
    ("$share/g/+/p2p/#", "app/p2p"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTO_IDS)
@pytest.mark.parametrize("flt,control", EAVESDROP_FILTERS, ids=[f for f, _ in EAVESDROP_FILTERS])
def test_eavesdropper_receives_nothing(broker, protocol, flt, control):
    """Point 5: nobody but the target ever receives a P2P message: `#`, `+/p2p/#`,
    `<parent>/#`, `<parent>/p2p/+` and shared subscriptions do not match P2P topics. The
    target did receive; the eavesdropper got nothing within the window, though its subscription
    was accepted and works for what it may see."""
    b = broker()
    eve = Paho(b.port, "eve", protocol=protocol)
    eve.connect()
    granted = eve.subscribe(flt, 2)
    assert granted == [2], "SUBACK for %s: %r" % (flt, granted)
    target = Paho(b.port, "target", protocol=protocol)
    target.connect()
    tx = Paho(b.port, "sender", protocol=protocol)
    tx.connect()
    for qos in (0, 1, 2):
        tx.publish(p2p("target"), b"secret-%d" % qos, qos=qos)
    got = sorted(m.payload for m in target.expect_messages(3))
    assert got == [b"secret-0", b"secret-1", b"secret-2"]
    eve.expect_no_message(EAVESDROP_WINDOW)
    control_topic = control or p2p("eve")
    tx.publish(control_topic, b"control", qos=1)
    m = eve.expect_message()
    assert (m.topic, m.payload) == (control_topic, b"control")
    target.expect_no_message(0.2)
    for c in (tx, target, eve):
        c.disconnect()


def test_eavesdropper_sees_nothing_of_offline_queue(broker):
    """Point 5 with an offline persistent target: the message is queued for the target only;
    a `#` subscriber sees nothing, and the target gets it on reconnect."""
    b = broker()
    eve = RawClient(b.port, 5)
    eve.connect("eve-q")
    eve.subscribe(("#", 2))
    rx = RawClient(b.port, 4)
    rx.connect("away", clean=False)
    rx.disconnect()
    tx = RawClient(b.port, 5)
    tx.connect("away-tx")
    tx.publish(p2p("away"), b"for away only", qos=1, pid=1)
    eve.expect_nothing(EAVESDROP_WINDOW)
    rx = RawClient(b.port, 4)
    rx.connect("away", clean=False)
    assert rx.recv_publish().payload == b"for away only"
    for c in (tx, rx, eve):
        c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("flt", ["app/p2p/victim", "app/p2p/victim/#", "dev/p2p/victim",
                                 "app/p2p/vic+", "$share/g/app/p2p/victim"],
                         ids=["exact", "hash-below", "other-parent", "plus-in-id", "shared"])
def test_subscribe_to_other_clients_p2p_topic_refused(broker, version, flt):
    """Point 5: a SUBSCRIBE naming another client's P2P topic is refused: MQTT 5 SUBACK 0x87
    (Not authorized), 3.1.1 0x80 (Failure). The victim's messages still reach only the
    victim. ('app/p2p/vic+' is not a valid filter at all: '+' must fill a level
    [MQTT-4.7.1-2], so it may also be refused as 0x8F / 0x80.)"""
    b = broker()
    victim = RawClient(b.port, version)
    victim.connect("victim")
    spy = RawClient(b.port, version)
    spy.connect("spy")
    ack = spy.subscribe((flt, 1))
    if flt == "app/p2p/vic+":
        assert ack.rcs[0] in (SUBACK_REFUSED[version], rm.RC_TOPIC_FILTER_INVALID) or \
            spy.eof
        return
    assert ack.rcs == [SUBACK_REFUSED[version]], "SUBACK for %s: %r" % (flt, ack.rcs)
    tx = RawClient(b.port, version)
    tx.connect("spy-tx")
    tx.publish(p2p("victim"), b"private", qos=1, pid=1)
    assert victim.recv_publish().payload == b"private"
    spy.expect_nothing(EAVESDROP_WINDOW)
    for c in (tx, spy, victim):
        c.disconnect()


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTO_IDS)
def test_subscribe_mixed_filters_codes_per_filter(broker, protocol):
    """Point 5: the refusal is per filter: in one SUBSCRIBE, an ordinary filter and the
    client's own P2P topic are granted while another client's P2P topic is refused (one
    return code per filter, in order [MQTT-3.9.3-1])."""
    b = broker()
    c = Paho(b.port, "mixer", protocol=protocol)
    c.connect()
    refused = SUBACK_REFUSED[VERSION[protocol]]
    if protocol == MQTTv5:
        from paho.mqtt.subscribeoptions import SubscribeOptions
        rcs = c.subscribe([("news/#", SubscribeOptions(qos=1)),
                           ("app/p2p/someone-else", SubscribeOptions(qos=1)),
                           ("app/p2p/mixer", SubscribeOptions(qos=2))])
    else:
        rcs = c.subscribe([("news/#", 1), ("app/p2p/someone-else", 1), ("app/p2p/mixer", 2)])
    assert rcs == [1, refused, 2]
    c.disconnect()


@pytest.mark.parametrize("cid,flt,allowed", [
    ("me", "app/p2p/me", True),
    ("me", "app/p2p/+", True),
    ("me", "app/p2p/#", True),
    ("fleet/truck/7", "app/p2p/fleet/truck/7", True),
    ("fleet/truck/7", "app/p2p/fleet/#", True),
    ("fleet/truck/7", "app/p2p/fleet/+/7", True),
    ("fleet/truck/7", "app/p2p/fleet/truck/8", False),
    ("fleet/truck/7", "app/p2p/+", False),
    ("fleet/truck/7", "app/p2p/fleet", False),
    ("GID_demo@@@DEVICE_001", "app/p2p/GID_demo@@@DEVICE_001", True),
    ("GID_demo@@@DEVICE_001", "app/p2p/GID_demo@@@DEVICE_002", False),
])
def test_own_p2p_subscription_shapes(broker, cid, flt, allowed):
    """Point 3/5: a client may subscribe to its own P2P topic, exactly or with a filter that
    matches it (`<parent>/p2p/<first level of id>/#` where the ID has levels); a filter of P2P
    shape that does not match its own P2P topic names other clients and is refused (0x87)."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect(cid)
    ack = c.subscribe((flt, 1))
    assert ack.rcs == [1 if allowed else rm.RC_NOT_AUTHORIZED], "%s by %s: %r" % (flt, cid,
                                                                                   ack.rcs)
    c.disconnect()


def test_self_subscribed_receiver_gets_one_copy_with_subscription_id(broker):
    """Point 3: a receiver subscribed to its own P2P topic gets each message exactly once,
    carrying that subscription's identifier [MQTT-3.3.4-3] and capped at its QoS
    [MQTT-3.8.4-8]."""
    b = broker()
    rx = RawClient(b.port, 5)
    rx.connect("selfsub")
    ack = rx.subscribe(("app/p2p/selfsub", 1), props={rm.SUBSCRIPTION_IDENTIFIER: 7})
    assert ack.rcs == [1]
    tx = RawClient(b.port, 5)
    tx.connect("selfsub-tx")
    tx.publish(p2p("selfsub"), b"q2", qos=2, pid=1)
    tx.publish(p2p("selfsub"), b"q0", qos=0)
    got = drain_publishes(rx, window=1.0)
    assert [(m.payload, m.qos) for m in got] == [(b"q2", 1), (b"q0", 0)]
    for m in got:
        assert m.topic == p2p("selfsub")
        assert m.props.get(rm.SUBSCRIPTION_IDENTIFIER) == [7]
    tx.disconnect()
    rx.disconnect()


def test_self_subscribed_overlapping_filters_one_copy_all_ids(broker):
    """Point 3: with two of its own subscriptions matching (exact and `+`), the receiver still
    gets one copy [MQTT-3.3.4-2], at the highest granted QoS, with both identifiers
    [MQTT-3.3.4-3, MQTT-3.3.4-5]."""
    b = broker()
    rx = RawClient(b.port, 5)
    rx.connect("twosubs")
    assert rx.subscribe(("app/p2p/twosubs", 0), pid=1,
                        props={rm.SUBSCRIPTION_IDENTIFIER: 7}).rcs == [0]
    assert rx.subscribe(("app/p2p/+", 2), pid=2,
                        props={rm.SUBSCRIPTION_IDENTIFIER: 8}).rcs == [2]
    tx = RawClient(b.port, 5)
    tx.connect("twosubs-tx")
    tx.publish(p2p("twosubs"), b"once", qos=2, pid=1)
    got = drain_publishes(rx, window=1.0)
    assert len(got) == 1, got
    assert got[0].qos == 2
    assert sorted(got[0].props.get(rm.SUBSCRIPTION_IDENTIFIER, [])) == [7, 8]
    tx.disconnect()
    rx.disconnect()


def test_self_subscribed_paho_v5(broker):
    """Point 3 with paho MQTT 5 (the way clients that dispatch by subscription receive P2P):
    one copy, with the subscription identifier."""
    b = broker()
    rx = Paho(b.port, "pahoself", protocol=MQTTv5)
    rx.connect()
    from paho.mqtt.subscribeoptions import SubscribeOptions
    rcs = rx.subscribe(p2p("pahoself"), options=SubscribeOptions(qos=2),
                       properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    assert rcs == [2]
    tx = Paho(b.port, "pahoself-tx", protocol=MQTTv5)
    tx.connect()
    tx.publish(p2p("pahoself"), b"one", qos=1)
    m = rx.expect_message()
    assert (m.topic, m.payload, m.qos) == (p2p("pahoself"), b"one", 1)
    assert m.properties.SubscriptionIdentifier == [42]
    rx.expect_no_message(0.8)
    tx.disconnect()
    rx.disconnect()


def test_self_subscribed_offline_receiver_gets_one_copy(broker):
    """Point 3/4: a persistent receiver subscribed to its own P2P topic gets a message queued
    while it was away once, with its subscription identifier."""
    b = broker()
    rx = RawClient(b.port, 5)
    rx.connect("selfoff", props={rm.SESSION_EXPIRY_INTERVAL: 300})
    rx.subscribe(("app/p2p/selfoff", 2), props={rm.SUBSCRIPTION_IDENTIFIER: 9})
    rx.disconnect()
    tx = RawClient(b.port, 5)
    tx.connect("selfoff-tx")
    tx.publish(p2p("selfoff"), b"queued", qos=2, pid=1)
    rx = RawClient(b.port, 5)
    rx.connect("selfoff", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 300})
    got = drain_publishes(rx, window=1.0)
    assert [(m.payload, m.qos) for m in got] == [(b"queued", 2)]
    assert got[0].props.get(rm.SUBSCRIPTION_IDENTIFIER) == [9]
    tx.disconnect()
    rx.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_retain_flag_on_p2p_stores_nothing(broker, version):
    """Point 5: the retain flag on a P2P publish never stores a retained message: the target
    gets it live (retain 0 on live delivery [MQTT-3.3.1-9]), and later subscribers (the
    target's own subscription, a `#` subscriber) get nothing retained. An empty retained P2P
    publish does not delete an ordinary retained message either."""
    b = broker()
    rx = RawClient(b.port, version)
    rx.connect("keeper")
    tx = RawClient(b.port, version)
    tx.connect("keeper-tx")
    tx.publish("app/plain", b"ordinary retained", qos=1, pid=1, retain=True)
    tx.publish(p2p("keeper"), b"not kept", qos=1, pid=2, retain=True)
    m = rx.recv_publish()
    assert (m.topic, m.payload, m.retain) == (p2p("keeper"), b"not kept", False)
    ack = rx.subscribe([(p2p("keeper"), 1), ("app/p2p/#", 1)])
    assert ack.rcs == [1, 1]
    rx.expect_nothing(EAVESDROP_WINDOW)
    late = RawClient(b.port, version)
    late.connect("keeper-late")
    late.subscribe(("#", 1))
    got = drain_publishes(late, window=1.0)
    assert [(g.topic, g.payload) for g in got] == [("app/plain", b"ordinary retained")]
    for c in (tx, rx, late):
        c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_will_message_can_be_p2p(broker, version):
    """Point 5: a will message may be P2P and is delivered the same way: only the target gets
    it, without a subscription, when the client dies without DISCONNECT [MQTT-3.1.2-8]."""
    b = broker()
    rx = RawClient(b.port, version)
    rx.connect("heir")
    eve = RawClient(b.port, version)
    eve.connect("will-eve")
    eve.subscribe(("#", 1))
    dying = RawClient(b.port, version)
    dying.connect("dying", will={"topic": p2p("heir"), "payload": b"last words", "qos": 1})
    dying.close()  # no DISCONNECT: the will is published
    m = rx.recv_publish()
    assert (m.topic, m.payload, m.qos) == (p2p("heir"), b"last words", 1)
    eve.expect_nothing(EAVESDROP_WINDOW)
    for c in (rx, eve):
        c.disconnect()


def test_will_p2p_paho_to_offline_persistent_target(broker):
    """Point 4/5: a P2P will to an offline persistent target is queued for it."""
    b = broker()
    rx = Paho(b.port, "will-heir", protocol=MQTTv311, clean=False)
    rx.connect()
    rx.disconnect()
    dying = Paho(b.port, "will-dying", protocol=MQTTv5)
    dying.will_set(p2p("will-heir"), b"bye", qos=1)
    dying.connect()
    dying.close()
    time.sleep(0.5)
    rx = Paho(b.port, "will-heir", protocol=MQTTv311, clean=False)
    rx.connect()
    m = rx.expect_message()
    assert (m.topic, m.payload) == (p2p("will-heir"), b"bye")
    rx.disconnect()


# ------------------------------------------------------------------ request / response

def test_request_reply_over_p2p_v5(broker):
    """Point 2: MQTT 5 request/response over P2P, both sides unsubscribed: the request carries
    Response Topic = the requester's own P2P topic and Correlation Data; both are forwarded
    untouched [MQTT-3.3.2-15, MQTT-3.3.2-16], so the responder answers P2P and the requester
    matches the reply by its correlation data."""
    b = broker()
    service = Paho(b.port, "svc", protocol=MQTTv5)
    service.connect()
    client = Paho(b.port, "GID_app@@@req-1", protocol=MQTTv5)
    client.connect()
    for n in range(3):
        corr = b"corr-%d" % n
        req_props = props(ResponseTopic=p2p("GID_app@@@req-1"), CorrelationData=corr,
                          UserProperty=[("op", "double")])
        client.publish(p2p("svc"), str(n).encode(), qos=1, properties=req_props)
        req = service.expect_message()
        assert req.topic == p2p("svc")
        assert req.properties.ResponseTopic == p2p("GID_app@@@req-1")
        assert req.properties.CorrelationData == corr
        assert ("op", "double") in req.properties.UserProperty
        reply_props = props(CorrelationData=req.properties.CorrelationData)
        service.publish(req.properties.ResponseTopic, str(2 * int(req.payload)).encode(),
                        qos=1, properties=reply_props)
        rep = client.expect_message()
        assert rep.topic == p2p("GID_app@@@req-1")
        assert rep.properties.CorrelationData == corr
        assert rep.payload == str(2 * n).encode()
    service.expect_no_message(0.3)
    client.expect_no_message(0.3)
    service.disconnect()
    client.disconnect()


# ------------------------------------------------------------------ 6: $SYS counters

def _sys_values(client, names, timeout=8.0):
    """Read `$SYS/broker/p2p/messages/<name>` values until each has been seen once more."""
    values = {}
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline and len(values) < len(names):
        try:
            m = client.expect_message(timeout=0.5)
        except AssertionError:
            continue
        name = m.topic.rsplit("/", 1)[-1]
        if name in names:
            values[name] = int(m.payload)
    return values


def test_sys_p2p_counters_move(broker):
    """Point 6: $SYS/broker/p2p/messages/{routed,queued,dropped,refused}, published every
    sys_interval seconds, retained; each counter moves with its event."""
    b = broker("sys_interval 1", "p2p_parent_topic app")
    names = ("routed", "queued", "dropped", "refused")
    mon = Paho(b.port, "sys-mon", protocol=MQTTv311)
    mon.connect()
    mon.subscribe("$SYS/broker/p2p/messages/+", 0)
    before = _sys_values(mon, names)
    assert set(before) == set(names), "got only %r" % before
    rx = RawClient(b.port, 5)
    rx.connect("sys-rx")
    off = RawClient(b.port, 4)
    off.connect("sys-off", clean=False)
    off.disconnect()
    tx = RawClient(b.port, 5)
    tx.connect("sys-tx")
    tx.publish(p2p("sys-rx"), b"routed", qos=1, pid=1)
    rx.recv_publish()
    tx.publish(p2p("sys-off"), b"queued", qos=1, pid=2)
    assert tx.publish(p2p("sys-nobody"), b"dropped", qos=1, pid=3).rc == \
        rm.RC_NO_MATCHING_SUBSCRIBERS
    assert tx.publish("bad/p2p/sys-rx", b"refused", qos=1, pid=4).rc == rm.RC_TOPIC_NAME_INVALID

    def moved():
        now = _sys_values(mon, names, timeout=3)
        if set(now) != set(names):
            return None
        delta = {k: now[k] - before[k] for k in names}
        return delta if delta["dropped"] >= 1 and delta["refused"] >= 1 and \
            delta["queued"] >= 1 and delta["routed"] >= 1 else None
    delta = wait_for(moved, timeout=10, interval=0.1, what="$SYS p2p counters to move")
    assert delta["queued"] == 1 and delta["dropped"] == 1 and delta["refused"] == 1
    assert delta["routed"] in (1, 2)  # whether a queued message also counts as routed
    # retained: a subscriber arriving later gets the current values at once
    late = Paho(b.port, "sys-late", protocol=MQTTv311)
    late.connect()
    late.subscribe("$SYS/broker/p2p/messages/dropped", 0)
    m = late.expect_message(timeout=1.0)
    assert m.retain == 1 and int(m.payload) >= 1
    for c in (tx, rx):
        c.disconnect()
    mon.disconnect()
    late.disconnect()


def test_broker_serves_after_p2p_abuse(broker):
    """Odd P2P traffic leaves the broker serving: long client IDs in the topic, many unknown
    targets, refused subscriptions."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("abuser")
    for i in range(200):
        c.send(rm.publish(p2p("nobody-%d" % i + "/x" * (i % 7)), b"", qos=0))
    c.publish(p2p("L" * 60000), b"long", qos=1, pid=1)
    c.subscribe(("app/p2p/" + "z" * 1000, 1))
    c.disconnect()
    assert_serves(b.port, 5)
    assert_serves(b.port, 4)


def test_p2p_qos_not_upgraded_without_subscription(broker):
    """DESIGN: the receiver gets the publish "at the publish's QoS (capped by the broker's
    maximum)". `upgrade_outgoing_qos` raises delivery to a subscription's QoS; a receiver that
    has no subscription has no such QoS, so a QoS 0 P2P message stays QoS 0. With its own QoS 2
    subscription the upgrade applies as for any subscription."""
    b = broker("upgrade_outgoing_qos true")
    rx = RawClient(b.port, 5)
    rx.connect("upg-rx")
    tx = RawClient(b.port, 5)
    tx.connect("upg-tx")
    tx.publish(p2p("upg-rx"), b"zero", qos=0)
    m = rx.recv_publish()
    assert (m.payload, m.qos) == (b"zero", 0)
    assert rx.subscribe((p2p("upg-rx"), 2)).rcs == [2]
    tx.publish(p2p("upg-rx"), b"upgraded", qos=0)
    m = rx.recv_publish()
    assert (m.payload, m.qos) == (b"upgraded", 2)
    tx.disconnect()
    rx.disconnect()


def test_targets_own_wildcard_subscription_does_not_match_p2p(broker):
    """Point 5 / DESIGN: "wildcard filters (`#`, `+/p2p/#`, `app/#`) do not match P2P topics" --
    the target's own included. Only a filter of P2P shape naming its own P2P topic (point 3)
    decides QoS and identifier; a target that holds `#` at QoS 0 (identifier 5) still gets a
    QoS 2 P2P message as if it had no subscription: QoS 2, no identifier, once."""
    b = broker()
    rx = RawClient(b.port, 5)
    rx.connect("wild-rx")
    assert rx.subscribe(("#", 0), props={rm.SUBSCRIPTION_IDENTIFIER: 5}).rcs == [0]
    tx = RawClient(b.port, 5)
    tx.connect("wild-tx")
    tx.publish(p2p("wild-rx"), b"direct", qos=2, pid=1)
    got = drain_publishes(rx, window=1.0)
    assert [(m.payload, m.qos) for m in got] == [(b"direct", 2)]
    assert rm.SUBSCRIPTION_IDENTIFIER not in got[0].props
    tx.disconnect()
    rx.disconnect()
