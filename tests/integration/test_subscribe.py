"""SUBSCRIBE / UNSUBSCRIBE, the topic trie ('+', '#', '$' topics), subscription options (no
local, retain as published), subscription identifiers, overlapping subscriptions and shared
subscriptions (issue 2, point 4)."""

import time

import pytest

import rawmqtt as rm
from rawmqtt import RawClient, assert_serves, drain_publishes, sub_opts
from support import MQTTv311, MQTTv5, Paho, scaled
from paho.mqtt.subscribeoptions import SubscribeOptions


# ---------------------------------------------------------------- matching table
# (filter, topic, matches, barrier): when the topic must not match, the publisher sends the
# barrier topic (which matches) right after it from the same connection, and the subscriber's
# first message must be the barrier's. Cases from MQTT 3.1.1/5.0 section 4.7.
MATCH_CASES = [
    ("sport/tennis/player1", "sport/tennis/player1", True, None),
    ("sport/tennis/player1", "sport/tennis/player2", False, "sport/tennis/player1"),
    ("sport/tennis/player1/#", "sport/tennis/player1", True, None),          # [MQTT-4.7.1-2]
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True, None),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True, None),
    ("sport/#", "sport", True, None),                                     # parent level
    ("#", "any/topic/at/all", True, None),
    ("#", "/leading/slash", True, None),
    ("sport/tennis/+", "sport/tennis/player1", True, None),                # [MQTT-4.7.1-3]
    ("sport/tennis/+", "sport/tennis/player1/ranking", False, "sport/tennis/x"),
    ("sport/+", "sport", False, "sport/x"),
    ("sport/+", "sport/", True, None),                                    # empty level
    ("+/+", "/finance", True, None),
    ("/+", "/finance", True, None),
    ("+", "/finance", False, "finance"),
    ("+", "finance", True, None),
    ("+/tennis/#", "sport/tennis/player1", True, None),
    ("+/+/+", "a/b/c", True, None),
    ("+/+/+", "a/b", False, "x/y/z"),
    ("a/+/c", "a//c", True, None),
    ("a/b", "a/b/", False, "a/b"),                                        # trailing '/' is a level
    ("a/b/", "a/b/", True, None),
    ("A/b", "a/b", False, "A/b"),                                         # case sensitive [MQTT-4.7.3-4] (3.1.1)
    ("a b/c", "a b/c", True, None),                                       # spaces allowed
    ("ünï/cødé", "ünï/cødé", True, None),
    ("a/#", "b/a", False, "a/z"),
    ("/".join(["l"] * 60) + "/#", "/".join(["l"] * 80), True, None),    # deep topics
    ("+/" * 59 + "x", "/".join(["l"] * 59) + "/x", True, None),
    ("+/" * 59 + "x", "/".join(["l"] * 59) + "/y", False, "/".join(["l"] * 59) + "/x"),
]


@pytest.mark.parametrize("flt,topic,matches,barrier", MATCH_CASES,
                         ids=["%s|%s" % (c[0][:40], c[1][:40]) for c in MATCH_CASES])
