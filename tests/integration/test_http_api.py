"""The HTTP API (issue 8): publishing as an application (P2P through `second_topic`), presence,
disconnects, keys and limits, connection events. Real HTTP clients (http.client, urllib) against
the broker binary while paho-mqtt clients receive.

Tokens have their own file (test_tokens.py) and /metrics too (test_metrics.py).
"""

import base64
import http.client
import json
import socket
import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient
from support import (API_KEY, API_READ_KEY, SANITIZED, MQTTv311, MQTTv5, Paho, api_config, http_call,
                     http_port, scaled, wait_for)


@pytest.fixture
def api(broker, tmp_path):
    """Factory: api(*extra_config) -> (broker, http port)."""
    def start(*extra, keys=()):
        d = tmp_path / ("api%d" % time.monotonic_ns())
        d.mkdir()
        b = broker(*(api_config(d, keys) + list(extra)))
        return b, http_port(b)
    return start


def connect(port, cid, protocol=MQTTv5, clean=True, **kw):
    c = Paho(port, cid, protocol=protocol, clean=clean)
    if protocol == MQTTv5 and not clean:
        from support import props
        from paho.mqtt.packettypes import PacketTypes
        c.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=3600), **kw)
    else:
        c.connect(**kw)
    return c


def wait_offline(hp, cid):
    """paho's disconnect returns once its socket is closed, maybe before the broker has read
    the DISCONNECT: wait until the broker says so."""
    wait_for(lambda: not http_call(hp, "GET", "/api/v1/clients/" + cid,
                                   key=API_READ_KEY)[2]["online"], what=cid + " offline")


# ------------------------------------------------------------------------------ publish

def test_p2p_second_topic_reaches_unsubscribed_client(api):
    b, hp = api()
    dev = connect(b.port, "GID_app@@@DEVICE_1", protocol=MQTTv311)
    st, _, body = http_call(hp, "POST", "/api/v1/publish", {
        "topic": "fleet", "second_topic": "/p2p/GID_app@@@DEVICE_1",
        "payload": "open the door", "qos": 1})
    assert st == 200, body
    assert body["p2p"] == "delivered"
    assert len(body["id"]) == 16
    m = dev.expect_message()
    assert m.topic == "fleet/p2p/GID_app@@@DEVICE_1"
    assert m.payload == b"open the door"
    assert m.qos == 1
    dev.disconnect()


def test_second_topic_without_leading_slash_is_joined_with_one(api):
    b, hp = api()
    dev = connect(b.port, "dev-2")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "fleet", "second_topic": "p2p/dev-2", "payload": "x"})
    assert st == 200 and body["p2p"] == "delivered"
    assert dev.expect_message().topic == "fleet/p2p/dev-2"
    dev.disconnect()


def test_p2p_outcomes_delivered_queued_unknown(api):
    b, hp = api()
    # queued: a persistent session whose client is away
    away = connect(b.port, "away", clean=False)
    away.disconnect()
    wait_offline(hp, "away")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "t", "second_topic": "/p2p/away", "payload": "later",
                             "qos": 1})
    assert (st, body["p2p"]) == (200, "queued")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "t", "second_topic": "/p2p/nobody", "payload": "x",
                             "qos": 1})
    assert (st, body["p2p"]) == (200, "unknown")
    online = connect(b.port, "online")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "t/p2p/online", "payload": "now"})
    assert (st, body["p2p"]) == (200, "delivered")
    assert online.expect_message().payload == b"now"
    # The queued message reaches the session when its client comes back.
    back = connect(b.port, "away", clean=False)
    assert back.connack[1] == 1
    m = back.expect_message()
    assert (m.topic, m.payload) == ("t/p2p/away", b"later")
    online.disconnect()
    back.disconnect()


