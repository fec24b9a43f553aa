"""MQTT over WebSocket (issue 7): a `protocol websockets` listener beside the TCP one.

Raw sockets check the HTTP upgrade (101 with the accept key and the sub-protocol echoed; 400 for
a bad request, 404 for another path, 426 without upgrade headers) and the framing rules (an
unmasked client frame closes with 1002, text with 1003, an oversized frame with 1009; MQTT bytes
split across many tiny frames or fragments are reassembled; ping is answered with pong; a close
frame is answered, then the connection ends). paho-mqtt with transport="websockets" then does
pub/sub, QoS 1/2, P2P and wills with a TCP client on the other side, in MQTT 3.1.1 and 5, and
MQTT.js (Node) does pub/sub and P2P with a paho TCP client. The same over TLS (wss://, a
`protocol websockets` listener with certfile) at the end.
"""

import os
import re
import shutil
import socket
import ssl
import struct
import subprocess

import pytest

import rawmqtt
from rawmqtt import CONNACK, PUBLISH, SUBACK
from support import MQTTv311, MQTTv5, REPO_ROOT, Paho, mqtt, scaled, wait_for
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WSClient,
                      close_payload, frame, handshake, read_head, request)


def ws_listener(broker, *lines):
    """A broker with its TCP listener (b.port) and a WebSocket listener (b.ws_port). Both bind
    port 0; the ports are read from the log, in configuration order."""
    b = broker("listener 0 127.0.0.1", "protocol websockets", *lines)

    def ports():
        found = [int(p) for p in re.findall(r"listening address=\S+ port=(\d+)", b.log())]
        return found[1] if len(found) >= 2 else None
    b.ws_port = wait_for(ports, what="the WebSocket listener's port")
    return b


@pytest.fixture
def ws(broker):
    """ws(*config_lines) -> a started broker with b.port (TCP) and b.ws_port (WebSocket)."""
    return lambda *lines: ws_listener(broker, *lines)


class WSPaho(Paho):
    """The suite's synchronous paho wrapper, over WebSocket."""

    def __init__(self, port, client_id="", protocol=MQTTv311, path="/mqtt", **kw):
        super().__init__(port, client_id, protocol, **kw)
        tcp = self.c
        extra = {} if protocol == MQTTv5 else {"clean_session": self.clean}
        self.c = mqtt.Client(client_id=client_id, protocol=protocol, transport="websockets",
                             reconnect_on_failure=False, **extra)
        self.c.ws_set_options(path=path)
        for name in ("on_connect", "on_message", "on_disconnect", "on_subscribe",
                     "on_unsubscribe"):
            setattr(self.c, name, getattr(tcp, name))

    def close(self):
        """End the TCP connection under the WebSocket, with no DISCONNECT and no close frame."""
        self.c.loop_stop()
        wrapper = self.c.socket()
        if wrapper is not None:
            try:
                wrapper._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            wrapper._socket.close()


# ---------------------------------------------------------------------------- handshake

def test_upgrade_answers_101_with_protocol(ws):
    b = ws()
    for offered, chosen in ((("mqtt",), "mqtt"), (("mqttv3.1",), "mqttv3.1"),
                            (("chat", "mqtt"), "mqtt"), ((), None)):
        status, headers, sock, _ = handshake(b.ws_port, protocols=offered)
        sock.close()
        assert status == 101
        assert headers["upgrade"].lower() == "websocket"
        assert headers["connection"].lower() == "upgrade"
        assert headers.get("sec-websocket-protocol") == chosen


