"""The INI configuration file: listeners and backends from the file, --check
with errors named by FILE:LINE, flags overriding the file, duration and size
syntax, and the shipped config/h2gw.conf."""

import json
import os
import socket
import subprocess
import time

import pytest

pytest.register_assert_rewrite("tlsutil")

from conftest import (
    H2GW_BIN,
    ORIGIN_BIN,
    REPO,
    SLOW,
    H2Client,
    Proc,
    check_sanitizer_output,
    closed_port,
    sanitizer_env,
)
from tlsutil import (
    client_context,
    curl,
    echo_values,
    h2_over_tls,
    peer_cn,
    served_cn,
    tcp_connect,
    write_file,
)

# The h2gw and pki fixtures.
pytest_plugins = ["tlsutil"]

SHIPPED_CONF = os.path.join(REPO, "config", "h2gw.conf")


def run_h2gw(*args, cwd=None):
    p = subprocess.run([H2GW_BIN] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20 * SLOW, env=sanitizer_env(), cwd=cwd)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check_sanitizer_output(err, "h2gw %s" % " ".join(str(a) for a in args))
    return p.returncode, out, err


def line_of(text, needle, nth=1):
    """1-based number of the nth line of text containing needle."""
    hits = [i + 1 for i, l in enumerate(text.splitlines()) if needle in l]
    assert len(hits) >= nth, "%r not in the config text" % needle
    return hits[nth - 1]


def conf(tmp_path, text, name="h2gw.conf"):
    return write_file(tmp_path / name, text)


def two_listener_conf(pki, origin_port, plain_port):
    return """\
# Two listeners and a backend.
[gateway]
log_level = warn

[listen secure]
address = 127.0.0.1:0
tls_cert = {crt}
tls_key = {key}

[listen plain]
address = 127.0.0.1:{plain}

[backend default]
server = 127.0.0.1:{origin}
""".format(crt=pki.crt("default"), key=pki.key("default"), plain=plain_port, origin=origin_port)


def check_both_listeners(gw, pki):
    (tls_port, is_tls), (plain_port, is_plain_tls) = gw.listeners
    assert is_tls and not is_plain_tls, gw.proc.stdout
    s, h = h2_over_tls(tls_port, client_context(pki), server_name="default.test")
    assert peer_cn(s) == "default.test"
    r = h.get("/echo?via=tls")
    r.assert_ok()
    assert echo_values(r.json(), "x-forwarded-proto") == ["https"]
    h.close()
    with H2Client(plain_port) as c:
        r = c.get("/echo?via=h2c")
    r.assert_ok()
    assert r.json()["target"] == "/echo?via=h2c"


def test_file_with_tls_and_cleartext_listeners(origin, h2gw, pki, tmp_path):
    path = conf(tmp_path, two_listener_conf(pki, origin.port, closed_port()))
    gw = h2gw("--config", path, listeners=2)
    check_both_listeners(gw, pki)
    rc, body, version, status, err = curl("https://127.0.0.1:%d/echo" % gw.listeners[0][0],
                                          "--http2", "-k")
    assert rc == 0 and (version, status) == ("2", "200"), (rc, version, status, err)


def test_two_listeners_on_port_0(origin, h2gw, pki, tmp_path):
    """Port 0 asks the kernel for a free port: two listeners on
    127.0.0.1:0 never collide, so they are not duplicates."""
    path = conf(tmp_path, two_listener_conf(pki, origin.port, 0))
    rc, out, err = run_h2gw("--config", path, "--check")
    assert rc == 0 and "configuration OK" in out, (rc, out, err)
    gw = h2gw("--config", path, listeners=2)
    assert gw.listeners[0][0] != gw.listeners[1][0]
    check_both_listeners(gw, pki)


def test_check_valid_file(origin, pki, tmp_path):
    path = conf(tmp_path, two_listener_conf(pki, origin.port, closed_port()))
    rc, out, err = run_h2gw("--config", path, "--check")
    assert rc == 0, (out, err)
    assert "configuration OK" in out, out
    assert err == "", err


def test_check_missing_config_file(tmp_path):
    path = str(tmp_path / "nope.conf")
    rc, out, err = run_h2gw("--config", path, "--check")
    assert rc == 2, (out, err)
    assert path in err, err
    assert "configuration OK" not in out


