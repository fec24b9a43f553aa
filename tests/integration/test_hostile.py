"""Hostile clients (issue 9, point 2): silent connections, packets before CONNECT, slow
senders, huge announced lengths, unbounded subscriptions and topic aliases, and client ID
takeover storms. Each test keeps a well-behaved client (Bystander) receiving beside the
hostile one."""

import threading
import time

import pytest

import rawmqtt as rm
from bystander import Bystander, SysWatch
from rawmqtt import RawClient, assert_serves
from support import MQTTv311, scaled


def test_silent_connection_closed_after_connect_timeout(broker):
    """A connection that never sends CONNECT is closed after connect_timeout (MQTT 5 section
    3.1.4: the server SHOULD close it); the bystander is unaffected and the count shows."""
    b = broker("connect_timeout 1", "sys_interval 1")
    good = Bystander(b.port)
    sys = SysWatch(b.port)
    silent = [RawClient(b.port, 5) for _ in range(5)]
    t0 = time.monotonic()
    for s in silent:
        assert s.expect_closed(timeout=scaled(5)) == []
    took = time.monotonic() - t0
    assert 0.8 <= took <= scaled(4), "closed after %.1f s with connect_timeout 1" % took
    good.check(3)
    sys.wait_value("$SYS/broker/connections/closed/connect_timeout", lambda v: v >= 5)


def test_connect_dribbled_slower_than_connect_timeout(broker):
    """A CONNECT sent one byte every 0.25 s cannot hold its connection beyond connect_timeout:
    the clock runs from accept, not from the last byte."""
    b = broker("connect_timeout 1")
    good = Bystander(b.port)
    c = RawClient(b.port, 4)
    data = rm.connect("dribble", version=4)
    t0 = time.monotonic()
    closed = False
    for i in range(len(data)):
        try:
            c.send(data[i:i + 1])
        except OSError:
            closed = True
            break
        if not c.is_open(window=0.25):
            closed = True
            break
    assert closed, "a CONNECT dribbled over %.1f s was accepted" % (time.monotonic() - t0)
    assert time.monotonic() - t0 <= scaled(4)
    good.check(3)


@pytest.mark.parametrize("first", ["publish", "subscribe", "pingreq"])
def test_packet_before_connect_closes_only_that_connection(broker, first):
    """The first packet must be CONNECT [MQTT-3.1.0-1]: anything else closes that connection
    at once; the bystander keeps receiving."""
    b = broker()
    good = Bystander(b.port)
    pkt = {"publish": rm.publish("x/y", b"early", version=4),
           "subscribe": rm.subscribe(1, [("x/#", 1)], version=4),
           "pingreq": rm.pingreq()}[first]
    for _ in range(5):
        c = RawClient(b.port, 4)
        c.send(pkt)
        assert c.expect_closed() == []
        c.close()
    good.check(3)


@pytest.mark.parametrize("version", [4, 5])
def test_slow_sender_closed_after_packet_timeout(broker, version):
    """A client dribbling one packet a byte every 0.2 s is closed once that packet has been
    arriving for packet_timeout (MQTT 5: DISCONNECT 0x8D); meanwhile the bystander's traffic
    flows."""
    b = broker("packet_timeout 1", "sys_interval 1")
    good = Bystander(b.port)
    sys = SysWatch(b.port)
    c = RawClient(b.port, version)
    c.connect("slow-%d" % version)
    data = rm.publish("slow/t", b"x" * 200, qos=0, version=version)
    good.start_flow(interval=0.02)
    t0 = time.monotonic()
    sent = 0
    try:
        while sent < len(data) and time.monotonic() - t0 < scaled(10):
            c.send(data[sent:sent + 1])
            sent += 1
            if not c.is_open(window=0.2):
                break
    except OSError:
        pass
    took = time.monotonic() - t0
    assert sent < len(data), "a packet dribbled over %.1f s was accepted" % took
    assert took >= 0.9, "closed after %.1f s with packet_timeout 1" % took
    got = c.expect_closed(timeout=scaled(5)) if not c.eof else []
    if version == 5 and got:
        assert got[-1].type == rm.DISCONNECT and got[-1].rc == rm.RC_KEEP_ALIVE_TIMEOUT, got
    assert good.stop_flow() > 10
    sys.wait_value("$SYS/broker/connections/closed/slow_sender", lambda v: v >= 1)


def test_steady_sender_of_many_packets_is_not_a_slow_sender(broker):
    """packet_timeout is per packet: a client whose packets each arrive whole (though split
    across writes) keeps its connection for longer than packet_timeout in total."""
    b = broker("packet_timeout 1")
    c = RawClient(b.port, 5)
    c.connect("steady")
    c.subscribe(("steady/t", 0))
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 2.5:
        data = rm.publish("steady/t", b"p%d" % n, version=5)
        c.send(data[:3])
        time.sleep(0.1)
        c.send(data[3:])
        assert c.recv_publish().payload == b"p%d" % n
        n += 1
    assert c.is_open()
    c.disconnect()


