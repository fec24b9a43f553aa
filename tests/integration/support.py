"""Shared helpers of the integration suite: starting the broker binary, timeouts, and a
synchronous wrapper around paho-mqtt.

Environment:
  PETREL_BIN        broker binary (default: <repo>/build/petrel)
  PETREL_SANITIZED  1 when the binary is a sanitizer build: every timeout is tripled
  PETREL_WORKERS    worker threads for every broker the suite starts (unset: the default)
"""

import os
import queue
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PETREL_BIN = os.environ.get("PETREL_BIN") or str(REPO_ROOT / "build" / "petrel")
SANITIZED = os.environ.get("PETREL_SANITIZED") == "1"
WORKERS = os.environ.get("PETREL_WORKERS")
SCALE = 3.0 if SANITIZED else 1.0

# Markers of a crash or a sanitizer report in the broker's stderr.
CRASH_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "ERROR: UndefinedBehaviorSanitizer", "WARNING: ThreadSanitizer")


def scaled(seconds):
    """A timeout, made longer for sanitizer builds."""
    return seconds * SCALE


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    """Poll `pred` until it returns a true value (returned) or the scaled timeout passes."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


class BrokerStartError(Exception):
    pass


class Broker:
    """One broker process. Start with `start()`; `stop()` sends SIGTERM and waits."""

    def __init__(self, config_lines=(), args=(), workdir=None, use_config=True,
                 default_anonymous=True, port=None):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="petrel-it-"))
        # Without a fixed port the broker binds port 0 and the port is read from its log: no
        # other test (pytest -n runs several at once) can take it between choice and bind.
        self.port_from_log = port is None and use_config
        self.port = port or (0 if self.port_from_log else free_port())
        self.args = list(args)
        self.config_lines = list(config_lines)
        self.use_config = use_config
        self.default_anonymous = default_anonymous
        self.proc = None
        self.expected_exit = False  # set by kill(): a SIGKILL is then not a crash
        self.config_path = self.workdir / "petrel.conf"
        self.log_path = self.workdir / "stderr.log"
        self.out_path = self.workdir / "stdout.log"

    @property
    def pid(self):
        return self.proc.pid

    def write_config(self):
        lines = ["# written by tests/integration/conftest.py",
                 "listener %d 127.0.0.1" % (0 if self.port_from_log else self.port)]
        # Mosquitto 2 refuses anonymous clients by default once a listener is configured; be
        # explicit so the suite also runs against a reference broker.
        if self.default_anonymous and not any(l.split()[:1] == ["allow_anonymous"]
                                              for l in self.config_lines):
            lines.append("allow_anonymous true")
        lines += self.config_lines
        # PETREL_WORKERS runs the whole suite with that many worker threads (make test-tsan).
        if WORKERS and not any(l.split()[:1] == ["workers"] for l in self.config_lines):
            lines.append("workers %s" % WORKERS)
        self.config_path.write_text("\n".join(lines) + "\n")

    def command(self):
        cmd = [PETREL_BIN]
        if self.use_config:
            self.write_config()
            cmd += ["-c", str(self.config_path)]
        return cmd + self.args

    def start(self, timeout=10.0):
        if not os.path.exists(PETREL_BIN):
            raise BrokerStartError("broker binary %s does not exist (build it first)"
                                   % PETREL_BIN)
        self._err = open(self.log_path, "wb")
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=str(self.workdir))
        deadline = time.monotonic() + scaled(timeout)
        while True:
            if self.proc.poll() is not None:
                self.start_failed = True  # already reported by this exception
                raise BrokerStartError("broker exited with %s during start-up:\n%s"
                                       % (self.proc.returncode, self.log()))
            if self.port_from_log and not self.port:
                m = re.search(r"listening address=\S+ port=(\d+) protocol=(?!http)", self.log())
                if m:
                    self.port = int(m.group(1))
            try:
                if self.port:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError("broker did not accept connections on port %d:\n%s"
                                       % (self.port, self.log()))
            time.sleep(0.02)

    def log(self):
        """stderr so far (and stdout, which some brokers use for logs)."""
        text = ""
        for p in (self.log_path, self.out_path):
            try:
                text += p.read_text(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then wait; returns the exit code. SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                self.hung = True
        self._close_files()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.expected_exit = True
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, "_err", None), getattr(self, "_out", None)):
            if f is not None and not f.closed:
                f.close()

    def crash_report(self):
        """None when the process ended cleanly, else a description of what went wrong."""
        problems = []
        if getattr(self, "hung", False):
            problems.append("did not exit within %.0f s of SIGTERM" % scaled(10))
        rc = self.proc.returncode if self.proc else None
        # A broker that refused to start (exit status > 0) has been reported by start();
        # only a signal counts as a crash then.
        refused = getattr(self, "start_failed", False) and rc is not None and rc > 0
        if (rc is not None and not self.expected_exit and not refused
                and rc not in (0, -signal.SIGTERM)):
            problems.append("exit status %d%s" % (rc, " (signal %s)" % signal.Signals(-rc).name
                                                    if rc < 0 else ""))
        log = self.log()
        for marker in CRASH_MARKERS:
            if marker in log:
                problems.append("stderr contains %r" % marker)
        if problems:
            return "broker pid %s: %s\n--- broker log ---\n%s" % (
                self.proc.pid if self.proc else "?", "; ".join(problems), log[-8000:])
        return None


# ------------------------------------------------------------------------------- HTTP API

API_KEY = "test-write-key-0123456789"
API_READ_KEY = "test-read-key-0123456789"


def api_config(workdir, extra_keys=()):
    """Configuration lines for an HTTP API listener on an ephemeral loopback port with a write
    key (API_KEY, name "app") and a read key (API_READ_KEY, name "viewer")."""
    keys = Path(workdir) / "api-keys"
    keys.write_text("# test keys\n%s write app\n%s read viewer\n%s"
                    % (API_KEY, API_READ_KEY, "".join(k + "\n" for k in extra_keys)))
    return ["http_listener 0 127.0.0.1", "http_api_key_file %s" % keys]


def http_port(broker):
    """The port of the broker's HTTP API listener, from its log."""
    m = wait_for(lambda: re.search(r"listening address=\S+ port=(\d+) protocol=http",
                                   broker.log()), what="the http listener in the log")
    return int(m.group(1))


