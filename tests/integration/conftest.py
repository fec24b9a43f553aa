"""Fixtures of the integration suite: each test starts its own broker on a free loopback port.

    def test_x(broker):
        b = broker("max_keepalive 10")      # extra configuration lines
        b.port, b.pid, b.log(), b.stop(), b.kill()

At teardown every broker the test started is stopped by PID (SIGTERM, then wait); the test fails
if a broker crashed (exit by a signal other than our SIGTERM, a non-zero exit status, or a
sanitizer report in its stderr).
"""

import pytest

from support import Broker


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _finish(brokers, node):
    reports = []
    failed = getattr(node, "rep_call", None) is not None and node.rep_call.failed
    for b in brokers:
        b.stop()
        report = b.crash_report()
        if report:
            reports.append(report)
        elif failed:
            print("--- log of broker on port %d (pid %s) ---\n%s"
                  % (b.port, b.proc.pid if b.proc else "?", b.log()[-6000:]))
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)


@pytest.fixture
def broker(request, tmp_path):
    """Factory: broker(*config_lines, args=(), use_config=True) -> started Broker."""
    started = []
    count = [0]

    def start(*config_lines, args=(), use_config=True, timeout=10.0, **kw):
        count[0] += 1
        workdir = tmp_path / ("broker%d" % count[0])
        workdir.mkdir()
        b = Broker(config_lines, args, workdir=workdir, use_config=use_config, **kw)
        started.append(b)
        b.start(timeout)
        return b

    yield start
    _finish(started, request.node)


@pytest.fixture(scope="module")
def module_broker(request, tmp_path_factory):
    """One default broker shared by the tests of a module that leave no state behind."""
    b = Broker((), (), workdir=tmp_path_factory.mktemp("modbroker"))
    b.start()
    yield b
    b.stop()
    report = b.crash_report()
    if report:
        pytest.fail(report, pytrace=False)