def error_lines(err, path):
    """{line number: message} of every "FILE:LINE: message" line; every
    stderr line must have that form."""
    got = {}
    for l in err.strip().splitlines():
        assert l.startswith(path + ":"), "not a FILE:LINE: message: %r\n%s" % (l, err)
        num, _, msg = l[len(path) + 1:].partition(": ")
        assert num.isdigit(), "no line number in %r" % l
        assert int(num) not in got, "two messages for line %s:\n%s" % (num, err)
        got[int(num)] = msg
    return got


def test_check_reports_every_parse_error_with_its_line(pki, tmp_path):
    text = """\
[gateway]
no_such_key = 1
client_idle_timeout = soon
max_header_list_size = 12 parsecs
log_level = info

[listen tls]
address = 127.0.0.1:8443
tls_cert = {crt}
tls_key = {key}
tls_min_version = 1.1

[listen tls]
address = 127.0.0.1:8444

[backend default]
server = 127.0.0.1:8081
idle_timeout = -3s
weight = 2

[frontend x]
address = 1
""".format(crt=pki.crt("default"), key=pki.key("default"))
    path = conf(tmp_path, text)
    rc, out, err = run_h2gw("--config", path, "--check")
    assert rc == 2, (out, err)
    assert "configuration OK" not in out
    got = error_lines(err, path)
    want = {
        line_of(text, "no_such_key"): ["unknown key", "no_such_key"],
        line_of(text, "= soon"): ["client_idle_timeout", "soon"],
        line_of(text, "parsecs"): ["max_header_list_size"],
        line_of(text, "tls_min_version"): ["tls_min_version", "1.1"],
        line_of(text, "[listen tls]", 2): ["duplicate", "tls", "line %d" % line_of(text,
                                                                                  "[listen tls]")],
        line_of(text, "= -3s"): ["idle_timeout"],
        line_of(text, "weight = 2"): ["unknown key", "weight"],
        line_of(text, "[frontend x]"): ["frontend"],
    }
    assert sorted(got) == sorted(want), "error lines %s, want %s:\n%s" % (
        sorted(got), sorted(want), err)
    for num, words in want.items():
        for w in words:
            assert w in got[num], "line %d: %r lacks %r" % (num, got[num], w)


def test_check_reports_every_validation_error_with_its_line(pki, tmp_path):
    missing = str(tmp_path / "missing" / "server.crt")
    text = """\
[listen tls]
address = 127.0.0.1:8443
tls_cert = {missing}
tls_key = {key}
tls_cert = {crt}
tls_key = {tmp}/missing.key

[listen again]
address = 127.0.0.1:8443

[listen plain]
address = 127.0.0.1:8080
tls_min_version = 1.3
verify_client = require

[backend default]
server = 127.0.0.1:8081

[route api]
path_prefix = /api/
backend = nowhere
""".format(missing=missing, crt=pki.crt("default"), key=pki.key("default"), tmp=tmp_path)
    path = conf(tmp_path, text)
    rc, out, err = run_h2gw("--config", path, "--check")
    assert rc == 2, (out, err)
    assert "configuration OK" not in out
    lines = err.strip().splitlines()
    for l in lines:
        assert l.startswith(path + ":"), "not a FILE:LINE: message: %r\n%s" % (l, err)

    def expect(num, *words):
        hits = [l for l in lines if l.startswith("%s:%d: " % (path, num))
                and all(w in l for w in words)]
        assert hits, "no error at line %d with %r:\n%s" % (num, words, err)

    expect(line_of(text, "tls_cert = " + missing), "tls_cert", missing)
    expect(line_of(text, "missing.key"), "tls_key", "missing.key")
    expect(line_of(text, "[listen again]"), "127.0.0.1:8443", "already used", "[listen tls]")
    expect(line_of(text, "[listen plain]"), "tls_min_version", "tls_cert")
    expect(line_of(text, "[listen plain]"), "verify_client")
    expect(line_of(text, "[route api]"), "nowhere")


