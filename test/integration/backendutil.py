"""
Helpers for test_backends.py (backend groups, failures, limits).

- start_origin_at(tmpdir, port): the test origin on a given port (0: any),
  retrying a bind that fails while the previous owner of the port is still
  going away.
- RawServer: a tiny threaded HTTP/1.1 server on raw sockets whose failures
  are controlled by the test: reset a connection (RST, no response) after
  reading a request's head and body, advertise "Keep-Alive: timeout=N",
  answer a health path with a status the test can change. Every request
  (complete or not) and every connection's end is recorded, with times.
- BlackHole: a listening socket whose accept queue is full and never
  drained, so that a connect to it neither succeeds nor fails (SYN dropped)
  until the connecting side gives up.
- http1(): one HTTP/1.1 request on a plain socket (Content-Length or
  chunked response), for the HTTP/1.1 frontend.

Every wait is bounded; the servers' threads are daemons and stop on close().
"""

import hashlib
import json
import os
import select
import socket
import struct
import threading
import time

from conftest import ORIGIN_BIN, SLOW, Origin, Proc


# --------------------------------------------------------------------------
# The origin on a chosen port


def start_origin_at(tmpdir, port=0, timeout=5):
    """Starts build/origin on 127.0.0.1:port. A fixed port may still be held
    for a moment by the process that had it: retry until `timeout`."""
    assert os.path.exists(ORIGIN_BIN), "ORIGIN_BIN %s does not exist (make all)" % ORIGIN_BIN
    deadline = time.monotonic() + timeout * SLOW
    while True:
        try:
            return Origin(Proc("origin", [ORIGIN_BIN, "--listen", "127.0.0.1:%d" % port],
                               tmpdir, 10))
        except AssertionError:
            if port == 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --------------------------------------------------------------------------
# A controllable HTTP/1.1 server


