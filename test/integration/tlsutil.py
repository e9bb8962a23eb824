"""
Helpers for the TLS and configuration-file integration tests.

- Pki: certificates made once per test session with the openssl CLI: a root
  CA, server leaves signed by it (default.test, a.test (RSA), b.test,
  *.wild.test, new.test), an intermediate CA with a leaf under it
  (chain.test), a client CA with client1 and a client certificate from an
  unrelated CA, and client certificates whose subjects hold CR LF, UTF-8
  and RFC 2253 special characters. Every key is EC P-256 unless noted.
- The `h2gw` fixture: starts the gateway with exactly the argv given (and an
  optional working directory), reads every "listening on" line, and at
  teardown closes every socket the test left open, sends SIGTERM and wants
  exit 0 within 15 s (30 s sanitized) with no sanitizer report.
- H2Conn: an HTTP/2 client on any connected socket (TLS or not), so a test
  can send a PROXY header or hold a TLS session first.
- curl / openssl s_client / nghttp runners with bounded waits.

Every wait is bounded; times grow by SLOW for the sanitized build.
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from contextlib import contextmanager

import pytest

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from conftest import H2GW_BIN, SANITIZED, SANITIZER_MARKERS, SLOW, Proc
# h2 refuses every frame after a GOAWAY; conftest's subclass lets the streams
# a graceful GOAWAY covers finish.
from conftest import _H2Connection

STOP_TIMEOUT = 30 if SANITIZED else 15
LISTEN_LINE_RE = re.compile(rb"listening on 127\.0\.0\.1:(\d+)( \(tls\))?\r?\n")


# --------------------------------------------------------------------------
# Certificates

OPENSSL_CNF = """\
[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = unused

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def run_openssl(args, cwd, san="DNS:unused.test", timeout=30):
    env = dict(os.environ, SAN=san)
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed (%d): %s" % (
            " ".join(args), p.returncode, p.stderr.decode("utf-8", "replace")))
    return p.stdout


class Pki:
    """File names (absolute) of everything generated in one directory."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.cnf = self.path("openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(OPENSSL_CNF)
        # Roots.
        self._ca("ca", "/O=h2gw tests/CN=h2gw test root")
        self._ca("clientca", "/O=h2gw tests/CN=h2gw client root")
        self._ca("rogueca", "/O=elsewhere/CN=rogue root")
        # An intermediate under the root.
        self._key("inter", "ec")
        self._sign("inter", "/O=h2gw tests/CN=h2gw intermediate", "ca", "ca_ext")
        # Server leaves.
        self._leaf("default", "/CN=default.test", "DNS:default.test", "ca", "ec")
        self._leaf("a", "/CN=a.test", "DNS:a.test", "ca", "rsa")
        self._leaf("b", "/CN=b.test", "DNS:b.test", "ca", "ec")
        self._leaf("wild", "/CN=wild.test", "DNS:*.wild.test", "ca", "ec")
        self._leaf("new", "/CN=new.test", "DNS:new.test", "ca", "ec")
        self._leaf("newer", "/CN=newer.test", "DNS:newer.test", "ca", "ec")
        self._leaf("chain", "/CN=chain.test", "DNS:chain.test", "inter", "ec")
        with open(self.path("chain-full.crt"), "w") as out:
            for part in ("chain.crt", "inter.crt"):
                with open(self.path(part)) as f:
                    out.write(f.read())
        # Client certificates.
        self._key("client1", "ec")
        self._sign("client1", "/O=h2gw tests/CN=client1", "clientca", "client_ext")
        self._key("rogue", "ec")
        self._sign("rogue", "/O=elsewhere/CN=rogue", "rogueca", "client_ext")
        # Subjects that must not break the header they are passed in.
        self._key("evil", "ec")
        self._sign("evil", "/O=h2gw tests/CN=evil\r\nx-injected: yes", "clientca", "client_ext")
        self._key("utf8", "ec")
        self._sign("utf8", "/O=h2gw tests, \"quoted\"/CN=Zo\u00eb", "clientca", "client_ext")

    def path(self, name):
        return os.path.join(self.dir, name)

    def crt(self, name):
        return self.path(name + ".crt")

    def key(self, name):
        return self.path(name + ".key")

    def _key(self, name, kind):
        if kind == "rsa":
            args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        else:
            args = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        run_openssl(["genpkey"] + args + ["-out", self.key(name)], self.dir)

    def _ca(self, name, subject):
        self._key(name, "ec")
        run_openssl(["req", "-config", self.cnf, "-x509", "-new", "-key", self.key(name),
                     "-subj", subject, "-days", "30", "-sha256", "-extensions", "ca_ext",
                     "-out", self.crt(name)], self.dir)

    def _sign(self, name, subject, issuer, ext, san="DNS:unused.test"):
        csr = self.path(name + ".csr")
        run_openssl(["req", "-config", self.cnf, "-new", "-utf8", "-key", self.key(name),
                     "-subj", subject, "-out", csr], self.dir, san)
        run_openssl(["x509", "-req", "-in", csr, "-CA", self.crt(issuer),
                     "-CAkey", self.key(issuer), "-set_serial", "0x" + secrets.token_hex(12),
                     "-days", "30", "-sha256", "-extfile", self.cnf, "-extensions", ext,
                     "-out", self.crt(name)], self.dir, san)

    def _leaf(self, name, subject, san, issuer, kind):
        self._key(name, kind)
        self._sign(name, subject, issuer, "server_ext", san)


_PKI = None


def get_pki(tmp_path_factory):
    """The session's certificates (made on first use)."""
    global _PKI
    if _PKI is None:
        _PKI = Pki(tmp_path_factory.mktemp("pki"))
    return _PKI


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return get_pki(tmp_path_factory)


