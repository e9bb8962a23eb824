"""
Fixtures and helpers for the h2gw integration tests.

Environment:
  H2GW_BIN         the gateway binary (default build/h2gw)
  ORIGIN_BIN       the test origin binary (default build/origin)
  H2GW_SANITIZED   set when H2GW_BIN is the ASan+UBSan build: timeouts grow,
                   memory bounds loosen, sanitizer options get defaults.

Everything listens on 127.0.0.1 with port 0; the port is read from the
"listening on 127.0.0.1:PORT" line each program prints on stdout.
"""

import hashlib
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SANITIZED = bool(os.environ.get("H2GW_SANITIZED"))
# Multiplier for every timeout: the sanitized build is several times slower.
SLOW = 4 if SANITIZED else 1

PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
LISTEN_RE = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


def _binary(env_name, default):
    path = os.environ.get(env_name, default)
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(REPO, path)
    return os.path.abspath(path)


H2GW_BIN = _binary("H2GW_BIN", "build/h2gw")
ORIGIN_BIN = _binary("ORIGIN_BIN", "build/origin")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pattern_bytes(n):
    """The body of the origin's /bytes/N."""
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


def pattern_sha256(n):
    h = hashlib.sha256()
    chunk = PATTERN * (65536 // len(PATTERN) * 4)  # length is a multiple of 36
    left = n
    while left >= len(chunk):
        h.update(chunk)
        left -= len(chunk)
    h.update(chunk[:left])
    return h.hexdigest()


def sanitizer_env():
    env = dict(os.environ)
    if SANITIZED:
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


# --------------------------------------------------------------------------
# Processes


class Proc:
    """A child process that announced its port on stdout. stdout keeps being
    drained by a thread; stderr goes to a file so the child never blocks."""

    def __init__(self, name, argv, tmpdir, startup_timeout):
        self.name = name
        self.argv = argv
        self.stderr_path = os.path.join(str(tmpdir), "%s.%d.stderr" % (name, id(self)))
        self._stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=sanitizer_env(),
        )
        self.pid = self.proc.pid
        self.stdout = b""
        self.port = self._read_port(startup_timeout)
        self._drain = threading.Thread(target=self._drain_stdout, daemon=True)
        self._drain.start()

    def _read_port(self, timeout):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        while True:
            m = LISTEN_RE.search(buf)
            if m:
                self.stdout = buf
                return int(m.group(1))
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        self.proc.kill()
        self.proc.wait(5)
        raise AssertionError(
            "%s did not print 'listening on 127.0.0.1:PORT' within %ss (exit %r)\n"
            "argv: %s\nstdout: %r\nstderr: %s"
            % (self.name, timeout, self.proc.returncode, self.argv, buf, self.stderr_text())
        )

    def _drain_stdout(self):
        try:
            while True:
                chunk = self.proc.stdout.read1(65536)
                if not chunk:
                    return
                self.stdout += chunk
        except (OSError, ValueError):
            return

    def stderr_text(self):
        try:
            self._stderr_file.flush()
        except ValueError:
            pass
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        """Wait for the process to exit on its own; returns the exit code,
        or None if it is still running after `timeout`."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout):
        """SIGTERM, wait; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._finish()
                return None
        self._finish()
        return self.proc.returncode

    def _finish(self):
        self._drain.join(2)
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        self._stderr_file.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


# --------------------------------------------------------------------------
# The origin


class Origin:
    """The test origin, and direct HTTP/1.1 requests to it. Each direct
    request uses a fresh connection; stats() leaves those out of the counts."""

    def __init__(self, proc):
        self.proc = proc
        self.port = proc.port
        self._direct = 0  # direct connections (= requests) since start or reset_stats()

    def request(self, method, path, body=None, headers=None, timeout=10):
        """A direct HTTP/1.1 request on a fresh connection: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)
        self._direct += 1
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def get(self, path):
        status, _, body = self.request("GET", path)
        assert status == 200, "origin %s -> %d %r" % (path, status, body)
        return body

    def reset_stats(self):
        self.get("/reset-stats")
        self._direct = 0

    def stats(self):
        """The origin's counters for the gateway's traffic only: direct
        connections and requests made through this helper (including this
        one) are subtracted. open_connections only loses the one asking: a
        closed direct connection may be counted until the origin sees its FIN,
        so poll with wait_open_connections()."""
        s = json.loads(self.get("/stats"))
        s["connections_accepted"] -= self._direct
        s["requests"] -= self._direct
        s["open_connections"] -= 1
        return s

    def kill_next(self):
        self.get("/kill-next")

    def wait_open_connections(self, want, timeout):
        """Poll until stats()['open_connections'] == want; returns the last stats."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            s = self.stats()
            if s["open_connections"] == want or time.monotonic() > deadline:
                return s
            time.sleep(0.05)


