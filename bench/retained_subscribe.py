#!/usr/bin/python3
"""SUBSCRIBE cost against a large retained store, A/B between broker binaries.

    bench/retained_subscribe.py --broker before=/tmp/old/petrel --broker after=build/petrel \\
        --sizes 100000,1000000 --persistence off,on --rounds 3

Each run starts a fresh broker (workers 2, on 127.0.0.1, a store under --workdir when
persistence is on), fills it over MQTT 3.1.1 with N retained messages `dev/<i>/state` plus 1 000
`grp/<j>/state` (64-byte payloads, pipelined QoS 0, then one QoS 1 publish whose PUBACK says the
broker has taken everything before it), then times:

  fill        seconds to publish all of them (broker side: one retained store insert each)
  exact       SUBSCRIBE dev/4242/state -> SUBACK + 1 retained PUBLISH
  plus1       SUBSCRIBE dev/4242/+     -> SUBACK + 1
  plus1000    SUBSCRIBE grp/+/state    -> SUBACK + 1 000
  hash1000    SUBSCRIBE grp/#          -> SUBACK + 1 000
  pub_*       round trip of a retained QoS 1 publish (to PUBACK) on a second connection, one at
              a time, while a third connection (another process) SUBSCRIBEs grp/# back to back:
              how long a subscription holds up retained publishes on the other worker.

Each SUBSCRIBE case is the median of --reps repetitions on one connection (MQTT 3.1.1 sends the
retained messages again for every SUBSCRIBE [MQTT-3.8.4-3]). RSS is read from /proc after the
fill. Runs are interleaved: round, size, persistence, then each broker in turn. One JSON line per
run on stdout, a table of medians over rounds at the end. Bounded: every read has a timeout and
every broker is stopped (SIGTERM, then SIGKILL) before the next starts. Plain sockets only.
"""
import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

# The MQTT 3.1.1 packet builders of the other durable-store tool, in this folder.
from durable_fill import connect, pkt, publish, s16

IO_TIMEOUT = 120.0


def subscribe(pid, topic):
    return pkt(0x82, struct.pack("!H", pid) + s16(topic) + b"\x00")


class Conn:
    """A blocking MQTT 3.1.1 connection that counts packets by type."""

    def __init__(self, port, cid):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.s.sendall(connect(cid, clean=True))
        self.wait({2: 1})

    def send(self, data):
        self.s.sendall(data)

    def wait(self, want):
        """Read until at least want[type] packets of each type arrived; other types are skipped.
        Returns the counts."""
        got = {t: 0 for t in want}
        deadline = time.monotonic() + IO_TIMEOUT
        buf = self.buf
        while any(got[t] < want[t] for t in want):
            pos = 0
            while True:
                if len(buf) - pos < 2:
                    break
                i, mult, rem = pos + 1, 1, 0
                while i < len(buf):
                    b = buf[i]
                    rem += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        break
                else:
                    break
                if len(buf) < i + rem:
                    break
                t = buf[pos] >> 4
                if t in got:
                    got[t] += 1
                pos = i + rem
            buf = buf[pos:]
            if all(got[t] >= want[t] for t in want):
                break
            if time.monotonic() > deadline:
                raise SystemExit("timeout waiting for %r, got %r" % (want, got))
            data = self.s.recv(1 << 20)
            if not data:
                raise SystemExit("broker closed the connection")
            buf += data
        self.buf = buf
        return got

    def close(self):
        self.s.close()


def fill(port, n):
    c = Conn(port, "rs-fill")
    payload = b"r" * 64
    chunk = 20000
    topics = ["grp/%d/state" % j for j in range(1000)]
    for start in range(0, n, chunk):
        topics.extend("dev/%d/state" % i for i in range(start, min(n, start + chunk)))
        c.send(b"".join(publish(t, payload, retain=True) for t in topics))
        topics = []
        c.send(pkt(0xC0, b""))  # PINGREQ: keep pace with the broker
        c.wait({13: 1})
    c.send(publish("fin/last", payload, qos=1, retain=True, pid=1))
    c.wait({4: 1})
    c.close()


def time_subscribe(c, topic, expect, reps):
    times = []
    for k in range(reps):
        t0 = time.perf_counter()
        c.send(subscribe(1 + k % 60000, topic))
        got = c.wait({9: 1, 3: expect})
        times.append(time.perf_counter() - t0)
        if got[3] != expect:
            raise SystemExit("%s: %d retained messages, expected %d" % (topic, got[3], expect))
    return statistics.median(times)