def copy_pair(pki, name, cert_dst, key_dst):
    """Atomically replaces cert_dst and key_dst with the pair `name`."""
    for src, dst in ((pki.crt(name), cert_dst), (pki.key(name), key_dst)):
        tmp = dst + ".tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def ticket_keys(n=1):
    """n random 80-byte session ticket keys (16 name + 32 HMAC + 32 AES)."""
    return b"".join(secrets.token_bytes(80) for _ in range(n))


def write_file(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return str(path)


# --------------------------------------------------------------------------
# Sockets the tests open (closed before the gateways are stopped)

_SOCKETS = []


def track(sock):
    _SOCKETS.append(sock)
    return sock


def close_all_sockets():
    while _SOCKETS:
        s = _SOCKETS.pop()
        try:
            s.close()
        except OSError:
            pass


def tcp_connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return track(s)


def wait_closed(sock, timeout):
    """Reads until the peer closes (EOF or reset); returns (seconds, bytes
    read). Fails if the socket is still open after `timeout`."""
    start = time.monotonic()
    deadline = start + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("connection still open after %.1fs (read %r)" % (timeout, data[:200]))
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start, data
        if not chunk:
            return time.monotonic() - start, data
        data += chunk


# --------------------------------------------------------------------------
# TLS clients


def client_context(pki=None, cafile=None, alpn=("h2",), cert=None, min_version=None,
                   max_version=None, verify=True):
    """A client SSLContext that verifies against the test root (or cafile),
    without host name checks (tests look at the subject themselves). cert
    names a client pair in pki."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile or pki.crt("ca"))
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if cert is not None:
        ctx.load_cert_chain(pki.crt(cert), pki.key(cert))
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def tls_connect(port, ctx, server_name=None, session=None, prefix=b"", timeout=10):
    """TCP connect, send prefix (e.g. a PROXY header), TLS handshake.
    Returns the SSLSocket; raises ssl.SSLError / OSError when it fails."""
    raw = tcp_connect(port, timeout)
    if prefix:
        raw.sendall(prefix)
    s = ctx.wrap_socket(raw, server_hostname=server_name, session=session,
                        do_handshake_on_connect=False)
    track(s)
    s.settimeout(timeout * SLOW)
    s.do_handshake()
    return s


def peer_cn(sock):
    """The commonName of the certificate the server presented."""
    cert = sock.getpeercert()
    assert cert, "no verified peer certificate"
    for rdn in cert["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    raise AssertionError("no CN in %r" % (cert["subject"],))


def served_cn(port, pki, server_name, **kw):
    """Connects once and returns the CN of the certificate served for
    server_name (None: no SNI)."""
    s = tls_connect(port, client_context(pki, **kw), server_name=server_name)
    try:
        return peer_cn(s)
    finally:
        s.close()


# --------------------------------------------------------------------------
# HTTP/2 over any socket


class ConnectionEnded(Exception):
    """The gateway closed the connection (EOF, reset, TLS alert)."""


class Resp:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []
        self.body = bytearray()
        self.ended = False
        self.reset = None

    def header(self, name):
        name = name.encode()
        for k, v in self.headers:
            if k == name:
                return v.decode("latin-1")
        return None

    def json(self):
        return json.loads(bytes(self.body))

    def describe(self):
        return "stream %d: status=%r ended=%r reset=%r body=%r" % (
            self.sid, self.status, self.ended, self.reset, bytes(self.body[:300]))

    def assert_ok(self, status=200):
        assert self.ended and self.reset is None and self.status == status, self.describe()


class H2Conn:
    """An HTTP/2 client connection on an already connected socket (plain or
    TLS). Requests are run one call at a time; every wait is bounded."""

    def __init__(self, sock, authority="localhost", scheme="https", timeout=10):
        self.sock = sock
        self.authority = authority
        self.scheme = scheme
        self.timeout = timeout * SLOW
        self.streams = {}
        self.settings_received = False
        self.goaway = None
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = _H2Connection(config=cfg)
        self.conn.initiate_connection()
        self._send()

    def _send(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
                raise ConnectionEnded("send failed: %r" % e)

    def _pump(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out after %ss; streams: %s" % (
                self.timeout, [r.describe() for r in self.streams.values()]))
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        except (ssl.SSLError, ConnectionResetError) as e:
            raise ConnectionEnded("recv failed: %r" % e)
        if not data:
            raise ConnectionEnded("EOF")
        for ev in self.conn.receive_data(data):
            self._handle(ev)
        self._send()

    def _handle(self, ev):
        E = h2.events
        r = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, E.RemoteSettingsChanged):
            self.settings_received = True
        elif isinstance(ev, E.ResponseReceived) and r is not None:
            for k, v in ev.headers:
                if k == b":status":
                    r.status = int(v)
                else:
                    r.headers.append((bytes(k), bytes(v)))
        elif isinstance(ev, E.DataReceived):
            if r is not None:
                r.body += ev.data
            if ev.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(ev, E.StreamEnded) and r is not None:
            r.ended = True
        elif isinstance(ev, E.StreamReset) and r is not None:
            r.reset = ev.error_code
        elif isinstance(ev, E.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)

    def wait_settings(self):
        deadline = time.monotonic() + self.timeout
        while not self.settings_received:
            self._pump(deadline)
        return self.conn.remote_settings

    def request(self, method, path, headers=(), body=None):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(b":method", method.encode()), (b":scheme", self.scheme.encode()),
                (b":authority", self.authority.encode()), (b":path", path.encode())]
        for k, v in headers:
            hdrs.append((k.encode() if isinstance(k, str) else k,
                         v.encode() if isinstance(v, str) else v))
        if body:
            hdrs.append((b"content-length", str(len(body)).encode()))
        self.conn.send_headers(sid, hdrs, end_stream=not body)
        if body:
            self.conn.send_data(sid, body, end_stream=True)
        self.streams[sid] = Resp(sid)
        self._send()
        return sid

    def wait(self, sid):
        r = self.streams[sid]
        deadline = time.monotonic() + self.timeout
        while not (r.ended or r.reset is not None):
            self._pump(deadline)
        return r

    def get(self, path, headers=()):
        return self.wait(self.request("GET", path, headers))

    def close(self):
        try:
            self.conn.close_connection()
            self.sock.settimeout(1)
            self.sock.sendall(self.conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def h2_over_tls(port, ctx, server_name="a.test", **kw):
    s = tls_connect(port, ctx, server_name=server_name, **kw)
    assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
    return s, H2Conn(s, authority=server_name or "localhost")


def echo_values(echo, name):
    return [v for k, v in echo["headers"] if k.lower() == name]


# --------------------------------------------------------------------------
# The gateway


class RunningGateway:
    def __init__(self, proc, listeners):
        self.proc = proc
        self.pid = proc.pid
        self.listeners = listeners  # [(port, is_tls)] in config order
        self.port = listeners[0][0]

    def stderr_text(self):
        return self.proc.stderr_text()

    def sighup(self):
        os.kill(self.pid, signal.SIGHUP)

    def wait_log(self, needle, timeout=5, count=1):
        """Waits until stderr contains needle `count` times; returns stderr."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            text = self.stderr_text()
            if text.count(needle) >= count:
                return text
            if time.monotonic() > deadline:
                raise AssertionError("gateway stderr has no %r after %ss:\n%s" % (
                    needle, timeout * SLOW, text))
            self.assert_alive()
            time.sleep(0.05)

    def assert_alive(self):
        assert self.proc.alive(), "gateway exited with %r; stderr:\n%s" % (
            self.proc.proc.returncode, self.stderr_text())


@contextmanager
def _cwd(path):
    if path is None:
        yield
        return
    old = os.getcwd()
    os.chdir(str(path))
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture
def h2gw(tmp_path):
    """Factory: h2gw(*args, listeners=1, cwd=None) runs H2GW_BIN with exactly
    these arguments and waits for `listeners` "listening on" lines."""
    started = []

    def start(*args, listeners=1, cwd=None):
        assert os.path.exists(H2GW_BIN), "H2GW_BIN %s does not exist (make all)" % H2GW_BIN
        argv = [H2GW_BIN] + [str(a) for a in args]
        with _cwd(cwd):
            proc = Proc("h2gw", argv, tmp_path, 10 * SLOW)
        started.append(proc)
        deadline = time.monotonic() + 10 * SLOW
        while True:
            found = LISTEN_LINE_RE.findall(proc.stdout)
            if len(found) >= listeners:
                break
            if time.monotonic() > deadline or not proc.alive():
                raise AssertionError("want %d listening lines, got stdout %r; stderr:\n%s" % (
                    listeners, proc.stdout, proc.stderr_text()))
            time.sleep(0.02)
        return RunningGateway(proc, [(int(p), bool(t)) for p, t in found])

    yield start

    close_all_sockets()
    failures = []
    for proc in started:
        code = proc.stop(STOP_TIMEOUT)
        err = proc.stderr_text()
        if code != 0:
            failures.append("gateway %s exited with %r after SIGTERM (want 0 within %d s); "
                            "stderr:\n%s" % (proc.argv, code, STOP_TIMEOUT, err))
        for marker in SANITIZER_MARKERS:
            if marker in err:
                failures.append("gateway stderr contains %r:\n%s" % (marker, err))
                break
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def tls_flags(pki, *names):
    """--tls-cert/--tls-key pairs for the named certificates, in order."""
    out = []
    for n in names:
        out += ["--tls-cert", pki.crt(n), "--tls-key", pki.key(n)]
    return out


# --------------------------------------------------------------------------
# Command-line clients


def run_tool(argv, timeout=20, stdin=None):
    """Runs a client tool; returns (returncode, stdout text, stderr text)."""
    p = subprocess.run(argv, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=timeout * SLOW)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def curl(url, *args, timeout=20):
    """curl -sS URL ... -w '\\n%{http_version} %{response_code}': returns
    (returncode, body, http_version, status, stderr)."""
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl not installed")
    rc, out, err = run_tool([path, "-sS", "--max-time", str(15 * SLOW),
                             "-w", "\n%{http_version} %{response_code}"] + list(args) + [url],
                            timeout)
    body, _, tail = out.rpartition("\n")
    version, _, status = tail.partition(" ")
    return rc, body, version, status, err


def s_client(port, *args, timeout=20):
    """openssl s_client against 127.0.0.1:port with stdin at EOF (it prints
    the handshake summary, then quits); returns (returncode, stdout+stderr)."""
    rc, out, err = run_tool(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
                            + list(args), timeout, stdin=b"")
    return rc, out + err
