"""PUBLISH and the QoS 0/1/2 flows in both directions, ordering, exactly-once, the inflight
window (Receive Maximum / max_inflight_messages), payload limits (issue 2, point 3)."""

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, assert_serves, drain_publishes
from support import MQTTv311, MQTTv5, Paho, scaled


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_qos_round_trip(broker, protocol, qos):
    """A message published at QoS n to a QoS 2 subscription arrives once at QoS n (the
    minimum of published and granted QoS [MQTT-3.8.4-8] / 3.1.1 section 3.8.4), with topic and
    payload unchanged (section 4.5)."""
    b = broker()
    sub = Paho(b.port, "qsub", protocol=protocol)
    sub.connect()
    assert sub.subscribe("q/t", 2) == [2]
    pub = Paho(b.port, "qpub", protocol=protocol)
    pub.connect()
    pub.publish("q/t", b"payload-%d" % qos, qos=qos)
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == ("q/t", b"payload-%d" % qos, qos, 0)
    sub.expect_no_message(0.5)
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("pub_qos,sub_qos", [(2, 0), (2, 1), (1, 0), (0, 2)])
def test_delivered_qos_is_minimum(broker, pub_qos, sub_qos):
    """Delivered QoS = min(published QoS, granted QoS) [MQTT-3.8.4-8]."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("minsub")
    assert sub.subscribe(("min/t", sub_qos)).rcs == [sub_qos]
    pub = RawClient(b.port, 4)
    pub.connect("minpub")
    pub.publish("min/t", b"m", qos=pub_qos, pid=3)
    m = sub.recv_publish()
    assert m.qos == min(pub_qos, sub_qos)
    assert (m.pid is None) == (m.qos == 0)  # packet id only at QoS > 0 [MQTT-2.3.1-5]
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_flow_raw(broker, version):
    """QoS 1: the receiver of a PUBLISH answers PUBACK with the same packet id [MQTT-4.3.2-2];
    the broker's outgoing PUBLISH has a non-zero packet id [MQTT-2.3.1-1] and DUP 0 on first
    delivery [MQTT-3.3.1-2]."""
    b = broker()
    sub = RawClient(b.port, version)
    sub.connect("q1sub")
    sub.subscribe(("q1/t", 1))
    pub = RawClient(b.port, version)
    pub.connect("q1pub")
    pub.send(rm.publish("q1/t", b"one", qos=1, pid=777, version=version))
    ack = pub.recv_type(rm.PUBACK)
    assert ack.pid == 777
    assert ack.rc in (0, rm.RC_NO_MATCHING_SUBSCRIBERS) or version == 4
    m = sub.recv_type(rm.PUBLISH)
    assert m.qos == 1 and m.pid != 0 and m.dup is False and m.payload == b"one"
    sub.send(rm.puback(m.pid, version=version))
    sub.expect_nothing(0.5)  # acknowledged: no resend on the live connection
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_flow_raw(broker, version):
    """QoS 2 both ways: PUBLISH -> PUBREC -> PUBREL (flags 0010 [MQTT-3.6.1-1]) -> PUBCOMP,
    each with the PUBLISH's packet id [MQTT-4.3.3-2] (3.1.1), [MQTT-2.2.1-5] (5.0)."""
    b = broker()
    sub = RawClient(b.port, version)
    sub.connect("q2sub")
    sub.subscribe(("q2/t", 2))
    pub = RawClient(b.port, version)
    pub.connect("q2pub")
    pub.send(rm.publish("q2/t", b"two", qos=2, pid=4242, version=version))
    rec = pub.recv_type(rm.PUBREC)
    assert rec.pid == 4242
    pub.send(rm.pubrel(4242, version=version))
    comp = pub.recv_type(rm.PUBCOMP)
    assert comp.pid == 4242 and comp.rc == 0

    m = sub.recv_type(rm.PUBLISH)
    assert m.qos == 2 and m.pid and m.payload == b"two"
    sub.send(rm.pubrec(m.pid, version=version))
    rel = sub.recv_type(rm.PUBREL)
    assert rel.pid == m.pid and rel.flags == 0x02
    sub.send(rm.pubcomp(m.pid, version=version))
    sub.expect_nothing(0.5)
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_outgoing_dup_set_independently(broker, version):
    """The DUP flag of the outgoing PUBLISH depends only on whether it is a retransmission
    [MQTT-3.3.1-3]: a publisher's DUP 1 on first delivery is not passed on."""
    b = broker()
    sub = RawClient(b.port, version)
    sub.connect("dupind-sub")
    sub.subscribe(("dupind/t", 1))
    pub = RawClient(b.port, version)
    pub.connect("dupind-pub")
    pub.publish("dupind/t", b"x", qos=1, pid=12, dup=True)
    m = sub.recv_publish()
    assert m.payload == b"x" and m.dup is False
    pub.disconnect()
    sub.disconnect()


