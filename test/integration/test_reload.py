"""Reload and drain (issue 11): SIGHUP reads the configuration file again
(flags given at start stay on top) and swaps every worker to it while
exchanges in flight finish on the old one; a broken file keeps the running
configuration; listeners are opened, moved and closed by a reload while
the connections they accepted finish, and an address that cannot be bound
refuses the reload as a whole; --check refuses keys given twice; a port
another process holds refuses the start."""

import os
import signal
import socket
import subprocess
import time

import pytest

pytest.register_assert_rewrite("tlsutil")

from conftest import (
    H2GW_BIN,
    LISTEN_RE,
    SLOW,
    H2Client,
    Proc,
    check_sanitizer_output,
    sanitizer_env,
    start_origin,
)

# The pki fixture.
pytest_plugins = ["tlsutil"]

RELOADED = "configuration reloaded (2 backends, 1 routes)"
FAILED = "reload failed: keeping the running configuration"


def conf_text(a_port, b_port, route_to, extra=""):
    return ("[listen]\n"                                 # 1
            "address = 127.0.0.1:0\n"                    # 2
            "[backend a]\n"                              # 3
            "server = 127.0.0.1:%d\n"                    # 4
            "[backend b]\n"                              # 5
            "server = 127.0.0.1:%d\n"                    # 6
            "[route r]\n"                                # 7
            "path_prefix = /\n"                          # 8
            "backend = %s\n"                             # 9
            "%s" % (a_port, b_port, route_to, extra))    # 10...


def write(path, text):
    # Replaced, not rewritten in place: a reader never sees half a file.
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, str(path))


@pytest.fixture
def origins(tmp_path):
    a = start_origin(tmp_path)
    b = start_origin(tmp_path)
    yield a, b
    a.proc.stop(5)
    b.proc.stop(5)


@pytest.fixture
def gw(tmp_path):
    """Factory: gw(conf_path, *flags) starts h2gw --config conf_path. At
    teardown each must exit 0 on SIGTERM with no sanitizer report."""
    started = []

    def start(conf, *flags):
        p = Proc("h2gw", [H2GW_BIN, "--config", str(conf)] + [str(f) for f in flags], tmp_path,
                 10 * SLOW)
        started.append(p)
        return p

    yield start
    H2Client.close_all()
    for p in started:
        code = p.stop(15)
        err = p.stderr_text()
        check_sanitizer_output(err, "h2gw")
        assert code == 0, "h2gw exited with %r; stderr:\n%s" % (code, err)