def test_publish_to_subscribers_with_mqtt5_properties(api):
    b, hp = api()
    sub = connect(b.port, "sub5")
    sub.subscribe("app/#", qos=1)
    old = connect(b.port, "sub3", protocol=MQTTv311)
    old.subscribe("app/#", qos=1)
    st, _, body = http_call(hp, "POST", "/api/v1/publish", {
        "topic": "app/cmd", "payload_base64": base64.b64encode(b"\x00\x01bin").decode(),
        "qos": 1, "message_expiry": 600, "content_type": "application/octet-stream",
        "response_topic": "app/replies", "correlation_data": "req-7",
        "user_properties": [["k", "v1"], ["k", "v2"]]})
    assert st == 200 and body["matched"] is True
    m = sub.expect_message()
    assert m.payload == b"\x00\x01bin"
    p = m.properties
    assert p.ContentType == "application/octet-stream"
    assert p.ResponseTopic == "app/replies"
    assert p.CorrelationData == b"req-7"
    assert p.UserProperty == [("k", "v1"), ("k", "v2")]
    assert 590 <= p.MessageExpiryInterval <= 600
    assert old.expect_message().payload == b"\x00\x01bin"
    sub.disconnect()
    old.disconnect()


def test_retained_publish_reaches_later_subscriber(api):
    b, hp = api()
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "status/door", "payload": "closed", "retain": True})
    assert st == 200 and body["matched"] is False
    late = connect(b.port, "late")
    late.subscribe("status/#")
    m = late.expect_message()
    assert (m.payload, m.retain) == (b"closed", 1)
    late.disconnect()


def test_batch_publish_answers_per_message(api):
    b, hp = api()
    devs = [connect(b.port, "bd%d" % i) for i in range(3)]
    msgs = [{"topic": "g", "second_topic": "/p2p/bd%d" % i, "payload": "m%d" % i, "qos": 1}
            for i in range(3)]
    msgs.insert(1, {"topic": "bad/+/topic", "payload": "x"})
    msgs.append({"topic": "g", "second_topic": "/p2p/missing", "payload": "x"})
    st, _, body = http_call(hp, "POST", "/api/v1/publish/batch", {"messages": msgs})
    assert st == 200, body
    r = body["results"]
    assert len(r) == 5
    assert r[0]["p2p"] == "delivered" and r[2]["p2p"] == "delivered"
    assert r[1]["error"]["code"] == "invalid_topic"
    assert r[4]["p2p"] == "unknown"
    for i, d in enumerate(devs):
        assert d.expect_message().payload == b"m%d" % i
        d.disconnect()


def test_batch_limits(api):
    b, hp = api()
    st, _, body = http_call(hp, "POST", "/api/v1/publish/batch",
                            {"messages": [{"topic": "a", "payload": "x"}] * 1001})
    assert st == 400 and body["code"] == "invalid_argument"
    st, _, body = http_call(hp, "POST", "/api/v1/publish/batch",
                            {"messages": [{"topic": "a", "payload": "x"}] * 1000})
    assert st == 200 and len(body["results"]) == 1000


def test_publish_refusals(api):
    b, hp = api("maximum_qos 1")
    cases = [
        ({"payload": "no topic"}, 400, "invalid_argument"),
        ({"topic": "a/#", "payload": "x"}, 400, "invalid_topic"),
        ({"topic": "$SYS/x", "payload": "x"}, 403, "not_authorized"),
        ({"topic": "a", "qos": 2}, 400, "invalid_argument"),
        ({"topic": "a", "qos": 7}, 400, "invalid_argument"),
        ({"topic": "a", "payload": "x", "payload_base64": "eA=="}, 400, "invalid_argument"),
        ({"topic": "a", "payload_base64": "not base64!"}, 400, "invalid_argument"),
        ({"topic": "a", "payload": 5}, 400, "invalid_argument"),
        ({"topic": "a", "message_expiry": 0}, 400, "invalid_argument"),
        ({"topic": "a", "user_properties": {"k": 1}}, 400, "invalid_argument"),
        ({"topic": "a", "response_topic": "r/#"}, 400, "invalid_argument"),
    ]
    for req, status, code in cases:
        st, _, body = http_call(hp, "POST", "/api/v1/publish", req)
        assert (st, body["code"]) == (status, code), (req, body)


