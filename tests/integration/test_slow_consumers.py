"""Slow consumers (issue 9 point 3, and the queue-full gap of issue 6): a client that does not
read costs bounded memory, loses QoS 0 first, then has QoS 1/2 refused and counted; an MQTT 5
publisher whose message reached nobody because every target was full gets 0x97 (Quota
exceeded) on PUBACK/PUBREC [MQTT-3.4.2-1, MQTT-3.5.2-1]; a socket that takes nothing for
write_stall_timeout is closed; and none of it slows the other clients.
docs/design.md "Delivery"; docs/configuration.md qos0_output_limit, write_stall_timeout.

The stuck subscriber is a raw socket with a small SO_RCVBUF that never calls recv() after its
SUBACK. The broker's kernel socket buffer for it still takes a few MB (about 2 MB here, up
to tcp_wmem's maximum), so tests that need the broker's own output to back up send more
than 4 MiB. With `workers 2` the publisher and the stuck subscriber get client IDs that hash to
different workers (owner_of mirrors hub_owner in src/session/hub.c), so the publisher's worker
decides 0x97 from the target's `full` flag without asking its owner.
"""

import re
import socket
import time

import pytest
from paho.mqtt.packettypes import PacketTypes

import rawmqtt as rm
from rawmqtt import RawClient, drain_publishes
from support import MQTTv311, Paho, props, scaled, wait_for

WORKERS = [1, 2]

_M64 = (1 << 64) - 1


def hash_fixed(key):
    """hash_fixed() of src/base/hash.c (FNV-1a over little-endian 8-byte words, then a mix)."""
    h = (0xCBF29CE484222325 ^ len(key)) & _M64
    i = 0
    while i + 8 <= len(key):
        h = ((h ^ int.from_bytes(key[i:i + 8], "little")) * 0x100000001B3) & _M64
        h ^= h >> 29
        i += 8
    for b in key[i:]:
        h = ((h ^ b) * 0x100000001B3) & _M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    return h ^ (h >> 33)


# Values printed by the C hash_fixed: if it changes, owner_of must follow.
assert hash_fixed(b"slow-pub") == 15145049186344098179
assert hash_fixed(b"abcdefghijklmnopq") == 11064456238532617293


def owner_of(client_id, workers):
    """The worker that owns sessions with this client ID (hub_owner)."""
    return (hash_fixed(client_id.encode()) >> 32) % workers


def pick_id(prefix, worker, workers):
    """A client ID starting with `prefix` that worker `worker` owns."""
    for n in range(1000):
        cid = "%s-%d" % (prefix, n)
        if owner_of(cid, workers) == worker % workers:
            return cid
    raise AssertionError("no client id for worker %d" % worker)


def stuck_client(port, client_id, filters, version=5, props=None, rcvbuf=2048):
    """Connect and subscribe, then never read again. SO_RCVBUF is set before connect() so
    that the advertised window stays small."""
    c = RawClient.__new__(RawClient)
    c.version = version
    c.buf, c.pos, c.eof, c.aliases = bytearray(), 0, False, {}
    c.timeout = scaled(5)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.sock.settimeout(scaled(5))
    c.sock.connect(("127.0.0.1", port))
    c.connect(client_id, props=props)
    ack = c.subscribe(filters)
    assert all(rc < 0x80 for rc in ack.rcs), ack
    return c


def config(workers, *lines):
    return ("sys_interval 1", "workers %d" % workers) + lines


def sys_value(port, topic):
    """The current value of a $SYS counter (retained, so it arrives on SUBSCRIBE)."""
    c = RawClient(port, 4)
    try:
        c.connect("")
        c.subscribe((topic, 0))
        m = c.recv_publish(timeout=scaled(3))
        assert m.topic == topic, m
        return int(m.payload.split()[0])
    finally:
        c.close()


def wait_sys(port, topic, expected, timeout=6.0):
    """Wait until the counter reads `expected` ($SYS is refreshed every second here)."""
    seen = []

    def check():
        seen.append(sys_value(port, topic))
        return seen[-1] == expected
    try:
        wait_for(check, timeout=timeout, interval=0.3, what=topic)
    except AssertionError:
        raise AssertionError("%s: %r, expected %d" % (topic, seen[-3:], expected))


