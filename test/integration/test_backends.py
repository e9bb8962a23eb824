"""Upstream robustness: server groups and load balancing, passive ejection and
recovery (never the last usable server), 503 with Retry-After when health
checks take every server down, active health
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

from backendutil import (BlackHole, RawServer, build_gai_delay_shim, http1, read_http1_response,
                         start_origin_at, wait_eof)
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


def proc_state(pid):
    """The state letter of /proc/PID/stat (R, S, T...)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rpartition(")")[2].split()[0]


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


def test_least_outstanding_follows_weights(origins, gw_conf):
    a, b = origins(), origins()
    g = gw_conf("""\
[listen]
address = 127.0.0.1:0

[backend default]
server = {a} weight=3
server = {b}
""".format(a=addr(a), b=addr(b)))
    a.reset_stats()
    b.reset_stats()
    with H2Client(g.port) as c:
        sids = [c.request("GET", "/delay/300") for _ in range(40)]
        for r in c.run(sids):
            check_sibling(r, 300)
    na, nb = served(a), served(b)
    assert na + nb == 40, (na, nb)
    assert abs(na - 30) <= 4, (
        "40 concurrent requests, least outstanding per unit of weight, weights 3:1: want "
        "about 30 and 10, got %d and %d" % (na, nb))


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


def test_lone_refused_server_is_always_tried_and_gives_fast_502(gw):
    """A lone server is never ejected (nginx: a sole server "will never be
    considered unavailable"): while it refuses, every request is a fast 502,
    never a 503 for the length of an ejection."""
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--backend-max-fails", "1",
           "--backend-eject-time", "5s", "--backend-connect-timeout", "3s")
    with H2Client(g.port) as c:
        for i in range(5):
            r, secs = timed(c, "GET", "/echo?n=%d" % i)
            assert r.ended and r.status == 502, r.describe()
            assert secs < 0.5 * SLOW, "502 took %.2fs" % secs
    status, headers, _ = http1(g.port, "GET", "/echo", host="gw")
    assert status == 502, (status, headers)
    assert not log_lines(g, "ejected"), g.stderr_text()
    assert not log_lines(g, "retrying"), "nothing to retry on:\n" + g.stderr_text()


def test_ejected_server_costs_no_connect_attempt(origin, gw):
    with BlackHole() as hole:
        g = gw("--backend", hole.addr, "--backend", addr(origin), "--backend-max-fails", "1",
               "--backend-eject-time", "5s", "--backend-connect-timeout", "1s",
               "--backend-lb", "round-robin")
        with H2Client(g.port) as c:
            slow = 0
            for i in range(6):
                r, secs = timed(c, "GET", "/echo?n=%d" % i)
                r.assert_ok()  # the black hole's request is retried on the origin
                slow += secs >= 0.8
            assert slow == 1, "only the first request to the black hole waits its connect timeout"
        assert len(log_lines(g, "ejected")) == 1, g.stderr_text()


def test_ejection_backoff_doubles_up_to_the_maximum(origin, gw):
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--backend", addr(origin),
           "--backend-max-fails", "1", "--backend-eject-time", "500ms",
           "--backend-eject-time-max", "1500ms", "--backend-lb", "round-robin")
    with H2Client(g.port) as c:
        deadline = time.monotonic() + 8 * SLOW
        while len(log_lines(g, "ejected")) < 4:
            assert time.monotonic() < deadline, g.stderr_text()
            c.get("/echo").assert_ok()  # retried on the origin
            time.sleep(0.02)
    want = ["ejected for %d ms" % ms for ms in (500, 1000, 1500, 1500)]
    got = log_lines(g, "ejected")[:4]
    assert all(w in l for w, l in zip(want, got)), got


def test_max_ejection_percent_keeps_half_the_servers(origin, gw):
    dead = ["127.0.0.1:%d" % closed_port() for _ in range(3)]
    args = []
    for d in dead:
        args += ["--backend", d]
    g = gw(*args, "--backend", addr(origin), "--backend-max-fails", "1",
           "--backend-eject-time", "30s", "--backend-retries", "3")
    with H2Client(g.port) as c:
        for i in range(20):
            r = c.get("/echo?n=%d" % i)
            assert r.ended and r.status in (200, 502), r.describe()
    assert len(log_lines(g, "ejected")) == 2, g.stderr_text()  # 50 % of 4


