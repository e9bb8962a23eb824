#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz_h2_session into
test/fuzz/corpus/fuzz_h2_session/ (see the top of fuzz_h2_session.c for the
input format). Header blocks are HPACK with literal fields (never indexed,
no Huffman) and a few static-table entries, so that mutations keep them
decodable."""
import os
import struct
import sys

# Frame types and flags (RFC 9113 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION, PRIORITY_UPDATE = 8, 9, 0x10
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

# Flags byte of the input: the prefix, the fake backend's answer, EOF, pieces.
PREFACE_SETTINGS, PREFACE_ONLY, RAW = 0, 2, 3
REFUSE, SMALL, CLOSE, CHUNKED, SILENT, BIG, ERROR, MALFORMED = range(8)
EARLY_EOF, PIECES, DRAIN = 0x20, 0x40, 0x80


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_int(v, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if v < limit:
        return bytes([first | v])
    out = bytearray([first | limit])
    v -= limit
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)


def literal(name, value):
    """Literal field without indexing, new name."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def block(fields):
    return b"".join(literal(n, v) for n, v in fields)


def request(method="GET", path="/", extra=()):
    return block([(":method", method), (":scheme", "http"), (":authority", "example.com"),
                  (":path", path)] + list(extra))


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def seed(flags, body, piece=0):
    return bytes([flags, piece]) + body


