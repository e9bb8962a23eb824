"""Request trailers reach the backend as the trailer section of a chunked
body: HTTP/2 trailers (a HEADERS frame with END_STREAM after the DATA) and
the trailers of a chunked HTTP/1.1 request. Fields that only mean something
in a head (framing, routing, hop-by-hop, the forwarding fields the gateway
writes) are left out; a request sent with Content-Length cannot carry them
over HTTP/1.1 and they are dropped."""

import json
import socket

from conftest import SLOW, pattern_bytes, sha256


def echo_trailers(echo):
    return [(k.lower(), v) for k, v in echo["trailers"]]


def echo_header(echo, name):
    return [v for k, v in echo["headers"] if k.lower() == name]


def h2_request_with_trailers(c, path, chunks, trailers, headers=(), body=None):
    sid = c.request("POST", path, chunks=chunks, body=body, headers=headers, end=False)
    # The trailers follow the last DATA, which waits for flow control.
    c.run_until(lambda: sid not in c.uploads, what="the body sent")
    c.conn.send_headers(sid, trailers, end_stream=True)
    c.flush()
    return c.run([sid])[0]


def test_h2_grpc_style_trailers(origin, gateway):
    gw = gateway(origin)
    data = pattern_bytes(100000)
    with gw.client() as c:
        r = h2_request_with_trailers(
            c, "/echo", [data[:40000], data[40000:]],
            [(b"grpc-status", b"0"), (b"grpc-message", b"all good"), (b"x-checksum", b"abc")],
            headers=[("te", "trailers"), ("content-type", "application/grpc")])
        r.assert_ok()
        e = r.json()
        assert e["body_length"] == len(data) and e["body_sha256"] == sha256(data)
        assert echo_header(e, "transfer-encoding") == ["chunked"], e["headers"]
        assert echo_trailers(e) == [("grpc-status", "0"), ("grpc-message", "all good"),
                                    ("x-checksum", "abc")], e
        # The connection to the backend is reused: the framing was right.
        r = c.get("/echo")
        r.assert_ok()
        assert r.json()["connection_id"] == e["connection_id"]


def test_h2_trailers_without_data(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = h2_request_with_trailers(c, "/echo", [], [(b"x-only", b"trailers")])
    r.assert_ok()
    e = r.json()
    assert e["body_length"] == 0
    assert echo_trailers(e) == [("x-only", "trailers")], e


def test_h2_head_only_trailer_fields_are_dropped(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = h2_request_with_trailers(c, "/echo", [b"abc"], [
            (b"x-forwarded-for", b"6.6.6.6"), (b"forwarded", b"for=6.6.6.6"),
            (b"via", b"1.1 evil"), (b"x-kept", b"1")])
    r.assert_ok()
    e = r.json()
    assert echo_trailers(e) == [("x-kept", "1")], e
    assert echo_header(e, "x-forwarded-for") == ["127.0.0.1"], e["headers"]


def test_h2_trailers_with_content_length_are_dropped(origin, gateway):
    # (The backend may answer before the trailers arrive, so whether the
    # debug line is written is a race; what the backend got is not.)
    gw = gateway(origin)
    with gw.client() as c:
        r = h2_request_with_trailers(c, "/echo", None, [(b"grpc-status", b"0")], body=b"hello")
        r.assert_ok()
        e = r.json()
        assert e["body_length"] == 5 and echo_trailers(e) == [], e
        assert echo_header(e, "content-length") == ["5"], e["headers"]
        c.get("/echo").assert_ok()


def test_h2_trailers_over_the_list_limit(origin, gateway):
    gw = gateway(origin, "--max-header-list-size", "1024")
    with gw.client() as c:
        r = h2_request_with_trailers(c, "/echo", [b"abc"],
                                     [(b"x-big-%d" % i, b"v" * 100) for i in range(12)])
        assert r.status == 431 or r.reset is not None, r.describe()
        c.get("/echo").assert_ok()


def h1_roundtrip(port, raw, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW) as s:
        s.sendall(raw)
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = [int(ln.split(b":")[1]) for ln in head.split(b"\r\n")
                          if ln.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    return head, body[:length[0]]
            chunk = s.recv(1 << 16)
            assert chunk, "EOF; got %r" % data
            data += chunk


def test_h1_chunked_request_trailers(origin, gateway):
    gw = gateway(origin)
    raw = (b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
           b"TE: trailers\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n"
           b"X-Checksum: abc\r\nGrpc-Status: 0\r\nHost: evil\r\nContent-Length: 99\r\n"
           b"X-Forwarded-For: 6.6.6.6\r\n\r\n")
    head, body = h1_roundtrip(gw.port, raw)
    assert head.startswith(b"HTTP/1.1 200"), head
    e = json.loads(body)
    assert e["body_length"] == 11 and e["body_sha256"] == sha256(b"hello world")
    assert echo_trailers(e) == [("x-checksum", "abc"), ("grpc-status", "0")], e


def test_h1_chunked_request_without_trailers(origin, gateway):
    gw = gateway(origin)
    raw = (b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n0\r\n\r\n")
    head, body = h1_roundtrip(gw.port, raw)
    assert head.startswith(b"HTTP/1.1 200"), head
    e = json.loads(body)
    assert e["body_length"] == 5 and echo_trailers(e) == []


def test_h2_trailers_sent_again_when_the_request_is_replayed(origin, gateway):
    # A PUT on a stale keep-alive connection is replayed on a fresh one:
    # the body and the trailers go again.
    gw = gateway(origin, "--backend-max-connections", "1", "--backend-idle-timeout", "60s",
                 "--log-level", "info")
    with gw.client() as c:
        used = c.get("/echo?warm").json()["connection_id"]
        origin.kill_next()  # the next request on the pooled connection is reset
        sid = c.request("PUT", "/echo?put", chunks=[b"abc", b"def"], end=False)
        c.run_until(lambda: sid not in c.uploads, what="the body sent")
        c.conn.send_headers(sid, [(b"x-checksum", b"abcdef")], end_stream=True)
        r = c.run([sid])[0]
    r.assert_ok()
    e = r.json()
    assert e["connection_id"] != used, "the killed connection answered?"
    assert e["body_length"] == 6 and echo_trailers(e) == [("x-checksum", "abcdef")], e
    assert "retrying on a fresh connection" in gw.stderr_text()
