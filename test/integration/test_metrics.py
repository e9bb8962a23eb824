"""GET /metrics on the admin listener (issue 11): every line parses with a
real scraper's parser (prometheus_client's), and the counters move by
exactly what the test did."""

import math
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytest.register_assert_rewrite("tlsutil")

from backendutil import http1
from conftest import SLOW, H2Client, closed_port
from test_admin import admin_get, admin_port
from tlsutil import client_context, tls_connect, tls_flags

# The h2gw and pki fixtures.
pytest_plugins = ["tlsutil"]

# One sample line of the text format 0.0.4: a name, optional labels, a value.
SAMPLE_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})?'
                       r' [-+]?([0-9.eE+-]+|NaN|\+Inf|-Inf)$')


class Scrape:
    """One /metrics page, parsed by prometheus_client and checked line by
    line; samples are looked up by name and labels."""

    def __init__(self, port):
        status, text = admin_get(port, "/metrics")
        assert status == 200, (status, text)
        self.text = text
        self.samples = {}
        types = {}
        helps = set()
        for line in text.splitlines():
            if line.startswith("# HELP "):
                helps.add(line.split(" ")[2])
            elif line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ")
                assert name not in types, "TYPE twice for %s" % name
                types[name] = typ
            else:
                assert SAMPLE_RE.match(line), "not a sample line: %r" % line
        assert set(types) == helps, "HELP and TYPE differ: %r" % (set(types) ^ helps)
        for name, typ in types.items():
            assert name.startswith("h2gw_"), name
            if typ == "counter":
                assert name.endswith("_total"), name
            if typ == "histogram":
                assert name.endswith("_seconds"), name
        for fam in text_string_to_metric_families(text):
            assert fam.type in ("counter", "gauge", "histogram"), (fam.name, fam.type)
            for s in fam.samples:
                key = (s.name, frozenset(s.labels.items()))
                assert key not in self.samples, "duplicate sample %r" % (key,)
                assert not math.isnan(s.value), s
                self.samples[key] = s.value
        self._check_histograms()

    def _check_histograms(self):
        """Buckets are cumulative, end in +Inf, and +Inf equals _count."""
        series = {}
        for (name, labels), v in self.samples.items():
            if name.endswith("_bucket"):
                d = dict(labels)
                le = d.pop("le")
                base = (name[:-7], frozenset(d.items()))
                series.setdefault(base, []).append((float(le), v))
        assert series, "no histograms"
        for (base, labels), buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), (base, buckets)
            assert buckets[-1][0] == float("inf"), (base, buckets)
            assert self.samples[(base + "_count", labels)] == counts[-1], base
            assert (base + "_sum", labels) in self.samples, base

    def get(self, name, **labels):
        key = (name, frozenset(labels.items()))
        assert key in self.samples, "no sample %s%r in:\n%s" % (name, labels, self.text)
        return self.samples[key]

    def total(self, name, **labels):
        """The sum over every series of name whose labels include these."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)


def start(gateway, backend, *flags):
    g = gateway(backend, "--admin", "127.0.0.1:0", *flags)
    return g, admin_port(g)


def wait_for(port, predicate, what, timeout=5):
    """Scrapes until predicate(scrape) holds; returns that scrape."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        m = Scrape(port)
        if predicate(m):
            return m
        if time.monotonic() > deadline:
            raise AssertionError("metrics never showed %s:\n%s" % (what, m.text))
        time.sleep(0.05)


REQ = "h2gw_requests_total"


def test_every_line_parses_and_names_follow_the_conventions(origin, gateway):
    g, port = start(gateway, origin)
    m = Scrape(port)
    assert m.get("h2gw_build_info", version=re.search(
        r'version="([^"]+)"', m.text).group(1)) == 1
    for cls in ("1xx", "2xx", "3xx", "4xx", "5xx", "none"):
        for proto in ("h2", "http/1.1"):
            assert m.get(REQ, backend="default", code_class=cls, protocol=proto) == 0
    for u in range(8):
        assert m.get("h2gw_queue_wait_seconds_count", urgency=str(u)) == 0
    assert m.get("h2gw_errors_total", cause="connect_failed") == 0
    assert m.get("h2gw_errors_total", cause="response_timeout") == 0
    assert m.get("h2gw_config_reloads_total", result="ok") == 0
    assert m.get("h2gw_config_reloads_total", result="failed") == 0
    # Never proxied, and other methods are refused.
    assert origin.stats()["requests"] == 0
    assert admin_get(port, "/metrics", "POST")[0] == 405