def seeds():
    s = {}
    get = request()
    s["get"] = seed(SMALL << 2, frame(HEADERS, END_HEADERS | END_STREAM, 1, get))
    # Static-table entries: :method GET, :scheme http, :path /, then a literal authority.
    indexed = b"\x82\x86\x84" + b"\x41" + hpack_int(11, 7) + b"example.com"
    s["get_indexed_three_streams"] = seed(
        CHUNKED << 2, b"".join(frame(HEADERS, END_HEADERS | END_STREAM, i, indexed) for i in (1, 3, 5)))
    post = request("POST", "/upload", [("content-length", "5"), ("content-type", "text/plain")])
    s["post_data"] = seed(SMALL << 2, frame(HEADERS, END_HEADERS, 1, post) +
                          frame(DATA, 0, 1, b"hel") + frame(DATA, END_STREAM, 1, b"lo"))
    s["post_pieces"] = seed(CLOSE << 2 | PIECES, frame(HEADERS, END_HEADERS, 1, post) +
                            frame(DATA, END_STREAM, 1, b"hello"), piece=6)
    trailers = block([("x-sum", "5")])
    s["post_trailers"] = seed(
        SMALL << 2, frame(HEADERS, END_HEADERS, 1, request("POST", "/t")) +
        frame(DATA, PADDED, 1, b"\x02abc\x00\x00") + frame(HEADERS, END_HEADERS | END_STREAM, 1, trailers))
    s["rst_after_headers"] = seed(SILENT << 2, frame(HEADERS, END_HEADERS | END_STREAM, 1, get) +
                                  frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
    # RFC 7540 priorities: PRIORITY frames build a tree, HEADERS with the PRIORITY flag.
    dep = lambda parent, weight, excl=False: struct.pack(">I", parent | (excl << 31)) + bytes([weight])
    s["priority_tree"] = seed(
        CHUNKED << 2,
        frame(PRIORITY, 0, 3, dep(0, 200)) + frame(PRIORITY, 0, 5, dep(3, 10)) +
        frame(HEADERS, END_HEADERS | END_STREAM | PRIO, 7, dep(5, 30, True) + get) +
        frame(HEADERS, END_HEADERS | END_STREAM, 3, get) + frame(PRIORITY, 0, 7, dep(0, 255)))
    # RFC 9218: the client opts out of the tree; a priority field, then PRIORITY_UPDATE.
    s["priority_update"] = seed(
        BIG << 2 | PREFACE_ONLY,
        settings((9, 1)) +
        frame(HEADERS, END_HEADERS | END_STREAM, 1, request(extra=[("priority", "u=5, i")])) +
        frame(PRIORITY_UPDATE, 0, 0, struct.pack(">I", 1) + b"u=0"))
    # A small stream window: the big response waits for WINDOW_UPDATEs.
    s["window_update"] = seed(
        BIG << 2,
        settings((4, 16)) + frame(HEADERS, END_HEADERS | END_STREAM, 1, get) +
        frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1000)) +
        frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 100000)) +
        frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 70000)))
    s["settings_ping"] = seed(
        SMALL << 2 | PREFACE_ONLY,
        settings((1, 4096), (2, 0), (3, 10), (4, 65535), (5, 16384), (6, 8192)) +
        frame(SETTINGS, ACK, 0) + frame(PING, 0, 0, b"12345678") +
        frame(HEADERS, END_HEADERS | END_STREAM, 1, get))
    s["goaway"] = seed(ERROR << 2, frame(HEADERS, END_HEADERS | END_STREAM, 1, get) +
                       frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0) + b"bye"))
    cont = request(extra=[("x-long", "a" * 40), ("x-more", "b" * 40)])
    s["continuation"] = seed(
        SMALL << 2,
        frame(HEADERS, END_STREAM, 1, cont[:20]) + frame(CONTINUATION, 0, 1, cont[20:60]) +
        frame(CONTINUATION, END_HEADERS, 1, cont[60:]))
    s["dead_backend"] = seed(SMALL << 2, frame(HEADERS, END_HEADERS | END_STREAM, 1, request(path="/dead/x")) +
                             frame(HEADERS, END_HEADERS | END_STREAM, 3, request("POST", "/dead/y")))
    s["malformed_backend"] = seed(MALFORMED << 2, frame(HEADERS, END_HEADERS | END_STREAM, 1, get))
    s["refused_backend_early_eof"] = seed(REFUSE << 2 | EARLY_EOF,
                                          frame(HEADERS, END_HEADERS | END_STREAM, 1, get))
    s["header_list_too_large"] = seed(SMALL << 2, frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                                        request(extra=[("x-big", "z" * 5000)])))
    s["http1"] = seed(SMALL << 2 | RAW, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    s["h2c_upgrade"] = seed(
        SMALL << 2 | RAW,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings())
    # Pieces are served one by one: the body, the window, the PING ACK come
    # after the gateway has acted on what went before.
    first = frame(HEADERS, END_HEADERS, 1, post)
    s["post_body_later"] = seed(SMALL << 2 | PIECES, first + frame(DATA, 0, 1, b"hel") +
                                frame(DATA, END_STREAM, 1, b"lo"), piece=len(first) - 1)
    first = settings((4, 100)) + frame(HEADERS, END_HEADERS | END_STREAM, 1, get)
    s["window_update_later"] = seed(
        BIG << 2 | PIECES | PREFACE_ONLY,
        first + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 30000)) +
        frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 30000)), piece=len(first) - 1)
    first = frame(HEADERS, END_HEADERS | END_STREAM, 1, get)
    s["drain_ping_ack"] = seed(SILENT << 2 | PIECES | DRAIN,
                               first + frame(PING, ACK, 0, bytes(8)) +
                               frame(HEADERS, END_HEADERS | END_STREAM, 3, get), piece=len(first) - 1)
    s["drain_http1"] = seed(SMALL << 2 | RAW | DRAIN, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    # Every window open: the 100 kB answer fills the slow client's socket.
    s["big_open_window"] = seed(
        BIG << 2 | PREFACE_ONLY,
        settings((4, 0x7fffffff)) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fff0000)) +
        frame(HEADERS, END_HEADERS | END_STREAM, 1, get))
    # Past the glitch budget: GOAWAY(ENHANCE_YOUR_CALM).
    s["ping_flood"] = seed(SILENT << 2, frame(HEADERS, END_HEADERS | END_STREAM, 1, get) +
                           frame(PING, 0, 0, b"flooding") * 120)
    s["garbage"] = seed(SMALL << 2, bytes(range(256))[::7] * 3)
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus",
                                                            "fuzz_h2_session")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
