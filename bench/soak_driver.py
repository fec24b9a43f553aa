#!/usr/bin/python3
"""The Python half of bench/soak.sh: the traffic petrel-bench does not make, and its checks.

    /usr/bin/python3 bench/soak_driver.py --port P --duration S [--phase NAME]

For --duration seconds, at once:
  data      a paho publisher sends numbered QoS 1 and 2 messages; a steady subscriber and a
            persistent one that goes away for 2 s every 10 s must both get every one
  retained  retained QoS 1 messages on 200 topics; every 5 s a new subscriber must get some;
            all are cleared at the end (so memory can return to its level)
  wills     clients with a will vanish without DISCONNECT; a watcher must get each will
  takeover  a second connection with a client ID in use; the first must be closed
  flood     8 KiB messages at QoS 0 and 1 to soak/flood, received whole by a paho subscriber
            and by two slow consumers (raw sockets, QoS 0 and QoS 1) that read nothing until
            the end; what those two missed must not exceed $SYS/broker/messages/dropped
  $SYS      read throughout (sys_interval 1)
Prints one JSON line; exits 0 when every check passed.
"""
import argparse
import json
import socket
import struct
import sys
import threading
import time

import paho.mqtt.client as mqtt

HOST = "127.0.0.1"


def log(msg):
    print("soak_driver: %s" % msg, file=sys.stderr, flush=True)


# ---- raw MQTT 3.1.1 (for clients that misbehave on purpose) ----

def _s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">H", len(b)) + b


