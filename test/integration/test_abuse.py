"""HTTP/2 abuse budgets (h2_glitch_threshold): each kind of protocol oddity,
repeated past the budget, ends its connection with GOAWAY(ENHANCE_YOUR_CALM)
and a close, costs the backend nothing it did not have to see, and leaves
other clients served; heavy honest clients never trip it.

The abusive clients write raw frames (h2 refuses to send most of them):
RawClient below, with header blocks from hpack, which ships with python3-h2.
Each burst is written at once, so the gateway reads it in one loop turn.
Every wait is bounded."""

import collections
import select
import shutil
import socket
import struct
import subprocess
import time

import hpack
import pytest

pytest.register_assert_rewrite("tlsutil")

import conftest
from conftest import SLOW, H2Client
from tlsutil import tls_flags

pytest_plugins = ["tlsutil"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PING, GOAWAY, WINDOW_UPDATE, PRIORITY_UPDATE = 0x6, 0x7, 0x8, 0x10
END_STREAM, END_HEADERS, PADDED = 0x1, 0x4, 0x8
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_NO_RFC7540_PRIORITIES = 0x9
ENHANCE_YOUR_CALM = 0xB
CANCEL = 0x8

# The default threshold (1000) against the weights in h2_glitch.c: how many
# of each kind trip it within one window, with room to spare.
DEFAULT_FLAGS = ("--log-level", "info")


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid) + payload)


class RawClient:
    """An HTTP/2 connection that writes whatever frames it is given and
    collects every frame the gateway sends until it closes."""

    def __init__(self, port, settings=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.frames = []  # (type, flags, stream id, payload)
        self.eof = False
        payload = b"".join(struct.pack(">HI", k, v) for k, v in settings)
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, payload))

    def headers(self, sid, path="/echo", method="GET", extra=(), end=True):
        block = self.enc.encode([(":method", method), (":scheme", "http"),
                                 (":authority", "127.0.0.1"), (":path", path)] + list(extra))
        return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, block)

    def send(self, chunks):
        self.sock.sendall(b"".join(chunks))

    def _parse(self):
        while len(self.buf) >= 9:
            n = struct.unpack(">I", b"\0" + self.buf[:3])[0]
            if len(self.buf) < 9 + n:
                return
            sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
            self.frames.append((self.buf[3], self.buf[4], sid, self.buf[9:9 + n]))
            self.buf = self.buf[9 + n:]

    def pump(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return
        self.buf += data
        self._parse()

    def read_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while not predicate() and not self.eof and time.monotonic() < deadline:
            self.pump(min(0.2, max(0.0, deadline - time.monotonic())))
        return predicate()

    def read_until_closed(self, timeout=10):
        return self.read_until(lambda: self.eof, timeout)

    def goaway(self):
        """(error code, last stream id) of the first GOAWAY, or None."""
        for t, _, _, p in self.frames:
            if t == GOAWAY:
                last, code = struct.unpack(">II", p[:8])
                return code, last & 0x7FFFFFFF
        return None

    def ended(self):
        """Streams the gateway ended (END_STREAM) or reset."""
        return {sid for t, fl, sid, _ in self.frames
                if (t in (DATA, HEADERS) and fl & END_STREAM) or t == RST_STREAM}

    def close(self):
        self.sock.close()


@pytest.fixture
def calm(origin, gateway):
    """Factory: calm(*flags) starts a gateway in front of the origin (info
    log) and returns it with a checker: check(client, max_requests, kind)
    asserts GOAWAY(ENHANCE_YOUR_CALM), the close, one log line naming kind,
    at most max_requests at the origin, and another client still served."""
    opened = []

    def start(*flags):
        g = gateway(origin, *(DEFAULT_FLAGS + flags))
        origin.reset_stats()

        def check(c, max_requests, kind):
            opened.append(c)
            assert c.read_until_closed(10), "the gateway did not close the connection"
            assert c.goaway() is not None, "no GOAWAY before the close"
            assert c.goaway()[0] == ENHANCE_YOUR_CALM, c.goaway()
            lines = [l for l in g.stderr_text().splitlines() if "glitch budget" in l]
            assert len(lines) == 1, g.stderr_text()
            assert "127.0.0.1" in lines[0] and (" %s=" % kind in lines[0] or
                                                "(%s=" % kind in lines[0]), lines[0]
            requests = origin.stats()["requests"]
            assert requests <= max_requests, "the origin saw %d requests" % requests
            with H2Client(g.port) as ok:
                ok.get("/echo?after").assert_ok()
            g.assert_alive()

        return g, check

    yield start
    for c in opened:
        c.close()


def test_stream_errors_bad_header_field(calm):
    """MadeYouReset (CVE-2025-8671): request headers nghttp2 must reset
    (an uppercase field name). None reaches the origin."""
    g, check = calm()
    c = RawClient(g.port)
    c.send(c.headers(sid, extra=[("X-Upper", "1")]) for sid in range(1, 301, 2))
    check(c, 0, "stream_error")


def test_stream_errors_body_over_content_length(calm):
    """MadeYouReset: DATA beyond the request's content-length, a reset nghttp2
    sends without reporting an invalid frame (charged as it is sent). At most
    the streams open before the budget ran out can have reached the origin."""
    g, check = calm()
    c = RawClient(g.port)
    c.send(c.headers(sid, "/echo", "POST", [("content-length", "1")], end=False) +
           frame(DATA, END_STREAM, sid, b"hello") for sid in range(1, 301, 2))
    check(c, 100, "stream_error")


def test_stream_errors_window_overflow(calm):
    """MadeYouReset: a WINDOW_UPDATE that overflows a stream's window
    (FLOW_CONTROL_ERROR on the stream)."""
    g, check = calm()
    c = RawClient(g.port)
    c.send(c.headers(sid, "/delay/2000") + frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 2**31 - 1))
           for sid in range(1, 301, 2))
    check(c, 100, "stream_error")


