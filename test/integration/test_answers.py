"""Answers the gateway used to get wrong (issue 12), each checked over HTTP/2
and HTTP/1.1: a 204 with Content-Length, methods outside llhttp's table, an
HTTP/1.0 request without Host, and a malformed first chunk from the backend."""

import pytest

from test_h1 import H1, raw_request


def test_204_loses_content_length_304_keeps_it(origin, gateway):
    """RFC 9110 8.6: no Content-Length in a 204; a 304's tells the size of the
    selected representation and is passed as is."""
    gw = gateway(origin)
    with gw.client() as c:
        r = c.get("/status/204?length=5")
        r.assert_ok(204)
        assert r.header("content-length") is None and len(r.body) == 0, r.describe()
        r = c.get("/status/304?length=5")
        r.assert_ok(304)
        assert r.header("content-length") == "5" and len(r.body) == 0, r.describe()
    with H1(gw.port) as c:
        r = c.request("GET", "/status/204?length=5")
        assert r.status == 204 and r.header("content-length") is None, r
        assert r.header("transfer-encoding") is None, r
        r = c.request("GET", "/status/304?length=5")
        assert r.status == 304 and r.header("content-length") == "5", r
        # Nothing was taken for a body: the connection goes on.
        assert c.request("GET", "/echo?after").status == 200


@pytest.mark.parametrize("method", ["QUERY", "BAN", "X-PURGE-ALL"])
def test_unknown_method_is_501(origin, gateway, method):
    gw = gateway(origin)
    origin.reset_stats()
    with H1(gw.port) as c:
        c.send(raw_request(method, "/echo", body=b"q"))
        r = c.response()
        assert r.status == 501 and r.header("connection") == "close", r
        assert c.at_eof(), "the request's framing was never read: the connection closes"
    with gw.client() as c:
        r = c.fetch(method, "/echo")
        r.assert_ok(501)
        assert origin.stats()["requests"] == 0, "refused requests never reach the backend"
        # A stream error only: the connection serves the next request.
        c.get("/echo?after").assert_ok()
    # Methods llhttp knows still pass, extension ones included.
    with H1(gw.port) as c:
        assert c.request("PROPFIND", "/echo").json()["method"] == "PROPFIND"


def test_http10_without_host_gets_listener_address(origin, gateway):
    gw = gateway(origin)
    with H1(gw.port) as c:
        c.send(b"GET /echo HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r.status == 200, r
        hosts = [v for k, v in r.json()["headers"] if k.lower() == "host"]
        assert hosts == ["127.0.0.1:%d" % gw.port], r.json()["headers"]
    with H1(gw.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        assert c.response().status == 404  # the origin's answer: it was forwarded
    # HTTP/1.1 requires Host (RFC 9112 3.2).
    with H1(gw.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\n\r\n")
        r = c.response()
        assert r.status == 400 and r.header("connection") == "close", r


def test_malformed_first_chunk_is_502(origin, gateway):
    """The backend's head is valid, its first chunk size is not, in the same
    bytes: nothing went to the client yet, so the answer is a 502, not a
    response head followed by a reset."""
    gw = gateway(origin)
    with gw.client() as c:
        r = c.get("/malformed?kind=chunk")
        assert r.ended and r.reset is None and r.status == 502, r.describe()
        c.get("/echo?after").assert_ok()
    with H1(gw.port) as c:
        r = c.request("GET", "/malformed?kind=chunk")
        assert r.status == 502, r
        assert c.request("GET", "/echo?after").status == 200
