"""Sessions: persistence across connections, Session Expiry Interval, resending unacknowledged
QoS 1/2 messages with DUP, exactly-once state across reconnects, offline queueing and its
limits (issue 2, point 3)."""

import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, drain_publishes
from support import MQTTv5, Paho, props
from paho.mqtt.packettypes import PacketTypes

PERSIST5 = {rm.SESSION_EXPIRY_INTERVAL: 300}


def _persistent(port, cid, version, expiry=300, **kw):
    """Connect with a session that outlives the connection."""
    c = RawClient(port, version)
    p = {rm.SESSION_EXPIRY_INTERVAL: expiry} if version == 5 else None
    ack = c.connect(cid, clean=False, props=p, **kw)
    return c, ack


def _pub(port, topic, payloads, qos=1, version=4, props=None):
    p = RawClient(port, version)
    p.connect("publisher")
    for i, pl in enumerate(payloads):
        p.publish(topic, pl, qos=qos, pid=i + 1, props=props)
    p.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_subscriptions_survive_reconnect(broker, version):
    """A persistent session keeps its subscriptions [MQTT-3.1.2-4] (3.1.1) / session state
    (5.0 section 4.1): after reconnecting without subscribing, messages still arrive."""
    b = broker()
    c, _ = _persistent(b.port, "keepsubs", version)
    c.subscribe(("ks/t", 1))
    c.disconnect()
    c, ack = _persistent(b.port, "keepsubs", version)
    assert ack.session_present is True
    _pub(b.port, "ks/t", [b"still subscribed"])
    assert c.recv_publish().payload == b"still subscribed"
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_offline_messages_queued(broker, version):
    """QoS 1 and 2 messages published while a persistent session is offline are stored and
    delivered, in order, on reconnection [MQTT-3.1.2-5] (3.1.1), section 4.1 (5.0)."""
    b = broker()
    c, _ = _persistent(b.port, "offline", version)
    c.subscribe(("off/t", 2))
    c.disconnect()
    _pub(b.port, "off/t", [b"a", b"b"], qos=1)
    _pub(b.port, "off/t", [b"c"], qos=2)
    c, ack = _persistent(b.port, "offline", version)
    assert ack.session_present is True
    got = drain_publishes(c, window=1.0)
    assert [(m.payload, m.qos) for m in got] == [(b"a", 1), (b"b", 1), (b"c", 2)]
    c.disconnect()


def test_offline_queue_paho(broker):
    """The same with paho 3.1.1 clean_session=False [MQTT-3.1.2-5]."""
    b = broker()
    c = Paho(b.port, "paho-offline", clean=False)
    c.connect()
    c.subscribe("poff/t", 1)
    c.disconnect()
    pub = Paho(b.port, "paho-offline-pub")
    pub.connect()
    for i in range(5):
        pub.publish("poff/t", b"%d" % i, qos=1)
    pub.disconnect()
    c = Paho(b.port, "paho-offline", clean=False)
    rc, sp, _ = c.connect()
    assert sp == 1
    got = c.expect_messages(5)
    assert [m.payload for m in got] == [b"%d" % i for i in range(5)]
    c.disconnect()


def test_clean_session_discards_state(broker):
    """Clean Session 1 discards the previous session: no queued messages and no
    subscriptions [MQTT-3.1.2-6]."""
    b = broker()
    c, _ = _persistent(b.port, "discard", 4)
    c.subscribe(("disc/t", 1))
    c.disconnect()
    _pub(b.port, "disc/t", [b"queued"])
    c = RawClient(b.port, 4)
    assert c.connect("discard", clean=True).session_present is False
    _pub(b.port, "disc/t", [b"live"])
    c.expect_nothing(1.0)
    c.disconnect()


def test_v5_session_expiry_zero_ends_session(broker):
    """MQTT 5 with no Session Expiry Interval (0): the session ends when the connection
    closes (section 3.1.2.11.2, [MQTT-3.1.2-23] only keeps it for a non-zero interval);
    Clean Start 0 then finds nothing."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("exp0", clean=False)
    c.subscribe(("exp0/t", 1))
    c.disconnect()
    c = RawClient(b.port, 5)
    assert c.connect("exp0", clean=False).session_present is False
    c.disconnect()


def test_v5_session_expiry_interval(broker):
    """The session is kept for Session Expiry Interval seconds after the connection closes
    and discarded afterwards [MQTT-3.1.2-23]."""
    b = broker()
    c, _ = _persistent(b.port, "exp2", 5, expiry=2)
    c.subscribe(("exp2/t", 1))
    c.disconnect()
    time.sleep(0.3)
    c, ack = _persistent(b.port, "exp2", 5, expiry=2)
    assert ack.session_present is True
    c.disconnect()
    time.sleep(3.5)
    c, ack = _persistent(b.port, "exp2", 5, expiry=2)
    assert ack.session_present is False
    c.disconnect()


def test_v5_disconnect_sets_session_expiry(broker):
    """The Session Expiry Interval in DISCONNECT replaces the CONNECT's one
    (section 3.14.2.2.2): setting 0 ends the session at once."""
    b = broker()
    c, _ = _persistent(b.port, "dexp", 5, expiry=300)
    c.subscribe(("dexp/t", 1))
    c.disconnect(rc=0, props={rm.SESSION_EXPIRY_INTERVAL: 0})
    time.sleep(0.3)
    c, ack = _persistent(b.port, "dexp", 5)
    assert ack.session_present is False
    c.disconnect()


def test_v5_disconnect_expiry_from_zero_is_protocol_error(broker):
    """A DISCONNECT setting a non-zero Session Expiry Interval when the CONNECT had 0 is a
    Protocol Error [MQTT-3.14.2-2]: the session still ends with the connection."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("dexp0", clean=False)
    c.subscribe(("dexp0/t", 1))
    c.send(rm.disconnect(0, {rm.SESSION_EXPIRY_INTERVAL: 300}))
    c.expect_disconnect(rm.RC_PROTOCOL_ERROR)
    c = RawClient(b.port, 5)
    assert c.connect("dexp0", clean=False).session_present is False
    c.disconnect()