def test_topic_matching(module_broker, flt, topic, matches, barrier):
    """Topic filter matching rules [MQTT-4.7.1-1..3] (section 4.7), [MQTT-4.7.3-4] (3.1.1: no
    normalisation or case folding)."""
    port = module_broker.port
    sub = RawClient(port, 4)
    sub.connect("match-sub")
    assert sub.subscribe((flt, 1)).rcs == [1]
    pub = RawClient(port, 4)
    pub.connect("match-pub")
    pub.publish(topic, b"probe", qos=1, pid=1)
    if not matches:
        pub.publish(barrier, b"barrier", qos=1, pid=2)
    m = sub.recv_publish()
    if matches:
        assert (m.topic, m.payload) == (topic, b"probe")
    else:
        assert (m.topic, m.payload) == (barrier, b"barrier"), "filter %r matched %r" % (flt,
                                                                                       topic)
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("flt", ["#", "+/x", "+/#", "+"])
def test_dollar_topics_not_matched_by_leading_wildcard(broker, flt):
    """A filter starting with '#' or '+' does not match topic names beginning with '$'
    [MQTT-4.7.2-1]."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("dollar-sub")
    sub.subscribe((flt, 1))
    pub = RawClient(b.port, 4)
    pub.connect("dollar-pub")
    dollar = "$dollar/x" if flt != "+" else "$dollar"
    plain = "plain/x" if flt != "+" else "plain"
    pub.publish(dollar, b"dollar", qos=1, pid=1)
    pub.publish(plain, b"plain", qos=1, pid=2)
    m = sub.recv_publish()
    assert m.topic == plain, "%r matched %r" % (flt, m.topic)
    pub.disconnect()
    sub.disconnect()


def test_dollar_topic_matched_by_explicit_filter(broker):
    """'$dollar/#' and '$dollar/+' do match '$dollar/x' [MQTT-4.7.2-1] (non-normative
    examples of section 4.7.2)."""
    b = broker()
    sub = RawClient(b.port, 4)
    sub.connect("dollar2-sub")
    sub.subscribe([("$dollar/#", 1), ("$dollar/+/z", 1)])
    pub = RawClient(b.port, 4)
    pub.connect("dollar2-pub")
    pub.publish("$dollar/x", b"1", qos=1, pid=1)
    pub.publish("$dollar/y/z", b"2", qos=1, pid=2)
    got = [sub.recv_publish() for _ in range(2)]
    assert sorted(m.topic for m in got) == ["$dollar/x", "$dollar/y/z"]
    pub.disconnect()
    sub.disconnect()


# ---------------------------------------------------------------- SUBACK / UNSUBACK

@pytest.mark.parametrize("version", [4, 5])
def test_suback_codes_in_order(broker, version):
    """SUBACK carries the SUBSCRIBE's packet id [MQTT-3.8.4-2] and one code per filter, in
    order [MQTT-3.8.4-6 (3.1.1) / MQTT-3.9.3-1 (5.0)], each the granted QoS."""
    b = broker()
    c = RawClient(b.port, version)
    c.connect("subackorder")
    ack = c.subscribe([("o/a", 2), ("o/b", 0), ("o/c", 1), ("o/+/d", 2), ("o/#", 1)],
                      pid=0x1234)
    assert ack.pid == 0x1234
    assert ack.rcs == [2, 0, 1, 2, 1]
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("bad", ["a/#/b", "a/b#", "a+/b", "#/a", "+a"])
def test_invalid_filter_rejected(broker, version, bad):
    """A filter with a misplaced wildcard is invalid [MQTT-4.7.1-1/2/3]: SUBACK failure 0x80
    (3.1.1) / 0x8F Topic Filter invalid (5.0) for that filter, or the connection is closed
    (MQTT 5: DISCONNECT 0x81/0x82/0x8F); the valid filter in the same packet is unaffected
    when a SUBACK is sent; the broker keeps serving."""
    b = broker()
    c = RawClient(b.port, version)
    c.connect("badfilter")
    c.send(rm.subscribe(5, [(bad, 1), ("good/t", 1)], version=version))
    try:
        ack = c.recv_until(rm.SUBACK)
    except rm.Closed:
        ack = None
    if ack is not None:
        failure = (0x80, rm.RC_TOPIC_FILTER_INVALID) if version == 5 else (0x80,)
        assert ack.rcs[0] in failure and ack.rcs[1] == 1, ack
    elif version == 5:
        assert [p.type for p in c.pending] == [rm.DISCONNECT], c.pending
        assert c.pending[0].rc in (rm.RC_MALFORMED, rm.RC_PROTOCOL_ERROR,
                                   rm.RC_TOPIC_FILTER_INVALID), c.pending
    else:
        assert c.pending == []
    c.close()
    assert_serves(b.port)


def test_resubscribe_replaces_subscription(broker):
    """A SUBSCRIBE with a filter equal to an existing one replaces it (new QoS) and the
    message is delivered once [MQTT-3.8.4-3]."""
    b = broker()
    c = RawClient(b.port, 4)
    c.connect("resub")
    assert c.subscribe(("re/t", 0)).rcs == [0]
    assert c.subscribe(("re/t", 1), pid=2).rcs == [1]
    pub = RawClient(b.port, 4)
    pub.connect("resub-pub")
    pub.publish("re/t", b"x", qos=1)
    got = drain_publishes(c, window=1.0)
    assert len(got) == 1 and got[0].qos == 1
    pub.disconnect()
    c.disconnect()


@pytest.mark.parametrize("protocol", [MQTTv311, MQTTv5], ids=["3.1.1", "5"])
def test_unsubscribe_stops_delivery(broker, protocol):
    """After UNSUBACK no new messages are delivered for the filter [MQTT-3.10.4-2]; other
    subscriptions stay [MQTT-3.10.4-1] (only filters matching exactly are deleted)."""
    b = broker()
    c = Paho(b.port, "unsub", protocol=protocol)
    c.connect()
    c.subscribe("un/a", 1)
    c.subscribe("un/b", 1)
    c.unsubscribe("un/a")
    c.publish("un/a", b"gone", qos=1)
    c.publish("un/b", b"kept", qos=1)
    m = c.expect_message()
    assert (m.topic, m.payload) == ("un/b", b"kept")
    c.expect_no_message(0.5)
    c.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_unsuback(broker, version):
    """UNSUBACK has the UNSUBSCRIBE's packet id [MQTT-3.10.4-4]; MQTT 5 gives one reason code
    per filter: 0x00, or 0x11 No subscription existed [MQTT-3.11.3-1]; 3.1.1 answers even for
    filters that were never subscribed [MQTT-3.10.4-5]."""
    b = broker()
    c = RawClient(b.port, version)
    c.connect("unsuback")
    c.subscribe(("us/a", 0))
    ack = c.unsubscribe(["us/a", "us/never"], pid=0x4321)
    assert ack.type == rm.UNSUBACK and ack.pid == 0x4321
    if version == 5:
        assert ack.rcs == [0, rm.RC_NO_SUBSCRIPTION_EXISTED]
    else:
        assert ack.rcs == []
    c.disconnect()


# ---------------------------------------------------------------- overlapping subscriptions

@pytest.mark.parametrize("version", [4, 5])
def test_overlapping_subscriptions_delivered_once_at_highest_qos(broker, version):
    """A message matching several subscriptions of one client is delivered once, at the
    maximum QoS of the matching subscriptions [MQTT-3.3.4-2] (3.1.1: [MQTT-3.3.5-1])."""
    b = broker()
    c = RawClient(b.port, version)
    c.connect("overlap")
    c.subscribe([("ov/+", 0), ("ov/#", 2), ("ov/x", 1)])
    pub = RawClient(b.port, version)
    pub.connect("overlap-pub")
    pub.publish("ov/x", b"x", qos=2)
    got = drain_publishes(c, window=1.0)
    assert len(got) == 1, got
    assert got[0].qos == 2
    pub.disconnect()
    c.disconnect()


def test_overlapping_subscriptions_carry_all_identifiers(broker):
    """A single copy for overlapping subscriptions carries the Subscription Identifiers of all
    matching subscriptions [MQTT-3.3.4-3], [MQTT-3.3.4-4]."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("overlap-ids")
    c.subscribe(("ids/+", 1), props={rm.SUBSCRIPTION_IDENTIFIER: 11})
    c.subscribe(("ids/#", 1), pid=2, props={rm.SUBSCRIPTION_IDENTIFIER: 22})
    c.subscribe(("ids/x", 0), pid=3)  # no identifier
    pub = RawClient(b.port, 5)
    pub.connect("overlap-ids-pub")
    pub.publish("ids/x", b"x", qos=1)
    got = drain_publishes(c, window=1.0)
    assert len(got) == 1
    assert sorted(got[0].props.get(rm.SUBSCRIPTION_IDENTIFIER, [])) == [11, 22]
    pub.disconnect()
    c.disconnect()