def test_bad_upgrade_request_gets_400(ws):
    b = ws()
    for raw in (request(omit=("sec-websocket-key",))[0],
                request(key="not-a-key")[0],
                request(omit=("host",))[0],
                request(protocols=("chat",))[0],
                b"GET /mqtt\r\nHost: x\r\n\r\n",
                b"POST /mqtt HTTP/1.1\r\nHost: x\r\n\r\n",
                b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\r\n\r\n"):  # MQTT, wrong port
        status, headers, sock, body = handshake(b.ws_port, raw=raw)
        assert status == 400, raw
        assert headers["connection"] == "close"
        sock.settimeout(scaled(5))
        while sock.recv(4096):  # then the broker closes
            pass
        sock.close()


def test_wrong_path_gets_404(ws):
    b = ws()
    for path in ("/", "/other", "/mqtt/x", "/MQTT"):
        status, _, sock, _ = handshake(b.ws_port, path=path)
        sock.close()
        assert status == 404, path
    status, _, sock, _ = handshake(b.ws_port, path="/mqtt?client=1")
    sock.close()
    assert status == 101


def test_missing_upgrade_headers_get_426(ws):
    b = ws()
    for omit in (("upgrade",), ("connection",), ("upgrade", "connection")):
        status, headers, sock, _ = handshake(b.ws_port, raw=request(omit=omit)[0])
        sock.close()
        assert status == 426, omit
        assert headers["sec-websocket-version"] == "13"
    status, headers, sock, _ = handshake(
        b.ws_port, raw=request(omit=("sec-websocket-version",),
                               extra=("Sec-WebSocket-Version: 8",))[0])
    sock.close()
    assert status == 426


def test_request_in_pieces_and_oversized_head(ws):
    b = ws()
    req, key = request()
    sock = socket.create_connection(("127.0.0.1", b.ws_port), timeout=scaled(5))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(req), 7):
        sock.sendall(req[i:i + 7])
    status, _, _ = read_head(sock)
    assert status == 101
    sock.close()
    big = b"GET /mqtt HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 10000 + b"\r\n\r\n"
    status, _, sock, _ = handshake(b.ws_port, raw=big)
    sock.close()
    assert status == 431


def test_configured_path(ws):
    b = ws("websockets_path /ws/mqtt")
    status, _, sock, _ = handshake(b.ws_port, path="/mqtt")
    sock.close()
    assert status == 404
    c = WSClient(b.ws_port, path="/ws/mqtt")
    c.connect("custom-path")
    c.disconnect()


def test_tcp_listener_still_speaks_mqtt(ws):
    b = ws()
    c = rawmqtt.RawClient(b.port)
    c.connect("plain-tcp")
    c.disconnect()


# ---------------------------------------------------------------------------- frames

def test_unmasked_client_frame_closes_1002(ws):
    b = ws()
    c = WSClient(b.ws_port)
    c.sock.sendall(frame(OP_BINARY, rawmqtt.connect("unmasked"), mask=False))
    with pytest.raises(rawmqtt.Closed):
        c.recv()
    assert c.close_status == 1002
    c.expect_eof()
    assert "websocket closed status=1002" in b.log()


def test_unmasked_frame_after_connect_closes_1002(ws):
    b = ws()
    c = WSClient(b.ws_port)
    c.connect("masked-then-not")
    c.sock.sendall(frame(OP_BINARY, rawmqtt.pingreq(), mask=False))
    with pytest.raises(rawmqtt.Closed):
        c.recv()
    assert c.close_status == 1002


def test_text_frame_closes_1003(ws):
    b = ws()
    c = WSClient(b.ws_port)
    c.send_frame(OP_TEXT, b"hello")
    with pytest.raises(rawmqtt.Closed):
        c.recv()
    assert c.close_status == 1003


def test_oversized_frame_closes_1009(ws):
    b = ws("max_packet_size 1000")
    c = WSClient(b.ws_port)
    c.connect("big-frame")
    # The limit is the packet limit, but never below 64 KiB (several packets may share a
    # message). A header announcing more is refused before any payload arrives.
    c.sock.sendall(frame(OP_BINARY, b"", length=65537)[:14])
    with pytest.raises(rawmqtt.Closed):
        c.recv()
    assert c.close_status == 1009