def _packet(first, body):
    n, rl = len(body), bytearray()
    while True:
        d, n = n % 128, n // 128
        rl.append(d | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(rl) + body


def raw_connect(port, client_id, keepalive=60, clean=True, will=None, timeout=10):
    flags = 0x02 if clean else 0
    payload = _s(client_id)
    if will:
        flags |= 0x04 | (1 << 3)  # will QoS 1
        payload += _s(will[0]) + _s(will[1])
    body = _s("MQTT") + bytes([4, flags]) + struct.pack(">H", keepalive) + payload
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.sendall(_packet(0x10, body))
    ack = _recv_exact(s, 4)
    if ack[0] != 0x20 or ack[3] != 0:
        raise RuntimeError("CONNACK refused: %r" % ack)
    return s


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def raw_subscribe(s, topic, qos):
    s.sendall(_packet(0x82, struct.pack(">H", 1) + _s(topic) + bytes([qos])))


class PacketReader:
    """Frames packets from a raw socket's byte stream."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            mult, n, i = 1, 0, 1
            while i < len(self.buf) and i <= 4:
                n += (self.buf[i] & 0x7F) * mult
                mult *= 128
                if not self.buf[i] & 0x80:
                    break
                i += 1
            else:
                return out
            if i >= len(self.buf) or len(self.buf) < i + 1 + n:
                return out
            out.append((self.buf[0], bytes(self.buf[i + 1:i + 1 + n])))
            del self.buf[:i + 1 + n]


# ---- paho helpers ----

def paho_client(client_id, clean=True):
    c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(50)
    c.max_queued_messages_set(0)
    return c


def paho_connect(c, port):
    ev = threading.Event()
    c.on_connect = lambda cl, ud, fl, rc: ev.set()
    c.connect(HOST, port, keepalive=30)
    c.loop_start()
    if not ev.wait(10):
        raise RuntimeError("paho connect timed out")


class Sys:
    """The latest $SYS values."""

    def __init__(self, port):
        self.values = {}
        self.c = paho_client("soak-sys")
        self.c.on_message = self._on_message
        paho_connect(self.c, port)
        self.c.subscribe("$SYS/broker/#", 0)

    def _on_message(self, c, ud, m):
        try:
            self.values[m.topic] = int(m.payload)
        except ValueError:
            pass

    def get(self, name):
        return self.values.get("$SYS/broker/" + name)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


# ---- the workloads; each runs in a thread until `stop` is set ----

class Data:
    """Numbered QoS 1/2 messages; two subscribers that must get every one."""

    def __init__(self, port, tag):
        self.port, self.tag = port, tag
        self.sent = 0
        self.steady, self.resumer = set(), set()
        self.lock = threading.Lock()

    def _on(self, target):
        def on_message(c, ud, m):
            with self.lock:
                target.add(int(m.payload.split(b":")[0]))
        return on_message

    def run(self, stop):
        sub = paho_client("soak-%s-steady" % self.tag)
        sub.on_message = self._on(self.steady)
        paho_connect(sub, self.port)
        sub.subscribe("soak/data/#", 2)
        rid = "soak-%s-resumer" % self.tag
        res = paho_client(rid, clean=False)
        res.on_message = self._on(self.resumer)
        paho_connect(res, self.port)
        res.subscribe("soak/data/#", 1)
        pub = paho_client("soak-%s-pub" % self.tag)
        paho_connect(pub, self.port)
        time.sleep(0.5)
        next_away = time.monotonic() + 10
        while not stop.is_set():
            infos = []
            for _ in range(10):
                self.sent += 1
                infos.append(pub.publish("soak/data/%d" % (self.sent % 7),
                                         b"%d:payload" % self.sent, qos=1 + self.sent % 2))
            for i in infos:
                i.wait_for_publish(10)
            if time.monotonic() > next_away:
                # Away for 2 s: the broker queues for the persistent session meanwhile.
                res.disconnect()
                res.loop_stop()
                time.sleep(2)
                res = paho_client(rid, clean=False)
                res.on_message = self._on(self.resumer)
                paho_connect(res, self.port)
                next_away = time.monotonic() + 10
            time.sleep(0.1)
        pub.disconnect()
        pub.loop_stop()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.steady) >= self.sent and len(self.resumer) >= self.sent:
                    break
            time.sleep(0.2)
        for c in (sub, res):
            c.disconnect()
            c.loop_stop()
        # End the persistent session, so that it does not outlive the run.
        c = paho_client(rid, clean=True)
        paho_connect(c, self.port)
        c.disconnect()
        c.loop_stop()

    def result(self):
        want = set(range(1, self.sent + 1))
        return {"sent": self.sent, "lost_steady": len(want - self.steady),
                "lost_resumer": len(want - self.resumer)}


class Retained:
    def __init__(self, port, tag):
        self.port, self.tag = port, tag
        self.published = 0
        self.checks = 0
        self.empty_checks = 0

    def run(self, stop):
        pub = paho_client("soak-%s-ret" % self.tag)
        paho_connect(pub, self.port)
        next_check = time.monotonic() + 5
        while not stop.is_set():
            pub.publish("soak/ret/%d" % (self.published % 200), b"r" * 100, qos=1,
                        retain=True).wait_for_publish(10)
            self.published += 1
            if time.monotonic() > next_check:
                got = []
                c = paho_client("soak-%s-retsub" % self.tag)
                c.on_message = lambda cl, ud, m: got.append(m.retain)
                paho_connect(c, self.port)
                c.subscribe("soak/ret/#", 1)
                time.sleep(1)
                c.disconnect()
                c.loop_stop()
                self.checks += 1
                if not any(got):
                    self.empty_checks += 1
                next_check = time.monotonic() + 5
            time.sleep(0.05)
        for i in range(200):
            pub.publish("soak/ret/%d" % i, b"", qos=1, retain=True).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()

    def result(self):
        return {"published": self.published, "checks": self.checks,
                "checks_without_retained": self.empty_checks}


class Wills:
    def __init__(self, port, tag):
        self.port, self.tag = port, tag
        self.expected = 0
        self.got = set()

    def run(self, stop):
        w = paho_client("soak-%s-watcher" % self.tag)
        w.on_message = lambda c, ud, m: self.got.add(m.topic)
        paho_connect(w, self.port)
        w.subscribe("soak/will/#", 1)
        time.sleep(0.5)
        while not stop.is_set():
            n = self.expected + 1
            s = raw_connect(self.port, "soak-%s-will-%d" % (self.tag, n % 50),
                            will=("soak/will/%d" % n, b"gone"))
            self.expected = n
            s.close()  # no DISCONNECT: the will goes out
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while len(self.got) < self.expected and time.monotonic() < deadline:
            time.sleep(0.2)
        w.disconnect()
        w.loop_stop()

    def result(self):
        return {"expected": self.expected, "received": len(self.got)}


class Takeovers:
    def __init__(self, port, tag):
        self.port, self.tag = port, tag
        self.tries = 0
        self.closed = 0

    def run(self, stop):
        while not stop.is_set():
            cid = "soak-%s-take-%d" % (self.tag, self.tries % 20)
            a = raw_connect(self.port, cid)
            b = raw_connect(self.port, cid)
            self.tries += 1
            a.settimeout(5)
            try:
                if a.recv(16) == b"":  # 3.1.1: the old connection is just closed
                    self.closed += 1
            except OSError:
                pass
            a.close()
            b.sendall(b"\xe0\x00")  # DISCONNECT
            b.close()
            time.sleep(0.5)

    def result(self):
        return {"tries": self.tries, "old_closed": self.closed}


class Flood:
    """8 KiB messages to soak/flood; one paho subscriber and two slow consumers."""

    def __init__(self, port, tag, rate, size=8192):
        self.port, self.tag, self.rate, self.size = port, tag, rate, size
        self.sent = {0: 0, 1: 0}
        self.good = {0: set(), 1: set()}
        self.slow_got = {0: set(), 1: set()}

    def run(self, stop):
        good = paho_client("soak-%s-flood-sub" % self.tag)

        def on_message(c, ud, m):
            q, n = m.payload[:12].split(b":")[:2]
            self.good[int(q)].add(int(n))
        good.on_message = on_message
        paho_connect(good, self.port)
        good.subscribe("soak/flood", 1)
        # Slow consumers: keepalive 0, so the broker never times them out; they read nothing.
        slow = {}
        for q in (0, 1):
            s = raw_connect(self.port, "soak-%s-slow%d" % (self.tag, q), keepalive=0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            raw_subscribe(s, "soak/flood", q)
            slow[q] = s
        pub = paho_client("soak-%s-flood-pub" % self.tag)
        paho_connect(pub, self.port)
        time.sleep(0.5)
        pad = b"x" * self.size
        while not stop.is_set():
            t0 = time.monotonic()
            last = None
            for _ in range(max(1, self.rate // 10)):
                q = (self.sent[0] + self.sent[1]) % 2
                self.sent[q] += 1
                info = pub.publish("soak/flood", b"%d:%d:" % (q, self.sent[q]) + pad, qos=q)
                last = info if q else last
            if last:
                last.wait_for_publish(10)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))
        time.sleep(1)
        pub.disconnect()
        pub.loop_stop()
        for q, s in slow.items():
            self._drain(q, s)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(len(self.good[q]) < self.sent[q]
                                                  for q in (0, 1)):
            time.sleep(0.2)
        good.disconnect()
        good.loop_stop()

    def _drain(self, q, s):
        """Read (and acknowledge) whatever the broker still has for slow consumer q (the QoS
        it subscribed with)."""
        r = PacketReader()
        s.settimeout(2)
        while True:
            try:
                data = s.recv(1 << 20)
            except socket.timeout:
                break
            if not data:
                break
            for first, body in r.feed(data):
                if first >> 4 != 3:
                    continue
                tlen = struct.unpack(">H", body[:2])[0]
                off = 2 + tlen
                pq = (first >> 1) & 3
                if pq:
                    s.sendall(_packet(0x40, body[off:off + 2]))  # PUBACK
                    off += 2
                fq, n = body[off:off + 12].split(b":")[:2]
                self.slow_got[q].add((int(fq), int(n)))
        s.sendall(b"\xe0\x00")
        s.close()

    def result(self):
        lost = {q: self.sent[q] - len(self.good[q]) for q in (0, 1)}
        # Each slow consumer was sent every message (at its subscription's QoS or lower).
        total = self.sent[0] + self.sent[1]
        missed = sum(total - len(self.slow_got[c]) for c in (0, 1))
        return {"sent_qos0": self.sent[0], "sent_qos1": self.sent[1],
                "good_lost_qos0": lost[0], "good_lost_qos1": lost[1],
                "slow_missed": missed,
                "slow_received": sum(len(self.slow_got[q]) for q in (0, 1))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--phase", default="main")
    ap.add_argument("--flood-rate", type=int, default=400, help="flood messages per second")
    a = ap.parse_args()

    sysv = Sys(a.port)
    time.sleep(1.5)
    dropped0 = sysv.get("messages/dropped") or 0
    work = {"data": Data(a.port, a.phase), "retained": Retained(a.port, a.phase),
            "wills": Wills(a.port, a.phase), "takeover": Takeovers(a.port, a.phase),
            "flood": Flood(a.port, a.phase, a.flood_rate)}
    stop = threading.Event()
    errors = []

    def guard(name, w):
        try:
            w.run(stop)
        except Exception as e:  # reported in the summary; the check fails
            errors.append("%s: %r" % (name, e))
            log("%s failed: %r" % (name, e))

    threads = [threading.Thread(target=guard, args=(n, w), daemon=True) for n, w in work.items()]
    for t in threads:
        t.start()
    stop.wait(a.duration)
    stop.set()
    for t in threads:
        t.join(120)
    time.sleep(2.5)  # one more $SYS interval after the last drop
    dropped = (sysv.get("messages/dropped") or 0) - dropped0
    sysv.close()
    res = {n: w.result() for n, w in work.items()}
    res["sys_dropped"] = dropped
    res["errors"] = errors
    d, f, wl, t = res["data"], res["flood"], res["wills"], res["takeover"]
    fails = []
    if errors:
        fails.append("driver errors")
    if d["lost_steady"] or d["lost_resumer"] or f["good_lost_qos1"]:
        fails.append("QoS 1/2 messages lost")
    if wl["received"] < wl["expected"]:
        fails.append("wills missing")
    if t["old_closed"] < t["tries"]:
        fails.append("takeovers that left the old connection open")
    if res["retained"]["checks_without_retained"]:
        fails.append("subscribers that got no retained message")
    if f["slow_missed"] > dropped:
        fails.append("slow consumers missed more than $SYS dropped counts")
    res["fails"] = fails
    print(json.dumps(res))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
