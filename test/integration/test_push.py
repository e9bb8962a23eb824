"""HTTP/2 server push from `Link: <PATH>; rel=preload` (server_push, on by
default) and the same fields as a 103 Early Hints (early_hints_from_link,
off by default)."""

import hashlib
import shutil
import subprocess
import urllib.parse

import h2.events
import h2.settings
import pytest

from conftest import SLOW, H2Client, Response, echo_header_values
from test_reload import conf_text, gw, origins, reload, write  # noqa: F401 (fixtures)

STYLE_LEN = 20000
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz"
STYLE_SHA = hashlib.sha256((PATTERN * (STYLE_LEN // len(PATTERN) + 1))[:STYLE_LEN]).hexdigest()


class PushClient(H2Client):
    """An H2Client that records PUSH_PROMISEs: each pushed stream gets a
    Response (in self.responses) and an entry in self.pushes."""

    def __init__(self, port, enable_push=True, **kw):
        self.finished = []  # stream ids in the order they ended
        super().__init__(port, **kw)
        self.pushes = []  # (parent id, promised id, {pseudo: value} and fields)
        if not enable_push:
            self.conn.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
            self.flush()

    def _handle(self, ev):
        if isinstance(ev, h2.events.PushedStreamReceived):
            fields = {bytes(k): bytes(v) for k, v in ev.headers}
            self.pushes.append((ev.parent_stream_id, ev.pushed_stream_id, fields))
            self.responses[ev.pushed_stream_id] = Response(
                ev.pushed_stream_id, "GET", fields.get(b":path", b"").decode())
            return
        if isinstance(ev, h2.events.StreamEnded):
            self.finished.append(ev.stream_id)
        super()._handle(ev)

    def run_all(self, timeout=None):
        """Until every stream, pushed ones included, is done."""
        self.run_until(lambda: all(r.done for r in self.responses.values()), timeout,
                       "every stream")

    def settle(self, seconds=0.3):
        """Process whatever else arrives for a moment (late PUSH_PROMISEs)."""
        import time
        end = time.monotonic() + seconds * SLOW
        while time.monotonic() < end:
            self.pump(0.05)


def page(link):
    return "/push-page?link=" + urllib.parse.quote(link, safe="")


def test_preload_is_pushed_byte_for_byte(origin, gateway):
    gw = gateway(origin)
    with PushClient(gw.port) as c:
        sid = c.request("GET", "/push-page", headers=[("user-agent", "push-test/1"),
                                                     ("cookie", "secret=1")])
        c.run_all()
        c.settle()
        r = c.responses[sid]
        r.assert_ok()
        assert bytes(r.body) == b"push page\n"
        assert len(c.pushes) == 1, c.pushes
        parent, promised, fields = c.pushes[0]
        assert parent == sid and promised % 2 == 0
        assert fields[b":path"] == b"/style.css"
        assert fields[b":authority"] == gw.authority.encode()
        assert fields[b":method"] == b"GET" and fields[b":scheme"] == b"http"
        assert fields.get(b"user-agent") == b"push-test/1"
        assert b"cookie" not in fields
        pushed = c.responses[promised]
        pushed.assert_ok()
        assert pushed.header("content-type") in (b"text/css", "text/css")
        assert hashlib.sha256(bytes(pushed.body)).hexdigest() == STYLE_SHA


def test_pushed_request_carries_no_credentials(origin, gateway):
    gw = gateway(origin)
    with PushClient(gw.port) as c:
        c.request("GET", page("</echo/pushed>; rel=preload"),
                  headers=[("user-agent", "ua/2"), ("accept-language", "fr"),
                           ("cookie", "secret=1"), ("authorization", "Bearer x")])
        c.run_all()
        assert len(c.pushes) == 1, c.pushes
        echo = c.responses[c.pushes[0][1]].json()
        assert echo["method"] == "GET" and echo["target"] == "/echo/pushed"
        assert echo_header_values(echo, "user-agent") == ["ua/2"]
        assert echo_header_values(echo, "accept-language") == ["fr"]
        assert echo_header_values(echo, "cookie") == []
        assert echo_header_values(echo, "authorization") == []


def test_absolute_url_same_authority_is_pushed(origin, gateway):
    gw = gateway(origin)
    with PushClient(gw.port) as c:
        c.request("GET", page("<http://%s/style.css#x>; rel=\"preload\"" % gw.authority))
        c.run_all()
        assert [f[b":path"] for _, _, f in c.pushes] == [b"/style.css"]


@pytest.mark.parametrize("link", [
    "</style.css>; rel=preload; nopush",
    "<https://other.example/style.css>; rel=preload",
    "<//other.example/style.css>; rel=preload",
    "</style.css>; rel=prefetch",
    "<style.css>; rel=preload",
])
def test_not_pushed(origin, gateway, link):
    gw = gateway(origin)
    with PushClient(gw.port) as c:
        sid = c.request("GET", page(link))
        c.run_all()
        c.settle()
        c.responses[sid].assert_ok()
        assert c.pushes == []


def test_client_disabling_push_gets_none(origin, gateway):
    gw = gateway(origin)
    with PushClient(gw.port, enable_push=False) as c:
        sid = c.request("GET", "/push-page")
        c.run_all()
        c.settle()
        c.responses[sid].assert_ok()
        assert c.pushes == []


def test_server_push_off_pushes_nothing(origin, gateway):
    gw = gateway(origin, "--server-push", "off")
    with PushClient(gw.port) as c:
        sid = c.request("GET", "/push-page")
        c.run_all()
        c.settle()
        c.responses[sid].assert_ok()
        assert c.pushes == []


def test_same_path_pushed_once_per_connection(origin, gateway):
    gw = gateway(origin)
    with PushClient(gw.port) as c:
        c.request("GET", "/push-page")
        c.run_all()
        c.request("GET", "/push-page?again")
        c.request("GET", page("</style.css>; rel=preload, </style.css>; rel=preload"))
        c.run_all()
        c.settle()
        assert [f[b":path"] for _, _, f in c.pushes] == [b"/style.css"]
    # A new connection pushes it again.
    with PushClient(gw.port) as c:
        c.request("GET", "/push-page")
        c.run_all()
        assert len(c.pushes) == 1


def test_push_budget_per_connection(origin, gateway):
    gw = gateway(origin, "--push-max-per-connection", "2")
    links = ", ".join("</echo/%d>; rel=preload" % i for i in range(5))
    with PushClient(gw.port) as c:
        c.request("GET", page(links))
        c.run_all()
        c.request("GET", page("</echo/9>; rel=preload"))
        c.run_all()
        c.settle()
        assert [f[b":path"] for _, _, f in c.pushes] == [b"/echo/0", b"/echo/1"]


def test_client_resetting_a_push_is_fine(origin, gateway, tmp_path):
    log = tmp_path / "access.log"
    gw = gateway(origin, "--access-log", str(log), "--access-log-format", "json")
    with PushClient(gw.port) as c:
        # /delay keeps the pushed request at the backend when the reset comes.
        sid = c.request("GET", page("</delay/2000>; rel=preload"))
        c.run_until(lambda: c.pushes and c.responses[sid].done, what="the page and its push")
        promised = c.pushes[0][1]
        c.reset_stream(promised)
        del c.responses[promised]
        c.settle(0.3)
        # The connection keeps working, and nothing else was pushed.
        r = c.get("/echo")
        r.assert_ok()
        r2 = c.get("/bytes/1000")
        r2.assert_ok()
        assert len(c.pushes) == 1
    gw.assert_alive()
    # The pushed exchange was freed at the reset (logged as cancelled), not
    # when the backend answered two seconds later.
    import json
    import time
    deadline = time.monotonic() + 5 * SLOW
    pushed = []
    while time.monotonic() < deadline and not pushed:
        if log.exists():
            pushed = [json.loads(ln) for ln in log.read_text().splitlines()
                      if '"/delay/2000"' in ln]
        time.sleep(0.05)
    assert len(pushed) == 1, log.read_text() if log.exists() else "no log"
    assert pushed[0]["outcome"] == "cancelled" and pushed[0]["stream_id"] % 2 == 0, pushed
    assert pushed[0]["duration_ms"] < 1500, pushed


def test_pushes_wait_behind_client_requests(origin, gateway):
    """Pushes are dispatched at urgency 7: with one backend connection, a
    client request sent after the page still goes before queued pushes."""
    gw = gateway(origin, "--backend-max-connections", "1", "--push-max-per-connection", "4",
                 "--priority-max-wait", "30s")  # no aging: the order is urgency's alone
    # Each push holds the connection long enough for the client's request
    # to be queued behind the first one, however slow the machine.
    links = ", ".join("</delay/%d>; rel=preload" % (300 * SLOW + i) for i in range(3))
    with PushClient(gw.port) as c:
        c.request("GET", page(links))
        c.run_until(lambda: len(c.pushes) == 3, what="three pushes")
        sid = c.request("GET", "/delay/50", headers=[("priority", "u=3")])
        c.run_all()
        c.responses[sid].assert_ok()
        assert all(c.responses[p].status == 200 for _, p, _ in c.pushes)
        # At most the push already on the connection ended before it.
        pushed = {p for _, p, _ in c.pushes}
        order = [i for i in c.finished if i in pushed or i == sid]
        assert order.index(sid) <= 1, (order, sid)


def test_push_takes_the_links_urgency_hint(origin, gateway):
    """A Link's u= hint sets the push's urgency (never ahead of the request
    that brought it): with one backend connection the hinted push, listed
    last, is fetched before the two without a hint (urgency 7)."""
    gw = gateway(origin, "--backend-max-connections", "1", "--push-max-per-connection", "4")
    links = "</delay/101>; rel=preload, </delay/102>; rel=preload, </delay/103>; rel=preload; u=1"
    with PushClient(gw.port) as c:
        c.request("GET", page(links), headers=[("priority", "u=0")])
        c.run_until(lambda: len(c.pushes) == 3, what="three pushes")
        paths = {p: fields[b":path"] for _, p, fields in c.pushes}
        c.run_all()
        assert all(c.responses[p].status == 200 for p in paths)
        order = [paths[i] for i in c.finished if i in paths]
        assert order[0] == b"/delay/103", order


def test_early_hints_from_link(origin, gateway):
    gw = gateway(origin, "--early-hints-from-link", "on", "--server-push", "off")
    with PushClient(gw.port) as c:
        r = c.get("/push-page")
    r.assert_ok()
    assert len(r.informational) == 1, r.informational
    info = r.informational[0]
    assert info[0] == (b":status", b"103")
    assert (b"link", b"</style.css>; rel=preload; as=style") in info
    assert (b"link", b"</style.css>; rel=preload; as=style") in r.headers


def test_early_hints_off_by_default(origin, gateway):
    gw = gateway(origin)
    with PushClient(gw.port) as c:
        r = c.get("/push-page")
    r.assert_ok()
    assert r.informational == []


def test_early_hints_from_link_http11(origin, gateway):
    import socket
    gw = gateway(origin, "--early-hints-from-link", "on")
    for version, want in ((b"HTTP/1.1", True), (b"HTTP/1.0", False)):
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10 * SLOW) as s:
            s.sendall(b"GET /push-page " + version + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 103") == want, data
        assert data.count(b"push page\n") == 1


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) not installed")
def test_nghttp_sees_push_promise(origin, gateway):
    gw = gateway(origin)
    out = subprocess.run(["nghttp", "-nv", "http://%s/push-page" % gw.authority],
                         capture_output=True, timeout=20 * SLOW).stdout.decode("latin-1")
    assert "recv PUSH_PROMISE" in out, out
    assert ":path: /style.css" in out, out


def test_push_and_early_hints_together(origin, gateway):
    gw = gateway(origin, "--early-hints-from-link", "on")
    with PushClient(gw.port) as c:
        sid = c.request("GET", page("</push-page>; rel=preload, </early-hints/2>; rel=preload"))
        c.run_all()
        c.settle()
        r = c.responses[sid]
        r.assert_ok()
        assert len(r.informational) == 1
        # A pushed response never pushes more and starts with its final
        # head: neither the gateway's 103 nor the backend's own reach it.
        assert len(c.pushes) == 2
        pushed = c.responses[c.pushes[0][1]]
        pushed.assert_ok()
        assert bytes(pushed.body) == b"push page\n"
        assert pushed.informational == []
        hinted = c.responses[c.pushes[1][1]]
        hinted.assert_ok()
        assert bytes(hinted.body) == b"early hints 2\n"
        assert hinted.informational == []


def test_reload_keeps_an_open_connection_push_budget(tmp_path, origins, gw):
    """push_max_per_connection raised by SIGHUP: connections that already
    pushed keep their budget, new ones get the new one."""
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a", "[gateway]\npush_max_per_connection = 1\n"))
    p = gw(path)
    old = PushClient(p.port)
    old.request("GET", page("</echo/1>; rel=preload, </echo/2>; rel=preload"))
    old.run_all()
    assert len(old.pushes) == 1
    write(path, conf_text(a.port, b.port, "a", "[gateway]\npush_max_per_connection = 5\n"))
    reload(p)
    old.request("GET", page("</echo/3>; rel=preload"))
    old.run_all()
    old.settle()
    assert len(old.pushes) == 1
    with PushClient(p.port) as new:
        new.request("GET", page(", ".join("</echo/%d>; rel=preload" % i for i in range(3))))
        new.run_all()
        assert len(new.pushes) == 3
    old.close()
