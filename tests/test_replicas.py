"""Page replicas on real processes (replicas: 1, docs/PROTOCOL.md section 6.2): a node dies
and every page it owned passes to its replica holder with its last acknowledged value; the
primary dies too and every page still serves through the backup; the node restarts empty,
rejoins, serves again, and the readouts of every daemon agree. Daemons are started through
the entry points (the `clusters` fixture) and killed by their recorded os_pids."""
from __future__ import annotations

import time

from conftest import ivy, wait_until
from ivyzmq.client import connect
from test_nodes import FAST, agreed, backup_knows_dead, dead_at, pad

NODES, PAGES = 5, 10


def write_all(run, tag: bytes, via=None) -> dict[int, bytes]:
    """A unique value on every page, written from node `via` (default: each page's
    initial owner, a hit) - with replicas each returns once the holder has it."""
    values = {}
    for page in range(PAGES):
        with connect(run.cluster, page % NODES if via is None else via) as mem:
            values[page] = tag + f"-{page}-{time.monotonic_ns()}".encode()
            mem.write(page, pad(values[page]))
    return values


def read_all(run, node: int) -> dict[int, bytes]:
    with connect(run.cluster, node) as mem:
        return {page: mem.read(page).rstrip(b"\0") for page in range(PAGES)}


def test_no_acknowledged_write_lost_when_a_node_and_the_primary_die(clusters):
    run = clusters.make("replicas", nodes=NODES, pages=PAGES, replicas=1, **FAST)
    values = write_all(run, b"hit")
    values.update(write_all(run, b"fault", via=1))    # node 1 now owns every page
    assert run.procs.kill("node1")
    t0 = time.monotonic()
    assert read_all(run, 2) == values                 # from the replicas
    took = time.monotonic() - t0
    assert dead_at(run, 1)
    status = ivy(run, "status")
    assert "dead: node1" in status.stdout and "lost(" not in status.stdout
    print(f"\nevery page read back after node 1 died: {took * 1000:.0f} ms")
    wait_until(lambda: backup_knows_dead(run, 1), 10, "the backup to hold node 1 dead")
    assert run.procs.kill("primary")
    t0 = time.monotonic()
    values.update(write_all(run, b"backup", via=3))
    print(f"writes of every page through the backup: {(time.monotonic() - t0) * 1000:.0f} ms")
    assert run.admin.serving() == "backup"
    assert read_all(run, 4) == values
    proc = ivy(run, "restart", "node1")
    assert proc.returncode == 0, proc.stderr
    wait_until(lambda: not dead_at(run, 1), 10, "node 1 to rejoin")
    assert read_all(run, 1) == values                  # faults served for the new node 1
    values.update(write_all(run, b"again", via=1))
    assert read_all(run, 0) == values
    run.restart("primary")
    wait_until(lambda: agreed(run) == [], 20, lambda: f"agreeing readouts: {agreed(run)}")


def test_a_page_survives_its_owner_and_then_its_new_owner(clusters):
    """Two deaths one after the other, each of at most one holder: after the first the
    page is re-replicated on a live node, so the second loses nothing either."""
    run = clusters.make("twice", nodes=NODES, pages=PAGES, replicas=1, **FAST)
    values = write_all(run, b"first")
    assert run.procs.kill("node2")                    # owner of pages 2 and 7
    assert read_all(run, 0) == values
    assert run.procs.kill("node3")                    # holder (then owner) of 2 and 7
    wait_until(lambda: dead_at(run, 3), 10, "node 3 declared dead")
    assert read_all(run, 4) == values


def test_write_whose_replica_holder_died_completes_within_node_liveness(clusters):
    """The write waits for its holder's UpdateAck: a dead holder is replaced in the round
    that follows its death, and the write completes through the new one."""
    run = clusters.make("holder", nodes=NODES, pages=PAGES, replicas=1, **FAST)
    values = write_all(run, b"before")
    assert run.procs.kill("node1")                    # the holder of node 0's pages
    t0 = time.monotonic()
    with connect(run.cluster, 0) as mem:
        mem.write(0, pad(b"holder gone"))             # a hit at the owner, node 0
        took = time.monotonic() - t0
    values[0] = b"holder gone"
    limit = run.cluster.timing.node_dead_after + 1.0
    assert took < limit, f"the write took {took:.2f} s"
    print(f"\nwrite hit with a dead replica holder: {took * 1000:.0f} ms")
    assert run.procs.kill("node0")                    # and now the owner: the new holder has it
    assert read_all(run, 3) == values