def test_mqtt_bytes_split_across_tiny_frames(ws):
    b = ws()
    tcp = Paho(b.port, "tiny-tcp", MQTTv5)
    tcp.connect()
    for fragment in (False, True):
        cid = "tiny-%d" % fragment
        c = WSClient(b.ws_port, split=1, fragment=fragment)  # one MQTT byte per frame
        assert c.connect(cid).rc == 0
        c.subscribe(("tiny/#", 1))
        payload = bytes(range(256)) * 40
        tcp.publish("tiny/x", payload, qos=1)
        m = c.recv_publish()
        assert (m.topic, m.payload, m.qos) == ("tiny/x", payload, 1)
        # and the other way: a QoS 2 publish in one-byte frames, acknowledged in them too
        tcp.subscribe("back/#", 2)
        c.publish("back/%s" % cid, b"from tiny frames", qos=2, pid=7)
        m = tcp.expect_message()
        assert (m.topic, m.payload, m.qos) == ("back/%s" % cid, b"from tiny frames", 2)
        c.disconnect()
    tcp.disconnect()


def test_packets_and_frames_in_any_split(ws):
    """Frame boundaries fall anywhere: several packets in one frame, a packet over three."""
    b = ws()
    c = WSClient(b.ws_port)
    stream = (rawmqtt.connect("anysplit") + rawmqtt.subscribe(1, [("any/#", 0)])
              + rawmqtt.publish("any/1", b"abc") + rawmqtt.pingreq())
    cuts = [0, 5, 6, 30, 31, len(stream) - 1, len(stream)]
    data = b"".join(frame(OP_BINARY, stream[a:z]) for a, z in zip(cuts, cuts[1:]))
    for i in range(0, len(data), 3):  # and the frames themselves dribble in
        c.sock.sendall(data[i:i + 3])
    assert c.recv().type == CONNACK
    assert c.recv().type == SUBACK
    m = c.recv()
    assert (m.type, m.topic, m.payload) == (PUBLISH, "any/1", b"abc")
    assert c.recv().type == rawmqtt.PINGRESP


def test_ping_gets_pong(ws):
    b = ws()
    c = WSClient(b.ws_port)
    c.send_frame(OP_PING, b"are you there")
    assert c.recv_frame() == (True, OP_PONG, b"are you there")
    c.connect("pinger")
    # between the fragments of a message, too
    msg = rawmqtt.pingreq()
    c.send_frame(OP_BINARY, msg[:1], fin=False)
    c.send_frame(OP_PING, b"mid")
    c.send_frame(OP_CONT, msg[1:])
    assert c.recv_frame() == (True, OP_PONG, b"mid")
    assert c.recv().type == rawmqtt.PINGRESP
    c.send_frame(OP_PONG, b"unsolicited")  # ignored
    assert c.ping().type == rawmqtt.PINGRESP


def test_close_handshake(ws):
    b = ws()
    c = WSClient(b.ws_port)
    c.connect("closer", will={"topic": "will/closer", "payload": b"gone", "qos": 0})
    watcher = Paho(b.port, "close-watcher", MQTTv5)
    watcher.connect()
    watcher.subscribe("will/#")
    c.send_frame(OP_CLOSE, close_payload(1000, b"bye"))
    assert c.recv_frame() == (True, OP_CLOSE, struct.pack("!H", 1000))
    c.expect_eof()
    # A WebSocket close without DISCONNECT is an abrupt end for MQTT: the will goes out.
    m = watcher.expect_message()
    assert (m.topic, m.payload) == ("will/closer", b"gone")
    watcher.disconnect()


def test_mqtt_disconnect_over_websocket_ends_cleanly(ws):
    b = ws()
    watcher = Paho(b.port, "dc-watcher", MQTTv5)
    watcher.connect()
    watcher.subscribe("will/#")
    c = WSClient(b.ws_port)
    c.connect("polite-ws", will={"topic": "will/polite", "payload": b"no"})
    c.disconnect()
    watcher.expect_no_message(0.5)
    watcher.disconnect()


# ---------------------------------------------------------------------------- paho clients

