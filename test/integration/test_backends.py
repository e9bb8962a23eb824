"""Upstream robustness: server groups and load balancing, passive ejection and
recovery, 503 with Retry-After when every server is down, active health
checks, routing by host and path, response and connect timeouts, queue
limits, retries with request body replay, the request body limit, the
backend's Keep-Alive timeout, REFUSED_STREAM, the client idle timeout, and
servers given by name.

Each test starts its own origins (build/origin) or tiny Python servers
(backendutil.RawServer) and its own gateway through tlsutil's h2gw fixture,
which runs exactly the argv given and checks a clean exit and no sanitizer
report at teardown. Everything is on 127.0.0.1; every wait is bounded."""

import os
import signal
import socket
import threading
import time

import pytest

pytest.register_assert_rewrite("tlsutil", "backendutil")

from backendutil import BlackHole, RawServer, http1, start_origin_at, wait_eof
from conftest import SANITIZED, SLOW, H2Client, check_sibling, closed_port, sha256
from tlsutil import write_file

# The h2gw fixture.
pytest_plugins = ["tlsutil"]

REFUSED_STREAM = 7


# --------------------------------------------------------------------------
# Fixtures and helpers


def addr(server):
    return "127.0.0.1:%d" % server.port


@pytest.fixture
def origins(tmp_path):
    """Factory: origins(port=0) starts a test origin (on a given port, to
    restart one where it was); all are stopped at teardown."""
    started = []

    def start(port=0):
        o = start_origin_at(tmp_path, port)
        started.append(o)
        return o

    yield start
    for o in started:
        o.proc.stop(5)


