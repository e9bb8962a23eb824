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

pytest_plugins = ["tlsutil"]


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

    def have_all():
        got.extend(reader.feed(client.data.pop(sid, b"")))
        return sum(len(p) for _, p in got) >= want

    client.read_until(have_all)
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


def test_h2_backend_half_close_keeps_client_side_open(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.connect("/halfclose")
    assert c.wait_response(sid)[b":status"] == b"200"
    # The backend's EOF is END_STREAM; the client may still send.
    c.read_until(lambda: sid in c.ended)
    assert FrameReader().feed(c.data[sid]) == [(2, b"bye")]
    c.send(sid, frame(b"after 1"))
    c.send(sid, frame(b"after 2"), end=True)
    assert ws_backend.wait_ended(1, 5)
    assert ws_backend.after_halfclose == [b"after 1", b"after 2"]
    assert sid not in c.reset
    c.close()


def test_h2_backend_success_without_switching_is_502(ws_backend, gateway):
    # A 2xx would tell an RFC 8441 client that the tunnel is open.
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.connect("/status/200")
    h = c.wait_response(sid)
    assert h[b":status"] == b"502"
    assert ws_backend.wait_ended(1, 5)
    c.close()


def test_wrong_sec_websocket_accept_is_502(ws_backend, gateway):
    # The backend must prove it read the handshake (RFC 6455 4.2.2).
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.connect("/badaccept")
    assert c.wait_response(sid)[b":status"] == b"502"
    c.close()
    s, _, first, _, _ = h1_upgrade(gw.port, path="/badaccept")
    s.close()
    assert first.startswith("HTTP/1.1 502")
    assert ws_backend.wait_ended(2, 5)


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


# --------------------------------------------------------------------------
# HTTP/1.1 clients: Upgrade: websocket


def h1_upgrade(port, path="/ws", key=None, extra=b"", behind=b"", wrap=None):
    """Sends a WebSocket handshake (over wrap(socket), e.g. TLS, if given);
    returns (sock, status line, fields, rest)."""
    key = key or base64.b64encode(os.urandom(16))
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    if wrap is not None:
        s = wrap(s)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
              b"%s\r\n%s" % (path.encode(), key, extra, behind))
    head, rest = read_head(s, 10 * SLOW)
    first, fields = parse_head(head)
    return s, key, first, fields, rest


@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
def test_h1_backend_half_close_keeps_client_side_open(ws_backend, gateway, pki, tls):
    """The backend ends its side first: the client reads its last bytes and
    the gateway's FIN (over TLS a close_notify first), and what it still
    sends reaches the backend until its own FIN (as with RFC 8441's
    END_STREAM)."""
    import ssl
    from tlsutil import client_context, tls_flags
    gw = gateway(ws_backend.port, *(tls_flags(pki, "default") if tls else ()))
    wrap = None
    if tls:
        ctx = client_context(pki, alpn=("http/1.1",))
        wrap = lambda raw: ctx.wrap_socket(raw, server_hostname="default.test",  # noqa: E731
                                           suppress_ragged_eofs=False)
    s, _, first, _, rest = h1_upgrade(gw.port, path="/halfclose", wrap=wrap)
    try:
        assert first == "HTTP/1.1 101 Switching Protocols"
        got = rest
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
        assert FrameReader().feed(got) == [(2, b"bye")]
        s.sendall(frame(b"after 1"))
        s.sendall(frame(b"after 2"))
        s.shutdown(socket.SHUT_WR)
        assert ws_backend.wait_ended(1, 5)
        assert ws_backend.after_halfclose == [b"after 1", b"after 2"]
        s.settimeout(5 * SLOW)
        assert s.recv(100) == b""
    finally:
        s.close()


def echo_over_socket(s, msgs, rest=b""):
    for m in msgs:
        s.sendall(frame(m))
    reader, got = FrameReader(), []
    got.extend(reader.feed(rest))
    want = sum(len(m) for m in msgs)
    deadline = time.monotonic() + 10 * SLOW
    while sum(len(p) for _, p in got) < want:
        assert time.monotonic() < deadline, "echo incomplete"
        data = s.recv(65536)
        assert data, "connection closed mid-echo"
        got.extend(reader.feed(data))
    return b"".join(p for _, p in got)