@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_paho_websocket_pubsub_with_tcp_client(ws, protocol):
    b = ws()
    wsc = WSPaho(b.ws_port, "paho-ws-%d" % protocol, protocol)
    wsc.connect()
    tcp = Paho(b.port, "paho-tcp-%d" % protocol, protocol)
    tcp.connect()
    assert wsc.subscribe("to-ws/#", 2) == [2]
    assert tcp.subscribe("to-tcp/#", 2) == [2]
    big = bytes(range(256)) * 1200  # 300 KiB: many frames and socket writes
    for qos in (0, 1, 2):
        tcp.publish("to-ws/%d" % qos, b"q%d" % qos, qos=qos)
        m = wsc.expect_message()
        assert (m.topic, m.payload, m.qos) == ("to-ws/%d" % qos, b"q%d" % qos, qos)
        wsc.publish("to-tcp/%d" % qos, b"r%d" % qos, qos=qos)
        m = tcp.expect_message()
        assert (m.topic, m.payload, m.qos) == ("to-tcp/%d" % qos, b"r%d" % qos, qos)
    tcp.publish("to-ws/big", big, qos=1)
    assert wsc.expect_message().payload == big
    wsc.publish("to-tcp/big", big, qos=1)
    assert tcp.expect_message().payload == big
    wsc.disconnect()
    tcp.disconnect()


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_paho_websocket_p2p_with_tcp_client(ws, protocol):
    """P2P both ways: the receiver subscribes to nothing."""
    b = ws()
    wsc = WSPaho(b.ws_port, "GID_web@@@ws-%d" % protocol, protocol)
    wsc.connect()
    tcp = Paho(b.port, "GID_web@@@tcp-%d" % protocol, protocol)
    tcp.connect()
    for qos in (0, 1, 2):
        tcp.publish("app/p2p/GID_web@@@ws-%d" % protocol, b"to ws %d" % qos, qos=qos)
        m = wsc.expect_message()
        assert (m.topic, m.payload, m.qos) == ("app/p2p/GID_web@@@ws-%d" % protocol,
                                               b"to ws %d" % qos, qos)
        wsc.publish("app/p2p/GID_web@@@tcp-%d" % protocol, b"to tcp %d" % qos, qos=qos)
        m = tcp.expect_message()
        assert (m.topic, m.payload, m.qos) == ("app/p2p/GID_web@@@tcp-%d" % protocol,
                                               b"to tcp %d" % qos, qos)
    wsc.expect_no_message(0.3)
    wsc.disconnect()
    tcp.disconnect()


def test_paho_websocket_will_and_session(ws):
    """A will from a WebSocket client reaches a TCP subscriber; a persistent WebSocket session
    gets what was queued while it was away."""
    b = ws()
    tcp = Paho(b.port, "will-tcp", MQTTv5)
    tcp.connect()
    tcp.subscribe("will/#", 1)
    wsc = WSPaho(b.ws_port, "will-ws", MQTTv311)
    wsc.will_set("will/ws", b"ws client lost", qos=1)
    wsc.connect()
    wsc.close()  # no DISCONNECT
    m = tcp.expect_message()
    assert (m.topic, m.payload) == ("will/ws", b"ws client lost")

    p = WSPaho(b.ws_port, "persist-ws", MQTTv311, clean=False)
    p.connect()
    p.subscribe("queued/#", 1)
    p.disconnect()
    tcp.publish("queued/1", b"while away", qos=1)
    p = WSPaho(b.ws_port, "persist-ws", MQTTv311, clean=False)
    assert p.connect()[1] == 1  # session present
    m = p.expect_message()
    assert (m.topic, m.payload) == ("queued/1", b"while away")
    p.disconnect()
    tcp.disconnect()