DROP_Q0_OFFLINE = "$SYS/broker/messages/dropped/qos0_offline"
DROP_Q0_SLOW = "$SYS/broker/messages/dropped/qos0_slow"
DROP_FULL = "$SYS/broker/messages/dropped/queue_full"
REFUSED_FULL = "$SYS/broker/publish/messages/refused/queue_full"
DROP_OLDEST = "$SYS/broker/messages/dropped/queue_oldest"
STALLED = "$SYS/broker/clients/write_stalled"


class Barrier:
    """A client owned by the same worker as `client_id`: its PINGRESP means that worker has
    taken every mailbox item posted before the PINGREQ (a hub polls its inbox before reading
    input), so the target's `full` flag is up to date for the next publish."""

    def __init__(self, port, client_id, workers):
        self.c = RawClient(port, 5)
        self.c.connect(pick_id("barrier", owner_of(client_id, workers), workers))

    def sync(self):
        self.c.ping()


def publish_rc(pub, topic, qos, payload=b"x", pid=1):
    """PUBLISH from a raw MQTT 5 client; returns the PUBACK/PUBREC reason code."""
    ack = pub.publish(topic, payload, qos=qos, pid=pid)
    return ack.rc


# --------------------------------------------------------------- others keep receiving

@pytest.mark.parametrize("workers", WORKERS)
def test_good_subscriber_gets_everything_beside_a_stuck_one(broker, workers):
    """A subscriber that never reads and a well-behaved one share a QoS 1 topic. The good one
    receives every message in order; the stuck one holds its inflight window (20) and queue
    (max_queued_messages 50), and the rest is refused for it and counted. The publisher hears
    0x00 each time: another target took the message."""
    n, window, queue = 200, 20, 50
    b = broker(*config(workers, "max_queued_messages %d" % queue))
    stuck_id = pick_id("stuck", 1, workers)
    stuck = stuck_client(b.port, stuck_id, ("fan/t", 1))
    good = Paho(b.port, pick_id("good", 1, workers), protocol=MQTTv311)
    good.connect()
    good.subscribe("fan/t", qos=1)
    pub = RawClient(b.port, 5)
    pub.connect(pick_id("pub", 0, workers))
    payload = b"p" * 2000
    got = []
    for i in range(n):
        assert publish_rc(pub, "fan/t", 1, payload + b"%d" % i, pid=i + 1) == 0
        # In step with the good subscriber, so that its own queue never fills: a Python
        # client reads more slowly than a raw publisher can send.
        got.append(good.expect_message())
    assert [m.payload for m in got] == [payload + b"%d" % i for i in range(n)]
    assert all(m.qos == 1 for m in got)
    wait_sys(b.port, DROP_FULL, n - window - queue)
    wait_sys(b.port, REFUSED_FULL, 0)
    good.disconnect()
    stuck.close()


@pytest.mark.parametrize("workers", WORKERS)
def test_qos0_to_a_backed_up_client_is_dropped_and_counted(broker, workers):
    """QoS 0 to a client whose output passes qos0_output_limit is dropped (counted as
    qos0_slow), while a subscriber that reads gets every message."""
    n = 200
    b = broker(*config(workers, "qos0_output_limit 65536"))
    stuck = stuck_client(b.port, pick_id("stuck0", 1, workers), ("zero/t", 0))
    good = Paho(b.port, pick_id("good0", 1, workers), protocol=MQTTv311)
    good.connect()
    good.subscribe("zero/t", qos=0)
    pub = RawClient(b.port, 5)
    pub.connect(pick_id("pub0", 0, workers))
    payload = b"z" * 32768  # 6.4 MB in all
    # Published at QoS 1 so that each is routed before the next is sent (delivered at the
    # subscriptions' QoS 0): the good subscriber's output never holds more than one.
    for i in range(n):
        assert publish_rc(pub, "zero/t", 1, payload, pid=i + 1) == 0
        good.expect_message()
    good.expect_no_message(0.3)

    def dropped():
        v = sys_value(b.port, DROP_Q0_SLOW)
        return v if v > 0 else None
    v = wait_for(dropped, timeout=6, interval=0.3, what=DROP_Q0_SLOW)
    # What the kernel buffers plus 64 KiB of output went; the rest was dropped.
    assert 0 < v < n, v
    wait_sys(b.port, DROP_FULL, 0)
    good.disconnect()
    stuck.close()


