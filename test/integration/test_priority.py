"""Priority-aware upstream scheduling (RFC 9218 urgency, RFC 7540 weights and
dependencies): with one backend connection, which waiting request goes first.

Every test here runs with --backend-max-connections 1, so the backend serves
one request at a time and the order in which responses complete is the order
in which the gateway dispatched the waiting requests."""

import socket
import struct
import time

import h2.events
import h2.settings

from conftest import SLOW, H2Client

NO_RFC7540_PRIORITIES = 0x9
PRIORITY_UPDATE = 0x10


class OrderClient(H2Client):
    """H2Client that records the order in which streams end, can send
    RFC 7540 priority information with HEADERS, and can announce RFC 9218
    (SETTINGS_NO_RFC7540_PRIORITIES = 1) in its first SETTINGS frame."""

    def __init__(self, port, rfc9218=False, **kw):
        self.finished = []
        self.ping_acks = 0
        self.headed = []  # response heads, in arrival order: the dispatch order
        super().__init__(port, **kw)
        if rfc9218:
            self._reconnect_announcing_rfc9218()

    def _reconnect_announcing_rfc9218(self):
        """The first SETTINGS frame must already carry the setting (RFC 9218
        §2.1 forbids changing it later), so start over on a new socket."""
        self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.conn = type(self.conn)(config=self.conn.config)
        window = 1 << 24
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            NO_RFC7540_PRIORITIES: 1,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
        })
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(window - 65535)
        self.flush()

    def _handle(self, ev):
        super()._handle(ev)
        if isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
            self.finished.append(ev.stream_id)
        if isinstance(ev, h2.events.ResponseReceived):
            self.headed.append(ev.stream_id)
        if isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks += 1

    def round_trip(self):
        """A PING and its ACK: the gateway has read (and queued) everything
        this client sent before it."""
        acks = self.ping_acks
        self.conn.ping(b"12345678")
        self.flush()
        self.run_until(lambda: self.ping_acks > acks, timeout=5, what="the PING ACK")

    def request_with_priority(self, path, weight=None, depends_on=None, exclusive=False,
                              headers=()):
        sid = self.conn.get_next_available_stream_id()
        return self.request_on(sid, path, weight, depends_on, exclusive, headers)

    def request_on(self, sid, path, weight=None, depends_on=None, exclusive=False, headers=()):
        from conftest import Response
        hdrs = [(b":method", b"GET"), (b":scheme", b"http"),
                (b":authority", self.authority.encode()), (b":path", path.encode())]
        hdrs += [(k.encode(), v.encode()) for k, v in headers]
        kw = {}
        if weight is not None or depends_on is not None:
            kw = dict(priority_weight=weight or 16, priority_depends_on=depends_on or 0,
                      priority_exclusive=exclusive)
        self.conn.send_headers(sid, hdrs, end_stream=True, **kw)
        self.responses[sid] = Response(sid, "GET", path)
        self.flush()
        return sid

    def send_priority_update(self, sid, value):
        """A raw PRIORITY_UPDATE frame (the h2 library has no API for it)."""
        payload = struct.pack(">I", sid) + value.encode()
        frame = struct.pack(">I", len(payload))[1:] + bytes([PRIORITY_UPDATE, 0]) + \
            struct.pack(">I", 0) + payload
        self.flush()
        self.sock.sendall(frame)


def occupy_backend(c, ms=300):
    """One slow request takes the only backend connection, so that every
    request sent after it waits in the gateway's queue."""
    return c.request("GET", "/delay/%d" % ms)


def wait_queued(c, blocker):
    """Waits until the gateway has queued what was sent, by a round trip on
    the same connection: a PING."""
    c.round_trip()


def run_all(c, sids):
    for r in c.run(sids, timeout=60):
        r.assert_ok()


