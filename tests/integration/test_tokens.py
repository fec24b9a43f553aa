"""Token logins (issue 8, ApsaraMQ style): tokens issued and revoked through the HTTP API, login
with `Token|<AccessKeyId>|<InstanceId>` and `R|<token>|W|<token>`, publish and subscribe limited
to the tokens' topics, refresh via $SYS/uploadToken, the expiry notice, the invalid notice and
disconnect on expiry or revocation, and tokens surviving a SIGKILL with persistence on.

The HTTP contract used here: `http_listener 0 127.0.0.1` and `http_api_key_file <path>` (lines
`KEY read|write [NAME]`); support.http_port reads the HTTP port from the broker's log;
POST /api/v1/tokens with `Authorization: Bearer KEY` and {"resources", "actions",
"expire_seconds"} answers 200 {"token", "expires_at"}; DELETE /api/v1/tokens/<token> answers
200 {"revoked": true} or 404 {"code": "not_found", ...}.
"""

import json
import time
import urllib.error
import urllib.request

import pytest

import rawmqtt as rm
from rawmqtt import RawClient
from support import free_port, http_port, scaled, wait_for

API_KEY = "tok-test-key-0123456789"
USER = "Token|AKID_test|mqtt-inst-1"

# Loopback only: never through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method)
        req.add_header("Authorization", "Bearer " + API_KEY)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _opener.open(req, timeout=scaled(10)) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def issue(self, resources, actions, expire_seconds=3600):
        status, body = self.call("POST", "/api/v1/tokens", {
            "resources": resources, "actions": actions, "expire_seconds": expire_seconds})
        assert status == 200, "token issue answered %s %r" % (status, body)
        assert isinstance(body["token"], str) and body["token"]
        now = time.time()
        assert now - 5 <= body["expires_at"] - expire_seconds <= now + 5, body
        return body["token"], body["expires_at"]

    def revoke(self, token):
        return self.call("DELETE", "/api/v1/tokens/" + token)


def _start(broker, tmp_path, *extra, port=None):
    """A broker with the HTTP API; returns (broker, Api). The MQTT port is chosen here, so the
    broker's log is read for the HTTP port only."""
    keys = tmp_path / "api_keys"
    if not keys.exists():
        keys.write_text("%s write tests\n" % API_KEY)
    b = broker("http_listener 0 127.0.0.1", "http_api_key_file %s" % keys, *extra,
               port=port or free_port())
    return b, Api(http_port(b))


def _login(port, version, password, client_id="tokclient", expect_rc=0):
    c = RawClient(port, version)
    c.connect(client_id, username=USER, password=password.encode(), expect_rc=expect_rc)
    return c


def _json(pkt):
    return json.loads(pkt.payload.decode())


def _refused(version):
    return 0x87 if version == 5 else 0x80


@pytest.mark.parametrize("version", [5, 4])
def test_token_login_limits_publish_and_subscribe(broker, tmp_path, version):
    b, api = _start(broker, tmp_path)
    r, _ = api.issue(["in/#", "room/+/temp"], "R")
    w, _ = api.issue(["out/+", "app/p2p/#"], "W")
    c = _login(b.port, version, "R|%s|W|%s" % (r, w), client_id="GID_t@@@dev1")
    obs = RawClient(b.port, 5)
    obs.connect("observer")
    assert obs.subscribe(("#", rm.sub_opts(qos=1))).rcs == [1]

    # Subscribe: only filters whose every topic an R token covers.
    assert c.subscribe(("in/#", 1), pid=1).rcs == [1]
    assert c.subscribe(("room/kitchen/temp", 1), pid=2).rcs == [1]
    assert c.subscribe(("in/a/+", 0), pid=3).rcs == [0]
    for i, f in enumerate(["out/+", "#", "room/#", "inx", "+/a", "$SYS/#"]):
        assert c.subscribe((f, 0), pid=10 + i).rcs == [_refused(version)], f

    # Publish: only topics a W token matches.
    ack = c.publish("out/x", b"allowed", qos=1, pid=20)
    assert ack.rc in (0, None)
    m = obs.recv_publish()
    assert (m.topic, m.payload) == ("out/x", b"allowed")
    ack = c.publish("in/x", b"denied", qos=1, pid=21)
    if version == 5:
        assert ack.rc == 0x87
    c.publish("out/x/y", b"denied too", qos=0)
    obs.expect_nothing(0.5)

    # Deliveries follow the subscriptions.
    obs.publish("in/a/b", b"for you", qos=1, pid=30)
    obs.recv_publish()  # the observer's own copy (it subscribed to #)
    got = c.recv_publish()
    assert (got.topic, got.payload) == ("in/a/b", b"for you")

    # P2P: a publish to a P2P topic counts as a publish to that topic...
    peer = RawClient(b.port, 5)
    peer.connect("peer1")
    c.publish("app/p2p/peer1", b"direct", qos=1, pid=40)
    got = peer.recv_publish()
    assert (got.topic, got.payload) == ("app/p2p/peer1", b"direct")
    # ...and a client always receives the P2P messages addressed to it.
    peer.publish("app/p2p/GID_t@@@dev1", b"back", qos=1, pid=41)
    got = c.recv_publish()
    assert (got.topic, got.payload) == ("app/p2p/GID_t@@@dev1", b"back")
    c.disconnect()