@pytest.fixture
def raw():
    """Factory: raw(**kw) starts a RawServer; all are closed at teardown."""
    started = []

    def start(**kw):
        s = RawServer(**kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


@pytest.fixture
def gw(h2gw):
    """Factory: gw(*flags) runs h2gw --listen 127.0.0.1:0 --log-level info
    plus the flags. Clients left open are closed before the gateway stops."""

    def start(*flags):
        return h2gw("--listen", "127.0.0.1:0", "--log-level", "info", *flags)

    yield start
    H2Client.close_all()


@pytest.fixture
def gw_conf(h2gw, tmp_path):
    """Factory: gw_conf(text, *flags) writes text to a config file and runs
    h2gw --config FILE plus the flags."""
    n = [0]

    def start(text, *flags):
        n[0] += 1
        path = write_file(tmp_path / ("h2gw-%d.conf" % n[0]), text)
        return h2gw("--config", path, *flags)

    yield start
    H2Client.close_all()


def served(o):
    """Requests the origin answered for the gateway (direct ones excluded)."""
    return o.stats()["requests"]


def assert_retry_after(r):
    v = r.header("retry-after")
    assert v is not None and v.isdigit() and int(v) >= 1, (
        "a 503 must carry Retry-After (delta-seconds >= 1): " + r.describe())
    return int(v)


def timed(c, method, path, timeout=None, **kw):
    """One request; returns (Response, seconds)."""
    t = time.monotonic()
    r = c.fetch(method, path, timeout=timeout, **kw)
    return r, time.monotonic() - t


def wait_until(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout * SLOW
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)


def log_lines(gateway, needle):
    return [l for l in gateway.stderr_text().splitlines() if needle in l]


# --------------------------------------------------------------------------
# 1. Load balancing


def test_round_robin_splits_sequential_requests_evenly(origins, gw):
    a, b = origins(), origins()
    g = gw("--backend", addr(a), "--backend", addr(b), "--backend-lb", "round-robin")
    a.reset_stats()
    b.reset_stats()
    with H2Client(g.port) as c:
        for i in range(200):
            c.get("/echo?i=%d" % i).assert_ok()
    na, nb = served(a), served(b)
    assert na + nb == 200, (na, nb)
    assert abs(na - 100) <= 10 and abs(nb - 100) <= 10, (
        "round-robin over two servers: want 100 +- 10 each, got %d and %d" % (na, nb))


def test_weighted_round_robin_follows_weights(origins, gw_conf):
    a, b = origins(), origins()
    g = gw_conf("""\
[gateway]
log_level = info

[listen]
address = 127.0.0.1:0

[backend default]
server = {a} weight=3
server = {b}
lb = round-robin
""".format(a=addr(a), b=addr(b)))
    a.reset_stats()
    b.reset_stats()
    with H2Client(g.port) as c:
        for i in range(200):
            c.get("/echo?i=%d" % i).assert_ok()
    na, nb = served(a), served(b)
    assert na + nb == 200, (na, nb)
    assert abs(na - 150) <= 10 and abs(nb - 50) <= 10, (
        "weights 3:1 over 200 requests: want about 150 and 50, got %d and %d" % (na, nb))


def test_least_outstanding_spreads_concurrent_requests(origins, gw):
    a, b = origins(), origins()
    g = gw("--backend", addr(a), "--backend", addr(b))  # least-outstanding is the default
    a.reset_stats()
    b.reset_stats()
    with H2Client(g.port) as c:
        sids = [c.request("GET", "/delay/300") for _ in range(20)]
        for r in c.run(sids):
            check_sibling(r, 300)
    na, nb = served(a), served(b)
    assert na + nb == 20, (na, nb)
    assert abs(na - nb) <= 4, (
        "20 concurrent slow requests, least outstanding: want about 10 each, got %d and %d"
        % (na, nb))


# --------------------------------------------------------------------------
# 2. A server stops mid-run, is ejected, comes back


class Load(threading.Thread):
    """Sequential GETs on one client connection until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.error = None

    def run(self):
        try:
            with H2Client(self.port, timeout=10) as c:
                n = 0
                while not self.stop.is_set() and n < 50000:
                    r = c.get("/echo?n=%d" % n, timeout=10)
                    n += 1
                    if r.ended and r.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append(r.describe())
                    time.sleep(0.003)
        except Exception as e:  # reported by the test
            self.error = repr(e)


def test_stopped_server_is_ejected_without_failing_requests_and_returns(origins, gw):
    a, b = origins(), origins()
    port_a = a.port
    g = gw("--backend", addr(a), "--backend", addr(b), "--backend-max-fails", "2",
           "--backend-eject-time", "1s")
    load = Load(g.port)
    load.start()
    try:
        wait_until(lambda: load.ok >= 40 or load.error, 5, "40 requests through the gateway")
        assert served(a) > 0 and served(b) > 0, "both servers should take traffic at first"

        assert a.proc.stop(5) == 0
        stopped_at = load.ok
        text = g.wait_log("ejected", timeout=5)
        ejected = [l for l in text.splitlines() if "ejected" in l]
        assert "127.0.0.1:%d" % port_a in ejected[0], ejected
        assert " warn " in ejected[0], ejected
        wait_until(lambda: load.ok >= stopped_at + 20 or load.error, 5,
                   "requests served while one server is down")

        # The same port again: once the 1 s ejection is over it gets traffic.
        a2 = origins(port_a)
        wait_until(lambda: served(a2) > 0 or load.error, 6,
                   "the restarted server to serve requests again")
        before = load.ok
        wait_until(lambda: load.ok >= before + 10 or load.error, 5, "more requests")
    finally:
        load.stop.set()
        load.join(15 * SLOW)
    assert load.error is None, load.error
    assert not load.failures, ("requests failed while one server was stopped (GETs must be "
                               "retried on the other server):\n" + "\n".join(load.failures[:10]))
    assert log_lines(g, "retrying"), "expected an info line about a retry:\n" + g.stderr_text()


# --------------------------------------------------------------------------
# 3. Every server down; active health checks


def test_every_server_down_refused_port_gives_503_with_retry_after(gw):
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--backend-max-fails", "1",
           "--backend-eject-time", "5s", "--backend-connect-timeout", "3s")
    with H2Client(g.port) as c:
        first = c.get("/echo?first")
        assert first.ended and first.status in (502, 503), first.describe()
        for i in range(5):
            r, secs = timed(c, "GET", "/echo?later=%d" % i)
            assert r.ended and r.status == 503, r.describe()
            ra = assert_retry_after(r)
            assert ra <= 5, "Retry-After beyond the 5 s ejection: " + r.describe()
            assert secs < 0.5 * SLOW, "503 took %.2fs" % secs
    assert log_lines(g, "ejected"), g.stderr_text()


def test_every_server_down_no_connect_attempt_once_ejected(gw):
    with BlackHole() as hole:
        g = gw("--backend", hole.addr, "--backend-max-fails", "1", "--backend-eject-time", "5s",
               "--backend-connect-timeout", "1s")
        with H2Client(g.port) as c:
            first, secs = timed(c, "GET", "/echo?first")
            assert first.ended and first.status in (502, 503), first.describe()
            assert 0.8 <= secs, "the first request should have waited for the connect timeout"
            for i in range(3):
                r, secs = timed(c, "GET", "/echo?later=%d" % i)
                assert r.ended and r.status == 503, r.describe()
                assert_retry_after(r)
                assert secs < 0.3 * SLOW, (
                    "once the only server is ejected, a request must get 503 at once, not "
                    "after a connect attempt (took %.2fs)" % secs)


def test_active_health_check_failing_takes_server_out(origin, gw):
    g = gw("--backend", addr(origin), "--backend-health-check-path", "/status/503",
           "--backend-health-check-interval", "200ms", "--backend-unhealthy-threshold", "2")
    start = time.monotonic()
    last = None
    with H2Client(g.port) as c:
        while time.monotonic() - start < 2 * SLOW:
            last = c.get("/echo")
            assert last.ended and last.status in (200, 503), last.describe()
            if last.status == 503:
                break
            time.sleep(0.05)
        assert last.status == 503, "no 503 within 2 s of failing health checks: " + last.describe()
        assert_retry_after(last)
        # and it stays out
        for _ in range(3):
            r = c.get("/echo")
            assert r.status == 503, r.describe()
            assert_retry_after(r)
    assert log_lines(g, "marked down"), g.stderr_text()


def test_active_health_check_passing_keeps_server_in(origin, gw):
    g = gw("--backend", addr(origin), "--backend-health-check-path", "/status/200",
           "--backend-health-check-interval", "200ms", "--backend-unhealthy-threshold", "2")
    with H2Client(g.port) as c:
        end = time.monotonic() + 1.2
        n = 0
        while time.monotonic() < end:
            c.get("/echo?n=%d" % n).assert_ok()
            n += 1
            time.sleep(0.05)
    text = g.stderr_text()
    assert "marked down" not in text, text
    # the checks did run: the origin saw GETs of /status/200 besides ours
    assert served(origin) > n, (served(origin), n)


def test_active_health_check_brings_server_back(raw, gw):
    srv = raw(name="hc", health_path="/health", health_status=503)
    g = gw("--backend", srv.addr, "--backend-health-check-path", "/health",
           "--backend-health-check-interval", "200ms", "--backend-unhealthy-threshold", "2",
           "--backend-healthy-threshold", "2")
    g.wait_log("marked down", timeout=3)
    with H2Client(g.port) as c:
        r = c.get("/app")
        assert r.status == 503, r.describe()
        assert_retry_after(r)
        srv.health_status = 200
        g.wait_log("marked up", timeout=3)
        c.get("/app").assert_ok()
    assert [r["target"] for r in srv.app_requests()] == ["/app"]


# --------------------------------------------------------------------------
# 4. Routing by host and path


ROUTES = """\
[gateway]
log_level = info

[listen]
address = 127.0.0.1:0

[backend default]
server = {default}

[backend a]
server = {a}

[backend b]
server = {b}

[backend api]
server = {api}

[backend special]
server = {special}

[route r1]
host = a.example
backend = a

[route r2]
host = *.wild.example
backend = b

[route r3]
path_prefix = /api
backend = api

[route r4]
host = a.example
path_prefix = /special
backend = special
"""


def test_routing_by_host_and_path(origins, gw_conf):
    o = {name: origins() for name in ("default", "a", "b", "api", "special")}
    g = gw_conf(ROUTES.format(**{k: addr(v) for k, v in o.items()}))
    cases = [
        ("a.example", "/echo", "a"),
        ("a.example:8443", "/echo/port-ignored", "a"),
        ("x.wild.example", "/echo", "b"),
        ("other.example", "/api/items", "api"),
        ("127.0.0.1:%d" % g.port, "/api", "api"),
        ("a.example", "/special/x", "special"),  # host and prefix beat host alone
        ("a.example", "/special", "special"),
        ("other.example", "/special/x", "default"),  # r4 needs host a.example
        ("wild.example", "/echo", "default"),  # *.wild.example needs a label before it
        ("other.example", "/echo", "default"),
        ("127.0.0.1:%d" % g.port, "/echo", "default"),
    ]
    for v in o.values():
        v.reset_stats()
    want = {k: 0 for k in o}
    with H2Client(g.port) as c:
        for authority, path, backend in cases:
            before = {k: served(v) for k, v in o.items()}
            r = c.get(path, authority=authority)
            assert r.ended and r.status in (200, 404), r.describe()
            after = {k: served(v) for k, v in o.items()}
            grew = [k for k in o if after[k] != before[k]]
            assert grew == [backend], "%s%s went to %s, want %s" % (authority, path, grew,
                                                                   backend)
            want[backend] += 1
    # The HTTP/1.1 frontend routes by Host the same way.
    status, _, _ = http1(g.port, "GET", "/echo", host="y.wild.example")
    assert status == 200
    want["b"] += 1
    status, _, _ = http1(g.port, "GET", "/special/y", host="a.example")
    assert status == 404
    want["special"] += 1
    assert {k: served(v) for k, v in o.items()} == want


# --------------------------------------------------------------------------
# 5. Response timeout


def test_response_timeout_gives_504_and_sibling_survives(origin, gw):
    g = gw("--backend", addr(origin), "--backend-response-timeout", "500ms")
    with H2Client(g.port) as c:
        t = time.monotonic()
        sib = c.request("GET", "/delay/200")
        slow = c.request("GET", "/delay/3000")
        r = c.run([slow])[0]
        secs = time.monotonic() - t
        assert r.ended and r.status == 504, r.describe()
        assert 0.4 <= secs < 2.0, "504 after %.2fs (response timeout 500ms)" % secs
        check_sibling(c.run([sib])[0])
        c.get("/echo").assert_ok()  # the connection is fine


# --------------------------------------------------------------------------
# 6. Connect timeout and refusal, with retries


def test_connect_timeout_is_retried_then_502(gw):
    with BlackHole() as hole:
        g = gw("--backend", hole.addr, "--backend-connect-timeout", "300ms",
               "--backend-retries", "1")
        with H2Client(g.port) as c:
            r, secs = timed(c, "GET", "/echo")
        assert r.ended and r.status == 502, r.describe()
        assert 0.55 <= secs < 1.5, (
            "two connect attempts of 300 ms each should take about 0.6 s, took %.2fs" % secs)
    retried = log_lines(g, "retrying")
    assert len(retried) == 1 and "timed out" in retried[0], g.stderr_text()
    assert log_lines(g, "answered with an error"), g.stderr_text()


def test_refused_connect_is_retried_then_502(gw):
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--backend-max-fails", "0",
           "--backend-retries", "2")
    with H2Client(g.port) as c:
        r, secs = timed(c, "GET", "/echo")
        assert r.ended and r.status == 502, r.describe()
        assert secs < 1.0 * SLOW, secs
        # not ejected (max-fails 0): the next request tries again, same outcome
        r = c.get("/echo?again")
        assert r.ended and r.status == 502, r.describe()
    retried = log_lines(g, "retrying")
    assert len(retried) == 4, "want 2 retries per request:\n" + g.stderr_text()
    assert all("refused" in l for l in retried), retried
    assert not log_lines(g, "ejected")


# --------------------------------------------------------------------------
# 7. Queue length and queue timeout


def test_queue_full_gives_503_at_once(origin, gw):
    g = gw("--backend", addr(origin), "--backend-max-connections", "1",
           "--backend-queue-length", "2")
    origin.reset_stats()
    with H2Client(g.port) as c, H2Client(g.port) as c2:
        t = time.monotonic()
        slow = c.request("GET", "/delay/1000")
        queued = [c.request("GET", "/echo?q1"), c2.request("GET", "/echo?q2")]
        extra = [(c, c.request("GET", "/echo?x1")), (c2, c2.request("GET", "/echo?x2"))]
        for cl, sid in extra:
            r = cl.run([sid])[0]
            assert r.ended and r.status == 503, r.describe()
            assert_retry_after(r)
        secs = time.monotonic() - t
        assert secs < 0.5 * SLOW, "the overflow 503s took %.2fs" % secs
        assert not c.responses[slow].done, "the overflow should not wait for the slow request"
        check_sibling(c.run([slow])[0], 1000)
        c.run([queued[0]])[0].assert_ok()
        c2.run([queued[1]])[0].assert_ok()
    assert served(origin) == 3


def test_queue_timeout_gives_503(origin, gw):
    g = gw("--backend", addr(origin), "--backend-max-connections", "1",
           "--backend-queue-timeout", "300ms")
    with H2Client(g.port) as c:
        slow = c.request("GET", "/delay/1500")
        time.sleep(0.05)
        r, secs = timed(c, "GET", "/echo?waits")
        assert r.ended and r.status == 503, r.describe()
        assert_retry_after(r)
        assert 0.25 <= secs < 1.0, "queue timeout 300ms, 503 after %.2fs" % secs
        check_sibling(c.run([slow])[0], 1500)
        c.get("/echo?after").assert_ok()


# --------------------------------------------------------------------------
# 8. Retries and request bodies


def _hit_failing(c, fail_srv, good, method, target, tries=4, **kw):
    """Sends the request (a fresh target each time) until one attempt lands
    on the failing server first. Returns (Response, target, requests the good
    origin answered for it)."""
    for i in range(tries):
        t = "%s-%d" % (target, i)
        before_good = served(good)
        r = c.fetch(method, t, **kw)
        if fail_srv.with_target(t):
            return r, t, served(good) - before_good
        r.assert_ok()  # the good server took it directly
    raise AssertionError("no request reached the failing server in %d tries" % tries)


@pytest.fixture
def flaky_pair(raw, origin, gw):
    """A server that resets every connection after reading a request, and a
    good origin, round robin, one retry, never ejected."""
    bad = raw(name="bad", policy=lambda req: "reset")
    g = gw("--backend", bad.addr, "--backend", addr(origin), "--backend-lb", "round-robin",
           "--backend-retries", "1", "--backend-max-fails", "0")
    return bad, origin, g


def test_put_10k_hitting_a_failing_server_is_replayed(flaky_pair):
    bad, good, g = flaky_pair
    body = os.urandom(10 * 1024)
    with H2Client(g.port) as c:
        r, target, good_got = _hit_failing(c, bad, good, "PUT", "/echo?put10k", body=body)
        r.assert_ok()
        e = r.json()
        assert e["target"] == target and e["method"] == "PUT", e
        assert e["body_length"] == len(body) and e["body_sha256"] == sha256(body), e
    attempts = bad.with_target(target)
    assert len(attempts) == 1, attempts
    assert attempts[0]["body_length"] == len(body), "the failing server got the whole body first"
    assert attempts[0]["body_sha256"] == sha256(body)
    assert good_got == 1
    assert log_lines(g, "retrying on another server"), g.stderr_text()


def test_chunked_put_hitting_a_failing_server_is_replayed(flaky_pair):
    bad, good, g = flaky_pair
    body = os.urandom(10 * 1024)
    chunks = [body[:3000], body[3000:6000], body[6000:9000], body[9000:]]
    with H2Client(g.port) as c:
        r, target, good_got = _hit_failing(c, bad, good, "PUT", "/echo?chunked", chunks=chunks)
        r.assert_ok()
        e = r.json()
        assert e["body_length"] == len(body) and e["body_sha256"] == sha256(body), e
    attempts = bad.with_target(target)
    assert len(attempts) == 1 and attempts[0]["chunked"], attempts
    assert attempts[0]["body_sha256"] == sha256(body)
    assert good_got == 1


def test_put_70k_is_not_replayed(flaky_pair):
    bad, good, g = flaky_pair
    body = os.urandom(70 * 1024)
    with H2Client(g.port) as c:
        r, target, good_got = _hit_failing(c, bad, good, "PUT", "/echo?put70k", body=body)
        assert (r.ended and r.status == 502) or r.reset is not None, (
            "a 70 KiB body cannot be replayed: want 502 or a reset, got " + r.describe())
        c.get("/echo?after").assert_ok()
    attempts = bad.with_target(target)
    assert len(attempts) == 1 and attempts[0]["body_length"] == len(body), attempts
    assert good_got == 0, "the 70 KiB PUT was sent again"


def test_post_is_never_retried(flaky_pair):
    bad, good, g = flaky_pair
    with H2Client(g.port) as c:
        r, target, good_got = _hit_failing(c, bad, good, "POST", "/echo?post",
                                           body=b"p" * 1024)
        assert (r.ended and r.status == 502) or r.reset is not None, r.describe()
        c.get("/echo?after").assert_ok()
    assert len(bad.with_target(target)) == 1
    assert good_got == 0, "the POST reached a second server"


def test_no_retries_means_502(raw, origin, gw):
    bad = raw(name="bad", policy=lambda req: "reset")
    g = gw("--backend", bad.addr, "--backend", addr(origin), "--backend-lb", "round-robin",
           "--backend-retries", "0", "--backend-max-fails", "0")
    with H2Client(g.port) as c:
        r, target, good_got = _hit_failing(c, bad, origin, "PUT", "/echo?noretry",
                                           body=b"q" * 100)
        assert r.ended and r.status == 502, r.describe()
    assert good_got == 0


# --------------------------------------------------------------------------
# 9. Request body limit


def test_request_body_limit(origin, gw):
    g = gw("--backend", addr(origin), "--backend-max-request-body", "10k")
    origin.reset_stats()
    with H2Client(g.port) as c:
        r = c.fetch("POST", "/echo?cl20000", body=b"x" * 20000)
        assert r.status == 413, r.describe()
        assert served(origin) == 0, "a declared 20000-byte body reached the origin"

        r = c.fetch("POST", "/echo?chunked", chunks=[b"y" * 4096] * 5)
        assert r.status == 413, r.describe()

        r = c.fetch("POST", "/echo?5k", body=b"z" * 5120)
        r.assert_ok()
        assert r.json()["body_length"] == 5120
        r = c.fetch("POST", "/echo?exactly10k", body=b"z" * 10240)
        r.assert_ok()
        assert r.json()["body_length"] == 10240
        r = c.fetch("POST", "/echo?chunked5k", chunks=[b"w" * 1024] * 5)
        r.assert_ok()
        assert r.json()["body_length"] == 5120
    assert served(origin) == 3


# --------------------------------------------------------------------------
# 10. The backend's Keep-Alive timeout


def test_backend_keep_alive_timeout_is_honoured(raw, gw):
    srv = raw(name="ka", keep_alive_timeout=1)
    g = gw("--backend", srv.addr, "--backend-idle-timeout", "10s")
    with H2Client(g.port) as c:
        r1 = c.get("/one")
        r1.assert_ok()
        r2 = c.get("/two")
        r2.assert_ok()
        assert r2.json()["conn"] == r1.json()["conn"], "the connection was not kept alive"
    conn = srv.conn(r1.json()["conn"])
    srv.wait_for(lambda: conn.closed_at is not None, 3,
                 "the gateway to close the connection (Keep-Alive: timeout=1)")
    idle = conn.closed_at - conn.last_response_at
    assert conn.close_kind in ("eof", "reset"), conn.close_kind
    assert idle < 1.5, ("Keep-Alive: timeout=1 from the backend: the gateway should close its "
                        "idle connection within about 1 s, closed after %.2fs" % idle)


# --------------------------------------------------------------------------
# 11. REFUSED_STREAM


def test_refused_stream_when_nothing_reached_the_backend(raw, gw):
    """A non-idempotent request whose first write to a reused connection
    fails (the backend reset it as we wrote) must be refused with
    REFUSED_STREAM (RFC 9113 §8.7), so the client may retry it.

    The gateway gets there only when the reset arrives between its poll
    returning the client's request and its write to the pooled connection:
    if the reset is already known when the write is made, libuv reads the
    EOF of the same connection before it reports the failed write, and the
    gateway (rightly, since it cannot know) answers 502. The window is
    microseconds wide and cannot be hit from outside the process; freezing
    the gateway with SIGSTOP puts both events in the same poll, which always
    gives the 502 path. So the deterministic part checked here is: the
    request is not retried and fails cleanly (502 or REFUSED_STREAM), and
    the client connection goes on."""
    srv = raw(name="rst")
    g = gw("--backend", srv.addr, "--backend-max-connections", "1",
           "--backend-idle-timeout", "60s")
    with H2Client(g.port) as c:
        c.get("/warm").assert_ok()
        srv.wait_for(lambda: len(srv.conns) == 1 and srv.conns[0].last_response_at, 2, "warm")
        os.kill(g.pid, signal.SIGSTOP)
        try:
            sid = c.request("POST", "/post", body=b"once")
            time.sleep(0.1)
            srv.reset_conn(1)
            time.sleep(0.1)
        finally:
            os.kill(g.pid, signal.SIGCONT)
        r = c.run([sid])[0]
        assert (r.ended and r.status == 502) or r.reset == REFUSED_STREAM, r.describe()
        c.get("/after").assert_ok()
    assert not srv.with_target("/post"), "the backend got the POST"
    if r.reset != REFUSED_STREAM:
        pytest.skip("REFUSED_STREAM needs the backend's reset to land between the gateway's "
                    "poll and its write; not reproducible deterministically from outside "
                    "(this run took the 502 path: %s)" % r.describe())


# --------------------------------------------------------------------------
# 12. Client idle timeout


def test_client_idle_timeout_h2_goaway_then_close(origin, gw):
    g = gw("--backend", addr(origin), "--client-idle-timeout", "1s")
    with H2Client(g.port) as c:
        t = time.monotonic()
        c.run_until(lambda: c.eof, timeout=4, what="the idle connection to close")
        secs = time.monotonic() - t
        assert c.goaway is not None and c.goaway[0] == 0, (
            "want GOAWAY(NO_ERROR) before the close, got %r" % (c.goaway,))
        assert 0.7 <= secs < 2.5, "idle close after %.2fs (client-idle-timeout 1s)" % secs


def test_client_idle_timeout_h1_keepalive_close(origin, gw):
    g = gw("--backend", addr(origin), "--client-idle-timeout", "1s")
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        status, _, _ = http1(g.port, "GET", "/echo", host="gw", sock=s)
        assert status == 200
        secs, extra = wait_eof(s, 4)
        assert secs is not None, "the idle HTTP/1.1 connection was not closed"
        assert extra == b"", extra
        assert 0.7 <= secs < 2.5, "idle close after %.2fs (client-idle-timeout 1s)" % secs
    finally:
        s.close()


def test_client_idle_timeout_spares_requests_in_flight(origin, gw):
    g = gw("--backend", addr(origin), "--client-idle-timeout", "1s")
    with H2Client(g.port) as c:
        r = c.get("/delay/2000")
        check_sibling(r, 2000)
        assert c.goaway is None, "GOAWAY while a request was in flight: %r" % (c.goaway,)
        # idle again after it: closed about a second later
        t = time.monotonic()
        c.run_until(lambda: c.eof, timeout=4, what="the idle connection to close")
        assert time.monotonic() - t < 2.5
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        status, _, body = http1(g.port, "GET", "/delay/2000", host="gw", sock=s)
        assert status == 200 and body == b"delayed 2000\n"
    finally:
        s.close()


# --------------------------------------------------------------------------
# 13. A server given by name


def test_server_given_by_name(origin, gw):
    g = gw("--backend", "localhost:%d" % origin.port)
    with H2Client(g.port) as c:
        r = c.get("/echo")
        r.assert_ok()
        assert r.json()["target"] == "/echo"
        for i in range(5):
            c.get("/echo?%d" % i).assert_ok()
    assert served(origin) == 6