@pytest.mark.parametrize("workers", WORKERS)
def test_qos0_dropped_before_qos1_is_refused(broker, workers):
    """The order of the policy: with the queue half full QoS 0 is dropped while QoS 1 is still
    queued; only the full queue refuses QoS 1 (0x97 to the MQTT 5 publisher). The stuck client
    allows one message in flight (Receive Maximum 1)."""
    b = broker(*config(workers, "max_queued_messages 10", "qos0_output_limit 0"))
    stuck_id = pick_id("order", 1, workers)
    stuck = stuck_client(b.port, stuck_id, [("o/q1", 1), ("o/q0", 0)],
                         props={rm.RECEIVE_MAXIMUM: 1})
    pub = RawClient(b.port, 5)
    pub.connect(pick_id("opub", 0, workers))
    bar = Barrier(b.port, stuck_id, workers)
    pid = iter(range(1, 1000))
    for _ in range(5):  # 1 in flight, 4 queued
        assert publish_rc(pub, "o/q1", 1, pid=next(pid)) == 0
    assert publish_rc(pub, "o/q0", 1, pid=next(pid)) == 0  # 4 < 5: sent
    assert publish_rc(pub, "o/q1", 1, pid=next(pid)) == 0  # 5 queued: half full
    assert publish_rc(pub, "o/q0", 1, pid=next(pid)) == 0  # dropped; QoS 0 promises nothing
    for _ in range(5):  # 10 queued: full
        assert publish_rc(pub, "o/q1", 1, pid=next(pid)) == 0
    bar.sync()
    assert publish_rc(pub, "o/q1", 1, pid=next(pid)) == rm.RC_QUOTA_EXCEEDED
    wait_sys(b.port, DROP_Q0_SLOW, 1)
    wait_sys(b.port, DROP_FULL, 1)
    wait_sys(b.port, REFUSED_FULL, 1)
    stuck.close()


# --------------------------------------------------------------- 0x97 to the publisher

def fill(port, workers, prefix, queue, version=5):
    """A stuck MQTT 5 subscriber on `<prefix>/t` (QoS 2) with Receive Maximum 1 whose queue
    is then filled by a helper publisher. Returns (stuck client, its id, barrier)."""
    stuck_id = pick_id(prefix + "-stuck", 1, workers)
    stuck = stuck_client(port, stuck_id, ("%s/t" % prefix, 2), props={rm.RECEIVE_MAXIMUM: 1})
    filler = RawClient(port, 5)
    filler.connect(pick_id(prefix + "-filler", 0, workers))
    for i in range(1 + queue):
        assert publish_rc(filler, "%s/t" % prefix, 1, pid=i + 1) == 0
    filler.disconnect()
    bar = Barrier(port, stuck_id, workers)
    bar.sync()
    return stuck, stuck_id, bar