def test_h1_websocket_echo_20k_each_way(ws_backend, gateway, tmp_path):
    log = tmp_path / "access.log"
    gw = gateway(ws_backend.port, "--access-log", str(log), "--access-log-format", "json")
    s, key, first, f, rest = h1_upgrade(gw.port, extra=b"Sec-WebSocket-Protocol: chat\r\n")
    try:
        assert first == "HTTP/1.1 101 Switching Protocols"
        assert f["upgrade"] == ["websocket"]
        assert f["connection"][0].lower() == "upgrade"
        # The backend answered the client's own key.
        assert f["sec-websocket-accept"] == [accept_for(key).decode()]
        assert f["sec-websocket-protocol"] == ["chat"]
        assert "content-length" not in f and "transfer-encoding" not in f

        msgs = messages()
        sent = b"".join(msgs)
        echoed = echo_over_socket(s, msgs, rest)
        assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(sent).hexdigest()

        first_b, fb = ws_backend.requests[0]
        assert first_b == "GET /ws HTTP/1.1"
        assert fb["upgrade"] == ["websocket"]
        assert fb["connection"] == ["upgrade"]
        assert fb["sec-websocket-key"] == [key.decode()]
        assert fb["sec-websocket-version"] == ["13"]

        # Close handshake: the backend closes, so does the gateway.
        s.sendall(frame(b"\x03\xe8", 0x8))
        tail = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            tail += data
        assert FrameReader().feed(tail) == [(0x8, b"\x03\xe8")]
    finally:
        s.close()
    assert ws_backend.wait_ended(1, 5)
    deadline = time.monotonic() + 5 * SLOW
    lines = []
    while time.monotonic() < deadline and not lines:
        lines = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
        time.sleep(0.05)
    assert len(lines) == 1, lines
    assert lines[0]["status"] == 101
    assert lines[0]["protocol"] == "http/1.1"
    assert lines[0]["bytes_in"] >= len(sent) and lines[0]["bytes_out"] >= len(sent)


def test_h1_bytes_behind_the_request_reach_the_tunnel(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    s, _, first, _, rest = h1_upgrade(gw.port, behind=frame(b"early"))
    try:
        assert first == "HTTP/1.1 101 Switching Protocols"
        reader = FrameReader()
        got = reader.feed(rest)
        deadline = time.monotonic() + 5 * SLOW
        while not got and time.monotonic() < deadline:
            got = reader.feed(s.recv(65536))
        assert got == [(2, b"early")]
    finally:
        s.close()


def test_h1_backend_refusal_is_a_normal_response(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    s, _, first, f, rest = h1_upgrade(gw.port, path="/status/403")
    try:
        assert first.startswith("HTTP/1.1 403")
        assert f["x-backend"] == ["ws"]
        assert f["connection"] == ["close"]
        body = rest
        while True:
            data = s.recv(65536)
            if not data:
                break
            body += data
        assert body == b"status 403 from the backend\n"
    finally:
        s.close()
    assert ws_backend.wait_ended(1, 5)


def test_h1_client_half_close_reaches_backend(ws_backend, gateway):
    # The client's EOF shuts down the backend's receiving side; what the
    # backend sends before it closes still reaches the client. (The
    # backend's EOF closes an HTTP/1.1 client's connection whole.)
    gw = gateway(ws_backend.port)
    s, _, first, _, rest = h1_upgrade(gw.port)
    try:
        assert first == "HTTP/1.1 101 Switching Protocols"
        got = rest
        s.sendall(frame(b"last words"))
        s.shutdown(socket.SHUT_WR)
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
        assert FrameReader().feed(got) == [(2, b"last words")]
    finally:
        s.close()
    assert ws_backend.wait_ended(1, 5)


def test_h1_client_close_ends_backend_connection(ws_backend, gateway):
    gw = gateway(ws_backend.port)
    s, _, first, _, rest = h1_upgrade(gw.port)
    assert first == "HTTP/1.1 101 Switching Protocols"
    assert echo_over_socket(s, [b"ping"], rest) == b"ping"
    s.close()
    assert ws_backend.wait_ended(1, 5)


def test_h1_max_tunnels(ws_backend, gateway):
    gw = gateway(ws_backend.port, "--max-tunnels", "1")
    s1, _, first, _, _ = h1_upgrade(gw.port)
    try:
        assert first == "HTTP/1.1 101 Switching Protocols"
        s2, _, first2, f2, _ = h1_upgrade(gw.port)
        s2.close()
        assert first2.startswith("HTTP/1.1 503")
        assert f2["retry-after"] == ["1"]
    finally:
        s1.close()


def test_h1_upgrade_off_is_a_plain_get(ws_backend, gateway, origin):
    # With max_tunnels = 0 the Upgrade is dropped, as before: the origin
    # answers a plain GET.
    gw = gateway(origin, "--max-tunnels", "0")
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10 * SLOW)
    try:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        head, _ = read_head(s, 10 * SLOW)
        assert head.startswith(b"HTTP/1.1 200")
    finally:
        s.close()


# --------------------------------------------------------------------------
# Failures and backpressure


def test_unreachable_backend_is_502(gateway):
    from conftest import closed_port
    gw = gateway(closed_port())
    c = H2Ws(gw.port)
    sid = c.connect()
    assert c.wait_response(sid)[b":status"] == b"502"
    c.close()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10 * SLOW)
    try:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head, _ = read_head(s, 10 * SLOW)
        assert head.startswith(b"HTTP/1.1 502")
    finally:
        s.close()


