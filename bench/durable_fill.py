#!/usr/bin/python3
"""Fill a durable broker for the restart figures (docs/durability-figures.md):

    bench/durable_fill.py --port 1883 --retained 1000000
    bench/durable_fill.py --port 1883 --sessions 100000 --subs 2 --queued 2

--retained N: N retained messages (topic ret/<i>, --size payload bytes), QoS 0, pipelined,
              then one QoS 1 retained publish whose PUBACK (held until the commit) says that
              everything before it is stored.
--sessions N: N persistent MQTT 3.1.1 sessions (clean session 0, client id fill-s<i>), each
              subscribing to fs/<i>/0 .. fs/<i>/<subs-1> at QoS 1, then --queued QoS 1 messages
              for each session while it is offline.
Works against any MQTT 3.1.1 broker. Plain sockets, no library.
"""
import argparse
import socket
import struct
import time


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pkt(ptype_flags, body):
    return bytes([ptype_flags]) + varint(len(body)) + body


def s16(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect(cid, clean):
    return pkt(0x10, s16("MQTT") + bytes([4, 0x02 if clean else 0x00]) + struct.pack("!H", 600)
               + s16(cid))


def publish(topic, payload, qos=0, retain=False, pid=1):
    body = s16(topic) + (struct.pack("!H", pid) if qos else b"") + payload
    return pkt(0x30 | (qos << 1) | (1 if retain else 0), body)


def read_packets(sock, buf, want_type, count):
    """Read until `count` packets of `want_type` arrived; returns the leftover bytes."""
    got = 0
    while got < count:
        while True:
            if len(buf) < 2:
                break
            i, mult, rem = 1, 1, 0
            while True:
                if i >= len(buf):
                    rem = None
                    break
                b = buf[i]
                rem += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            if rem is None or len(buf) < i + rem:
                break
            if buf[0] >> 4 == want_type:
                got += 1
            buf = buf[i + rem:]
            if got == count:
                return buf
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("broker closed the connection")
        buf += data
    return buf


def client(port, cid, clean=True):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(connect(cid, clean))
    return s, read_packets(s, b"", 2, 1)


def fill_retained(port, n, size):
    s, buf = client(port, "fill-retained")
    payload = b"r" * size
    chunk = 20000
    for start in range(0, n, chunk):
        s.sendall(b"".join(publish("ret/%d" % i, payload, retain=True)
                           for i in range(start, min(n, start + chunk))))
        s.sendall(pkt(0xC0, b""))                       # PINGREQ: keep pace with the broker
        buf = read_packets(s, buf, 13, 1)
    s.sendall(publish("ret/last", payload, qos=1, retain=True, pid=1))
    read_packets(s, buf, 4, 1)
    s.close()


def fill_sessions(port, n, subs, queued):
    batch = 500
    for start in range(0, n, batch):
        socks = []
        for i in range(start, min(n, start + batch)):
            s = socket.create_connection(("127.0.0.1", port))
            filters = b"".join(s16("fs/%d/%d" % (i, k)) + b"\x01" for k in range(subs))
            s.sendall(connect("fill-s%d" % i, False) + pkt(0x82, struct.pack("!H", 1) + filters))
            socks.append(s)
        for s in socks:
            read_packets(s, b"", 9, 1)                  # SUBACK (after CONNACK)
            s.sendall(pkt(0xE0, b""))                   # DISCONNECT
            s.close()
    if not queued:
        return
    p, buf = client(port, "fill-publisher")
    payload = b"q" * 64
    window, pid, pending = 10000, 0, 0
    for i in range(n):
        out = []
        for k in range(queued):
            pid = pid % 65000 + 1
            out.append(publish("fs/%d/%d" % (i, k % subs), payload, qos=1, pid=pid))
        p.sendall(b"".join(out))
        pending += queued
        if pending >= window:
            buf = read_packets(p, buf, 4, pending)
            pending = 0
    if pending:
        read_packets(p, buf, 4, pending)
    p.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--retained", type=int, default=0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--sessions", type=int, default=0)
    ap.add_argument("--subs", type=int, default=2)
    ap.add_argument("--queued", type=int, default=0)
    a = ap.parse_args()
    t0 = time.monotonic()
    if a.retained:
        fill_retained(a.port, a.retained, a.size)
        print("retained=%d in %.1f s" % (a.retained, time.monotonic() - t0))
    t0 = time.monotonic()
    if a.sessions:
        fill_sessions(a.port, a.sessions, a.subs, a.queued)
        print("sessions=%d subs=%d queued=%d in %.1f s" % (a.sessions, a.subs, a.queued,
                                                          time.monotonic() - t0))


if __name__ == "__main__":
    main()