@pytest.mark.parametrize("workers", WORKERS)
def test_mqtt5_publisher_gets_quota_exceeded_when_only_target_is_full(broker, workers):
    """[MQTT-3.4.2-1] PUBACK 0x97 (Quota exceeded) when the message matched and its only
    target's queue is full; [MQTT-3.5.2-1] PUBREC 0x97 at QoS 2, which ends the exchange.
    A P2P message to the full client gets 0x97 too. Once another subscriber can take the
    message the publisher hears 0x00 again."""
    b = broker(*config(workers, "max_queued_messages 3"))
    stuck, stuck_id, bar = fill(b.port, workers, "q", 3)
    pub = RawClient(b.port, 5)
    pub.connect(pick_id("q-pub", 0, workers))
    assert publish_rc(pub, "q/t", 1, pid=1) == rm.RC_QUOTA_EXCEEDED
    pub.send(rm.publish("q/t", b"two", qos=2, pid=2))
    rec = pub.recv_until(rm.PUBREC)
    assert (rec.pid, rec.rc) == (2, rm.RC_QUOTA_EXCEEDED)
    assert publish_rc(pub, "app/p2p/%s" % stuck_id, 1, pid=3) == rm.RC_QUOTA_EXCEEDED
    # QoS 0 publishes get no acknowledgement; the broker is still fine afterwards.
    pub.publish("q/t", b"zero", qos=0)
    wait_sys(b.port, REFUSED_FULL, 3)
    wait_sys(b.port, DROP_FULL, 3)

    good = RawClient(b.port, 5)
    good.connect(pick_id("q-good", 1, workers))
    good.subscribe(("q/t", 1))
    bar.sync()
    assert publish_rc(pub, "q/t", 1, b"reaches one", pid=4) == rm.RC_SUCCESS
    m = good.recv_publish()
    assert (m.topic, m.payload) == ("q/t", b"reaches one")
    wait_sys(b.port, REFUSED_FULL, 3)  # not a refusal: one target took it
    wait_sys(b.port, DROP_FULL, 4)     # but the stuck one still dropped its copy
    stuck.close()


def test_queue_byte_limit_refuses_with_quota_exceeded(broker):
    """max_queued_bytes bounds the queue as max_queued_messages does: the message that would
    pass it is refused (0x97 to the MQTT 5 publisher), and a smaller one that fits is queued."""
    b = broker(*config(1, "max_queued_bytes 1000"))
    stuck = stuck_client(b.port, "bytes-stuck", ("by/t", 1), props={rm.RECEIVE_MAXIMUM: 1})
    pub = RawClient(b.port, 5)
    pub.connect("bytes-pub")
    payload = b"b" * 400
    assert publish_rc(pub, "by/t", 1, payload, pid=1) == 0  # in flight: not queued
    assert publish_rc(pub, "by/t", 1, payload, pid=2) == 0  # queued, ~400 bytes
    assert publish_rc(pub, "by/t", 1, payload, pid=3) == 0  # queued, ~800 bytes
    assert publish_rc(pub, "by/t", 1, payload, pid=4) == rm.RC_QUOTA_EXCEEDED
    assert publish_rc(pub, "by/t", 1, b"small", pid=5) == 0
    wait_sys(b.port, DROP_FULL, 1)
    stuck.close()


@pytest.mark.parametrize("workers", WORKERS)
def test_mqtt311_publisher_is_disconnected_when_every_target_is_full(broker, workers):
    """A 3.1.1 PUBACK/PUBREC carries no reason code, so with queue_full_policy refuse (the
    default) a 3.1.1 publisher whose QoS 1/2 message every target refused gets no
    acknowledgement: the connection ends, as for a full store, and the client resends when it
    comes back. The refusal shows in $SYS. A message that reaches another target is
    acknowledged as usual."""
    b = broker(*config(workers, "max_queued_messages 2"))
    stuck, stuck_id, bar = fill(b.port, workers, "v4", 2)
    pub_id = pick_id("v4-pub", 0, workers)
    for qos, pid in ((1, 1), (2, 2)):
        pub = RawClient(b.port, 4)
        pub.connect(pub_id)
        pub.send(rm.publish("v4/t", b"refused", qos=qos, pid=pid, version=4))
        got = pub.expect_closed()
        assert not [p for p in got if p.type in (rm.PUBACK, rm.PUBREC)], got
    wait_sys(b.port, REFUSED_FULL, 2)
    wait_sys(b.port, DROP_FULL, 2)
    # The client resends when it comes back; once a target has room the message is taken.
    good = RawClient(b.port, 5)
    good.connect(pick_id("v4-good", 1, workers))
    good.subscribe(("v4/t", 1))
    bar.sync()
    pub = RawClient(b.port, 4)
    pub.connect(pub_id)
    assert pub.publish("v4/t", b"taken", qos=1, pid=3).type == rm.PUBACK
    assert good.recv_publish().payload == b"taken"
    pub.disconnect()
    stuck.close()