def _rst_close(sock):
    """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    def __init__(self, cid, sock):
        self.id = cid
        self.sock = sock
        self.accepted_at = time.monotonic()
        self.last_response_at = None
        self.closed_at = None  # when the peer's EOF or reset was read
        self.close_kind = None  # "eof", "reset", "server-reset", "server-close"
        self.nrequests = 0
        self.reset_asked = False


class RawServer:
    """HTTP/1.1 on raw sockets, one thread per connection.

    policy(req) decides what happens to each request once its head and body
    are read: "reset" closes the connection with RST and no response,
    anything else answers. head_policy(method, target), if given, is asked
    as soon as the head is read: "reset" resets the connection before the
    body is read (the request is recorded with body_length None). req is a
    dict: conn (id), index (1-based on the
    connection), method, target, headers [(lowercase name, value)],
    body_length, body_sha256, chunked, at (monotonic time).

    The default answer is 200 application/json with the request's method,
    target, body_length, body_sha256, conn and index, keep-alive (plus
    "Keep-Alive: timeout=N" when keep_alive_timeout is set). A GET of
    health_path is answered with health_status (a plain text body)."""

    def __init__(self, name="raw", policy=None, head_policy=None, keep_alive_timeout=None,
                 health_path=None, health_status=200):
        self.name = name
        self.policy = policy or (lambda req: "answer")
        self.head_policy = head_policy
        self.keep_alive_timeout = keep_alive_timeout
        self.health_path = health_path
        self.health_status = health_status
        self.requests = []  # every complete request head+body, in arrival order
        self.health_checks = 0
        self.conns = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stopped = False
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    # -- the test's side

    def close(self):
        with self.lock:
            self.stopped = True
            conns = list(self.conns)
        try:
            self.lsock.close()
        except OSError:
            pass
        self._accepter.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def app_requests(self):
        """Requests other than health checks."""
        with self.lock:
            return [r for r in self.requests if r["target"] != self.health_path]

    def with_target(self, target):
        return [r for r in self.app_requests() if r["target"] == target]

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate() (called under the lock) is true."""
        deadline = time.monotonic() + timeout * SLOW
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: timed out waiting for %s; connections: %s" % (
                        self.name, what, [(c.id, c.nrequests, c.close_kind) for c in self.conns]))
                self.cond.wait(min(left, 0.1))

    def conn(self, cid):
        with self.lock:
            return self.conns[cid - 1]

    def reset_conn(self, cid, timeout=2):
        """Closes connection cid with RST from the server side (done by its
        thread, which is waiting for the next request); returns once done."""
        c = self.conn(cid)
        c.reset_asked = True
        self.wait_for(lambda: c.closed_at is not None, timeout, "connection %d reset" % cid)
        return c.close_kind

    # -- the server's side

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                if self.stopped:
                    return
                continue
            except OSError:
                return
            with self.lock:
                if self.stopped:
                    sock.close()
                    return
                c = _Conn(len(self.conns) + 1, sock)
                self.conns.append(c)
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _ended(self, c, kind):
        with self.lock:
            if c.closed_at is None:
                c.closed_at = time.monotonic()
                c.close_kind = c.close_kind or kind
            self.cond.notify_all()

    def _serve(self, c):
        sock = c.sock
        sock.settimeout(None)
        buf = b""

        def fill():
            nonlocal buf
            # Poll, so that a reset asked for by the test (reset_conn) or a
            # stop is done by this thread: closing a socket another thread
            # is blocked reading does not close it until that read returns.
            while True:
                if c.reset_asked:
                    with self.lock:
                        c.close_kind = "server-reset"
                        c.closed_at = time.monotonic()
                        self.cond.notify_all()
                    _rst_close(sock)
                    return False
                if self.stopped:
                    sock.close()
                    return False
                try:
                    r, _, _ = select.select([sock], [], [], 0.02)
                except (OSError, ValueError):
                    self._ended(c, "server-close")
                    return False
                if r:
                    break
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                self._ended(c, "reset")
                return False
            except OSError:
                self._ended(c, "server-close")
                return False
            if not chunk:
                self._ended(c, "eof")
                return False
            buf += chunk
            return True

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                if not fill():
                    return None
            ln, _, buf = buf.partition(b"\r\n")
            return ln

        def take(n):
            nonlocal buf
            while len(buf) < n:
                if not fill():
                    return None
            data, buf = buf[:n], buf[n:]
            return data

        while True:
            while b"\r\n\r\n" not in buf:
                if not fill():
                    return
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers.append((k.strip().lower(), v.strip()))
            hd = dict(headers)
            if self.head_policy is not None and self.head_policy(method, target) == "reset":
                c.nrequests += 1
                with self.lock:
                    self.requests.append({"conn": c.id, "index": c.nrequests, "method": method,
                                          "target": target, "headers": headers,
                                          "body_length": None, "body_sha256": None,
                                          "chunked": None, "at": time.monotonic()})
                    c.close_kind = "server-reset"
                    c.closed_at = time.monotonic()
                    self.cond.notify_all()
                _rst_close(sock)
                return
            h = hashlib.sha256()
            length = 0
            is_chunked = "chunked" in hd.get("transfer-encoding", "").lower()
            if is_chunked:
                while True:
                    size_line = line()
                    if size_line is None:
                        return
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        while True:  # trailers up to the empty line
                            t = line()
                            if t is None:
                                return
                            if t == b"":
                                break
                        break
                    data = take(size)
                    if data is None or take(2) is None:
                        return
                    h.update(data)
                    length += size
            elif "content-length" in hd:
                n = int(hd["content-length"])
                data = take(n)
                if data is None:
                    return
                h.update(data)
                length = n
            c.nrequests += 1
            req = {"conn": c.id, "index": c.nrequests, "method": method, "target": target,
                   "headers": headers, "body_length": length, "body_sha256": h.hexdigest(),
                   "chunked": is_chunked, "at": time.monotonic()}
            is_health = self.health_path is not None and target == self.health_path
            with self.lock:
                self.requests.append(req)
                if is_health:
                    self.health_checks += 1
                self.cond.notify_all()
            if is_health:
                status = self.health_status
                body = b"health %d\n" % status
                ctype = "text/plain"
                action = "answer"
            else:
                action = self.policy(req)
                status = 200
                body = (json.dumps({"server": self.name, "method": method, "target": target,
                                    "body_length": length, "body_sha256": h.hexdigest(),
                                    "conn": c.id, "index": c.nrequests}) + "\n").encode()
                ctype = "application/json"
            if action == "reset":
                with self.lock:
                    c.close_kind = "server-reset"
                    c.closed_at = time.monotonic()
                    self.cond.notify_all()
                _rst_close(sock)
                return
            close = hd.get("connection", "").lower() == "close"
            resp = ["HTTP/1.1 %d X" % status, "Content-Type: %s" % ctype,
                    "Content-Length: %d" % len(body)]
            if close:
                resp.append("Connection: close")
            elif self.keep_alive_timeout is not None:
                resp.append("Connection: keep-alive")
                resp.append("Keep-Alive: timeout=%d" % self.keep_alive_timeout)
            data = ("\r\n".join(resp) + "\r\n\r\n").encode() + (b"" if method == "HEAD" else body)
            try:
                sock.sendall(data)
            except OSError:
                self._ended(c, "reset")
                return
            with self.lock:
                c.last_response_at = time.monotonic()
                self.cond.notify_all()
            if close:
                with self.lock:
                    c.close_kind = "server-close"
                self._ended(c, "server-close")
                sock.close()
                return