def test_fail_on_5xx_ejects_one_of_two_servers_never_the_last(origin, gw):
    g = gw("--backend", addr(origin), "--backend", addr(origin),
           "--backend-max-fails", "1", "--backend-fail-on-5xx", "on", "--backend-eject-time", "5s")
    with H2Client(g.port) as c:
        for _ in range(4):
            r = c.get("/status/500")
            assert r.ended and r.status == 500, r.describe()  # passed through as it is
        c.get("/echo").assert_ok()
    assert len(log_lines(g, "ejected")) == 1, g.stderr_text()


def test_5xx_responses_do_not_eject_by_default(origin, gw):
    g = gw("--backend", addr(origin), "--backend-max-fails", "2")
    with H2Client(g.port) as c:
        for _ in range(4):
            r = c.get("/status/500")
            assert r.ended and r.status == 500, r.describe()
        c.get("/echo").assert_ok()
    assert not log_lines(g, "ejected"), g.stderr_text()


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
    check = dict(srv.requests[0]["headers"])
    assert srv.requests[0]["method"] == "GET", srv.requests[0]
    assert check.get("host") == srv.addr, check  # the port is part of Host


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
        assert 0.4 <= secs < 2.0 * SLOW, "504 after %.2fs (response timeout 500ms)" % secs
        check_sibling(c.run([sib])[0])
        c.get("/echo").assert_ok()  # the connection is fine


# --------------------------------------------------------------------------
# 6. Connect timeout and refusal, with retries


def test_connect_timeout_on_a_lone_server_gives_502(gw):
    with BlackHole() as hole:
        g = gw("--backend", hole.addr, "--backend-connect-timeout", "300ms",
               "--backend-retries", "1")
        with H2Client(g.port) as c:
            r, secs = timed(c, "GET", "/echo")
        assert r.ended and r.status == 502, r.describe()
        assert 0.25 <= secs < 1.0 * SLOW, "one connect attempt of 300 ms, took %.2fs" % secs
    assert not log_lines(g, "retrying"), "no other server to retry on:\n" + g.stderr_text()
    assert log_lines(g, "timed out"), g.stderr_text()


def test_connect_timeout_on_one_server_is_retried_on_the_other(origin, gw):
    with BlackHole() as hole:
        g = gw("--backend", hole.addr, "--backend", addr(origin), "--backend-lb", "round-robin",
               "--backend-connect-timeout", "300ms", "--backend-retries", "1")
        origin.reset_stats()
        slow = []
        with H2Client(g.port) as c:
            for i in range(4):
                r, secs = timed(c, "GET", "/echo?i=%d" % i)
                r.assert_ok()
                if secs >= 0.25:
                    slow.append(secs)
        assert served(origin) == 4
        assert slow and all(s < 1.0 * SLOW for s in slow), (
            "requests that met the black hole should be served by the other server after "
            "one 300 ms connect timeout: %r" % slow)
    assert any("timed out" in l for l in log_lines(g, "retrying on another server")), \
        g.stderr_text()


def test_refused_connect_on_a_lone_server_gives_fast_502(gw):
    g = gw("--backend", "127.0.0.1:%d" % closed_port(), "--backend-retries", "2")
    with H2Client(g.port) as c:
        for q in ("", "?again"):
            r, secs = timed(c, "GET", "/echo" + q)
            assert r.ended and r.status == 502, r.describe()
            assert secs < 1.0 * SLOW, secs
    assert not log_lines(g, "retrying"), g.stderr_text()
    assert not log_lines(g, "ejected"), g.stderr_text()


