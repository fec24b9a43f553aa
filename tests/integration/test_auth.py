"""Authentication and authorization (issue 5): Mosquitto password and ACL files, `petrel
passwd`, ApsaraMQ Signature and DeviceCredential logins, GID client IDs, secure defaults,
slowing down failed logins, reload on SIGHUP. See docs/security.md.

Refusal codes: wrong credentials CONNACK 0x86 (MQTT 5) / 5 (3.1.1, as Mosquitto), not authorized 0x87 / 5,
client ID not valid 0x85 / 2; PUBLISH denied: PUBACK/PUBREC 0x87 (5), dropped silently (3.1.1);
SUBSCRIBE denied: SUBACK 0x87 (5) / 0x80 (3.1.1)."""

import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient
from support import (MQTTv311, MQTTv5, PETREL_BIN, Paho, free_port, run_broker_once, scaled,
                     wait_for)

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if os.path.exists("/usr/sbin/mosquitto") else None)

BAD_CREDENTIALS = {4: 5, 5: 0x86}  # 3.1.1: 5, as Mosquitto (4 is for malformed data)
NOT_AUTHORIZED = {4: 5, 5: 0x87}
CLIENT_ID_INVALID = {4: 2, 5: 0x85}


def sign(secret, client_id):
    """ApsaraMQ's password: Base64(HMAC-SHA1(key = secret, data = client ID))."""
    mac = hmac.new(secret.encode(), client_id.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def mosquitto_passwd_file(tmp_path, users):
    """A password file written by Debian's mosquitto_passwd."""
    if not MOSQUITTO_PASSWD:
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "passwd"
    first = True
    for user, password in users.items():
        args = [MOSQUITTO_PASSWD] + (["-c"] if first else []) + ["-b", str(path), user, password]
        subprocess.run(args, check=True, capture_output=True, timeout=scaled(10))
        first = False
    return path


def petrel_passwd(*args, stdin=None):
    return subprocess.run([PETREL_BIN, "passwd"] + list(args), input=stdin, capture_output=True,
                          text=True, timeout=scaled(20))


def connack(port, version, client_id="c", **kw):
    """Connect with raw bytes; returns (CONNACK code, client)."""
    c = RawClient(port, version)
    ack = c.connect(client_id, expect_rc=None, **kw)
    return ack.rc, c


def login_ok(port, version, client_id="c", **kw):
    rc, c = connack(port, version, client_id, **kw)
    assert rc == 0, "CONNACK 0x%02x" % rc
    return c


def refused(port, version, code, client_id="c", **kw):
    rc, c = connack(port, version, client_id, **kw)
    assert rc == code, "CONNACK 0x%02x, expected 0x%02x" % (rc, code)
    c.expect_closed()


def listening_ports(b):
    return [int(p) for p in re.findall(r"listening address=\S+ port=(\d+)", b.log())]


def second_port(b):
    """The port of the broker's second listener (the first is the fixture's loopback one)."""
    return wait_for(lambda: len(listening_ports(b)) >= 2 and listening_ports(b)[1],
                    what="second listener")


# ------------------------------------------------------------------------- password files

@pytest.mark.parametrize("version", [4, 5])
def test_mosquitto_password_file_logins(broker, tmp_path, version):
    """Entries written by mosquitto_passwd log in; a wrong password and an unknown user get
    0x86 / 5; a client without username gets 0x87 / 5 (a password file makes anonymous
    clients unwelcome unless allow_anonymous true)."""
    pw = mosquitto_passwd_file(tmp_path, {"alice": "secret1", "bob": "p@ss wörd"})
    b = broker("password_file %s" % pw, default_anonymous=False)
    login_ok(b.port, version, username="alice", password=b"secret1").disconnect()
    login_ok(b.port, version, username="bob", password="p@ss wörd".encode()).disconnect()
    refused(b.port, version, BAD_CREDENTIALS[version], username="alice", password=b"secret2")
    refused(b.port, version, BAD_CREDENTIALS[version], username="alice")
    refused(b.port, version, BAD_CREDENTIALS[version], username="zed", password=b"secret1")
    refused(b.port, version, NOT_AUTHORIZED[version])


def test_mosquitto_sha512_entries(broker, tmp_path):
    """Old "$6$" entries (mosquitto_passwd -H sha512) still log in."""
    if not MOSQUITTO_PASSWD:
        pytest.skip("mosquitto_passwd is not installed")
    pw = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-H", "sha512", "-c", "-b", str(pw), "carol", "old"],
                   check=True, capture_output=True, timeout=scaled(10))
    assert ":$6$" in pw.read_text()
    b = broker("password_file %s" % pw, default_anonymous=False)
    login_ok(b.port, 5, username="carol", password=b"old").disconnect()
    refused(b.port, 5, 0x86, username="carol", password=b"new")


