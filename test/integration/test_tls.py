"""TLS termination: ALPN, SNI, chains, reloads, ciphers and versions, session
resumption (also across gateways sharing a ticket key file), client
certificates, PROXY protocol, handshake timeouts and garbage."""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import pytest

pytest.register_assert_rewrite("tlsutil")

from conftest import SLOW, pattern_sha256
from tlsutil import (
    ConnectionEnded,
    H2Conn,
    client_context,
    copy_pair,
    curl,
    echo_values,
    h2_over_tls,
    peer_cn,
    run_tool,
    s_client,
    served_cn,
    tcp_connect,
    ticket_keys,
    tls_connect,
    tls_flags,
    wait_closed,
    write_file,
)

# The h2gw and pki fixtures.
pytest_plugins = ["tlsutil"]


def start_tls(h2gw, origin, pki, *extra, certs=("default",)):
    return h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
                *tls_flags(pki, *certs), *extra)


def error_lines(text):
    return [l for l in text.splitlines() if " error " in l]


# --------------------------------------------------------------------------
# Clients: curl, nghttp, openssl s_client, python


def test_listening_line_says_tls(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki)
    assert gw.listeners == [(gw.port, True)], gw.proc.stdout


def test_curl_http2_over_tls(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, certs=("a",))
    rc, body, version, status, err = curl(
        "https://a.test:%d/echo?via=curl" % gw.port, "--http2", "--cacert", pki.crt("ca"),
        "--resolve", "a.test:%d:127.0.0.1" % gw.port)
    assert rc == 0, err
    assert (version, status) == ("2", "200"), (version, status, body, err)
    e = json.loads(body)
    assert e["target"] == "/echo?via=curl"
    assert echo_values(e, "x-forwarded-proto") == ["https"]
    assert echo_values(e, "x-forwarded-for") == ["127.0.0.1"]
    assert echo_values(e, "host") == ["a.test:%d" % gw.port]

    rc, body, version, status, err = curl("https://127.0.0.1:%d/bytes/100000" % gw.port,
                                          "--http2", "-k")
    assert rc == 0, err
    assert (version, status) == ("2", "200"), (version, status, err)
    assert len(body) == 100000


def test_large_bodies_over_tls(origin, h2gw, pki, tmp_path):
    gw = start_tls(h2gw, origin, pki)
    n = 5 * 1024 * 1024 + 3
    rc, body, version, status, err = curl("https://127.0.0.1:%d/bytes/%d" % (gw.port, n),
                                          "--http2", "-k", timeout=60)
    assert rc == 0, err
    assert (version, status) == ("2", "200"), (version, status)
    assert len(body) == n
    assert hashlib.sha256(body.encode("latin-1")).hexdigest() == pattern_sha256(n)

    upload = os.urandom(3 * 1024 * 1024 + 11)
    path = write_file(tmp_path / "upload.bin", upload)
    rc, body, version, status, err = curl("https://127.0.0.1:%d/echo" % gw.port, "--http2",
                                          "-k", "--data-binary", "@" + path, timeout=60)
    assert rc == 0, err
    assert (version, status) == ("2", "200"), (version, status, body)
    e = json.loads(body)
    assert e["body_length"] == len(upload)
    assert e["body_sha256"] == hashlib.sha256(upload).hexdigest()


def test_curl_http11_over_tls(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki)
    rc, body, version, status, err = curl("https://127.0.0.1:%d/echo?via=h1" % gw.port,
                                          "--http1.1", "-k")
    assert rc == 0, err
    assert (version, status) == ("1.1", "200"), (version, status, body)
    assert json.loads(body)["target"] == "/echo?via=h1"


def test_http11_over_tls_without_alpn(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki)
    ctx = client_context(pki, alpn=None)
    conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=ctx, timeout=10 * SLOW)
    try:
        conn.request("GET", "/echo?via=no-alpn", headers={"Host": "default.test"})
        assert conn.sock.selected_alpn_protocol() is None
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, (resp.status, body)
    e = json.loads(body)
    assert e["target"] == "/echo?via=no-alpn"
    assert echo_values(e, "x-forwarded-proto") == ["https"]


def read_to_close_notify(port, ctx, request):
    """Sends request over TLS and reads to the end, refusing a TCP close
    without a close_notify (a cut a client cannot tell from a truncation)."""
    raw = tcp_connect(port)
    s = ctx.wrap_socket(raw, server_hostname="default.test", suppress_ragged_eofs=False)
    s.settimeout(10 * SLOW)
    try:
        s.sendall(request)
        got = b""
        while True:
            chunk = s.recv(65536)  # SSLEOFError on a close without close_notify
            if not chunk:
                return got
            got += chunk
    finally:
        s.close()