@pytest.mark.parametrize("padded", [False, True], ids=["bare", "padding-only"])
def test_empty_data_frames(calm, padded):
    """DATA frames without payload or END_STREAM on an open request; with
    padding only, they are as empty."""
    g, check = calm()
    c = RawClient(g.port)
    empty = frame(DATA, PADDED, 1, b"\x02\0\0") if padded else frame(DATA, 0, 1)
    c.send([c.headers(1, "/echo", "POST", end=False)] + [empty] * 300)
    check(c, 1, "empty_data")


def test_tiny_window_updates(calm):
    """A client with a zero window that opens it one byte at a time, so the
    gateway would send one-byte DATA frames."""
    g, check = calm()
    c = RawClient(g.port, settings=[(SETTINGS_INITIAL_WINDOW_SIZE, 0)])
    c.send([c.headers(1, "/bytes/100000")] +
           [frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1))] * 300)
    check(c, 1, "small_window_update")


def test_priority_flood(calm):
    g, check = calm()
    c = RawClient(g.port)
    c.send([frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 15))] * 1000)
    check(c, 0, "priority")


def test_priority_update_flood(calm):
    g, check = calm()
    c = RawClient(g.port, settings=[(SETTINGS_NO_RFC7540_PRIORITIES, 1)])
    c.send([frame(PRIORITY_UPDATE, 0, 0, struct.pack(">I", 1) + b"u=3")] * 1000)
    check(c, 0, "priority")


def test_settings_flood(calm):
    g, check = calm()
    c = RawClient(g.port)
    c.send([frame(SETTINGS, 0, 0)] * 200)
    check(c, 0, "settings")


def test_ping_flood(calm):
    g, check = calm()
    c = RawClient(g.port)
    c.send([frame(PING, 0, 0, b"12345678")] * 300)
    check(c, 0, "ping")


def test_requests_answered_4xx_by_the_gateway(calm):
    """Header lists over max_header_list_size, answered 431 by the gateway
    itself, in rounds under the stream limit: none reaches the origin."""
    g, check = calm("--max-header-list-size", "1k")
    c = RawClient(g.port)
    big = [("x-big", "a" * 2000)]
    sid = 1
    # Rounds until the GOAWAY: the score halves every second, so a slow
    # machine needs more rounds to pass the threshold.
    for _ in range(40):
        batch = list(range(sid, sid + 100, 2))
        sid += 100
        c.send(c.headers(s, extra=big) for s in batch)
        c.read_until(lambda: set(batch) <= c.ended(), 10)
        if c.eof or c.goaway() is not None:
            break
    statuses = [p for t, _, _, p in c.frames if t == HEADERS]
    assert statuses, "no response before the GOAWAY"
    check(c, 0, "bad_request")


