"""GET /metrics (issue 8): Prometheus text format, parsed by prometheus_client's own parser
(Debian's python3-prometheus-client), with counters that move as traffic flows."""

import socket
import time

from prometheus_client.parser import text_string_to_metric_families

from support import (API_READ_KEY, MQTTv5, Paho, api_config, http_call, http_port, scaled,
                     wait_for)


def scrape(hp):
    st, hdrs, text = http_call(hp, "GET", "/metrics", key=API_READ_KEY)
    assert st == 200
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + "".join('{%s="%s"}' % kv for kv in sorted(s.labels.items()))
            samples[key] = s.value
    return samples


def test_metrics_parse_and_move_with_traffic(broker, tmp_path):
    data = tmp_path / "data"
    b = broker(*api_config(tmp_path), "persistence true", "persistence_location %s" % data,
               "sys_interval 0")
    hp = http_port(b)
    before = scrape(hp)
    assert before["petrel_connections"] == 0
    assert 'petrel_worker_loop_lag_seconds{worker="0"}' in before
    assert "petrel_store_used_bytes" in before

    sub = Paho(b.port, "m-sub", protocol=MQTTv5)
    sub.connect()
    sub.subscribe("m/#", qos=1)
    pub = Paho(b.port, "m-pub", protocol=MQTTv5)
    pub.connect()
    for i in range(5):
        pub.publish("m/x", b"payload", qos=1)
    pub.publish("m/r", b"kept", qos=0, retain=True)
    sub.expect_messages(6)
    http_call(hp, "POST", "/api/v1/publish", {"topic": "q", "second_topic": "/p2p/m-sub",
                                              "payload": "p"})
    http_call(hp, "POST", "/api/v1/publish", {"topic": "q", "second_topic": "/p2p/nobody",
                                              "payload": "p"})
    sub.expect_message()

    def moved():
        s = scrape(hp)
        return s if (s['petrel_messages_received_total{qos="1"}'] >= 5
                     and s['petrel_messages_sent_total{qos="1"}'] >= 5
                     and s["petrel_p2p_dropped_total"] >= 1) else None
    after = wait_for(moved, what="counters to move")
    assert after["petrel_connections"] == 2
    assert after['petrel_messages_received_total{qos="0"}'] >= 1
    # 5 QoS 1 publishes of 7 bytes ("payload") in, at least as many out to the subscriber
    assert after['petrel_message_bytes_received_total{qos="1"}'] == 5 * 7
    assert after['petrel_message_bytes_sent_total{qos="1"}'] >= 5 * 7
    assert after["petrel_api_messages_published_total"] == 2
    assert after["petrel_p2p_routed_total"] >= 1
    assert after["petrel_retained_messages"] == 1
    assert after["petrel_received_bytes_total"] > before["petrel_received_bytes_total"]
    assert after["petrel_sent_bytes_total"] > before["petrel_sent_bytes_total"]
    assert after['petrel_store_batches_total{result="ok"}'] >= 1
    assert after["petrel_heap_bytes"] > 0
    # No memory_limit line: the ceiling is 80 % of the machine's RAM (or its cgroup's limit).
    ram = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) * 1024
    assert 0 < after["petrel_heap_limit_bytes"] <= ram * 0.8 + 1
    for reason in ("qos0_offline", "qos0_slow", "queue_full", "other"):
        assert 'petrel_messages_dropped_total{reason="%s"}' % reason in after
    for reason in ("rate", "full", "memory"):
        assert 'petrel_connections_refused_total{reason="%s"}' % reason in after
    sub.disconnect()
    pub.disconnect()
    wait_for(lambda: scrape(hp)["petrel_connections"] == 0, what="connections to drop")


def test_metrics_need_a_key(broker, tmp_path):
    b = broker(*api_config(tmp_path))
    hp = http_port(b)
    assert http_call(hp, "GET", "/metrics", key=None)[0] == 401


def test_refusals_and_drops_are_counted_by_reason(broker, tmp_path):
    """Drops and refusals show up under their reason: a QoS 1 message to a full offline queue
    (refused, MQTT 5 PUBACK 0x97) and a connection over max_connections."""
    from support import props
    from paho.mqtt.packettypes import PacketTypes
    # max_connections first: in the MQTT listener's section (support.py opens it), not the
    # HTTP one that api_config opens.
    b = broker("max_connections 3", *api_config(tmp_path), "max_queued_messages 1",
               "sys_interval 0")
    hp = http_port(b)
    away = Paho(b.port, "away-q", protocol=MQTTv5, clean=False)
    away.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    away.subscribe("full/#", qos=1)
    away.disconnect()
    pub = Paho(b.port, "pub-q", protocol=MQTTv5)
    pub.connect()
    pub.publish("full/1", b"a", qos=1)   # queued
    pub.publish("full/2", b"b", qos=1)   # the queue is full: refused
    pub.publish("full/3", b"c", qos=0)   # offline: QoS 0 is not queued
    extra = [Paho(b.port, "x%d" % i, protocol=MQTTv5) for i in range(2)]
    for c in extra:
        c.connect()
    # The listener's 4th connection is closed at accept.
    with socket.create_connection(("127.0.0.1", b.port), timeout=scaled(5)) as sock:
        assert sock.recv(16) == b""
    def counted():
        s = scrape(hp)
        return s if (s['petrel_messages_dropped_total{reason="queue_full"}'] >= 1 and
                     s['petrel_connections_refused_total{reason="full"}'] >= 1) else None
    s = wait_for(counted, what="the drop and the refusal to be counted")
    assert s['petrel_publishes_refused_total{reason="queue_full"}'] == 1
    assert s['petrel_messages_dropped_total{reason="qos0_offline"}'] == 1
    for c in [pub] + extra:
        c.disconnect()
