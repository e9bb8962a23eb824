"""The admin listener (issue 11): /livez, /readyz, drain_delay and
shutdown_timeout."""

import itertools
import re
import signal
import socket
import subprocess
import time

from conftest import H2GW_BIN, SLOW, H2Client

ADMIN_RE = re.compile(rb"admin listening on 127\.0\.0\.1:(\d+)")


def admin_port(g, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        m = ADMIN_RE.search(g.proc.stdout)
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError("no 'admin listening on' line: %r" % g.proc.stdout)


def admin_get(port, path, method="GET"):
    """One request on a fresh connection: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: admin\r\n\r\n" % (method.encode(), path.encode()))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"Connection: close" in head, head
    return status, body.decode()


def start(gateway, backend, *flags):
    g = gateway(backend, "--admin", "127.0.0.1:0", "--log-level", "info", *flags)
    return g, admin_port(g)


def test_livez_and_readyz_ok(origin, gateway):
    g, port = start(gateway, origin)
    assert admin_get(port, "/livez") == (200, "ok\n")
    assert admin_get(port, "/readyz") == (200, "ready\n")
    assert admin_get(port, "/nope")[0] == 404
    assert admin_get(port, "/livez", "POST")[0] == 405
    # HEAD, as load balancers' checks send it: GET's status, no body.
    assert admin_get(port, "/livez", "HEAD") == (200, "")
    assert admin_get(port, "/readyz", "HEAD") == (200, "")
    # Never proxied: the origin saw nothing.
    assert origin.stats()["requests"] == 0


def test_livez_with_several_workers(origin, gateway):
    g, port = start(gateway, origin, "--workers", "3")
    time.sleep(0.6)
    assert admin_get(port, "/livez") == (200, "ok\n")


def test_readyz_fails_when_backend_has_no_usable_server(origin, gateway):
    g, port = start(gateway, origin, "--backend-health-check-path", "/status/503",
                    "--backend-health-check-interval", "200ms",
                    "--backend-unhealthy-threshold", "1")
    deadline = time.monotonic() + 5 * SLOW
    while "marked down" not in g.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "marked down" in g.stderr_text(), g.stderr_text()
    status, body = admin_get(port, "/readyz")
    assert status == 503
    assert body == "backend default has no usable server\n"
    assert admin_get(port, "/livez") == (200, "ok\n")


def wait_readyz(port, timeout=2):
    """/readyz once it is no longer 200 (the signal is handled on the loop,
    which a loaded machine may run a little later): (status, body)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        got = admin_get(port, "/readyz")
        if got[0] != 200 or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def test_readyz_fails_at_once_on_sigterm_and_listeners_stay_open_for_the_delay(origin, gateway):
    g, port = start(gateway, origin, "--drain-delay", "2s")
    assert admin_get(port, "/readyz")[0] == 200
    g.proc.proc.send_signal(signal.SIGTERM)
    assert wait_readyz(port) == (503, "draining\n")
    # The proxy still accepts and serves during the delay.
    with H2Client(g.port) as c:
        c.get("/echo").assert_ok()
    assert g.proc.wait(10 * SLOW) == 0


def test_in_flight_request_finishes_on_sigterm(origin, gateway):
    g, port = start(gateway, origin)
    c = H2Client(g.port)
    sid = c.request("GET", "/delay/1500")
    c.flush()
    deadline = time.monotonic() + 3 * SLOW
    while origin.stats()["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    g.proc.proc.send_signal(signal.SIGTERM)
    resp = c.run([sid], timeout=10)[0]
    resp.assert_ok()
    c.close()
    assert g.proc.wait(10 * SLOW) == 0


def test_shutdown_timeout_cuts_a_slow_request(origin, gateway):
    g, port = start(gateway, origin, "--shutdown-timeout", "300ms")
    c = H2Client(g.port)
    c.request("GET", "/delay/5000")
    c.flush()
    deadline = time.monotonic() + 3 * SLOW
    while origin.stats()["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    g.proc.proc.send_signal(signal.SIGTERM)
    assert g.proc.wait(10 * SLOW) == 0
    assert time.monotonic() - t0 < 3 * SLOW
    c.close()


def test_bad_admin_value_exits_2_naming_the_flag():
    p = subprocess.run([H2GW_BIN, "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1",
                        "--admin", "nonsense"], capture_output=True, timeout=10, text=True)
    assert p.returncode == 2
    assert "--admin" in p.stderr, p.stderr


def test_admin_section_in_the_config_file(origin, gateway, tmp_path):
    path = tmp_path / "admin.conf"
    path.write_text("[gateway]\ndrain_delay = 0\nshutdown_timeout = 5s\n\n"
                    "[admin]\naddress = 127.0.0.1:0\n")
    g = gateway(origin, "--config", str(path))
    port = admin_port(g)
    assert admin_get(port, "/readyz") == (200, "ready\n")


def test_admin_section_takes_no_name(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[admin x]\naddress = 127.0.0.1:0\n")
    p = subprocess.run([H2GW_BIN, "--config", str(path), "--check"], capture_output=True,
                       timeout=10, text=True)
    assert p.returncode == 2
    assert "bad.conf:1: section [admin] takes no name" in p.stderr, p.stderr


def test_second_sigterm_during_the_drain_delay_exits_at_once(origin, gateway):
    g, port = start(gateway, origin, "--drain-delay", "30s")
    g.proc.proc.send_signal(signal.SIGTERM)
    assert wait_readyz(port) == (503, "draining\n")
    t0 = time.monotonic()
    g.proc.proc.send_signal(signal.SIGTERM)
    assert g.proc.wait(5 * SLOW) == 0
    assert time.monotonic() - t0 < 2 * SLOW


def _read_frames(sock, deadline):
    """Yields hyperframe frames read from sock until EOF or deadline."""
    from hyperframe.frame import Frame
    buf = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            frame.parse_body(memoryview(buf[9:9 + length]))
            buf = buf[9 + length:]
            yield frame


def test_drain_sends_the_two_step_goaway(origin, gateway):
    """RFC 9113 6.8: a GOAWAY with stream id 2^31-1 and a PING first; once the
    PING comes back, the GOAWAY with the real last stream id."""
    from hyperframe.frame import GoAwayFrame, HeadersFrame, PingFrame, SettingsFrame
    import hpack
    g, _ = start(gateway, origin)
    s = socket.create_connection(("127.0.0.1", g.port), timeout=1)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
    hdrs = HeadersFrame(1, hpack.Encoder().encode(
        [(":method", "GET"), (":path", "/echo"), (":scheme", "http"), (":authority", "gw")]),
        flags=["END_HEADERS", "END_STREAM"])
    s.sendall(hdrs.serialize())
    s.settimeout(5 * SLOW)
    # Stream 1 is read (its answer is coming) before the signal.
    frames = _read_frames(s, time.monotonic() + 10 * SLOW)
    first = []
    for f in frames:
        first.append(f)
        if isinstance(f, HeadersFrame):
            break
    g.proc.proc.send_signal(signal.SIGTERM)
    goaways = []
    for f in itertools.chain(first, frames):
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
        if isinstance(f, PingFrame) and "ACK" not in f.flags:
            s.sendall(PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]).serialize())
        if isinstance(f, GoAwayFrame):
            goaways.append(f.last_stream_id)
            if len(goaways) == 2:
                break
    s.close()
    assert goaways == [2**31 - 1, 1], goaways
    assert g.proc.wait(10 * SLOW) == 0
