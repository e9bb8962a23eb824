"""Requests and responses through the gateway: forwarding, multiplexing, bodies."""

import os

from conftest import (
    echo_header_values,
    echo_headers,
    pattern_bytes,
    pattern_sha256,
    sha256,
)


def test_echo_get_forwarding_headers(origin, gateway):
    gw = gateway(origin)
    target = "/echo?x=1&y=two%20three&z"
    with gw.client() as c:
        r = c.get(target, headers=[("user-agent", "h2gw-test"), ("x-custom", "yes")])
    r.assert_ok()
    assert r.header("content-type") == "application/json"
    e = r.json()
    assert e["method"] == "GET"
    assert e["target"] == target
    assert e["version"] == "1.1"
    assert echo_header_values(e, "host") == [gw.authority]
    assert echo_header_values(e, "x-forwarded-for") == ["127.0.0.1"]
    assert echo_header_values(e, "x-forwarded-proto") == ["http"]
    assert echo_header_values(e, "forwarded") == ["for=127.0.0.1;proto=http"]
    assert echo_header_values(e, "user-agent") == ["h2gw-test"]
    assert echo_header_values(e, "x-custom") == ["yes"]
    names = [k for k, _ in echo_headers(e)]
    assert not any(n.startswith(":") for n in names), names
    assert e["body_length"] == 0
    assert e["trailers"] == []


def test_forwarded_proto_is_the_connections_not_the_clients_scheme(origin, gateway):
    """A cleartext HTTP/2 client that claims :scheme https must not make the
    backend believe the request came over TLS (secure cookies, redirects)."""
    gw = gateway(origin)
    with gw.client() as c:
        (r,) = c.run([c.request("GET", "/echo", scheme="https")])
    r.assert_ok()
    e = r.json()
    assert echo_header_values(e, "x-forwarded-proto") == ["http"]
    assert echo_header_values(e, "forwarded") == ["for=127.0.0.1;proto=http"]


def test_other_methods_and_authority(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        sids = [
            c.request("DELETE", "/echo/a"),
            c.request("OPTIONS", "/echo/b"),
            c.request("PUT", "/echo/c", body=b"put body"),
            c.request("GET", "/echo/d", authority="example.test:8080"),
        ]
        rs = c.run(sids)
    for r in rs:
        r.assert_ok()
    es = [r.json() for r in rs]
    assert [(e["method"], e["target"]) for e in es] == [
        ("DELETE", "/echo/a"), ("OPTIONS", "/echo/b"), ("PUT", "/echo/c"), ("GET", "/echo/d")]
    assert es[2]["body_length"] == 8 and es[2]["body_sha256"] == sha256(b"put body")
    assert echo_header_values(es[3], "host") == ["example.test:8080"]


BYTES_SIZES = [0, 1, 35, 36, 37, 1000, 16383, 16384, 16385, 65535, 65536, 100000, 262144, 300001]


def test_50_concurrent_streams_one_connection(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        echo = {c.request("GET", "/echo?i=%d" % i, headers=[("x-i", str(i))]): i
                for i in range(50 - len(BYTES_SIZES))}
        sized = {c.request("GET", "/bytes/%d" % n): n for n in BYTES_SIZES}
        assert len(echo) + len(sized) == 50
        c.run()
        for sid, i in echo.items():
            r = c.responses[sid]
            r.assert_ok()
            e = r.json()
            assert e["target"] == "/echo?i=%d" % i, r.describe()
            assert echo_header_values(e, "x-i") == [str(i)]
        for sid, n in sized.items():
            r = c.responses[sid]
            r.assert_ok()
            assert len(r.body) == n, r.describe()
            assert sha256(bytes(r.body)) == pattern_sha256(n), "/bytes/%d body differs" % n
            assert r.header("content-length") == str(n)


def test_upload_1mib_with_content_length(origin, gateway):
    gw = gateway(origin)
    body = os.urandom(1 << 20)
    with gw.client() as c:
        r = c.fetch("POST", "/echo", body=body)
    r.assert_ok()
    e = r.json()
    assert e["method"] == "POST"
    assert e["body_length"] == len(body)
    assert e["body_sha256"] == sha256(body)
    assert echo_header_values(e, "content-length") == [str(len(body))]
    assert echo_header_values(e, "transfer-encoding") == []


def test_upload_without_content_length_is_chunked(origin, gateway):
    gw = gateway(origin)
    chunks = [os.urandom(n) for n in (1, 100, 16384, 70000, 5, 300000, 65536)]
    body = b"".join(chunks)
    with gw.client() as c:
        r = c.fetch("POST", "/echo", chunks=chunks)
    r.assert_ok()
    e = r.json()
    assert echo_header_values(e, "transfer-encoding") == ["chunked"]
    assert echo_header_values(e, "content-length") == []
    assert e["body_length"] == len(body)
    assert e["body_sha256"] == sha256(body)


def test_download_10mib(origin, gateway):
    gw = gateway(origin)
    n = 10 * 1024 * 1024
    with gw.client() as c:
        r = c.get("/bytes/%d" % n, timeout=60)
    r.assert_ok()
    assert r.header("content-length") == str(n)
    assert len(r.body) == n
    assert sha256(bytes(r.body)) == pattern_sha256(n)


def test_download_chunked(origin, gateway):
    gw = gateway(origin)
    with gw.client() as c:
        sids = {c.request("GET", "/bytes/%d?chunked=1" % n): n for n in (0, 1, 65536, 1000003)}
        c.run()
        for sid, n in sids.items():
            r = c.responses[sid]
            r.assert_ok()
            assert r.header("transfer-encoding") is None
            assert len(r.body) == n, r.describe()
            assert bytes(r.body) == pattern_bytes(n)
