"""
Helpers for test_websocket.py.

- WsEchoServer: a threaded WebSocket server on 127.0.0.1 (RFC 6455): it
  answers the opening handshake with 101 (computing Sec-WebSocket-Accept
  from the key it received, choosing the first offered subprotocol), then
  echoes every data frame back unmasked and answers a close frame with a
  close frame and the end of the connection. The path /status/NNN answers
  NNN with a short body instead. Every request head and every connection's
  end is recorded.
- frame(), FrameReader: RFC 6455 framing for the clients.
- H2Ws: an RFC 8441 client on python-h2 (extended CONNECT).

Every wait is bounded; threads are daemons.
"""

import base64
import hashlib
import os
import select
import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

from conftest import SLOW, H2Client

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(payload, opcode=0x2, mask=True, fin=True):
    """One RFC 6455 frame; clients mask, servers do not."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class FrameReader:
    """Splits a byte stream into (opcode, payload) frames."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            f = self._one()
            if f is None:
                return out
            out.append(f)

    def _one(self):
        b = self.buf
        if len(b) < 2:
            return None
        opcode = b[0] & 0x0F
        masked = b[1] & 0x80
        n = b[1] & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", b[2:4])[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", b[2:10])[0]
            pos = 10
        key = None
        if masked:
            if len(b) < pos + 4:
                return None
            key = b[pos:pos + 4]
            pos += 4
        if len(b) < pos + n:
            return None
        payload = b[pos:pos + n]
        if key is not None:
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        self.buf = b[pos + n:]
        return opcode, payload


def read_head(sock, timeout):
    """Reads up to the end of an HTTP/1.1 head; returns (head, rest)."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete head: %r" % data)
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head ended: %r" % data)
        data += chunk
    i = data.index(b"\r\n\r\n") + 4
    return data[:i], data[i:]


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    fields = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return first, fields


class WsEchoServer:
    def __init__(self, ssl_context=None):
        self.ssl_context = ssl_context  # serve over TLS with it
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []  # (request line, fields)
        self.opened = 0
        self.ended = 0  # connections whose peer closed (EOF or reset)
        self.closing = False
        self.after_halfclose = None
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closing = True
        self.sock.close()

    def wait_ended(self, n, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            with self.lock:
                if self.ended >= n:
                    return True
            time.sleep(0.02)
        return False

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.opened += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.ssl_context is not None:
                c.settimeout(10)
                c = self.ssl_context.wrap_socket(c, server_side=True)
            self._handshake_and_echo(c)
        except (OSError, ConnectionError, TimeoutError, ValueError):
            pass
        finally:
            with self.lock:
                self.ended += 1
            c.close()

    def _handshake_and_echo(self, c):
        head, rest = read_head(c, 30)
        first, fields = parse_head(head)
        with self.lock:
            self.requests.append((first, fields))
        path = first.split(" ")[1]
        if path.startswith("/status/"):
            status = int(path[len("/status/"):])
            body = b"status %d from the backend\n" % status
            c.sendall(b"HTTP/1.1 %d Nope\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                      b"x-backend: ws\r\n\r\n%s" % (status, len(body), body))
            # Wait for the gateway to close (never reused).
            c.settimeout(30)
            while c.recv(65536):
                pass
            return
        key = fields["sec-websocket-key"][0].encode()
        extra = b""
        if "sec-websocket-protocol" in fields:
            first_proto = fields["sec-websocket-protocol"][0].split(",")[0].strip()
            extra = b"Sec-WebSocket-Protocol: %s\r\n" % first_proto.encode()
        accept = accept_for(b"not the key") if path == "/badaccept" else accept_for(key)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n"
                  % (accept, extra))
        reader = FrameReader()
        frames = reader.feed(rest)
        c.settimeout(60)
        if path == "/halfclose":
            # Says goodbye and ends its sending side first, then records
            # what still comes until the gateway's EOF.
            c.sendall(frame(b"bye", mask=False))
            c.shutdown(socket.SHUT_WR)
            while True:
                data = c.recv(65536)
                if not data:
                    break
                frames += reader.feed(data)
            with self.lock:
                self.after_halfclose = [p for _, p in frames]
            return
        while True:
            for opcode, payload in frames:
                if opcode == 0x8:
                    c.sendall(frame(payload, 0x8, mask=False))
                    c.shutdown(socket.SHUT_WR)
                    # Drain until the gateway closes its side too.
                    while c.recv(65536):
                        pass
                    return
                if opcode == 0x9:
                    c.sendall(frame(payload, 0xA, mask=False))
                else:
                    c.sendall(frame(payload, opcode, mask=False))
            data = c.recv(65536)
            if not data:
                return
            frames = reader.feed(data)


class H2Ws:
    """An RFC 8441 client: one HTTP/2 connection, extended CONNECT streams."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.flush()
        self.timeout = timeout * SLOW
        self.headers = {}  # stream id -> response headers
        self.data = {}  # stream id -> bytes
        self.ended = set()
        self.reset = {}  # stream id -> error code
        self.settings_seen = False
        # Closed with the conftest clients, before the gateway's teardown
        # (which waits for open streams).
        H2Client._open.append(self)
        self.read_until(lambda: self.settings_seen)

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def remote_setting(self, code):
        return self.conn.remote_settings.get(code)

    def read_once(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("gateway closed the connection")
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                self.settings_seen = True
            elif isinstance(ev, h2.events.ResponseReceived):
                self.headers[ev.stream_id] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.reset[ev.stream_id] = ev.error_code
        self.flush()
        return True

    def read_until(self, cond, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met in time")
            self.read_once(left)

    def connect(self, path="/ws", extra=(), authority="127.0.0.1"):
        sid = self.conn.get_next_available_stream_id()
        headers = [(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                   (b":scheme", b"http"), (b":path", path.encode()),
                   (b":authority", authority.encode()), (b"sec-websocket-version", b"13")]
        headers += [(k.encode(), v.encode()) for k, v in extra]
        self.conn.send_headers(sid, headers)
        self.flush()
        return sid

    def wait_response(self, sid):
        self.read_until(lambda: sid in self.headers or sid in self.reset)
        return self.headers.get(sid)

    def send(self, sid, data, end=False):
        while data:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                self.read_once(self.timeout)
                continue
            chunk, data = data[:window], data[window:]
            self.conn.send_data(sid, chunk, end_stream=end and not data)
            self.flush()
        if end and not data:
            pass

    def end(self, sid):
        self.conn.end_stream(sid)
        self.flush()

    def close(self):
        if self in H2Client._open:
            H2Client._open.remove(self)
        try:
            self.sock.close()
        except OSError:
            pass