@pytest.mark.parametrize("version", [5, 4])
def test_bad_tokens_refused(broker, tmp_path, version):
    b, api = _start(broker, tmp_path)
    r, _ = api.issue(["a/#"], "R")
    w, _ = api.issue(["a/#"], "W")
    bad = 0x86 if version == 5 else 5  # 3.1.1: 5, as for any wrong credentials
    for password in ["R|no-such-token", "W|%s" % r, "RW|%s" % r, "R", "R|%s|R|%s" % (r, r),
                     "X|%s" % r, ""]:
        c = RawClient(b.port, version)
        ack = c.connect("c1", username=USER, password=password.encode(), expect_rc=None)
        assert ack.rc == bad, (password, ack)
        c.expect_closed()
    # Both tokens right: in; a revoked token is as good as none.
    _login(b.port, version, "W|%s|R|%s" % (w, r)).disconnect()
    assert api.revoke(w) == (200, {"revoked": True})
    c = RawClient(b.port, version)
    assert c.connect("c1", username=USER, password=("R|%s|W|%s" % (r, w)).encode(),
                     expect_rc=None).rc == bad
    status, body = api.revoke(w)
    assert status == 404 and body["code"] == "not_found"


@pytest.mark.parametrize("version", [5, 4])
def test_revocation_notice_then_disconnect(broker, tmp_path, version):
    b, api = _start(broker, tmp_path)
    r, exp = api.issue(["a/#"], "R")
    w, _ = api.issue(["a/#"], "W")
    c = _login(b.port, version, "R|%s|W|%s" % (r, w))
    other = _login(b.port, version, "R|%s" % r, client_id="other")
    assert c.subscribe(("a/#", 0)).rcs == [0]
    c.expect_nothing(0.5)  # no notice yet: the tokens have an hour left

    assert api.revoke(w) == (200, {"revoked": True})
    got = c.expect_closed(timeout=scaled(5))
    assert got and got[0].type == rm.PUBLISH, got
    assert got[0].topic == "$SYS/tokenInvalidNotice"
    notice = _json(got[0])
    assert notice["type"] == "W" and notice["reason"] == "revoked"
    assert w.startswith(notice["token"]) and len(notice["token"]) >= 6
    if version == 5:
        assert got[-1].type == rm.DISCONNECT and got[-1].rc == 0x87, got
        assert len(got) == 2
    else:
        assert len(got) == 1
    # The client holding only the other token stays.
    assert other.is_open(1.0)
    other.disconnect()