def test_subscription_identifier(broker):
    """A message delivered through a subscription with an identifier carries it
    [MQTT-3.3.4-3]; a subscription without one yields no identifier; a resubscribe with
    another identifier replaces it [MQTT-3.8.4-3]."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("subid")
    c.subscribe(("sid/a", 1), props={rm.SUBSCRIPTION_IDENTIFIER: 268435455})  # max value
    c.subscribe(("sid/b", 1), pid=2)
    pub = RawClient(b.port, 5)
    pub.connect("subid-pub")
    pub.publish("sid/a", b"a", qos=1)
    m = c.recv_publish()
    assert m.props.get(rm.SUBSCRIPTION_IDENTIFIER) == [268435455]
    pub.publish("sid/b", b"b", qos=1)
    m = c.recv_publish()
    assert rm.SUBSCRIPTION_IDENTIFIER not in m.props
    c.subscribe(("sid/a", 1), pid=3, props={rm.SUBSCRIPTION_IDENTIFIER: 5})
    pub.publish("sid/a", b"a2", qos=1)
    m = c.recv_publish()
    assert m.props.get(rm.SUBSCRIPTION_IDENTIFIER) == [5]
    pub.disconnect()
    c.disconnect()


def test_subscription_identifier_paho(broker):
    """paho sees the identifier of its subscription on the message [MQTT-3.3.4-3]."""
    b = broker()
    c = Paho(b.port, "subid-paho", protocol=MQTTv5)
    c.connect()
    from support import props
    from paho.mqtt.packettypes import PacketTypes
    c.subscribe("sidp/t", qos=1,
                properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=77))
    c.publish("sidp/t", b"x", qos=1)
    m = c.expect_message()
    assert m.properties.SubscriptionIdentifier == [77]
    c.disconnect()


# ---------------------------------------------------------------- subscription options

def test_no_local(broker):
    """No Local: the broker does not forward a client's own publications to a subscription
    with No Local set [MQTT-3.8.3-3]; other clients still receive them."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("nolocal")
    c.subscribe(("nl/t", sub_opts(qos=1, no_local=True)))
    other = RawClient(b.port, 5)
    other.connect("nolocal-other")
    other.subscribe(("nl/t", 1))
    c.publish("nl/t", b"mine", qos=1)
    assert other.recv_publish().payload == b"mine"
    other.publish("nl/t", b"theirs", qos=1)
    m = c.recv_publish()
    assert m.payload == b"theirs"
    c.expect_nothing(0.5)
    other.disconnect()
    c.disconnect()