def http_call(port, method, path, body=None, key=API_KEY, headers=None, raw=None,
              conn=None, timeout=10.0):
    """One HTTP request to the API; returns (status, headers dict, parsed JSON or text).
    `body` is sent as JSON, `raw` as given. `conn` reuses an http.client connection."""
    import http.client
    import json as _json
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=scaled(timeout))
    hdrs = dict(headers or {})
    if key is not None:
        hdrs.setdefault("Authorization", "Bearer " + key)
    data = raw
    if body is not None:
        data = _json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        ctype = resp.getheader("Content-Type", "")
        parsed = _json.loads(payload) if ctype.startswith("application/json") and payload \
            else payload.decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed
    finally:
        if own:
            conn.close()


def run_broker_once(args, timeout=5.0, cwd=None):
    """Run the binary expecting it to exit by itself (bad configuration). Returns
    (returncode, stderr+stdout). A broker still running after `timeout` is killed and
    returncode is None."""
    proc = subprocess.Popen([PETREL_BIN] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=scaled(timeout))
        return proc.returncode, (err + out).decode(errors="replace")
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=scaled(5))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return None, (err + out).decode(errors="replace")


# ---------------------------------------------------------------------------- paho wrapper

import paho.mqtt.client as mqtt  # noqa: E402  (Debian's python3-paho-mqtt 1.6.1)
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

MQTTv31 = mqtt.MQTTv31
MQTTv311 = mqtt.MQTTv311
MQTTv5 = mqtt.MQTTv5


def props(packet_type=PacketTypes.PUBLISH, **kw):
    """paho Properties for `packet_type`, e.g. props(MessageExpiryInterval=10)."""
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def rc_value(rc):
    """A paho reason code object or int as an int."""
    return rc if isinstance(rc, int) else rc.value