def start_origin(tmpdir):
    assert os.path.exists(ORIGIN_BIN), "ORIGIN_BIN %s does not exist (make all)" % ORIGIN_BIN
    return Origin(Proc("origin", [ORIGIN_BIN, "--listen", "127.0.0.1:0"], tmpdir, 10))


@pytest.fixture
def origin(tmp_path):
    """A fresh origin per test, so /stats counts only this test's traffic."""
    o = start_origin(tmp_path)
    yield o
    o.proc.stop(5)


# --------------------------------------------------------------------------
# The gateway


class Gateway:
    def __init__(self, proc, backend_port):
        self.proc = proc
        self.port = proc.port
        self.pid = proc.pid
        self.backend_port = backend_port
        self.authority = "127.0.0.1:%d" % self.port

    def client(self, **kw):
        return H2Client(self.port, **kw)

    def stderr_text(self):
        return self.proc.stderr_text()

    def rss_kib(self):
        return rss_kib(self.pid)

    def assert_alive(self):
        assert self.proc.alive(), "gateway exited with %r; stderr:\n%s" % (
            self.proc.proc.returncode, self.stderr_text())


def closed_port():
    """A port with nothing listening on it (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check_sanitizer_output(text, what):
    for marker in SANITIZER_MARKERS:
        assert marker not in text, "%s reported %r:\n%s" % (what, marker, text)


@pytest.fixture
def gateway(tmp_path):
    """Factory: gateway(backend_port, *flags) starts h2gw against
    127.0.0.1:backend_port (backend_port may be an Origin). At teardown every
    client still open is closed, then the gateway gets SIGTERM and must exit 0
    within 15 s with no sanitizer report on stderr."""
    started = []

    def start(backend, *flags):
        assert os.path.exists(H2GW_BIN), "H2GW_BIN %s does not exist (make all)" % H2GW_BIN
        port = backend.port if isinstance(backend, Origin) else int(backend)
        argv = [H2GW_BIN, "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % port]
        argv += [str(f) for f in flags]
        proc = Proc("h2gw", argv, tmp_path, 10 * SLOW)
        gw = Gateway(proc, port)
        started.append(gw)
        return gw

    yield start

    H2Client.close_all()
    failures = []
    for gw in started:
        code = gw.proc.stop(15)
        err = gw.stderr_text()
        if code != 0:
            failures.append("gateway %s exited with %r after SIGTERM (want 0 within 15 s); "
                            "stderr:\n%s" % (gw.proc.argv, code, err))
        for marker in SANITIZER_MARKERS:
            if marker in err:
                failures.append("gateway stderr contains %r:\n%s" % (marker, err))
                break
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


# --------------------------------------------------------------------------
# A small HTTP/2 client


class Response:
    def __init__(self, stream_id, method, path):
        self.stream_id = stream_id
        self.method = method
        self.path = path
        self.status = None
        self.headers = None  # [(bytes, bytes)] without pseudo-headers
        self.informational = []  # [[(bytes, bytes)]] of 1xx responses
        self.body = bytearray()
        self.data_frames = 0
        self.trailers = None  # [(bytes, bytes)] or None
        self.ended = False  # END_STREAM received
        self.reset = None  # error code of an RST_STREAM (or "connection" failure)
        self.conn_error = None  # the connection ended under this stream

    @property
    def done(self):
        return self.ended or self.reset is not None or self.conn_error is not None

    def header(self, name):
        name = name.encode() if isinstance(name, str) else name
        for k, v in self.headers or ():
            if k == name:
                return v.decode("latin-1")
        return None

    def header_all(self, name):
        name = name.encode() if isinstance(name, str) else name
        return [v.decode("latin-1") for k, v in self.headers or () if k == name]

    def header_names(self):
        return [k.decode("latin-1") for k, _ in self.headers or ()]

    def json(self):
        return json.loads(bytes(self.body))

    def describe(self):
        return ("stream %d %s %s: status=%r ended=%r reset=%r conn_error=%r body[%d]=%r headers=%r"
                % (self.stream_id, self.method, self.path, self.status, self.ended, self.reset,
                   self.conn_error, len(self.body), bytes(self.body[:200]), self.headers))

    def assert_ok(self, status=200):
        assert self.ended and self.reset is None and self.status == status, self.describe()


class _H2Connection(h2.connection.H2Connection):
    """h2 treats every GOAWAY as the end of the connection and refuses any
    frame after it. A graceful GOAWAY (NO_ERROR) lets the streams up to
    last_stream_id finish, so for those keep processing frames."""

    def _receive_goaway_frame(self, frame):
        if frame.error_code != 0:
            return super()._receive_goaway_frame(frame)
        ev = h2.events.ConnectionTerminated()
        ev.error_code = h2.connection._error_code_from_int(frame.error_code)
        ev.last_stream_id = frame.last_stream_id
        ev.additional_data = frame.additional_data or None
        return [], [ev]


class _Upload:
    def __init__(self, chunks, end):
        self.chunks = [bytes(c) for c in chunks if len(c)]
        self.end = end


class H2Client:
    """One HTTP/2 connection over a plain socket (prior knowledge).

    request() only queues; run() drives the connection until the given
    streams are done. Request bodies are sent as the peer's flow-control
    windows allow. Received DATA is acknowledged (window updates) unless
    ack=False. Every wait is bounded by a deadline."""

    _open = []

    def __init__(self, port, timeout=20, window=1 << 24, ack=True, validate=True,
                 validate_inbound=True, rcvbuf=None, authority=None):
        self.port = port
        self.timeout = timeout * SLOW
        self.authority = authority or "127.0.0.1:%d" % port
        self.ack = ack
        self.responses = {}
        self.uploads = {}
        self.goaway = None
        self.eof = False
        self.protocol_error = None
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=validate_inbound,
        )
        self.conn = _H2Connection(config=cfg)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(self.timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        H2Client._open.append(self)
        self.conn.initiate_connection()
        if window and window > 65535:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE:
                                       min(window, 2**31 - 1)})
            self.conn.increment_flow_control_window(min(window, 2**31 - 1) - 65535)
        self.flush()

    # -- lifecycle

    @classmethod
    def close_all(cls):
        for c in list(cls._open):
            c.close()

    def close(self):
        if self.sock is None:
            return
        try:
            if not self.eof and self.protocol_error is None:
                self.conn.close_connection()
                self.sock.setblocking(False)
                self.sock.send(self.conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()
        self.sock = None
        if self in H2Client._open:
            H2Client._open.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending

    def request(self, method, path, headers=(), body=None, chunks=None, end=True,
                authority=None, content_length=None, scheme="http"):
        """Queue a request; returns its stream id. body: bytes sent with a
        content-length header (unless content_length=False); chunks: a list of
        bytes sent as separate DATA runs, without content-length."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [
            (b":method", method.encode()),
            (b":scheme", scheme.encode()),
            (b":authority", (authority or self.authority).encode()),
            (b":path", path.encode()),
        ]
        if body is not None and content_length is not False:
            hdrs.append((b"content-length", str(len(body)).encode()))
        for k, v in headers:
            hdrs.append((k.encode() if isinstance(k, str) else k,
                         v.encode() if isinstance(v, str) else v))
        parts = []
        if body is not None:
            parts = [body]
        elif chunks is not None:
            parts = chunks
        has_body = any(len(p) for p in parts)
        self.conn.send_headers(sid, hdrs, end_stream=end and not has_body)
        if has_body:
            self.uploads[sid] = _Upload(parts, end)
        self.responses[sid] = Response(sid, method, path)
        self.flush()
        return sid

    def reset_stream(self, sid, code=8):
        self.conn.reset_stream(sid, code)
        self.uploads.pop(sid, None)
        self.flush()

    def flush(self):
        self._send_uploads()
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _send_uploads(self):
        for sid in list(self.uploads):
            up = self.uploads[sid]
            try:
                while up.chunks:
                    window = self.conn.local_flow_control_window(sid)
                    n = min(window, self.conn.max_outbound_frame_size, len(up.chunks[0]))
                    if n <= 0:
                        break
                    self.conn.send_data(sid, up.chunks[0][:n])
                    up.chunks[0] = up.chunks[0][n:]
                    if not up.chunks[0]:
                        up.chunks.pop(0)
                if not up.chunks:
                    if up.end:
                        self.conn.end_stream(sid)
                    del self.uploads[sid]
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                # The peer reset the stream (or answered early): stop sending.
                del self.uploads[sid]

    # -- receiving

    def _handle(self, ev):
        E = h2.events
        r = self.responses.get(getattr(ev, "stream_id", None))
        if isinstance(ev, E.ResponseReceived):
            if r is not None:
                r.headers = []
                for k, v in ev.headers:
                    if k == b":status":
                        r.status = int(v)
                    else:
                        r.headers.append((bytes(k), bytes(v)))
        elif isinstance(ev, E.InformationalResponseReceived):
            if r is not None:
                r.informational.append([(bytes(k), bytes(v)) for k, v in ev.headers])
        elif isinstance(ev, E.DataReceived):
            if r is not None:
                r.body += ev.data
                r.data_frames += 1
            if self.ack and ev.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(ev, E.TrailersReceived):
            if r is not None:
                r.trailers = [(bytes(k), bytes(v)) for k, v in ev.headers]
        elif isinstance(ev, E.StreamEnded):
            if r is not None:
                r.ended = True
            self.uploads.pop(ev.stream_id, None)
        elif isinstance(ev, E.StreamReset):
            if r is not None and r.reset is None and not r.ended:
                r.reset = ev.error_code
            self.uploads.pop(ev.stream_id, None)
        elif isinstance(ev, E.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
            for sid, resp in self.responses.items():
                if not resp.done and (ev.error_code != 0 or sid > (ev.last_stream_id or 0)):
                    resp.conn_error = "GOAWAY %r last_stream_id=%r" % (ev.error_code,
                                                                       ev.last_stream_id)

    def _fail_open_streams(self, why):
        for resp in self.responses.values():
            if not resp.done:
                resp.conn_error = why

    def pump(self, timeout):
        """Send what can be sent, wait up to `timeout` for input, process it."""
        self.flush()
        if self.eof or self.protocol_error is not None:
            time.sleep(min(timeout, 0.01))
            return
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            self._fail_open_streams("connection closed by the gateway")
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.protocol_error = e
            self._fail_open_streams("client protocol error: %r" % e)
            try:
                self.sock.sendall(self.conn.data_to_send())
            except OSError:
                pass
            return
        for ev in events:
            self._handle(ev)
        self.flush()

    def run_until(self, predicate, timeout=None, what="condition"):
        deadline = time.monotonic() + (timeout * SLOW if timeout else self.timeout)
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s; streams:\n%s" % (
                    what, "\n".join(r.describe() for r in self.responses.values())))
            if self.eof or self.protocol_error is not None:
                if not predicate():
                    raise AssertionError("connection ended (eof=%r protocol_error=%r goaway=%r) "
                                         "while waiting for %s; streams:\n%s" % (
                                             self.eof, self.protocol_error, self.goaway, what,
                                             "\n".join(r.describe()
                                                       for r in self.responses.values())))
            self.pump(min(left, 0.5))

    def run(self, sids=None, timeout=None):
        """Drive the connection until the streams (default: all) are done;
        returns their Responses in order."""
        if sids is None:
            sids = list(self.responses)
        elif isinstance(sids, int):
            sids = [sids]
        deadline = time.monotonic() + (timeout * SLOW if timeout else self.timeout)
        while True:
            pending = [s for s in sids if not self.responses[s].done]
            if not pending:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %ss; unfinished streams:\n%s" % (
                    timeout * SLOW if timeout else self.timeout,
                    "\n".join(self.responses[s].describe() for s in pending)))
            self.pump(min(left, 0.5))
        return [self.responses[s] for s in sids]

    def fetch(self, method, path, timeout=None, **kw):
        """One request, run to completion; returns its Response."""
        sid = self.request(method, path, **kw)
        return self.run([sid], timeout)[0]

    def get(self, path, **kw):
        return self.fetch("GET", path, **kw)


def check_sibling(resp, ms=200, tag=None):
    """A /delay/MS sibling stream finished normally."""
    resp.assert_ok()
    want = "delayed %d%s\n" % (ms, " tag=%s" % tag if tag else "")
    assert bytes(resp.body) == want.encode(), resp.describe()


def echo_headers(echo):
    """The origin's /echo header list as [(lowercase name, value)]."""
    return [(k.lower(), v) for k, v in echo["headers"]]


def echo_header_values(echo, name):
    return [v for k, v in echo_headers(echo) if k == name]