def test_outgoing_packet_ids_unique(broker):
    """Packet identifiers of the broker's unacknowledged PUBLISHes are non-zero and distinct
    [MQTT-2.2.1-4] (5.0) / [MQTT-2.3.1-2] (3.1.1)."""
    b = broker("max_inflight_messages 100")
    sub = RawClient(b.port, 5)
    sub.connect("pids-sub", props={rm.RECEIVE_MAXIMUM: 50})
    sub.subscribe(("pids/t", 2))
    pub = RawClient(b.port, 5)
    pub.connect("pids-pub")
    for i in range(30):
        pub.publish("pids/t", b"%d" % i, qos=1 + i % 2, pid=i + 1)
    got = [sub.recv_type(rm.PUBLISH) for _ in range(30)]
    pids = [m.pid for m in got]
    assert 0 not in pids and len(set(pids)) == 30, pids
    for m in got:
        sub.ack(m)
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_duplicate_publish_delivered_once(broker, version):
    """Exactly once: a PUBLISH resent with DUP and the same packet id before PUBREL is not
    delivered again [MQTT-4.3.3-10] (5.0) / [MQTT-4.3.3-2] (3.1.1); after PUBCOMP the same
    packet id starts a new message [MQTT-4.3.3-2] (3.1.1), section 4.3.3 (5.0)."""
    b = broker()
    sub = RawClient(b.port, version)
    sub.connect("eo-sub")
    sub.subscribe(("eo/t", 2))
    pub = RawClient(b.port, version)
    pub.connect("eo-pub")
    pub.send(rm.publish("eo/t", b"once", qos=2, pid=7, version=version))
    assert pub.recv_type(rm.PUBREC).pid == 7
    pub.send(rm.publish("eo/t", b"once", qos=2, pid=7, dup=True, version=version))
    assert pub.recv_type(rm.PUBREC).pid == 7
    pub.send(rm.pubrel(7, version=version))
    assert pub.recv_type(rm.PUBCOMP).pid == 7
    got = drain_publishes(sub, window=1.0)
    assert [m.payload for m in got] == [b"once"]
    # same packet id again after PUBCOMP is a new application message
    pub.publish("eo/t", b"second", qos=2, pid=7)
    got = drain_publishes(sub, window=1.0)
    assert [m.payload for m in got] == [b"second"]
    pub.disconnect()
    sub.disconnect()


def test_pubrel_unknown_packet_id(broker):
    """PUBREL for a packet id with no QoS 2 state is answered with PUBCOMP; MQTT 5 may say
    0x92 Packet Identifier not found [MQTT-4.3.3-11] (5.0) / [MQTT-4.3.3-2] (3.1.1); the
    connection stays usable."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("pubrel-unknown")
    c.send(rm.pubrel(999))
    comp = c.recv_type(rm.PUBCOMP)
    assert comp.pid == 999 and comp.rc in (0, rm.RC_PACKET_ID_NOT_FOUND)
    assert c.ping().type == rm.PINGRESP
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_qos1_order_preserved(broker, version):
    """Messages from one publisher on one topic keep their order [MQTT-4.6.0-5/6]."""
    b = broker()
    sub = RawClient(b.port, version)
    sub.connect("ord-sub")
    sub.subscribe(("ord/t", 1))
    pub = RawClient(b.port, version)
    pub.connect("ord-pub")
    for i in range(50):
        pub.send(rm.publish("ord/t", b"%d" % i, qos=1, pid=i + 1, version=version))
    for i in range(50):
        pub.recv_until(rm.PUBACK)
    got = [sub.recv_publish().payload for _ in range(50)]
    assert got == [b"%d" % i for i in range(50)]
    pub.disconnect()
    sub.disconnect()


def test_mixed_qos_order_and_count(broker):
    """Many messages at mixed QoS all arrive exactly once (QoS 1 may duplicate only on
    reconnect) and in order for each QoS [MQTT-4.6.0-5]."""
    b = broker()
    sub = Paho(b.port, "mix-sub", protocol=MQTTv5)
    sub.connect()
    sub.subscribe("mix/#", 2)
    pub = Paho(b.port, "mix-pub", protocol=MQTTv5)
    pub.connect()
    sent = []
    for i in range(60):
        q = i % 3
        pub.publish("mix/%d" % q, b"%d" % i, qos=q)
        sent.append((q, b"%d" % i))
    got = sub.expect_messages(60, timeout=10)
    for q in range(3):
        assert [m.payload for m in got if m.qos == q] == [p for (qq, p) in sent if qq == q]
    pub.disconnect()
    sub.disconnect()


def test_empty_payload_delivered(broker):
    """A zero-length payload is a valid application message (section 3.3.3)."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("empty-sub")
    sub.subscribe(("empty/t", 1))
    pub = RawClient(b.port, 4)
    pub.connect("empty-pub")
    pub.publish("empty/t", b"", qos=1)
    m = sub.recv_publish()
    assert m.payload == b"" and m.topic == "empty/t"
    pub.disconnect()
    sub.disconnect()


