"""petrel-bench against the real broker (issue 4, point 3): short bounded runs whose JSON line
must show traffic and no loss, no duplicate and no reordering at QoS 1 and 2, for pub/sub pairs
and for P2P, in MQTT 3.1.1 and 5; plus the conn scenario and the failure exit; and the same
over TLS (--tls, certificates made by `openssl` in a temporary directory), WebSocket (--ws) and
both (issues 5 and 7); and the http scenario, HTTP API publishes to P2P receivers (issue 8).

The generator is build/petrel-bench (next to PETREL_BIN), or PETREL_BENCH.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support import API_KEY, CRASH_MARKERS, PETREL_BIN, api_config, http_port, scaled, wait_for

BENCH = os.environ.get("PETREL_BENCH") or str(Path(PETREL_BIN).parent / "petrel-bench")


def run_bench(port, *args, timeout=60):
    """Run petrel-bench; returns (exit code, parsed JSON line, stderr)."""
    if not os.path.exists(BENCH):
        pytest.fail("load generator %s does not exist (build it first)" % BENCH)
    cmd = [BENCH, "--host", "127.0.0.1", "--port", str(port)] + [str(a) for a in args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=scaled(timeout))
    out = proc.stdout.decode(errors="replace").strip().splitlines()
    err = proc.stderr.decode(errors="replace")
    for marker in CRASH_MARKERS:
        assert marker not in err, "petrel-bench reported %r:\n%s" % (marker, err)
    assert len(out) == 1, "expected one JSON line, got %r\nstderr:\n%s" % (out, err)
    return proc.returncode, json.loads(out[0]), err


def short(*args):
    # Warm-up and measured window short, drain generous: the run stays bounded either way.
    return ["--duration", scaled(1.0), "--warmup", 0.3, "--drain", scaled(3.0)] + list(args)


@pytest.mark.parametrize("scenario,qos,mqtt", [
    ("pairs", 1, 3), ("pairs", 2, 3), ("pairs", 1, 5), ("pairs", 2, 5),
    ("p2p", 1, 3), ("p2p", 2, 3), ("p2p", 1, 5), ("p2p", 2, 5),
])
def test_no_loss_no_duplicates(broker, scenario, qos, mqtt):
    b = broker()
    rc, r, err = run_bench(b.port, *short("--scenario", scenario, "--qos", qos, "--mqtt", mqtt,
                                          "--clients", 5))
    assert rc == 0, err
    assert r["scenario"] == scenario and r["qos"] == qos and r["mqtt"] == mqtt
    assert r["clients"] == 10
    assert r["errors"] == 0, r
    assert r["received"] > 0 and r["msgs_per_s"] > 0, r
    assert r["lost"] == 0, r
    assert r["duplicated"] == 0, r
    assert r["out_of_order"] == 0, r          # one publisher per topic: order kept [MQTT-4.6.0-6]
    # Every acknowledged message arrived, and after the drain nothing was left unacknowledged.
    assert r["acked_total"] == r["sent_total"] == r["received_total"], r
    lat = r["lat_us"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat


def test_two_threads_and_unrelated_subscriptions(broker):
    """The P2P flatness run's shape: background filters first, two event loops."""
    b = broker()
    rc, r, err = run_bench(b.port, *short("--scenario", "p2p", "--qos", 1, "--clients", 6,
                                          "--threads", 2, "--background-subs", 2000))
    assert rc == 0, err
    assert r["threads"] == 2 and r["background_subs"] == 2000
    assert r["errors"] == 0 and r["lost"] == 0 and r["duplicated"] == 0, r
    assert r["received"] > 0


def test_fanout_and_fanin_at_fixed_rate(broker):
    """Fixed-rate runs deliver what was offered: rate x publishers x receivers per message."""
    b = broker()
    rc, r, err = run_bench(b.port, *short("--scenario", "fanout", "--qos", 1,
                                          "--subscribers", 4, "--rate", 200))
    assert rc == 0, err
    assert r["errors"] == 0 and r["lost"] == 0 and r["duplicated"] == 0, r
    assert r["received_total"] == 4 * r["sent_total"], r
    expected = 200 * 4 * r["duration_s"]
    assert 0.8 * expected <= r["received"] <= 1.2 * expected, r

    # All publishers' outstanding messages queue at the one subscriber: keep the sum under the
    # broker's default max_queued_messages (1000), or the broker rightly drops some.
    rc, r, err = run_bench(b.port, *short("--scenario", "fanin", "--qos", 2, "--mqtt", 5,
                                          "--publishers", 4, "--outstanding", 8192))
    assert rc == 0, err
    assert r["errors"] == 0 and r["lost"] == 0 and r["duplicated"] == 0, r
    assert r["received_total"] == r["sent_total"] > 0, r


def test_conn_scenario(broker):
    b = broker()
    rc, r, err = run_bench(b.port, "--scenario", "conn", "--clients", 200, "--duration", 0.5,
                           "--conn-rate", 2000)
    assert rc == 0, err
    assert r["connected"] == 200 and r["connect_failed"] == 0, r
    assert r["connect_rate"] > 0 and r["lat_us"]["p50"] > 0, r


def test_cannot_run_exits_1(broker):
    b = broker()
    port = b.port
    b.stop()                      # nothing listens there any more
    rc, r, err = run_bench(port, *short("--qos", 1, "--clients", 2), timeout=30)
    assert rc == 1
    assert "error" in r and "could not run" in err, (r, err)


def test_bad_option_exits_2():
    proc = subprocess.run([BENCH, "--qos", "3"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)
    assert proc.returncode == 2
    assert b"--qos" in proc.stderr


# ---- over TLS and WebSocket ----

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, crt, key) paths."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("bench-pki")

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True,
                       timeout=30)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=bench test CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    return str(d / "ca.crt"), str(d / "server.crt"), str(d / "server.key")