def test_close_notify_ends_a_tls_connection(origin, h2gw, pki):
    """Every orderly close of a TLS client connection ends with a
    close_notify: after an HTTP/1.1 "connection: close" answer, an HTTP/1.0
    one, and an idle HTTP/2 connection's GOAWAY."""
    gw = start_tls(h2gw, origin, pki, "--client-idle-timeout", "300ms")
    h1 = client_context(pki, alpn=("http/1.1",))
    for version in (b"HTTP/1.1", b"HTTP/1.0"):
        got = read_to_close_notify(gw.port, h1, b"GET /echo?close HTTP/1.1\r\nHost: default.test"
                                   b"\r\nConnection: close\r\n\r\n".replace(b"HTTP/1.1", version))
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), got
        assert json.loads(body)["target"] == "/echo?close"
    h2 = client_context(pki, alpn=("h2",))
    preface = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
               b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # an empty SETTINGS
    got = read_to_close_notify(gw.port, h2, preface)
    assert b"\x07\x00\x00\x00\x00\x00" in got, got  # a GOAWAY (type 7) on stream 0


def test_client_without_alpn_completes_the_handshake(origin, h2gw, pki):
    """No ALPN (or none we speak) is HTTP/1.1; the handshake completes and
    the gateway goes on serving HTTP/2 clients."""
    gw = start_tls(h2gw, origin, pki)
    for alpn in (None, ("spdy/3", "foo")):
        s = tls_connect(gw.port, client_context(pki, alpn=alpn), server_name="default.test")
        assert s.selected_alpn_protocol() is None
        assert peer_cn(s) == "default.test"
        s.close()
    time.sleep(0.1)
    gw.assert_alive()
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    h.get("/echo").assert_ok()
    h.close()


def test_nghttp_over_tls(origin, h2gw, pki):
    if shutil.which("nghttp") is None:
        pytest.skip("nghttp not installed")
    gw = start_tls(h2gw, origin, pki)
    rc, out, err = run_tool(["nghttp", "-nv", "-t", str(15 * SLOW),
                             "https://127.0.0.1:%d/echo?via=nghttp" % gw.port])
    assert rc == 0, out + err
    assert ":status: 200" in out, out
    assert "negotiated protocol: h2" in out, out


@pytest.mark.parametrize("offer,want", [
    ("h2", "ALPN protocol: h2"),
    ("http/1.1", "ALPN protocol: http/1.1"),
    ("spdy/3,http/1.1,h2", "ALPN protocol: h2"),
    ("foo", "No ALPN negotiated"),
])
def test_s_client_alpn(origin, h2gw, pki, offer, want):
    gw = start_tls(h2gw, origin, pki, certs=("default", "a"))
    rc, out = s_client(gw.port, "-servername", "a.test", "-CAfile", pki.crt("ca"),
                       "-alpn", offer)
    assert rc == 0, out
    assert want in out, out
    assert "Verify return code: 0 (ok)" in out, out
    assert "CN = a.test" in out or "CN=a.test" in out, out


# --------------------------------------------------------------------------
# Certificates: SNI, chains


def test_sni_picks_the_certificate(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, certs=("default", "a", "b", "wild"))
    cases = [
        ("a.test", "a.test"),
        ("b.test", "b.test"),
        ("x.wild.test", "wild.test"),
        ("other.wild.test", "wild.test"),
        ("A.Test", "a.test"),             # names are case-insensitive
        ("unknown.test", "default.test"),  # unknown: the first pair
        ("x.y.wild.test", "default.test"),  # a wildcard covers one label only
        ("wild.test", "default.test"),     # nor the bare parent
        ("default.test", "default.test"),
        (None, "default.test"),            # no SNI
    ]
    got = [(name, served_cn(gw.port, pki, name)) for name, _ in cases]
    assert got == cases
    # The RSA (a.test) and EC certificates each serve TLS 1.2 and 1.3.
    for name in ("a.test", "b.test"):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            s, h = h2_over_tls(gw.port, client_context(pki, min_version=v, max_version=v),
                               server_name=name)
            assert peer_cn(s) == name
            h.get("/echo").assert_ok()
            h.close()


def test_sni_served_subject_via_s_client(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, certs=("default", "a", "b", "wild"))
    for name, cn in (("b.test", "b.test"), ("q.wild.test", "wild.test"),
                     ("nope.test", "default.test")):
        rc, out = s_client(gw.port, "-servername", name, "-alpn", "h2")
        assert rc == 0, out
        assert "subject=CN = %s" % cn in out or "subject=CN=%s" % cn in out, (name, out)


