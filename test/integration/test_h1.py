"""HTTP/1.1 clients on the cleartext listener: keep-alive, pipelining, bodies,
Expect, HEAD, HTTP/1.0, request smuggling refused before any backend sees it,
backend failures, and the h2c Upgrade to HTTP/2."""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from conftest import (SANITIZED, SLOW, closed_port, echo_headers, pattern_bytes, pattern_sha256,
                      sha256)

MiB = 1024 * 1024

CURL = shutil.which("curl")
NGHTTP = shutil.which("nghttp")


class Closed(Exception):
    """The connection ended before the response did."""

    def __init__(self, what, partial=b""):
        super().__init__(what)
        self.partial = partial


class Resp:
    def __init__(self, status, headers, body, trailers, interim, version):
        self.status = status
        self.headers = headers  # [(lowercase name, value)]
        self.body = body
        self.trailers = trailers
        self.interim = interim  # [status] of 1xx responses
        self.version = version

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Resp(%s %r %r body[%d]=%r)" % (self.version, self.status, self.headers,
                                               len(self.body), self.body[:200])


class H1:
    """One HTTP/1.1 client connection over a plain socket."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return False
        self.buf += chunk
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise Closed("EOF in a head line", self.buf)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _take(self, n, partial=b""):
        while len(self.buf) < n:
            if not self._fill():
                raise Closed("EOF after %d of %d body bytes" % (len(partial) + len(self.buf),
                                                                len(partial) + n),
                             partial + self.buf)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _fields(self):
        fields = []
        while True:
            line = self._line()
            if not line:
                return fields
            name, sep, value = line.partition(b":")
            assert sep and name == name.strip(), "malformed field line %r" % line
            fields.append((name.decode().lower(), value.strip().decode("latin-1")))

    def read_head(self):
        """Status line and fields of the final response; 1xx are collected."""
        interim = []
        while True:
            line = self._line()
            m = re.match(rb"^(HTTP/1\.[01]) (\d{3}) ?(.*)$", line)
            assert m, "bad status line %r" % line
            status = int(m.group(2))
            fields = self._fields()
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                continue
            return m.group(1).decode(), status, fields, interim

    def read_body(self, status, fields, is_head=False):
        get = dict(fields).get
        if is_head or status in (204, 304) or status < 200:
            return b"", None
        te = get("transfer-encoding")
        if te is not None:
            assert te.lower() == "chunked", te
            body = b""
            while True:
                size_line = self._line()
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    return body, self._fields()
                body += self._take(size, body)
                assert self._take(2, body) == b"\r\n"
        if get("content-length") is not None:
            return self._take(int(get("content-length"))), None
        while self._fill():
            pass
        body, self.buf = self.buf, b""
        return body, None

    def response(self, is_head=False):
        version, status, fields, interim = self.read_head()
        body, trailers = self.read_body(status, fields, is_head)
        return Resp(status, fields, body, trailers, interim, version)

    def request(self, method, path, headers=(), body=None, host="gw"):
        self.send(raw_request(method, path, headers, body, host))
        return self.response(is_head=method == "HEAD")

    def at_eof(self, timeout=5):
        """True when the peer closed (after whatever is still buffered)."""
        self.sock.settimeout(timeout * SLOW)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def raw_request(method, path, headers=(), body=None, host="gw", version="1.1"):
    lines = ["%s %s HTTP/%s" % (method, path, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = [k.lower() for k, _ in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    lines += ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(data, piece=1000, trailers=b""):
    out = b""
    for i in range(0, len(data), piece):
        part = data[i:i + piece]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n" + trailers + b"\r\n"


def run_curl(*args, timeout=30):
    if CURL is None:
        pytest.skip("curl not installed")
    p = subprocess.run([CURL, "-sS", "--max-time", str(timeout * SLOW)] + list(args),
                       capture_output=True, timeout=timeout * SLOW + 10)
    return p


# --------------------------------------------------------------------------
# Plain requests


def test_curl_get_and_post(origin, gateway, tmp_path):
    gw = gateway(origin)
    url = "http://127.0.0.1:%d/echo?from=curl" % gw.port
    p = run_curl("--http1.1", "-w", "\n%{http_version} %{response_code}", url)
    assert p.returncode == 0, p.stderr
    body, _, tail = p.stdout.decode().rpartition("\n")
    assert tail == "1.1 200", (tail, body)
    e = json.loads(body)
    assert e["method"] == "GET" and e["target"] == "/echo?from=curl"
    assert ("x-forwarded-proto", "http") in echo_headers(e)

    data = os.urandom(300000)
    f = tmp_path / "upload.bin"
    f.write_bytes(data)
    p = run_curl("--http1.1", "--data-binary", "@%s" % f, "-w", "\n%{http_version} %{response_code}",
                 url)
    assert p.returncode == 0, p.stderr
    body, _, tail = p.stdout.decode().rpartition("\n")
    assert tail == "1.1 200", (tail, body)
    e = json.loads(body)
    assert e["method"] == "POST"
    assert e["body_length"] == len(data) and e["body_sha256"] == sha256(data)
    # Expect is answered by the gateway and not forwarded (curl sends it
    # for bodies over 1 MiB; ask for it here).
    p = run_curl("--http1.1", "-H", "Expect: 100-continue", "--data-binary", "@%s" % f, url)
    assert p.returncode == 0, p.stderr
    e = json.loads(p.stdout)
    assert e["body_sha256"] == sha256(data)
    assert "expect" not in [k for k, _ in echo_headers(e)]


def test_curl_large_download(origin, gateway):
    gw = gateway(origin)
    n = 5_000_000
    p = run_curl("--http1.1", "-o", "-", "http://127.0.0.1:%d/bytes/%d" % (gw.port, n))
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == n and sha256(p.stdout) == pattern_sha256(n)
    p = run_curl("--http1.1", "-o", "-", "http://127.0.0.1:%d/bytes/%d?chunked=1" % (gw.port, n))
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == n and sha256(p.stdout) == pattern_sha256(n)


def test_keep_alive_three_requests(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        r1 = c.request("GET", "/echo?n=1")
        r2 = c.request("POST", "/echo?n=2", body=b"abc")
        r3 = c.request("GET", "/bytes/1000")
        assert [r.status for r in (r1, r2, r3)] == [200, 200, 200]
        assert r1.json()["target"] == "/echo?n=1"
        assert r2.json()["body_sha256"] == sha256(b"abc")
        assert r3.body == pattern_bytes(1000)
        assert r1.header("connection") is None  # HTTP/1.1 default: persistent
        assert not c.at_eof(0.3)


def test_pipelined_answers_in_order(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        c.send(raw_request("GET", "/delay/100") + raw_request("GET", "/echo?second") +
               raw_request("GET", "/bytes/10"))
        r1, r2, r3 = c.response(), c.response(), c.response()
        assert r1.status == 200 and r1.body == b"delayed 100\n", r1
        assert r2.status == 200 and r2.json()["target"] == "/echo?second", r2
        assert r3.status == 200 and r3.body == pattern_bytes(10), r3


def test_pipelined_many_with_half_close(origin, gateway):
    """Fifty pipelined requests, then EOF from the client: every answer
    still comes, in order, and then the gateway closes."""
    gw = gateway(origin)
    with H1(gw.port) as c:
        c.send(b"".join(raw_request("POST", "/echo?i=%d" % i, body=b"x" * i) for i in range(50)))
        c.sock.shutdown(socket.SHUT_WR)
        for i in range(50):
            r = c.response()
            e = r.json()
            assert e["target"] == "/echo?i=%d" % i and e["body_length"] == i
        assert c.at_eof()


def test_chunked_request_body(origin, gateway):
    gw = gateway(origin)
    data = os.urandom(1_000_000)
    with H1(gw.port) as c:
        c.send(raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")],
                           chunked(data, 7777, b"X-Trailer: 1\r\n")))
        r = c.response()
        assert r.status == 200, r
        e = r.json()
        assert e["body_length"] == len(data) and e["body_sha256"] == sha256(data)
        # The next request on the connection is fine.
        assert c.request("GET", "/echo?after").status == 200


def test_expect_100_continue(origin, gateway):
    gw = gateway(origin)
    body = b"continue me" * 100
    with H1(gw.port) as c:
        c.send(raw_request("POST", "/echo", [("Content-Length", str(len(body))),
                                             ("Expect", "100-continue")]))
        # The client waits for the 100 before it sends the body.
        c.sock.settimeout(5 * SLOW)
        line = c._line()
        assert line == b"HTTP/1.1 100 Continue", line
        assert c._line() == b""
        c.send(body)
        r = c.response()
        assert r.status == 200 and r.interim == []
        e = r.json()
        assert e["body_sha256"] == sha256(body)
        assert "expect" not in [k for k, _ in echo_headers(e)]


def test_head_has_no_body(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        r = c.request("HEAD", "/bytes/5000")
        assert r.status == 200 and r.header("content-length") == "5000"
        # No body bytes came: the next response parses cleanly.
        r2 = c.request("GET", "/bytes/10")
        assert r2.body == pattern_bytes(10)
        r3 = c.request("HEAD", "/chunked")
        assert r3.status == 200
        assert c.request("GET", "/echo?after").status == 200


def test_chunked_response_with_trailers(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        r = c.request("GET", "/chunked")
        assert r.status == 200 and r.header("transfer-encoding") == "chunked"
        assert r.body == b"hello chunked world\n"
        assert ("x-trailer-one", "1") in r.trailers and ("x-checksum", "abc") in r.trailers


def test_status_codes(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        r = c.request("GET", "/status/204")
        assert r.status == 204 and r.body == b""
        r = c.request("GET", "/status/304")
        assert r.status == 304 and r.body == b""
        r = c.request("GET", "/status/404")
        assert r.status == 404 and r.body == b"status 404\n"
        r = c.request("GET", "/status/103")
        assert r.status == 200 and r.body == b"status 103\n"
        assert c.request("GET", "/echo").status == 200


def test_http10_client(origin, gateway):
    gw = gateway(origin)
    # Without keep-alive: answered, then closed.
    with H1(gw.port) as c:
        c.send(raw_request("GET", "/echo?v=10", version="1.0"))
        r = c.response()
        assert r.status == 200 and r.json()["target"] == "/echo?v=10"
        assert c.at_eof()
    # With keep-alive: the connection persists and says so.
    with H1(gw.port) as c:
        c.send(raw_request("GET", "/bytes/20", [("Connection", "keep-alive")], version="1.0"))
        r = c.response()
        assert r.body == pattern_bytes(20) and r.header("connection") == "keep-alive"
        # A chunked backend answer becomes close-delimited for HTTP/1.0.
        c.send(raw_request("GET", "/chunked", [("Connection", "keep-alive")], version="1.0"))
        r = c.response()
        assert r.status == 200 and r.header("transfer-encoding") is None
        assert r.header("connection") == "close"
        assert r.body == b"hello chunked world\n"
        assert c.at_eof(0)


def test_connection_close_request(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        r = c.request("GET", "/echo", [("Connection", "close")])
        assert r.status == 200 and r.header("connection") == "close"
        assert c.at_eof()


def test_absolute_form_and_hop_by_hop(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        r = c.request("GET", "http://example.com:8080/echo?abs", [
            ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"), ("TE", "trailers")], host="other")
        assert r.status == 200, r
        e = r.json()
        names = [k for k, _ in echo_headers(e)]
        assert e["target"] == "/echo?abs"
        assert ("host", "example.com:8080") in echo_headers(e)
        for n in ("connection", "x-hop", "keep-alive", "proxy-connection"):
            assert n not in names, (n, names)


# --------------------------------------------------------------------------
# Refused requests: nothing reaches the backend


SMUGGLING = {
    "cl-te": b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 6\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "te-cl": b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
             b"Content-Length: 6\r\n\r\n0\r\n\r\nG",
    "cl-cl": b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "cl-cl-differ": b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n"
                    b"Content-Length: 30\r\n\r\nabc",
    "te-gzip": b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "te-chunked-gzip": b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, gzip\r\n"
                       b"\r\n0\r\n\r\n",
    "te-http10": b"POST /echo HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-A: a\r\n b\r\n\r\n",
    "obs-fold-te": b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
                   b"0\r\n\r\n",
    "bare-lf": b"GET /echo HTTP/1.1\nHost: gw\n\n",
    "bare-lf-end": b"GET /echo HTTP/1.1\r\nHost: gw\r\n\n",
    "bare-cr": b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-A: a\rb\r\n\r\n",
    "space-before-colon": b"GET /echo HTTP/1.1\r\nHost: gw\r\nContent-Length : 0\r\n\r\n",
    "two-hosts": b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "no-host": b"GET /echo HTTP/1.1\r\nX-A: 1\r\n\r\n",
    "ctl-in-value": b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-A: a\x01b\r\n\r\n",
    "double-space": b"GET  /echo HTTP/1.1\r\nHost: gw\r\n\r\n",
    "ftp-uri": b"GET ftp://gw/echo HTTP/1.1\r\nHost: gw\r\n\r\n",
    "bad-host": b"GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n",
    "http2-version": b"GET /echo HTTP/2.0\r\nHost: gw\r\n\r\n",
    "bare-lf-chunk": b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("kind", sorted(SMUGGLING))
def test_smuggling_refused(origin, gateway, kind):
    gw = gateway(origin)
    origin.reset_stats()
    follow = raw_request("GET", "/echo?smuggled")
    with H1(gw.port) as c:
        c.send(SMUGGLING[kind] + follow)
        version, status, fields, _ = c.read_head()
        assert status in (400, 501), (kind, status, fields)
        assert ("connection", "close") in fields
        assert c.at_eof(), "the connection must close after a refused request"
    s = origin.stats()
    # A chunk error shows after the head was forwarded; everything else is
    # refused before any backend byte. Either way no complete request.
    if kind == "bare-lf-chunk":
        assert s["requests"] <= 1, s
    else:
        assert s["requests"] == 0 and s["connections_accepted"] == 0, (kind, s)
    # The gateway is fine.
    with H1(gw.port) as c:
        assert c.request("GET", "/echo?after").status == 200


def test_refusal_statuses(origin, gateway):
    gw = gateway(origin, "--max-header-list-size", "8k")
    origin.reset_stats()
    cases = [
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501),
        (b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
         501),
        (raw_request("GET", "/echo", [("X-Big", "x" * 9000)]), 431),
        (b"GET /echo#frag HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
        (b"QUERY /echo HTTP/1.1\r\nHost: gw\r\n\r\n", 501),
    ]
    for req, want in cases:
        with H1(gw.port) as c:
            c.send(req)
            r = c.response()
            assert r.status == want, (req[:60], r)
            assert r.header("connection") == "close"
            assert c.at_eof()
    assert origin.stats()["requests"] == 0


# --------------------------------------------------------------------------
# Backend failures


def test_close_mid_body_never_looks_complete(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        c.send(raw_request("GET", "/close-mid-body"))
        version, status, fields, _ = c.read_head()
        assert status == 200 and dict(fields)["content-length"] == "100000"
        with pytest.raises(Closed) as e:
            c.read_body(status, fields)
        assert len(e.value.partial) < 100000
    # HTTP/1.0 client, same thing: the connection ends short of the length.
    with H1(gw.port) as c:
        c.send(raw_request("GET", "/close-mid-body", version="1.0"))
        version, status, fields, _ = c.read_head()
        with pytest.raises(Closed):
            c.read_body(status, fields)


def test_malformed_chunk_is_502(origin, gateway):
    # The head and the bad chunk size come in the same bytes: the head is
    # held until they are parsed, so nothing of it reaches the client.
    gw = gateway(origin)
    with H1(gw.port) as c:
        c.send(raw_request("GET", "/malformed?kind=chunk"))
        version, status, fields, _ = c.read_head()
        assert status == 502, (status, fields)


def test_bad_backend_response_is_502(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        r = c.request("GET", "/malformed?kind=te-cl")
        assert r.status == 502, r
        # The request was read completely: the connection goes on.
        assert c.request("GET", "/echo?after").status == 200


def test_unreachable_backend_is_502(gateway):
    gw = gateway(closed_port(), "--backend-connect-timeout", "3s",
                 # every request must meet the refusal itself, not an ejection
                 "--backend-max-fails", "0")
    with H1(gw.port) as c:
        r = c.request("GET", "/echo")
        assert r.status == 502 and r.body, r
        r = c.request("POST", "/echo", body=b"x" * 1000)
        assert r.status == 502, r
        r = c.request("HEAD", "/echo")
        assert r.status == 502 and r.body == b""
    # A body the gateway never read: answered, then closed.
    with H1(gw.port) as c:
        c.send(raw_request("POST", "/echo", [("Content-Length", "100000"),
                                             ("Expect", "100-continue")]))
        r = c.response()
        assert r.status in (100, 502)
        if r.status == 100:
            r = c.response()
        assert r.status == 502 and r.header("connection") == "close"


# --------------------------------------------------------------------------
# h2c Upgrade


def test_curl_h2c_upgrade(origin, gateway):
    gw = gateway(origin)
    p = run_curl("-v", "--http2", "http://127.0.0.1:%d/echo?upgrade=1" % gw.port)
    assert p.returncode == 0, p.stderr
    err = p.stderr.decode()
    assert "HTTP/1.1 101" in err and "HTTP/2 200" in err, err
    e = json.loads(p.stdout)
    assert e["target"] == "/echo?upgrade=1"
    names = [k for k, _ in echo_headers(e)]
    for n in ("upgrade", "http2-settings", "connection"):
        assert n not in names, (n, names)
    # Large bodies over the upgraded connection.
    n = 2_000_000
    p = run_curl("--http2", "-o", "-", "http://127.0.0.1:%d/bytes/%d" % (gw.port, n))
    assert p.returncode == 0 and sha256(p.stdout) == pattern_sha256(n)


def test_nghttp_upgrade(origin, gateway):
    if NGHTTP is None:
        pytest.skip("nghttp not installed")
    gw = gateway(origin)
    base = "http://127.0.0.1:%d" % gw.port
    p = subprocess.run([NGHTTP, "-u", "-v", base + "/echo?ng=1", base + "/bytes/100000"],
                       capture_output=True, timeout=30 * SLOW)
    out = p.stdout.decode("latin-1")
    assert p.returncode == 0, out + p.stderr.decode()
    assert "HTTP Upgrade success" in out, out
    p = subprocess.run([NGHTTP, "-u", base + "/bytes/100000"], capture_output=True,
                       timeout=30 * SLOW)
    assert p.returncode == 0 and p.stdout == pattern_bytes(100000)


def _h2c_upgrade(port, path, eager_preface, method="GET"):
    """Upgrade by hand with python-h2; returns (101 head, [events])."""
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config=cfg)
    settings = conn.initiate_upgrade_connection()
    c = H1(port)
    try:
        c.send(raw_request(method, path, [
            ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
            ("HTTP2-Settings", settings.decode())]))
        if eager_preface:
            # Not waiting for the 101: these bytes must reach the HTTP/2 side.
            c.send(conn.data_to_send())
        version, status, fields, _ = c.read_head()
        assert status == 101, (status, fields)
        if not eager_preface:
            c.send(conn.data_to_send())
        events, data, done = [], c.buf, False
        c.buf = b""
        deadline = time.monotonic() + 10 * SLOW
        while not done and time.monotonic() < deadline:
            if data:
                for ev in conn.receive_data(data):
                    events.append(ev)
                    if isinstance(ev, h2.events.StreamEnded) and ev.stream_id == 1:
                        done = True
                    if isinstance(ev, h2.events.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                c.send(conn.data_to_send())
            if done:
                break
            data = c.sock.recv(1 << 16)
            if not data:
                break
        assert done, events
        return fields, events
    finally:
        c.close()


@pytest.mark.parametrize("eager", [False, True])
def test_h2c_upgrade_by_hand(origin, gateway, eager):
    gw = gateway(origin)
    fields, events = _h2c_upgrade(gw.port, "/echo?hand=1", eager)
    assert ("upgrade", "h2c") in fields
    resp = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert resp and resp[0].stream_id == 1 and (b":status", b"200") in resp[0].headers
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    e = json.loads(body)
    assert e["target"] == "/echo?hand=1"
    names = [k for k, _ in echo_headers(e)]
    assert "upgrade" not in names and "http2-settings" not in names


def test_h2c_upgrade_head(origin, gateway):
    gw = gateway(origin)
    fields, events = _h2c_upgrade(gw.port, "/bytes/1000", False, method="HEAD")
    resp = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert resp and (b"content-length", b"1000") in resp[0].headers
    assert not [e for e in events if isinstance(e, h2.events.DataReceived) and e.data]


def test_upgrade_with_body_stays_http11(origin, gateway):
    gw = gateway(origin)
    settings = base64.urlsafe_b64encode(b"\x00\x03\x00\x00\x00\x64").rstrip(b"=").decode()
    with H1(gw.port) as c:
        r = c.request("POST", "/echo", [("Connection", "Upgrade, HTTP2-Settings"),
                                        ("Upgrade", "h2c"), ("HTTP2-Settings", settings)],
                      body=b"hello")
        assert r.status == 200 and r.version == "HTTP/1.1", r
        e = r.json()
        assert e["body_sha256"] == sha256(b"hello")
        assert "upgrade" not in [k for k, _ in echo_headers(e)]
        # Bad settings: served over HTTP/1.1 too.
        r = c.request("GET", "/echo", [("Connection", "Upgrade, HTTP2-Settings"),
                                       ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAA")])
        assert r.status == 200, r


# --------------------------------------------------------------------------
# Bounded memory


def _rss_growth_while(gw, action, seconds):
    """Runs action() repeatedly for `seconds`; returns the RSS growth in MiB."""
    before = gw.rss_kib()
    peak = before
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        action()
        peak = max(peak, gw.rss_kib())
        time.sleep(0.02)
    return (peak - before) / 1024


def _warm_up(gw):
    with H1(gw.port) as c:
        r = c.request("GET", "/bytes/4000000")
        assert r.status == 200 and sha256(r.body) == pattern_sha256(4000000)
        r = c.request("POST", "/echo", body=b"x" * 4000000)
        assert r.status == 200


def test_slow_reader_memory_is_bounded(origin, gateway):
    gw = gateway(origin)
    _warm_up(gw)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    slow.connect(("127.0.0.1", gw.port))
    slow.sendall(raw_request("GET", "/bytes/104857600"))
    growth = _rss_growth_while(gw, lambda: None, 3)
    bound = 64 if SANITIZED else 32
    assert growth < bound, "RSS grew %.1f MiB for a client not reading 100 MiB" % growth
    slow.close()
    with H1(gw.port) as c:
        assert c.request("GET", "/echo?after").status == 200


def test_pipeline_flood_memory_is_bounded(origin, gateway):
    """A client that pipelines megabytes of requests and reads nothing."""
    gw = gateway(origin)
    _warm_up(gw)
    c = H1(gw.port)
    c.sock.setblocking(False)
    one = raw_request("GET", "/bytes/100000", [("X-Pad", "p" * 1000)])
    batch = one * 64
    sent = [0]

    def push():
        try:
            while True:
                sent[0] += c.sock.send(batch)
        except BlockingIOError:
            pass

    growth = _rss_growth_while(gw, push, 3)
    bound = 64 if SANITIZED else 32
    assert growth < bound, "RSS grew %.1f MiB after %d pipelined bytes" % (growth, sent[0])
    assert sent[0] < 64 * MiB, "the gateway read %d bytes of requests it cannot answer yet" % sent[0]
    c.close()
    with H1(gw.port) as c2:
        assert c2.request("GET", "/echo?after").status == 200


def test_upload_to_stalled_backend_memory_is_bounded(gateway):
    """The backend accepts but never reads: the client's upload must stop
    at the gateway's request buffer, not pile up in memory."""
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(16)
    try:
        gw = gateway(stalled.getsockname()[1], "--backend-response-timeout", "60s")
        c = H1(gw.port)
        c.send(raw_request("POST", "/upload", [("Content-Length", str(200 * MiB))]))
        c.sock.setblocking(False)
        piece = b"u" * (256 * 1024)
        sent = [0]

        def push():
            try:
                while sent[0] < 200 * MiB:
                    sent[0] += c.sock.send(piece)
            except BlockingIOError:
                pass

        growth = _rss_growth_while(gw, push, 3)
        bound = 64 if SANITIZED else 32
        assert growth < bound, "RSS grew %.1f MiB, %d bytes sent" % (growth, sent[0])
        assert sent[0] < 100 * MiB, sent[0]
        c.close()
    finally:
        stalled.close()


# --------------------------------------------------------------------------
# Lifecycle


def test_sigterm_with_idle_and_busy_h1_connections(origin, gateway):
    gw = gateway(origin)
    origin.reset_stats()
    idle = H1(gw.port)
    assert idle.request("GET", "/echo").status == 200
    busy = H1(gw.port)
    busy.send(raw_request("GET", "/delay/500"))
    deadline = time.monotonic() + 5 * SLOW
    while origin.stats()["requests"] < 2:  # the busy request is in flight
        assert time.monotonic() < deadline, origin.stats()
        time.sleep(0.01)
    gw.proc.proc.send_signal(15)
    # The request in flight is answered and closes the connection; the idle
    # connection closes.
    r = busy.response()
    assert r.status == 200 and r.body == b"delayed 500\n"
    assert r.header("connection") == "close"
    assert busy.at_eof()
    assert idle.at_eof()
    assert gw.proc.wait(10 * SLOW) == 0
    idle.close()
    busy.close()
