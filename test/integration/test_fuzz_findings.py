"""What test/fuzz/fuzz_h2_session found (issue 13), checked end to end."""

import socket
import threading
import time

from conftest import SLOW
from test_h1 import H1, raw_request
from test_reload import conf_text, gw, origins, reload, wait_log, write  # noqa: F401 (fixtures)

UNUSED = "pools of a previous configuration are unused"


def test_refused_http1_request_leaves_its_pool_unused(tmp_path, origins, gw):
    """An HTTP/1.1 request refused before it reaches a backend (501, 400)
    has its pool set for the access log but was never counted on it: freeing
    it must not count it off either, or the pool's count of exchanges wraps
    and a reload never closes (nor frees) the pools it replaced."""
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a"))
    p = gw(path, "--log-level", "info")
    with H1(p.port) as c:
        c.send(raw_request("QUERY", "/echo"))
        assert c.response().status == 501
    with H1(p.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: \x9f\xf2\r\n\r\n")
        assert c.response().status == 400
    with H1(p.port) as c:
        assert c.request("GET", "/echo").status == 200
    write(path, conf_text(a.port, b.port, "b"))
    reload(p)
    wait_log(p, UNUSED)


class EarlyAnswer:
    """A backend that answers every request as soon as its head is in,
    without waiting for a body (as one refusing an upload does)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        with conn:
            while True:
                try:
                    got = conn.recv(65536)
                except OSError:
                    return
                if not got:
                    return
                data += got
                while b"\r\n\r\n" in data:
                    data = data.split(b"\r\n\r\n", 1)[1]
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    def close(self):
        self.sock.close()


def test_request_cut_short_behind_a_pipelined_one_ends_the_connection(gateway):
    """A client pipelines a whole request and the head of a second with part
    of its body, then half-closes. The second request becomes active after
    the EOF, so on_eof never saw it: once its (early) answer is out, the
    connection must close instead of waiting for a body that cannot come
    (it held the connection and its exchange for good: reading had stopped
    at the EOF, and no timer runs while a request is in progress)."""
    backend = EarlyAnswer()
    try:
        gw = gateway(backend.port)
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5 * SLOW)
        s.sendall(b"GET /a HTTP/1.1\r\nHost: gw\r\n\r\n"
                  b"POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nabc")
        s.shutdown(socket.SHUT_WR)
        got = b""
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        else:
            raise AssertionError("no EOF from the gateway; got %r" % got)
        s.close()
        # The first request is always answered. The second is answered only
        # if the backend's early answer had started when the EOF was read;
        # if the EOF came first, the cut-short request is dropped with the
        # connection (as nginx and HAProxy do). Either way the connection
        # ends, which is what this finding was about.
        assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
        assert got.count(b"HTTP/1.1 200 OK") in (1, 2), got
        assert got.endswith(b"\r\n\r\nok"), got
    finally:
        backend.close()
