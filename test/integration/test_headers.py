"""Header translation: connection-specific fields, cookies, response headers, limits."""

from conftest import echo_header_values, echo_headers

PROTOCOL_ERROR = 1
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
              "http2-settings")


def test_te_trailers_kept_and_no_connection_headers_sent(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = c.get("/echo", headers=[("te", "trailers"), ("x-custom", "custom value")])
    r.assert_ok()
    e = r.json()
    assert echo_header_values(e, "te") == ["trailers"]
    assert echo_header_values(e, "x-custom") == ["custom value"]
    names = [k for k, _ in echo_headers(e)]
    for h in HOP_BY_HOP:
        assert h not in names, "origin saw %r: %r" % (h, echo_headers(e))


def test_connection_specific_request_headers_are_rejected(origin, gateway):
    """HTTP/2 forbids these (RFC 9113 8.2.2): the stream is reset as malformed,
    the origin never sees it, and siblings on the connection are unaffected."""
    gw = gateway(origin)
    bad = [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("te", "gzip"),
    ]
    with gw.client(validate=False) as c:
        sib_before = c.request("GET", "/echo?sibling=before")
        bad_sids = {c.request("GET", "/echo?bad=" + name, headers=[(name, value)]): name
                    for name, value in bad}
        sib_after = c.request("GET", "/echo?sibling=after")
        c.run()
        for sid, name in bad_sids.items():
            r = c.responses[sid]
            assert r.reset == PROTOCOL_ERROR, "%s: want RST_STREAM PROTOCOL_ERROR, got %s" % (
                name, r.describe())
        for sid in (sib_before, sib_after):
            c.responses[sid].assert_ok()
        # still usable afterwards
        c.get("/echo?later").assert_ok()
    assert origin.stats()["requests"] == 3


def test_http2_settings_request_header_not_forwarded(origin, gateway):
    """http2-settings is connection-specific (an h2c upgrade field); nghttp2
    lets it through, so the gateway itself must drop it (or refuse the
    request). It must never reach the origin."""
    gw = gateway(origin)
    with gw.client(validate=False) as c:
        r = c.get("/echo", headers=[("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA")])
        c.get("/echo?after").assert_ok()
    if r.ended and r.status == 200:
        names = [k for k, _ in echo_headers(r.json())]
        assert "http2-settings" not in names, r.json()
    else:
        assert r.reset is not None or (r.status is not None and 400 <= r.status < 500), \
            r.describe()


def test_cookie_crumbs_joined(origin, gateway):
    gw = gateway(origin)
    # validate=False: the h2 library would otherwise keep the three fields
    # as given anyway; this makes sure they go out as three separate fields.
    with gw.client(validate=False) as c:
        r = c.get("/echo", headers=[("cookie", "a=1"), ("x-between", "1"), ("cookie", "b=2"),
                                    ("cookie", "c=3")])
    r.assert_ok()
    e = r.json()
    assert echo_header_values(e, "cookie") == ["a=1; b=2; c=3"]
    assert echo_header_values(e, "x-between") == ["1"]


def test_response_hop_by_hop_headers_dropped(origin, gateway):
    gw = gateway(origin)
    # Inbound validation off, so a leaked connection header shows up in the
    # assertion below instead of as a client protocol error.
    with gw.client(validate_inbound=False) as c:
        r = c.get("/headers")
        c.get("/echo?after").assert_ok()
    r.assert_ok()
    assert bytes(r.body) == b"headers\n"
    names = r.header_names()
    for h in ("connection", "keep-alive", "x-hop", "proxy-connection", "upgrade",
              "transfer-encoding"):
        assert h not in names, "client saw %r: %r" % (h, r.headers)
    assert r.header_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert r.header_all("x-mixed-case") == ["Value"]
    assert all(n == n.lower() for n in names), names


def test_header_list_too_large_gets_431(origin, gateway):
    gw = gateway(origin, "--max-header-list-size", "4k")
    with gw.client() as c:
        small = c.request("GET", "/echo?small", headers=[("x-small-%d" % i, "v" * 200)
                                                         for i in range(8)])
        big = c.request("GET", "/echo?big", headers=[("x-big-%d" % i, "v" * 1024)
                                                     for i in range(8)])
        sib = c.request("GET", "/delay/200")
        rs = c.run([small, big, sib])
        rs[0].assert_ok()
        assert rs[1].status == 431 and rs[1].ended, rs[1].describe()
        rs[2].assert_ok()
        assert bytes(rs[2].body) == b"delayed 200\n"
        c.get("/echo?after").assert_ok()
    # the oversized request never reached the origin
    assert origin.stats()["requests"] == 3