def test_queue_full_gives_503_at_once(origin, gw):
    from test_admin import admin_get, admin_port
    g = gw("--backend", addr(origin), "--backend-max-connections", "1",
           "--backend-queue-length", "2", "--admin", "127.0.0.1:0")
    origin.reset_stats()
    with H2Client(g.port) as c, H2Client(g.port) as c2:
        slow = c.request("GET", "/delay/1000")
        queued = [c.request("GET", "/echo?q1"), c.request("GET", "/echo?q2")]
        c.flush()
        # The gateway has taken them: the slow one on the connection, two waiting.
        deadline = time.monotonic() + 5 * SLOW
        while "h2gw_queue_length{backend=\"default\"} 2\n" not in admin_get(
                admin_port(g), "/metrics")[1]:
            assert time.monotonic() < deadline, "the two requests never queued"
            time.sleep(0.01)
        t = time.monotonic()
        # The queue is the backend's, not the client connection's.
        extra = [(c, c.request("GET", "/echo?x1")), (c2, c2.request("GET", "/echo?x2"))]
        for cl, sid in extra:
            r = cl.run([sid])[0]
            assert r.ended and r.status == 503, r.describe()
            assert_retry_after(r)
        secs = time.monotonic() - t
        assert secs < 0.5 * SLOW, "the overflow 503s took %.2fs" % secs
        assert not c.responses[slow].done, "the overflow should not wait for the slow request"
        check_sibling(c.run([slow])[0], 1000)
        for r in c.run(queued):
            r.assert_ok()
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
        assert 0.25 <= secs < 1.0 * SLOW, "queue timeout 300ms, 503 after %.2fs" % secs
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


def test_put_60k_to_a_server_resetting_after_the_head_is_replayed(raw, origin, gw):
    """The failing server resets as soon as it has the head: the body is
    still on its way (or not written yet) when the attempt fails, and the
    other server must get all of it."""
    bad = raw(name="bad", head_policy=lambda method, target: "reset")
    g = gw("--backend", bad.addr, "--backend", addr(origin), "--backend-lb", "round-robin",
           "--backend-retries", "1", "--backend-max-fails", "0")
    body = os.urandom(60 * 1024)
    with H2Client(g.port) as c:
        chunks = [body[i:i + 7000] for i in range(0, len(body), 7000)]
        for name, kw in (("whole", {"body": body}), ("chunked", {"chunks": chunks})):
            r, target, good_got = _hit_failing(c, bad, origin, "PUT", "/echo?early-" + name,
                                               **kw)
            r.assert_ok()
            e = r.json()
            assert e["body_length"] == len(body) and e["body_sha256"] == sha256(body), e
            assert good_got == 1
            assert len(bad.with_target(target)) == 1


def test_stale_connection_put_is_replayed_on_a_fresh_one(origin, gw):
    g = gw("--backend", addr(origin), "--backend-max-connections", "1",
           "--backend-idle-timeout", "60s", "--backend-retries", "0")
    body = os.urandom(10 * 1024)
    with H2Client(g.port) as c:
        used = c.get("/echo?warm").json()["connection_id"]
        origin.kill_next()  # the next request on the pooled connection is reset
        r = c.fetch("PUT", "/echo?put", body=body)
        r.assert_ok()
        e = r.json()
        assert e["connection_id"] != used, "the killed connection answered?"
        assert e["body_length"] == len(body) and e["body_sha256"] == sha256(body), e
    assert log_lines(g, "retrying on a fresh connection"), g.stderr_text()


def test_connection_limit_holds_after_a_stale_retry(origin, gw):
    """A stale keep-alive connection replaced by a fresh one (free retry)
    must leave the server's connection count right: with max-connections 1,
    two concurrent requests afterwards share one connection."""
    g = gw("--backend", addr(origin), "--backend-max-connections", "1",
           "--backend-idle-timeout", "60s")
    with H2Client(g.port) as c:
        c.get("/echo?warm").assert_ok()
        origin.kill_next()
        c.get("/echo?stale").assert_ok()  # retried on a fresh connection
        assert origin.stats()["connections_accepted"] == 2
        sids = [c.request("GET", "/delay/300"), c.request("GET", "/delay/300")]
        for r in c.run(sids):
            check_sibling(r, 300)
    s = origin.stats()
    assert s["connections_accepted"] == 2, (
        "--backend-max-connections 1 exceeded after a stale keep-alive retry: the origin "
        "accepted %d connections (want 2: the killed one and its replacement)"
        % s["connections_accepted"])


