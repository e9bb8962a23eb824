"""Logs and Via: JSON access-log lines with every field, the reopen on
SIGUSR1 (logrotate), JSON error-log lines, and the Via field on requests and
responses. Everything on 127.0.0.1; every wait is bounded."""

import json
import os
import signal
import time

import pytest

from backendutil import http1
from conftest import SLOW, H2Client, closed_port

pytest_plugins = ["tlsutil"]


@pytest.fixture
def gw(h2gw):
    def start(*flags):
        return h2gw("--listen", "127.0.0.1:0", "--log-level", "info", *flags)

    yield start
    H2Client.close_all()


def addr(server):
    return "127.0.0.1:%d" % server.port


def wait_lines(path, n, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_json_access_log_lines_parse_and_hold_the_fields(tmp_path, origin, gw):
    log = tmp_path / "access.json"
    g = gw("--backend", addr(origin), "--access-log", str(log), "--access-log-format", "json")
    with H2Client(g.port) as c:
        c.get("/echo?h2=1", headers=[("priority", "u=1")]).assert_ok()
        r = c.fetch("POST", "/echo?post", body=b"x" * 1000)
        r.assert_ok()
    status, _, _ = http1(g.port, "GET", "/echo?h1=1", host="example.test")
    assert status == 200
    lines = wait_lines(log, 3)
    assert len(lines) == 3, lines
    recs = [json.loads(l) for l in lines]  # every line is one JSON object
    want = {"time", "client", "client_port", "protocol", "tls_version", "sni", "stream_id",
            "method", "authority", "path", "status", "bytes_in", "bytes_out", "duration_ms",
            "queue_ms", "urgency", "backend", "server", "upstream_reused", "retries", "outcome",
            "cause"}
    for rec in recs:
        assert want <= set(rec), sorted(want - set(rec))
    h2 = [r for r in recs if r["path"] == "/echo?h2=1"][0]
    assert h2["protocol"] == "h2" and h2["method"] == "GET" and h2["status"] == 200
    assert h2["urgency"] == 1 and h2["stream_id"] == 1 and h2["outcome"] == "ok"
    assert h2["server"] == addr(origin) and h2["backend"] == "default"
    assert h2["tls_version"] is None and h2["cause"] is None and h2["queue_ms"] >= 0
    post = [r for r in recs if r["path"] == "/echo?post"][0]
    assert post["bytes_in"] == 1000 and post["method"] == "POST"
    h1 = [r for r in recs if r["path"] == "/echo?h1=1"][0]
    assert h1["protocol"] == "http/1.1" and h1["authority"] == "example.test"
    assert isinstance(h1["client_port"], int) and h1["client_port"] > 0


def test_json_access_log_names_the_gateways_own_answer(tmp_path, gw):
    log = tmp_path / "access.json"
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--access-log", str(log),
           "--access-log-format", "json")
    with H2Client(g.port) as c:
        assert c.get("/x").status == 502
    rec = json.loads(wait_lines(log, 1)[0])
    assert rec["status"] == 502 and rec["outcome"] == "error", rec
    assert rec["cause"] == "connect_failed", rec


def test_sigusr1_reopens_the_access_log(tmp_path, origin, gw):
    log = tmp_path / "access.log"
    g = gw("--backend", addr(origin), "--access-log", str(log))
    with H2Client(g.port) as c:
        c.get("/echo?before").assert_ok()
        assert len(wait_lines(log, 1)) == 1
        rotated = tmp_path / "access.log.1"
        os.rename(log, rotated)
        os.kill(g.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5 * SLOW
        while not log.exists():  # reopened by its name: created anew
            assert time.monotonic() < deadline, "SIGUSR1 did not reopen the access log"
            time.sleep(0.01)
        c.get("/echo?after").assert_ok()
    lines = wait_lines(log, 1)
    assert len(lines) == 1 and "/echo?after" in lines[0], lines
    assert "/echo?before" in rotated.read_text()


def test_json_error_log(origin, gw):
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--log-format", "json")
    with H2Client(g.port) as c:
        assert c.get("/x").status == 502
    time.sleep(0.2)
    lines = [l for l in g.stderr_text().splitlines() if l.strip()]
    assert lines
    for l in lines:
        rec = json.loads(l)
        assert {"time", "level", "msg"} <= set(rec), rec
    assert any("connect failed" in json.loads(l)["msg"] for l in lines), lines


def test_via_on_requests_and_responses(origin, gw):
    g = gw("--backend", addr(origin))
    with H2Client(g.port) as c:
        r = c.get("/echo", headers=[("via", "1.1 upstream-proxy")])
        r.assert_ok()
        assert r.header("via") == "1.1 h2gw", r.describe()
        seen = [v for k, v in r.json()["headers"] if k.lower() == "via"]
        assert seen == ["1.1 upstream-proxy", "2 h2gw"], seen
    status, headers, body = http1(g.port, "GET", "/echo", host="gw")
    assert status == 200 and dict(headers).get("via") == "1.1 h2gw", headers
    seen = [v for k, v in json.loads(body)["headers"] if k.lower() == "via"]
    assert seen == ["1.1 h2gw"], seen


def test_via_off_and_pseudonym(origin, gw):
    g = gw("--backend", addr(origin), "--via", "off")
    with H2Client(g.port) as c:
        r = c.get("/echo")
        assert r.header("via") is None
        assert not [v for k, v in r.json()["headers"] if k.lower() == "via"]
    g2 = gw("--backend", addr(origin), "--via", "edge-7")
    with H2Client(g2.port) as c:
        assert c.get("/echo").header("via") == "1.1 edge-7"
