"""Several workers (--workers N): each its own loop and listening socket on
the same port (SO_REUSEPORT). Clients see one gateway: every request
answered, TLS sessions resumed whichever worker a connection lands on, and
one SIGTERM drains them all (the fixtures check exit 0 and no sanitizer
report)."""

import ssl

import pytest

pytest.register_assert_rewrite("tlsutil")

from conftest import H2Client, sha256, pattern_sha256
from tlsutil import client_context, tls_connect, tls_flags

pytest_plugins = ["tlsutil"]


def test_requests_over_many_connections(h2gw, origin):
    gw = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
              "--workers", "3", "--backend-max-connections", "4")
    clients = [H2Client(gw.port) for _ in range(24)]
    sids = [(c, c.request("GET", "/bytes/%d" % (1000 + i))) for i, c in enumerate(clients)]
    for i, (c, sid) in enumerate(sids):
        r = c.run([sid])[0]
        r.assert_ok()
        assert sha256(bytes(r.body)) == pattern_sha256(1000 + i)
    for c in clients:
        c.close()
    # Each worker has its own pool: at most workers x max-connections.
    assert origin.stats()["connections_accepted"] <= 12


def test_tls_sessions_resume_across_workers(h2gw, origin, pki):
    """Generated ticket keys derive from one process secret, so a session
    from one worker resumes on any other."""
    gw = h2gw("--listen", "127.0.0.1:0", *tls_flags(pki, "a"),
              "--backend", "127.0.0.1:%d" % origin.port, "--workers", "4")
    ctx = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
    first = tls_connect(gw.port, ctx, server_name="a.test")
    session = first.session
    first.close()
    resumed = 0
    for _ in range(16):
        s = tls_connect(gw.port, ctx, server_name="a.test", session=session)
        resumed += s.session_reused
        s.close()
    # The kernel spreads the 16 connections over 4 workers by their source
    # ports: all of them must resume, not only the ones on the first worker.
    assert resumed == 16, resumed