def test_acl_applies_to_the_key_identity(api, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("user app\ntopic write allowed/#\n")
    b, hp = api("acl_file %s" % acl)
    st, _, body = http_call(hp, "POST", "/api/v1/publish", {"topic": "allowed/x"})
    assert st == 200
    st, _, body = http_call(hp, "POST", "/api/v1/publish", {"topic": "other/x"})
    assert (st, body["code"]) == (403, "not_authorized")


def test_qos1_publish_is_durable_once_answered(broker, tmp_path):
    data = tmp_path / "data"
    conf = api_config(tmp_path) + ["persistence true", "persistence_location %s" % data]
    b = broker(*conf)
    hp = http_port(b)
    away = connect(b.port, "durable-dev", clean=False)
    away.disconnect()
    wait_offline(hp, "durable-dev")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "d", "second_topic": "/p2p/durable-dev",
                             "payload": "keep me", "qos": 1})
    assert (st, body["p2p"]) == (200, "queued")
    b.kill()  # SIGKILL right after the answer: what was answered must be on disk
    b = broker(*conf)
    back = connect(b.port, "durable-dev", clean=False)
    assert back.connack[1] == 1
    assert back.expect_message().payload == b"keep me"
    back.disconnect()


# ----------------------------------------------------------------------------- presence

def test_presence_before_during_after_and_across_takeover(api):
    b, hp = api()
    st, _, body = http_call(hp, "GET", "/api/v1/clients/dev-p", key=API_READ_KEY)
    assert st == 200
    assert body == {"client_id": "dev-p", "online": False, "session": False}

    c = connect(b.port, "dev-p", clean=False)
    st, _, on = http_call(hp, "GET", "/api/v1/clients/dev-p", key=API_READ_KEY)
    assert st == 200 and on["online"] and on["session"] and on["persistent"]
    assert on["protocol_version"] == 5
    local = c.c.socket().getsockname()
    assert on["address"] == "%s:%d" % local
    assert abs(on["connected_since_ms"] / 1000 - time.time()) < scaled(10)

    # Takeover: a new connection with the same ID; a new connection id.
    c2 = connect(b.port, "dev-p", clean=False)
    c.wait_disconnected()
    st, _, on2 = http_call(hp, "GET", "/api/v1/clients/dev-p", key=API_READ_KEY)
    assert on2["online"] and on2["connection_id"] != on["connection_id"]

    c2.disconnect()
    wait_offline(hp, "dev-p")
    st, _, off = http_call(hp, "GET", "/api/v1/clients/dev-p", key=API_READ_KEY)
    assert off["online"] is False and off["session"] is True
    http_call(hp, "POST", "/api/v1/publish", {"topic": "t/p2p/dev-p", "qos": 1})
    http_call(hp, "POST", "/api/v1/publish", {"topic": "t/p2p/dev-p", "qos": 1})
    st, _, off = http_call(hp, "GET", "/api/v1/clients/dev-p", key=API_READ_KEY)
    assert off["queued"] == 2


def test_presence_batch(api):
    b, hp = api()
    cs = [connect(b.port, "pb%d" % i) for i in range(3)]
    st, _, body = http_call(hp, "GET", "/api/v1/clients?ids=pb0,pb1,nope,pb2",
                            key=API_READ_KEY)
    assert st == 200
    got = {c["client_id"]: c["online"] for c in body["clients"]}
    assert got == {"pb0": True, "pb1": True, "nope": False, "pb2": True}
    st, _, body = http_call(hp, "GET", "/api/v1/clients", key=API_READ_KEY)
    assert st == 400
    for c in cs:
        c.disconnect()


def test_presence_of_ids_needing_escapes(api):
    b, hp = api()
    c = connect(b.port, "GID_a@@@dev/with slash")
    st, _, body = http_call(hp, "GET", "/api/v1/clients/GID_a%40%40%40dev%2Fwith%20slash",
                            key=API_READ_KEY)
    assert st == 200 and body["client_id"] == "GID_a@@@dev/with slash" and body["online"]
    st, _, body = http_call(hp, "GET", "/api/v1/clients?ids=GID_a%40%40%40dev%2Fwith%20slash",
                            key=API_READ_KEY)
    assert body["clients"][0]["online"]
    c.disconnect()


