"""Overload (issue 9, point 4): max_connections (global and per listener), the per-address
connection rate (max_connection_rate, counted across workers), and the memory ceiling
(memory_limit): refusal of new sessions and QoS 0 first, then of QoS 1/2 (0x97), and recovery
once memory is freed. Each test keeps a well-behaved client receiving beside the load."""

import time

import pytest

import rawmqtt as rm
from bystander import Bystander, SysWatch
from rawmqtt import RawClient, assert_serves
from support import MQTTv311, MQTTv5, Paho, scaled, wait_for


def try_connect(port, client_id, version=4, timeout=3.0):
    """CONNECT on a new connection: the CONNACK code, or None when the broker closed the
    connection without one. The connection is left open on success."""
    try:
        c = RawClient(port, version)
    except OSError:
        return None, None
    try:
        c.send(rm.connect(client_id, version=version))
        ack = c.recv(timeout=scaled(timeout))
        assert ack.type == rm.CONNACK, ack
        return ack.rc, c
    except (rm.Closed, rm.Timeout, OSError):
        c.close()
        return None, None


def test_global_max_connections_with_bystander(broker, tmp_path):
    """max_connections before any listener (here from an included file) limits the whole
    broker: with the bystander's two connections and one more, the next CONNECTs get CONNACK
    0x89 Server busy (3.1.1: 3); the bystander keeps receiving; a slot freed is reusable."""
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "limits.conf").write_text("max_connections 3\n")
    b = broker("include_dir %s" % inc)
    good = Bystander(b.port)
    rc, first = try_connect(b.port, "mc-1")
    assert rc == 0
    for i, version in enumerate((4, 5, 4, 5)):
        rc, c = try_connect(b.port, "mc-x%d" % i, version)
        assert rc == (0x89 if version == 5 else 3), rc
        assert c.expect_closed() == []
    good.check(3)
    first.disconnect()
    wait_for(lambda: try_connect(b.port, "mc-again")[0] == 0, timeout=5, interval=0.2,
             what="a free connection slot")
    good.check(1)


def test_listener_max_connections_with_bystander(broker):
    """max_connections in a listener section: beyond it, new sockets are closed at accept
    (the existing test_connect.py checks the slot comes back); the bystander keeps receiving."""
    b = broker("max_connections 3")
    good = Bystander(b.port)
    rc, first = try_connect(b.port, "lc-1")
    assert rc == 0
    for i in range(5):
        assert try_connect(b.port, "lc-x%d" % i)[0] is None
    good.check(3)
    first.disconnect()


def test_connection_rate_per_address_across_workers(broker):
    """max_connection_rate 5 with two workers: a burst of 30 connections from one address gets
    about 5 through (a burst of 5 plus 5 per second), not 5 per worker; the others are closed
    at accept; the bystander (connected before) keeps receiving; a second later the address
    may connect again."""
    b = broker("max_connection_rate 5", "workers 2", "sys_interval 1")
    good = Bystander(b.port)
    sys = SysWatch(b.port)
    time.sleep(1.2)  # the bucket of 127.0.0.1 is full again
    t0 = time.monotonic()
    accepted = []
    for i in range(30):
        rc, c = try_connect(b.port, "rate-%d" % i, timeout=2)
        if rc is not None:
            assert rc == 0
            accepted.append(c)
    took = time.monotonic() - t0
    assert 1 <= len(accepted) <= 5 + int(5 * took) + 1, \
        "%d of 30 accepted in %.2f s with max_connection_rate 5" % (len(accepted), took)
    good.check(3)
    sys.wait_value("$SYS/broker/connections/refused/rate", lambda v: v >= 30 - len(accepted))
    time.sleep(1.2)
    rc, c = try_connect(b.port, "rate-later")
    assert rc == 0
    for c2 in accepted + [c]:
        c2.disconnect()
    good.check(1)


def idle_heap(broker_factory):
    """The heap of an idle broker with a few clients, read from $SYS/broker/heap/current."""
    a = broker_factory("sys_interval 1")
    good = Bystander(a.port)
    sys = SysWatch(a.port)
    good.check(1)
    time.sleep(1.5)
    v = sys.wait_value("$SYS/broker/heap/current", lambda v: v > 0)
    sys.disconnect()
    good.close()
    a.stop()
    return v