def test_large_payload_intact(broker):
    """A 1 MiB payload (remaining length needing 3 varint bytes) arrives byte for byte
    (section 1.5.5)."""
    b = broker()
    payload = bytes(range(256)) * 4096
    sub = Paho(b.port, "big-sub")
    sub.connect()
    sub.subscribe("big/t", 1)
    pub = Paho(b.port, "big-pub")
    pub.connect()
    pub.publish("big/t", payload, qos=1, timeout=20)
    m = sub.expect_message(timeout=20)
    assert m.payload == payload
    pub.disconnect()
    sub.disconnect()


def test_publish_packet_split_across_writes(broker):
    """The broker reassembles a packet that arrives one byte at a time (TCP is a stream)."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("split-sub")
    sub.subscribe(("split/t", 0))
    pub = RawClient(b.port, 4)
    pub.connect("split-pub")
    data = rm.publish("split/t", b"x" * 300, qos=1, pid=5, version=4)
    for i in range(len(data)):
        pub.send(data[i:i + 1])
    assert pub.recv_type(rm.PUBACK).pid == 5
    assert sub.recv_publish().payload == b"x" * 300
    pub.disconnect()
    sub.disconnect()


def test_many_packets_in_one_write(broker):
    """Several packets coalesced in one TCP segment are all processed (section 4.2: a byte stream)."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("coal-sub")
    sub.subscribe(("coal/t", 1))
    pub = RawClient(b.port, 4)
    pub.send(rm.connect("coal-pub", version=4)
             + b"".join(rm.publish("coal/t", b"%d" % i, qos=1, pid=i + 1, version=4)
                        for i in range(20))
             + rm.pingreq())
    assert pub.recv_type(rm.CONNACK).rc == 0
    acks = [pub.recv_type(rm.PUBACK).pid for _ in range(20)]
    assert acks == list(range(1, 21))
    assert pub.recv_type(rm.PINGRESP)
    assert [sub.recv_publish().payload for _ in range(20)] == [b"%d" % i for i in range(20)]
    pub.disconnect()
    sub.disconnect()


def test_fan_out_to_many_subscribers(broker):
    """One message reaches every one of 60 subscribers once (one refcounted message, many
    deliveries) (section 3.3.4: sent to every client with a matching subscription)."""
    b = broker()
    subs = []
    for i in range(60):
        c = RawClient(b.port, 5 if i % 2 else 4)
        c.connect("fan%d" % i)
        c.subscribe(("fan/+", i % 3))
        subs.append(c)
    pub = RawClient(b.port, 5)
    pub.connect("fan-pub")
    pub.publish("fan/t", b"to everyone" * 100, qos=2)
    for i, c in enumerate(subs):
        m = c.recv_publish()
        assert m.payload == b"to everyone" * 100 and m.qos == i % 3
    for c in subs:
        c.disconnect()
    pub.disconnect()


