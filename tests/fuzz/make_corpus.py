#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

    /usr/bin/python3 tests/fuzz/make_corpus.py

The files are committed; run this again after changing it. Seeds are valid inputs that reach
deep: every MQTT packet type in 3.1.1 and 5 (and 3.1's CONNECT) for fuzz_decode, CONNECT-first
client scripts for fuzz_session (pub/sub, QoS 1 and 2 flows, retained messages, wills,
takeovers, resumed sessions, P2P, shared subscriptions, $SYS), and small password, ACL,
configuration and topic inputs. Packets are encoded here from the specification, not captured.
"""
import hashlib
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

# ---- MQTT encoding ----

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(b)) + b


def packet(ptype, flags, body):
    return bytes([ptype << 4 | flags]) + varint(len(body)) + body


# Property identifiers and their encodings (MQTT 5, 2.2.2.2).
BYTE, U16, U32, VAR, STR, BIN, PAIR = range(7)
PROPS = {
    "payload_format": (0x01, BYTE), "message_expiry": (0x02, U32), "content_type": (0x03, STR),
    "response_topic": (0x08, STR), "correlation": (0x09, BIN), "sub_id": (0x0B, VAR),
    "session_expiry": (0x11, U32), "assigned_id": (0x12, STR), "server_keepalive": (0x13, U16),
    "auth_method": (0x15, STR), "auth_data": (0x16, BIN), "request_problem": (0x17, BYTE),
    "will_delay": (0x18, U32), "request_response": (0x19, BYTE),
    "response_info": (0x1A, STR), "server_ref": (0x1C, STR), "reason": (0x1F, STR),
    "receive_max": (0x21, U16), "alias_max": (0x22, U16), "alias": (0x23, U16),
    "max_qos": (0x24, BYTE), "retain_available": (0x25, BYTE), "user": (0x26, PAIR),
    "max_packet": (0x27, U32), "wildcard_available": (0x28, BYTE),
    "sub_id_available": (0x29, BYTE), "shared_available": (0x2A, BYTE),
}


def props(*items):
    out = bytearray()
    for name, value in items:
        pid, kind = PROPS[name]
        out += varint(pid)
        if kind == BYTE:
            out.append(value)
        elif kind == U16:
            out += struct.pack(">H", value)
        elif kind == U32:
            out += struct.pack(">I", value)
        elif kind == VAR:
            out += varint(value)
        elif kind in (STR, BIN):
            out += s(value)
        else:
            out += s(value[0]) + s(value[1])
    return varint(len(out)) + bytes(out)


def connect(v, client_id, clean=True, keepalive=60, will=None, user=None, password=None,
            cprops=(), wprops=()):
    """will: (topic, payload, qos, retain)."""
    name, level = {3: ("MQIsdp", 3), 4: ("MQTT", 4), 5: ("MQTT", 5)}[v]
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | will[2] << 3 | (0x20 if will[3] else 0)
    if user is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = s(name) + bytes([level, flags]) + struct.pack(">H", keepalive)
    if v == 5:
        body += props(*cprops)
    body += s(client_id)
    if will:
        if v == 5:
            body += props(*wprops)
        body += s(will[0]) + s(will[1])
    if user is not None:
        body += s(user)
    if password is not None:
        body += s(password)
    return packet(CONNECT, 0, body)


def connack(v, present=False, rc=0, p=()):
    body = bytes([1 if present else 0, rc])
    return packet(CONNACK, 0, body + (props(*p) if v == 5 else b""))


def publish(v, topic, payload=b"", qos=0, pid=1, retain=False, dup=False, p=()):
    flags = qos << 1 | (1 if retain else 0) | (8 if dup else 0)
    body = s(topic) + (struct.pack(">H", pid) if qos else b"")
    if v == 5:
        body += props(*p)
    return packet(PUBLISH, flags, body + (payload.encode() if isinstance(payload, str)
                                          else payload))


def ack(ptype, v, pid, rc=0, p=()):
    body = struct.pack(">H", pid)
    if v == 5 and (rc or p):
        body += bytes([rc]) + (props(*p) if p else b"")
    return packet(ptype, 2 if ptype == PUBREL else 0, body)


def subscribe(v, pid, *filters, p=()):
    """filters: (filter, options byte)."""
    body = struct.pack(">H", pid) + (props(*p) if v == 5 else b"")
    for f, opts in filters:
        body += s(f) + bytes([opts])
    return packet(SUBSCRIBE, 2, body)


def suback(v, pid, *rcs, ptype=SUBACK, p=()):
    body = struct.pack(">H", pid) + (props(*p) if v == 5 else b"") + bytes(rcs)
    return packet(ptype, 0, body)


def unsubscribe(v, pid, *filters, p=()):
    body = struct.pack(">H", pid) + (props(*p) if v == 5 else b"")
    for f in filters:
        body += s(f)
    return packet(UNSUBSCRIBE, 2, body)


def disconnect(v, rc=0, p=()):
    if v != 5 or (rc == 0 and not p):
        return packet(DISCONNECT, 0, b"")
    return packet(DISCONNECT, 0, bytes([rc]) + (props(*p) if p else b""))


def auth(rc=0x18, p=(("auth_method", "SCRAM-SHA-1"), ("auth_data", b"\x01\x02"))):
    return packet(AUTH, 0, bytes([rc]) + props(*p))


PINGREQ_P = packet(PINGREQ, 0, b"")
PINGRESP_P = packet(PINGRESP, 0, b"")

# ---- corpora ----


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def decode_corpus():
    u = ("user", ("k", "v"))
    seeds = {
        "connect_v31": connect(3, "c31", user="u", password=b"p"),
        "connect_v311": connect(4, "c311", clean=False, will=("w/t", b"gone", 1, True),
                                user="u", password=b"p"),
        "connect_v5": connect(5, "c5", will=("w/t", b"gone", 2, False), user="u",
                              password=b"p",
                              cprops=(("session_expiry", 60), ("receive_max", 10),
                                      ("alias_max", 5), ("max_packet", 65536),
                                      ("request_problem", 1), ("request_response", 1), u),
                              wprops=(("will_delay", 5), ("payload_format", 1),
                                      ("message_expiry", 30), ("content_type", "text/plain"),
                                      ("response_topic", "r/t"), ("correlation", b"id"), u)),
        "connack_v311": connack(4, present=True),
        "connack_v311_refused": connack(4, rc=5),
        "connack_v5": connack(5, p=(("session_expiry", 60), ("receive_max", 20),
                                    ("max_qos", 1), ("retain_available", 1),
                                    ("max_packet", 1 << 20), ("assigned_id", "auto-1"),
                                    ("alias_max", 10), ("reason", "ok"), u,
                                    ("wildcard_available", 1), ("sub_id_available", 1),
                                    ("shared_available", 1), ("server_keepalive", 30),
                                    ("response_info", "resp/"), ("server_ref", "other"))),
        "connack_v5_refused": connack(5, rc=0x87, p=(("reason", "no"),)),
        "publish_v311_qos0": publish(4, "a/b", "hello"),
        "publish_v311_qos1_retain": publish(4, "a/b", "hello", qos=1, pid=7, retain=True),
        "publish_v311_qos2_dup": publish(4, "a/b", "x" * 300, qos=2, pid=65535, dup=True),
        "publish_v5_qos1": publish(5, "a/b", "hi", qos=1, pid=2,
                                   p=(("payload_format", 1), ("message_expiry", 10),
                                      ("alias", 3), ("response_topic", "r"),
                                      ("correlation", b"c"), u, ("content_type", "t"),
                                      ("sub_id", 300))),
        "publish_v5_alias_only": publish(5, "", "x", p=(("alias", 3),)),
        "subscribe_v311": subscribe(4, 3, ("a/+", 1), ("b/#", 2), ("c", 0)),
        "subscribe_v5": subscribe(5, 4, ("a/+", 0x2D), ("$share/g/t", 1),
                                  p=(("sub_id", 12), u)),
        "suback_v311": suback(4, 3, 1, 2, 0x80),
        "suback_v5": suback(5, 4, 1, 0x87, p=(("reason", "denied"), u)),
        "unsubscribe_v311": unsubscribe(4, 5, "a/+", "b/#"),
        "unsubscribe_v5": unsubscribe(5, 6, "a/+", p=(u,)),
        "unsuback_v311": packet(UNSUBACK, 0, struct.pack(">H", 5)),
        "unsuback_v5": suback(5, 6, 0, 0x11, ptype=UNSUBACK, p=(("reason", "none"),)),
        "pingreq": PINGREQ_P,
        "pingresp": PINGRESP_P,
        "disconnect_v311": disconnect(4),
        "disconnect_v5": disconnect(5, 0x04, p=(("session_expiry", 0), ("reason", "bye"),
                                                ("server_ref", "s"), u)),
        "auth_v5": auth(),
    }
    for ptype, name in ((PUBACK, "puback"), (PUBREC, "pubrec"), (PUBREL, "pubrel"),
                        (PUBCOMP, "pubcomp")):
        seeds[name + "_v311"] = ack(ptype, 4, 9)
        seeds[name + "_v5"] = ack(ptype, 5, 9, rc=0x10 if ptype in (PUBACK, PUBREC) else 0x92,
                                  p=(("reason", "r"), u))
        seeds[name + "_v5_short"] = ack(ptype, 5, 9)
    for name, data in seeds.items():
        write("decode", name, data)
    return seeds


# fuzz_session script records: op = action << 2 | client (0-3).
def w(client, data):
    return bytes([client]) + struct.pack(">H", len(data)) + data


def close(client):
    return bytes([2 << 2 | client])


TICK = bytes([3 << 2])


def session_corpus():
    scripts = {}
    for v in (4, 5):
        tag = "v311" if v == 4 else "v5"
        cp = (("session_expiry", 300), ("receive_max", 2), ("alias_max", 4)) if v == 5 else ()
        # One client through every packet it may send.
        scripts["basic_" + tag] = (
            w(0, connect(v, "basic", cprops=cp)) +
            w(0, subscribe(v, 1, ("a/#", 2), ("b/+", 1))) +
            w(0, publish(v, "a/x", "q0")) +
            w(0, publish(v, "a/y", "q1", qos=1, pid=2)) +
            w(0, ack(PUBACK, v, 1)) +
            w(0, publish(v, "a/z", "q2", qos=2, pid=3)) +
            w(0, ack(PUBREL, v, 3)) +
            w(0, ack(PUBREC, v, 2)) + w(0, ack(PUBCOMP, v, 2)) +
            w(0, PINGREQ_P) +
            w(0, unsubscribe(v, 4, "a/#", "nothing")) +
            w(0, disconnect(v)))
        # Subscriber on hub 0, publisher on hub 1 (its CONNECT may be handed off), acks
        # flowing back, a retained message picked up by a late subscriber on hub 0.
        scripts["pubsub_" + tag] = (
            w(0, connect(v, "sub-a", cprops=cp)) +
            w(0, subscribe(v, 1, ("t/#", 2))) +
            w(1, connect(v, "pub-b")) +
            w(1, publish(v, "t/1", "m1", qos=1, pid=1)) +
            w(1, publish(v, "t/2", "m2" * 600, qos=2, pid=2)) +
            w(1, ack(PUBREL, v, 2)) +
            w(0, ack(PUBACK, v, 1)) + w(0, ack(PUBREC, v, 2)) + w(0, ack(PUBCOMP, v, 2)) +
            w(1, publish(v, "t/r", "kept", qos=1, pid=3, retain=True)) +
            w(2, connect(v, "late-c")) +
            w(2, subscribe(v, 1, ("t/r", 1))) +
            w(2, ack(PUBACK, v, 1)) +
            w(1, publish(v, "t/r", "", retain=True)) +
            w(0, disconnect(v)) + w(1, disconnect(v)) + w(2, disconnect(v)))
        # A will published when its client vanishes, and a takeover of the same client ID.
        wp = (("will_delay", 0),) if v == 5 else ()
        scripts["will_takeover_" + tag] = (
            w(0, connect(v, "watcher")) + w(0, subscribe(v, 1, ("wills/#", 1))) +
            w(1, connect(v, "dies", will=("wills/dies", b"gone", 1, True), wprops=wp)) +
            close(1) +
            w(2, connect(v, "twin", clean=False, cprops=cp)) +
            w(2, subscribe(v, 1, ("x", 1))) +
            w(3, connect(v, "twin", clean=False, cprops=cp)) +
            w(0, publish(v, "x", "to twin", qos=1, pid=5)) +
            w(3, ack(PUBACK, v, 1)) + TICK)
        # A persistent session that receives while offline, then resumes.
        scripts["resume_" + tag] = (
            w(0, connect(v, "durable", clean=False, cprops=cp)) +
            w(0, subscribe(v, 1, ("q/#", 2))) + close(0) +
            w(1, connect(v, "pub")) +
            b"".join(w(1, publish(v, "q/%d" % i, "m%d" % i, qos=1 + i % 2, pid=i + 1))
                     for i in range(10)) +
            w(2, connect(v, "durable", clean=False, cprops=cp)) +
            w(2, ack(PUBACK, v, 1)) + w(2, ack(PUBREC, v, 2)) + w(2, ack(PUBCOMP, v, 2)) +
            TICK + w(2, disconnect(v)))
        # Point to point, shared subscriptions and $SYS.
        scripts["p2p_shared_sys_" + tag] = (
            w(0, connect(v, "dev1")) + w(0, subscribe(v, 1, ("$share/g/jobs", 1))) +
            w(1, connect(v, "app")) + w(1, subscribe(v, 1, ("$share/g/jobs", 1),
                                                        ("$SYS/#", 0))) +
            w(2, connect(v, "sender")) +
            w(2, publish(v, "app/p2p/dev1", "direct", qos=1, pid=1)) +
            w(2, publish(v, "app/p2p/nobody", "lost", qos=1, pid=2)) +
            b"".join(w(2, publish(v, "jobs", "j%d" % i, qos=1, pid=10 + i)) for i in range(4)) +
            TICK + w(0, ack(PUBACK, v, 1)) + w(1, ack(PUBACK, v, 1)))
        # One CONNECT and PUBLISH cut into pieces, written one at a time.
        stream = connect(v, "split") + publish(v, "s", "split", qos=1, pid=1) + PINGREQ_P
        scripts["split_" + tag] = b"".join(w(0, stream[i:i + 3])
                                           for i in range(0, len(stream), 3))
        # Protocol errors: a second CONNECT, a packet before CONNECT.
        scripts["errors_" + tag] = (
            w(0, connect(v, "twice")) + w(0, connect(v, "twice")) +
            w(1, PINGREQ_P) + w(2, connect(v, "bad-sub")) + w(2, subscribe(v, 1, ("a/#/b", 0))))
    scripts["v5_aliases_expiry"] = (
        w(0, connect(5, "al", cprops=(("alias_max", 2), ("max_packet", 200)))) +
        w(0, subscribe(5, 1, ("al/#", 1), p=(("sub_id", 7),))) +
        w(1, connect(5, "pa", cprops=(("alias_max", 0),))) +
        w(1, publish(5, "al/1", "a", p=(("alias", 1),))) +
        w(1, publish(5, "", "b", p=(("alias", 1), ("message_expiry", 5)))) +
        w(1, publish(5, "al/big", "z" * 400, qos=1, pid=1)) +
        w(1, disconnect(5, 0x04)) + w(0, auth()))
    # Server-assigned client IDs, a full subscription table, messages expiring in a queue.
    scripts["assigned_id_many_subs"] = (
        w(0, connect(4, "")) + w(1, connect(5, "", cprops=(("session_expiry", 60),))) +
        w(0, subscribe(4, 1, *[("m/%d" % i, 1) for i in range(18)])) +
        w(0, subscribe(4, 2, ("m/0", 2))) +
        w(2, connect(5, "exp", clean=False, cprops=(("session_expiry", 60),))) +
        w(2, subscribe(5, 1, ("m/#", 1))) + close(2) +
        w(1, publish(5, "m/1", "soon", qos=1, pid=1, p=(("message_expiry", 1),))) +
        w(1, publish(5, "m/2", "later", qos=1, pid=2, p=(("message_expiry", 100),))) +
        w(3, connect(5, "exp", clean=False, cprops=(("session_expiry", 60),))) + TICK)
    scripts["v31"] = (w(0, connect(3, "old")) + w(0, subscribe(3, 1, ("o/#", 1))) +
                      w(0, publish(3, "o/x", "x", qos=1, pid=1)) + w(0, ack(PUBACK, 3, 1)))
    for name, data in scripts.items():
        write("session", name, data)


def passwd_entry7(user, password, salt, iterations=101):
    h = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    import base64
    b = base64.b64encode
    return "%s:$7$%d$%s$%s" % (user, iterations, b(salt).decode(), b(h).decode())


def passwd_entry6(user, password, salt):
    import base64
    h = hashlib.sha512(password.encode() + salt).digest()
    return "%s:$6$%s$%s" % (user, base64.b64encode(salt).decode(), base64.b64encode(h).decode())


def auth_corpora():
    f = "\n".join(["# users", passwd_entry7("alice", "secret", b"0123456789ab"),
                   passwd_entry6("bob", "hunter2", b"saltsalt"),
                   passwd_entry7("carol", "pw", b"xyz", iterations=3),
                   "broken:$7$abc$$", "nocolon", "dave:plaintext", ""])
    write("passwd", "file_alice", (f + "\0alice\0secret").encode())
    write("passwd", "file_bob_wrong", (f + "\0bob\0wrong").encode())
    write("passwd", "file_carol", (f + "\0carol\0pw").encode())
    acl = ("topic read public/#\n\nuser alice\ntopic readwrite sensors/#\n"
           "topic deny sensors/secret/#\ntopic write cmd/#\np2p same-group\n\n"
           "user LTAI5tExampleKeyId\ntopic readwrite app/#\n\n"
           "pattern readwrite devices/%c/#\npattern read users/%u/inbox\n"
           "p2p_pattern target GID_%u@@@*\n")
    write("acl", "alice", (acl + "\0alice\0GID_group1@@@dev\0sensors/a\0sensors/#\0"
                           "GID_group1@@@other").encode())
    write("acl", "anonymous", (acl + "\0\0dev9\0public/x\0public/+\0anyone").encode())
    write("acl", "pattern", (acl + "\0bob\0dev9\0devices/dev9/t\0devices/+/t\0GID_bob@@@x")
          .encode())
    write("acl", "bad_line", b"topic\nuser\nbogus line\n")


def other_corpora():
    for name in ("petrel.conf",):
        with open(os.path.join(HERE, "..", "..", name), "rb") as f:
            write("config", "petrel_conf", f.read())
    write("config", "listeners", b"listener 1883 127.0.0.1\nmax_connections 10\n"
          b"listener 8080\nprotocol websockets\nwebsockets_path /mqtt\n"
          b"allow_anonymous true\nmax_queued_messages 100\nmax_inflight_messages 20\n"
          b"p2p_enabled true\np2p_keyword p2p\nsys_interval 10\npersistence false\n")
    for i, (flt, topic) in enumerate((("a/+/c", "a/b/c"), ("#", "$SYS/x"), ("$share/g/a/#", "a"),
                                      ("+/+", "/"), ("a/b", "a/b"))):
        write("topic", "t%d" % i, bytes([len(flt)]) + flt.encode() + topic.encode())


def main():
    for target in ("decode", "session", "passwd", "acl", "config", "topic"):
        shutil.rmtree(os.path.join(OUT, target), ignore_errors=True)
    decode_corpus()
    session_corpus()
    auth_corpora()
    other_corpora()
    n = sum(len(os.listdir(os.path.join(OUT, d))) for d in os.listdir(OUT))
    print("wrote %d seed files under %s" % (n, OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
