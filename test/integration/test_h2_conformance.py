"""HTTP/2 conformance that h2spec checks (make h2spec runs the whole suite),
repeated here with raw frames so that CI without h2spec still covers it:
an invalid preface on the cleartext port is closed unanswered, and frames on
streams nghttp2 has forgotten get the answers RFC 9113 5.1 requires."""

import socket
import time

import hpack
from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame,
                              SettingsFrame)

from conftest import SLOW

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STREAM_CLOSED = 0x5
PROTOCOL_ERROR = 0x1


def read_all(sock, timeout=5):
    """Everything the gateway sends until it closes (or timeout)."""
    sock.settimeout(timeout * SLOW)
    data = b""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk
    return data, "open"


class RawH2:
    """Frames written by hand (h2 refuses to send what these tests need)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.port = port
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def close(self):
        self.sock.close()

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def headers(self, sid, end_stream=True, path="/echo"):
        f = HeadersFrame(sid)
        f.data = self.enc.encode([(":method", "GET"), (":scheme", "http"),
                                  (":authority", "127.0.0.1:%d" % self.port), (":path", path)])
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    @staticmethod
    def data(sid, payload=b"test", end_stream=True):
        f = DataFrame(sid, payload)
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def next_frame(self, timeout=5):
        """The next frame, or None when the connection ended."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            if len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    f.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return f
            left = deadline - time.monotonic()
            assert left > 0, "no frame within %ss" % timeout
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def wait_for(self, pred, what, timeout=5):
        seen = []
        while True:
            f = self.next_frame(timeout)
            if f is None:
                raise AssertionError("connection ended before %s; frames: %r" % (what, seen))
            if pred(f):
                return f
            seen.append(f)

    def wait_stream_end(self, sid):
        self.wait_for(lambda f: f.stream_id == sid and "END_STREAM" in f.flags,
                      "the end of stream %d" % sid)


def goaway(code):
    return lambda f: isinstance(f, GoAwayFrame) and f.error_code == code


def test_invalid_preface_is_closed_unanswered(origin, gateway):
    gw = gateway(origin)
    for junk in (b"INVALID CONNECTION PREFACE\r\n\r\n",    # h2spec 3.5 #2
                 b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",        # an HTTP/2 client, broken
                 b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"):  # TLS on the cleartext port
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(junk)
        data, how = read_all(s)
        s.close()
        assert data == b"" and how in ("eof", "reset"), (junk, data, how)
    # HTTP/1.1 is unharmed, malformed HTTP/1.x still gets its 400.
    for req, want in ((b"GET /echo HTTP/1.1\r\nHost: gw\r\n\r\n", b"HTTP/1.1 200 "),
                      (b"GET /echo HTTP/2.0\r\nHost: gw\r\n\r\n", b"HTTP/1.1 400 ")):
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(req)
        s.settimeout(5 * SLOW)
        assert s.recv(65536).startswith(want), req
        s.close()
    gw.assert_alive()


def test_data_after_end_stream_is_connection_error(origin, gateway):
    gw = gateway(origin)
    c = RawH2(gw.port)
    try:
        c.send(c.headers(1))
        c.wait_stream_end(1)
        c.send(c.data(1))
        c.wait_for(goaway(STREAM_CLOSED), "GOAWAY(STREAM_CLOSED)")
    finally:
        c.close()


def test_headers_after_end_stream_is_connection_error(origin, gateway):
    gw = gateway(origin)
    c = RawH2(gw.port)
    try:
        c.send(c.headers(1))
        c.wait_stream_end(1)
        c.send(c.headers(1))
        c.wait_for(goaway(STREAM_CLOSED), "GOAWAY(STREAM_CLOSED)")
    finally:
        c.close()


def test_frames_after_client_reset_are_stream_errors(origin, gateway):
    gw = gateway(origin)
    c = RawH2(gw.port)
    try:
        c.send(c.headers(1, end_stream=False), RstStreamFrame(1, 0x8), c.data(1))
        c.wait_for(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == 1
                   and f.error_code == STREAM_CLOSED, "RST_STREAM(STREAM_CLOSED) on 1")
        c.send(c.headers(3, end_stream=False), RstStreamFrame(3, 0x8), c.headers(3))
        c.wait_for(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == 3
                   and f.error_code == STREAM_CLOSED, "RST_STREAM(STREAM_CLOSED) on 3")
        # A stream error only: the connection serves the next request.
        c.send(c.headers(5))
        c.wait_stream_end(5)
    finally:
        c.close()


def test_lower_stream_id_is_protocol_error(origin, gateway):
    gw = gateway(origin)
    c = RawH2(gw.port)
    try:
        c.send(c.headers(5), c.headers(3))
        c.wait_for(goaway(PROTOCOL_ERROR), "GOAWAY(PROTOCOL_ERROR)")
    finally:
        c.close()