def test_delete_disconnects_and_optionally_discards(api):
    b, hp = api()
    raw = RawClient(b.port, 5)
    raw.connect("kick-me", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 3600})
    st, _, body = http_call(hp, "DELETE", "/api/v1/clients/kick-me")
    assert st == 200 and body["disconnected"] is True and body["session_discarded"] is False
    # MQTT 5: a server-initiated DISCONNECT with 0x98 Administrative action (MQTT 5 3.14.2.1),
    # then the network connection closes [MQTT-3.14.4-1].
    got = raw.expect_closed()
    assert [(p.type, p.rc) for p in got] == [(rm.DISCONNECT, 0x98)]
    st, _, info = http_call(hp, "GET", "/api/v1/clients/kick-me", key=API_READ_KEY)
    assert info["session"] is True and info["online"] is False

    c = connect(b.port, "kick-me", clean=False)
    assert c.connack[1] == 1
    st, _, body = http_call(hp, "DELETE", "/api/v1/clients/kick-me?discard=true")
    assert st == 200 and body["session_discarded"] is True
    c.wait_disconnected()
    st, _, info = http_call(hp, "GET", "/api/v1/clients/kick-me", key=API_READ_KEY)
    wait_for(lambda: not http_call(hp, "GET", "/api/v1/clients/kick-me",
                                   key=API_READ_KEY)[2]["session"], what="session gone")
    st, _, body = http_call(hp, "DELETE", "/api/v1/clients/kick-me")
    assert (st, body["code"]) == (404, "not_found")


def test_delete_offline_session_with_discard(api):
    b, hp = api()
    c = connect(b.port, "gone-dev", clean=False)
    c.disconnect()
    wait_offline(hp, "gone-dev")
    st, _, body = http_call(hp, "DELETE", "/api/v1/clients/gone-dev?discard=true")
    assert st == 200 and body["disconnected"] is False and body["session_discarded"] is True
    c = connect(b.port, "gone-dev", clean=False)
    assert c.connack[1] == 0  # the session was ended
    c.disconnect()


# ------------------------------------------------------------------- keys, errors, limits

def test_keys_are_required_and_checked(api):
    b, hp = api()
    st, hdrs, body = http_call(hp, "POST", "/api/v1/publish", {"topic": "a"}, key=None)
    assert st == 401 and body["code"] == "unauthorized"
    assert hdrs["www-authenticate"].startswith("Bearer")
    st, _, body = http_call(hp, "POST", "/api/v1/publish", {"topic": "a"},
                            key="wrong-key-wrong-key-wrong")
    assert st == 401
    st, _, body = http_call(hp, "POST", "/api/v1/publish", {"topic": "a"}, key=API_READ_KEY)
    assert (st, body["code"]) == (403, "forbidden")
    st, _, body = http_call(hp, "DELETE", "/api/v1/clients/x", key=API_READ_KEY)
    assert st == 403
    st, _, body = http_call(hp, "GET", "/api/v1/clients/x", key=API_READ_KEY)
    assert st == 200
    # health checks need no key
    assert http_call(hp, "GET", "/healthz", key=None)[0] == 200
    st, _, body = http_call(hp, "GET", "/readyz", key=None)
    assert (st, body["status"]) == (200, "ready")


def test_bad_requests_get_clear_answers_and_the_broker_keeps_serving(api):
    b, hp = api("http_max_body 4096")
    sub = connect(b.port, "watcher")
    sub.subscribe("ok/#")
    st, _, body = http_call(hp, "POST", "/api/v1/publish", raw=b"{not json",
                            headers={"Content-Type": "application/json"})
    assert (st, body["code"]) == (400, "invalid_json")
    st, _, body = http_call(hp, "POST", "/api/v1/publish", raw=b"[1,2]")
    assert (st, body["code"]) == (400, "invalid_json")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "a", "payload": "x" * 8000})
    assert (st, body["code"]) == (413, "payload_too_large")
    st, _, body = http_call(hp, "GET", "/api/v1/nothing-here")
    assert (st, body["code"]) == (404, "not_found")
    st, hdrs, body = http_call(hp, "GET", "/api/v1/publish")
    assert st == 405 and hdrs["allow"] == "POST"
    # Raw garbage on a fresh connection: 400 and the connection is closed.
    with socket.create_connection(("127.0.0.1", hp), timeout=scaled(5)) as s:
        s.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400")
    # Still serving, both sides.
    st, _, body = http_call(hp, "POST", "/api/v1/publish", {"topic": "ok/1", "payload": "fine"})
    assert st == 200 and body["matched"] is True
    assert sub.expect_message().payload == b"fine"
    sub.disconnect()


