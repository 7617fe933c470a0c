"""A million pages: the cluster starts, serves, fails over and serves again, and its daemons
hold memory for what was used, not for every page (docs/PROTOCOL.md sections 5 and 9.1).
Real daemons on loopback, 10 nodes, a primary and a backup, replicas 1, CURVE on."""
from __future__ import annotations

from ivyzmq.client import connect
from ivyzmq.supervisor import resident_bytes

PAGES = 1_000_000
RSS_BOUND_MIB = 120      # a daemon's resident memory with a million pages, few touched


def test_a_million_pages_start_serve_and_fail_over(clusters):
    run = clusters.make("million", nodes=10, pages=PAGES, replicas=1)
    c = run.cluster
    last, middle = PAGES - 1, PAGES // 2 + 3
    with connect(c, 3) as m3, connect(c, 8) as m8:
        m3.write(last, b"the last page")
        assert m8.read(last).rstrip(b"\0") == b"the last page"
        assert m8.read(middle) == bytes(c.page_size)      # never written: zeros
        m8.write(middle, b"middle")
    rss = {name: resident_bytes(rec["os_pid"]) / 2 ** 20
           for name, rec in run.procs.running().items()}
    assert max(rss.values()) < RSS_BOUND_MIB, rss

    assert run.procs.kill("primary")
    with connect(c, 5, timeout=30) as m5:      # its fault is the backup's vote (4.4)
        assert m5.read(last).rstrip(b"\0") == b"the last page"
        assert run.admin.serving() == "backup"
        assert m5.read(middle).rstrip(b"\0") == b"middle"
        m5.write(0, b"after the failover")
