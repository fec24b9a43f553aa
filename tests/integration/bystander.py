"""Helpers of test_hostile.py and test_overload.py: a well-behaved client pair that must keep
receiving while another client misbehaves, and a reader of the broker's $SYS counters.

    good = Bystander(b.port)          # paho subscriber + publisher, MQTT 5, QoS 1
    good.check()                      # one round trip: publish, receive, in order
    good.start_flow(); ...; good.stop_flow(expect_all=True)   # traffic during an attack
    sys = SysWatch(b.port); sys.wait_value("$SYS/broker/heap/current", lambda v: v > 0)
"""

import itertools
import threading
import time

from support import MQTTv5, Paho, scaled, wait_for, props

_ids = itertools.count(1)


class Bystander:
    """A subscriber and a publisher (paho, MQTT 5 unless told) on a topic of their own."""

    def __init__(self, port, protocol=MQTTv5, qos=1):
        n = next(_ids)
        self.topic = "good/%d" % n
        self.qos = qos
        self.sub = Paho(port, "good-sub-%d" % n, protocol=protocol)
        self.sub.connect()
        assert self.sub.subscribe(self.topic, qos=qos) == [qos]
        self.pub = Paho(port, "good-pub-%d" % n, protocol=protocol)
        self.pub.connect()
        self.sent = 0
        self._flow = None
        self._stop = threading.Event()
        self.errors = []

    def check(self, n=1, timeout=10.0):
        """Publish n messages and receive each, in order."""
        first = self.sent
        for _ in range(n):
            self.pub.publish(self.topic, b"m%d" % self.sent, qos=self.qos, timeout=timeout)
            self.sent += 1
        for i in range(first, first + n):
            m = self.sub.expect_message(timeout)
            assert (m.topic, m.payload) == (self.topic, b"m%d" % i), (m.topic, m.payload, i)

    def start_flow(self, interval=0.01, limit=100000):
        """Publish in a background thread (at most `limit` messages) until stop_flow."""
        def run():
            try:
                while not self._stop.is_set() and self.sent < limit:
                    self.pub.publish(self.topic, b"m%d" % self.sent, qos=self.qos,
                                     timeout=30)
                    self.sent += 1
                    time.sleep(interval)
            except Exception as e:  # reported by stop_flow
                self.errors.append(e)
        self._start = self.sent
        self._flow = threading.Thread(target=run, daemon=True)
        self._flow.start()

    def stop_flow(self, timeout=30.0):
        """Stop publishing; every message published meanwhile must arrive, in order, within a
        generous timeout. Returns how many there were."""
        self._stop.set()
        self._flow.join(scaled(timeout))
        assert not self._flow.is_alive(), "bystander's publisher is stuck"
        assert not self.errors, "bystander's publisher failed: %r" % self.errors
        for i in range(self._start, self.sent):
            m = self.sub.expect_message(timeout)
            assert m.payload == b"m%d" % i, (m.payload, i)
        self._stop.clear()
        return self.sent - self._start

    def close(self):
        for c in (self.sub, self.pub):
            c.disconnect()


class SysWatch(Paho):
    """A paho client subscribed to $SYS topics, keeping the latest value of each."""

    def __init__(self, port, filters=("$SYS/broker/#",)):
        super().__init__(port, "sys-watch-%d" % next(_ids), protocol=MQTTv5)
        self.values = {}
        self.connect()
        for f in filters:
            self.subscribe(f, qos=0)

    def _on_message(self, client, userdata, msg):
        self.values[msg.topic] = msg.payload

    def value(self, topic):
        v = self.values.get(topic)
        return int(v) if v is not None else None

    def wait_value(self, topic, pred, timeout=10.0):
        """Wait until `topic` has a value for which pred(value) is true; returns it."""
        def ok():
            v = self.value(topic)
            return v if v is not None and pred(v) else None
        wait_for(lambda: ok() is not None, timeout=timeout, interval=0.05,
                 what="%s to satisfy the condition (last: %r)" % (topic, self.value(topic)))
        return self.value(topic)


__all__ = ["Bystander", "SysWatch", "props"]
