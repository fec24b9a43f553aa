"""TLS listeners (issue 5): TLS 1.2 and 1.3 with paho-mqtt and mosquitto_pub/sub, client
certificates (require_certificate, use_identity_as_username, crlfile), refusals, clients that
stall the handshake, and certificate reload on SIGHUP. Certificates are made for each test
module by `openssl` in a temporary directory."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess

import pytest

import rawmqtt as rm
from rawmqtt import RawClient
from support import MQTTv311, MQTTv5, Paho, free_port, run_broker_once, scaled, wait_for

MOSQUITTO_PUB = shutil.which("mosquitto_pub")
MOSQUITTO_SUB = shutil.which("mosquitto_sub")


# ------------------------------------------------------------------------- certificates

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=scaled(30))


class PKI:
    """Two CAs, server certificates for 127.0.0.1 from each, client certificates."""

    def __init__(self, d):
        self.d = d
        self.ca("ca")
        self.ca("ca2")
        self.leaf("server", "ca", "localhost", server=True)
        self.leaf("server2", "ca2", "localhost", server=True)
        self.leaf("alice", "ca", "alice")
        self.leaf("mallory", "ca2", "alice")  # right name, wrong CA
        self.leaf("revoked", "ca", "revoked")
        self.revoke("revoked")

    def path(self, name):
        return str(self.d / name)

    def crt(self, name):
        return self.path(name + ".crt")

    def key(self, name):
        return self.path(name + ".key")

    def ca(self, name):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
                "-subj", "/CN=Petrel test " + name, cwd=self.d)

    def leaf(self, name, ca, cn, server=False):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
                cwd=self.d)
        ext = self.d / (name + ".ext")
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                       if server else "extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", str(ext),
                cwd=self.d)

    def revoke(self, name):
        (self.d / "index.txt").write_text("")
        (self.d / "crlnumber").write_text("01\n")
        (self.d / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
                                       "crlnumber = crlnumber\ndefault_md = sha256\n"
                                       "default_crl_days = 2\n")
        openssl("ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-revoke",
                name + ".crt", cwd=self.d)
        openssl("ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-gencrl",
                "-out", "crl.pem", cwd=self.d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    return PKI(tmp_path_factory.mktemp("pki"))


def client_ctx(pki, ca="ca", cert=None, min_version=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.crt(ca))
    if cert:
        ctx.load_cert_chain(pki.crt(cert), pki.key(cert))
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_listener(pki, *extra, cert="server"):
    return ["listener 0 127.0.0.1", "certfile %s" % pki.crt(cert),
            "keyfile %s" % pki.key(cert)] + list(extra)


def tls_port(b):
    """The TLS listener: the broker's second (the first is the fixture's plain one)."""
    def second():
        ports = re.findall(r"listening address=\S+ port=(\d+)", b.log())
        return len(ports) >= 2 and int(ports[1])
    return wait_for(second, what="TLS listener")


class TlsRaw(RawClient):
    """RawClient over TLS: the handshake happens here."""

    def __init__(self, port, ctx, version=5):
        super().__init__(port, version)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="127.0.0.1")


def tls_paho(port, ctx, client_id, protocol=MQTTv5):
    p = Paho(port, client_id, protocol=protocol)
    p.c.tls_set_context(ctx)
    return p


def expect_tls_refused(port, ctx):
    """The handshake fails, or (TLS 1.3 checks the client's certificate after the client
    finished) the connection ends before any CONNACK."""
    try:
        c = TlsRaw(port, ctx)
        c.send(rm.connect("refused", version=5))
        pkt = c.recv(timeout=scaled(5))
    except (ssl.SSLError, ConnectionError, OSError, rm.Closed):
        return
    raise AssertionError("TLS connection accepted: %r" % pkt)


# ------------------------------------------------------------------------- basics

@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_paho_over_tls(broker, pki, version):
    """paho-mqtt publishes and subscribes over TLS 1.2 and 1.3."""
    b = broker(*tls_listener(pki))
    port = tls_port(b)
    v = getattr(ssl.TLSVersion, version.replace(".", "_").replace("v", "v"))
    ctx = client_ctx(pki, min_version=v, max_version=v)
    sub = tls_paho(port, ctx, "tls-sub")
    sub.connect()
    assert sub.c.socket().version() == version
    assert sub.subscribe("t/#", qos=1) == [1]
    pub = tls_paho(port, ctx, "tls-pub", protocol=MQTTv311)
    pub.connect()
    pub.publish("t/1", b"over tls", qos=1)
    m = sub.expect_message()
    assert (m.topic, m.payload) == ("t/1", b"over tls")
    pub.disconnect()
    sub.disconnect()


def test_large_messages_over_tls(broker, pki):
    """Payloads far larger than a TLS record (partial writes, several records per read)."""
    b = broker(*tls_listener(pki))
    port = tls_port(b)
    sub = TlsRaw(port, client_ctx(pki))
    sub.connect("big-sub")
    sub.subscribe(("big/#", 1))
    pub = TlsRaw(port, client_ctx(pki))
    pub.connect("big-pub")
    payloads = [os.urandom(n) for n in (3 * 1024 * 1024, 70000, 1)]
    for i, p in enumerate(payloads):
        pub.publish("big/%d" % i, p, qos=1, pid=i + 1)
    for i, p in enumerate(payloads):
        m = sub.recv_publish(timeout=scaled(20))
        assert m.topic == "big/%d" % i and m.payload == p


def test_tls_version_minimum(broker, pki):
    """tls_version tlsv1.3: a client limited to TLS 1.2 cannot connect."""
    b = broker(*tls_listener(pki, "tls_version tlsv1.3"))
    port = tls_port(b)
    expect_tls_refused(port, client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2))
    c = TlsRaw(port, client_ctx(pki))
    c.connect("v13")
    assert c.sock.version() == "TLSv1.3"


def test_client_trusting_another_ca_refuses_server(broker, pki):
    b = broker(*tls_listener(pki))
    with pytest.raises(ssl.SSLCertVerificationError):
        TlsRaw(tls_port(b), client_ctx(pki, ca="ca2"))


def test_plain_mqtt_on_tls_port_is_closed(broker, pki):
    """A client speaking plain MQTT to a TLS port is closed; the broker carries on."""
    b = broker(*tls_listener(pki))
    c = RawClient(tls_port(b), 5)
    c.send(rm.connect("plain", version=5))
    c.expect_closed()
    ok = TlsRaw(tls_port(b), client_ctx(pki))
    ok.connect("after-plain")


@pytest.mark.skipif(not (MOSQUITTO_PUB and MOSQUITTO_SUB), reason="mosquitto clients missing")
def test_mosquitto_clients_over_tls(broker, pki):
    b = broker(*tls_listener(pki))
    port = tls_port(b)
    sub = subprocess.Popen([MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "--cafile",
                            pki.crt("ca"), "-t", "m/#", "-C", "1", "-v", "-q", "1",
                            "-i", "mos-sub"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: "client connected client=mos-sub" in b.log() and
                 "mos-sub" in b.log(), what="mosquitto_sub")
        # The SUBACK follows the CONNACK at once; publish until the subscriber has it.
        def published():
            subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "--cafile",
                            pki.crt("ca"), "-t", "m/x", "-m", "from mosquitto_pub", "-q", "1"],
                           check=True, capture_output=True, timeout=scaled(10))
            return sub.poll() is not None
        wait_for(published, timeout=10, interval=0.2, what="delivery to mosquitto_sub")
        out, err = sub.communicate(timeout=scaled(5))
        assert out.strip() == "m/x from mosquitto_pub", err
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


# ------------------------------------------------------------------------- client certificates

def test_require_certificate(broker, pki):
    """require_certificate: a certificate from the CA gets in; none, or one from another CA,
    does not."""
    b = broker(*tls_listener(pki, "cafile %s" % pki.crt("ca"), "require_certificate true"))
    port = tls_port(b)
    ok = TlsRaw(port, client_ctx(pki, cert="alice"))
    ok.connect("with-cert")
    expect_tls_refused(port, client_ctx(pki))
    expect_tls_refused(port, client_ctx(pki, cert="mallory"))
    assert "tls handshake failed" in b.log() or "tls read failed" in b.log()
    ok.ping()


@pytest.mark.skipif(not MOSQUITTO_SUB, reason="mosquitto clients missing")
def test_mosquitto_client_certificate(broker, pki):
    b = broker(*tls_listener(pki, "cafile %s" % pki.crt("ca"), "require_certificate true"))
    port = tls_port(b)
    r = subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "--cafile",
                        pki.crt("ca"), "--cert", pki.crt("alice"), "--key", pki.key("alice"),
                        "-t", "c/x", "-m", "m", "-q", "1"],
                       capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode == 0, r.stderr
    r = subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "--cafile",
                        pki.crt("ca"), "-t", "c/x", "-m", "m", "-q", "1"],
                       capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode != 0


def test_crlfile_refuses_revoked_certificates(broker, pki):
    b = broker(*tls_listener(pki, "cafile %s" % pki.crt("ca"), "require_certificate true",
                             "crlfile %s" % pki.path("crl.pem")))
    port = tls_port(b)
    TlsRaw(port, client_ctx(pki, cert="alice")).connect("good")
    expect_tls_refused(port, client_ctx(pki, cert="revoked"))


def test_use_identity_as_username(broker, pki, tmp_path):
    """The certificate's CN is the username the ACL sees; no password is needed, and the
    username sent is not looked at."""
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite alice/#\n")
    pw = tmp_path / "pw"
    pw.write_text("")  # a password file: anonymous clients are refused by default
    b = broker(*tls_listener(pki, "cafile %s" % pki.crt("ca"), "require_certificate true",
                             "use_identity_as_username true"),
               "acl_file %s" % acl, "password_file %s" % pw, default_anonymous=False)
    port = tls_port(b)
    c = TlsRaw(port, client_ctx(pki, cert="alice"))
    c.connect("cert-client", username="bob", password=b"irrelevant")
    assert c.subscribe([("alice/#", 1), ("bob/#", 1)]).rcs == [1, 0x87]
    assert c.publish("alice/x", b"mine", qos=1).rc == 0
    assert c.recv_publish().payload == b"mine"
    assert c.publish("bob/x", b"not mine", qos=1).rc == 0x87
    # The plain listener of the same broker has no certificate: anonymous is refused there.
    plain = RawClient(b.port, 5)
    assert plain.connect("plain", expect_rc=None).rc == 0x87


# ------------------------------------------------------------------------- no stalls

def client_hello(pki):
    """The first flight of a TLS client, made without a socket."""
    ctx = client_ctx(pki)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_silent_and_stalled_tls_clients_do_not_block_others(broker, pki):
    """With one worker: clients that connect and send nothing, send half a ClientHello, or
    send a ClientHello and then never answer, do not delay a TLS publish to a TLS subscriber
    or a plain one (generous timeouts, no timings)."""
    b = broker(*tls_listener(pki), "workers 1")
    port = tls_port(b)
    hello = client_hello(pki)
    stalled = []
    for i in range(3):
        stalled.append(socket.create_connection(("127.0.0.1", port)))
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(hello[: len(hello) // 2])
    whole = socket.create_connection(("127.0.0.1", port))
    whole.sendall(hello)  # the server answers; we never read it nor finish
    stalled += [half, whole]
    try:
        plain = RawClient(b.port, 5)
        plain.connect("plain-sub")
        plain.subscribe(("s/#", 0))
        sub = tls_paho(port, client_ctx(pki), "tls-sub2")
        sub.connect(timeout=10)
        sub.subscribe("s/#")
        pub = tls_paho(port, client_ctx(pki), "tls-pub2")
        pub.connect(timeout=10)
        pub.publish("s/1", b"not stalled", qos=1, timeout=10)
        assert sub.expect_message(timeout=10).payload == b"not stalled"
        assert plain.recv_publish(timeout=scaled(10)).payload == b"not stalled"
        pub.disconnect()
        sub.disconnect()
    finally:
        for s in stalled:
            s.close()


# ------------------------------------------------------------------------- reload

def test_certificate_reload_on_sighup(broker, pki, tmp_path):
    """SIGHUP reloads certfile/keyfile: new connections get the new certificate, established
    ones carry on; a reload that fails keeps the certificate in force."""
    live_crt, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(pki.crt("server"), live_crt)
    shutil.copy(pki.key("server"), live_key)
    b = broker("listener 0 127.0.0.1", "certfile %s" % live_crt, "keyfile %s" % live_key)
    port = tls_port(b)
    old = TlsRaw(port, client_ctx(pki, ca="ca"))
    old.connect("old")

    shutil.copy(pki.crt("server2"), live_crt)
    shutil.copy(pki.key("server2"), live_key)
    b.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in b.log(), what="reload")
    TlsRaw(port, client_ctx(pki, ca="ca2")).connect("new")
    with pytest.raises(ssl.SSLCertVerificationError):
        TlsRaw(port, client_ctx(pki, ca="ca"))
    old.ping()

    live_crt.write_text("not a certificate\n")
    b.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in b.log(), what="failed reload")
    TlsRaw(port, client_ctx(pki, ca="ca2")).connect("still")


# ------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("lines,words", [
    (["certfile {d}/nope.crt", "keyfile {key}"], ["certfile", "nope.crt"]),
    (["certfile {crt}"], ["keyfile"]),
    (["certfile {crt}", "keyfile {other}"], ["keyfile", "mismatch"]),
    (["certfile {crt}", "keyfile {key}", "tls_version tlsv1.1"], ["tls_version", "tlsv1.1"]),
    (["certfile {crt}", "keyfile {key}", "require_certificate true"], ["cafile"]),
    (["certfile {crt}", "keyfile {key}", "cafile {ca}", "use_identity_as_username true"],
     ["require_certificate"]),
    (["certfile {crt}", "keyfile {key}", "ciphers NO-SUCH-CIPHER"], ["ciphers"]),
    (["keyfile {key}"], ["keyfile", "certfile"]),
    (["require_certificate true"], ["require_certificate", "certfile"]),
])
def test_tls_configuration_errors(pki, tmp_path, lines, words):
    fmt = {"d": str(tmp_path), "crt": pki.crt("server"), "key": pki.key("server"),
           "other": pki.key("alice"), "ca": pki.crt("ca")}
    text = "listener %d 127.0.0.1\n%s\n" % (free_port(), "\n".join(l.format(**fmt)
                                                                  for l in lines))
    conf = tmp_path / "p.conf"
    conf.write_text(text)
    rc, out = run_broker_once(["-c", str(conf)])
    assert rc is not None and rc > 0, out
    for w in words:
        assert w in out, (w, out)


def test_use_identity_as_username_over_wss(broker, pki, tmp_path):
    """The same over WebSocket inside TLS (wss://): the certificate seen by the TLS layer under
    the WebSocket one names the user."""
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite alice/#\n")
    pw = tmp_path / "pw"
    pw.write_text("")
    b = broker(*tls_listener(pki, "protocol websockets", "cafile %s" % pki.crt("ca"),
                             "require_certificate true", "use_identity_as_username true"),
               "acl_file %s" % acl, "password_file %s" % pw, default_anonymous=False)
    port = tls_port(b)
    import paho.mqtt.client as mqtt
    got, acked = [], []
    c = mqtt.Client(client_id="wss-cert", protocol=mqtt.MQTTv311, transport="websockets")
    c.tls_set_context(client_ctx(pki, cert="alice"))
    c.ws_set_options(path="/mqtt")
    c.on_message = lambda cl, u, m: got.append((m.topic, m.payload))
    c.on_subscribe = lambda cl, u, mid, granted: acked.append(list(granted))
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        wait_for(lambda: c.is_connected(), what="wss connection")
        c.subscribe([("alice/#", 1), ("bob/#", 1)])
        wait_for(lambda: acked, what="SUBACK")
        assert acked[0] == [1, 0x80]  # bob/# is not alice's
        c.publish("alice/x", b"mine", qos=1)
        wait_for(lambda: got, what="own message")
        assert got[0] == ("alice/x", b"mine")
    finally:
        c.loop_stop()
        c.disconnect()