def test_no_local_paho(broker):
    """No Local with paho's SubscribeOptions [MQTT-3.8.3-3]."""
    b = broker()
    c = Paho(b.port, "nolocal-paho", protocol=MQTTv5)
    c.connect()
    c.subscribe("nlp/t", options=SubscribeOptions(qos=1, noLocal=True))
    c.publish("nlp/t", b"self", qos=1)
    c.expect_no_message(1.0)
    c.disconnect()


@pytest.mark.parametrize("rap", [False, True])
def test_retain_as_published_live(broker, rap):
    """Forwarding a retained PUBLISH to an existing subscription: RETAIN 0 unless Retain As
    Published is set, then as published [MQTT-3.3.1-12], [MQTT-3.3.1-13]."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("rap")
    c.subscribe(("rap/t", sub_opts(qos=1, rap=rap)))
    pub = RawClient(b.port, 5)
    pub.connect("rap-pub")
    pub.publish("rap/t", b"kept", qos=1, retain=True)
    pub.publish("rap/t", b"plain", qos=1, retain=False, pid=2)
    m1 = c.recv_publish()
    m2 = c.recv_publish()
    assert (m1.payload, m1.retain) == (b"kept", rap)
    assert (m2.payload, m2.retain) == (b"plain", False)
    pub.publish("rap/t", b"", qos=1, retain=True, pid=3)  # clean up the retained message
    pub.disconnect()
    c.disconnect()


def test_subscribe_options_reserved_bits_are_protocol_error(broker):
    """Reserved bits 6-7 of the subscription options must be 0 [MQTT-3.8.3-5]: malformed,
    the connection is closed (DISCONNECT 0x81/0x82 first), the broker keeps serving."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("subres")
    c.send(rm.subscribe(1, [("r/t", 0xC1)]))
    c.expect_disconnect((rm.RC_MALFORMED, rm.RC_PROTOCOL_ERROR))
    assert_serves(b.port)


