"""Build and read MQTT packets by hand, for tests that need control a client library hides.

Builders return `bytes` and never validate, so a test can make any malformed packet it needs.
`RawClient` wraps a blocking socket: `send()`, `recv()` one decoded `Packet` (with a timeout),
`expect_closed()` to check that the broker dropped the connection.

Protocol versions are the protocol level byte: 3 (MQTT 3.1), 4 (3.1.1), 5 (5.0).
"""

import socket
import struct
import time

from support import scaled

# Packet types
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15

TYPE_NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
    PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ",
    PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

# MQTT 5 property identifiers
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _TWO, _FOUR, _VARINT, _UTF8, _BIN, _PAIR = range(7)
PROPERTY_KINDS = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE, MESSAGE_EXPIRY_INTERVAL: _FOUR, CONTENT_TYPE: _UTF8,
    RESPONSE_TOPIC: _UTF8, CORRELATION_DATA: _BIN, SUBSCRIPTION_IDENTIFIER: _VARINT,
    SESSION_EXPIRY_INTERVAL: _FOUR, ASSIGNED_CLIENT_IDENTIFIER: _UTF8, SERVER_KEEP_ALIVE: _TWO,
    AUTHENTICATION_METHOD: _UTF8, AUTHENTICATION_DATA: _BIN, REQUEST_PROBLEM_INFORMATION: _BYTE,
    WILL_DELAY_INTERVAL: _FOUR, REQUEST_RESPONSE_INFORMATION: _BYTE, RESPONSE_INFORMATION: _UTF8,
    SERVER_REFERENCE: _UTF8, REASON_STRING: _UTF8, RECEIVE_MAXIMUM: _TWO,
    TOPIC_ALIAS_MAXIMUM: _TWO, TOPIC_ALIAS: _TWO, MAXIMUM_QOS: _BYTE, RETAIN_AVAILABLE: _BYTE,
    USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _FOUR, WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE, SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}
# Properties that may appear more than once; decoded into lists.
REPEATABLE = {USER_PROPERTY, SUBSCRIPTION_IDENTIFIER}

# Reason codes used by the tests (MQTT 5, section 2.4)
RC_SUCCESS = 0x00
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_ID_NOT_VALID = 0x85
RC_NOT_AUTHORIZED = 0x87
RC_SERVER_SHUTTING_DOWN = 0x8B
RC_BAD_AUTH_METHOD = 0x8C
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97
RC_RETAIN_NOT_SUPPORTED = 0x9A
RC_QOS_NOT_SUPPORTED = 0x9B
RC_SHARED_NOT_SUPPORTED = 0x9E


# ---------------------------------------------------------------------------- encoding