def test_chain_is_served(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, "--tls-cert", pki.crt("chain-full"),
                   "--tls-key", pki.key("chain"), certs=())
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="chain.test")
    assert peer_cn(s) == "chain.test"
    h.get("/echo").assert_ok()
    h.close()
    rc, out = s_client(gw.port, "-servername", "chain.test", "-CAfile", pki.crt("ca"),
                       "-verify_return_error", "-alpn", "h2")
    assert rc == 0 and "Verify return code: 0 (ok)" in out, out


def test_leaf_without_intermediate_does_not_verify(origin, h2gw, pki):
    """Control for test_chain_is_served: the root alone does not verify the
    leaf, so the intermediate really came from the gateway."""
    gw = start_tls(h2gw, origin, pki, "--tls-cert", pki.crt("chain"),
                   "--tls-key", pki.key("chain"), certs=())
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(gw.port, client_context(pki), server_name="chain.test")


# --------------------------------------------------------------------------
# Reloads: SIGHUP and watched files


def wait_for_cn(port, pki, want, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    seen = []
    while True:
        cn = served_cn(port, pki, "default.test")
        if cn == want:
            return
        seen.append(cn)
        if time.monotonic() > deadline:
            raise AssertionError("new connections still get %r after %ss, want %r" % (
                seen[-1], timeout * SLOW, want))
        time.sleep(0.1)


def test_sighup_swaps_the_certificate(origin, h2gw, pki, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    copy_pair(pki, "default", cert, key)
    gw = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
              "--tls-cert", cert, "--tls-key", key, "--log-level", "info")
    ctx = client_context(pki)
    old_sock, old = h2_over_tls(gw.port, ctx, server_name="default.test")
    assert peer_cn(old_sock) == "default.test"
    old.get("/echo?n=1").assert_ok()

    copy_pair(pki, "new", cert, key)
    gw.sighup()
    gw.wait_log("certificates reloaded")
    wait_for_cn(gw.port, pki, "new.test")
    # The connection opened before the reload still works.
    r = old.get("/echo?n=2")
    r.assert_ok()
    assert r.json()["target"] == "/echo?n=2"
    s, fresh = h2_over_tls(gw.port, ctx, server_name="default.test")
    assert peer_cn(s) == "new.test"
    fresh.get("/echo").assert_ok()
    old.close()
    fresh.close()


def test_sighup_with_a_bad_pair_keeps_the_old_certificate(origin, h2gw, pki, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    copy_pair(pki, "default", cert, key)
    gw = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
              "--tls-cert", cert, "--tls-key", key, "--log-level", "warn")
    old_sock, old = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    old.get("/echo").assert_ok()

    # The key of another certificate.
    shutil.copyfile(pki.crt("new"), cert)
    shutil.copyfile(pki.key("b"), key)
    gw.sighup()
    # SIGHUP reloads the whole configuration: a bad pair refuses it all.
    err = gw.wait_log("reload failed: keeping the running configuration")
    why = [l for l in err.splitlines() if "key.pem" in l and " error " in l]
    assert why, "no error line names the key file:\n" + err
    assert "does not match" in why[0] or "mismatch" in why[0], err
    assert served_cn(gw.port, pki, "default.test") == "default.test"
    old.get("/echo").assert_ok()

    # An unreadable certificate (not PEM at all).
    write_file(cert, "not a certificate\n")
    gw.sighup()
    err = gw.wait_log("reload failed: keeping the running configuration", count=2)
    assert any("cert.pem" in l and " error " in l for l in err.splitlines()), err
    assert served_cn(gw.port, pki, "default.test") == "default.test"
    old.get("/echo").assert_ok()

    # A good pair again is picked up by the next SIGHUP.
    copy_pair(pki, "new", cert, key)
    gw.sighup()
    wait_for_cn(gw.port, pki, "new.test")
    old.get("/echo").assert_ok()
    old.close()


def kube_secret_dir(base, pki, name):
    """A directory laid out like a mounted Kubernetes Secret:
    cert.pem -> ..data/cert.pem, ..data -> ..v1/."""
    d = os.path.join(str(base), "secret")
    v = os.path.join(d, "..v1")
    os.makedirs(v)
    shutil.copyfile(pki.crt(name), os.path.join(v, "cert.pem"))
    shutil.copyfile(pki.key(name), os.path.join(v, "key.pem"))
    os.symlink("..v1", os.path.join(d, "..data"))
    os.symlink("..data/cert.pem", os.path.join(d, "cert.pem"))
    os.symlink("..data/key.pem", os.path.join(d, "key.pem"))
    return d


def kube_secret_update(d, pki, name, version):
    v = os.path.join(d, "..v%d" % version)
    os.makedirs(v)
    shutil.copyfile(pki.crt(name), os.path.join(v, "cert.pem"))
    shutil.copyfile(pki.key(name), os.path.join(v, "key.pem"))
    tmp = os.path.join(d, "..data_tmp")
    os.symlink(os.path.basename(v), tmp)
    os.replace(tmp, os.path.join(d, "..data"))  # atomic retarget
    shutil.rmtree(os.path.join(d, "..v%d" % (version - 1)))


def test_watch_certificates_kubernetes_secret_swap(origin, h2gw, pki, tmp_path):
    d = kube_secret_dir(tmp_path, pki, "default")
    gw = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
              "--tls-cert", os.path.join(d, "cert.pem"), "--tls-key", os.path.join(d, "key.pem"),
              "--watch-certificates", "on", "--log-level", "info")
    old_sock, old = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    assert peer_cn(old_sock) == "default.test"
    old.get("/echo").assert_ok()

    kube_secret_update(d, pki, "new", 2)
    wait_for_cn(gw.port, pki, "new.test", timeout=5)
    old.get("/echo").assert_ok()
    # And again: the watch survives the first swap.
    kube_secret_update(d, pki, "newer", 3)
    wait_for_cn(gw.port, pki, "newer.test", timeout=5)
    old.get("/echo").assert_ok()
    old.close()