def wait_log(p, text, count=1, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if p.stderr_text().count(text) >= count:
            return
        assert p.alive(), "h2gw exited; stderr:\n%s" % p.stderr_text()
        time.sleep(0.02)
    raise AssertionError("no %r in the log:\n%s" % (text, p.stderr_text()))


def requests_seen(origin):
    """Requests the gateway sent the origin since its last reset."""
    return origin.stats()["requests"]


def reload(p, count=1):
    os.kill(p.pid, signal.SIGHUP)
    wait_log(p, RELOADED, count)


def test_sighup_switches_route_while_an_old_stream_finishes(tmp_path, origins, gw):
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a"))
    p = gw(path, "--log-level", "info")
    old = H2Client(p.port)
    assert old.get("/echo").status == 200
    a.reset_stats()
    # Long enough to outlast the reload and four requests on a slow machine.
    delay_ms = 1500 * SLOW
    slow = old.request("GET", "/delay/%d" % delay_ms)
    deadline = time.monotonic() + 5 * SLOW
    while requests_seen(a) < 1:  # the request reached backend a
        assert time.monotonic() < deadline, "the slow request never reached backend a"
        old.pump(0.02)

    write(path, conf_text(a.port, b.port, "b"))
    reload(p)
    with H2Client(p.port) as new:
        for _ in range(3):
            new.get("/echo").assert_ok()
    # A new exchange on a connection opened before the reload: new route.
    old.get("/echo").assert_ok()
    # The old pool serves its exchange in flight: not closed yet.
    assert "pools of a previous configuration are unused" not in p.stderr_text()
    resp = old.run([slow], timeout=10 + delay_ms / 1000)[0]
    resp.assert_ok()
    assert bytes(resp.body) == b"delayed %d\n" % delay_ms
    assert requests_seen(a) == 1  # the /delay request only
    assert requests_seen(b) == 4
    # Its last exchange done, the old pool is closed (and freed after).
    wait_log(p, "pools of a previous configuration are unused")
    with H2Client(p.port) as c:
        c.get("/echo").assert_ok()


def test_broken_config_keeps_the_running_one(tmp_path, origins, gw):
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a"))
    p = gw(path)
    # Line 10: a key [route] does not have; line 12: a missing backend.
    write(path, conf_text(a.port, b.port, "b",
                          "bogus = 1\n"                  # 10
                          "[route s]\n"                  # 11
                          "backend = nowhere\n"))        # 12
    os.kill(p.pid, signal.SIGHUP)
    wait_log(p, FAILED)
    err = p.stderr_text()
    assert "%s:10: unknown key 'bogus' in [route]" % path in err, err
    assert RELOADED not in err, err
    with H2Client(p.port) as c:
        c.get("/echo").assert_ok()
    assert requests_seen(a) == 1 and requests_seen(b) == 0

    # Fixed, it applies.
    write(path, conf_text(a.port, b.port, "b"))
    reload(p)
    a.reset_stats()
    b.reset_stats()
    with H2Client(p.port) as c:
        c.get("/echo").assert_ok()
    assert requests_seen(a) == 0 and requests_seen(b) == 1


def test_semantic_error_on_reload_is_named_by_line(tmp_path, origins, gw):
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a"))
    p = gw(path)
    write(path, conf_text(a.port, b.port, "nowhere"))
    os.kill(p.pid, signal.SIGHUP)
    wait_log(p, FAILED)
    assert "%s:7: backend 'nowhere' is not defined" % path in p.stderr_text()
    with H2Client(p.port) as c:
        c.get("/echo").assert_ok()
    assert requests_seen(a) == 1


def test_reload_applies_to_every_worker(tmp_path, origins, gw):
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a"))
    # --workers is a flag: it stays applied on top of the file at reload.
    p = gw(path, "--workers", "2")
    write(path, conf_text(a.port, b.port, "b"))
    reload(p)
    a.reset_stats()
    for _ in range(16):
        with H2Client(p.port) as c:
            c.get("/echo").assert_ok()
    assert requests_seen(a) == 0
    assert requests_seen(b) == 16
    # Twice more: each reload retires the previous pools.
    write(path, conf_text(a.port, b.port, "a"))
    reload(p, 2)
    write(path, conf_text(a.port, b.port, "b"))
    reload(p, 3)
    b.reset_stats()
    for _ in range(8):
        with H2Client(p.port) as c:
            c.get("/echo").assert_ok()
    assert requests_seen(b) == 8


def free_port():
    """A port nobody listens on right now (the kernel's pick, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_ports(p):
    """Every port the gateway announced on stdout, in order."""
    return [int(m) for m in LISTEN_RE.findall(p.stdout)]


def wait_listening(p, count, timeout=5):
    """The ports of the first `count` "listening on" lines, once there."""
    deadline = time.monotonic() + timeout * SLOW
    while len(listening_ports(p)) < count:
        assert time.monotonic() < deadline, "no %d 'listening on' lines: %r" % (count, p.stdout)
        time.sleep(0.02)
    return listening_ports(p)[:count]


def assert_refused(port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW).close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_listener_address_change_applies_while_a_request_finishes(tmp_path, origins, gw,
                                                                   workers):
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a"))
    p = gw(path, "--workers", workers, "--log-level", "info")
    # The first snapshot lives until exit: the old listener is to follow
    # one that a reload frees.
    reload(p)
    old_port = p.port
    old = H2Client(old_port)
    delay_ms = 1500 * SLOW
    slow = old.request("GET", "/delay/%d" % delay_ms)
    deadline = time.monotonic() + 5 * SLOW
    while requests_seen(a) < 1:  # in flight on the old listener
        assert time.monotonic() < deadline, "the slow request never reached backend a"
        old.pump(0.02)

    new_port = free_port()
    write(path, conf_text(a.port, b.port, "a").replace("127.0.0.1:0",
                                                       "127.0.0.1:%d" % new_port))
    reload(p, 2)
    assert wait_listening(p, 2)[1] == new_port
    with H2Client(new_port) as c:
        c.get("/echo").assert_ok()
    assert_refused(old_port)
    resp = old.run([slow], timeout=10 + delay_ms / 1000)[0]
    resp.assert_ok()
    assert bytes(resp.body) == b"delayed %d\n" % delay_ms
    # The connection outlives its listener, and the snapshot it was
    # accepted under is no worker's any more: a new request on it is served.
    wait_log(p, "a previous configuration is freed", 2 * int(workers))
    old.get("/echo").assert_ok()
    assert "listener 127.0.0.1:0: closed by the reload" in p.stderr_text(), p.stderr_text()


def test_listener_added_then_removed(tmp_path, origins, gw, pki):
    a, b = origins
    path = tmp_path / "gw.conf"
    base = conf_text(a.port, b.port, "a")
    write(path, base)
    p = gw(path, "--workers", "2", "--log-level", "info")
    # A new listener whose key is another certificate's: refused at its
    # line, nothing opened.
    write(path, base + ("[listen x]\n"                   # 10
                        "address = 127.0.0.1:0\n"        # 11
                        "tls_cert = %s\n"                # 12
                        "tls_key = %s\n"                 # 13
                        % (pki.crt("a"), pki.key("b"))))
    os.kill(p.pid, signal.SIGHUP)
    wait_log(p, FAILED)
    assert "%s:13: key '%s' does not match certificate" % (path, pki.key("b")) \
        in p.stderr_text(), p.stderr_text()
    assert listening_ports(p) == [p.port]

    write(path, base + "[listen x]\naddress = 127.0.0.1:0\n")
    reload(p)
    x_port = wait_listening(p, 2)[1]
    assert x_port != p.port
    x = H2Client(x_port)
    x.get("/echo").assert_ok()
    with H2Client(p.port) as c:
        c.get("/echo").assert_ok()
    assert "listener x 127.0.0.1:0: opened by the reload" in p.stderr_text()

    write(path, base)
    reload(p, 2)
    assert_refused(x_port)
    with H2Client(p.port) as c:
        c.get("/echo").assert_ok()
    # Once the snapshot of the removed listener is no worker's any more,
    # its connection still serves: it holds what it reads of the listener.
    wait_log(p, "a previous configuration is freed", 4)
    x.get("/echo").assert_ok()
    assert listening_ports(p) == [p.port, x_port]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_reload_to_a_held_address_is_refused(tmp_path, origins, gw, workers):
    a, b = origins
    path = tmp_path / "gw.conf"
    base = conf_text(a.port, b.port, "a")
    write(path, base)
    p = gw(path, "--workers", workers)
    held = socket.socket()
    try:
        held.bind(("127.0.0.1", 0))
        held.listen(8)
        port = held.getsockname()[1]
        # The moved listener and a new one: the new one cannot bind, so
        # neither change is applied.
        write(path, base.replace("127.0.0.1:0", "127.0.0.1:%d" % free_port())
              + "[listen x]\naddress = 127.0.0.1:%d\n" % port)
        os.kill(p.pid, signal.SIGHUP)
        wait_log(p, FAILED)
        err = p.stderr_text()
        assert ("listener x 127.0.0.1:%d: address 127.0.0.1:%d is already in use by another "
                "process" % (port, port)) in err, err
        assert RELOADED not in err
        with H2Client(p.port) as c:
            c.get("/echo").assert_ok()
        assert listening_ports(p) == [p.port]
    finally:
        held.close()
    # Nothing was left half done: freed, the address is taken.
    reload(p)
    assert port in wait_listening(p, 3)
    with H2Client(port) as c:
        c.get("/echo").assert_ok()
    assert_refused(p.port)


def test_address_moved_between_listeners_is_refused_at_its_line(tmp_path, origins, gw):
    a, b = origins
    path = tmp_path / "gw.conf"
    port = free_port()
    base = conf_text(a.port, b.port, "a").replace("127.0.0.1:0", "127.0.0.1:%d" % port)
    write(path, base)
    p = gw(path)
    assert p.port == port
    # Renamed: a new listener on the address the running one holds.
    write(path, base.replace("[listen]", "[listen renamed]"))
    os.kill(p.pid, signal.SIGHUP)
    wait_log(p, FAILED)
    assert ("%s:1: [listen renamed] address 127.0.0.1:%d is held by the running [listen] until "
            "this reload is applied: move it in two reloads" % (path, port)) \
        in p.stderr_text(), p.stderr_text()
    with H2Client(port) as c:
        c.get("/echo").assert_ok()


def test_sighup_reloads_certificates(tmp_path, origins, gw, pki):
    """The certificate files are read again, and a key that does not match
    its certificate keeps the running ones."""
    from tlsutil import copy_pair, served_cn
    a, b = origins
    crt, key = str(tmp_path / "tls.crt"), str(tmp_path / "tls.key")
    copy_pair(pki, "new", crt, key)
    path = tmp_path / "gw.conf"
    text = conf_text(a.port, b.port, "a").replace(
        "address = 127.0.0.1:0\n",
        "address = 127.0.0.1:0\ntls_cert = %s\ntls_key = %s\n" % (crt, key))
    write(path, text)
    p = gw(path)
    assert served_cn(p.port, pki, "new.test") == "new.test"
    copy_pair(pki, "newer", crt, key)
    reload(p)
    assert served_cn(p.port, pki, "newer.test") == "newer.test"
    # A key of another certificate: refused, at the key's line (4).
    with open(pki.key("new")) as f:
        key_text = f.read()
    with open(key, "w") as f:
        f.write(key_text)
    os.kill(p.pid, signal.SIGHUP)
    wait_log(p, FAILED)
    # OpenSSL finds the mismatch loading the key (same key type) or checking
    # the pair (another type); either way the key's line is named.
    lines = [l for l in p.stderr_text().splitlines() if "%s:4: " % path in l]
    assert len(lines) == 1 and key in lines[0] and "match" in lines[0], p.stderr_text()
    assert served_cn(p.port, pki, "newer.test") == "newer.test"


def run_check(path):
    r = subprocess.run([H2GW_BIN, "--config", str(path), "--check"], capture_output=True,
                       text=True, timeout=10 * SLOW, env=sanitizer_env())
    return r.returncode, r.stdout, r.stderr


def test_check_refuses_workers_given_twice(tmp_path):
    path = tmp_path / "gw.conf"
    write(path, "[gateway]\n"              # 1
                "workers = 2\n"            # 2
                "workers = 3\n"            # 3
                "[listen]\n"               # 4
                "address = 127.0.0.1:0\n"  # 5
                "[backend]\n"              # 6
                "server = 127.0.0.1:1\n"   # 7
                "server = 127.0.0.1:2\n")  # 8: a list may repeat
    rc, out, err = run_check(path)
    assert rc == 2, (out, err)
    assert "configuration OK" not in out
    assert err == ("%s:3: 'workers' given twice in [gateway] (first at line 2); it takes one "
                   "value\n" % path), err


def test_check_refuses_two_addresses_in_one_listener(tmp_path):
    path = tmp_path / "gw.conf"
    write(path, "[listen]\n"               # 1
                "address = 127.0.0.1:1\n"  # 2
                "address = 127.0.0.1:2\n"  # 3
                "[backend]\n"              # 4
                "server = 127.0.0.1:1\n")  # 5
    rc, out, err = run_check(path)
    assert rc == 2, (out, err)
    assert "%s:3: 'address' given twice in [listen] (first at line 2)" % path in err, err


def test_check_reports_key_mismatch_at_the_key_line(tmp_path, pki):
    path = tmp_path / "gw.conf"
    write(path, "[listen]\n"                      # 1
                "address = 127.0.0.1:0\n"         # 2
                "tls_cert = %s\n"                 # 3
                "tls_key = %s\n"                  # 4: another certificate's key
                "[backend]\n"                     # 5
                "server = 127.0.0.1:1\n"          # 6
                % (pki.crt("a"), pki.key("b")))
    rc, out, err = run_check(path)
    assert rc == 2, (out, err)
    assert "%s:4: key '%s' does not match certificate" % (path, pki.key("b")) in err, err
    assert "configuration OK" not in out


def test_second_gateway_on_a_held_port_refuses_to_start(tmp_path, origins, gw):
    a, b = origins
    path = tmp_path / "gw.conf"
    write(path, conf_text(a.port, b.port, "a"))
    first = gw(path, "--workers", "2")
    addr = "127.0.0.1:%d" % first.port
    for workers in ("2", "1"):
        r = subprocess.run([H2GW_BIN, "--listen", addr, "--backend", "127.0.0.1:%d" % a.port,
                            "--workers", workers], capture_output=True, text=True,
                           timeout=10 * SLOW, env=sanitizer_env())
        assert r.returncode != 0, r
        assert "%s is already in use by another process" % addr in r.stderr, r.stderr
    # The first one still serves.
    with H2Client(first.port) as c:
        c.get("/echo").assert_ok()


def test_sighup_reopens_the_access_log(tmp_path, origins, gw):
    """After a rotation (the file renamed), SIGHUP opens the file again."""
    a, b = origins
    log = tmp_path / "access.log"
    path = tmp_path / "gw.conf"
    write(path, "[gateway]\naccess_log = %s\n" % log + conf_text(a.port, b.port, "a"))
    p = gw(path)
    with H2Client(p.port) as c:
        c.get("/echo?before").assert_ok()
    os.rename(str(log), str(tmp_path / "access.log.1"))
    reload(p)
    with H2Client(p.port) as c:
        c.get("/echo?after").assert_ok()
    deadline = time.monotonic() + 5 * SLOW
    while not (log.exists() and "/echo?after" in log.read_text()):
        assert time.monotonic() < deadline, "no line in the reopened log"
        time.sleep(0.05)
    assert "/echo?before" not in log.read_text()
    assert "/echo?before" in (tmp_path / "access.log.1").read_text()
