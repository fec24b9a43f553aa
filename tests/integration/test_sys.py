"""$SYS/broker/... topics published every sys_interval seconds, with Mosquitto-compatible names
(issue 2, point 6)."""

import re
import time

import rawmqtt as rm
from rawmqtt import RawClient
from support import scaled

SYS_TOPICS = [
    "$SYS/broker/uptime",
    "$SYS/broker/version",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/total",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/publish/messages/received",
    "$SYS/broker/publish/messages/sent",
]


def _collect(client, topics, timeout):
    """Latest payload of each wanted topic, until all have been seen (or timeout)."""
    seen = {}
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline and not set(topics) <= set(seen):
        try:
            m = client.recv_publish(timeout=max(0.05, deadline - time.monotonic()))
        except rm.Timeout:
            break
        seen[m.topic] = m.payload.decode(errors="replace")
    return seen


def _number(text):
    m = re.match(r"^\s*(\d+)", text)
    assert m, "not a number: %r" % text
    return int(m.group(1))


def test_sys_topics_published(broker):
    """With sys_interval 1 every listed $SYS topic is published within a few intervals; the
    counters are decimal numbers, uptime is in seconds."""
    b = broker("sys_interval 1")
    c = RawClient(b.port, 4)
    c.connect("sys-all")
    c.subscribe(("$SYS/#", 0))
    seen = _collect(c, SYS_TOPICS, timeout=5)
    missing = [t for t in SYS_TOPICS if t not in seen]
    assert not missing, "missing: %r (seen %r)" % (missing, sorted(seen))
    for t in SYS_TOPICS:
        if t != "$SYS/broker/version":
            _number(seen[t])
    assert "seconds" in seen["$SYS/broker/uptime"]
    assert seen["$SYS/broker/version"].strip()
    # a value sent at subscribe time may be a retained one from before we connected; the
    # periodic update that follows counts us
    value = _number(seen["$SYS/broker/clients/connected"])
    deadline = time.monotonic() + scaled(5)
    while value < 1 and time.monotonic() < deadline:
        value = _number(_collect(c, ["$SYS/broker/clients/connected"], 3)
                        .get("$SYS/broker/clients/connected", "0"))
    assert value >= 1
    c.disconnect()


def test_sys_counters_follow_activity(broker):
    """Counters move with traffic: clients/connected, subscriptions/count,
    retained messages/count and publish/messages/received reflect what clients did."""
    b = broker("sys_interval 1")
    clients = []
    for i in range(3):
        c = RawClient(b.port, 4)
        c.connect("sysc%d" % i)
        c.subscribe(("sysc/%d/#" % i, 0))
        clients.append(c)
    for i in range(4):
        clients[0].publish("sysc/r/%d" % i, b"r", qos=1, retain=True, pid=i + 1)
    for i in range(5):
        clients[0].publish("sysc/0/x", b"m", qos=1, pid=10 + i)
    watcher = RawClient(b.port, 4)
    watcher.connect("sys-watch")
    watcher.subscribe(("$SYS/broker/#", 0))

    def ok(seen):
        try:
            return (_number(seen["$SYS/broker/clients/connected"]) >= 4
                    and _number(seen["$SYS/broker/subscriptions/count"]) >= 4
                    and _number(seen["$SYS/broker/retained messages/count"]) >= 4
                    and _number(seen["$SYS/broker/publish/messages/received"]) >= 9
                    and _number(seen["$SYS/broker/messages/received"]) >= 9
                    and _number(seen["$SYS/broker/publish/messages/sent"]) >= 5
                    and _number(seen["$SYS/broker/bytes/received"]) > 0
                    and _number(seen["$SYS/broker/bytes/sent"]) > 0)
        except KeyError:
            return False

    seen = {}
    deadline = time.monotonic() + scaled(6)
    while time.monotonic() < deadline and not ok(seen):
        seen.update(_collect(watcher, SYS_TOPICS, timeout=1))
    assert ok(seen), "\n".join("%s = %s" % kv for kv in sorted(seen.items()))
    for c in clients + [watcher]:
        c.disconnect()


def test_sys_clients_connected_goes_down(broker):
    """clients/connected drops when clients leave."""
    b = broker("sys_interval 1")
    extra = []
    for i in range(3):
        c = RawClient(b.port, 4)
        c.connect("leaver%d" % i)
        extra.append(c)
    w = RawClient(b.port, 4)
    w.connect("sys-watch2")
    w.subscribe(("$SYS/broker/clients/connected", 0))
    deadline = time.monotonic() + scaled(6)
    first = 0
    while time.monotonic() < deadline and first < 4:
        first = _number(w.recv_publish(timeout=scaled(3)).payload.decode())
    assert first >= 4
    for c in extra:
        c.disconnect()
    deadline = time.monotonic() + scaled(6)
    value = first
    while time.monotonic() < deadline and value > 1:
        value = _number(w.recv_publish(timeout=scaled(3)).payload.decode())
    assert value == 1
    w.disconnect()


def test_sys_not_matched_by_hash(broker):
    """'#' does not receive $SYS topics [MQTT-4.7.2-1]."""
    b = broker("sys_interval 1")
    c = RawClient(b.port, 4)
    c.connect("sys-hash")
    c.subscribe(("#", 0))
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        try:
            m = c.recv_publish(timeout=0.3)
        except rm.Timeout:
            continue
        assert not m.topic.startswith("$"), m.topic
    c.disconnect()


def test_sys_disabled_with_interval_zero(broker):
    """sys_interval 0 disables periodic $SYS updates."""
    b = broker("sys_interval 0")
    c = RawClient(b.port, 4)
    c.connect("sys-off")
    c.subscribe(("$SYS/broker/uptime", 0))
    # a retained value may be sent once at subscribe time; no periodic updates follow
    got = rm.drain_publishes(c, window=2.5)
    assert len(got) <= 1, [m.payload for m in got]
    c.disconnect()
