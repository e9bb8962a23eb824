"""The backend connection pool: limits, reuse, idle timeout, stale connections."""

import time

from conftest import SLOW


def test_1000_requests_over_at_most_4_backend_connections(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "4")
    origin.reset_stats()
    conn_ids = set()
    clients = [gw.client() for _ in range(4)]

    def check(r, target):
        r.assert_ok()
        e = r.json()
        assert e["target"] == target, r.describe()
        conn_ids.add(e["connection_id"])

    # 200 strictly sequential requests on one client connection...
    for i in range(200):
        check(clients[0].get("/echo?seq=%d" % i), "/echo?seq=%d" % i)
    # ...then 800 more, 100 in flight at a time over 4 client connections.
    for rnd in range(8):
        batch = []
        for k, c in enumerate(clients):
            for j in range(25):
                target = "/echo?r=%d&c=%d&j=%d" % (rnd, k, j)
                batch.append((c, c.request("GET", target), target))
        for c, sid, target in batch:
            check(c.run([sid])[0], target)
    for c in clients:
        c.close()

    s = origin.stats()
    assert s["requests"] == 1000, s
    assert s["connections_accepted"] <= 4, s
    assert len(conn_ids) <= 4, conn_ids


def test_stale_keepalive_get_is_retried(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1", "--backend-idle-timeout", "60s")
    with gw.client() as c:
        warm = c.get("/echo?warm")
        warm.assert_ok()
        used = warm.json()["connection_id"]
        origin.kill_next()  # the next request on the pooled connection is dropped
        r = c.get("/echo?after-kill")
        r.assert_ok()
        assert r.json()["connection_id"] != used, "the killed connection answered?"
        assert r.json()["target"] == "/echo?after-kill"
        # and the pool keeps working
        c.get("/echo?again").assert_ok()


def test_stale_keepalive_post_is_not_retried(origin, gateway):
    gw = gateway(origin, "--backend-max-connections", "1", "--backend-idle-timeout", "60s")
    with gw.client() as c:
        c.get("/echo?warm").assert_ok()
        origin.kill_next()
        r = c.fetch("POST", "/echo?post", body=b"not idempotent")
        assert r.reset is not None or r.status == 502, (
            "a POST that met a dead keep-alive connection must fail (502 or RST_STREAM), "
            "not be retried: " + r.describe())
        c.get("/echo?after").assert_ok()
    s = origin.stats()
    # the POST never reached the origin a second time
    assert s["requests"] == 2, s  # /echo?warm and /echo?after


def test_idle_timeout_closes_pooled_connection(origin, gateway):
    gw = gateway(origin, "--backend-idle-timeout", "1s")
    with gw.client() as c:
        c.get("/echo").assert_ok()
        s = origin.wait_open_connections(1, 0.5)
        assert s["open_connections"] == 1, ("the pooled connection should stay open for "
                                            "the idle timeout", s)
        s = origin.wait_open_connections(0, 3)
        assert s["open_connections"] == 0, ("--backend-idle-timeout 1s: the idle connection "
                                            "was not closed", s)
        # a new connection is made for the next request
        c.get("/echo?after-idle").assert_ok()
        assert origin.stats()["connections_accepted"] == 2


def test_backend_closed_idle_connection_is_not_reused(origin, gateway):
    from test_admin import admin_get, admin_port
    gw = gateway(origin, "--backend-max-connections", "1", "--backend-idle-timeout", "60s",
                 "--admin", "127.0.0.1:0")
    idle = 'h2gw_upstream_connections{backend="default",state="idle"} '
    with gw.client() as c:
        for i in range(2):
            r = c.get("/drop-idle")  # answered, then the origin closes the idle connection
            r.assert_ok()
            assert bytes(r.body) == b"ok\n"
            s = origin.wait_open_connections(0, 3)
            assert s["open_connections"] == 0, s
            # The gateway has read the EOF: the connection left its pool.
            deadline = time.monotonic() + 5 * SLOW
            while idle + "0\n" not in admin_get(admin_port(gw), "/metrics")[1]:
                assert time.monotonic() < deadline, "the dropped connection stayed idle"
                time.sleep(0.01)
            # Not idempotent, so it could not be retried: the gateway must
            # have dropped the dead connection from the pool.
            r = c.fetch("POST", "/echo?i=%d" % i, body=b"after drop")
            r.assert_ok()
            assert r.json()["body_length"] == 10
            get = c.get("/echo?get=%d" % i)
            get.assert_ok()
    # /drop-idle twice: three connections in all (A dropped, B dropped, C)
    assert origin.stats()["connections_accepted"] == 3