def test_rapid_reset_beyond_nghttp2s_limit(calm):
    """Requests reset right after their HEADERS, fewer than nghttp2's own
    Rapid Reset burst (1000): the glitch budget ends the connection first,
    and none of the requests reaches the origin."""
    g, check = calm()
    c = RawClient(g.port)
    c.send(c.headers(sid, "/delay/2000") + frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
           for sid in range(1, 601, 2))
    check(c, 0, "rapid_reset")


def test_threshold_zero_disables(origin, gateway):
    g = gateway(origin, "--log-level", "info", "--h2-glitch-threshold", "0")
    c = RawClient(g.port)
    try:
        c.send([frame(PING, 0, 0, b"12345678")] * 300 + [c.headers(1, "/echo")])
        assert c.read_until(lambda: 1 in c.ended(), 10), c.frames[-3:]
        assert c.goaway() is None
    finally:
        c.close()
    assert "glitch budget" not in g.stderr_text()


class _RFC9218Connection(conftest._H2Connection):
    """An h2 connection that announces SETTINGS_NO_RFC7540_PRIORITIES in its
    first SETTINGS (it may not change later), as RFC 9218 clients do."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        # Settings.__setitem__ would leave an unknown code pending an ACK.
        self.local_settings._settings[SETTINGS_NO_RFC7540_PRIORITIES] = collections.deque([1])


def test_heavy_honest_client_is_not_cut(origin, gateway, monkeypatch):
    """200 requests on one connection, each with a PRIORITY frame and a
    PRIORITY_UPDATE, and a few PINGs, as a busy browser page would: every
    response arrives and no budget is spent."""
    g = gateway(origin, "--log-level", "info")
    monkeypatch.setattr(conftest, "_H2Connection", _RFC9218Connection)
    c = H2Client(g.port)
    try:
        sids = []
        for batch in range(4):
            mine = []
            for i in range(50):
                sid = c.request("GET", "/echo?n=%d" % (batch * 50 + i), end=True)
                c.conn.prioritize(sid, weight=1 + (i * 5) % 256)
                c.sock.sendall(c.conn.data_to_send() +
                               frame(PRIORITY_UPDATE, 0, 0,
                                     struct.pack(">I", sid) + b"u=%d" % (i % 8)))
                mine.append(sid)
            c.conn.ping(b"%08d" % batch)
            c.flush()
            for r in c.run(mine, timeout=20):
                r.assert_ok()
            sids += mine
        assert len(sids) == 200
        assert c.goaway is None
    finally:
        c.close()
    assert "glitch budget" not in g.stderr_text()
    assert origin.stats()["requests"] >= 200


def test_h2load_is_not_cut(origin, gateway):
    """nghttp2's own client, many streams at once on two connections."""
    h2load = shutil.which("h2load")
    if h2load is None:
        pytest.skip("h2load not installed")
    g = gateway(origin, "--log-level", "info")
    p = subprocess.run([h2load, "-n", "3000", "-c", "2", "-m", "100",
                        "http://127.0.0.1:%d/bytes/1000" % g.port],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "3000 succeeded, 0 failed" in p.stdout, p.stdout
    assert "glitch budget" not in g.stderr_text()


def test_curl_over_tls_is_not_cut(origin, h2gw, pki):
    """curl over TLS (ALPN h2): 100 requests one after another on one
    connection, then 100 at once (--parallel)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    g = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
             "--log-level", "info", *tls_flags(pki, "default"))
    urls = ["https://127.0.0.1:%d/echo?n=%d" % (g.port, i) for i in range(100)]
    for extra in ([], ["--parallel", "--parallel-max", "100"]):
        p = subprocess.run([curl, "-sS", "-k", "--http2", "--max-time", str(30 * SLOW)] + extra +
                           [a for u in urls for a in ("-o", "/dev/null", u)] +
                           ["-w", "%{http_code} %{http_version}\n"],
                           capture_output=True, text=True, timeout=60 * SLOW)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split("\n")[:-1] == ["200 2"] * 100, p.stdout
    assert "glitch budget" not in g.proc.stderr_text()