def test_keep_alive_serves_many_requests_on_one_connection(api):
    b, hp = api()
    conn = http.client.HTTPConnection("127.0.0.1", hp, timeout=scaled(10))
    sock = None
    for i in range(50):
        st, _, body = http_call(hp, "POST", "/api/v1/publish", {"topic": "ka", "payload": str(i)},
                                conn=conn)
        assert st == 200
        if sock is None:
            sock = conn.sock
        assert conn.sock is sock  # the same TCP connection throughout
    conn.close()


def test_rate_limit_per_key(api):
    b, hp = api("http_rate_limit 5")
    conn = http.client.HTTPConnection("127.0.0.1", hp, timeout=scaled(10))
    codes = [http_call(hp, "GET", "/api/v1/clients/x", key=API_READ_KEY, conn=conn)[0]
             for _ in range(20)]
    conn.close()
    assert codes.count(429) >= 10 and codes[0] == 200
    # The budget refills: a second later requests pass again.
    time.sleep(1.2)
    assert http_call(hp, "GET", "/api/v1/clients/x", key=API_READ_KEY)[0] == 200
    # Another key has its own budget.
    assert http_call(hp, "GET", "/api/v1/clients/x", key=API_KEY)[0] == 200


def test_bad_key_file_is_refused_with_file_and_line(tmp_path):
    from support import run_broker_once
    keys = tmp_path / "keys"
    keys.write_text("# fine\nshort write\n")
    conf = tmp_path / "p.conf"
    conf.write_text("listener 0 127.0.0.1\nhttp_listener 0\nhttp_api_key_file %s\n" % keys)
    rc, out = run_broker_once(["-c", str(conf)])
    assert rc not in (0, None)
    assert "%s:2:" % keys in out


# ------------------------------------------------------------------------------- events

def test_connection_events_distinguish_connections(api):
    b, hp = api("client_events true", "node_name node-a")
    mon = connect(b.port, "monitor")
    mon.subscribe("$SYS/brokers/node-a/clients/#")
    c1 = connect(b.port, "evt-dev", clean=False)
    ev1 = mon.expect_message()
    assert ev1.topic == "$SYS/brokers/node-a/clients/evt-dev/connected"
    e1 = json.loads(ev1.payload)
    assert e1["client_id"] == "evt-dev" and e1["persistent_session"] is True
    c2 = connect(b.port, "evt-dev", clean=False)  # takes over
    events = [mon.expect_message() for _ in range(2)]
    by_kind = {m.topic.rsplit("/", 1)[1]: json.loads(m.payload) for m in events}
    # The old connection's late "disconnected" names the old connection id, so a consumer
    # does not take the new connection for gone.
    assert by_kind["disconnected"]["connection_id"] == e1["connection_id"]
    assert by_kind["disconnected"]["reason"] == "session taken over"
    assert by_kind["connected"]["connection_id"] != e1["connection_id"]
    c2.disconnect()
    last = json.loads(mon.expect_message().payload)
    assert last["connection_id"] == by_kind["connected"]["connection_id"]
    assert last["reason"] == "client disconnected"
    mon.disconnect()
    c1.close()


# -------------------------------------------------------------------------------- HTTPS