def test_requests_move_the_counters_by_exactly_what_was_done(origin, gateway):
    g, port = start(gateway, origin)
    before = Scrape(port)
    with H2Client(g.port) as c:
        for r in c.run([c.request("GET", "/bytes/1000") for _ in range(5)]):
            r.assert_ok()
    for _ in range(3):
        status, _, body = http1(g.port, "GET", "/bytes/700", "localhost")
        assert status == 200 and len(body) == 700
    status, _, _ = http1(g.port, "POST", "/echo", "localhost", body=b"x" * 1234)
    assert status == 200
    after = wait_for(port, lambda m: m.get("h2gw_client_streams", protocol="http/1.1") == 0 and
                     m.total(REQ) - before.total(REQ) >= 9, "9 requests")

    def delta(name, **labels):
        return after.get(name, **labels) - before.get(name, **labels)

    assert delta(REQ, backend="default", code_class="2xx", protocol="h2") == 5
    assert delta(REQ, backend="default", code_class="2xx", protocol="http/1.1") == 4
    assert after.total(REQ) - before.total(REQ) == 9
    assert delta("h2gw_request_duration_seconds_count", backend="default") == 9
    assert delta("h2gw_request_duration_seconds_sum", backend="default") > 0
    assert (after.total("h2gw_queue_wait_seconds_count") -
            before.total("h2gw_queue_wait_seconds_count")) == 9
    # The default urgency is 3.
    assert delta("h2gw_queue_wait_seconds_count", urgency="3") == 9
    assert delta("h2gw_client_connections_total") == 5  # one h2, four HTTP/1.1
    assert delta("h2gw_sent_bytes_total") >= 5 * 1000 + 3 * 700
    assert delta("h2gw_received_bytes_total") == 1234
    # Backend connections: opened once, then reused (requests one at a time).
    connects = delta("h2gw_upstream_connects_total", backend="default")
    reuses = delta("h2gw_upstream_reuses_total", backend="default")
    assert connects >= 1 and connects + reuses == 9, (connects, reuses)
    assert delta("h2gw_upstream_connect_duration_seconds_count", backend="default") == connects
    assert after.total("h2gw_errors_total") == before.total("h2gw_errors_total")
    # Everything is over: nothing open but the idle pooled connection(s).
    assert after.get("h2gw_client_streams", protocol="h2") == 0
    assert after.get("h2gw_upstream_connections", backend="default", state="busy") == 0
    assert after.get("h2gw_upstream_connections", backend="default", state="connecting") == 0
    assert after.get("h2gw_upstream_connections", backend="default", state="idle") == connects
    assert after.get("h2gw_queue_length", backend="default") == 0


def test_a_502_from_a_closed_backend_counts_as_5xx_and_connect_failed(gateway):
    g, port = start(gateway, closed_port())
    before = Scrape(port)
    with H2Client(g.port) as c:
        assert c.get("/echo").status == 502
    status, _, _ = http1(g.port, "GET", "/echo", "localhost")
    assert status == 502
    after = wait_for(port, lambda m: m.total(REQ) - before.total(REQ) >= 2, "2 requests")
    assert after.get(REQ, backend="default", code_class="5xx", protocol="h2") == 1
    assert after.get(REQ, backend="default", code_class="5xx", protocol="http/1.1") == 1
    assert after.total(REQ) - before.total(REQ) == 2
    assert after.get("h2gw_errors_total", cause="connect_failed") == 2
    assert after.total("h2gw_errors_total") - before.total("h2gw_errors_total") == 2
    assert after.get("h2gw_upstream_connect_failures_total", backend="default") == 2
    assert after.get("h2gw_upstream_connect_duration_seconds_count", backend="default") == 0
    assert after.get("h2gw_upstream_connections", backend="default", state="connecting") == 0