def test_password_file_with_anonymous_allowed(broker, tmp_path):
    """allow_anonymous true with a password file: clients without username get in, clients
    with a username must still know its password."""
    pw = mosquitto_passwd_file(tmp_path, {"alice": "secret1"})
    b = broker("password_file %s" % pw, "allow_anonymous true")
    login_ok(b.port, 5).disconnect()
    refused(b.port, 5, 0x86, username="alice", password=b"nope")


def test_paho_login(broker, tmp_path):
    """paho-mqtt with username and password, and refused with the right code."""
    pw = mosquitto_passwd_file(tmp_path, {"alice": "secret1"})
    b = broker("password_file %s" % pw, default_anonymous=False)
    ok = Paho(b.port, "paho-ok", protocol=MQTTv5)
    ok.c.username_pw_set("alice", "secret1")
    ok.connect()
    ok.disconnect()
    bad = Paho(b.port, "paho-bad", protocol=MQTTv311)
    bad.c.username_pw_set("alice", "wrong")
    assert bad.connect(expect_rc=None)[0] == 5
    bad.disconnect()


def test_secrets_never_logged(broker, tmp_path):
    """Passwords never appear in the log, refused or accepted."""
    pw = mosquitto_passwd_file(tmp_path, {"alice": "Correct-Horse-42"})
    b = broker("password_file %s" % pw, "log_type all", default_anonymous=False)
    refused(b.port, 5, 0x86, username="alice", password=b"Wrong-Battery-17")
    login_ok(b.port, 5, username="alice", password=b"Correct-Horse-42").disconnect()
    log = b.log()
    assert "Wrong-Battery-17" not in log and "Correct-Horse-42" not in log
    assert "login refused" in log


def test_failed_logins_are_slowed_down(broker, tmp_path):
    """After auth_fail_limit failures from one address, further logins from it wait (even with
    the right password): CONNACK 0x9F Connection rate exceeded; later they work again."""
    pw = mosquitto_passwd_file(tmp_path, {"alice": "secret1"})
    b = broker("password_file %s" % pw, "auth_fail_limit 2", "auth_fail_max_delay 1",
               default_anonymous=False)
    for _ in range(2):
        refused(b.port, 5, 0x86, username="alice", password=b"guess")
    refused(b.port, 5, 0x9F, username="alice", password=b"secret1")
    time.sleep(1.2)  # the penalty is 1 s here
    login_ok(b.port, 5, username="alice", password=b"secret1").disconnect()


def test_password_file_reload_on_sighup(broker, tmp_path):
    """SIGHUP reads the password file again: a new user logs in, a removed one no longer; a
    file that cannot be read keeps the previous one in force."""
    pw = mosquitto_passwd_file(tmp_path, {"alice": "secret1"})
    b = broker("password_file %s" % pw, default_anonymous=False)
    login_ok(b.port, 5, username="alice", password=b"secret1").disconnect()
    refused(b.port, 5, 0x86, username="dave", password=b"d4ve")
    r = petrel_passwd("-b", str(pw), "dave", "d4ve")
    assert r.returncode == 0, r.stderr
    r = petrel_passwd("-D", str(pw), "alice")
    assert r.returncode == 0, r.stderr
    b.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in b.log(), what="reload")
    login_ok(b.port, 5, username="dave", password=b"d4ve").disconnect()
    refused(b.port, 5, 0x86, username="alice", password=b"secret1")
    # A broken reload keeps dave.
    os.rename(pw, str(pw) + ".away")
    b.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in b.log(), what="failed reload")
    login_ok(b.port, 5, username="dave", password=b"d4ve").disconnect()


# ------------------------------------------------------------------------- petrel passwd