def test_many_websocket_clients(ws):
    """Enough clients that, with several workers, connections move between them."""
    b = ws()
    tcp = Paho(b.port, "fan-tcp", MQTTv5)
    tcp.connect()
    clients = []
    for i in range(12):
        c = WSPaho(b.ws_port, "fan-ws-%d" % i, MQTTv5)
        c.connect()
        c.subscribe("fan/all", 1)
        clients.append(c)
    tcp.publish("fan/all", b"everyone", qos=1)
    for i, c in enumerate(clients):
        tcp.publish("app/p2p/fan-ws-%d" % i, b"just %d" % i, qos=1)
    for i, c in enumerate(clients):
        got = sorted(m.payload for m in c.expect_messages(2))
        assert got == sorted([b"everyone", b"just %d" % i])
        c.disconnect()
    tcp.disconnect()


# ---------------------------------------------------------------------------- MQTT.js

MQTTJS_SCRIPT = r"""
import fs from 'node:fs';
import mqtt from 'mqtt';
const [url, id, protocolVersion, caFile] = process.argv.slice(2);
const tls = caFile ? { ca: fs.readFileSync(caFile), rejectUnauthorized: true } : {};
const c = await mqtt.connectAsync(url, { clientId: id, protocolVersion: Number(protocolVersion),
                                        reconnectPeriod: 0, ...tls });
await c.subscribeAsync('js-in/#', { qos: 1 });
let n = 0;
c.on('message', async (topic, payload, packet) => {
  await c.publishAsync('js-out/' + topic, 're: ' + payload, { qos: packet.qos });
  if (++n === 2) { await c.endAsync(); process.exit(0); }
});
console.log('ready');
setTimeout(() => { console.error('timed out'); process.exit(1); }, 20000);
"""


def run_mqttjs_against_paho(b, tmp_path, protocol, url, ca=None):
    """MQTT.js (Node) at `url` and paho-mqtt on TCP: pub/sub and P2P, both directions."""
    node = shutil.which("node")
    modules = REPO_ROOT / "tests" / "js" / "node_modules"
    if node is None or not (modules / "mqtt").is_dir():
        pytest.skip("node or MQTT.js missing (cd tests/js && npm ci)")
    (tmp_path / "client.mjs").write_text(MQTTJS_SCRIPT)
    os.symlink(modules, tmp_path / "node_modules")
    tcp = Paho(b.port, "paho-tcp-js-%d" % protocol, protocol)
    tcp.connect()
    tcp.subscribe("js-out/#", 1)
    js_id = "GID_js@@@node-%d" % protocol
    proc = subprocess.Popen([node, "client.mjs", url, js_id, "5" if protocol == MQTTv5 else "4",
                             ca or ""], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        tcp.publish("js-in/news", b"pub/sub", qos=1)           # pub/sub to MQTT.js
        tcp.publish("app/p2p/%s" % js_id, b"p2p", qos=1)       # P2P to MQTT.js
        got = sorted((m.topic, m.payload) for m in tcp.expect_messages(2))
        assert got == [("js-out/app/p2p/%s" % js_id, b"re: p2p"),
                       ("js-out/js-in/news", b"re: pub/sub")]
        assert proc.wait(scaled(10)) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    tcp.disconnect()


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_mqttjs_over_websocket_with_paho_tcp(ws, tmp_path, protocol):
    b = ws()
    run_mqttjs_against_paho(b, tmp_path, protocol, "ws://127.0.0.1:%d/mqtt" % b.ws_port)


# ---------------------------------------------------------------------------- wss://

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A CA and a server certificate for localhost and 127.0.0.1 (EC P-256, made by openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("wss-certs")

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True,
                       timeout=scaled(30))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=petrel test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf")
    return {"ca": str(d / "ca.crt"), "cert": str(d / "server.crt"), "key": str(d / "server.key")}


@pytest.fixture
def wss(broker, tls_files):
    """wss(*config_lines) -> a broker whose b.ws_port is a WebSocket listener over TLS;
    b.tls is a client ssl.SSLContext trusting its CA, b.ca the CA file."""
    def start(*lines):
        b = ws_listener(broker, "certfile %s" % tls_files["cert"],
                        "keyfile %s" % tls_files["key"], *lines)
        b.ca = tls_files["ca"]
        b.tls = ssl.create_default_context(cafile=b.ca)
        return b
    return start


class WSSPaho(WSPaho):
    def __init__(self, port, client_id, protocol, ca, **kw):
        super().__init__(port, client_id, protocol, **kw)
        self.c.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)