def test_bulk_qos1_no_loss_no_duplicates(broker):
    """3000 QoS 1 messages through the default inflight window to one subscriber: none lost,
    none duplicated, in order [MQTT-4.6.0-6]."""
    b = broker()
    sub = RawClient(b.port, 5)
    sub.connect("bulk-sub")
    sub.subscribe(("bulk/t", 1))
    pub = RawClient(b.port, 5)
    pub.connect("bulk-pub")
    n, got = 3000, []
    for start in range(0, n, 500):
        pub.send(b"".join(rm.publish("bulk/t", b"%d" % i, qos=1, pid=(i % 65535) + 1)
                          for i in range(start, start + 500)))
        for _ in range(500):
            pub.recv_until(rm.PUBACK)
        while len(got) < start + 500:
            got.append(int(sub.recv_publish().payload))
    assert got == list(range(n))
    sub.expect_nothing(0.5)
    pub.disconnect()
    sub.disconnect()


# ---------------------------------------------------------------- inflight window

def _publisher(port, n, topic, qos=1, version=4):
    pub = RawClient(port, version)
    pub.connect("win-pub")
    for i in range(n):
        pub.publish(topic, b"%d" % i, qos=qos, pid=i + 1)
    return pub


def test_receive_maximum_limits_unacked_qos1(broker):
    """The broker sends no more than the client's Receive Maximum unacknowledged QoS 1/2
    PUBLISHes [MQTT-3.3.4-9]; each PUBACK opens the window again; nothing is lost."""
    b = broker()
    sub = RawClient(b.port, 5)
    sub.connect("rm-sub", props={rm.RECEIVE_MAXIMUM: 2})
    sub.subscribe(("rm/t", 1))
    pub = _publisher(b.port, 6, "rm/t")
    first = [sub.recv_type(rm.PUBLISH) for _ in range(2)]
    sub.expect_nothing(1.0)
    got = list(first)
    for i in range(4):
        sub.send(rm.puback(got[i].pid))
        got.append(sub.recv_type(rm.PUBLISH))
    assert [m.payload for m in got] == [b"%d" % i for i in range(6)]
    for m in got[4:]:
        sub.send(rm.puback(m.pid))
    sub.expect_nothing(0.5)
    pub.disconnect()
    sub.disconnect()


def test_receive_maximum_qos2_slot_released_on_pubcomp(broker):
    """For QoS 2 the slot of the window is freed by PUBCOMP, not by PUBREC [MQTT-3.3.4-9,
    section 4.9]."""
    b = broker()
    sub = RawClient(b.port, 5)
    sub.connect("rm2-sub", props={rm.RECEIVE_MAXIMUM: 1})
    sub.subscribe(("rm2/t", 2))
    pub = _publisher(b.port, 2, "rm2/t", qos=2)
    m1 = sub.recv_type(rm.PUBLISH)
    sub.send(rm.pubrec(m1.pid))
    assert sub.recv_type(rm.PUBREL).pid == m1.pid
    sub.expect_nothing(1.0)  # PUBREC alone does not free the slot
    sub.send(rm.pubcomp(m1.pid))
    m2 = sub.recv_type(rm.PUBLISH)
    assert m2.payload == b"1"
    sub.ack(m2)
    pub.disconnect()
    sub.disconnect()


def test_max_inflight_messages_limits_v311(broker):
    """max_inflight_messages 2 bounds the QoS 1 messages in flight to a 3.1.1 client; the rest
    follow as acknowledgements arrive, in order [MQTT-4.6.0-6] (3.1.1 [MQTT-4.6.0-5])."""
    b = broker("max_inflight_messages 2")
    sub = RawClient(b.port, 4)
    sub.connect("mi-sub")
    sub.subscribe(("mi/t", 1))
    pub = _publisher(b.port, 5, "mi/t")
    got = [sub.recv_type(rm.PUBLISH) for _ in range(2)]
    sub.expect_nothing(1.0)
    for i in range(3):
        sub.send(rm.puback(got[i].pid, version=4))
        got.append(sub.recv_type(rm.PUBLISH))
    assert [m.payload for m in got] == [b"%d" % i for i in range(5)]
    pub.disconnect()
    sub.disconnect()