@pytest.mark.parametrize("workers", WORKERS)
def test_drop_oldest_keeps_the_newest_and_acknowledges(broker, workers):
    """queue_full_policy drop_oldest: each message meeting a full queue drops the oldest
    queued one (never the one in flight), so every publisher is acknowledged truthfully (0x00
    to MQTT 5, a PUBACK to 3.1.1) and the queue keeps the newest messages; the drops are
    counted as queue_oldest, none as queue_full."""
    b = broker(*config(workers, "max_queued_messages 3", "queue_full_policy drop_oldest"))
    sub_id = pick_id("old-sub", 1, workers)
    sub = RawClient(b.port, 5)
    sub.connect(sub_id, props={rm.RECEIVE_MAXIMUM: 1})
    sub.subscribe(("old/t", 1))
    pub = RawClient(b.port, 5)
    pub.connect(pick_id("old-pub", 0, workers))
    v4 = RawClient(b.port, 4)
    v4.connect(pick_id("old-v4", 0, workers))
    assert publish_rc(pub, "old/t", 1, b"m0", pid=1) == 0
    first = sub.recv_publish(ack=False)  # in flight, not acknowledged yet
    assert first.payload == b"m0"
    for i in range(1, 10):
        if i % 2:
            assert publish_rc(pub, "old/t", 1, b"m%d" % i, pid=i + 1) == rm.RC_SUCCESS
        else:
            assert v4.publish("old/t", b"m%d" % i, qos=1, pid=i + 1).type == rm.PUBACK
    sub.ack(first)
    got = drain_publishes(sub, window=1.0)
    assert [m.payload for m in got] == [b"m7", b"m8", b"m9"]
    wait_sys(b.port, DROP_OLDEST, 6)
    wait_sys(b.port, DROP_FULL, 0)
    wait_sys(b.port, REFUSED_FULL, 0)
    sub.disconnect()


@pytest.mark.parametrize("workers", WORKERS)
def test_shared_group_skips_a_full_member(broker, workers):
    """A shared subscription gives each message to one member, round robin; a member whose
    queue is full is passed over for one with room, so nothing is refused (0x00 every time)."""
    n = 20
    b = broker(*config(workers, "max_queued_messages 2"))
    stuck_id = pick_id("sh-stuck", 1, workers)
    stuck = stuck_client(b.port, stuck_id, ("$share/g/sh/t", 1), props={rm.RECEIVE_MAXIMUM: 1})
    good = RawClient(b.port, 5)
    good.connect(pick_id("sh-good", 0, workers))
    good.subscribe(("$share/g/sh/t", 1))
    pub = RawClient(b.port, 5)
    pub.connect(pick_id("sh-pub", 0, workers))
    bar = Barrier(b.port, stuck_id, workers)
    for i in range(n):
        assert publish_rc(pub, "sh/t", 1, b"%d" % i, pid=i + 1) == rm.RC_SUCCESS
        bar.sync()  # the stuck member's flag is current before the next one is routed
    got = rm.drain_publishes(good, window=0.5)
    # The stuck member took 1 in flight and 2 queued; the good one everything else.
    assert len(got) == n - 3, [m.payload for m in got]
    wait_sys(b.port, DROP_FULL, 0)
    stuck.close()


def test_retained_publish_to_full_target_is_accepted(broker):
    """A retained message is stored even when every live target is full, so the publish was
    accepted (0x00) and a later subscriber gets it [MQTT-3.3.1-5]."""
    b = broker(*config(1, "max_queued_messages 1"))
    stuck, _, _ = fill(b.port, 1, "ret", 1)
    pub = RawClient(b.port, 5)
    pub.connect("ret-pub")
    ack = pub.publish("ret/t", b"kept", qos=1, retain=True, pid=7)
    assert ack.rc == rm.RC_SUCCESS
    late = RawClient(b.port, 5)
    late.connect("ret-late")
    late.subscribe(("ret/t", 0))
    m = late.recv_publish()
    assert (m.payload, m.retain) == (b"kept", True)
    stuck.close()


# --------------------------------------------------------------- write stall