def test_petrel_passwd_round_trip(broker, tmp_path):
    """petrel passwd -c / -b / stdin / -D, and the broker accepts what it wrote."""
    pw = tmp_path / "pw"
    r = petrel_passwd("-c", "-b", str(pw), "alice", "secret1")
    assert r.returncode == 0, r.stderr
    assert oct(os.stat(pw).st_mode & 0o777) == "0o600"
    r = petrel_passwd(str(pw), "bob", stdin="from stdin\n")
    assert r.returncode == 0, r.stderr
    r = petrel_passwd("-b", str(pw), "carol", "c")
    assert r.returncode == 0, r.stderr
    r = petrel_passwd("-b", str(pw), "alice", "secret2")  # replace
    assert r.returncode == 0, r.stderr
    r = petrel_passwd("-D", str(pw), "carol")
    assert r.returncode == 0, r.stderr
    lines = pw.read_text().splitlines()
    assert [l.split(":")[0] for l in lines] == ["alice", "bob"]
    assert all(re.fullmatch(r"[a-z]+:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", l)
               for l in lines), lines
    b = broker("password_file %s" % pw, default_anonymous=False)
    login_ok(b.port, 5, username="alice", password=b"secret2").disconnect()
    login_ok(b.port, 5, username="bob", password=b"from stdin").disconnect()
    refused(b.port, 5, 0x86, username="alice", password=b"secret1")
    refused(b.port, 5, 0x86, username="carol", password=b"c")


def test_petrel_passwd_errors(tmp_path):
    pw = tmp_path / "pw"
    assert petrel_passwd("-b", str(pw), "alice", "x").returncode == 1      # no file, no -c
    assert petrel_passwd("-c", "-b", str(pw), "a:b", "x").returncode == 1  # ':' in the name
    assert petrel_passwd("-c", "-b", str(pw), "alice", "x").returncode == 0
    assert petrel_passwd("-D", str(pw), "nobody").returncode == 1
    assert petrel_passwd("-b", str(pw), "alice").returncode == 2           # no password
    assert petrel_passwd(str(pw)).returncode == 2
    assert petrel_passwd("-c", "-D", str(pw), "alice").returncode == 2