def test_flags_override_the_file(origin, h2gw, pki, tmp_path):
    text = """\
[gateway]
max_concurrent_streams = 7
log_level = warn

[listen]
address = 127.0.0.1:0

[backend default]
server = 127.0.0.1:{dead}
max_connections = 1
""".format(dead=closed_port())
    path = conf(tmp_path, text)

    # The file alone: its values, and its backend (nothing listens there).
    gw = h2gw("--config", path)
    with H2Client(gw.port) as c:
        r = c.get("/echo")
        assert c.conn.remote_settings.max_concurrent_streams == 7
    assert r.status == 502, r.describe()

    # --backend replaces the file's servers; one connection at most.
    gw = h2gw("--config", path, "--backend", "127.0.0.1:%d" % origin.port)
    origin.reset_stats()
    with H2Client(gw.port) as c:
        sids = [c.request("GET", "/delay/300") for _ in range(4)]
        for r in c.run(sids):
            r.assert_ok()
    assert origin.stats()["connections_accepted"] == 1

    # Flags win over the file wherever they stand on the command line.
    gw = h2gw("--max-concurrent-streams", "9", "--config", path,
              "--backend", "127.0.0.1:%d" % origin.port, "--backend-max-connections", "4")
    origin.reset_stats()
    with H2Client(gw.port) as c:
        sids = [c.request("GET", "/delay/300") for _ in range(4)]
        for r in c.run(sids):
            r.assert_ok()
        assert c.conn.remote_settings.max_concurrent_streams == 9
    assert origin.stats()["connections_accepted"] == 4


def test_tls_flags_replace_the_file_certificates(origin, h2gw, pki, tmp_path):
    text = """\
[listen]
address = 127.0.0.1:0
tls_cert = {crt}
tls_key = {key}

[backend]
server = 127.0.0.1:{origin}
""".format(crt=pki.crt("default"), key=pki.key("default"), origin=origin.port)
    path = conf(tmp_path, text)
    gw = h2gw("--config", path)
    assert served_cn(gw.port, pki, "default.test") == "default.test"
    gw = h2gw("--config", path, "--tls-cert", pki.crt("new"), "--tls-key", pki.key("new"))
    assert served_cn(gw.port, pki, "default.test") == "new.test"
    assert served_cn(gw.port, pki, "new.test") == "new.test"


def test_tls_options_from_the_file(origin, h2gw, pki, tmp_path):
    text = """\
[gateway]
tls_handshake_timeout = 1s

[listen edge]
address = 127.0.0.1:0
tls_cert = {d_crt}
tls_key = {d_key}
tls_cert = {a_crt}
tls_key = {a_key}
tls_cert = {w_crt}
tls_key = {w_key}
tls_min_version = 1.3
tls_client_ca = {ca}
verify_client = optional
client_cert_header = x-client-subject
proxy_protocol = on

[backend]
server = 127.0.0.1:{origin}
""".format(d_crt=pki.crt("default"), d_key=pki.key("default"), a_crt=pki.crt("a"),
           a_key=pki.key("a"), w_crt=pki.crt("wild"), w_key=pki.key("wild"),
           ca=pki.crt("clientca"), origin=origin.port)
    path = conf(tmp_path, text)
    rc, out, err = run_h2gw("--config", path, "--check")
    assert rc == 0 and "configuration OK" in out, (out, err)
    gw = h2gw("--config", path)
    proxy = b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 443\r\n"
    for name, cn in (("a.test", "a.test"), ("z.wild.test", "wild.test"),
                     ("x.test", "default.test")):
        s, h = h2_over_tls(gw.port, client_context(pki, cert="client1"), server_name=name,
                           prefix=proxy)
        assert peer_cn(s) == cn
        assert s.version() == "TLSv1.3"
        r = h.get("/echo")
        r.assert_ok()
        e = r.json()
        assert echo_values(e, "x-forwarded-for") == ["203.0.113.9"]
        got = echo_values(e, "x-client-subject")
        assert len(got) == 1 and "CN=client1" in got[0], got
        h.close()
    # tls_handshake_timeout = 1s from [gateway].
    s = tcp_connect(gw.port)
    s.sendall(proxy)
    start = time.monotonic()
    s.settimeout(5 * SLOW)
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    assert 0.8 <= time.monotonic() - start <= 5 * SLOW