def test_https_listener_with_the_tls_keys(broker, tmp_path):
    """`http_listener` followed by certfile/keyfile serves the API over TLS."""
    import ssl
    from test_tls import PKI
    pki = PKI(tmp_path)
    b = broker(*api_config(tmp_path), "certfile %s" % pki.crt("server"),
               "keyfile %s" % pki.key("server"))
    hp = http_port(b)
    dev = connect(b.port, "tls-dev")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.crt("ca"))
    conn = http.client.HTTPSConnection("127.0.0.1", hp, context=ctx, timeout=scaled(10))
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "s", "second_topic": "/p2p/tls-dev", "payload": "secure"},
                            conn=conn)
    assert (st, body["p2p"]) == (200, "delivered")
    assert dev.expect_message().payload == b"secure"
    conn.close()
    # Plain HTTP on the TLS port gets no answer but a closed connection.
    with socket.create_connection(("127.0.0.1", hp), timeout=scaled(5)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 200")
    dev.disconnect()


def test_sighup_reloads_the_key_file(api, tmp_path):
    import signal
    b, hp = api()
    keys = next(p for p in tmp_path.rglob("api-keys"))
    assert http_call(hp, "GET", "/api/v1/clients/x", key=API_READ_KEY)[0] == 200
    keys.write_text("new-key-0123456789abcdef write app\n")
    b.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded auth files, API keys" in b.log(), what="the reload")
    assert http_call(hp, "GET", "/api/v1/clients/x", key=API_READ_KEY)[0] == 401
    assert http_call(hp, "GET", "/api/v1/clients/x", key="new-key-0123456789abcdef")[0] == 200
    # A broken file keeps the keys in force.
    keys.write_text("short write\n")
    b.signal(signal.SIGHUP)
    wait_for(lambda: "previous API keys stay in force" in b.log(), what="the refusal")
    assert http_call(hp, "GET", "/api/v1/clients/x", key="new-key-0123456789abcdef")[0] == 200


# ----------------------------------------------------------------------- hostile clients

def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_unknown_key_is_refused_before_the_body(api):
    """Only the head of a 4 MiB request is sent, without a key: the answer comes at once and
    the connection closes, so no body is ever held for an unknown client."""
    b, hp = api()
    with socket.create_connection(("127.0.0.1", hp), timeout=scaled(5)) as s:
        s.sendall(b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 4194304\r\n\r\n")
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b'"code":"unauthorized"' in answer


def test_pipelining_without_reading_does_not_grow_memory(api):
    """A client that sends a flood of pipelined requests and reads nothing: the broker stops
    parsing its requests once 1 MiB of answers waits, then closes it when its input passes
    the bound; a well-behaved client is served throughout."""
    b, hp = api()
    before = rss_kib(b.pid)
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", hp), timeout=scaled(5))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = 0
    s.settimeout(0.5)
    try:
        for _ in range(2000):  # at most 2000 x 32 KiB = 64 MiB offered
            s.sendall(req * 1000)
            sent += len(req) * 1000
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    assert http_call(hp, "GET", "/healthz", key=None)[0] == 200
    grown = rss_kib(b.pid) - before
    # A sanitizer build keeps freed memory in quarantine: its RSS says nothing here.
    if not SANITIZED:
        assert grown < 40 * 1024, "RSS grew by %d KiB after %d bytes of requests" % (grown, sent)
    s.close()


def test_http_connections_count_against_the_listener_limit(broker, tmp_path):
    b = broker(*api_config(tmp_path), "max_connections 2")  # in the HTTP listener's section
    hp = http_port(b)
    held = [http.client.HTTPConnection("127.0.0.1", hp, timeout=scaled(5)) for _ in range(2)]
    for c in held:  # an answer on each: both are accepted and counted
        assert http_call(hp, "GET", "/healthz", key=None, conn=c)[0] == 200
    with socket.create_connection(("127.0.0.1", hp), timeout=scaled(5)) as third:
        assert third.recv(16) == b""  # closed at accept
    for c in held:
        c.close()

    def admitted():
        # Until the broker has seen the closes, a new connection is still closed at accept.
        try:
            return http_call(hp, "GET", "/healthz", key=None)[0] == 200
        except (OSError, http.client.HTTPException):
            return False
    wait_for(admitted, what="a connection to be admitted again")


def test_user_property_value_over_65535_bytes_is_refused(api):
    """A value's length must fit the property's 16-bit length (MQTT 5 section 1.5.7): a longer
    one is refused, never truncated into the next property."""
    b, hp = api()
    sub = connect(b.port, "up-sub")
    sub.subscribe("up/#")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "up/x", "user_properties": {"k": "v" * 65536}})
    assert (st, body["code"]) == (400, "invalid_argument")
    st, _, body = http_call(hp, "POST", "/api/v1/publish",
                            {"topic": "up/x", "user_properties": {"k": "v" * 65535}})
    assert st == 200
    m = sub.expect_message()
    assert m.properties.UserProperty == [("k", "v" * 65535)]
    sub.disconnect()