@pytest.mark.parametrize("workers", WORKERS)
def test_stalled_socket_is_closed_and_its_session_kept(broker, workers):
    """A subscriber whose socket takes no byte for write_stall_timeout (1 s here) is closed
    (no DISCONNECT: it could not be written), logged and counted; the good subscriber gets
    everything; the stalled client's persistent session survives for its reconnect."""
    n = 150
    b = broker(*config(workers, "write_stall_timeout 1"))
    stuck_id = pick_id("stall", 1, workers)
    stuck = stuck_client(b.port, stuck_id, ("big/t", 0),
                         props={rm.SESSION_EXPIRY_INTERVAL: 300})
    good = Paho(b.port, pick_id("stall-good", 1, workers), protocol=MQTTv311)
    good.connect()
    good.subscribe("big/t", qos=0)
    pub = RawClient(b.port, 5)
    pub.connect(pick_id("stall-pub", 0, workers))
    payload = b"s" * 32768  # 4.9 MB in all
    t0 = time.monotonic()
    for i in range(n):
        assert publish_rc(pub, "big/t", 1, payload, pid=i + 1) == 0
        good.expect_message()
    line = wait_for(lambda: re.search(r"write stalled.*client=%s" % re.escape(stuck_id),
                                      b.log()), timeout=8, what="write stall log line")
    assert line
    # Not before the limit: the last byte left at the latest when publishing began.
    assert time.monotonic() - t0 >= 1.0
    wait_sys(b.port, STALLED, 1)
    # The good subscriber is still connected and served.
    assert publish_rc(pub, "big/t", 1, b"after", pid=1000) == 0
    assert good.expect_message().payload == b"after"
    # The session stayed (expiry 300): the same ID resumes it.
    stuck.close()
    back = RawClient(b.port, 5)
    ack = back.connect(stuck_id, clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 300})
    assert ack.session_present
    back.disconnect()
    good.disconnect()


def test_slow_reader_is_not_a_stalled_one(broker):
    """A client that reads, however slowly, is never closed for a write stall: the clock
    restarts with every byte the peer acknowledges, even while the broker's socket buffer is
    too full to take more. A client beside it that reads nothing is closed."""
    b = broker(*config(1, "write_stall_timeout 1"))
    slow = stuck_client(b.port, "slow-reader", ("slow/t", 0), rcvbuf=4096)
    stuck = stuck_client(b.port, "no-reader", ("slow/t", 0), rcvbuf=4096)
    pub = RawClient(b.port, 5)
    pub.connect("slow-pub")
    for i in range(150):  # 4.9 MB: the broker's output to both backs up
        assert publish_rc(pub, "slow/t", 1, b"r" * 32768, pid=i + 1) == 0
    got = 0
    slow.sock.settimeout(scaled(2))
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # 4 KiB every 0.2 s for 4 s: 20 KB/s
        got += len(slow.sock.recv(4096))
        time.sleep(0.2)
    assert got > 0
    wait_for(lambda: "write stalled, connection closed client=no-reader" in b.log(),
             what="the non-reader's stall")
    assert "write stalled, connection closed client=slow-reader" not in b.log()
    wait_sys(b.port, STALLED, 1)
    slow.close()
    stuck.close()


def test_stall_check_off_with_zero(broker):
    """write_stall_timeout 0 keeps a stuck client connected."""
    b = broker(*config(1, "write_stall_timeout 0"))
    stuck = stuck_client(b.port, "never-stall", ("off/t", 0))
    pub = RawClient(b.port, 5)
    pub.connect("off-pub")
    for i in range(150):
        assert publish_rc(pub, "off/t", 1, b"o" * 32768, pid=i + 1) == 0
    time.sleep(scaled(2))
    assert "write stalled" not in b.log()
    assert sys_value(b.port, STALLED) == 0
    stuck.close()


def test_offline_qos0_drop_counted(broker):
    """QoS 0 for a persistent session that is offline is dropped and counted apart."""
    b = broker(*config(1))
    sub = Paho(b.port, "off0", protocol=MQTTv311, clean=False)
    sub.connect()
    sub.subscribe("off0/t", qos=0)
    sub.disconnect()
    pub = Paho(b.port, "off0-pub", protocol=MQTTv311)
    pub.connect()
    for _ in range(3):
        pub.publish("off0/t", b"gone", qos=1)
    wait_sys(b.port, DROP_Q0_OFFLINE, 3)
    pub.disconnect()
