"""Atomic operations (docs/PROTOCOL.md section 6.3): compare-and-swap and add, applied in
one step at the page's owner - in the node core message by message, and on real processes
through the client API, `ivy cas` / `ivy add` and ivyzmq.sync (daemons started through the
entry points by the `clusters` fixture)."""
from __future__ import annotations

import threading

import pytest

from conftest import ivy, wait_until
from ivyzmq import protocol as P
from ivyzmq.client import IvyError, IvyTimeout, PageSizeError, connect
from ivyzmq.node.core import Node, PageError
from ivyzmq.node.state import apply
from ivyzmq.sync import Barrier, Counter, Lock
from test_nodes import FAST

SIZE = 16


def word(n: int) -> bytes:
    return (n & (2 ** 64 - 1)).to_bytes(8, "little")


def test_apply_cas_and_add():
    old = b"abcd" + bytes(12)
    assert apply("cas", old, b"bc" + b"XY", 1) == (b"aXYd" + bytes(12), b"\1bc")
    assert apply("cas", old, b"zz" + b"XY", 1) == (None, b"\0bc")
    new, result = apply("add", bytes(SIZE), word(-5), 8)
    assert result == word(-5) and new == bytes(8) + word(-5)
    _, result = apply("add", word(2 ** 63 - 1) + bytes(8), word(1), 0)
    assert int.from_bytes(result, "little", signed=True) == -2 ** 63     # wraps at 64 bits


def test_a_cas_at_a_node_without_write_access_faults_then_applies_once():
    node = Node(1, n_nodes=3, managers=[3], pages=3, page_size=SIZE)   # page 0 owned by 0
    node.start(0.0, 1, "cas", 0, bytes(2) + b"hi")
    [(dest, req, _)], done = node.drain()
    assert isinstance(req, P.WriteRequest) and done == []
    node.receive(0.1, P.WritePage(page=0, requester=1, rid=req.rid, opseq=1, sender=0),
                 b"\0\0rest".ljust(SIZE, b"\0"))
    out, done = node.drain()
    assert done == [(1, b"\1\0\0", None)] and node.data[0][:2] == b"hi"
    node.start(0.2, 2, "add", 0, word(7), 8)
    _, done = node.drain()
    assert done == [(2, word(7), None)]


def test_bad_atomic_arguments_are_refused():
    node = Node(0, n_nodes=1, managers=[1], pages=1, page_size=SIZE)
    for kind, data, offset in [("cas", b"abc", 0), ("cas", b"", 0), ("add", b"1", 0),
                               ("add", word(1), 9), ("cas", b"ab" * 5, 12)]:
        with pytest.raises(PageError):
            node.start(0.0, 1, kind, 0, data, offset)


def test_add_with_a_replica_returns_after_the_holder_has_it():
    owner = Node(0, n_nodes=2, managers=[2], pages=1, page_size=SIZE, replicas=1)
    owner.start(0.0, 1, "add", 0, word(3))
    out, done = owner.drain()
    [upd] = [m for _, m, _ in out if isinstance(m, P.Update)]
    assert done == []
    owner.receive(0.1, P.UpdateAck(page=0, version=upd.version, sender=1))
    _, done = owner.drain()
    assert done == [(1, word(3), None)]


# -- real processes ----------------------------------------------------------------------------

NODES, PAGES = 5, 6


@pytest.fixture
def run(clusters):
    return clusters.make("atomics", nodes=NODES, pages=PAGES, replicas=1, **FAST)


@pytest.fixture
def ten(clusters):
    return clusters.make("ten", nodes=10, pages=4, replicas=1, **FAST)


def _adders(run, page: int, per: int, returned: list, errors: list) -> list[threading.Thread]:
    """Ten clients, client i on node i (mod the cluster's nodes), each adding 1 `per`
    times."""
    def work(node):
        with connect(run.cluster, node) as mem:
            for _ in range(per):
                try:
                    returned.append(mem.add(page, 1))
                except IvyTimeout:
                    errors.append("unknown")      # may or may not have counted
    n = len(run.cluster.nodes)
    return [threading.Thread(target=work, args=(i % n,)) for i in range(10)]


def _run(threads: list[threading.Thread], timeout: float, kill=None) -> None:
    """Start the threads and join them; with kill = (run, condition, what), kill -9 the
    primary once the condition holds."""
    for t in threads:
        t.start()
    if kill is not None:
        run, cond, what = kill
        wait_until(cond, 60, what)
        assert run.procs.kill("primary")
    for t in threads:
        t.join(timeout)


def test_ten_clients_on_ten_nodes_add_to_one_counter(ten):
    run = ten
    returned, errors = [], []
    _run(_adders(run, 2, 100, returned, errors), 120)
    assert errors == []
    assert sorted(returned) == list(range(1, 1001))          # each value returned once
    with connect(run.cluster, 4) as mem:
        assert Counter(mem, 2).value() == 1000


