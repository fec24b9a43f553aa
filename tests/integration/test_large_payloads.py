"""Large payloads and fan-out: payloads from 1 KiB on are written from the shared message
itself (no copy per subscriber), so these tests check that every subscriber still gets every
byte, in order, whatever the socket takes at a time.

Issue 4 point 2 ("fan-out copies no payload"); [MQTT-4.6.0-6] ordered delivery per topic.
"""

import hashlib
import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient
from support import scaled

# On both sides of the zero-copy threshold (1024), and big enough to span many writes.
SIZES = [1023, 1024, 1025, 65536, 300_000]


def _payload(size, seq):
    seed = hashlib.sha256(b"%d-%d" % (size, seq)).digest()
    return (seed * (size // len(seed) + 1))[:size]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1])
def test_fanout_large_payloads_arrive_intact(broker, version, qos):
    """Five subscribers each receive every payload byte for byte, in publish order."""
    b = broker()
    subs = []
    for i in range(5):
        s = RawClient(b.port, version)
        s.connect("big-sub-%d" % i)
        assert s.subscribe(("big/t", 1)).rcs == [1]
        subs.append(s)
    pub = RawClient(b.port, 5)
    pub.connect("big-pub")
    expected = []
    for seq, size in enumerate(SIZES):
        data = _payload(size, seq)
        expected.append(data)
        pub.publish("big/t", data, qos=qos, pid=seq + 1)
    for s in subs:
        for data in expected:
            got = s.recv_publish(timeout=scaled(10))
            assert got.topic == "big/t"
            assert len(got.payload) == len(data)
            assert got.payload == data
    for s in subs + [pub]:
        s.disconnect()


def test_slow_reader_gets_every_byte(broker):
    """A subscriber that stops reading while large messages pile up (the broker's writes come
    back partial, splitting payloads anywhere) still gets them all intact once it reads, and a
    fast subscriber beside it is not held up."""
    b = broker()
    slow = RawClient(b.port, 4)
    # A small receive window, set before the handshake so TCP scales it properly: 6 MB then
    # cannot all sit in socket buffers, and the broker's writes to this client come back short.
    slow.sock.close()
    slow.sock = rm.socket.socket()
    slow.sock.setsockopt(rm.socket.SOL_SOCKET, rm.socket.SO_RCVBUF, 16384)
    slow.sock.connect(("127.0.0.1", b.port))
    slow.connect("slow-reader")
    slow.subscribe(("slow/t", 0))
    fast = RawClient(b.port, 4)
    fast.connect("fast-reader")
    fast.subscribe(("slow/t", 0))
    pub = RawClient(b.port, 4)
    pub.connect("slow-pub")
    sent = []
    for seq in range(60):
        data = _payload(100_000 + seq, seq)
        sent.append(data)
        pub.publish("slow/t", data, qos=0)
    for data in sent:  # the fast one drains while the slow one is not reading
        assert fast.recv_publish(timeout=scaled(10)).payload == data
    time.sleep(0.5)
    for data in sent:
        assert slow.recv_publish(timeout=scaled(10)).payload == data
    for s in (slow, fast, pub):
        s.disconnect()


def test_large_retained_and_p2p(broker):
    """The same path serves retained messages sent on SUBSCRIBE and P2P deliveries."""
    b = broker()
    pub = RawClient(b.port, 5)
    pub.connect("lr-pub")
    big = _payload(300_000, 1)
    pub.publish("lr/retained", big, qos=1, retain=True)
    rx = RawClient(b.port, 5)
    rx.connect("lr-rx")
    rx.subscribe(("lr/#", 1))
    got = rx.recv_publish(timeout=scaled(10))
    assert got.retain and got.payload == big
    other = _payload(200_000, 2)
    pub.publish("app/p2p/lr-rx", other, qos=1, pid=2)
    got = rx.recv_publish(timeout=scaled(10))
    assert got.topic == "app/p2p/lr-rx" and got.payload == other
    rx.disconnect()
    pub.disconnect()
