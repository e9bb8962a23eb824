"""Backend failures and unusual responses: each ends only its own stream.

Every test runs a sibling stream (/delay/200) on the same client connection
and checks that it completes normally."""

import pytest

from conftest import check_sibling, closed_port

CANCEL = 8


def fetch_with_sibling(c, method, path, **kw):
    sib = c.request("GET", "/delay/200")
    sid = c.request(method, path, **kw)
    r, s = c.run([sid, sib])
    check_sibling(s)
    return r


def test_backend_unreachable_gives_502(gateway):
    gw = gateway(closed_port(), "--backend-connect-timeout", "3s",
                 # every request must meet the refusal itself, not an ejection
                 "--backend-max-fails", "0")
    with gw.client() as c:
        sids = [c.request("GET", "/echo?a"), c.request("POST", "/echo?b", body=b"x" * 1000)]
        for r in c.run(sids):
            assert r.ended and r.status == 502, r.describe()
            assert len(r.body) > 0, "502 without a body"
            bytes(r.body).decode("utf-8")  # text
        # the client connection is still fine
        r = c.get("/echo?c")
        assert r.ended and r.status == 502, r.describe()


def test_close_mid_body_resets_stream(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/close-mid-body")
        assert r.reset is not None and not r.ended, (
            "a response cut short by the backend must end in RST_STREAM, never a clean "
            "END_STREAM: " + r.describe())
        assert len(r.body) <= 1000
        c.get("/echo?after").assert_ok()


@pytest.mark.parametrize("kind", ["te-cl", "status", "header", "no-colon", "dup-cl", "bad-cl",
                                  "lf", None])
def test_malformed_response_head_gives_502(origin, gateway, kind):
    gw = gateway(origin)
    path = "/malformed" if kind is None else "/malformed?kind=" + kind
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", path)
        assert r.ended and r.status == 502, r.describe()
        c.get("/echo?after").assert_ok()


def test_malformed_chunk_fails_stream(origin, gateway):
    """The head is valid, the first chunk size is not, in the same bytes: the
    head was held back until they were parsed, so the answer is a 502."""
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/malformed?kind=chunk")
        assert r.ended and r.reset is None and r.status == 502, r.describe()
        c.get("/echo?after").assert_ok()


def test_close_delimited_body(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/close-delimited")
        r.assert_ok()
        assert bytes(r.body) == b"close delimited body\n"
        c.get("/echo?after").assert_ok()


def test_http10_response(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/http10")
        r.assert_ok()
        assert bytes(r.body) == b"http10\n"
        c.get("/echo?after").assert_ok()


def test_connection_close_response(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/close")
        r.assert_ok()
        assert bytes(r.body) == b"bye\n"
        assert r.header("connection") is None
        for i in range(5):
            c.get("/echo?after=%d" % i).assert_ok()
        r = c.get("/close")
        r.assert_ok()
        c.get("/echo?last").assert_ok()


def test_100_continue_from_backend(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/continue")
        r.assert_ok()
        assert bytes(r.body) == b"after continue\n"
        r = fetch_with_sibling(c, "POST", "/continue", body=b"some body")
        r.assert_ok()
        assert bytes(r.body) == b"after continue\n"
        c.get("/echo?after").assert_ok()


def test_interim_103_then_final(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/status/103")
        r.assert_ok()
        assert bytes(r.body) == b"status 103\n"


def test_chunked_response_with_trailers(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/chunked", headers=[("te", "trailers")])
    r.assert_ok()
    assert bytes(r.body) == b"hello chunked world\n"
    assert r.header("transfer-encoding") is None
    assert r.trailers is not None, "no HTTP/2 trailers: " + r.describe()
    assert (b"x-trailer-one", b"1") in r.trailers, r.trailers
    assert (b"x-checksum", b"abc") in r.trailers, r.trailers


def test_head_request(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "HEAD", "/bytes/100")
        r.assert_ok()
        assert len(r.body) == 0
        assert r.header("content-length") == "100"
        c.get("/echo?after").assert_ok()


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(origin, gateway, status):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/status/%d" % status)
        r.assert_ok(status)
        assert len(r.body) == 0
        c.get("/echo?after").assert_ok()


@pytest.mark.parametrize("status", [404, 500, 502, 503])
def test_backend_error_status_passed_through(origin, gateway, status):
    gw = gateway(origin)
    with gw.client() as c:
        r = fetch_with_sibling(c, "GET", "/status/%d" % status)
        r.assert_ok(status)
        assert bytes(r.body) == b"status %d\n" % status


def test_client_reset_mid_response(origin, gateway):
    gw = gateway(origin, "--backend-idle-timeout", "60s")
    with gw.client() as c:
        big = c.request("GET", "/bytes/50000000")
        sib = c.request("GET", "/delay/200")
        c.run_until(lambda: c.responses[big].data_frames > 0 or c.responses[big].done,
                    what="the first DATA frame of /bytes/50000000")
        assert not c.responses[big].done, c.responses[big].describe()
        c.reset_stream(big, CANCEL)
        check_sibling(c.run([sib])[0])
        for i in range(5):  # one at a time: they reuse the sibling's connection
            c.get("/echo?after=%d" % i).assert_ok()
        assert len(c.responses[big].body) < 50000000
    # The cancelled response's backend connection is closed, not pooled;
    # only the sibling's connection stays open.
    s = origin.wait_open_connections(1, 5)
    assert s["open_connections"] == 1, s
    assert s["connections_accepted"] == 2, s