def test_refresh_via_upload_token(broker, tmp_path):
    b, api = _start(broker, tmp_path)
    t1, _ = api.issue(["a/#"], "R")
    t2, exp2 = api.issue(["b/#"], "R")
    tw, _ = api.issue(["b/#"], "W")
    spy = RawClient(b.port, 5)
    spy.connect("spy")
    assert spy.subscribe(("$SYS/uploadToken", 0)).rcs == [0]
    c = _login(b.port, 5, "R|%s" % t1)
    assert c.subscribe(("b/#", 0), pid=1).rcs == [0x87]

    up = json.dumps({"token": t2, "type": "R"}).encode()
    assert c.publish("$SYS/uploadToken", up, qos=1, pid=2).rc == 0
    assert c.subscribe(("b/#", 0), pid=3).rcs == [0]
    assert c.subscribe(("a/x", 0), pid=4).rcs == [0x87]  # the old R token is replaced
    # The old token no longer matters: revoking it leaves the client alone.
    assert api.revoke(t1)[0] == 200
    assert c.is_open(1.0)
    # Refused refreshes: unknown, revoked, malformed, a W token as R, a type it cannot be.
    for payload in [{"token": "nope", "type": "R"}, {"token": t1, "type": "R"},
                    {"token": t2}, {"token": tw, "type": "R"}, {"token": t2, "type": "W"}]:
        assert c.publish("$SYS/uploadToken", json.dumps(payload).encode(), qos=1,
                         pid=5).rc == 0x87, payload
    assert c.publish("$SYS/uploadToken", b"not json", qos=1, pid=6).rc == 0x87
    # A W token can be added to an R-only login; then it may publish.
    assert c.publish("b/x", b"x", qos=1, pid=7).rc == 0x87
    assert c.publish("$SYS/uploadToken", json.dumps({"type": "W", "token": tw}).encode(),
                     qos=2, pid=8).type == rm.PUBCOMP
    assert c.publish("b/x", b"x", qos=1, pid=9).rc == 0
    assert c.recv_publish().topic == "b/x"  # its own subscription b/#
    # Nobody, not even a subscriber to the topic, sees the refreshes.
    spy.expect_nothing(0.5)
    # A client that did not log in with tokens cannot refresh any.
    spy.publish("$SYS/uploadToken", up, qos=0)
    assert spy.publish("$SYS/uploadToken", up, qos=1, pid=9).rc == 0x87
    # Revoking the uploaded token ends the client, which names the right type.
    assert api.revoke(t2)[0] == 200
    got = c.expect_closed(timeout=scaled(5))
    notices = [p for p in got if p.type == rm.PUBLISH]
    assert notices and notices[0].topic == "$SYS/tokenInvalidNotice"
    assert _json(notices[0])["type"] == "R"
    assert _json(notices[0])["expireTime"] == exp2


def test_expiry_notice_and_disconnect(broker, tmp_path):
    """A 60 s token (the shortest): its expiry notice comes at once (less than five minutes
    are left), then at expiry the invalid notice and DISCONNECT 0x87."""
    b, api = _start(broker, tmp_path)
    t, exp = api.issue(["a/#"], "RW", expire_seconds=60)
    long_r, _ = api.issue(["a/#"], "R")
    c = _login(b.port, 5, "RW|%s" % t)
    steady = _login(b.port, 5, "R|%s" % long_r, client_id="steady")
    pkt = c.recv_publish(timeout=scaled(5))
    assert pkt.topic == "$SYS/tokenExpireNotice" and pkt.qos == 0
    notice = _json(pkt)
    assert notice == {"token": t[:len(notice["token"])], "type": "RW", "expireTime": exp}
    c.expect_nothing(1.0)  # once, not every tick
    steady.expect_nothing(0.2)

    got = c.expect_closed(timeout=max(exp - time.time(), 0) + scaled(10))
    assert time.time() >= exp - 1, "disconnected before the token expired"
    assert [p.type for p in got] == [rm.PUBLISH, rm.DISCONNECT], got
    assert got[0].topic == "$SYS/tokenInvalidNotice"
    assert _json(got[0])["reason"] == "expired"
    assert got[1].rc == 0x87
    # An expired token no longer logs in.
    c = RawClient(b.port, 5)
    assert c.connect("again", username=USER, password=("RW|%s" % t).encode(),
                     expect_rc=None).rc == 0x86
    assert steady.is_open(0.5)
    steady.disconnect()


@pytest.mark.parametrize("how", ["term", "kill"])
def test_tokens_survive_restart(broker, tmp_path, how):
    data, port = tmp_path / "data", free_port()
    conf = ("persistence true", "persistence_location %s" % data)
    b, api = _start(broker, tmp_path, *conf, port=port)
    keep, _ = api.issue(["a/#"], "R")
    gone, _ = api.issue(["a/#"], "W")
    assert api.revoke(gone)[0] == 200
    if how == "kill":
        b.kill()
    else:
        assert b.stop() == 0
    b, api = _start(broker, tmp_path, *conf, port=port)
    c = _login(b.port, 5, "R|%s" % keep)
    assert c.subscribe(("a/b", 0)).rcs == [0]
    c.disconnect()
    c = RawClient(b.port, 5)
    assert c.connect("c2", username=USER, password=("W|%s" % gone).encode(),
                     expect_rc=None).rc == 0x86
    # The revocation after the restart is stored too.
    assert api.revoke(keep) == (200, {"revoked": True})
    b.kill()
    b, api = _start(broker, tmp_path, *conf, port=port)
    c = RawClient(b.port, 5)
    assert c.connect("c3", username=USER, password=("R|%s" % keep).encode(),
                     expect_rc=None).rc == 0x86
