"""A raw WebSocket client (RFC 6455) for tests: the opening handshake by hand, frames by hand,
and `WSClient`, a rawmqtt.RawClient whose MQTT bytes travel in WebSocket frames, so every MQTT
convenience of RawClient works over WebSocket while the test decides how bytes are framed.

    status, headers, sock, rest = handshake(port)                 # raw upgrade
    c = WSClient(port, split=1)        # every MQTT byte in its own frame
    c = WSClient(port, tls=ssl_context)                           # wss://
    c.connect("id"); c.subscribe(...); c.recv_publish(); c.send_frame(OP_PING, b"x")
"""

import base64
import hashlib
import os
import socket
import ssl
import struct
import time

import rawmqtt
from support import scaled

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def request(path="/mqtt", key=None, protocols=("mqtt",), host="127.0.0.1", extra=(),
            omit=()):
    """An upgrade request; `omit` drops headers by lower-case name, `extra` adds lines."""
    key = key or base64.b64encode(os.urandom(16)).decode()
    headers = [("host", "Host: %s" % host), ("upgrade", "Upgrade: websocket"),
               ("connection", "Connection: Upgrade"),
               ("sec-websocket-key", "Sec-WebSocket-Key: %s" % key),
               ("sec-websocket-version", "Sec-WebSocket-Version: 13")]
    if protocols:
        headers.append(("sec-websocket-protocol",
                        "Sec-WebSocket-Protocol: %s" % ", ".join(protocols)))
    lines = ["GET %s HTTP/1.1" % path] + [h for n, h in headers if n not in omit] + list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def read_head(sock, timeout=None):
    """Read an HTTP response head. Returns (status, {lower name: value}, body bytes so far).
    The body is everything after the head that has arrived (frames after a 101)."""
    sock.settimeout(timeout or scaled(5))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise rawmqtt.Closed("closed before the response head: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def handshake(port, raw=None, tls=None, **kw):
    """Connect (over TLS when `tls` is an ssl.SSLContext: wss://) and send an upgrade request
    (or `raw` bytes). Returns (status, headers, sock, rest); the socket stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname="localhost")
    req, key = request(**kw) if raw is None else (raw, None)
    sock.sendall(req)
    status, headers, rest = read_head(sock)
    if status == 101:
        assert headers.get("sec-websocket-accept") == accept_for(key), headers
    return status, headers, sock, rest


def frame(op, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One client frame; `length` overrides the announced payload length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class WSClient(rawmqtt.RawClient):
    """RawClient over WebSocket. `split`: the most MQTT bytes per frame (None: one frame per
    send); `fragment`: send each send() as one message in continuation frames instead of
    separate messages. Pings from the server are answered; control frames and the server's
    close status are recorded (`self.control`, `self.close_status`)."""

    def __init__(self, port, version=5, path="/mqtt", protocols=("mqtt",), split=None,
                 fragment=False, timeout=None, tls=None):
        status, headers, sock, rest = handshake(port, path=path, protocols=protocols, tls=tls)
        assert status == 101, "upgrade refused: %d %r" % (status, headers)
        self.headers = headers
        self.version = version
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.timeout = timeout if timeout is not None else scaled(5)
        self.aliases = {}
        self.raw = bytearray(rest)  # socket bytes not yet parsed into frames
        self.split = split
        self.fragment = fragment
        self.control = []           # (opcode, payload) of control frames received
        self.close_status = None
        self.frames = 0             # data frames received

    # -- frames
    def send_frame(self, op, payload=b"", **kw):
        self.sock.sendall(frame(op, payload, **kw))

    def send(self, data):
        step = self.split or max(1, len(data))
        pieces = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
        out = bytearray()
        for i, p in enumerate(pieces):
            if self.fragment:
                out += frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1)
            else:
                out += frame(OP_BINARY, p)
        self.sock.sendall(out)

    def _parse_frame(self):
        """One whole server frame from self.raw as (fin, op, payload), or None."""
        r = self.raw
        if len(r) < 2:
            return None
        assert r[1] & 0x80 == 0, "server frames must not be masked"
        n, i = r[1] & 0x7F, 2
        if n == 126:
            if len(r) < 4:
                return None
            n, i = struct.unpack("!H", r[2:4])[0], 4
        elif n == 127:
            if len(r) < 10:
                return None
            n, i = struct.unpack("!Q", r[2:10])[0], 10
        if len(r) < i + n:
            return None
        fin, op, payload = bool(r[0] & 0x80), r[0] & 0x0F, bytes(r[i:i + n])
        assert r[0] & 0x70 == 0, "RSV bits set by the server"
        del r[:i + n]
        return fin, op, payload

    def recv_frame(self, timeout=None):
        """The next frame of any kind (bypassing the MQTT layer)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self._parse_frame()
            if f is not None:
                return f
            self._read_raw(deadline)

    def _read_raw(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise rawmqtt.Timeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise rawmqtt.Timeout("timed out waiting for data")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            chunk = b""  # over TLS, a close without close_notify
        if not chunk:
            self.eof = True
            raise rawmqtt.Closed("connection closed by the broker")
        self.raw += chunk

    def _fill(self, deadline):
        """RawClient's hook: move the payload of data frames into the MQTT stream."""
        got = False
        while not got:
            f = self._parse_frame()
            if f is None:
                self._read_raw(deadline)
                continue
            fin, op, payload = f
            if op in (OP_BINARY, OP_CONT):
                assert op == OP_BINARY, "the server sends whole messages"
                assert fin
                self.frames += 1
                self.buf += payload
                got = True
            elif op == OP_PING:
                self.control.append((op, payload))
                self.send_frame(OP_PONG, payload)
            elif op == OP_CLOSE:
                self.control.append((op, payload))
                self.close_status = struct.unpack("!H", payload[:2])[0] if payload else 1005
                self.eof = True
                raise rawmqtt.Closed("close frame %d from the broker" % self.close_status)
            else:
                assert op == OP_PONG, "unexpected opcode %d" % op
                self.control.append((op, payload))

    def expect_eof(self, timeout=None):
        """Wait for the end of the TCP stream, ignoring any frames before it."""
        deadline = time.monotonic() + (scaled(5) if timeout is None else timeout)
        try:
            while True:
                self._read_raw(deadline)
        except rawmqtt.Closed:
            return
        except rawmqtt.Timeout:
            raise AssertionError("connection still open")