def test_queue_wait_by_urgency_shows_the_scheduler(origin, gateway):
    """One backend connection: a slow request holds it while a u=6 and then
    a u=1 request wait. The u=1 one goes first, so it waited about one slow
    request, the u=6 one about two."""
    # Aging (a request older than priority_max_wait goes first) is kept out
    # of the way of the slow blocker on a slow machine.
    g, port = start(gateway, origin, "--backend-max-connections", "1",
                    "--priority-max-wait", "30s")
    c = H2Client(g.port)
    # The blocker lasts long enough for the two others to queue behind it
    # however late this client sends them.
    first = c.request("GET", "/delay/%d" % (800 * SLOW))
    deadline = time.monotonic() + 3 * SLOW
    while origin.stats()["requests"] < 1 and time.monotonic() < deadline:
        c.pump(0.02)
    low = c.request("GET", "/delay/400", headers=[("priority", "u=6")])
    high = c.request("GET", "/delay/400", headers=[("priority", "u=1")])
    waiting = wait_for(port, lambda m: m.get("h2gw_queue_length", backend="default") == 2,
                       "two waiting requests")
    assert waiting.get("h2gw_upstream_connections", backend="default", state="busy") == 1
    assert waiting.get("h2gw_client_streams", protocol="h2") == 3
    for r in c.run([first, low, high], timeout=10):
        r.assert_ok()
    c.close()
    m = wait_for(port, lambda m: m.total(REQ) == 3, "3 requests")
    assert m.get("h2gw_queue_length", backend="default") == 0
    assert m.get("h2gw_queue_wait_seconds_count", urgency="1") == 1
    assert m.get("h2gw_queue_wait_seconds_count", urgency="6") == 1
    assert m.get("h2gw_queue_wait_seconds_count", urgency="3") == 1
    wait_high = m.get("h2gw_queue_wait_seconds_sum", urgency="1")
    wait_low = m.get("h2gw_queue_wait_seconds_sum", urgency="6")
    # The u=6 request also waited for the u=1 one (400 ms at the origin).
    assert wait_high < wait_low, (wait_high, wait_low)
    assert wait_low - wait_high > 0.3, (wait_high, wait_low)
    # The u=1 request waited for the blocker: its wait is in a bucket above 0.25 s.
    assert m.get("h2gw_queue_wait_seconds_bucket", urgency="1", le="0.25") == 0
    assert m.get("h2gw_queue_wait_seconds_bucket", urgency="1", le="+Inf") == 1


def test_two_workers_are_summed(origin, gateway):
    """Twenty connections spread by the kernel over two workers: the page
    counts all twenty, and each worker's own pool shows one idle
    connection (two in all), which only the sum over workers can show."""
    g, port = start(gateway, origin, "--workers", "2")
    for _ in range(20):
        status, _, _ = http1(g.port, "GET", "/echo", "localhost")
        assert status == 200
    m = wait_for(port, lambda m: m.get(REQ, backend="default", code_class="2xx",
                                       protocol="http/1.1") == 20, "20 requests")
    assert m.get("h2gw_client_connections_total") == 20
    assert m.get("h2gw_request_duration_seconds_count", backend="default") == 20
    # Sequential requests: each worker opened one connection and reused it.
    assert m.get("h2gw_upstream_connects_total", backend="default") == 2
    assert m.get("h2gw_upstream_connections", backend="default", state="idle") == 2


def test_gauges_return_to_zero(origin, gateway):
    g, port = start(gateway, origin, "--backend-idle-timeout", "300ms")
    c = H2Client(g.port)
    sid = c.request("GET", "/delay/500")
    m = wait_for(port, lambda m: m.get("h2gw_upstream_connections", backend="default",
                                       state="busy") == 1, "a busy connection")
    assert m.get("h2gw_client_streams", protocol="h2") == 1
    assert m.get("h2gw_client_connections", protocol="h2") == 1
    assert m.get("h2gw_upstream_connections", backend="default", state="idle") == 0
    c.run([sid])[0].assert_ok()
    m = wait_for(port, lambda m: m.get("h2gw_upstream_connections", backend="default",
                                       state="idle") == 1, "the connection idle")
    assert m.get("h2gw_upstream_connections", backend="default", state="busy") == 0
    assert m.get("h2gw_client_streams", protocol="h2") == 0
    c.close()
    # The idle timeout closes the pooled connection; the client is gone.
    m = wait_for(port, lambda m: m.get("h2gw_upstream_connections", backend="default",
                                       state="idle") == 0 and
                 m.total("h2gw_client_connections") == 0, "everything closed")
    assert m.get("h2gw_upstream_connections", backend="default", state="busy") == 0
    assert m.get("h2gw_upstream_connections", backend="default", state="connecting") == 0
    assert m.get("h2gw_upstream_connects_total", backend="default") == 1