def test_paho_v5_session_expiry(broker):
    """paho MQTT 5: Clean Start 0 + Session Expiry keeps the session [MQTT-3.2.2-3]."""
    b = broker()
    p = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    c = Paho(b.port, "paho5-sess", protocol=MQTTv5, clean=False)
    c.connect(properties=p)
    c.subscribe("p5s/t", 1)
    c.disconnect()
    pub = Paho(b.port, "paho5-pub", protocol=MQTTv5)
    pub.connect()
    pub.publish("p5s/t", b"while away", qos=1)
    pub.disconnect()
    c = Paho(b.port, "paho5-sess", protocol=MQTTv5, clean=False)
    rc, sp, _ = c.connect(properties=p)
    assert sp == 1
    assert c.expect_message().payload == b"while away"
    c.disconnect()


# ---------------------------------------------------------------- resend with DUP

@pytest.mark.parametrize("version", [4, 5])
def test_unacked_qos1_resent_with_dup(broker, version):
    """An unacknowledged QoS 1 PUBLISH is resent on reconnection with DUP 1 and the same
    packet id [MQTT-4.4.0-1], [MQTT-3.3.1-1]."""
    b = broker()
    c, _ = _persistent(b.port, "dup1", version)
    c.subscribe(("dup1/t", 1))
    _pub(b.port, "dup1/t", [b"unacked"])
    first = c.recv_type(rm.PUBLISH)
    assert first.dup is False
    c.close()  # no PUBACK
    time.sleep(0.2)
    c, ack = _persistent(b.port, "dup1", version)
    assert ack.session_present is True
    again = c.recv_type(rm.PUBLISH)
    assert (again.payload, again.pid, again.dup, again.qos) == (b"unacked", first.pid, True, 1)
    c.send(rm.puback(again.pid, version=version))
    c.expect_nothing(0.5)
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_unacked_qos2_publish_resent_with_dup(broker, version):
    """QoS 2 PUBLISH without PUBREC is resent with DUP 1 on reconnection [MQTT-4.4.0-1]."""
    b = broker()
    c, _ = _persistent(b.port, "dup2", version)
    c.subscribe(("dup2/t", 2))
    _pub(b.port, "dup2/t", [b"q2"], qos=2)
    first = c.recv_type(rm.PUBLISH)
    c.close()
    time.sleep(0.2)
    c, _ = _persistent(b.port, "dup2", version)
    again = c.recv_type(rm.PUBLISH)
    assert (again.pid, again.dup, again.qos) == (first.pid, True, 2)
    c.ack(again)
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_pubrel_resent_after_reconnect(broker, version):
    """After PUBREC the broker resends PUBREL (not the PUBLISH) on reconnection
    [MQTT-4.4.0-1], and the message is not delivered twice [MQTT-4.3.3-10]."""
    b = broker()
    c, _ = _persistent(b.port, "rel", version)
    c.subscribe(("rel/t", 2))
    _pub(b.port, "rel/t", [b"q2"], qos=2)
    m = c.recv_type(rm.PUBLISH)
    c.send(rm.pubrec(m.pid, version=version))
    assert c.recv_type(rm.PUBREL).pid == m.pid
    c.close()  # no PUBCOMP
    time.sleep(0.2)
    c, _ = _persistent(b.port, "rel", version)
    rel = c.recv_type(rm.PUBREL)
    assert rel.pid == m.pid
    c.send(rm.pubcomp(m.pid, version=version))
    c.expect_nothing(0.7)
    c.disconnect()


def test_resend_order_then_new_messages(broker):
    """Unacknowledged messages are resent in their original order, before newer queued ones
    [MQTT-4.6.0-1]."""
    b = broker()
    c, _ = _persistent(b.port, "order", 4, )
    c.subscribe(("order/t", 1))
    _pub(b.port, "order/t", [b"1", b"2", b"3"])
    got = [c.recv_type(rm.PUBLISH) for _ in range(3)]
    c.close()
    _pub(b.port, "order/t", [b"4", b"5"])
    c, _ = _persistent(b.port, "order", 4)
    got2 = drain_publishes(c, window=1.0)
    assert [m.payload for m in got2] == [b"1", b"2", b"3", b"4", b"5"]
    assert [m.dup for m in got2[:3]] == [True] * 3
    assert [m.pid for m in got2[:3]] == [m.pid for m in got]
    c.disconnect()


