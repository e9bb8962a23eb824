"""
WebSockets through the gateway (issue 12): RFC 8441 extended CONNECT from
HTTP/2 clients and HTTP/1.1 Upgrade, each tunnelled to an HTTP/1.1
WebSocket backend on its own connection.
"""

import base64
import hashlib
import json
import os
import socket
import time

import pytest

from conftest import SLOW
from wsutil import FrameReader, H2Ws, WsEchoServer, accept_for, frame, parse_head, read_head

ENABLE_CONNECT_PROTOCOL = 0x8


@pytest.fixture
def ws_backend():
    s = WsEchoServer()
    yield s
    s.close()


def messages(total=20 * 1024, size=4000):
    """Distinct binary messages adding up to total bytes."""
    out, i = [], 0
    while total > 0:
        n = min(size, total)
        out.append(hashlib.sha256(b"%d" % i).digest() * (n // 32) + os.urandom(n % 32))
        total -= n
        i += 1
    return out


def echo_over_h2(client, sid, msgs):
    """Sends msgs as masked frames, returns the payloads echoed back."""
    for m in msgs:
        client.send(sid, frame(m))
    reader, got = FrameReader(), []
    want = sum(len(m) for m in msgs)
    seen = [0]

    def have_all():
        got.extend(reader.feed(client.data.pop(sid, b"")))
        return sum(len(p) for _, p in got) >= want

    client.read_until(have_all)
    del seen
    return b"".join(p for _, p in got)


def test_h2_settings_advertise_extended_connect(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    assert c.remote_setting(ENABLE_CONNECT_PROTOCOL) == 1
    c.close()


def test_h2_no_extended_connect_when_off(ws_backend, gateway):
    gw = gateway(ws_backend.port, "--max-tunnels", "0")
    c = H2Ws(gw.port)
    assert c.remote_setting(ENABLE_CONNECT_PROTOCOL) in (None, 0)
    c.close()


def test_h2_websocket_echo_20k_each_way(ws_backend, gateway, tmp_path):
    log = tmp_path / "access.log"
    gw = gateway(ws_backend.port, "--access-log", str(log), "--access-log-format", "json")
    c = H2Ws(gw.port)
    sid = c.connect("/ws?room=1", extra=[("sec-websocket-protocol", "chat, superchat"),
                                         ("origin", "http://example.com"),
                                         ("cookie", "a=1"), ("cookie", "b=2")])
    h = c.wait_response(sid)
    assert h is not None, "stream reset: %r" % c.reset
    assert h[b":status"] == b"200"
    assert h.get(b"sec-websocket-protocol") == b"chat"
    for name in (b"sec-websocket-accept", b"upgrade", b"connection", b"content-length"):
        assert name not in h

    msgs = messages()
    sent = b"".join(msgs)
    echoed = echo_over_h2(c, sid, msgs)
    assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(sent).hexdigest()

    # What the backend saw: an HTTP/1.1 WebSocket handshake.
    first, f = ws_backend.requests[0]
    assert first == "GET /ws?room=1 HTTP/1.1"
    assert f["upgrade"] == ["websocket"]
    assert f["connection"] == ["upgrade"]
    assert len(base64.b64decode(f["sec-websocket-key"][0], validate=True)) == 16
    assert f["sec-websocket-version"] == ["13"]
    assert f["sec-websocket-protocol"] == ["chat, superchat"]
    assert f["origin"] == ["http://example.com"]
    assert f["cookie"] == ["a=1; b=2"]
    assert f["host"] == ["127.0.0.1"]

    # The close handshake: the backend answers and closes, the client's
    # stream ends; then the client ends its side.
    c.send(sid, frame(b"\x03\xe8", 0x8))
    c.read_until(lambda: sid in c.ended)
    c.end(sid)
    assert ws_backend.wait_ended(1, 5)
    c.close()

    # One access-log line, with the bytes each way.
    deadline = time.monotonic() + 5 * SLOW
    lines = []
    while time.monotonic() < deadline:
        lines = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
        if lines:
            break
        time.sleep(0.05)
    assert len(lines) == 1, lines
    rec = lines[0]
    assert rec["status"] == 200
    assert rec["bytes_in"] >= len(sent)
    assert rec["bytes_out"] >= len(sent)
    assert rec["outcome"] == "ok"


def test_h2_backend_refusal_is_a_normal_response(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.connect("/status/403")
    h = c.wait_response(sid)
    assert h[b":status"] == b"403"
    assert h[b"x-backend"] == b"ws"
    c.read_until(lambda: sid in c.ended)
    assert c.data.get(sid) == b"status 403 from the backend\n"
    assert ws_backend.wait_ended(1, 5)
    c.close()


def test_h2_client_going_away_ends_backend_connection(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.connect()
    assert c.wait_response(sid)[b":status"] == b"200"
    assert echo_over_h2(c, sid, [b"hello"]) == b"hello"
    # A reset of the stream closes the backend connection.
    c.conn.reset_stream(sid)
    c.flush()
    assert ws_backend.wait_ended(1, 5)
    # So does the end of the client's connection.
    sid = c.connect()
    assert c.wait_response(sid)[b":status"] == b"200"
    c.close()
    assert ws_backend.wait_ended(2, 5)


def test_h2_client_end_stream_half_closes_backend(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.connect()
    assert c.wait_response(sid)[b":status"] == b"200"
    # END_STREAM after a frame: the backend reads it, then EOF; it closes,
    # and the client's stream ends.
    c.send(sid, frame(b"bye"), end=True)
    c.read_until(lambda: sid in c.ended)
    assert FrameReader().feed(c.data[sid]) == [(2, b"bye")]
    assert ws_backend.wait_ended(1, 5)
    c.close()


def test_h2_max_tunnels(ws_backend, gateway):
    gw = gateway(ws_backend.port, "--max-tunnels", "1")
    c = H2Ws(gw.port)
    first = c.connect()
    assert c.wait_response(first)[b":status"] == b"200"
    second = c.connect()
    h = c.wait_response(second)
    assert h is not None and h[b":status"] == b"503"
    # Once the first is gone, a new one is taken.
    c.conn.reset_stream(first)
    c.flush()
    assert ws_backend.wait_ended(1, 5)
    deadline = time.monotonic() + 5 * SLOW
    while True:
        third = c.connect()
        h = c.wait_response(third)
        if h[b":status"] == b"200" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert h[b":status"] == b"200"
    c.close()


def test_h2_idle_tunnel_ends(ws_backend, gateway):
    gw = gateway(ws_backend.port, "--tunnel-idle-timeout", "300ms")
    c = H2Ws(gw.port)
    sid = c.connect()
    assert c.wait_response(sid)[b":status"] == b"200"
    c.read_until(lambda: sid in c.reset or sid in c.ended, timeout=5 * SLOW)
    assert ws_backend.wait_ended(1, 5)
    c.close()


def test_h2_other_protocol_not_implemented(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(b":method", b"CONNECT"), (b":protocol", b"webtransport"),
                              (b":scheme", b"http"), (b":path", b"/x"),
                              (b":authority", b"127.0.0.1")])
    c.flush()
    h = c.wait_response(sid)
    assert h[b":status"] == b"501"
    assert not ws_backend.requests
    c.close()
