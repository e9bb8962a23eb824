"""Bounded memory with a client that stops reading; graceful drain on SIGTERM."""

import select
import signal
import time

from conftest import SANITIZED, SLOW, pattern_sha256, sha256

MiB = 1024 * 1024


def test_slow_reader_memory_is_bounded(origin, gateway):
    gw = gateway(origin)
    # Warm up so that lazily allocated buffers are already counted.
    with gw.client() as c:
        r = c.get("/bytes/4000000")
        r.assert_ok()
        assert sha256(bytes(r.body)) == pattern_sha256(4000000)
    before = gw.rss_kib()

    # Huge HTTP/2 windows, so only the gateway's own buffering limits can
    # stop it; a small socket receive buffer, so the kernel holds little.
    slow = gw.client(window=2**31 - 1, rcvbuf=64 * 1024)
    slow.request("GET", "/bytes/104857600")
    # From here on the client never reads.
    peak = before
    deadline = time.monotonic() + (4 if SANITIZED else 3)
    while time.monotonic() < deadline:
        peak = max(peak, gw.rss_kib())
        time.sleep(0.05)
    growth_mib = (peak - before) / 1024
    bound_mib = 64 if SANITIZED else 32
    assert growth_mib < bound_mib, (
        "gateway RSS grew by %.1f MiB (from %d KiB to %d KiB) for one client that does not "
        "read a 100 MiB response; want < %d MiB" % (growth_mib, before, peak, bound_mib))
    # The response did start: bytes are waiting in the client's socket.
    readable, _, _ = select.select([slow.sock], [], [], 5 * SLOW)
    assert readable, "the gateway sent nothing to the slow reader"
    slow.close()

    # The gateway is still fine.
    with gw.client() as c:
        c.get("/echo?after-slow-reader").assert_ok()
        r = c.get("/bytes/100000")
        r.assert_ok()
        assert sha256(bytes(r.body)) == pattern_sha256(100000)
    gw.assert_alive()


def test_sigterm_drains_inflight_request(origin, gateway):
    gw = gateway(origin)
    c = gw.client()
    sid = c.request("GET", "/delay/1500")
    # wait until the request reached the origin
    deadline = time.monotonic() + 5 * SLOW
    while origin.stats()["requests"] < 1:
        assert time.monotonic() < deadline, "request never reached the origin"
        time.sleep(0.02)
    gw.proc.proc.send_signal(signal.SIGTERM)
    r = c.run([sid], timeout=10)[0]
    r.assert_ok()
    assert bytes(r.body) == b"delayed 1500\n"
    # A graceful drain announces itself with GOAWAY.
    c.run_until(lambda: c.goaway is not None or c.eof, timeout=10, what="GOAWAY or close")
    c.close()
    # No second signal: the first one must be enough.
    code = gw.proc.wait(15)
    assert code == 0, "exit %r after SIGTERM; stderr:\n%s" % (code, gw.stderr_text())


def test_backend_response_timeout_gives_504(origin, gateway):
    gw = gateway(origin, "--backend-response-timeout", "500ms")
    with gw.client() as c:
        slow = c.request("GET", "/delay/5000")
        fast = c.request("GET", "/delay/100")
        r, f = c.run([slow, fast], timeout=10)
        f.assert_ok()
        assert bytes(f.body) == b"delayed 100\n"
        assert r.ended and r.status == 504, r.describe()
        c.get("/echo?after").assert_ok()


def test_advertised_settings(origin, gateway):
    gw = gateway(origin, "--max-concurrent-streams", "7", "--max-header-list-size", "4k",
                 "--request-buffer-size", "128k")
    with gw.client() as c:
        c.get("/echo").assert_ok()  # the server's SETTINGS have arrived
        rs = c.conn.remote_settings
        assert rs.max_concurrent_streams == 7
        assert rs.max_header_list_size == 4096
        assert rs.initial_window_size == 128 * 1024
        sids = [c.request("GET", "/delay/300", headers=[("x-tag", str(i))]) for i in range(7)]
        for i, r in enumerate(c.run(sids)):
            r.assert_ok()
            assert bytes(r.body) == b"delayed 300 tag=%d\n" % i