def test_h2_megabytes_through_small_buffers(ws_backend, gateway):
    # Both windows and the response buffer are small: the tunnel has to
    # pause and resume both ways, and every byte still arrives in order.
    gw = gateway(ws_backend.port, "--request-buffer-size", "16k", "--response-buffer-size", "16k")
    c = H2Ws(gw.port)
    sid = c.connect()
    assert c.wait_response(sid)[b":status"] == b"200"
    msgs = messages(total=2 * 1024 * 1024, size=60000)
    sent = b"".join(msgs)
    echoed = echo_over_h2(c, sid, msgs)
    assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(sent).hexdigest()
    c.conn.reset_stream(sid)
    c.flush()
    assert ws_backend.wait_ended(1, 5)
    c.close()


def test_h1_megabytes_through_small_buffers(ws_backend, gateway):
    import threading
    gw = gateway(ws_backend.port, "--request-buffer-size", "16k", "--response-buffer-size", "16k")
    s, _, first, _, rest = h1_upgrade(gw.port)
    try:
        assert first == "HTTP/1.1 101 Switching Protocols"
        msgs = messages(total=2 * 1024 * 1024, size=60000)
        sent = b"".join(msgs)
        t = threading.Thread(target=lambda: [s.sendall(frame(m)) for m in msgs], daemon=True)
        t.start()
        reader, got = FrameReader(), []
        got.extend(reader.feed(rest))
        deadline = time.monotonic() + 30 * SLOW
        while sum(len(p) for _, p in got) < len(sent):
            assert time.monotonic() < deadline
            data = s.recv(65536)
            assert data
            got.extend(reader.feed(data))
        t.join(10)
        echoed = b"".join(p for _, p in got)
        assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(sent).hexdigest()
    finally:
        s.close()
    assert ws_backend.wait_ended(1, 5)


def test_h2_data_before_the_200_waits_for_the_101(ws_backend, gateway):
    # A client that sends at once: its bytes wait in the gateway until the
    # backend has switched, then go through in order.
    gw = gateway(ws_backend.port)
    c = H2Ws(gw.port)
    sid = c.connect()
    c.send(sid, frame(b"first") + frame(b"second"))
    assert c.wait_response(sid)[b":status"] == b"200"
    reader, got = FrameReader(), []

    def both():
        got.extend(reader.feed(c.data.pop(sid, b"")))
        return len(got) >= 2

    c.read_until(both)
    assert got == [(2, b"first"), (2, b"second")]
    c.close()


def test_tunnels_spread_over_servers_and_skip_a_dead_one(gateway):
    from conftest import closed_port
    a, b = WsEchoServer(), WsEchoServer()
    try:
        gw = gateway(a.port, "--backend", "127.0.0.1:%d" % b.port,
                     "--backend", "127.0.0.1:%d" % closed_port())
        c = H2Ws(gw.port)
        sids = [c.connect() for _ in range(6)]
        for sid in sids:
            # The dead server's connect fails and the tunnel goes to another.
            assert c.wait_response(sid)[b":status"] == b"200"
        assert len(a.requests) >= 2 and len(b.requests) >= 2
        assert len(a.requests) + len(b.requests) == 6
        c.close()
    finally:
        a.close()
        b.close()


