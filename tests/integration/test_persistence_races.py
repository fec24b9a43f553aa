"""Durable state under races (issue 6 review): windows where a reply could leave before the
state it reports has committed, and timing that must continue across a crash. Each test
SIGKILLs the broker and checks after the restart what a client was told before it."""

import time

import rawmqtt as rm
from rawmqtt import RawClient
from support import free_port, scaled


def test_expiry_counts_from_the_disconnect_after_a_delayed_will(broker, tmp_path):
    """A session's expiry counts from when its client went away, also across a crash (MQTT 5
    section 3.1.2.11.2). Its delayed will firing while it is offline rewrites its record; that
    must not restart the clock. Expiry 6 s, will delay 3 s: the will fires at 3 s, the broker
    is SIGKILLed at 3.5 s and restarted; at 7.5 s the session has expired (it must not live
    until 9 s, as it would if the clock had restarted with the will)."""
    data, port = tmp_path / "data", free_port()
    conf = ("persistence true", "persistence_location %s" % data)
    b = broker(*conf, port=port)
    w = RawClient(port, 5)
    w.connect("will-watch")
    w.subscribe(("wills/#", rm.sub_opts(qos=0)))
    c = RawClient(port, 5)
    c.connect("expiring", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 6},
              will={"topic": "wills/expiring", "payload": b"gone", "qos": 0,
                    "props": {rm.WILL_DELAY_INTERVAL: 3}})
    c.close()  # no DISCONNECT: the will is due after its delay
    gone = time.monotonic()
    assert w.recv_publish(timeout=scaled(6)).payload == b"gone"
    fired = time.monotonic() - gone
    assert 2.5 <= fired <= 4.5, "the will fired after %.1f s" % fired
    time.sleep(max(0.0, 3.5 - (time.monotonic() - gone)))
    b.kill()
    b = broker(*conf, port=port)
    time.sleep(max(0.0, 7.5 - (time.monotonic() - gone)))
    c = RawClient(port, 5)
    ack = c.connect("expiring", clean=False, props={rm.SESSION_EXPIRY_INTERVAL: 6})
    assert not ack.session_present, (
        "session still present %.1f s after its client left (expiry 6 s)"
        % (time.monotonic() - gone))
    c.close()