def test_wss_upgrade_and_frames(wss):
    b = wss()
    status, _, sock, _ = handshake(b.ws_port, tls=b.tls, path="/elsewhere")
    sock.close()
    assert status == 404
    c = WSClient(b.ws_port, tls=b.tls, split=1)  # one MQTT byte per frame, in TLS records
    c.connect("wss-raw")
    c.subscribe(("wss/#", 1))
    c.publish("wss/x", b"y" * 100000, qos=1)
    m = c.recv_publish()
    assert (m.topic, len(m.payload)) == ("wss/x", 100000)
    c.send_frame(OP_PING, b"tls")
    assert c.recv_frame() == (True, OP_PONG, b"tls")
    c.sock.sendall(frame(OP_BINARY, rawmqtt.pingreq(), mask=False))
    with pytest.raises(rawmqtt.Closed):
        c.recv()
    assert c.close_status == 1002


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_paho_wss_pubsub_and_p2p_with_tcp_client(wss, protocol):
    b = wss()
    web = WSSPaho(b.ws_port, "GID_web@@@wss-%d" % protocol, protocol, b.ca)
    web.connect()
    tcp = Paho(b.port, "GID_web@@@tcp-%d" % protocol, protocol)
    tcp.connect()
    web.subscribe("to-wss/#", 2)
    tcp.subscribe("to-tcp/#", 2)
    big = bytes(range(256)) * 1200
    for qos in (0, 1, 2):
        tcp.publish("to-wss/%d" % qos, b"q%d" % qos, qos=qos)
        m = web.expect_message()
        assert (m.topic, m.payload, m.qos) == ("to-wss/%d" % qos, b"q%d" % qos, qos)
        web.publish("to-tcp/%d" % qos, b"r%d" % qos, qos=qos)
        m = tcp.expect_message()
        assert (m.topic, m.payload, m.qos) == ("to-tcp/%d" % qos, b"r%d" % qos, qos)
        tcp.publish("app/p2p/GID_web@@@wss-%d" % protocol, b"p2p %d" % qos, qos=qos)
        m = web.expect_message()
        assert (m.topic, m.payload) == ("app/p2p/GID_web@@@wss-%d" % protocol, b"p2p %d" % qos)
        web.publish("app/p2p/GID_web@@@tcp-%d" % protocol, b"p2p back %d" % qos, qos=qos)
        m = tcp.expect_message()
        assert (m.topic, m.payload) == ("app/p2p/GID_web@@@tcp-%d" % protocol,
                                        b"p2p back %d" % qos)
    tcp.publish("to-wss/big", big, qos=1)
    assert web.expect_message().payload == big
    web.publish("to-tcp/big", big, qos=1)
    assert tcp.expect_message().payload == big
    web.disconnect()
    tcp.disconnect()


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_mqttjs_over_wss_with_paho_tcp(wss, tmp_path, protocol):
    b = wss()
    run_mqttjs_against_paho(b, tmp_path, protocol, "wss://127.0.0.1:%d/mqtt" % b.ws_port,
                            ca=b.ca)


def test_server_initiated_close_ends_with_close_frame_1000(ws):
    """When the broker ends a connection (here a takeover: MQTT 5 DISCONNECT 0x8E), the
    WebSocket ends cleanly too: the DISCONNECT, then a close frame with 1000 Normal Closure
    [RFC 6455 7.1.2, 7.4.1], so a browser does not report 1006 (abnormal closure)."""
    b = ws()
    old = WSClient(b.ws_port)
    old.connect("ws-taken")
    new = WSClient(b.ws_port)
    new.connect("ws-taken")
    got = old.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(rawmqtt.DISCONNECT, rawmqtt.RC_SESSION_TAKEN_OVER)]
    assert old.close_status == 1000
    new.disconnect()