def test_durations_and_sizes(origin, h2gw, pki, tmp_path):
    text = """\
[gateway]
max_header_list_size = 16k
request_buffer_size = 128k
response_buffer_size = 1m
client_idle_timeout = 2m
tls_handshake_timeout = 2m

[listen]
address = 127.0.0.1:0

[backend]
server = 127.0.0.1:{origin}
idle_timeout = 250ms
connect_timeout = 2m
response_timeout = 1h
io_timeout = 90
max_request_body = 64k
""".format(origin=origin.port)
    path = conf(tmp_path, text)
    rc, out, err = run_h2gw("--config", path, "--check")
    assert rc == 0 and "configuration OK" in out, (out, err)
    gw = h2gw("--config", path)
    with H2Client(gw.port) as c:
        r = c.get("/echo")
        r.assert_ok()
        settings = c.conn.remote_settings
        assert settings.max_header_list_size == 16 * 1024
        assert settings.initial_window_size == 128 * 1024
        # max_request_body = 64k: at the limit passes, above it is a 413.
        r = c.fetch("POST", "/echo", body=b"x" * (64 * 1024))
        r.assert_ok()
        assert r.json()["body_length"] == 64 * 1024
        r = c.fetch("POST", "/echo", body=b"x" * (64 * 1024 + 1))
        assert r.status == 413, r.describe()
    # idle_timeout = 250ms: the pooled connection is closed well before the 4 s default.
    start = time.monotonic()
    s = origin.wait_open_connections(0, 3)
    assert s["open_connections"] == 0, s
    assert time.monotonic() - start < 3 * SLOW


# --------------------------------------------------------------------------
# The shipped example


def shipped_workdir(tmp_path):
    """A working directory with build/tls/server.{crt,key}, which the
    shipped file names relative to the working directory."""
    work = tmp_path / "work"
    work.mkdir()
    p = subprocess.run(["bash", os.path.join(REPO, "scripts", "gen-cert.sh"), "build/tls"],
                       cwd=str(work), capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert (work / "build" / "tls" / "server.crt").exists()
    return str(work)


def test_shipped_config_passes_check(tmp_path):
    work = shipped_workdir(tmp_path)
    rc, out, err = run_h2gw("--config", SHIPPED_CONF, "--check", cwd=work)
    assert rc == 0, (out, err)
    assert "configuration OK" in out, out


def test_shipped_config_without_certificates_fails_check(tmp_path):
    rc, out, err = run_h2gw("--config", SHIPPED_CONF, "--check", cwd=str(tmp_path))
    assert rc == 2, (out, err)
    with open(SHIPPED_CONF) as f:
        text = f.read()
    assert "%s:%d: " % (SHIPPED_CONF, line_of(text, "tls_cert = build/tls/server.crt")) in err, err
    assert "%s:%d: " % (SHIPPED_CONF, line_of(text, "tls_key = build/tls/server.key")) in err, err


def port_is_free(port):
    """Bindable the way libuv binds (SO_REUSEADDR: TIME_WAIT is no obstacle)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_shipped_config_serves(h2gw, tmp_path):
    busy = [p for p in (8443, 8080, 8081) if not port_is_free(p)]
    if busy:
        pytest.skip("ports %s busy" % busy)
    work = shipped_workdir(tmp_path)
    origin = Proc("origin", [ORIGIN_BIN, "--listen", "127.0.0.1:8081"], tmp_path, 10)
    try:
        gw = h2gw("--config", SHIPPED_CONF, listeners=2, cwd=work)
        assert gw.listeners == [(8443, True), (8080, False)], gw.proc.stdout
        rc, body, version, status, err = curl("https://127.0.0.1:8443/echo?via=shipped",
                                              "--http2", "-k")
        assert rc == 0 and (version, status) == ("2", "200"), (rc, version, status, err)
        assert json.loads(body)["target"] == "/echo?via=shipped"
        rc, body, version, status, err = curl("http://127.0.0.1:8080/echo?via=h2c",
                                              "--http2-prior-knowledge")
        assert rc == 0 and (version, status) == ("2", "200"), (rc, version, status, err)
        assert json.loads(body)["target"] == "/echo?via=h2c"
    finally:
        origin.stop(5)  # the gateway is stopped (and checked) by the h2gw fixture