def test_petrel_passwd_file_works_with_mosquitto(tmp_path):
    """A file written by petrel passwd, next to entries of mosquitto_passwd, is read by
    Mosquitto itself: both users log in to a real mosquitto."""
    if not MOSQUITTO:
        pytest.skip("mosquitto is not installed")
    pw = mosquitto_passwd_file(tmp_path, {"mos": "mos-pw"})
    assert petrel_passwd("-b", str(pw), "pet", "pet-pw").returncode == 0
    port = free_port()
    conf = write(tmp_path, "mosquitto.conf",
                 "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
                 "user root\n" % (port, pw))  # stay root: the files live in root's tmp
    log = open(tmp_path / "mosquitto.log", "wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, timeout=10, what="mosquitto")
        login_ok(port, 4, "m1", username="pet", password=b"pet-pw").disconnect()
        login_ok(port, 4, "m2", username="mos", password=b"mos-pw").disconnect()
        rc, c = connack(port, 4, "m3", username="pet", password=b"wrong")
        assert rc in (4, 5)
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(scaled(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# ------------------------------------------------------------------------- secure defaults

def test_anonymous_default_on_loopback(broker, tmp_path):
    """Without allow_anonymous in the file, anonymous clients are welcome on a loopback
    listener while no credentials file is configured, and refused once one is. (A listener on
    another address refuses them either way: test_auth.c, as this suite binds loopback only.)"""
    b = broker(default_anonymous=False)
    login_ok(b.port, 5).disconnect()
    pw = mosquitto_passwd_file(tmp_path, {"alice": "a"})
    b = broker("password_file %s" % pw, default_anonymous=False)
    refused(b.port, 5, 0x87)
    refused(b.port, 4, 5)


# ------------------------------------------------------------------------- ACL

ACL = """\
# anonymous clients
topic read public/#

user alice
topic readwrite sensors/#
topic deny sensors/secret/#
topic write cmd/#
topic write app
p2p same-group

user bob
topic read sensors/+/temp
topic read cmd/#

pattern readwrite devices/%c/#
pattern read inbox/%u
"""


@pytest.fixture
def acl_broker(broker, tmp_path):
    pw = mosquitto_passwd_file(tmp_path, {"alice": "a", "bob": "b", "carol": "c"})
    acl = write(tmp_path, "acl", ACL)
    return broker("password_file %s" % pw, "acl_file %s" % acl, "allow_anonymous true")


def user(port, name, client_id, version=5):
    return login_ok(port, version, client_id, username=name, password=name[0].encode())


@pytest.mark.parametrize("qos", [1, 2])
def test_acl_publish_denied_mqtt5(acl_broker, qos):
    """MQTT 5: a PUBLISH the ACL denies is answered with PUBACK/PUBREC 0x87 and not routed."""
    b = acl_broker
    watcher = user(b.port, "alice", "watcher")
    assert watcher.subscribe(("sensors/#", 1)).rcs == [1]
    bob = user(b.port, "bob", "bob-pub")
    ack = bob.publish("sensors/a/temp", b"x", qos=qos)
    assert ack.rc == 0x87
    watcher.expect_nothing(0.5)
    alice = user(b.port, "alice", "alice-pub")
    ack = alice.publish("sensors/a/temp", b"ok", qos=qos)
    assert ack.rc in (0, None)
    assert watcher.recv_publish().payload == b"ok"


def test_acl_publish_denied_mqtt311_dropped_silently(acl_broker):
    """3.1.1 has no reason code: the PUBACK says nothing, the message goes nowhere, and the
    connection stays up."""
    b = acl_broker
    watcher = user(b.port, "alice", "watcher")
    watcher.subscribe(("cmd/#", 1))
    bob = user(b.port, "bob", "bob-pub", version=4)
    assert bob.publish("sensors/a/temp", b"x", qos=1).rc == 0
    assert bob.ping()  # still connected
    watcher.expect_nothing(0.5)
    assert "publish denied by acl" in b.log()


@pytest.mark.parametrize("version,denied", [(5, 0x87), (4, 0x80)])
def test_acl_subscribe(acl_broker, version, denied):
    """SUBACK per filter: granted when a read rule reaches the filter, refused when none does
    or a deny rule covers it all."""
    b = acl_broker
    c = user(b.port, "alice", "subber", version=version)
    ack = c.subscribe([("sensors/#", 1), ("sensors/secret/#", 1), ("cmd/#", 0), ("#", 0),
                       ("other/x", 0)])
    assert ack.rcs == [1, denied, denied, 0, denied]


def test_acl_delivery_filters_what_a_subscription_reaches(acl_broker):
    """A subscription to '#' is granted, but delivers only what the ACL lets the subscriber
    read."""
    b = acl_broker
    bob = user(b.port, "bob", "bob-sub")
    assert bob.subscribe(("#", 0)).rcs == [0]
    alice = user(b.port, "alice", "alice-pub")
    alice.publish("sensors/a/hum", b"no", qos=1)
    alice.publish("sensors/a/temp", b"yes", qos=1)
    alice.publish("cmd/reboot", b"cmd", qos=1)
    got = [bob.recv_publish().payload, bob.recv_publish().payload]
    assert got == [b"yes", b"cmd"]
    bob.expect_nothing(0.5)


def test_acl_deny_overrides_readwrite(acl_broker):
    b = acl_broker
    alice = user(b.port, "alice", "alice-1")
    assert alice.subscribe(("sensors/#", 0)).rcs == [0]
    other = user(b.port, "alice", "alice-2")
    assert other.publish("sensors/secret/code", b"x", qos=1).rc == 0x87
    other.publish("sensors/open", b"o", qos=1)
    assert alice.recv_publish().topic == "sensors/open"


def test_acl_patterns(acl_broker):
    """%c and %u patterns: each client owns devices/<its id>/# and reads inbox/<its name>."""
    b = acl_broker
    carol = user(b.port, "carol", "dev-1")
    assert carol.subscribe([("devices/dev-1/#", 1), ("devices/dev-2/#", 1),
                            ("inbox/carol", 1), ("inbox/bob", 1)]).rcs == [1, 0x87, 1, 0x87]
    assert carol.publish("devices/dev-1/state", b"on", qos=1).rc == 0
    assert carol.publish("devices/dev-2/state", b"on", qos=1).rc == 0x87
    assert carol.recv_publish().payload == b"on"
    other = user(b.port, "alice", "alice-x")
    assert other.publish("inbox/carol", b"hi", qos=1).rc == 0x87  # read-only pattern


def test_acl_anonymous_rules(acl_broker):
    b = acl_broker
    anon = login_ok(b.port, 5, "anon-1")
    assert anon.subscribe([("public/#", 0), ("sensors/#", 0)]).rcs == [0, 0x87]
    assert anon.publish("public/x", b"x", qos=1).rc == 0x87


def test_acl_will_topic_needs_write(acl_broker):
    """The will is published in the client's name: a will topic it may not write refuses the
    connection (0x87)."""
    b = acl_broker
    refused(b.port, 5, 0x87, "bob-w", username="bob", password=b"b",
            will={"topic": "sensors/a/temp", "payload": b"gone"})
    login_ok(b.port, 5, "alice-w", username="alice", password=b"a",
             will={"topic": "sensors/a/temp", "payload": b"gone"}).disconnect()


def test_acl_reload_on_sighup(acl_broker, tmp_path):
    """SIGHUP re-reads the ACL; connected clients get the new rules at their next check."""
    b = acl_broker
    bob = user(b.port, "bob", "bob-r")
    assert bob.publish("sensors/a/temp", b"x", qos=1).rc == 0x87
    (tmp_path / "acl").write_text(ACL.replace("user bob\n", "user bob\ntopic write sensors/#\n"))
    b.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in b.log(), what="reload")
    assert bob.publish("sensors/a/temp", b"x", qos=1).rc == rm.RC_NO_MATCHING_SUBSCRIBERS


# ------------------------------------------------------------------------- P2P

P2P_ACL = """\
user alice
topic write app
p2p same-group
user bob
topic write app/p2p/GID_demo@@@dev-2
user carol
topic read other/#
"""


@pytest.fixture
def p2p_broker(broker, tmp_path):
    pw = mosquitto_passwd_file(tmp_path, {"alice": "a", "bob": "b", "carol": "c"})
    acl = write(tmp_path, "acl", P2P_ACL)
    return broker("password_file %s" % pw, "acl_file %s" % acl, "allow_anonymous true")


def test_p2p_write_on_parent(p2p_broker):
    """`write` on the parent topic allows P2P sends under it; the receiver needs no read
    rule; the same-group rule keeps sends inside the sender's GID group."""
    b = p2p_broker
    r1 = user(b.port, "carol", "GID_demo@@@dev-1")
    r2 = user(b.port, "carol", "GID_other@@@dev-1")
    alice = user(b.port, "alice", "GID_demo@@@alice")
    assert alice.publish("app/p2p/GID_demo@@@dev-1", b"hi", qos=1).rc == 0
    msg = r1.recv_publish()
    assert (msg.topic, msg.payload) == ("app/p2p/GID_demo@@@dev-1", b"hi")
    assert alice.publish("app/p2p/GID_other@@@dev-1", b"no", qos=1).rc == 0x87
    r2.expect_nothing(0.5)
    assert alice.publish("other/p2p/GID_demo@@@dev-1", b"no", qos=1).rc == 0x87


def test_p2p_write_on_full_topic(p2p_broker):
    """`write` on the full P2P topic allows exactly that target."""
    b = p2p_broker
    r2 = user(b.port, "carol", "GID_demo@@@dev-2")
    bob = user(b.port, "bob", "bob-1")
    assert bob.publish("app/p2p/GID_demo@@@dev-2", b"yes", qos=1).rc == 0
    assert r2.recv_publish().payload == b"yes"
    assert bob.publish("app/p2p/GID_demo@@@dev-1", b"no", qos=1).rc == 0x87


def test_p2p_receiver_subscribing_to_its_own_topic(p2p_broker):
    """Subscribing to its own P2P topic needs no read rule (p2p_filter_allowed keeps it to its
    own)."""
    b = p2p_broker
    bob = user(b.port, "bob", "GID_demo@@@dev-2")
    assert bob.subscribe([("app/p2p/GID_demo@@@dev-2", 1), ("app/p2p/someone", 1)]).rcs == [
        1, 0x87]


# ------------------------------------------------------------------------- ApsaraMQ

def apsara_broker(broker, tmp_path, *extra):
    keys = write(tmp_path, "keys", "# AccessKeyId SecretKey [InstanceId]\n"
                                   "LTAI-test-key S3cretKey mqtt-cn-test\n")
    devs = write(tmp_path, "devs", "dak-001 dev-secret GID_demo@@@DEVICE_001\n")
    return broker("access_key_file %s" % keys, "device_credential_file %s" % devs, *extra,
                  default_anonymous=False)


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5])
def test_apsara_signature_login_with_paho(broker, tmp_path, protocol):
    """Signature mode: username Signature|AccessKeyId|InstanceId, password computed here with
    Python's hmac."""
    b = apsara_broker(broker, tmp_path)
    cid = "GID_demo@@@DEVICE_042"
    sub = Paho(b.port, cid, protocol=protocol)
    sub.c.username_pw_set("Signature|LTAI-test-key|mqtt-cn-test", sign("S3cretKey", cid))
    sub.connect()
    sub.subscribe("demo/#", qos=1)
    sub.publish("demo/x", b"signed", qos=1)
    assert sub.expect_message().payload == b"signed"
    sub.disconnect()
    bad = Paho(b.port, cid, protocol=protocol)
    bad.c.username_pw_set("Signature|LTAI-test-key|mqtt-cn-test", sign("wrong", cid))
    assert bad.connect(expect_rc=None)[0] == (0x86 if protocol == MQTTv5 else 5)
    bad.disconnect()