def test_client_reset_counts_rst_and_a_cancelled_request(origin, gateway):
    g, port = start(gateway, origin)
    c = H2Client(g.port)
    sid = c.request("GET", "/delay/2000")
    wait_for(port, lambda m: m.get("h2gw_upstream_connections", backend="default",
                                   state="busy") == 1, "the request at the backend")
    c.reset_stream(sid)
    m = wait_for(port, lambda m: m.total(REQ) == 1, "the request ended")
    assert m.get("h2gw_rst_stream_received_total") == 1
    assert m.get("h2gw_rst_stream_sent_total") == 0
    assert m.get(REQ, backend="default", code_class="none", protocol="h2") == 1
    assert m.get("h2gw_errors_total", cause="client_gone") == 1
    assert m.get("h2gw_client_streams", protocol="h2") == 0
    c.close()


def test_connections_over_the_limit_are_counted(origin, gateway):
    g, port = start(gateway, origin, "--max-connections", "1")
    c = H2Client(g.port)
    c.get("/echo").assert_ok()
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5 * SLOW)
    s.settimeout(5 * SLOW)
    assert s.recv(100) == b""  # accepted and closed at once
    s.close()
    m = wait_for(port, lambda m: m.get("h2gw_flood_refusals_total") == 1, "one refusal")
    assert m.get("h2gw_client_connections_total") == 1
    assert m.get("h2gw_client_connections", protocol="h2") == 1
    c.close()


def not_after(path):
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path],
                         capture_output=True, text=True, check=True).stdout
    return ssl.cert_time_to_seconds(out.strip().split("=", 1)[1])


def test_tls_handshakes_resumptions_expiry_and_reloads(h2gw, pki, origin, tmp_path):
    cert, key = str(tmp_path / "site.crt"), str(tmp_path / "site.key")
    shutil.copyfile(pki.crt("a"), cert)
    shutil.copyfile(pki.key("a"), key)
    g = h2gw("--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
             *tls_flags(pki, "b"), "--backend", "127.0.0.1:%d" % origin.port,
             "--admin", "127.0.0.1:0", "--log-level", "info")
    port = admin_port(g)
    m = Scrape(port)
    assert m.get("h2gw_tls_certificate_expiry_timestamp_seconds",
                 subject="CN=a.test") == not_after(pki.crt("a"))
    assert m.get("h2gw_tls_certificate_expiry_timestamp_seconds",
                 subject="CN=b.test") == not_after(pki.crt("b"))

    ctx = client_context(pki, alpn=("http/1.1",), max_version=ssl.TLSVersion.TLSv1_2)
    s = tls_connect(g.port, ctx, server_name="a.test")
    session = s.session
    s.close()
    s = tls_connect(g.port, ctx, server_name="a.test", session=session)
    assert s.session_reused
    s.close()
    bad = socket.create_connection(("127.0.0.1", g.port), timeout=5 * SLOW)
    bad.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64)
    bad.settimeout(5 * SLOW)
    try:
        while bad.recv(4096):
            pass
    except OSError:
        pass
    bad.close()
    m = wait_for(port, lambda m: m.get("h2gw_tls_handshake_failures_total") == 1,
                 "one failed handshake")
    assert m.get("h2gw_tls_handshakes_total") == 2
    assert m.get("h2gw_tls_resumptions_total") == 1
    assert m.get("h2gw_client_connections_total") == 3

    g.sighup()
    m = wait_for(port, lambda m: m.get("h2gw_config_reloads_total", result="ok") == 1,
                 "a reload")
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    g.sighup()
    m = wait_for(port, lambda m: m.get("h2gw_config_reloads_total", result="failed") == 1,
                 "a failed reload")
    assert m.get("h2gw_config_reloads_total", result="ok") == 1


def h2_frame(typ, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", sid) + \
        payload


def test_continuation_flood_is_counted(origin, gateway):
    """HEADERS followed by more CONTINUATION frames than nghttp2 allows
    (CVE-2024-27316): the session ends, and it counts as a flood."""
    g, port = start(gateway, origin)
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5 * SLOW)
    data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"")
    data += h2_frame(1, 0, 1, b"\x82")  # HEADERS :method GET, no END_HEADERS
    data += b"".join(h2_frame(9, 0, 1, b"\x84") for _ in range(20))  # CONTINUATION :path /
    s.sendall(data)
    s.settimeout(5 * SLOW)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
    m = wait_for(port, lambda m: m.get("h2gw_flood_refusals_total") == 1, "one flood")
    assert m.total("h2gw_client_connections") == 0
    # The stream whose head never ended is counted as the access log has
    # it: no backend, no status.
    assert m.total(REQ) == 1
    assert m.get(REQ, backend="-", code_class="none", protocol="h2") == 1
    assert origin.stats()["requests"] == 0