def varint(n):
    """Variable Byte Integer, minimal length (section 1.5.5)."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def utf8(s):
    """UTF-8 Encoded String: a 2-byte length then the bytes. Bytes pass through unchanged so
    tests can send invalid encodings."""
    b = s if isinstance(s, (bytes, bytearray)) else s.encode("utf-8")
    return struct.pack("!H", len(b)) + bytes(b)


binary = utf8


def encode_properties(props):
    """`props`: None, a dict {id: value} (lists for repeatable ids; user properties as a list
    of (key, value)), or a list of (id, value) pairs kept in order (duplicates allowed, for
    malformed packets). Returns the property length varint followed by the properties."""
    if props is None:
        items = []
    elif isinstance(props, dict):
        items = []
        for pid, val in props.items():
            if pid in REPEATABLE and isinstance(val, list):
                items.extend((pid, v) for v in val)
            else:
                items.append((pid, val))
    else:
        items = list(props)
    body = bytearray()
    for pid, val in items:
        body += varint(pid)
        kind = PROPERTY_KINDS.get(pid)
        if isinstance(val, (bytes, bytearray)) and kind not in (_UTF8, _BIN, _PAIR):
            body += val  # raw bytes for a made-up or malformed property
        elif kind == _BYTE:
            body.append(val)
        elif kind == _TWO:
            body += struct.pack("!H", val)
        elif kind == _FOUR:
            body += struct.pack("!I", val)
        elif kind == _VARINT:
            body += varint(val)
        elif kind in (_UTF8, _BIN):
            body += utf8(val)
        elif kind == _PAIR:
            body += utf8(val[0]) + utf8(val[1])
        else:
            body += bytes(val)
    return varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    """A whole packet: fixed header (type, flags, remaining length) then body."""
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(len(body)) + bytes(body)


def connect(client_id="", version=5, clean=True, keepalive=60, props=None, will=None,
            username=None, password=None, proto_name=None, reserved_flag=False,
            flags_override=None, header_flags=0):
    """CONNECT. `will` is a dict with topic, payload, qos, retain and (MQTT 5) props."""
    if proto_name is None:
        proto_name = "MQIsdp" if version == 3 else "MQTT"
    flags = 0
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | ((will.get("qos", 0) & 3) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    if reserved_flag:
        flags |= 0x01
    if flags_override is not None:
        flags = flags_override
    body = bytearray(utf8(proto_name))
    body.append(version)
    body.append(flags)
    body += struct.pack("!H", keepalive)
    if version == 5:
        body += encode_properties(props)
    body += utf8(client_id)
    if will is not None:
        if version == 5:
            body += encode_properties(will.get("props"))
        body += utf8(will["topic"])
        body += binary(will.get("payload", b""))
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password)
    return packet(CONNECT, header_flags, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, props=None,
            version=5, flags=None):
    if isinstance(payload, str):
        payload = payload.encode()
    f = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    if flags is not None:
        f = flags
    body = bytearray(utf8(topic))
    if qos > 0 or (flags is not None and (flags >> 1) & 3):
        body += struct.pack("!H", pid if pid is not None else 1)
    if version == 5:
        body += encode_properties(props)
    body += payload
    return packet(PUBLISH, f, body)


def _ack(ptype, flags, pid, rc=None, props=None, version=5):
    body = struct.pack("!H", pid)
    if version == 5 and (rc is not None or props is not None):
        body += bytes([rc or 0])
        if props is not None:
            body += encode_properties(props)
    return packet(ptype, flags, body)


def puback(pid, rc=None, props=None, version=5):
    return _ack(PUBACK, 0, pid, rc, props, version)


def pubrec(pid, rc=None, props=None, version=5):
    return _ack(PUBREC, 0, pid, rc, props, version)


def pubrel(pid, rc=None, props=None, version=5, flags=0x02):
    return _ack(PUBREL, flags, pid, rc, props, version)


def pubcomp(pid, rc=None, props=None, version=5):
    return _ack(PUBCOMP, 0, pid, rc, props, version)


def subscribe(pid, filters, props=None, version=5, flags=0x02):
    """`filters`: list of (filter, options) where options is the options byte: QoS in bits 0-1,
    no local 0x04, retain as published 0x08, retain handling << 4. A bare string means QoS 0."""
    body = bytearray(struct.pack("!H", pid))
    if version == 5:
        body += encode_properties(props)
    for item in filters:
        if isinstance(item, (str, bytes)):
            item = (item, 0)
        flt, opts = item
        body += utf8(flt)
        body.append(opts)
    return packet(SUBSCRIBE, flags, body)


def sub_opts(qos=0, no_local=False, rap=False, rh=0):
    return qos | (0x04 if no_local else 0) | (0x08 if rap else 0) | (rh << 4)


def unsubscribe(pid, filters, props=None, version=5, flags=0x02):
    body = bytearray(struct.pack("!H", pid))
    if version == 5:
        body += encode_properties(props)
    for flt in filters:
        body += utf8(flt)
    return packet(UNSUBSCRIBE, flags, body)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(rc=None, props=None, version=5, flags=0):
    body = b""
    if version == 5 and (rc is not None or props is not None):
        body = bytes([rc or 0])
        if props is not None:
            body += encode_properties(props)
    return packet(DISCONNECT, flags, body)


# ---------------------------------------------------------------------------- decoding

class Malformed(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if self.left() < n:
            raise Malformed("short packet")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        mult, val = 1, 0
        for _ in range(4):
            b = self.byte()
            val += (b & 0x7F) * mult
            if not b & 0x80:
                return val
            mult *= 128
        raise Malformed("varint longer than 4 bytes")

    def binary(self):
        return self.take(self.u16())

    def utf8(self):
        return self.binary().decode("utf-8")

    def rest(self):
        return self.take(self.left())

    def properties(self):
        n = self.varint()
        sub = Reader(self.take(n))
        props = {}
        while sub.left():
            pid = sub.varint()
            kind = PROPERTY_KINDS.get(pid)
            if kind == _BYTE:
                val = sub.byte()
            elif kind == _TWO:
                val = sub.u16()
            elif kind == _FOUR:
                val = sub.u32()
            elif kind == _VARINT:
                val = sub.varint()
            elif kind == _UTF8:
                val = sub.utf8()
            elif kind == _BIN:
                val = sub.binary()
            elif kind == _PAIR:
                val = (sub.utf8(), sub.utf8())
            else:
                raise Malformed("unknown property 0x%02x" % pid)
            if pid in REPEATABLE:
                props.setdefault(pid, []).append(val)
            elif pid in props:
                raise Malformed("duplicate property 0x%02x" % pid)
            else:
                props[pid] = val
        return props


class Packet:
    """One decoded packet. Attributes by type:
    all: type, flags, raw (whole packet bytes), props ({} when none)
    CONNACK: session_present, rc
    PUBLISH: topic, qos, dup, retain, pid (None at QoS 0), payload
    PUBACK/PUBREC/PUBREL/PUBCOMP: pid, rc (0 when absent)
    SUBACK/UNSUBACK: pid, rcs (list; empty for a 3.1.1 UNSUBACK)
    DISCONNECT/AUTH: rc (0 when absent)
    """

    def __init__(self, ptype, flags, raw):
        self.type = ptype
        self.flags = flags
        self.raw = raw
        self.props = {}
        self.rc = None
        self.pid = None

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, "TYPE%d" % self.type)

    def __repr__(self):
        fields = {k: v for k, v in self.__dict__.items() if k not in ("raw", "type")}
        return "<%s %r>" % (self.name, fields)


def decode(ptype, flags, body, version):
    pkt = Packet(ptype, flags, None)
    r = Reader(body)
    if ptype == CONNACK:
        pkt.session_present = bool(r.byte() & 1)
        pkt.rc = r.byte()
        if version == 5 and r.left():
            pkt.props = r.properties()
    elif ptype == PUBLISH:
        pkt.qos = (flags >> 1) & 3
        pkt.dup = bool(flags & 8)
        pkt.retain = bool(flags & 1)
        pkt.topic = r.utf8()
        if pkt.qos:
            pkt.pid = r.u16()
        if version == 5:
            pkt.props = r.properties()
        pkt.payload = r.rest()
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        pkt.pid = r.u16()
        pkt.rc = 0
        if version == 5 and r.left():
            pkt.rc = r.byte()
            if r.left():
                pkt.props = r.properties()
    elif ptype in (SUBACK, UNSUBACK):
        pkt.pid = r.u16()
        if version == 5:
            pkt.props = r.properties()
        pkt.rcs = list(r.rest())
    elif ptype in (DISCONNECT, AUTH):
        pkt.rc = 0
        if r.left():
            pkt.rc = r.byte()
            if r.left():
                pkt.props = r.properties()
    elif ptype in (PINGRESP, PINGREQ):
        pass
    return pkt


# ---------------------------------------------------------------------------- client

class Timeout(AssertionError):
    pass


class Closed(AssertionError):
    pass


class RawClient:
    """A blocking socket speaking MQTT bytes. `version` is used to decode what arrives."""

    def __init__(self, port, version=5, host="127.0.0.1", timeout=None):
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=scaled(5))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0  # start of unparsed data in buf
        self.eof = False
        self.timeout = timeout if timeout is not None else scaled(5)
        self.aliases = {}  # outbound topic aliases the broker set up for us

    # -- bytes
    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("timed out waiting for data")
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed("connection closed by the broker")
        if self.pos > 65536:  # compact now and then, not per packet: reading stays linear
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def recv(self, timeout=None):
        """The next packet; raises Timeout or Closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            pkt = self._try_parse()
            if pkt is not None:
                return pkt
            if self.eof:
                raise Closed("connection closed by the broker")
            self._fill(deadline)

    def _try_parse(self):
        buf, start = self.buf, self.pos
        if len(buf) - start < 2:
            return None
        mult, length, i = 1, 0, start + 1
        while True:
            if i >= len(buf):
                return None
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
            if i - start > 4:
                raise Malformed("broker sent a bad remaining length")
        if len(buf) < i + length:
            return None
        raw = bytes(buf[start:i + length])
        self.pos = i + length
        i -= start
        pkt = decode(raw[0] >> 4, raw[0] & 0x0F, raw[i:], self.version)
        pkt.raw = raw
        if pkt.type == PUBLISH and self.version == 5:
            self._resolve_alias(pkt)
        return pkt

    def _resolve_alias(self, pkt):
        alias = pkt.props.get(TOPIC_ALIAS)
        pkt.sent_topic = pkt.topic
        if alias is None:
            return
        if pkt.topic:
            self.aliases[alias] = pkt.topic
        else:
            assert alias in self.aliases, "broker used topic alias %d before setting it" % alias
            pkt.topic = self.aliases[alias]

    def recv_type(self, ptype, timeout=None):
        """The next packet, which must be of type `ptype`."""
        pkt = self.recv(timeout)
        assert pkt.type == ptype, "expected %s, got %r" % (TYPE_NAMES[ptype], pkt)
        return pkt

    def expect_nothing(self, window=1.0):
        """Assert that no packet arrives within `window` seconds (connection may stay open)."""
        try:
            pkt = self.recv(timeout=window)
        except Timeout:
            return
        except Closed:
            raise AssertionError("connection closed while expecting silence")
        raise AssertionError("expected nothing, got %r" % pkt)

    def expect_closed(self, timeout=None):
        """Wait until the broker closes the connection; returns the packets read before that."""
        got = []
        deadline = time.monotonic() + (scaled(5) if timeout is None else timeout)
        while True:
            try:
                got.append(self.recv(timeout=max(0.0, deadline - time.monotonic())))
            except Closed:
                return got
            except Timeout:
                raise AssertionError("connection still open; received %r" % got)
            except Malformed:
                return got

    def expect_disconnect(self, codes, timeout=None):
        """The broker ends the connection with a DISCONNECT whose reason code is in `codes`
        (MQTT 5, issue 2: "MQTT 5: DISCONNECT 0x81/0x82 first"), then closes it. Packets
        before the DISCONNECT (acknowledgements already on their way) are allowed."""
        if isinstance(codes, int):
            codes = (codes,)
        got = self.expect_closed(timeout)
        assert got and got[-1].type == DISCONNECT, \
            "connection closed without a DISCONNECT; received %r" % got
        assert got[-1].rc in codes, "DISCONNECT reason 0x%02x, expected one of %s" % (
            got[-1].rc, ", ".join("0x%02x" % c for c in codes))
        assert not any(p.type == DISCONNECT for p in got[:-1]), got
        return got[-1]

    def is_open(self, window=0.3):
        """True if no EOF arrives within `window` (packets that arrive meanwhile are kept)."""
        deadline = time.monotonic() + window
        try:
            while True:
                self._fill(deadline)
        except Timeout:
            return True
        except Closed:
            return False

    # -- MQTT conveniences
    def connect(self, client_id="", clean=True, keepalive=60, props=None, will=None,
                expect_rc=0, **kw):
        """Send CONNECT and return the CONNACK, asserting its return/reason code."""
        self.send(connect(client_id, version=self.version, clean=clean, keepalive=keepalive,
                          props=props, will=will, **kw))
        ack = self.recv_type(CONNACK)
        if expect_rc is not None:
            assert ack.rc == expect_rc, "CONNACK code 0x%02x, expected 0x%02x" % (ack.rc,
                                                                                  expect_rc)
        return ack

    def subscribe(self, filters, pid=1, props=None):
        """SUBSCRIBE and return the SUBACK (skipping nothing: SUBACK must come next unless a
        retained message is sent first, which is then kept in `self.pending`)."""
        if isinstance(filters, (str, tuple)):
            filters = [filters]
        self.send(subscribe(pid, filters, props=props, version=self.version))
        return self.recv_until(SUBACK)

    def unsubscribe(self, filters, pid=2, props=None):
        if isinstance(filters, str):
            filters = [filters]
        self.send(unsubscribe(pid, filters, props=props, version=self.version))
        return self.recv_until(UNSUBACK)

    def recv_until(self, ptype, timeout=None):
        """Read until a packet of `ptype` arrives; other packets are queued in self.pending and
        returned first by `recv_publish`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            pkt = self.recv(timeout=max(0.0, deadline - time.monotonic()))
            if pkt.type == ptype:
                return pkt
            self.pending.append(pkt)

    @property
    def pending(self):
        if not hasattr(self, "_pending"):
            self._pending = []
        return self._pending

    def recv_publish(self, timeout=None, ack=True):
        """The next PUBLISH. With ack=True QoS 1 is acknowledged with PUBACK and QoS 2 is run to
        completion (PUBREC, wait PUBREL, PUBCOMP)."""
        if self.pending:
            pkt = self.pending.pop(0)
        else:
            pkt = self.recv(timeout)
        assert pkt.type == PUBLISH, "expected PUBLISH, got %r" % pkt
        if ack:
            self.ack(pkt)
        return pkt

    def ack(self, pkt):
        if pkt.qos == 1:
            self.send(puback(pkt.pid, version=self.version))
        elif pkt.qos == 2:
            self.send(pubrec(pkt.pid, version=self.version))
            rel = self.recv_until(PUBREL)
            assert rel.pid == pkt.pid
            self.send(pubcomp(pkt.pid, version=self.version))

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=1, props=None, dup=False):
        """PUBLISH and complete the QoS flow; returns the PUBACK/PUBCOMP (None at QoS 0)."""
        self.send(publish(topic, payload, qos=qos, retain=retain, pid=pid, props=props,
                          dup=dup, version=self.version))
        if qos == 1:
            return self.recv_until(PUBACK)
        if qos == 2:
            rec = self.recv_until(PUBREC)
            assert rec.pid == pid
            if rec.rc is not None and rec.rc >= 0x80:
                return rec
            self.send(pubrel(pid, version=self.version))
            return self.recv_until(PUBCOMP)
        return None

    def ping(self):
        self.send(pingreq())
        return self.recv_until(PINGRESP)

    def disconnect(self, rc=None, props=None):
        """Send DISCONNECT, half-close, and wait until the broker has closed its side: once
        this returns the broker has processed the DISCONNECT, so a test that reconnects next
        does not race the broker's handling of this connection."""
        try:
            self.send(disconnect(rc, props, version=self.version))
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        deadline = time.monotonic() + scaled(5)
        try:
            while not self.eof and time.monotonic() < deadline:
                try:
                    self._fill(deadline)
                except Timeout:
                    break
        except Closed:
            pass
        finally:
            self.close()
        assert self.eof, "broker kept the connection open after DISCONNECT and EOF"


def drain_publishes(client, window=1.0, ack=True):
    """All PUBLISH packets arriving until `window` seconds pass with nothing new."""
    got = []
    while True:
        try:
            got.append(client.recv_publish(timeout=window, ack=ack))
        except Timeout:
            return got


_serve_count = [0]


def assert_serves(port, version=5):
    """The broker still works: a new client connects, subscribes, and receives its own
    QoS 1 message. Called after every abuse of the broker."""
    _serve_count[0] += 1
    c = RawClient(port, version)
    try:
        c.connect("serve-check-%d" % _serve_count[0])
        ack = c.subscribe(("serve/check", 1))
        assert ack.rcs == [1], "SUBACK %r" % ack
        c.publish("serve/check", b"still serving", qos=1, pid=9)
        m = c.recv_publish()
        assert (m.topic, m.payload) == ("serve/check", b"still serving")
        c.disconnect()
    finally:
        c.close()
