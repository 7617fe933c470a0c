"""Node failures on real processes (replicas: 0): a dead node is declared dead within the
node liveness time and shown so; pages it owned are lost - an operation on them fails at
once, naming the page and the dead node - while every other page keeps working, writes
whose copy holder died go on without it, a manager failover does not wait for the dead
node, and a restarted node rejoins empty and serves again. Daemons are started through the
entry points (the `clusters` fixture) and killed by their recorded os_pids."""
from __future__ import annotations

import time

import pytest

from conftest import ivy, wait_until
from ivyzmq import protocol as P
from ivyzmq.client import PageLostError, connect
from ivyzmq.harness import agreement

NODES, PAGES = 5, 10
WIDTH = 64          # every value is written zero-padded to this width, over the last one
FAST = dict(heartbeat_interval=0.2, retry_timeout=0.2)    # node liveness 0.6 s


def pad(value: bytes) -> bytes:
    return value.ljust(WIDTH, b"\0")


def fill(run) -> dict[int, bytes]:
    """A unique value on every page, each written by its initial owner (a hit)."""
    values = {}
    for page in range(PAGES):
        with connect(run.cluster, page % NODES) as mem:
            values[page] = f"v{page}-{time.monotonic_ns()}".encode()
            mem.write(page, pad(values[page]))
    return values


def dead_at(run, node: int) -> bool:
    name = run.admin.serving()
    reply = name and run.admin.query(name, P.StatusQuery())
    return bool(reply) and node in reply.dead


def backup_knows_dead(run, node: int) -> bool:
    """The backup holds `node` dead at the serving manager's epoch. Until then a kill of
    the primary leaves a backup that may not declare the node dead alone (it hears no
    peer) and whose records may be older than the term the nodes follow: it would wait
    for the dead node (docs/PROTOCOL.md 6.1)."""
    serving = run.admin.query("primary", P.StatusQuery(rows=False))
    backup = run.admin.query("backup", P.StatusQuery(rows=False))
    return bool(serving and backup) and node in backup.dead and backup.epoch == serving.epoch


def agreed(run) -> str | list[str]:
    replies = dict(run.status())
    return agreement.from_replies(replies, [m.name for m in run.cluster.managers],
                                  [n.name for n in run.cluster.nodes], others=True)


@pytest.fixture
def cluster(clusters):
    run = clusters.make("nodes", nodes=NODES, pages=PAGES, **FAST)
    return run, fill(run)


def test_pages_of_a_dead_node_are_lost_by_name_and_the_rest_serve(cluster):
    run, values = cluster
    assert run.procs.kill("node3")
    wait_until(lambda: dead_at(run, 3), 10, "the serving manager to declare node 3 dead")
    status = ivy(run, "status")
    assert "dead: node3" in status.stdout and "lost(3)" in status.stdout
    with connect(run.cluster, 1) as mem:
        for page in (3, 8):                    # node 3's pages
            t0 = time.monotonic()
            with pytest.raises(PageLostError) as err:
                mem.read(page)
            assert time.monotonic() - t0 < 1.0
            assert (err.value.page, err.value.node) == (page, 3)
            assert f"page {page}" in str(err.value) and "node 3" in str(err.value)
        for page in set(range(PAGES)) - {3, 8}:
            assert mem.read(page).rstrip(b"\0") == values[page]
            mem.write(page, pad(b"after " + values[page]))
    proc = ivy(run, "read", 0, 3)
    assert proc.returncode == 1 and "page 3" in proc.stderr and "node 3" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_write_goes_on_without_a_dead_copy_holder(cluster):
    run, values = cluster
    with connect(run.cluster, 4) as mem:
        assert mem.read(1).rstrip(b"\0") == values[1]     # node 4 holds a copy of page 1
    assert run.procs.kill("node4")
    t0 = time.monotonic()
    with connect(run.cluster, 2) as mem:
        mem.write(1, pad(b"without node 4"))                      # waits for no confirmation
        took = time.monotonic() - t0
        assert mem.read(1).rstrip(b"\0") == b"without node 4"
    limit = run.cluster.timing.node_dead_after + 2.0
    assert took < limit, f"the write took {took:.2f} s"
    print(f"\nwrite with a dead copy holder: {took * 1000:.0f} ms")


def test_failover_with_a_dead_node_and_restart(cluster):
    run, values = cluster
    assert run.procs.kill("node3")
    wait_until(lambda: dead_at(run, 3), 10, "node 3 declared dead")
    wait_until(lambda: backup_knows_dead(run, 3), 10, "the backup to hold node 3 dead")
    assert run.procs.kill("primary")
    t0 = time.monotonic()
    with connect(run.cluster, 0) as mem:
        mem.write(2, pad(b"through the backup"))                  # needs a manager
        failover = time.monotonic() - t0
        assert mem.read(2).rstrip(b"\0") == b"through the backup"
    assert run.admin.serving() == "backup"
    print(f"\nfailover with node 3 dead: kill -> write done {failover * 1000:.0f} ms")
    proc = ivy(run, "restart", "node3")
    assert proc.returncode == 0, proc.stderr
    wait_until(lambda: not dead_at(run, 3), 10, "node 3 to rejoin")
    with connect(run.cluster, 3) as mem:
        assert mem.read(0).rstrip(b"\0") == values[0]       # a fault served for node 3
        mem.write(0, pad(b"node 3 is back"))
    with connect(run.cluster, 1) as mem:
        assert mem.read(0).rstrip(b"\0") == b"node 3 is back"
        with pytest.raises(PageLostError):
            mem.read(3)                                      # what died with it stays lost
    run.restart("primary")
    wait_until(lambda: agreed(run) == [], 20, lambda: f"agreeing readouts: {agreed(run)}")