def test_server_still_usable_after_a_stale_retry_and_idle_close(origin, gw):
    """After a stale keep-alive retry, once the replacement connection has
    been closed as idle, the next request must get a new connection."""
    g = gw("--backend", addr(origin), "--backend-max-connections", "1",
           "--backend-idle-timeout", "1s", "--backend-queue-timeout", "2s")
    with H2Client(g.port) as c:
        c.get("/echo?warm").assert_ok()
        origin.kill_next()
        c.get("/echo?stale").assert_ok()
        s = origin.wait_open_connections(0, 3)
        assert s["open_connections"] == 0, s
        r, secs = timed(c, "GET", "/echo?after-idle")
        assert r.ended and r.status == 200, (
            "after a stale retry and an idle close the server takes no more requests "
            "(%.2fs): %s\ngateway stderr:\n%s" % (secs, r.describe(), g.stderr_text()))


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

    # HTTP/1.1: 413, and the body that was not read is not taken for requests.
    inner = b"GET /echo?smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    for head, data in (
            (b"Content-Length: 20000", (inner * 500)[:20000]),
            (b"Transfer-Encoding: chunked",
             b"".join(b"%x\r\n%s\r\n" % (len(inner) * 100, inner * 100) for _ in range(5))
             + b"0\r\n\r\n")):
        s = socket.create_connection(("127.0.0.1", g.port), timeout=5 * SLOW)
        try:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\n" + data)
            status, headers, _ = read_http1_response(s, 5)
            assert status == 413, (head, status, headers)
            secs, extra = wait_eof(s, 3 * SLOW)
            assert extra == b"", "more after the 413: %r" % extra[:300]
        finally:
            s.close()
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
    assert idle < 1.5 * SLOW, ("Keep-Alive: timeout=1 from the backend: the gateway should close its "
                        "idle connection within about 1 s, closed after %.2fs" % idle)


# --------------------------------------------------------------------------
# 11. REFUSED_STREAM


def _request_as_pooled_connection_is_reset(srv, g, method, target, **kw):
    """Warms one pooled connection, freezes the gateway (SIGSTOP), sends the
    request, has the backend reset the pooled connection, and lets the
    gateway run again: it finds the request and the reset in the same poll.
    Returns the Response."""
    with H2Client(g.port) as c:
        c.get("/warm").assert_ok()
        srv.wait_for(lambda: len(srv.conns) == 1 and srv.conns[0].last_response_at, 2, "warm")
        os.kill(g.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: proc_state(g.pid) == "T", 2, "the gateway to stop")
            sid = c.request(method, target, **kw)
            time.sleep(0.1)
            assert srv.reset_conn(1) == "server-reset"
            time.sleep(0.1)
        finally:
            os.kill(g.pid, signal.SIGCONT)
        r = c.run([sid])[0]
        c.get("/after").assert_ok()  # the client connection and the pool go on
    return r


def test_get_on_a_pooled_connection_reset_under_it_is_retried(raw, gw):
    srv = raw(name="rst")
    g = gw("--backend", srv.addr, "--backend-max-connections", "1",
           "--backend-idle-timeout", "60s")
    r = _request_as_pooled_connection_is_reset(srv, g, "GET", "/get")
    r.assert_ok()
    got = srv.with_target("/get")
    assert len(got) == 1 and got[0]["conn"] == 2, got


def test_post_whose_write_to_a_reset_pooled_connection_failed_is_refused(raw, gw):
    """README: "a reused connection dies before any response byte and the
    request cannot be replayed; the first write had failed" -> the stream is
    refused (RST_STREAM REFUSED_STREAM, RFC 9113 §8.7), so the client knows
    it may send the POST again.

    With the gateway frozen, the POST and the backend's reset of the pooled
    connection wait in the same poll; the gateway handles the client first
    (it became readable first), so it writes the POST to the dead
    connection, and that write fails. Had the gateway seen the reset first,
    it would have dropped the idle connection and sent the POST on a new
    one (200): also right."""
    srv = raw(name="rst")
    g = gw("--backend", srv.addr, "--backend-max-connections", "1",
           "--backend-idle-timeout", "60s")
    r = _request_as_pooled_connection_is_reset(srv, g, "POST", "/post", body=b"once")
    got = srv.with_target("/post")
    if r.ended and r.status == 200:
        assert len(got) == 1 and got[0]["conn"] == 2, got  # on a new connection
        return
    assert not got, "the POST reached the backend and failed: %r" % got
    assert r.reset == REFUSED_STREAM, (
        "the POST provably reached no backend (its write to the reset connection failed), "
        "so it must be refused with REFUSED_STREAM, not answered with an error: %s\n"
        "gateway stderr:\n%s" % (r.describe(), g.stderr_text()))


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
        assert 0.7 <= secs < 2.5 * SLOW, "idle close after %.2fs (client-idle-timeout 1s)" % secs