# --------------------------------------------------------------------------
# A connect that never completes


class BlackHole:
    """A port that accepts no connection and refuses none: the socket listens
    with a backlog of 0 and never accepts, and a few connections fill its
    accept queue, so further SYNs are dropped and a connect to it times out."""

    def __init__(self, fill=3):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.fillers = []
        for _ in range(fill):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(s)
            time.sleep(0.02)
        # The queue is full when one more connect does not complete.
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", self.port))
            is_full = False
        except (socket.timeout, OSError):
            is_full = True
        finally:
            probe.close()
        if not is_full:
            self.close()
            raise AssertionError("could not fill the accept queue of a listen(0) socket")

    def close(self):
        for s in self.fillers:
            s.close()
        self.fillers = []
        self.lsock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# HTTP/1.1 client side


def read_http1_response(sock, timeout):
    """Reads one response (Content-Length or chunked body) from sock:
    (status, [(lowercase name, value)], body). Raises AssertionError on EOF."""
    sock.settimeout(timeout * SLOW)
    buf = b""

    def fill():
        nonlocal buf
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("EOF before the end of the response: %r" % buf[:300])
        buf += chunk

    while b"\r\n\r\n" not in buf:
        fill()
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.append((k.strip().lower(), v.strip()))
    hd = dict(headers)
    if "chunked" in hd.get("transfer-encoding", ""):
        body = b""
        while True:
            while b"\r\n" not in buf:
                fill()
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n\r\n" not in b"\r\n" + buf:
                    fill()
                return status, headers, body
            while len(buf) < size + 2:
                fill()
            body += buf[:size]
            buf = buf[size + 2:]
    n = int(hd.get("content-length", "0"))
    while len(buf) < n:
        fill()
    return status, headers, buf[:n]


def http1(port, method, path, host, headers=(), body=None, timeout=10, sock=None):
    """One HTTP/1.1 request (keep-alive) on sock, or on a new connection that
    is closed afterwards: (status, headers, body)."""
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        lines += ["%s: %s" % kv for kv in headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        return read_http1_response(sock, timeout)
    finally:
        if own:
            sock.close()


def wait_eof(sock, timeout):
    """Seconds until the peer closes sock (EOF or reset); None if it is still
    open after `timeout` seconds. Bytes read meanwhile are returned too."""
    start = time.monotonic()
    deadline = start + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, data
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None, data
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start, data
        if not chunk:
            return time.monotonic() - start, data
        data += chunk


# --------------------------------------------------------------------------
# Slow name resolution


GAI_DELAY_SRC = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <time.h>

/* getaddrinfo() that first sleeps H2GW_TEST_GAI_DELAY_MS milliseconds: a
 * slow resolver, for a process started with LD_PRELOAD of this library. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
            dlsym(RTLD_NEXT, "getaddrinfo");
    const char *d = getenv("H2GW_TEST_GAI_DELAY_MS");
    if (d != NULL) {
        long ms = atol(d);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return real(node, service, hints, res);
}
"""


def build_gai_delay_shim(directory):
    """Compiles GAI_DELAY_SRC into directory/gai_delay.so; returns its path,
    or None when there is no C compiler."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src = os.path.join(str(directory), "gai_delay.c")
    out = os.path.join(str(directory), "gai_delay.so")
    with open(src, "w") as f:
        f.write(GAI_DELAY_SRC)
    p = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out, src, "-ldl"],
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("cannot build the getaddrinfo shim: %s" % p.stderr.decode())
    return out