def test_adds_through_a_primary_kill(ten):
    run = ten
    returned, unknown = [], []
    _run(_adders(run, 3, 60, returned, unknown), 120,
         kill=(run, lambda: len(returned) >= 100, "100 adds before the kill"))
    with connect(run.cluster, 0) as mem:
        final = Counter(mem, 3).value()
    assert len(set(returned)) == len(returned)               # no value returned twice
    assert len(returned) <= final <= len(returned) + len(unknown)
    assert max(returned) <= final and len(returned) + len(unknown) == 600
    assert len(returned) < 600 or final == 600


def test_ivy_cas_and_add_commands(run):
    proc = ivy(run, "add", 1, 4, 41)
    assert proc.returncode == 0 and proc.stdout.strip() == "41", proc.stderr
    proc = ivy(run, "add", 2, 4, 1)
    assert proc.stdout.strip() == "42"
    assert ivy(run, "cas", 0, 5, "", "taken").stdout.strip() == "swapped"
    proc = ivy(run, "cas", 3, 5, "", "other")
    assert proc.returncode == 3 and proc.stdout.strip() == "not swapped: taken"
    proc = ivy(run, "cas", 3, 5, "x", "y", "--offset", "4096")
    assert proc.returncode == 2 and "out of range" in proc.stderr
    with connect(run.cluster, 1) as mem:
        with pytest.raises(PageSizeError):
            mem.cas(0, b"ab", b"abc")
        with pytest.raises(PageSizeError):
            mem.add(0, 1, offset=4090)
        mem.write_at(run.cluster.page_size - 3, b"spanning")      # pages 0 and 1
        assert mem.read_at(run.cluster.page_size - 3, 8) == b"spanning"
        assert mem.read(1)[:5] == b"nning"
        with pytest.raises(PageSizeError):
            mem.read_at(PAGES * run.cluster.page_size - 1, 2)


def test_lock_gives_mutual_exclusion_through_a_primary_kill(run):
    """Each holder does a non-atomic read-modify-write of a counter inside the lock: a lost
    update would show two holders in at once."""
    done, entered = [], []

    def work(node):
        with connect(run.cluster, node) as mem:
            lock = Lock(mem, 0, node=node)
            for _ in range(15):
                lock.acquire(timeout=60)
                try:
                    entered.append(node)
                    value = int.from_bytes(mem.read(1)[:8], "little")
                    mem.write(1, (value + 1).to_bytes(8, "little"))
                finally:
                    lock.release()
            done.append(node)
    _run([threading.Thread(target=work, args=(n,)) for n in range(4)], 180,
         kill=(run, lambda: len(entered) >= 10, "10 critical sections before the kill"))
    assert sorted(done) == [0, 1, 2, 3]
    with connect(run.cluster, 4) as mem:
        assert int.from_bytes(mem.read(1)[:8], "little") == len(entered) == 60


def test_barrier_and_a_dead_holders_lock(run):
    from ivyzmq.client import Admin
    rounds = []

    def party(node):
        with connect(run.cluster, node) as mem:
            b = Barrier(mem, 2, parties=3, offset=64)
            rounds.append([b.wait(timeout=30) for _ in range(3)])
    _run([threading.Thread(target=party, args=(n,)) for n in range(3)], 60)
    assert rounds == [[0, 1, 2]] * 3
    with connect(run.cluster, 4) as mem:
        Lock(mem, 5, offset=32, node=4).acquire()         # its holder's node then dies
    assert run.procs.kill("node4")
    with connect(run.cluster, 1) as mem:
        with pytest.raises(IvyError, match="node 4"):
            Lock(mem, 5, offset=32, node=1).acquire(timeout=0.3)
        Lock(mem, 5, offset=32, node=1).acquire(timeout=20, admin=Admin(run.cluster))


def test_a_mixed_workload_with_cas_and_add_is_checked(run):
    from ivyzmq.harness.ops import run_clients
    res = run_clients(run.cluster, clients=6, ops=400, pages=4, seed=3,
                      mix={"read": 4, "write": 2, "cas": 2, "add": 2})
    ops = res.history.ops()
    kinds = {k: [op for op in ops if op.kind == k and op.outcome == "ok"]
             for k in ("read", "write", "cas", "add")}
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    assert any(op.swapped for op in kinds["cas"])
    assert res.verdict().ok is True, res.verdict().explanation
    with connect(run.cluster, 0) as mem:
        for page in (1, 3):                    # the counter pages: every ok add counted
            adds = [op for op in kinds["add"] if op.page == page]
            assert Counter(mem, page).value() == len(adds)
            assert sorted(op.result for op in adds) == list(range(1, len(adds) + 1))
