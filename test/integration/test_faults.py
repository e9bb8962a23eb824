"""Faults a deployment meets: a client that leaves with streams queued, a
client that stops reading, a backend restart, an outage in the logs, and
what the access log says the client got. Everything runs on 127.0.0.1 with
free ports; every wait and loop is bounded."""

import os
import socket
import time

import pytest

pytest.register_assert_rewrite("tlsutil", "backendutil")

from backendutil import http1, start_origin_at
from conftest import SLOW, H2Client, closed_port

pytest_plugins = ["tlsutil"]


@pytest.fixture
def gw(h2gw):
    """Factory: gw(*flags) runs h2gw --listen 127.0.0.1:0 --log-level info
    plus the flags."""

    def start(*flags):
        return h2gw("--listen", "127.0.0.1:0", "--log-level", "info", *flags)

    yield start
    H2Client.close_all()


def addr(server):
    return "127.0.0.1:%d" % server.port


def log_lines(g, needle):
    return [l for l in g.stderr_text().splitlines() if needle in l]


def test_queued_streams_of_a_departed_client_cost_nothing(origin, gw):
    """50 streams under a pool of 2, then the client disconnects: at most 2
    backend connections were ever open and no request reached the origin
    after the disconnect."""
    g = gw("--backend", addr(origin), "--backend-max-connections", "2")
    origin.reset_stats()
    c = H2Client(g.port)
    # The two in flight outlast any stall of this client before it leaves.
    delay_ms = 1000 * SLOW
    for i in range(50):
        c.request("GET", "/delay/%d?n=%d" % (delay_ms, i))
    c.flush()
    deadline = time.monotonic() + 3 * SLOW
    while origin.stats()["requests"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    c.close()
    time.sleep(delay_ms / 1000 + 0.5 * SLOW)  # the two in flight end, and more could start
    s = origin.stats()
    assert s["connections_accepted"] <= 2, s
    assert s["requests"] <= 2, "requests sent after the client left: %r" % s
    # The gateway still serves.
    with H2Client(g.port) as c2:
        c2.get("/echo").assert_ok()


def test_stalled_clients_lose_their_streams_and_free_the_pool(origin, gw):
    """Two clients that never open their window hold a pool of two only until
    stream_write_timeout: a third client's request is answered soon after."""
    g = gw("--backend", addr(origin), "--backend-max-connections", "2",
           "--stream-write-timeout", "2s", "--response-buffer-size", "16k",
           "--backend-queue-timeout", "30s")
    origin.reset_stats()
    stalled = []
    for i in range(2):
        c = H2Client(g.port, window=None, ack=False)
        c.request("GET", "/bytes/%d?n=%d" % (4 << 20, i))
        c.flush()
        stalled.append(c)
    deadline = time.monotonic() + 5 * SLOW
    while origin.stats()["requests"] < 2:  # both hold their pool slot
        assert time.monotonic() < deadline, origin.stats()
        time.sleep(0.02)
    start = time.monotonic()
    with H2Client(g.port) as c3:
        r = c3.fetch("GET", "/echo?third", timeout=10 * SLOW)
        secs = time.monotonic() - start
        r.assert_ok()
    assert secs < 3.0 * SLOW, "the third request waited %.2fs" % secs
    for c in stalled:
        c.close()
    deadline = time.monotonic() + 5 * SLOW
    while not log_lines(g, "client stopped reading"):
        assert time.monotonic() < deadline, g.stderr_text()
        time.sleep(0.05)


def test_backend_restart_is_used_again_within_a_second(tmp_path, gw):
    """The sidecar shape: one server, default flags. While it is down every
    request is a fast 502 (never a long 503); once it accepts again the next
    request succeeds."""
    o = start_origin_at(tmp_path)
    port = o.port
    g = gw("--backend", "127.0.0.1:%d" % port)
    with H2Client(g.port) as c:
        c.get("/echo?before").assert_ok()
        o.proc.stop(5)
        for i in range(20):
            r = c.get("/echo?down=%d" % i)
            assert r.ended and r.status == 502, r.describe()
        o2 = start_origin_at(tmp_path, port)
        try:
            back = time.monotonic()
            deadline = back + 3 * SLOW
            while True:
                r = c.get("/echo?after")
                if r.status == 200:
                    break
                assert r.status == 502, r.describe()
                assert time.monotonic() < deadline, "no 200 within 3 s of the restart"
                time.sleep(0.02)
            assert time.monotonic() - back < 1.0 * SLOW
        finally:
            o2.proc.stop(5)
    assert not log_lines(g, "ejected"), g.stderr_text()


def test_outage_warnings_are_rate_limited(gw):
    g = gw("--backend", "127.0.0.1:%d" % closed_port())
    start = time.monotonic()
    with H2Client(g.port) as c:
        for i in range(60):
            r = c.get("/echo?n=%d" % i)
            assert r.ended and r.status == 502, r.describe()
        time.sleep(1.1)
        r = c.get("/echo?last")
        assert r.status == 502
    elapsed = time.monotonic() - start
    lines = log_lines(g, "connect failed")
    # A line, then at most one a second (with its count), however long the
    # 61 requests took on this machine.
    most = 2 + int(elapsed) + 1
    assert 1 <= len(lines) <= most, ("one warning a second, not one per request (%.1f s):\n"
                                     % elapsed) + "\n".join(lines)
    assert any("more in the last 1 s" in l for l in lines), "\n".join(lines)


def test_half_open_server_is_readmitted_on_success(tmp_path, origin, gw):
    """An ejected server whose ejection ran out takes traffic again, and its
    first success readmits it."""
    port = closed_port()
    g = gw("--backend", "127.0.0.1:%d" % port, "--backend", addr(origin),
           "--backend-max-fails", "1", "--backend-eject-time", "500ms",
           "--backend-lb", "round-robin")
    with H2Client(g.port) as c:
        deadline = time.monotonic() + 3 * SLOW
        while not log_lines(g, "ejected"):
            assert time.monotonic() < deadline, g.stderr_text()
            c.get("/echo").assert_ok()
        o2 = start_origin_at(tmp_path, port)
        try:
            time.sleep(0.6)
            o2.reset_stats()
            for i in range(6):
                c.get("/echo?n=%d" % i).assert_ok()
            assert o2.stats()["requests"] >= 2, "the readmitted server takes its share"
        finally:
            o2.proc.stop(5)
    assert log_lines(g, "readmitted"), g.stderr_text()
    assert len(log_lines(g, "ejected")) == 1, g.stderr_text()


def test_access_log_records_gateway_statuses(tmp_path, gw):
    log = tmp_path / "access.log"
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--access-log", str(log))
    with H2Client(g.port) as c:
        r = c.get("/h2")
        assert r.status == 502, r.describe()
    status, _, _ = http1(g.port, "GET", "/h1", host="gw")
    assert status == 502
    os.kill(g.pid, 15)
    g.proc.proc.wait(10 * SLOW)
    lines = log.read_text().splitlines()
    h2 = [l for l in lines if '"GET /h2"' in l]
    h1 = [l for l in lines if '"GET /h1"' in l]
    assert h2 and " 502 " in h2[0] and h2[0].endswith(" error"), lines
    assert h1 and " 502 " in h1[0] and h1[0].endswith(" error"), lines


def test_out_of_descriptors_is_never_held_against_a_server(origin, gw):
    """With the gateway's descriptor limit at 256 and 400 clients at once,
    accepts and backend connects fail with EMFILE: that is the gateway's
    shortage, not the servers' (no ejection). Accepting pauses instead of
    accepting and closing, so clients over the limit wait in the kernel's
    queue: as answered clients leave, every one of the 400 is answered
    (200, or 503 when a backend connect found no descriptor), none is reset,
    and once the surge is over a request is served."""
    import resource
    import select
    from test_admin import admin_get, admin_port
    g = gw("--backend", addr(origin), "--backend", addr(origin), "--backend-max-fails", "1",
           "--admin", "127.0.0.1:0")
    resource.prlimit(g.pid, resource.RLIMIT_NOFILE, (256, 256))
    socks = []
    statuses = {}
    try:
        for i in range(400):
            s = socket.socket()
            s.settimeout(5 * SLOW)
            s.connect(("127.0.0.1", g.port))
            s.sendall(b"GET /delay/300?n=%d HTTP/1.1\r\nHost: gw\r\n\r\n" % i)
            socks.append(s)
        waiting = list(socks)
        deadline = time.monotonic() + 30 * SLOW
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select(waiting, [], [], 1)
            for s in ready:
                try:
                    line = s.recv(64).split(b"\r\n")[0]
                except OSError as e:
                    line = repr(e).encode()
                code = line.split(b" ")[1].decode() if line.startswith(b"HTTP/1.1 ") else line
                statuses[code] = statuses.get(code, 0) + 1
                waiting.remove(s)
                s.close()  # the gateway's descriptor for it is freed
        statuses["unanswered"] = len(waiting)
    finally:
        for s in socks:
            s.close()
    assert statuses.get("200", 0) > 0, statuses
    assert set(statuses) <= {"200", "503", "unanswered"}, statuses
    assert statuses["unanswered"] == 0, statuses
    with H2Client(g.port) as c:
        c.get("/echo?after").assert_ok()
    assert log_lines(g, "too many open files; accepting paused for 100 ms"), g.stderr_text()
    status, text = admin_get(admin_port(g), "/metrics")
    pauses = [l for l in text.splitlines() if l.startswith("h2gw_accept_pauses_total ")]
    assert status == 200 and pauses and int(pauses[0].split()[1]) >= 1, text
    assert not log_lines(g, "ejected"), g.stderr_text()