def test_subscription_identifier_zero_is_protocol_error(broker):
    """A Subscription Identifier of 0 is a Protocol Error (section 3.8.2.1.2): DISCONNECT
    0x81/0x82 and close."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("subid0")
    c.send(rm.subscribe(1, [("z/t", 0)], props={rm.SUBSCRIPTION_IDENTIFIER: 0}))
    c.expect_disconnect((rm.RC_MALFORMED, rm.RC_PROTOCOL_ERROR))
    assert_serves(b.port)


def test_publish_with_subscription_identifier_is_protocol_error(broker):
    """A PUBLISH from a client must not carry a Subscription Identifier [MQTT-3.3.4-6]."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("pubsubid")
    c.send(rm.publish("p/t", b"x", qos=0, props={rm.SUBSCRIPTION_IDENTIFIER: 3}))
    c.expect_disconnect((rm.RC_MALFORMED, rm.RC_PROTOCOL_ERROR))
    assert_serves(b.port)


# ---------------------------------------------------------------- shared subscriptions

def _shared_members(port, n, flt="$share/g/sh/t", qos=1, version=5, prefix="member"):
    members = []
    for i in range(n):
        c = RawClient(port, version)
        c.connect("%s%d" % (prefix, i))
        ack = c.subscribe((flt, qos))
        assert ack.rcs == [qos], ack
        members.append(c)
    return members


def test_shared_subscription_one_member_per_message_round_robin(broker):
    """$share/<group>/<filter>: each message goes to exactly one member of the group
    (section 4.8.2); with round robin two members share ten messages 5/5."""
    b = broker()
    members = _shared_members(b.port, 2)
    pub = RawClient(b.port, 5)
    pub.connect("sh-pub")
    for i in range(10):
        pub.publish("sh/t", b"%d" % i, qos=1, pid=i + 1)
    got = [drain_publishes(m, window=1.0) for m in members]
    payloads = sorted(int(p.payload) for g in got for p in g)
    assert payloads == list(range(10)), "each message exactly once across the group"
    counts = sorted(len(g) for g in got)
    assert counts == [5, 5], counts
    for g in got:
        assert all(m.topic == "sh/t" for m in g)  # the topic name, not the share filter
    pub.disconnect()
    for m in members:
        m.disconnect()


def test_shared_and_non_shared_and_other_group(broker):
    """A non-shared subscription and each other share group get their own copy
    (section 4.8.2)."""
    b = broker()
    g1 = _shared_members(b.port, 2, "$share/one/mix/#", prefix="g1m")
    g2 = _shared_members(b.port, 1, "$share/two/mix/+", prefix="g2m")
    plain = RawClient(b.port, 4)
    plain.connect("plain")
    plain.subscribe(("mix/#", 1))
    pub = RawClient(b.port, 4)
    pub.connect("mix-pub")
    for i in range(4):
        pub.publish("mix/t", b"%d" % i, qos=1, pid=i + 1)
    g1_got = [p for m in g1 for p in drain_publishes(m, window=0.7)]
    g2_got = drain_publishes(g2[0], window=0.5)
    plain_got = drain_publishes(plain, window=0.5)
    assert sorted(p.payload for p in g1_got) == [b"0", b"1", b"2", b"3"]
    assert [p.payload for p in g2_got] == [b"0", b"1", b"2", b"3"]
    assert [p.payload for p in plain_got] == [b"0", b"1", b"2", b"3"]
    pub.disconnect()
    for c in g1 + g2 + [plain]:
        c.disconnect()


def test_shared_subscription_v311_client(broker):
    """Shared subscriptions also work for 3.1.1 clients (the filter is just a topic filter to
    them)."""
    b = broker()
    members = _shared_members(b.port, 2, "$share/old/o/t", version=4, prefix="old")
    pub = RawClient(b.port, 4)
    pub.connect("old-pub")
    for i in range(6):
        pub.publish("o/t", b"%d" % i, qos=1, pid=i + 1)
    got = [p for m in members for p in drain_publishes(m, window=0.7)]
    assert sorted(int(p.payload) for p in got) == list(range(6))
    pub.disconnect()
    for m in members:
        m.disconnect()