def test_apsara_signature_refusals(broker, tmp_path):
    b = apsara_broker(broker, tmp_path)
    cid = "GID_demo@@@DEVICE_1"
    good = sign("S3cretKey", cid).encode()
    login_ok(b.port, 5, cid, username="Signature|LTAI-test-key|mqtt-cn-test",
             password=good).disconnect()
    # another instance than the key's
    refused(b.port, 5, 0x86, cid, username="Signature|LTAI-test-key|mqtt-cn-else", password=good)
    # the signature of another client ID
    refused(b.port, 5, 0x86, "GID_demo@@@DEVICE_2", username="Signature|LTAI-test-key|mqtt-cn-test",
            password=good)
    refused(b.port, 4, 5, cid, username="Signature|no-such-key|mqtt-cn-test", password=good)
    # no credentials at all: anonymous, refused by default once key files exist
    refused(b.port, 4, 5, cid)


def test_apsara_device_credential(broker, tmp_path):
    """DeviceCredential mode: the credential logs in only with its own client ID."""
    b = apsara_broker(broker, tmp_path)
    cid = "GID_demo@@@DEVICE_001"
    p = Paho(b.port, cid, protocol=MQTTv311)
    p.c.username_pw_set("DeviceCredential|dak-001|mqtt-cn-test", sign("dev-secret", cid))
    p.connect()
    p.disconnect()
    other = "GID_demo@@@DEVICE_002"
    refused(b.port, 5, 0x86, other, username="DeviceCredential|dak-001|mqtt-cn-test",
            password=sign("dev-secret", other).encode())