class Paho:
    """paho-mqtt client driven synchronously: every call waits for its acknowledgement."""

    def __init__(self, port, client_id="", protocol=MQTTv311, clean=True, keepalive=60,
                 userdata=None):
        self.port = port
        self.protocol = protocol
        kw = {}
        if protocol != MQTTv5:
            kw["clean_session"] = clean
        self.clean = clean
        self.c = mqtt.Client(client_id=client_id, protocol=protocol,
                             reconnect_on_failure=False, **kw)
        self.keepalive = keepalive
        self.messages = queue.Queue()
        self.connack = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.disconnect_props = None
        self._acks = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe

    # callbacks (paho's network thread)
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack = (rc_value(rc), flags.get("session present", 0), properties)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _on_disconnect(self, client, userdata, rc, properties=None):
        if not self.disconnected.is_set():
            self.disconnect_rc = rc_value(rc) if rc is not None else None
            self.disconnect_props = properties
        self.disconnected.set()
        self.connected.set()  # wake a connect() waiting on a refused connection

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self._cond:
            self._acks[mid] = [rc_value(g) for g in granted]
            self._cond.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, properties=None, reasons=None):
        with self._cond:
            self._acks[mid] = reasons
            self._cond.notify_all()

    def _wait_ack(self, mid, timeout):
        deadline = time.monotonic() + scaled(timeout)
        with self._cond:
            while mid not in self._acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no acknowledgement for mid %d" % mid)
                self._cond.wait(left)
            return self._acks.pop(mid)

    # API
    def will_set(self, topic, payload=None, qos=0, retain=False, properties=None):
        self.c.will_set(topic, payload, qos, retain, properties)
        return self

    def connect(self, properties=None, clean_start=None, timeout=5.0, expect_rc=0):
        """Connect and wait for the CONNACK; returns (rc, session_present, properties)."""
        kw = {}
        if self.protocol == MQTTv5:
            kw["clean_start"] = self.clean if clean_start is None else clean_start
            kw["properties"] = properties
        self.c.connect("127.0.0.1", self.port, self.keepalive, **kw)
        self.c.loop_start()
        if not self.connected.wait(scaled(timeout)):
            raise AssertionError("no CONNACK within %.0f s" % scaled(timeout))
        if self.connack is None:
            raise AssertionError("connection closed before CONNACK (rc %r)" % self.disconnect_rc)
        if expect_rc is not None:
            assert self.connack[0] == expect_rc, "CONNACK code %r" % (self.connack[0],)
        return self.connack

    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=5.0):
        """Subscribe and return the list of granted QoS / reason codes."""
        if self.protocol == MQTTv5:
            opts = options if options is not None else SubscribeOptions(qos=qos)
            if isinstance(topic, list):
                rc, mid = self.c.subscribe(topic, properties=properties)
            else:
                rc, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, "subscribe failed locally: %d" % rc
        return self._wait_ack(mid, timeout)

    def unsubscribe(self, topic, timeout=5.0):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return self._wait_ack(mid, timeout)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, timeout=5.0):
        """Publish; for QoS 1/2 wait until the flow is complete."""
        info = self.c.publish(topic, payload, qos, retain, properties)
        if qos > 0:
            info.wait_for_publish(scaled(timeout))
            assert info.is_published(), "QoS %d publish to %s not acknowledged" % (qos, topic)
        return info

    def expect_message(self, timeout=5.0):
        try:
            return self.messages.get(timeout=scaled(timeout))
        except queue.Empty:
            raise AssertionError("no message within %.0f s" % scaled(timeout))

    def expect_messages(self, n, timeout=5.0):
        return [self.expect_message(timeout) for _ in range(n)]

    def expect_no_message(self, window=1.0):
        try:
            msg = self.messages.get(timeout=window)
        except queue.Empty:
            return
        raise AssertionError("unexpected message on %s: %r" % (msg.topic, msg.payload))

    def wait_disconnected(self, timeout=5.0):
        if not self.disconnected.wait(scaled(timeout)):
            raise AssertionError("client still connected after %.0f s" % scaled(timeout))
        return self.disconnect_rc

    def disconnect(self, reasoncode=None, properties=None):
        if not self.disconnected.is_set():
            if self.protocol == MQTTv5 and reasoncode is not None:
                from paho.mqtt.reasoncodes import ReasonCodes
                rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reasoncode)
                self.c.disconnect(rc, properties)
            else:
                self.c.disconnect()
            self.disconnected.wait(scaled(5))
        self.c.loop_stop()

    def close(self):
        """Stop without DISCONNECT where possible (abrupt end of the network connection)."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