def test_slow_senders_hold_little_memory(broker):
    """200 connections each stopped in the middle of a packet hold a few KiB each, not a read
    buffer of 64 KiB: the heap grows by well under 200 x 64 KiB."""
    b = broker("packet_timeout 0", "sys_interval 1")
    good = Bystander(b.port)
    sys = SysWatch(b.port)
    time.sleep(1.5)
    before = sys.wait_value("$SYS/broker/heap/current", lambda v: v > 0)
    slow = []
    for i in range(200):
        c = RawClient(b.port, 4)
        c.connect("held-%d" % i)
        c.send(b"\x30" + rm.varint(100000) + b"\x00\x03a/b")  # 100 kB promised, 6 sent
        slow.append(c)
    good.check(3)
    time.sleep(2.5)  # two $SYS periods
    after = sys.wait_value("$SYS/broker/heap/current", lambda v: v > 0)
    grown = after - before
    assert grown < 200 * 24 * 1024, "heap grew by %d bytes for 200 stalled packets" % grown
    for c in slow:
        assert c.is_open(window=0.01)
        c.close()
    good.check(3)


@pytest.mark.parametrize("version", [4, 5])
def test_huge_remaining_length_refused_at_once(broker, version):
    """A header promising 256 MB beyond max_packet_size is refused as soon as it is read,
    without waiting for the body (MQTT 5: DISCONNECT 0x95, section 3.2.2.3.6)."""
    b = broker("max_packet_size 10000")
    good = Bystander(b.port)
    c = RawClient(b.port, version)
    c.connect("huge-%d" % version)
    t0 = time.monotonic()
    c.send(b"\x30" + rm.varint(256 * 1024 * 1024 - 1) + b"\x00\x01t")
    got = c.expect_closed(timeout=scaled(3))
    assert time.monotonic() - t0 < scaled(2)
    if version == 5:
        assert got and got[-1].type == rm.DISCONNECT and got[-1].rc == rm.RC_PACKET_TOO_LARGE
    good.check(3)


@pytest.mark.parametrize("version", [4, 5])
def test_subscriptions_per_client_are_bounded(broker, version):
    """max_subscriptions_per_client 5: the sixth new filter is refused (MQTT 5 0x97 Quota
    exceeded, 3.1.1 0x80), replacing one is fine, and a single SUBSCRIBE naming a thousand
    filters gets one subscription's worth at most; the bystander keeps receiving."""
    b = broker("max_subscriptions_per_client 5")
    good = Bystander(b.port)
    c = RawClient(b.port, version)
    c.connect("greedy-%d" % version)
    ack = c.subscribe([("s/%d" % i, 1) for i in range(5)], pid=1)
    assert ack.rcs == [1] * 5
    refused = 0x97 if version == 5 else 0x80
    assert c.subscribe(("s/extra", 1), pid=2).rcs == [refused]
    assert c.subscribe(("s/0", 0), pid=3).rcs == [0]  # a replacement
    ack = c.subscribe([("t/%d" % i, 0) for i in range(1000)], pid=4)
    assert ack.rcs == [refused] * 1000
    good.check(3)
    c.publish("s/1", b"to greedy", qos=1, pid=5)
    assert c.recv_publish().payload == b"to greedy"
    c.disconnect()


def test_topic_aliases_are_bounded(broker):
    """max_topic_alias 4: aliases 1..4 work; alias 5 is a Topic Alias invalid (0x94)
    DISCONNECT [MQTT-3.3.2-9]; the bystander keeps receiving."""
    b = broker("max_topic_alias 4")
    good = Bystander(b.port)
    c = RawClient(b.port, 5)
    ack = c.connect("aliaser")
    assert ack.props.get(rm.TOPIC_ALIAS_MAXIMUM) == 4
    for a in range(1, 5):
        c.publish("alias/%d" % a, b"x", qos=1, pid=a, props={rm.TOPIC_ALIAS: a})
    c.send(rm.publish("alias/5", b"x", qos=1, pid=9, props={rm.TOPIC_ALIAS: 5}))
    c.expect_disconnect(rm.RC_TOPIC_ALIAS_INVALID)
    good.check(3)


def test_client_id_takeover_storm_does_not_starve_others(broker):
    """Two clients fight over one client ID (each reconnecting as fast as it can, one MQTT 5
    with a persistent session, one 3.1.1) for three seconds, while a bystander publishes and
    receives QoS 1 messages: every one of its messages arrives, in order."""
    b = broker("workers 2")
    good = Bystander(b.port)
    # Three seconds, and on a loaded machine longer, until each side has won 10 times (but
    # never beyond the hard deadline).
    start = time.monotonic()
    hard_stop = start + scaled(30)
    counts = [0, 0]
    errors = []

    def fight(k):
        version = 5 if k == 0 else 4
        try:
            for _ in range(4000):
                now = time.monotonic()
                if now > hard_stop or (now > start + 3.0 and min(counts) >= 10):
                    return
                time.sleep(0.0005)  # a storm for three seconds, not 4000 sockets in one
                c = RawClient(b.port, version)
                try:
                    kw = {"props": {rm.SESSION_EXPIRY_INTERVAL: 60}} if version == 5 else {}
                    c.send(rm.connect("contested", version=version, clean=False, **kw))
                    ack = c.recv(timeout=scaled(5))
                    if ack.type == rm.CONNACK and ack.rc == 0:
                        counts[k] += 1
                        c.send(rm.subscribe(1, [("storm/t", 1)], version=version))
                except (rm.Closed, rm.Timeout, OSError):
                    pass
                finally:
                    c.close()
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=fight, args=(k,), daemon=True) for k in (0, 1)]
    good.start_flow(interval=0.005, limit=2000)
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))
    delivered = good.stop_flow(timeout=30)
    assert not errors, errors
    assert min(counts) >= 10, "the storm did not happen: %r connections" % counts
    assert delivered >= 50, "the bystander published only %d messages" % delivered
    assert_serves(b.port)
