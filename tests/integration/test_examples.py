"""The P2P examples under examples/ (Python, JavaScript, C) run against a live broker and print
what they promise (issue 3, how it is checked: "`examples/` shows P2P in Python (paho-mqtt),
JavaScript (MQTT.js) and C, each tried by the tests").

Each example starts a receiver that subscribes to nothing and a requester that sends it COUNT
P2P requests with a Response Topic and Correlation Data; the receiver answers point-to-point.
While it runs, a `#` subscriber checks that nobody else sees any of that traffic.

Needs: node plus tests/js/node_modules (`cd tests/js && npm ci`) for the JavaScript example,
libmosquitto-dev and make for the C one; each is skipped, saying why, when missing.

The pub/sub examples (issue 7) run the same way, over TCP and, for Python and JavaScript, over
a WebSocket listener too.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from support import MQTTv5, Paho, REPO_ROOT, scaled

EXAMPLES = REPO_ROOT / "examples"
JS_MODULES = REPO_ROOT / "tests" / "js" / "node_modules"
COUNT = 4


def check_output(proc, count=COUNT):
    out = proc.stdout
    assert proc.returncode == 0, "exit %s\nstdout:\n%s\nstderr:\n%s" % (proc.returncode, out,
                                                                       proc.stderr)
    lines = out.splitlines()
    for i in range(1, count + 1):
        assert any(re.fullmatch(r"receiver: demo/p2p/GID_demo@@@DEVICE_\d+ hello %d" % i, l)
                   for l in lines), "no receiver line for request %d in:\n%s" % (i, out)
        assert "requester: re: hello %d correlation=req-%d" % (i, i) in lines, \
            "no reply line for request %d in:\n%s" % (i, out)
    assert lines[-1] == "done: %d requests answered" % count, out
    assert len(lines) == 2 * count + 1, "unexpected extra output:\n%s" % out


def run_example(b, cmd, cwd=None):
    """Run an example with HOST PORT COUNT while a `#` subscriber watches; returns the
    finished process."""
    eve = Paho(b.port, "examples-eve", protocol=MQTTv5)
    eve.connect()
    eve.subscribe("#", 2)
    proc = subprocess.run(cmd + ["127.0.0.1", str(b.port), str(COUNT)], capture_output=True,
                          text=True, timeout=scaled(30), cwd=cwd, stdin=subprocess.DEVNULL)
    eve.expect_no_message(0.5)  # point 5: no P2P request or reply leaked to a wildcard
    eve.disconnect()
    return proc


def test_python_example(broker):
    b = broker()
    proc = run_example(b, [sys.executable, str(EXAMPLES / "python" / "p2p.py")])
    check_output(proc)


def test_js_example(broker, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (JS_MODULES / "mqtt").is_dir():
        pytest.skip("MQTT.js missing: run `npm ci` in tests/js")
    # The example imports 'mqtt'; resolve it from the pinned copy in tests/js.
    shutil.copy(EXAMPLES / "js" / "p2p.mjs", tmp_path / "p2p.mjs")
    os.symlink(JS_MODULES, tmp_path / "node_modules")
    b = broker()
    proc = run_example(b, [node, str(tmp_path / "p2p.mjs")], cwd=tmp_path)
    check_output(proc)


def test_c_example(broker, tmp_path):
    if not os.path.exists("/usr/include/mosquitto.h"):
        pytest.skip("libmosquitto-dev is not installed")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    src = EXAMPLES / "c"
    # Build with the example's own Makefile, but into tmp_path so the tree stays clean.
    build = subprocess.run(["make", "-s", "-C", str(tmp_path), "-f", str(src / "Makefile"),
                            "VPATH=%s" % src, "p2p"], capture_output=True, text=True,
                           timeout=scaled(120))
    assert build.returncode == 0, build.stdout + build.stderr
    b = broker()
    proc = run_example(b, [str(tmp_path / "p2p")])
    check_output(proc)


# ---------------------------------------------------------------------------- pub/sub

# Issue 7: pub/sub examples in every language, over TCP and (where the library speaks it)
# WebSocket. The browser page (examples/browser) is run by tests/js/browser.test.mjs.

def check_pubsub_output(proc, count=COUNT):
    out = proc.stdout
    assert proc.returncode == 0, "exit %s\nstdout:\n%s\nstderr:\n%s" % (proc.returncode, out,
                                                                       proc.stderr)
    lines = out.splitlines()
    assert lines == ["subscriber: demo/news/%d news %d" % (i, i) for i in range(1, count + 1)] \
        + ["done: %d messages received" % count], out


def run_pubsub(cmd, port, transport=None, cwd=None):
    args = [str(a) for a in ("127.0.0.1", port, COUNT) + ((transport,) if transport else ())]
    return subprocess.run(cmd + args, capture_output=True, text=True, timeout=scaled(30),
                          cwd=cwd, stdin=subprocess.DEVNULL)


def pubsub_broker(broker, transport):
    """A broker and the port of its TCP listener, or ("ws") of its WebSocket listener."""
    if transport == "tcp":
        b = broker()
        return b, b.port
    from test_websocket import ws_listener
    b = ws_listener(broker)
    return b, b.ws_port


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_python_pubsub_example(broker, transport):
    _, port = pubsub_broker(broker, transport)
    proc = run_pubsub([sys.executable, str(EXAMPLES / "python" / "pubsub.py")], port, transport)
    check_pubsub_output(proc)


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_js_pubsub_example(broker, tmp_path, transport):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (JS_MODULES / "mqtt").is_dir():
        pytest.skip("MQTT.js missing: run `npm ci` in tests/js")
    shutil.copy(EXAMPLES / "js" / "pubsub.mjs", tmp_path / "pubsub.mjs")
    os.symlink(JS_MODULES, tmp_path / "node_modules")
    _, port = pubsub_broker(broker, transport)
    proc = run_pubsub([node, str(tmp_path / "pubsub.mjs")], port, transport, cwd=tmp_path)
    check_pubsub_output(proc)


def test_c_pubsub_example(broker, tmp_path):
    if not os.path.exists("/usr/include/mosquitto.h"):
        pytest.skip("libmosquitto-dev is not installed")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    src = EXAMPLES / "c"
    build = subprocess.run(["make", "-s", "-C", str(tmp_path), "-f", str(src / "Makefile"),
                            "VPATH=%s" % src, "pubsub"], capture_output=True, text=True,
                           timeout=scaled(120))
    assert build.returncode == 0, build.stdout + build.stderr
    b = broker()
    check_pubsub_output(run_pubsub([str(tmp_path / "pubsub")], b.port))