def test_shared_member_leaving(broker):
    """When a member unsubscribes or disconnects, the remaining member gets every message."""
    b = broker()
    a, c = _shared_members(b.port, 2, "$share/lv/lv/t")
    a.unsubscribe("$share/lv/lv/t")
    pub = RawClient(b.port, 5)
    pub.connect("lv-pub")
    for i in range(4):
        pub.publish("lv/t", b"%d" % i, qos=1, pid=i + 1)
    assert [p.payload for p in drain_publishes(c, window=0.7)] == [b"0", b"1", b"2", b"3"]
    assert drain_publishes(a, window=0.2) == []
    c.disconnect()
    d = _shared_members(b.port, 1, "$share/lv/lv/t", prefix="late")[0]
    pub.publish("lv/t", b"late", qos=1, pid=9)
    assert [p.payload for p in drain_publishes(d, window=0.7)] == [b"late"]
    pub.disconnect()
    a.disconnect()
    d.disconnect()


def test_shared_redelivered_when_member_gone(broker):
    """A QoS 1 message sent to a member whose session ends before it acknowledged is
    re-delivered to another member (issue 2 point 4; MQTT 5 section 4.8.2 "SHOULD send the
    Application Message to another Client")."""
    b = broker()
    members = _shared_members(b.port, 2, "$share/rd/rd/t", prefix="rd")
    pub = RawClient(b.port, 5)
    pub.connect("rd-pub")
    pub.publish("rd/t", b"precious", qos=1)
    chosen = None
    for _ in range(int(scaled(50))):
        for i, m in enumerate(members):
            try:
                p = m.recv(timeout=0.1)
            except rm.Timeout:
                continue
            assert p.type == rm.PUBLISH and p.payload == b"precious"
            chosen = i
            break
        if chosen is not None:
            break
    assert chosen is not None, "no member received the message"
    members[chosen].close()  # gone without PUBACK; session expiry 0 ends the session
    other = members[1 - chosen]
    p = other.recv_publish(timeout=scaled(5))
    assert p.payload == b"precious"
    pub.disconnect()
    other.disconnect()


