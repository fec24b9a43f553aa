"""The Mosquitto command-line clients (Debian mosquitto-clients) against the broker: what a
Mosquitto user does first (issue 2, "How it is checked": mosquitto_sub -t '#' -v and
mosquitto_pub work against it)."""

import os
import queue
import signal
import subprocess
import threading
import time

import pytest

from rawmqtt import RawClient
from support import MQTTv5, Paho, scaled

VERSIONS = ["mqttv31", "mqttv311", "mqttv5"]


class MosqSub:
    """mosquitto_sub running in the background; lines of its stdout land in a queue."""

    def __init__(self, port, *args, version="mqttv311", fmt="MSG|%t|%p|%q|%r"):
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-V", version, "-d"]
        if fmt:
            cmd += ["-F", fmt]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self.all = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.all.append(line)
            self.lines.put(line)

    def wait_for(self, pred, timeout=5.0, what="line"):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("mosquitto_sub: no %s in %r" % (what, self.all))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if pred(line):
                return line

    def wait_suback(self, n=1):
        for _ in range(n):
            self.wait_for(lambda l: "received SUBACK" in l, what="SUBACK")

    def message(self, timeout=5.0):
        """Next formatted message line, split into its fields (after 'MSG|')."""
        line = self.wait_for(lambda l: l.startswith("MSG|"), timeout, "message")
        return line.split("|")[1:]

    def no_message(self, window=1.0):
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return
            assert not line.startswith("MSG|"), "unexpected message %r" % line

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(scaled(5))
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._t.join(scaled(5))

    def wait_exit(self, timeout=10.0):
        self.proc.wait(scaled(timeout))
        self._t.join(scaled(5))
        return self.proc.returncode


def mosq_pub(port, *args, version="mqttv311", input=None, check=True):
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", version] + list(args)
    r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=scaled(15))
    if check:
        assert r.returncode == 0, "mosquitto_pub %r failed: %s" % (args, r.stdout.decode())
    return r


@pytest.fixture
def subs():
    started = []
    yield started
    for s in started:
        s.stop()


@pytest.mark.parametrize("version", VERSIONS)
def test_sub_hash_verbose_sees_pub(broker, subs, version):
    """mosquitto_sub -t '#' -v prints what mosquitto_pub sends, for each protocol version."""
    b = broker()
    s = MosqSub(b.port, "-t", "#", "-v", version=version, fmt=None)
    subs.append(s)
    s.wait_suback()
    mosq_pub(b.port, "-t", "mc/hello", "-m", "hello world", version=version)
    s.wait_for(lambda l: l == "mc/hello hello world", what="'mc/hello hello world'")


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_levels(broker, subs, qos):
    """mosquitto_pub -q / mosquitto_sub -q: delivered at the requested QoS
    [MQTT-3.8.4-8]."""
    b = broker()
    s = MosqSub(b.port, "-t", "mcq/t", "-q", "2")
    subs.append(s)
    s.wait_suback()
    mosq_pub(b.port, "-t", "mcq/t", "-m", "q%d" % qos, "-q", str(qos))
    assert s.message() == ["mcq/t", "q%d" % qos, str(qos), "0"]


def test_retained(broker, subs):
    """mosquitto_pub -r stores a retained message; a later mosquitto_sub receives it with
    the retain flag [MQTT-3.3.1-6]; mosquitto_pub -r -n deletes it [MQTT-3.3.1-10]."""
    b = broker()
    mosq_pub(b.port, "-t", "mcr/t", "-m", "kept", "-r", "-q", "1")
    s = MosqSub(b.port, "-t", "mcr/t", "-C", "1", "-W", str(int(scaled(10))))
    subs.append(s)
    assert s.message() == ["mcr/t", "kept", "0", "1"]
    assert s.wait_exit() == 0
    mosq_pub(b.port, "-t", "mcr/t", "-n", "-r", "-q", "1")
    s2 = MosqSub(b.port, "-t", "mcr/t")
    subs.append(s2)
    s2.wait_suback()
    s2.no_message(1.0)


def test_v5_properties(broker, subs):
    """MQTT 5 properties set by mosquitto_pub -D arrive at mosquitto_sub unaltered:
    user properties [MQTT-3.3.2-17], content type [MQTT-3.3.2-20], response topic
    [MQTT-3.3.2-15], correlation data [MQTT-3.3.2-16], payload format [MQTT-3.3.2-4]."""
    b = broker()
    s = MosqSub(b.port, "-t", "mc5/t", version="mqttv5", fmt="MSG|%t|%p|%P|%C|%R|%D|%F")
    subs.append(s)
    s.wait_suback()
    mosq_pub(b.port, "-t", "mc5/t", "-m", "props", "-q", "1",
             "-D", "publish", "user-property", "color", "blue",
             "-D", "publish", "content-type", "text/plain",
             "-D", "publish", "response-topic", "mc5/reply",
             "-D", "publish", "correlation-data", "c0rr",
             "-D", "publish", "payload-format-indicator", "1", version="mqttv5")
    fields = s.message()
    assert fields == ["mc5/t", "props", "color:blue", "text/plain", "mc5/reply", "c0rr", "1"]