def test_urgent_request_overtakes_waiting_background(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1")
    c = OrderClient(gw.port, rfc9218=True)
    blocker = occupy_backend(c)
    low = [c.request("GET", "/delay/50", headers=[("priority", "u=7")]) for _ in range(10)]
    urgent = c.request("GET", "/delay/50", headers=[("priority", "u=0")])
    run_all(c, [blocker] + low + [urgent])
    after = c.finished.index(urgent)
    overtaken = [s for s in low if c.finished.index(s) > after]
    assert len(overtaken) >= 8, c.finished


def test_rfc9218_header_also_works_for_rfc7540_clients(origin, gateway):
    """A client that did not announce RFC 9218 but sends the priority field:
    the field still decides the urgency (RFC 9218 wins over the tree)."""
    gw = gateway(origin, "--backend-max-connections", "1")
    c = OrderClient(gw.port)
    blocker = occupy_backend(c)
    low = [c.request("GET", "/delay/50", headers=[("priority", "u=6")]) for _ in range(10)]
    urgent = c.request("GET", "/delay/50", headers=[("priority", "u=1, i")])
    run_all(c, [blocker] + low + [urgent])
    assert sum(c.finished.index(s) > c.finished.index(urgent) for s in low) >= 8, c.finished


def test_fairness_across_client_connections(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1")
    a = OrderClient(gw.port)
    b = OrderClient(gw.port)
    blocker = occupy_backend(a, 400)
    many = [a.request("GET", "/delay/50") for _ in range(10)]
    a.round_trip()
    one = b.request("GET", "/delay/50")
    b_done = b.run([one], timeout=60)[0]
    b_done.assert_ok()
    # When b's single request completed, most of a's were still waiting.
    a_done_before = [s for s in many if a.responses[s].done]
    assert len(a_done_before) <= 2, a.finished
    run_all(a, [blocker] + many)


def test_rfc7540_weight_256_overtakes_weight_1(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1")
    c = OrderClient(gw.port)
    blocker = occupy_backend(c)
    light = [c.request_with_priority("/delay/50", weight=1) for _ in range(10)]
    heavy = c.request_with_priority("/delay/50", weight=256)
    run_all(c, [blocker] + light + [heavy])
    assert sum(c.finished.index(s) > c.finished.index(heavy) for s in light) >= 8, c.finished


def test_child_sent_before_its_parent_is_dispatched_after_it(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1")
    c = OrderClient(gw.port)
    blocker = occupy_backend(c)
    # Stream 5 depends on stream 7, which the client has not opened yet
    # (RFC 7540 §5.3.1 allows it: 7 is an idle stream in the tree).
    child = c.request_on(5, "/delay/50", weight=16, depends_on=7)
    parent = c.request_on(7, "/delay/50", weight=16)
    run_all(c, [blocker, child, parent])
    assert c.finished.index(parent) < c.finished.index(child), c.finished


def test_siblings_share_by_weight(origin, gateway):
    """Streams under one parent with weights 2 and 4, all waiting: dispatched
    about 1:2 (RFC 7540 §5.3.2's example)."""
    gw = gateway(origin, "--backend-max-connections", "1")
    c = OrderClient(gw.port)
    parent = occupy_backend(c, 400)  # stream 1, has its connection already
    light, heavy = [], []
    for _ in range(12):
        light.append(c.request_with_priority("/delay/10", weight=2, depends_on=parent))
        heavy.append(c.request_with_priority("/delay/10", weight=4, depends_on=parent))
    run_all(c, [parent] + light + heavy)
    children = [s for s in c.finished if s != parent]
    first = children[:12]
    n_heavy = sum(s in heavy for s in first)
    # Expected 8 heavy and 4 light among the first 12 dispatched.
    assert 7 <= n_heavy <= 9, (n_heavy, c.finished)


def test_priority_update_raises_a_waiting_stream(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1")
    c = OrderClient(gw.port, rfc9218=True)
    blocker = occupy_backend(c)
    low = [c.request("GET", "/delay/50", headers=[("priority", "u=5")]) for _ in range(10)]
    raised = low[-1]
    c.send_priority_update(raised, "u=0")
    run_all(c, [blocker] + low)
    others = low[:-1]
    assert sum(c.finished.index(s) > c.finished.index(raised) for s in others) >= 8, c.finished


def test_fifo_scheduling_keeps_arrival_order(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1", "--backend-scheduling", "fifo")
    c = OrderClient(gw.port, rfc9218=True)
    blocker = occupy_backend(c)
    low = [c.request("GET", "/delay/20", headers=[("priority", "u=7")]) for _ in range(5)]
    urgent = c.request("GET", "/delay/20", headers=[("priority", "u=0")])
    run_all(c, [blocker] + low + [urgent])
    assert c.finished == [blocker] + low + [urgent], c.finished


def test_priority_field_reaches_the_backend_unchanged(origin, gateway):
    gw = gateway(origin)
    c = OrderClient(gw.port)
    r = c.get("/echo", headers=[("priority", "u=2, i")])
    r.assert_ok()
    assert ["priority", "u=2, i"] in r.json()["headers"], r.json()


def test_invalid_priority_is_not_an_error(origin, gateway):
    gw = gateway(origin)
    c = OrderClient(gw.port)
    for value in ("u=9", "u=-1", "u=x", "i=5", "@@@", "u=1.5"):
        r = c.get("/echo", headers=[("priority", value)])
        r.assert_ok()


def test_reserved_connection_serves_urgent_requests_only(origin, gateway):
    """Two connections, one reserved for urgency 0..2: background requests
    queue behind one connection while an urgent request goes at once."""
    gw = gateway(origin, "--backend-max-connections", "2", "--priority-reserved-connections", "1")
    c = OrderClient(gw.port, rfc9218=True)
    low = [c.request("GET", "/delay/200", headers=[("priority", "u=7")]) for _ in range(4)]
    c.round_trip()
    urgent = c.request("GET", "/delay/200", headers=[("priority", "u=0")])
    r = c.run([urgent], timeout=30)[0]
    r.assert_ok()
    # Background requests share one connection, so at most one finished
    # before the urgent one, which did not wait for them.
    assert sum(c.responses[s].done for s in low) <= 1, c.finished
    run_all(c, low)
    # The background requests were served one after another.
    assert c.finished.index(low[-1]) == len(c.finished) - 1, c.finished


def test_chromium_pattern_urgent_fetch_is_not_held_by_an_image_chain(origin, gateway):
    """Chromium sends both signals: images `priority: u=3, i` with weight 147,
    each exclusive on the previous one, re-chained later by PRIORITY frames;
    then `fetch(url, {priority: 'high'})` as `u=1, i` with weight 220 whose
    RFC 7540 parent is an image still waiting. The fetch goes next."""
    gw = gateway(origin, "--backend-max-connections", "1")
    c = OrderClient(gw.port)
    blocker = occupy_backend(c, 400)
    # The blocker has the connection before the rest arrive (dispatch runs
    # once per loop turn over everything read in it).
    deadline = time.monotonic() + 3 * SLOW
    while origin.stats()["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    images, prev = [], None
    for i in range(12):
        sid = c.request_with_priority("/delay/20?img=%d" % i, weight=147, depends_on=prev,
                                      exclusive=prev is not None,
                                      headers=[("priority", "u=3, i")])
        images.append(sid)
        prev = sid
    # After layout: PRIORITY frames re-chain some images (raised weight).
    for sid in images[6:9]:
        c.conn.prioritize(sid, weight=220, depends_on=images[2], exclusive=True)
    c.flush()
    urgent = c.request_with_priority("/delay/20?fetch", weight=220, depends_on=images[5],
                                     headers=[("priority", "u=1, i")])
    run_all(c, [blocker] + images + [urgent])
    # Heads go out as the backend answers, whatever DATA's send order: the
    # order of the heads is the order of dispatch.
    assert c.headed.index(urgent) == 1, c.headed