def test_inbound_qos2_state_survives_reconnect(broker):
    """The broker keeps its side of an inbound QoS 2 flow in the session: a publisher that
    reconnects and resends the PUBLISH (DUP) then PUBREL gets PUBCOMP, and subscribers get the
    message exactly once [MQTT-4.3.3-10] (3.1.1 [MQTT-4.3.3-2]), [MQTT-4.4.0-1]."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("in2-sub")
    sub.subscribe(("in2/t", 2))
    p, _ = _persistent(b.port, "in2-pub", 4)
    p.send(rm.publish("in2/t", b"exactly once", qos=2, pid=33, version=4))
    assert p.recv_type(rm.PUBREC).pid == 33
    p.close()
    time.sleep(0.2)
    p, ack = _persistent(b.port, "in2-pub", 4)
    assert ack.session_present is True
    p.send(rm.publish("in2/t", b"exactly once", qos=2, pid=33, dup=True, version=4))
    assert p.recv_type(rm.PUBREC).pid == 33
    p.send(rm.pubrel(33, version=4))
    assert p.recv_type(rm.PUBCOMP).pid == 33
    got = drain_publishes(sub, window=1.0)
    assert [m.payload for m in got] == [b"exactly once"]
    p.disconnect()
    sub.disconnect()


def test_takeover_resends_inflight(broker):
    """A takeover with a persistent session resends the old connection's unacknowledged
    messages on the new one with DUP [MQTT-4.4.0-1]."""
    b = broker()
    old, _ = _persistent(b.port, "tk", 5)
    old.subscribe(("tk/t", 1))
    _pub(b.port, "tk/t", [b"inflight"])
    m = old.recv_type(rm.PUBLISH)
    new, ack = _persistent(b.port, "tk", 5)
    assert ack.session_present is True
    again = new.recv_type(rm.PUBLISH)
    assert (again.payload, again.dup, again.pid) == (b"inflight", True, m.pid)
    new.send(rm.puback(again.pid))
    old.close()
    new.disconnect()


# ---------------------------------------------------------------- queue limits

def test_max_queued_messages(broker):
    """max_queued_messages 2 bounds what is stored for an offline session: of 6 messages at
    most 2 (plus the inflight window, set to 1 here) arrive, at least one does."""
    b = broker("max_queued_messages 2", "max_inflight_messages 1")
    c, _ = _persistent(b.port, "mq", 4)
    c.subscribe(("mq/t", 1))
    c.disconnect()
    # MQTT 5: refused messages get 0x97 (a 3.1.1 publisher would be disconnected at the first
    # one, queue_full_policy refuse).
    _pub(b.port, "mq/t", [b"%d" % i for i in range(6)], version=5)
    c, _ = _persistent(b.port, "mq", 4)
    got = drain_publishes(c, window=1.0)
    assert 1 <= len(got) <= 3, [m.payload for m in got]
    payloads = [int(m.payload) for m in got]
    assert payloads == sorted(payloads)
    c.disconnect()


def test_max_queued_bytes(broker):
    """max_queued_bytes bounds the payload bytes stored for an offline session: of ten
    100-byte messages with a 250-byte limit, not all arrive."""
    b = broker("max_queued_bytes 250", "max_inflight_messages 1")
    c, _ = _persistent(b.port, "mqb", 4)
    c.subscribe(("mqb/t", 1))
    c.disconnect()
    _pub(b.port, "mqb/t", [bytes([65 + i]) * 100 for i in range(10)], version=5)
    c, _ = _persistent(b.port, "mqb", 4)
    got = drain_publishes(c, window=1.0)
    assert 1 <= len(got) <= 4, len(got)
    c.disconnect()


def test_queue_survives_many_sessions(broker):
    """Many persistent sessions each keep their own queue [MQTT-3.1.2-5]."""
    b = broker()
    clients = []
    for i in range(20):
        c, _ = _persistent(b.port, "many%d" % i, 4)
        c.subscribe(("many/%d" % i, 1))
        c.disconnect()
    p = RawClient(b.port, 4)
    p.connect("many-pub")
    for i in range(20):
        p.publish("many/%d" % i, b"for %d" % i, qos=1, pid=i + 1)
    p.disconnect()
    for i in range(20):
        c, ack = _persistent(b.port, "many%d" % i, 4)
        assert ack.session_present
        assert c.recv_publish().payload == b"for %d" % i
        clients.append(c)
    for c in clients:
        c.disconnect()


def test_persistent_client_expiration_accepted(broker):
    """persistent_client_expiration (Mosquitto syntax, e.g. 1h) is accepted and does not
    expire a session early."""
    b = broker("persistent_client_expiration 1h")
    c, _ = _persistent(b.port, "pce", 4)
    c.subscribe(("pce/t", 1))
    c.disconnect()
    c, ack = _persistent(b.port, "pce", 4)
    assert ack.session_present is True
    c.disconnect()