def test_persistent_session_queue(broker, subs):
    """mosquitto_sub -c -i ID -q 1: messages published while it is away are delivered when it
    comes back [MQTT-3.1.2-5] (3.1.1), in order."""
    b = broker()
    s = MosqSub(b.port, "-c", "-i", "mc-persist", "-q", "1", "-t", "mcp/t")
    subs.append(s)
    s.wait_suback()
    s.stop()  # SIGTERM: mosquitto_sub disconnects, session stays
    for i in range(3):
        mosq_pub(b.port, "-t", "mcp/t", "-m", "m%d" % i, "-q", "1")
    s2 = MosqSub(b.port, "-c", "-i", "mc-persist", "-q", "1", "-t", "mcp/t", "-C", "3",
                 "-W", str(int(scaled(10))))
    subs.append(s2)
    got = [s2.message()[1] for _ in range(3)]
    assert got == ["m0", "m1", "m2"]
    assert s2.wait_exit() == 0


def test_will_when_killed(broker, subs):
    """mosquitto_sub --will-topic killed with SIGKILL: its will is published
    [MQTT-3.1.2-8]."""
    b = broker()
    w = RawClient(b.port, 4)
    w.connect("mc-will-watch")
    w.subscribe(("mcw/#", 1))
    s = MosqSub(b.port, "-t", "mcw/ignored", "--will-topic", "mcw/will", "--will-payload",
                "dead", "--will-qos", "1", "-i", "mc-willing")
    subs.append(s)
    s.wait_suback()
    s.stop(signal.SIGKILL)
    m = w.recv_publish(timeout=scaled(5))
    assert (m.topic, m.payload) == ("mcw/will", b"dead")
    w.disconnect()


def test_sys_not_in_hash(broker, subs):
    """mosquitto_sub -t '#' does not print $SYS topics [MQTT-4.7.2-1], while
    -t '$SYS/#' does."""
    b = broker("sys_interval 1")
    s = MosqSub(b.port, "-t", "#")
    subs.append(s)
    sys_sub = MosqSub(b.port, "-t", "$SYS/#", "-C", "1", "-W", str(int(scaled(6))))
    subs.append(sys_sub)
    s.wait_suback()
    assert sys_sub.message(timeout=6)[0].startswith("$SYS/")
    s.no_message(2.0)


def test_pub_lines_in_order(broker, subs):
    """mosquitto_pub -l sends one message per stdin line; all arrive in order
    [MQTT-4.6.0-5]."""
    b = broker()
    s = MosqSub(b.port, "-t", "mcl/t", "-q", "1")
    subs.append(s)
    s.wait_suback()
    lines = "".join("line %d\n" % i for i in range(30)).encode()
    mosq_pub(b.port, "-t", "mcl/t", "-l", "-q", "1", input=lines)
    got = [s.message()[1] for _ in range(30)]
    assert got == ["line %d" % i for i in range(30)]


def test_large_file_payload(broker, subs, tmp_path):
    """mosquitto_pub -f with a 300 KB file: mosquitto_sub sees the full length."""
    b = broker()
    f = tmp_path / "blob"
    f.write_bytes(os.urandom(300 * 1024))
    s = MosqSub(b.port, "-t", "mcf/t", fmt="MSG|%t|%l")
    subs.append(s)
    s.wait_suback()
    mosq_pub(b.port, "-t", "mcf/t", "-f", str(f), "-q", "1")
    assert s.message(timeout=10) == ["mcf/t", str(300 * 1024)]


def test_mosquitto_rr_request_response(broker):
    """mosquitto_rr (MQTT 5 request/response) gets the answer of a paho responder that
    replies on the Response Topic with the Correlation Data [MQTT-3.3.2-15],
    [MQTT-3.3.2-16]."""
    b = broker()
    responder = Paho(b.port, "mc-responder", protocol=MQTTv5)
    responder.connect()
    responder.subscribe("mcrr/req", 1)
    stop = threading.Event()

    def serve():
        from support import props
        while not stop.is_set():
            try:
                req = responder.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            p = props(CorrelationData=getattr(req.properties, "CorrelationData", b""))
            responder.c.publish(req.properties.ResponseTopic, b"answer to " + req.payload,
                                1, False, p)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = subprocess.run(["mosquitto_rr", "-h", "127.0.0.1", "-p", str(b.port),
                            "-t", "mcrr/req", "-e", "mcrr/resp", "-m", "question",
                            "-W", str(int(scaled(10)))],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=scaled(20))
        assert r.returncode == 0, r.stdout
        assert r.stdout.decode().strip() == "answer to question"
    finally:
        stop.set()
        t.join()
        responder.disconnect()


def test_sub_exit_after_suback(broker):
    """mosquitto_sub -E exits 0 once its subscriptions are acknowledged with success codes
    [MQTT-3.8.4-1]."""
    b = broker()
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-t", "a/b",
                        "-t", "c/+/d", "-t", "e/#", "-E", "-V", "mqttv5", "-q", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=scaled(10))
    assert r.returncode == 0, r.stdout
