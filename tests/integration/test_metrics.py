"""GET /metrics (issue 8): Prometheus text format, parsed by prometheus_client's own parser
(Debian's python3-prometheus-client), with counters that move as traffic flows."""

import time

from prometheus_client.parser import text_string_to_metric_families

from support import API_READ_KEY, MQTTv5, Paho, api_config, http_call, http_port, wait_for


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
    assert after["petrel_api_messages_published_total"] == 2
    assert after["petrel_p2p_routed_total"] >= 1
    assert after["petrel_retained_messages"] == 1
    assert after["petrel_received_bytes_total"] > before["petrel_received_bytes_total"]
    assert after["petrel_sent_bytes_total"] > before["petrel_sent_bytes_total"]
    assert after['petrel_store_batches_total{result="ok"}'] >= 1
    sub.disconnect()
    pub.disconnect()
    wait_for(lambda: scrape(hp)["petrel_connections"] == 0, what="connections to drop")


def test_metrics_need_a_key(broker, tmp_path):
    b = broker(*api_config(tmp_path))
    hp = http_port(b)
    assert http_call(hp, "GET", "/metrics", key=None)[0] == 401