def test_memory_limit_refuses_then_recovers(broker):
    """memory_limit a little above the idle broker's heap. A publisher fills a persistent
    session's queue with 64 KiB QoS 1 messages until the broker answers PUBACK 0x97 (Quota
    exceeded): memory is full. Then new sessions are refused (CONNACK 0x97 / 3.1.1: 3), QoS 0
    publishes are dropped (counted), a 3.1.1 QoS 1 publisher is disconnected, and the
    bystander, though it stays connected, has its QoS 1 refused. The session owner may still
    come back (it is how memory recovers): it drains its queue, and once the heap is below
    the threshold new clients connect and the bystander's messages flow again."""
    headroom = 24 * 1024 * 1024
    limit = idle_heap(broker) + headroom
    b = broker("sys_interval 1", "memory_limit %d" % limit, "max_queued_messages 0",
               "max_inflight_messages 100")
    sys = SysWatch(b.port)
    sink = RawClient(b.port, 5)
    sink.connect("mem-sink", clean=True, props={rm.SESSION_EXPIRY_INTERVAL: 300})
    assert sink.subscribe(("fill/#", 1)).rcs == [1]
    sink.disconnect()
    good = Bystander(b.port)
    good.check(1)
    raw_good = RawClient(b.port, 5)
    raw_good.connect("raw-good")
    old311 = RawClient(b.port, 4)
    old311.connect("old-311")

    filler = RawClient(b.port, 5)
    filler.connect("filler")
    payload = b"f" * 65536
    full_at = None
    deadline = time.monotonic() + scaled(60)
    for i in range(3 * headroom // len(payload)):
        ack = filler.publish("fill/x", payload, qos=1, pid=i % 60000 + 1)
        if ack.rc == rm.RC_QUOTA_EXCEEDED:
            full_at = i
            break
        assert ack.rc == 0, ack
        assert time.monotonic() < deadline, "filling took too long"
    assert full_at is not None, "no 0x97 after %d x 64 KiB with %d bytes of headroom" % (
        i + 1, headroom)
    assert full_at * len(payload) >= headroom // 2, "refused after only %d messages" % full_at
    sys.wait_value("$SYS/broker/heap/level", lambda v: v == 2)

    # New sessions are refused: MQTT 5 0x97, 3.1.1 return code 3 (server unavailable).
    assert try_connect(b.port, "newcomer-5", 5)[0] == rm.RC_QUOTA_EXCEEDED
    assert try_connect(b.port, "newcomer-4", 4)[0] == 3
    # QoS 0 is dropped (and counted); QoS 1 refused with 0x97; the client stays connected.
    raw_good.publish("good/raw", b"qos0", qos=0)
    assert raw_good.publish("good/raw", b"qos1", qos=1, pid=7).rc == rm.RC_QUOTA_EXCEEDED
    assert raw_good.ping().type == rm.PINGRESP
    # 3.1.1 has no code for it: the connection ends, nothing was acknowledged.
    old311.send(rm.publish("good/raw", b"x", qos=1, pid=1, version=4))
    assert old311.expect_closed() == []
    sys.wait_value("$SYS/broker/messages/dropped/memory", lambda v: v >= 1)
    sys.wait_value("$SYS/broker/messages/refused/memory", lambda v: v >= 2)
    sys.wait_value("$SYS/broker/connections/refused/memory", lambda v: v >= 2)

    # The owner of the queue comes back (allowed: its session exists) and drains it.
    sink = RawClient(b.port, 5)
    ack = sink.connect("mem-sink", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 300})
    assert ack.session_present
    for i in range(full_at):
        m = sink.recv_publish(timeout=scaled(20))
        assert m.topic == "fill/x" and len(m.payload) == len(payload)
    sys.wait_value("$SYS/broker/heap/level", lambda v: v == 0, timeout=15)

    # Recovered: newcomers connect, QoS 0 and QoS 1 flow again.
    rc, c = try_connect(b.port, "newcomer-after", 5)
    assert rc == 0
    c.disconnect()
    good.check(3)
    assert raw_good.publish("good/raw", b"ok", qos=1, pid=8).rc in (0, rm.RC_NO_MATCHING_SUBSCRIBERS)
    assert filler.publish("fill/x", b"small", qos=1, pid=9).rc == 0
    for c in (sink, filler, raw_good):
        c.disconnect()
    assert_serves(b.port)
