"""Interim (1xx) responses from the backend: 103 Early Hints and the like
reach HTTP/2 clients as informational HEADERS and HTTP/1.1 clients as
interim responses, before the final one; at most 8 per exchange; never to
HTTP/1.0 clients. A backend's 100 Continue reaches HTTP/2 clients; for
HTTP/1.1 clients the gateway answers Expect itself."""

import socket
import subprocess
import time

from conftest import SLOW

LINK = (b"link", b"</style.css>; rel=preload")


def read_until(sock, marker, timeout=10):
    """Everything the gateway sends until `marker` has arrived."""
    sock.settimeout(timeout * SLOW)
    data = b""
    while marker not in data:
        chunk = sock.recv(1 << 16)
        assert chunk, "EOF before %r; got %r" % (marker, data)
        data += chunk
    return data


def h1_exchange(port, request, marker):
    with socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW) as s:
        s.sendall(request)
        return read_until(s, marker)


def interim_heads(raw):
    """The 1xx heads of an HTTP/1.x byte stream, as (status line, [fields]),
    and the rest from the final status line on."""
    heads = []
    while raw.startswith(b"HTTP/1.1 1"):
        head, _, raw = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        heads.append((lines[0], [tuple(x.strip() for x in ln.split(b":", 1)) for ln in lines[1:]]))
    return heads, raw


def test_h2_103_before_the_final_response(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = c.get("/early-hints/1")
    r.assert_ok()
    assert bytes(r.body) == b"early hints 1\n"
    assert len(r.informational) == 1, r.informational
    info = r.informational[0]
    assert info[0] == (b":status", b"103"), info
    assert LINK in info and (b"x-hint", b"1") in info, info
    # Interim heads carry no framing or hop-by-hop fields.
    assert all(k not in (b"content-length", b"connection") for k, _ in info), info


def test_h2_interim_responses_are_bounded(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = c.get("/early-hints/12")
        r.assert_ok()
        assert bytes(r.body) == b"early hints 12\n"
        hints = [dict(i)[b"x-hint"] for i in r.informational]
        assert hints == [str(i).encode() for i in range(1, 9)], hints
        # The count is per exchange: the next request gets its own.
        r = c.get("/early-hints/3")
        r.assert_ok()
        assert len(r.informational) == 3


def test_h2_status_103_and_102(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        for code in (102, 103):
            r = c.get("/status/%d" % code)
            r.assert_ok()
            assert bytes(r.body) == b"status %d\n" % code
            assert [dict(i)[b":status"] for i in r.informational] == [str(code).encode()]


def test_h2_100_continue_is_relayed(origin, gateway):
    """An HTTP/2 client that sent Expect gets the backend's 100 (else it
    waits out its own timer before sending the body: curl waits 1 s)."""
    gw = gateway(origin)
    with gw.client() as c:
        r = c.fetch("POST", "/continue", body=b"some body",
                    headers=[("expect", "100-continue")])
        r.assert_ok()
        assert bytes(r.body) == b"after continue\n"
        assert [dict(i)[b":status"] for i in r.informational] == [b"100"], r.informational


def test_h2_curl_expect_100_continue_does_not_wait(origin, gateway):
    gw = gateway(origin)
    body = b"x" * (300 * 1024)
    start = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-H", "Expect: 100-continue",
         "--expect100-timeout", "30", "--data-binary", "@-", "-o", "-",
         "http://127.0.0.1:%d/continue" % gw.port],
        input=body, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"after continue\n", out.stdout
    # With the 30 s expect timeout, only a relayed 100 lets curl send in time.
    assert time.monotonic() - start < 10 * SLOW


def test_h1_103_interim_response(origin, gateway):
    gw = gateway(origin)
    raw = h1_exchange(gw.port, b"GET /early-hints/2 HTTP/1.1\r\nHost: gw\r\n\r\n",
                      b"early hints 2\n")
    heads, rest = interim_heads(raw)
    assert [h[0] for h in heads] == [b"HTTP/1.1 103 Early Hints"] * 2, raw
    for i, (_, fields) in enumerate(heads, 1):
        assert LINK in fields and (b"x-hint", str(i).encode()) in fields, fields
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), raw


def test_h1_interim_responses_are_bounded(origin, gateway):
    gw = gateway(origin)
    raw = h1_exchange(gw.port, b"GET /early-hints/20 HTTP/1.1\r\nHost: gw\r\n\r\n",
                      b"early hints 20\n")
    heads, rest = interim_heads(raw)
    assert len(heads) == 8, raw
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), raw


def test_h10_client_gets_no_interim_response(origin, gateway):
    gw = gateway(origin)
    raw = h1_exchange(gw.port, b"GET /early-hints/2 HTTP/1.0\r\nHost: gw\r\n\r\n",
                      b"early hints 2\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw
    assert b" 103 " not in raw, raw


def test_h1_expect_100_continue_once(origin, gateway):
    # The gateway answers Expect itself; the backend's own 100 (the
    # /continue route always sends one) is not relayed a second time.
    gw = gateway(origin)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10 * SLOW) as s:
        s.sendall(b"POST /continue HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        first = read_until(s, b"\r\n\r\n")
        assert first == b"HTTP/1.1 100 Continue\r\n\r\n", first
        s.sendall(b"body")
        raw = read_until(s, b"after continue\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw
    assert b"100 Continue" not in raw, raw
