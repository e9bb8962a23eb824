"""HTTPS to backends (tls = on): the gateway verifies the backend's
certificate, sends SNI, and proxies over TLS. The TLS backend here is a
second h2gw terminating TLS in front of the test origin."""

import pytest

pytest.register_assert_rewrite("tlsutil")

from conftest import H2Client, sha256, pattern_sha256
from tlsutil import tls_flags

pytest_plugins = ["tlsutil"]


def tls_front(h2gw, pki, origin, name="a"):
    """A TLS-terminating gateway in front of the origin: the 'HTTPS backend'."""
    return h2gw("--listen", "127.0.0.1:0", *tls_flags(pki, name),
                "--backend", "127.0.0.1:%d" % origin.port)


def test_https_backend_verified(h2gw, pki, origin):
    front = tls_front(h2gw, pki, origin)
    gw = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % front.port,
              "--backend-tls", "on", "--backend-tls-sni", "a.test",
              "--backend-tls-ca-file", pki.crt("ca"))
    with H2Client(gw.port) as c:
        r = c.get("/echo?x=1")
        r.assert_ok()
        assert r.json()["target"] == "/echo?x=1"
        r = c.get("/bytes/3000000")
        r.assert_ok()
        assert sha256(bytes(r.body)) == pattern_sha256(3000000)
        up = c.fetch("POST", "/echo", body=b"y" * 200000)
        up.assert_ok()
        assert up.json()["body_sha256"] == sha256(b"y" * 200000)
    # Keep-alive works over TLS too: one backend connection for all of them.
    assert origin.stats()["connections_accepted"] <= 2


def test_https_backend_wrong_name_is_refused(h2gw, pki, origin):
    front = tls_front(h2gw, pki, origin)
    gw = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % front.port,
              "--backend-tls", "on", "--backend-tls-sni", "b.test",
              "--backend-tls-ca-file", pki.crt("ca"), "--backend-max-fails", "0")
    with H2Client(gw.port) as c:
        r = c.get("/echo")
        assert r.status == 502, r.describe()
    assert "certificate verify failed" in gw.stderr_text()


def test_https_backend_untrusted_ca_is_refused_unless_verify_off(h2gw, pki, origin):
    front = tls_front(h2gw, pki, origin)
    strict = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % front.port,
                  "--backend-tls", "on", "--backend-tls-sni", "a.test",
                  "--backend-tls-ca-file", pki.crt("rogueca"), "--backend-max-fails", "0")
    with H2Client(strict.port) as c:
        assert c.get("/echo").status == 502
    lax = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % front.port,
               "--backend-tls", "on", "--backend-tls-verify", "off")
    with H2Client(lax.port) as c:
        c.get("/echo").assert_ok()


def test_health_checks_speak_tls_to_https_backends(h2gw, pki, origin):
    """Active checks of a tls = on backend go over TLS: a passing check path
    keeps the server up, a failing one takes it down (503 at once)."""
    import time

    front = tls_front(h2gw, pki, origin)
    common = ["--backend", "127.0.0.1:%d" % front.port, "--backend-tls", "on",
              "--backend-tls-sni", "a.test", "--backend-tls-ca-file", pki.crt("ca"),
              "--backend-health-check-interval", "100ms", "--backend-unhealthy-threshold", "2",
              "--log-level", "info"]
    good = h2gw("--listen", "127.0.0.1:0", "--backend-health-check-path", "/status/200", *common)
    bad = h2gw("--listen", "127.0.0.1:0", "--backend-health-check-path", "/status/503", *common)
    time.sleep(1.5)
    with H2Client(good.port) as c:
        c.get("/echo").assert_ok()
    assert "marked down" not in good.stderr_text()
    bad.wait_log("marked down", timeout=5)
    with H2Client(bad.port) as c:
        r = c.get("/echo")
        assert r.status == 503, r.describe()
        assert any(k == b"retry-after" for k, _ in r.headers), r.describe()