def storm(port, stop, done):
    """Another process: SUBSCRIBE grp/# back to back until `stop` is set."""
    c = Conn(port, "rs-storm")
    k = 0
    while not stop.is_set() and k < 100000:
        c.send(subscribe(1 + k % 60000, "grp/#"))
        c.wait({9: 1, 3: 1000})
        k += 1
    done.value = k
    c.close()


def publish_latency(port, seconds):
    stop = multiprocessing.Event()
    done = multiprocessing.Value("i", 0)
    p = multiprocessing.Process(target=storm, args=(port, stop, done))
    p.start()
    c = Conn(port, "rs-pub")
    time.sleep(0.2)  # let the storm start
    lat = []
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        t0 = time.perf_counter()
        c.send(publish("lat/x", b"p" * 64, qos=1, retain=True, pid=1 + k % 60000))
        c.wait({4: 1})
        lat.append(time.perf_counter() - t0)
        k += 1
    stop.set()
    p.join(IO_TIMEOUT)
    if p.is_alive():
        p.kill()
    c.close()
    lat.sort()
    return {"pub_n": len(lat), "pub_p50": lat[len(lat) // 2],
            "pub_p99": lat[min(len(lat) - 1, len(lat) * 99 // 100)], "pub_max": lat[-1],
            "storm_subscribes": done.value}


def rss(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(binary, workdir, persistence):
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    port = free_port()
    conf = ["listener %d 127.0.0.1" % port, "allow_anonymous true", "workers 2",
            "log_type error", "log_type warning", "max_queued_messages 100000"]
    if persistence:
        conf += ["persistence true", "persistence_location %s/store" % workdir]
    with open(os.path.join(workdir, "petrel.conf"), "w") as f:
        f.write("\n".join(conf) + "\n")
    log = open(os.path.join(workdir, "stderr.log"), "wb")
    proc = subprocess.Popen([binary, "-c", os.path.join(workdir, "petrel.conf")],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("%s exited during start-up, see %s/stderr.log" % (binary, workdir))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("%s did not start" % binary)


def stop_broker(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one_run(label, binary, n, persistence, args):
    workdir = os.path.join(args.workdir, label)
    proc, port = start_broker(binary, workdir, persistence)
    try:
        r = {"broker": label, "n": n, "persistence": persistence}
        t0 = time.perf_counter()
        fill(port, n)
        r["fill"] = time.perf_counter() - t0
        r.update(rss(proc.pid))
        c = Conn(port, "rs-sub")
        for name, topic, expect in (("exact", "dev/4242/state", 1), ("plus1", "dev/4242/+", 1),
                                    ("plus1000", "grp/+/state", 1000),
                                    ("hash1000", "grp/#", 1000)):
            r[name] = time_subscribe(c, topic, expect, args.reps)
        c.close()
        r.update(publish_latency(port, args.pub_seconds))
        return r
    finally:
        stop_broker(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--broker", action="append", required=True, help="label=path, repeatable")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--persistence", default="off,on")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--pub-seconds", type=float, default=3.0)
    ap.add_argument("--workdir", default="/var/tmp/bench-retained")
    args = ap.parse_args()
    brokers = [b.split("=", 1) for b in args.broker]
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [m == "on" for m in args.persistence.split(",")]
    runs = []
    for rnd in range(args.rounds):
        for n in sizes:
            for pers in modes:
                for label, binary in brokers:
                    r = one_run(label, binary, n, pers, args)
                    r["round"] = rnd
                    print(json.dumps(r), flush=True)
                    runs.append(r)
    keys = ("fill", "exact", "plus1", "plus1000", "hash1000", "pub_p50", "pub_p99", "pub_max")
    print("\nmedians over %d rounds (seconds to ms; RSS MB)" % args.rounds, file=sys.stderr)
    print("broker n pers " + " ".join(keys) + " storm VmRSS RssAnon", file=sys.stderr)
    for n in sizes:
        for pers in modes:
            for label, _ in brokers:
                rs = [r for r in runs if r["broker"] == label and r["n"] == n
                      and r["persistence"] == pers]
                med = [statistics.median(r[k] for r in rs) for k in keys]
                cells = ["%.1f s" % med[0]] + ["%.3f" % (v * 1000) for v in med[1:]]
                mem = [statistics.median(r.get(k, 0) for r in rs) / 1e6
                       for k in ("VmRSS", "RssAnon")]
                storms = statistics.median(r["storm_subscribes"] for r in rs)
                print(label, n, "on" if pers else "off", " ".join(cells), storms,
                      "%.0f %.0f" % tuple(mem), file=sys.stderr)


if __name__ == "__main__":
    main()
