"""The command line, other clients (curl, h2load, HTTP/1.1) against the listener."""

import json
import shutil
import socket
import subprocess
import time

import pytest

from conftest import H2GW_BIN, SLOW, check_sanitizer_output, sanitizer_env


def run_h2gw(*args):
    p = subprocess.run([H2GW_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20 * SLOW, env=sanitizer_env())
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check_sanitizer_output(err, "h2gw %s" % " ".join(args))
    return p.returncode, out, err


VALID = ["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"]


@pytest.mark.parametrize("args,flag", [
    (VALID + ["--no-such-flag"], "--no-such-flag"),
    (VALID + ["--no-such-flag=1"], "--no-such-flag"),
    (["--listen", "127.0.0.1:0", "--backend"], "--backend"),
    (VALID + ["--backend-max-connections"], "--backend-max-connections"),
    (["--listen", "not-an-address", "--backend", "127.0.0.1:9"], "--listen"),
    (["--listen", "127.0.0.1:99999", "--backend", "127.0.0.1:9"], "--listen"),
    (["--listen", "127.0.0.1:0", "--backend", "127.0.0.1"], "--backend"),
    (VALID + ["--backend-idle-timeout", "soon"], "--backend-idle-timeout"),
    (VALID + ["--max-header-list-size", "huge"], "--max-header-list-size"),
    (VALID + ["--backend-max-connections", "-1"], "--backend-max-connections"),
    (VALID + ["--log-level", "chatty"], "--log-level"),
])
def test_bad_flags_exit_2_naming_the_flag(args, flag):
    code, out, err = run_h2gw(*args)
    assert code == 2, (args, code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, "want one line on stderr, got %r" % err
    assert flag in lines[0], "stderr does not name %s: %r" % (flag, err)


def test_version():
    code, out, err = run_h2gw("--version")
    assert code == 0, (out, err)
    assert "0." in out or "1." in out, out


def test_help():
    code, out, err = run_h2gw("--help")
    assert code == 0, (out, err)
    for flag in ("--listen", "--backend", "--backend-max-connections", "--max-header-list-size"):
        assert flag in out, "--help does not mention %s" % flag


def test_check_valid_flags():
    code, out, err = run_h2gw("--check", *VALID, "--backend-max-connections", "8",
                              "--backend-idle-timeout", "4s", "--backend-connect-timeout", "3s",
                              "--backend-response-timeout", "60s",
                              "--max-concurrent-streams", "100",
                              "--max-header-list-size", "64k", "--request-buffer-size", "64k",
                              "--response-buffer-size", "256k", "--log-level", "warn")
    assert code == 0, (out, err)


def test_check_invalid_flags_exit_2():
    code, out, err = run_h2gw("--check", "--listen", "127.0.0.1:0", "--backend", "nope")
    assert code == 2, (out, err)
    assert "--backend" in err


def test_curl_prior_knowledge(origin, gateway):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    gw = gateway(origin)
    p = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "--max-time", str(20 * SLOW),
                        "-w", "\n%{http_version} %{response_code}",
                        "http://127.0.0.1:%d/echo?from=curl" % gw.port],
                       capture_output=True, timeout=30 * SLOW)
    assert p.returncode == 0, p.stderr
    body, _, tail = p.stdout.decode().rpartition("\n")
    assert tail == "2 200", (tail, body)
    e = json.loads(body)
    assert e["target"] == "/echo?from=curl"
    assert e["method"] == "GET"


def test_h2load_smoke(origin, gateway):
    h2load = shutil.which("h2load")
    if h2load is None:
        pytest.skip("h2load not installed")
    gw = gateway(origin, "--backend-max-connections", "8")
    p = subprocess.run([h2load, "-n", "2000", "-c", "4", "-m", "20",
                        "http://127.0.0.1:%d/bytes/1000" % gw.port],
                       capture_output=True, timeout=60 * SLOW)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "status codes: 2000 2xx" in out, out


def test_http11_request_is_served(origin, gateway):
    """The cleartext listener takes HTTP/1.1 next to HTTP/2 (test_h1.py has
    the details)."""
    gw = gateway(origin)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10 * SLOW)
    try:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    gw.assert_alive()
    with gw.client() as c:
        c.get("/echo?after-h1").assert_ok()
    assert origin.stats()["requests"] == 2


def test_access_log_lines(origin, gateway, tmp_path):
    """--access-log FILE: one line per request with client, protocol,
    request line, status, body bytes and outcome."""
    path = tmp_path / "access.log"
    gw = gateway(origin, "--access-log", str(path))
    with gw.client() as c:
        c.get("/bytes/1234").assert_ok()
        assert c.get("/status/404").status == 404
        r = c.get("/close-mid-body")
        assert r.reset is not None
    deadline = time.monotonic() + 5 * SLOW
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= 3:
            break
        time.sleep(0.05)
    assert len(lines) == 3, lines
    assert ' 127.0.0.1 h2 "GET /bytes/1234" 200 1234 ' in lines[0] and lines[0].endswith(" ok")
    assert '"GET /status/404" 404 ' in lines[1]
    assert '"GET /close-mid-body" 200 ' in lines[2] and lines[2].endswith(" reset")