def test_tunnel_to_a_tls_backend(gateway, pki):
    # tls = on: the tunnel's connection is HTTPS, verified, with SNI.
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.crt("a"), pki.key("a"))
    b = WsEchoServer(ssl_context=ctx)
    try:
        gw = gateway(b.port, "--backend-tls", "on", "--backend-tls-sni", "a.test",
                     "--backend-tls-ca-file", pki.crt("ca"))
        c = H2Ws(gw.port)
        sid = c.connect()
        assert c.wait_response(sid)[b":status"] == b"200"
        msgs = messages(total=200 * 1024, size=30000)
        sent = b"".join(msgs)
        assert hashlib.sha256(echo_over_h2(c, sid, msgs)).digest() == hashlib.sha256(sent).digest()
        c.close()
        s, _, first, _, rest = h1_upgrade(gw.port)
        try:
            assert first == "HTTP/1.1 101 Switching Protocols"
            assert echo_over_socket(s, [b"over tls"], rest) == b"over tls"
        finally:
            s.close()
        assert b.wait_ended(2, 5)
    finally:
        b.close()
    # A name the certificate does not have: refused before any byte.
    b = WsEchoServer(ssl_context=ctx)
    try:
        gw = gateway(b.port, "--backend-tls", "on", "--backend-tls-sni", "b.test",
                     "--backend-tls-ca-file", pki.crt("ca"))
        c = H2Ws(gw.port)
        sid = c.connect()
        assert c.wait_response(sid)[b":status"] == b"502"
        assert not b.requests
        c.close()
    finally:
        b.close()


# --------------------------------------------------------------------------
# Reload


def test_reload_keeps_open_tunnels_and_retires_their_pool_after_them(tmp_path):
    import signal
    from conftest import H2GW_BIN, Proc, check_sanitizer_output

    a, b = WsEchoServer(), WsEchoServer()
    path = tmp_path / "gw.conf"

    def conf(route_to):
        text = ("[listen]\naddress = 127.0.0.1:0\n[backend a]\nserver = 127.0.0.1:%d\n"
                "[backend b]\nserver = 127.0.0.1:%d\n[route r]\npath_prefix = /\nbackend = %s\n"
                % (a.port, b.port, route_to))
        with open(str(path) + ".tmp", "w") as f:
            f.write(text)
        os.replace(str(path) + ".tmp", str(path))

    def wait_log(text, count=1):
        deadline = time.monotonic() + 5 * SLOW
        while p.stderr_text().count(text) < count:
            assert time.monotonic() < deadline, "no %r in:\n%s" % (text, p.stderr_text())
            time.sleep(0.02)

    conf("a")
    p = Proc("h2gw", [H2GW_BIN, "--config", str(path), "--log-level", "info"], tmp_path, 10 * SLOW)
    try:
        c = H2Ws(p.port)
        old = c.connect()
        assert c.wait_response(old)[b":status"] == b"200"
        assert echo_over_h2(c, old, [b"before"]) == b"before"

        conf("b")
        os.kill(p.pid, signal.SIGHUP)
        wait_log("configuration reloaded")
        new = c.connect()
        assert c.wait_response(new)[b":status"] == b"200"
        assert echo_over_h2(c, new, [b"new"]) == b"new"
        # The tunnel opened before the reload goes on, on the old pool.
        assert echo_over_h2(c, old, [b"after"]) == b"after"
        assert len(a.requests) == 1 and len(b.requests) == 1
        assert "pools of a previous configuration are unused" not in p.stderr_text()
        # Its end retires the old pool.
        c.conn.reset_stream(old)
        c.flush()
        assert a.wait_ended(1, 5)
        wait_log("pools of a previous configuration are unused")
        assert echo_over_h2(c, new, [b"still"]) == b"still"
        c.close()
        assert b.wait_ended(1, 5)
    finally:
        code = p.stop(15)
        err = p.stderr_text()
        a.close()
        b.close()
    check_sanitizer_output(err, "h2gw")
    assert code == 0, err
