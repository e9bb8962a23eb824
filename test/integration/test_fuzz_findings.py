"""What test/fuzz/fuzz_h2_session found (issue 13), checked end to end."""

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