def test_client_idle_timeout_closes_an_h2_client_that_answers_nothing(origin, gw):
    """An idle HTTP/2 client that never acknowledges the gateway's SETTINGS
    or its PING still gets the final GOAWAY a second after the first (the
    two-step GOAWAY does not wait for the PING forever), and is closed."""
    g = gw("--backend", addr(origin), "--client-idle-timeout", "300ms")
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5 * SLOW)
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        secs, data = wait_eof(s, 10)
        assert secs is not None, "an idle HTTP/2 client that answers nothing is never closed"
        goaways = []
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            if data[3] == 7:
                payload = data[9:9 + length]
                goaways.append((int.from_bytes(payload[:4], "big"), payload[4:8]))
            data = data[9 + length:]
        assert goaways == [(2**31 - 1, b"\0\0\0\0"), (0, b"\0\0\0\0")], goaways
    finally:
        s.close()


def test_client_idle_timeout_h1_keepalive_close(origin, gw):
    g = gw("--backend", addr(origin), "--client-idle-timeout", "1s")
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        status, _, _ = http1(g.port, "GET", "/echo", host="gw", sock=s)
        assert status == 200
        secs, extra = wait_eof(s, 4)
        assert secs is not None, "the idle HTTP/1.1 connection was not closed"
        assert extra == b"", extra
        assert 0.7 <= secs < 2.5 * SLOW, "idle close after %.2fs (client-idle-timeout 1s)" % secs
    finally:
        s.close()


def test_client_idle_timeout_closes_a_connection_that_sends_nothing(origin, gw):
    """A client that connects and never sends a byte holds a connection
    (and a slot of --max-connections) like any idle one: it is closed after
    the idle timeout too."""
    g = gw("--backend", addr(origin), "--client-idle-timeout", "1s")
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        secs, data = wait_eof(s, 3)
        assert secs is not None, (
            "--client-idle-timeout 1s: a connection that sent nothing is still open after 3 s")
        assert secs < 2.5 * SLOW, secs
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
        assert time.monotonic() - t < 2.5 * SLOW
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        status, _, body = http1(g.port, "GET", "/delay/2000", host="gw", sock=s)
        assert status == 200 and body == b"delayed 2000\n"
    finally:
        s.close()


# --------------------------------------------------------------------------
# 13. A server given by name


def test_server_given_by_name(origin, gw):
    g = gw("--backend", "localhost:%d" % origin.port, "--backend-resolve-interval", "200ms")
    g.wait_log("localhost:%d: resolved" % origin.port, timeout=5)
    with H2Client(g.port) as c:
        r = c.get("/echo")
        r.assert_ok()
        assert r.json()["target"] == "/echo"
        # re-resolved every 200 ms meanwhile: no request notices
        end = time.monotonic() + 1.0
        n = 1
        while time.monotonic() < end:
            c.get("/echo?%d" % n).assert_ok()
            n += 1
            time.sleep(0.02)
    assert served(origin) == n


def test_server_given_by_name_first_request_waits_for_resolution(origin, gw, tmp_path,
                                                                 monkeypatch):
    """The gateway says it is listening before a server given by name is
    resolved. A request in that moment should wait for the address (as it
    would wait for a connection), not be told that every server is down.
    A resolver that takes 500 ms (getaddrinfo delayed through LD_PRELOAD)
    makes the moment long enough to hit every time; with a fast resolver
    the same race shows up now and then right after start."""
    shim = build_gai_delay_shim(tmp_path)
    if shim is None:
        pytest.skip("no C compiler for the getaddrinfo shim")
    monkeypatch.setenv("LD_PRELOAD", shim)
    monkeypatch.setenv("H2GW_TEST_GAI_DELAY_MS", "500")
    if SANITIZED:
        # The shim comes before the ASan runtime in the library list.
        opts = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        monkeypatch.setenv("ASAN_OPTIONS", opts + ":verify_asan_link_order=0")
    g = gw("--backend", "localhost:%d" % origin.port)
    with H2Client(g.port) as c:
        r, secs = timed(c, "GET", "/echo")
        assert r.ended and r.status == 200, (
            "a request sent while the server's name is being resolved (just after start) "
            "got %s after %.2fs: %s\ngateway stderr:\n%s"
            % (r.status, secs, r.describe(), g.stderr_text()))
        c.get("/echo?after").assert_ok()