def test_watch_certificates_plain_file_replace(origin, h2gw, pki, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    copy_pair(pki, "default", cert, key)
    gw = h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
              "--tls-cert", cert, "--tls-key", key, "--watch-certificates", "on")
    assert served_cn(gw.port, pki, "default.test") == "default.test"
    copy_pair(pki, "new", cert, key)
    wait_for_cn(gw.port, pki, "new.test", timeout=5)


# --------------------------------------------------------------------------
# Ciphers and versions


def test_tls12_cbc_only_client_is_refused(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, certs=("default", "a"))
    # Control: an ECDHE + AEAD suite with the RSA certificate works.
    rc, out = s_client(gw.port, "-tls1_2", "-servername", "a.test",
                       "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-alpn", "h2")
    assert rc == 0 and "Cipher is ECDHE-RSA-AES128-GCM-SHA256" in out, out
    for cipher in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256"):
        rc, out = s_client(gw.port, "-tls1_2", "-servername", "a.test", "-cipher", cipher,
                           "-alpn", "h2")
        assert rc != 0, (cipher, out)
        assert "Cipher is %s" % cipher not in out, (cipher, out)
    # The same with python: a TLS 1.2 client with only CBC suites.
    ctx = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA")
    with pytest.raises(ssl.SSLError):
        tls_connect(gw.port, ctx, server_name="a.test")
    # The gateway goes on serving.
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="a.test")
    h.get("/echo").assert_ok()
    h.close()


def test_tls13_works(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki)
    v = ssl.TLSVersion.TLSv1_3
    s, h = h2_over_tls(gw.port, client_context(pki, min_version=v, max_version=v),
                       server_name="default.test")
    assert s.version() == "TLSv1.3"
    h.get("/echo").assert_ok()
    h.close()
    rc, out = s_client(gw.port, "-tls1_3", "-alpn", "h2")
    assert rc == 0 and "TLSv1.3" in out and "ALPN protocol: h2" in out, out


def test_tls_min_version_13_refuses_tls12(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, "--tls-min-version", "1.3")
    v12 = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        tls_connect(gw.port, client_context(pki, max_version=v12), server_name="default.test")
    rc, out = s_client(gw.port, "-tls1_2", "-alpn", "h2")
    assert rc != 0, out
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    assert s.version() == "TLSv1.3"
    h.get("/echo").assert_ok()
    h.close()


def test_tls_ciphers_option(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, "--tls-ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384")
    v12 = ssl.TLSVersion.TLSv1_2
    ctx = client_context(pki, max_version=v12)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with pytest.raises(ssl.SSLError):
        tls_connect(gw.port, ctx, server_name="default.test")
    ctx = client_context(pki, max_version=v12)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    s, h = h2_over_tls(gw.port, ctx, server_name="default.test")
    assert s.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384", s.cipher()
    h.get("/echo").assert_ok()
    h.close()


# --------------------------------------------------------------------------
# Session resumption