@pytest.mark.parametrize("version", [4, 5])
def test_gid_client_ids_required(broker, tmp_path, version):
    """require_gid_clientid: other client IDs are refused (0x85 / 2); allowed_gid_group limits
    the groups (0x87 / 5)."""
    b = broker("require_gid_clientid true", "allowed_gid_group GID_demo",
               "allowed_gid_group GID-second")
    login_ok(b.port, version, "GID_demo@@@dev").disconnect()
    login_ok(b.port, version, "GID-second@@@dev").disconnect()
    refused(b.port, version, CLIENT_ID_INVALID[version], "plain-client")
    refused(b.port, version, CLIENT_ID_INVALID[version], "GID_demo@@@")
    refused(b.port, version, CLIENT_ID_INVALID[version], "GID_x@@@dev")  # group too short
    refused(b.port, version, NOT_AUTHORIZED[version], "GID_others@@@dev")


def test_auth_config_errors(tmp_path):
    """Files that cannot be read, or hold errors, stop start-up naming the key and line."""
    for line, words in [("acl_file %s" % write(tmp_path, "acl", "topic read a\nbogus line\n"),
                         ["acl_file", ":2:", "bogus"]),
                        ("access_key_file %s" % write(tmp_path, "keys", "only-an-id\n"),
                         ["access_key_file", ":1:"]),
                        ("device_credential_file /nonexistent/devs",
                         ["device_credential_file", "/nonexistent/devs"]),
                        ("allowed_gid_group nope", ["allowed_gid_group", "nope"])]:
        conf = write(tmp_path, "p.conf", "listener %d 127.0.0.1\n%s\n" % (free_port(), line))
        rc, out = run_broker_once(["-c", str(conf)])
        assert rc is not None and rc > 0, out
        for w in words:
            assert w in out, (w, out)