def test_ejection_retry_and_health_checks_are_counted(origin, gateway):
    """Two servers, one refusing: its first failure ejects it (max_fails 1)
    and the request is retried on the other, so every client gets 200.
    Active checks count passes and failures per backend."""
    dead = closed_port()
    g, port = start(gateway, origin, "--backend", "127.0.0.1:%d" % dead,
                    "--backend-max-fails", "1", "--backend-health-check-path", "/echo",
                    "--backend-health-check-interval", "100ms",
                    # Only the passive check may take the dead server out here.
                    "--backend-unhealthy-threshold", "100")
    with H2Client(g.port) as c:
        for _ in range(4):
            c.get("/echo").assert_ok()
    m = wait_for(port, lambda m: m.get("h2gw_health_checks_total", backend="default",
                                       result="pass") >= 1 and
                 m.get("h2gw_health_checks_total", backend="default", result="fail") >= 1,
                 "a passed and a failed health check")
    assert m.get(REQ, backend="default", code_class="2xx", protocol="h2") == 4
    assert m.total(REQ) == 4
    assert m.get("h2gw_backend_ejections_total", backend="default") == 1
    assert m.get("h2gw_upstream_retries_total", backend="default") >= 1
    assert m.get("h2gw_upstream_connect_failures_total", backend="default") >= 1
    # The failed attempts were retried: no request ended in an error.
    assert m.total("h2gw_errors_total") == 0


def test_glitch_budget_goaway_is_counted_as_a_flood(origin, gateway):
    """300 PINGs at once spend the glitch budget: GOAWAY(ENHANCE_YOUR_CALM)
    ends the connection and counts in h2gw_flood_refusals_total."""
    g, port = start(gateway, origin)
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5 * SLOW)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"") +
              h2_frame(6, 0, 0, b"12345678") * 300)
    s.settimeout(5 * SLOW)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    goaways = []
    while len(got) >= 9:
        n = struct.unpack(">I", b"\0" + got[:3])[0]
        if got[3] == 7 and n >= 8:  # GOAWAY: last stream id, error code
            goaways.append(struct.unpack(">I", got[13:17])[0])
        got = got[9 + n:]
    assert goaways == [0xB], goaways  # ENHANCE_YOUR_CALM
    m = wait_for(port, lambda m: m.get("h2gw_flood_refusals_total") == 1, "one flood")
    assert m.total("h2gw_client_connections") == 0


def write_conf(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, str(path))


def test_counters_follow_backends_by_name_across_a_reload(origin, gateway, tmp_path):
    """A reload adds backend "api" in front of "default" and routes /status/ to
    it: "default" keeps its counts, "api" gets its own, the reload counts
    once (two workers), and a broken file counts as failed."""
    conf = tmp_path / "h2gw.conf"
    base = "[backend default]\nserver = 127.0.0.1:%d\n" % origin.port
    write_conf(conf, base)
    g = gateway(origin, "--config", str(conf), "--admin", "127.0.0.1:0", "--workers", "2")
    port = admin_port(g)
    with H2Client(g.port) as c:
        for _ in range(3):
            c.get("/echo").assert_ok()
    write_conf(conf, "[backend api]\nserver = 127.0.0.1:%d\n" % origin.port + base +
               "[route api]\npath_prefix = /status/\nbackend = api\n")
    g.proc.proc.send_signal(signal.SIGHUP)
    wait_for(port, lambda m: m.get("h2gw_config_reloads_total", result="ok") == 1, "a reload")
    with H2Client(g.port) as c:
        for _ in range(2):
            c.get("/status/200").assert_ok()
        c.get("/echo").assert_ok()
    m = wait_for(port, lambda m: m.total(REQ) == 6, "6 requests")
    assert m.get(REQ, backend="default", code_class="2xx", protocol="h2") == 4
    assert m.get(REQ, backend="api", code_class="2xx", protocol="h2") == 2
    assert m.get("h2gw_request_duration_seconds_count", backend="api") == 2
    assert m.get("h2gw_queue_length", backend="api") == 0
    write_conf(conf, "[backend default]\nserver = nonsense\n")
    g.proc.proc.send_signal(signal.SIGHUP)
    m = wait_for(port, lambda m: m.get("h2gw_config_reloads_total", result="failed") == 1,
                 "a failed reload")
    assert m.get("h2gw_config_reloads_total", result="ok") == 1