VERSIONS = {"tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3}


def new_session(port, ctx):
    """A full handshake and one request (so a TLS 1.3 ticket has arrived);
    returns the session."""
    s, h = h2_over_tls(port, ctx, server_name="default.test")
    assert not s.session_reused
    h.get("/echo").assert_ok()
    sess = s.session
    h.close()
    assert sess is not None and sess.has_ticket, "no session ticket received"
    return sess


def resumes(port, ctx, sess):
    """Connects offering sess; returns whether it was resumed (and checks
    the connection works either way)."""
    s, h = h2_over_tls(port, ctx, server_name="default.test", session=sess)
    reused = s.session_reused
    h.get("/echo").assert_ok()
    h.close()
    return reused


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_session_resumption(origin, h2gw, pki, version):
    gw = start_tls(h2gw, origin, pki)
    v = VERSIONS[version]
    ctx = client_context(pki, min_version=v, max_version=v)
    sess = new_session(gw.port, ctx)
    assert resumes(gw.port, ctx, sess), "%s session not resumed" % version


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_shared_ticket_key_file_resumes_across_gateways(origin, h2gw, pki, tmp_path, version):
    k1, k2 = ticket_keys(), ticket_keys()
    both = write_file(tmp_path / "fleet.key", k1 + k2)
    rotated = write_file(tmp_path / "rotated.key", k2 + k1)  # k2 encrypts, k1 still decrypts
    other = write_file(tmp_path / "other.key", ticket_keys(2))
    a = start_tls(h2gw, origin, pki, "--tls-ticket-key-file", both)
    b = start_tls(h2gw, origin, pki, "--tls-ticket-key-file", both)
    c = start_tls(h2gw, origin, pki, "--tls-ticket-key-file", rotated)
    d = start_tls(h2gw, origin, pki, "--tls-ticket-key-file", other)
    e = start_tls(h2gw, origin, pki)
    v = VERSIONS[version]
    ctx = client_context(pki, min_version=v, max_version=v)
    sess = new_session(a.port, ctx)
    assert resumes(b.port, ctx, sess), "session from gateway A not resumed on B (same key file)"
    sess = new_session(a.port, ctx)
    assert resumes(c.port, ctx, sess), "a ticket under the second key of C's file not resumed"
    sess = new_session(a.port, ctx)
    assert not resumes(d.port, ctx, sess), "resumed on a gateway with other ticket keys"
    sess = new_session(a.port, ctx)
    assert not resumes(e.port, ctx, sess), "resumed on a gateway with generated ticket keys"


def test_ticket_key_file_reloaded_on_sighup(origin, h2gw, pki, tmp_path):
    k1, k2 = ticket_keys(), ticket_keys()
    path = write_file(tmp_path / "ticket.key", k1)
    k2_file = write_file(tmp_path / "k2.key", k2)
    a = start_tls(h2gw, origin, pki, "--tls-ticket-key-file", path, "--log-level", "info")
    b = start_tls(h2gw, origin, pki, "--tls-ticket-key-file", k2_file)
    v = ssl.TLSVersion.TLSv1_2
    ctx = client_context(pki, min_version=v, max_version=v)
    old = new_session(a.port, ctx)
    assert resumes(a.port, ctx, old)
    write_file(path + ".tmp", k2)
    os.replace(path + ".tmp", path)
    a.sighup()
    a.wait_log("certificates reloaded")
    assert not resumes(a.port, ctx, old), "a ticket under the removed key was still accepted"
    sess = new_session(a.port, ctx)
    assert resumes(b.port, ctx, sess), "A does not issue tickets under the reloaded key"


# --------------------------------------------------------------------------
# Client certificates


def mtls_gateway(h2gw, origin, pki, mode, *extra):
    return start_tls(h2gw, origin, pki, "--tls-client-ca", pki.crt("clientca"),
                     "--verify-client", mode, "--client-cert-header", "x-client-subject", *extra)


def assert_refused(port, ctx, server_name="default.test"):
    """The handshake fails, or (TLS 1.3, where the client finishes first) the
    connection ends before any response."""
    try:
        s, h = h2_over_tls(port, ctx, server_name=server_name)
    except (ssl.SSLError, ConnectionResetError, ConnectionEnded):
        return
    try:
        r = h.get("/echo")
    except ConnectionEnded:
        return
    raise AssertionError("request without an acceptable client certificate answered: %s"
                         % r.describe())


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_mtls_require(origin, h2gw, pki, version):
    gw = mtls_gateway(h2gw, origin, pki, "require")
    v = VERSIONS[version]
    assert_refused(gw.port, client_context(pki, min_version=v, max_version=v))
    assert_refused(gw.port, client_context(pki, min_version=v, max_version=v, cert="rogue"))

    s, h = h2_over_tls(gw.port, client_context(pki, min_version=v, max_version=v,
                                               cert="client1"), server_name="default.test")
    r = h.get("/echo", headers=[("x-client-subject", "CN=forged,O=h2gw tests")])
    r.assert_ok()
    got = echo_values(r.json(), "x-client-subject")
    assert len(got) == 1, got
    assert "CN=client1" in got[0] and "forged" not in got[0], got
    assert "O=h2gw tests" in got[0], got
    # Without a forged copy too, and on a second stream of the connection.
    r = h.get("/echo")
    r.assert_ok()
    assert echo_values(r.json(), "x-client-subject") == got
    h.close()


def test_mtls_require_handshake_fails_without_certificate(origin, h2gw, pki):
    gw = mtls_gateway(h2gw, origin, pki, "require")
    rc, out = s_client(gw.port, "-tls1_2", "-alpn", "h2")
    assert rc != 0, out
    ctx = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_connect(gw.port, ctx, server_name="default.test")


def test_mtls_optional(origin, h2gw, pki):
    gw = mtls_gateway(h2gw, origin, pki, "optional")
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    r = h.get("/echo", headers=[("x-client-subject", "CN=forged")])
    r.assert_ok()
    assert echo_values(r.json(), "x-client-subject") == []
    h.close()

    s, h = h2_over_tls(gw.port, client_context(pki, cert="client1"), server_name="default.test")
    r = h.get("/echo", headers=[("X-Client-Subject", "CN=forged")])
    r.assert_ok()
    got = echo_values(r.json(), "x-client-subject")
    assert len(got) == 1 and "CN=client1" in got[0], got
    h.close()


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("mode", ["optional", "require"])
def test_mtls_session_resumption(origin, h2gw, pki, mode, version):
    """Clients resume sessions on a listener that asks for certificates too,
    and a resumed session still carries the verified subject."""
    gw = mtls_gateway(h2gw, origin, pki, mode, "--log-level", "debug")
    v = VERSIONS[version]
    ctx = client_context(pki, min_version=v, max_version=v, cert="client1")
    sess = new_session(gw.port, ctx)
    try:
        s, h = h2_over_tls(gw.port, ctx, server_name="default.test", session=sess)
    except (ssl.SSLError, ConnectionResetError) as e:
        raise AssertionError("handshake offering a session failed: %r; gateway log:\n%s"
                             % (e, gw.stderr_text()))
    try:
        r = h.get("/echo")
    except ConnectionEnded as e:
        raise AssertionError("connection offering a session ended: %r; gateway log:\n%s"
                             % (e, gw.stderr_text()))
    r.assert_ok()
    assert s.session_reused, "session not resumed"
    got = echo_values(r.json(), "x-client-subject")
    assert len(got) == 1 and "CN=client1" in got[0], got
    h.close()


def test_mtls_subject_cannot_inject_headers(origin, h2gw, pki):
    gw = mtls_gateway(h2gw, origin, pki, "require")
    s, h = h2_over_tls(gw.port, client_context(pki, cert="evil"), server_name="default.test")
    r = h.get("/echo")
    r.assert_ok()
    e = r.json()
    assert echo_values(e, "x-injected") == [], e["headers"]
    got = echo_values(e, "x-client-subject")
    assert len(got) == 1, e["headers"]
    assert "\r" not in got[0] and "\n" not in got[0], got
    assert got[0].startswith("CN=evil"), got
    h.close()

    s, h = h2_over_tls(gw.port, client_context(pki, cert="utf8"), server_name="default.test")
    r = h.get("/echo")
    r.assert_ok()
    got = echo_values(r.json(), "x-client-subject")
    assert len(got) == 1, got
    # RFC 2253: bytes above 0x7f as \XX, and ',' '"' escaped in values.
    assert got[0] == 'CN=Zo\\C3\\AB,O=h2gw tests\\, \\"quoted\\"', got
    h.close()


def test_curl_with_client_certificate(origin, h2gw, pki):
    gw = mtls_gateway(h2gw, origin, pki, "require")
    rc, body, version, status, err = curl(
        "https://default.test:%d/echo" % gw.port, "--http2", "--cacert", pki.crt("ca"),
        "--resolve", "default.test:%d:127.0.0.1" % gw.port,
        "--cert", pki.crt("client1"), "--key", pki.key("client1"),
        "-H", "x-client-subject: CN=forged")
    assert rc == 0, err
    assert (version, status) == ("2", "200"), (version, status, body)
    got = echo_values(json.loads(body), "x-client-subject")
    assert len(got) == 1 and "CN=client1" in got[0], got


def test_curl_http11_with_client_certificate(origin, h2gw, pki):
    gw = mtls_gateway(h2gw, origin, pki, "require")
    rc, body, version, status, err = curl(
        "https://default.test:%d/echo" % gw.port, "--http1.1", "--cacert", pki.crt("ca"),
        "--resolve", "default.test:%d:127.0.0.1" % gw.port,
        "--cert", pki.crt("client1"), "--key", pki.key("client1"),
        "-H", "x-client-subject: CN=forged")
    assert rc == 0, err
    assert (version, status) == ("1.1", "200"), (version, status, body)
    got = echo_values(json.loads(body), "x-client-subject")
    assert len(got) == 1 and "CN=client1" in got[0], got


# --------------------------------------------------------------------------
# PROXY protocol


def proxy_v1(src, dst="127.0.0.1", sport=5555, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def proxy_v2(src, dst, sport=5555, dport=443):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    if ":" in src:
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        addrs = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
        fam = 0x11
    body = addrs + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def h2c_after(port, prefix):
    s = tcp_connect(port)
    s.sendall(prefix)
    return H2Conn(s, authority="127.0.0.1:%d" % port, scheme="http")


def proxy_gateway(h2gw, origin, pki=None):
    extra = tls_flags(pki, "default") if pki is not None else []
    return h2gw("--listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % origin.port,
                "--proxy-protocol", "on", *extra)


@pytest.mark.parametrize("header,client", [
    (proxy_v1("203.0.113.9"), "203.0.113.9"),
    (proxy_v2("203.0.113.10", "127.0.0.1"), "203.0.113.10"),
    (proxy_v2("2001:db8::7", "2001:db8::1"), "2001:db8::7"),
], ids=["v1", "v2-ipv4", "v2-ipv6"])
def test_proxy_protocol_cleartext(origin, h2gw, header, client):
    gw = proxy_gateway(h2gw, origin)
    h = h2c_after(gw.port, header)
    r = h.get("/echo")
    r.assert_ok()
    e = r.json()
    assert echo_values(e, "x-forwarded-for") == [client], e["headers"]
    h.close()


def test_proxy_protocol_v1_in_pieces(origin, h2gw):
    gw = proxy_gateway(h2gw, origin)
    s = tcp_connect(gw.port)
    header = proxy_v1("198.51.100.3")
    for i in range(0, len(header), 7):
        s.sendall(header[i:i + 7])
        time.sleep(0.01)
    h = H2Conn(s, authority="x", scheme="http")
    r = h.get("/echo")
    r.assert_ok()
    assert echo_values(r.json(), "x-forwarded-for") == ["198.51.100.3"]
    h.close()


@pytest.mark.parametrize("header", [
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00",  # v2 LOCAL (health checks)
], ids=["v1-unknown", "v1-unknown-with-addresses", "v2-local"])
def test_proxy_protocol_local_keeps_peer_address(origin, h2gw, header):
    gw = proxy_gateway(h2gw, origin)
    h = h2c_after(gw.port, header)
    r = h.get("/echo")
    r.assert_ok()
    assert echo_values(r.json(), "x-forwarded-for") == ["127.0.0.1"]
    h.close()


def test_proxy_header_and_client_hello_in_one_segment(origin, h2gw, pki):
    gw = proxy_gateway(h2gw, origin, pki)
    raw = tcp_connect(gw.port)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(pki).wrap_bio(incoming, outgoing, server_hostname="default.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    raw.sendall(proxy_v2("192.0.2.77", "10.1.1.1") + outgoing.read())
    raw.settimeout(10 * SLOW)
    deadline = time.monotonic() + 10 * SLOW
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        out = outgoing.read()
        if out:
            raw.sendall(out)
        assert time.monotonic() < deadline, "handshake did not finish"
        data = raw.recv(65536)
        assert data, "closed during the handshake"
        incoming.write(data)
    raw.sendall(outgoing.read())
    assert tls.selected_alpn_protocol() == "h2"
    # HTTP/2 through the memory BIO: preface, one request, read the answer.
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, [(b":method", b"GET"), (b":scheme", b"https"),
                          (b":authority", b"default.test"), (b":path", b"/echo")],
                      end_stream=True)
    tls.write(conn.data_to_send())
    raw.sendall(outgoing.read())
    body, ended = b"", False
    while not ended:
        assert time.monotonic() < deadline, "no response"
        data = raw.recv(65536)
        assert data, "closed before the response"
        incoming.write(data)
        while True:
            try:
                plain = tls.read(65536)
            except ssl.SSLWantReadError:
                break
            for ev in conn.receive_data(plain):
                if isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended = True
        out = conn.data_to_send()
        if out:
            tls.write(out)
            raw.sendall(outgoing.read())
    assert echo_values(json.loads(body), "x-forwarded-for") == ["192.0.2.77"]
    raw.close()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_protocol_before_tls(origin, h2gw, pki, version):
    gw = proxy_gateway(h2gw, origin, pki)
    header = proxy_v1("203.0.113.9") if version == "v1" else proxy_v2("203.0.113.9", "10.0.0.1")
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test", prefix=header)
    r = h.get("/echo")
    r.assert_ok()
    e = r.json()
    assert echo_values(e, "x-forwarded-for") == ["203.0.113.9"]
    assert echo_values(e, "x-forwarded-proto") == ["https"]
    h.close()


@pytest.mark.parametrize("garbage", [
    b"GARBAGE HEADER\r\n\r\n",
    b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # a client that skips the PROXY header
    b"\r\n\r\n\x00\r\nQUIT\n\x99\x11\x00\x0c" + b"\x00" * 12,  # v2, bad version
], ids=["text", "bad-v1-address", "h2-preface", "v2-bad-version"])
def test_proxy_protocol_garbage_closes(origin, h2gw, garbage):
    gw = proxy_gateway(h2gw, origin)
    s = tcp_connect(gw.port)
    s.sendall(garbage)
    elapsed, data = wait_closed(s, 5 * SLOW)
    assert data == b"", data[:200]
    h = h2c_after(gw.port, proxy_v1("203.0.113.9"))
    h.get("/echo").assert_ok()
    h.close()


# --------------------------------------------------------------------------
# Handshake timeout and garbage


def test_handshake_timeout(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, "--tls-handshake-timeout", "1s")
    silent = tcp_connect(gw.port)
    partial = tcp_connect(gw.port)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that never finishes
    start = time.monotonic()
    t_silent, _ = wait_closed(silent, 5 * SLOW)
    t_partial, _ = wait_closed(partial, 5 * SLOW)
    total = time.monotonic() - start
    assert t_silent >= 0.8, "closed after %.2fs, before the 1 s timeout" % t_silent
    assert total <= 5 * SLOW, total
    assert t_partial <= 5 * SLOW
    # Meanwhile a real client is not affected.
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    h.get("/echo").assert_ok()
    h.close()


def test_handshake_timeout_does_not_cut_established_connections(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, "--tls-handshake-timeout", "1s")
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    h.get("/echo").assert_ok()
    time.sleep(1.5)
    r = h.get("/delay/200")
    r.assert_ok()
    h.close()


GARBAGE = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    bytes(range(256)) * 4,
    b"\x16\x03\x01\x00\x05hello",  # a handshake record that is not a ClientHello
]


@pytest.mark.parametrize("level", ["warn", "debug"])
def test_garbage_instead_of_client_hello(origin, h2gw, pki, level):
    gw = start_tls(h2gw, origin, pki, "--log-level", level)
    for g in GARBAGE:
        s = tcp_connect(gw.port)
        s.sendall(g)
        wait_closed(s, 5 * SLOW)
        s.close()
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    h.get("/echo").assert_ok()
    h.close()
    err = gw.stderr_text()
    assert error_lines(err) == [], err
    if level == "debug":
        assert err.count("TLS handshake failed") >= len(GARBAGE), err


def test_client_closing_mid_handshake(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki, "--log-level", "warn")
    ctx = client_context(pki)
    for _ in range(5):
        raw = tcp_connect(gw.port)
        raw.sendall(b"\x16\x03\x01")
        raw.close()
    # A client that gives up after the server's first flight.
    raw = tcp_connect(gw.port)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="default.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    raw.sendall(outgoing.read())
    raw.settimeout(5 * SLOW)
    assert raw.recv(65536)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # RST
    s, h = h2_over_tls(gw.port, ctx, server_name="default.test")
    h.get("/echo").assert_ok()
    h.close()
    assert error_lines(gw.stderr_text()) == [], gw.stderr_text()


# --------------------------------------------------------------------------
# Drain


def test_sigterm_drains_tls_connections(origin, h2gw, pki):
    gw = start_tls(h2gw, origin, pki)
    s, h = h2_over_tls(gw.port, client_context(pki), server_name="default.test")
    h.get("/echo").assert_ok()
    sid = h.request("GET", "/delay/700")
    handshaking = tcp_connect(gw.port)  # never finishes its handshake
    time.sleep(0.2)
    gw.proc.proc.send_signal(signal.SIGTERM)
    r = h.wait(sid)
    r.assert_ok()
    assert bytes(r.body) == b"delayed 700\n"
    deadline = time.monotonic() + 10 * SLOW
    with pytest.raises(ConnectionEnded):
        while time.monotonic() < deadline:
            h._pump(deadline)
    assert h.goaway is not None and h.goaway[0] == 0, h.goaway
    wait_closed(handshaking, 5 * SLOW)
    code = gw.proc.wait(15 * SLOW)
    assert code == 0, (code, gw.stderr_text())