def _first_receiver(members, timeout=5.0):
    """(index, PUBLISH) of the member that got the next message."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        for i, m in enumerate(members):
            try:
                p = m.recv(timeout=0.05)
            except rm.Timeout:
                continue
            assert p.type == rm.PUBLISH, p
            return i, p
    raise AssertionError("no member received the message")


def test_shared_qos2_not_redelivered_when_session_ends(broker):
    """A QoS 2 message whose chosen member's session ends before delivery completes is NOT
    sent to another member [MQTT-4.8.2-5]; later messages go to the remaining member."""
    b = broker()
    members = _shared_members(b.port, 2, "$share/q2/q2s/t", qos=2, prefix="q2m")
    pub = RawClient(b.port, 5)
    pub.connect("q2s-pub")
    pub.publish("q2s/t", b"exactly once", qos=2)
    chosen, _ = _first_receiver(members)
    members[chosen].close()  # no PUBREC; session expiry 0 ends the session
    other = members[1 - chosen]
    other.expect_nothing(1.5)
    pub.publish("q2s/t", b"next", qos=2, pid=2)
    assert other.recv_publish().payload == b"next"
    pub.disconnect()
    other.disconnect()


def test_shared_error_puback_not_redelivered(broker):
    """A member answering PUBACK with a reason code >= 0x80: the message is discarded, not
    sent to another member [MQTT-4.8.2-6]."""
    b = broker()
    members = _shared_members(b.port, 2, "$share/err/err/t", prefix="errm")
    pub = RawClient(b.port, 5)
    pub.connect("err-pub")
    pub.publish("err/t", b"refused", qos=1)
    chosen, p = _first_receiver(members)
    members[chosen].send(rm.puback(p.pid, rc=0x80))
    other = members[1 - chosen]
    other.expect_nothing(1.0)
    for m in members:
        m.disconnect()
    pub.disconnect()


def test_shared_respects_each_members_granted_qos(broker):
    """Each member gets messages at its own granted QoS [MQTT-4.8.2-3]."""
    b = broker()
    m0 = _shared_members(b.port, 1, "$share/gq/gq/t", qos=0, prefix="gq0")[0]
    m2 = _shared_members(b.port, 1, "$share/gq/gq/t", qos=2, prefix="gq2")[0]
    pub = RawClient(b.port, 5)
    pub.connect("gq-pub")
    for i in range(6):
        pub.publish("gq/t", b"%d" % i, qos=2, pid=i + 1)
    got0 = drain_publishes(m0, window=0.7)
    got2 = drain_publishes(m2, window=0.5)
    assert len(got0) + len(got2) == 6 and got0 and got2
    assert all(p.qos == 0 for p in got0) and all(p.qos == 2 for p in got2)
    pub.disconnect()
    m0.disconnect()
    m2.disconnect()


def test_shared_subscription_receives_no_retained(broker):
    """Retained messages are not sent when a shared subscription is made (section 3.3.1.3:
    retained messages are sent "when a new Non-shared Subscription is made")."""
    b = broker()
    pub = RawClient(b.port, 5)
    pub.connect("shr-pub")
    pub.publish("shr/t", b"retained", qos=1, retain=True)
    m = _shared_members(b.port, 1, "$share/r/shr/t", prefix="shr")[0]
    pub.publish("shr/t", b"live", qos=1, pid=2)
    got = m.recv_publish()
    assert got.payload == b"live"
    pub.publish("shr/t", b"", qos=1, retain=True, pid=3)
    pub.disconnect()
    m.disconnect()


@pytest.mark.parametrize("bad", ["$share/g", "$share//t", "$share/g+/t", "$share/g#/t",
                                 "$share/g/"])
def test_invalid_shared_filter(broker, bad):
    """A ShareName must be non-empty without wildcards and be followed by '/' and a filter
    [MQTT-4.8.2-1], [MQTT-4.8.2-2]: SUBACK 0x8F (or 0x80/0x9E), or DISCONNECT and close; the
    broker keeps serving."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("badshare")
    c.send(rm.subscribe(1, [(bad, 1)]))
    try:
        ack = c.recv_until(rm.SUBACK)
        assert ack.rcs[0] >= 0x80, ack
    except rm.Closed:
        assert [p.type for p in c.pending] == [rm.DISCONNECT], c.pending
        assert c.pending[0].rc in (rm.RC_MALFORMED, rm.RC_PROTOCOL_ERROR,
                                   rm.RC_TOPIC_FILTER_INVALID), c.pending
    c.close()
    assert_serves(b.port)


def test_shared_subscription_no_local_is_protocol_error(broker):
    """No Local on a Shared Subscription is a Protocol Error [MQTT-3.8.3-4]."""
    b = broker()
    c = RawClient(b.port, 5)
    c.connect("sharenl")
    c.send(rm.subscribe(1, [("$share/g/nl/t", sub_opts(qos=1, no_local=True))]))
    c.expect_disconnect(rm.RC_PROTOCOL_ERROR)
    assert_serves(b.port)


def test_paho_shared_subscription(broker):
    """paho MQTT 5 clients in one share group split the messages, each exactly once
    (section 4.8.2)."""
    b = broker()
    s1 = Paho(b.port, "psh1", protocol=MQTTv5)
    s1.connect()
    s1.subscribe("$share/pg/ps/t", 1)
    s2 = Paho(b.port, "psh2", protocol=MQTTv5)
    s2.connect()
    s2.subscribe("$share/pg/ps/t", 1)
    pub = Paho(b.port, "psh-pub", protocol=MQTTv5)
    pub.connect()
    for i in range(8):
        pub.publish("ps/t", b"%d" % i, qos=1)
    got = []
    for c in (s1, s2):
        while True:
            try:
                got.append(c.messages.get(timeout=0.7))
            except Exception:
                break
    assert sorted(int(m.payload) for m in got) == list(range(8))
    for c in (s1, s2, pub):
        c.disconnect()