def second_port(b, what):
    """The broker's second listener (the first is the fixture's plain one)."""
    def second():
        ports = re.findall(r"listening address=\S+ port=(\d+)", b.log())
        return len(ports) >= 2 and int(ports[1])
    return wait_for(second, what=what)


def transport_broker(broker, certs, tls, ws):
    ca, crt, key = certs
    lines = ["listener 0 127.0.0.1"]
    if ws:
        lines.append("protocol websockets")
    if tls:
        lines += ["certfile " + crt, "keyfile " + key]
    b = broker(*lines)
    args = (["--tls", "--cafile", ca] if tls else []) + (["--ws"] if ws else [])
    return second_port(b, "the TLS/WebSocket listener"), args


@pytest.mark.parametrize("tls,ws", [(True, False), (False, True), (True, True)],
                         ids=["tls", "ws", "wss"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_over_tls_and_websocket(broker, certs, tls, ws, qos):
    port, args = transport_broker(broker, certs, tls, ws)
    # QoS 0 may rightly drop under overload: a fixed rate keeps it a loss check.
    rate = ["--rate", 2000] if qos == 0 else []
    rc, r, err = run_bench(port, *short("--qos", qos, "--clients", 4, *rate, *args))
    assert rc == 0, err
    assert r["errors"] == 0 and r["dropped_connections"] == 0, r
    assert r["received"] > 0, r
    assert r["lost"] == 0 and r["duplicated"] == 0 and r["out_of_order"] == 0, r
    assert r["received_total"] == r["sent_total"], r
    if qos:
        assert r["acked_total"] == r["sent_total"], r


@pytest.mark.parametrize("tls,ws", [(True, False), (True, True)], ids=["tls", "wss"])
def test_conn_scenario_over_tls(broker, certs, tls, ws):
    port, args = transport_broker(broker, certs, tls, ws)
    rc, r, err = run_bench(port, "--scenario", "conn", "--clients", 100, "--duration", 0.5,
                           *args)
    assert rc == 0, err
    assert r["connected"] == 100 and r["connect_failed"] == 0, r


def test_tls_refuses_an_untrusted_server(broker, certs, tmp_path):
    """The server certificate is verified: trusting another CA (here the server's own leaf,
    which is not a CA) makes the handshake fail and the run exit 1."""
    port, _ = transport_broker(broker, certs, True, False)
    rc, r, err = run_bench(port, *short("--clients", 1, "--tls", "--cafile", certs[1]),
                           timeout=30)
    assert rc == 1 and "certificate" in err, err


def test_websocket_wrong_path_exits_1(broker, certs):
    port, _ = transport_broker(broker, certs, False, True)
    rc, r, err = run_bench(port, *short("--clients", 1, "--ws", "--ws-path", "/nowhere"),
                           timeout=30)
    assert rc == 1 and "WebSocket upgrade refused" in err, err


# ---- HTTP API publishes to P2P receivers (issue 8) ----

def api_broker(broker, tmp_path, *extra):
    """A broker with the HTTP API (no rate limit: the generator is the load); (mqtt, http) ports."""
    b = broker(*(api_config(tmp_path) + ["http_rate_limit 0"] + list(extra)))
    return b.port, http_port(b)


@pytest.mark.parametrize("qos,batch,conns,workers", [
    (0, 0, 1, 1), (1, 0, 8, 1), (1, 100, 2, 2), (0, 100, 2, 2), (2, 10, 3, 1),
])
def test_http_publish_reaches_every_receiver(broker, tmp_path, qos, batch, conns, workers):
    port, hport = api_broker(broker, tmp_path, "workers %d" % workers)
    rc, r, err = run_bench(port, *short("--scenario", "http", "--http-port", hport,
                                        "--http-key", API_KEY, "--qos", qos, "--clients", 20,
                                        "--http-conns", conns, "--http-batch", batch))
    assert rc == 0, err
    assert r["scenario"] == "http" and r["qos"] == qos
    assert r["publishers"] == conns and r["subscribers"] == 20 and r["http_batch"] == batch
    assert r["errors"] == 0 and r["dropped_connections"] == 0, r
    assert r["received"] > 0 and r["http_requests"] > 0 and r["http_req_per_s"] > 0, r
    assert r["lost"] == 0 and r["duplicated"] == 0 and r["out_of_order"] == 0, r
    # Every request was answered 200, and every message it carried arrived.
    assert r["http_non200"] == 0 and r["http_status"] == {"200": r["http_requests_total"]}, r
    assert r["sent_total"] == r["http_requests_total"] * max(batch, 1), r
    assert r["received_total"] == r["sent_total"] == r["acked_total"], r
    for lat in (r["lat_us"], r["http_lat_us"]):
        assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat


def test_http_refused_requests_are_counted(broker, tmp_path):
    """A key the broker does not know: every answer is 401, counted by status; nothing was
    taken, so nothing is owed (no loss) but the run fails."""
    port, hport = api_broker(broker, tmp_path)
    rc, r, err = run_bench(port, *short("--scenario", "http", "--http-port", hport,
                                        "--http-key", "not-a-key-of-this-broker", "--clients", 3,
                                        "--rate", 200), timeout=30)
    assert rc == 1, err
    assert r["http_requests_total"] > 0 and r["http_non200"] == r["http_requests_total"], r
    assert set(r["http_status"]) == {"401"}, r
    assert r["received_total"] == 0 and r["lost"] == 0 and r["errors"] > 0, r
    assert "HTTP status 401" in r["error"], r


def test_http_scenario_needs_a_key():
    proc = subprocess.run([BENCH, "--scenario", "http"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)
    assert proc.returncode == 2
    assert b"--http-key" in proc.stderr