def test_qos0_not_limited_by_receive_maximum(broker):
    """Receive Maximum applies only to QoS 1 and 2 [MQTT-3.3.4-9]: QoS 0 messages flow while
    the window is full."""
    b = broker()
    sub = RawClient(b.port, 5)
    sub.connect("rm0-sub", props={rm.RECEIVE_MAXIMUM: 1})
    sub.subscribe(("rm0/q1", 1))
    sub.subscribe(("rm0/q0", 0), pid=2)
    pub = RawClient(b.port, 5)
    pub.connect("rm0-pub")
    pub.publish("rm0/q1", b"a", qos=1, pid=1)
    pub.publish("rm0/q1", b"b", qos=1, pid=2)
    m = sub.recv_type(rm.PUBLISH)
    assert m.payload == b"a"
    pub.publish("rm0/q0", b"zero", qos=0)
    z = sub.recv_type(rm.PUBLISH)
    assert z.payload == b"zero" and z.qos == 0
    sub.send(rm.puback(m.pid))
    assert sub.recv_type(rm.PUBLISH).payload == b"b"
    pub.disconnect()
    sub.disconnect()


def test_inbound_receive_maximum_exceeded(broker):
    """The broker's own Receive Maximum (CONNACK; 65535 when absent): a client with more
    unacknowledged QoS 2 PUBLISHes in flight than that gets DISCONNECT 0x93 Receive Maximum
    exceeded [MQTT-3.3.4-7], [MQTT-3.3.4-8] (section 4.9). With a window of 65535 every packet
    identifier is in use, so the window cannot be exceeded: skipped then."""
    b = broker("max_inflight_messages 3")
    c = RawClient(b.port, 5)
    ack = c.connect("rmx")
    limit = ack.props.get(rm.RECEIVE_MAXIMUM, 65535)
    if limit >= 65535:
        pytest.skip("broker advertises Receive Maximum 65535: cannot be exceeded")
    pid = 0
    while pid < limit:  # in batches, reading the PUBRECs so that neither side blocks
        batch = min(1000, limit - pid)
        c.send(b"".join(rm.publish("rmx/t", b"", qos=2, pid=pid + k + 1)
                        for k in range(batch)))
        for k in range(batch):
            rec = c.recv_type(rm.PUBREC)
            assert rec.pid == pid + k + 1 and rec.rc < 0x80, rec
        pid += batch
    c.send(rm.publish("rmx/t", b"", qos=2, pid=limit + 1))  # no PUBREL sent: one too many
    c.expect_disconnect(rm.RC_RECEIVE_MAXIMUM_EXCEEDED)
    assert_serves(b.port)


# ---------------------------------------------------------------- limits

def test_message_size_limit_drops_oversize_payload(broker):
    """message_size_limit 100: a 200-byte payload is not delivered to subscribers; a small
    one afterwards is (Mosquitto's message_size_limit semantics)."""
    b = broker("message_size_limit 100")
    sub = RawClient(b.port, 4)
    sub.connect("msl-sub")
    sub.subscribe(("msl/t", 1))
    pub = RawClient(b.port, 5)
    pub.connect("msl-pub")
    pub.send(rm.publish("msl/t", b"x" * 200, qos=1, pid=1))
    try:
        ack = pub.recv_type(rm.PUBACK, timeout=scaled(3))
        assert ack.rc >= 0x80 or ack.rc == 0, ack  # may report 0x95/0x97
    except rm.Closed:
        pass
    pub2 = RawClient(b.port, 4)
    pub2.connect("msl-pub2")
    pub2.publish("msl/t", b"small", qos=1)
    m = sub.recv_publish()
    assert m.payload == b"small"
    pub2.disconnect()
    sub.disconnect()


def test_maximum_qos_caps_subscription_and_rejects_qos2_publish(broker):
    """maximum_qos 1: SUBSCRIBE at QoS 2 is granted QoS 1 [MQTT-3.2.2-10], [MQTT-3.2.2-9]; an MQTT 5 client
    publishing at QoS 2 is disconnected with 0x9B QoS not supported [MQTT-3.2.2-11]."""
    b = broker("maximum_qos 1")
    sub = RawClient(b.port, 5)
    ack = sub.connect("mq-sub")
    assert ack.props.get(rm.MAXIMUM_QOS) == 1
    assert sub.subscribe(("mq/t", 2)).rcs == [1]
    pub = RawClient(b.port, 5)
    pub.connect("mq-pub")
    pub.send(rm.publish("mq/t", b"q2", qos=2, pid=1))
    pub.expect_disconnect(rm.RC_QOS_NOT_SUPPORTED)
    p1 = RawClient(b.port, 5)
    p1.connect("mq-pub1")
    p1.publish("mq/t", b"q1", qos=1)
    m = sub.recv_publish()
    assert m.payload == b"q1" and m.qos == 1
    p1.disconnect()
    sub.disconnect()
