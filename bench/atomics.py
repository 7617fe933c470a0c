"""The rows of the atomic operations on the main cluster (replicas 0, one manager): a cas and
an add at the node that owns the page with ReadWrite (a hit), the same with a write fault
first, and an ivyzmq.sync.Lock handed over between clients of two nodes.

The same code times ours and raw: the raw node applies a cas or an add like a write (raw.py)
and the raw client has Memory's `cas` and `add`, so the raw lock row is the very same Lock
(its reads and cas, with its backoff) over the raw relay.
"""
from __future__ import annotations

import threading
import time

from ivyzmq.sync import Lock

from common import (ATOMIC_FAULT_PAGES, ATOMIC_HIT_PAGES, BLOCK, HIT_NODE, LOCK_NODES,
                    LOCK_PAGE, N_NODES, WRITERS, log, now_ns)
from measure import alternate, interleaved, row

HOLD = 0.001          # s the holder keeps the lock once the other client is waiting for it
WAIT = 30.0           # s before a lock row gives up on a turn (a dead process fails the run)


def _word(v: int) -> bytes:
    return v.to_bytes(8, "little")


def _op(c, kind: str, page: int, v: int) -> bool:
    """One cas (8 bytes at offset 0: v -> v + 1) or add (+1); whether it did what it should
    (the cas swapped, the add returned v + 1)."""
    if kind == "cas":
        return c.cas(page, _word(v), _word(v + 1))
    return c.add(page, 1) == v + 1


def atomic_block(client_of, state: dict, kind: str, fault: bool, n: int,
                 out: list[float]) -> None:
    """n timed cas or add operations: at node 8 on a page it owns (a hit), or with `fault`
    by the one of the two writers that does not own the page (a write fault each time)."""
    pages = ATOMIC_FAULT_PAGES[kind] if fault else [ATOMIC_HIT_PAGES[kind]]
    owners = state.setdefault("owners", {p: p % N_NODES for p in pages})
    values = state.setdefault("values", dict.fromkeys(pages, 0))
    i = state.setdefault("i", 0)
    for _ in range(n):
        page = pages[i % len(pages)]
        i += 1
        node = (WRITERS[1] if owners[page] == WRITERS[0] else WRITERS[0]) if fault \
            else HIT_NODE
        c, v = client_of(node), values[page]
        t0 = now_ns()
        ok = _op(c, kind, page, v)
        t1 = now_ns()
        if not ok:
            raise RuntimeError(f"{kind} of page {page} at node {node}: not from {v} to {v + 1}")
        out.append((t1 - t0) / 1000)
        owners[page], values[page] = node, v + 1
    state["i"] = i


def lock_block(make, n: int, out: list[float]) -> None:
    """n hand-overs of one Lock between fresh clients of LOCK_NODES, a thread each, after
    one untimed (each thread's first request opens its channel). A thread acquires, lets
    the other start acquiring, holds HOLD s, notes the time and releases; the sample is
    from that time to the other's acquire returning."""
    mems = [make(node) for node in LOCK_NODES]
    locks = [Lock(m, LOCK_PAGE, node=node) for m, node in zip(mems, LOCK_NODES)]
    turn = [threading.Event(), threading.Event()]
    released, errors = [0], []

    def run(me: int) -> None:
        try:
            for j in range(me, n + 2, 2):          # acquisitions 0..n+1; 2.. are timed
                if j and not turn[me].wait(WAIT):
                    raise RuntimeError(f"lock hand-over: node {LOCK_NODES[me]} got no turn")
                turn[me].clear()
                locks[me].acquire(timeout=WAIT)
                if j >= 2:
                    out.append((now_ns() - released[0]) / 1000)
                if j <= n:
                    turn[1 - me].set()
                    time.sleep(HOLD)
                released[0] = now_ns()
                locks[me].release()
        except BaseException as exc:   # noqa: BLE001 - re-raised in the bench's thread
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(me,), daemon=True) for me in (0, 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for m in mems:
            m.close()
    if errors:
        raise errors[0]


def _kind_row(clients: dict, kind: str, fault: bool, n: int) -> tuple[dict, tuple]:
    def step(client_of, state, m, out):
        atomic_block(client_of, state, kind, fault, m, out)
    o, r = alternate(step, clients, n, 8 if fault else 20)
    if fault:
        name, timed = f"{kind} fault, 0 copies [1 mgr]", \
            f"client->node ... ->client round trip of a {kind} that write-faults first"
    else:
        name, timed = f"{kind} hit at owner [1 mgr]", \
            f"client->node->client round trip of a {kind} at the node that owns the page"
    log(f"{name} done")
    return row(name, timed, o, r), (o, r)


def lock_row(clients: dict, n: int) -> tuple[dict, tuple]:
    def block(who, m, out):
        lock_block(clients[who].make, m, out)
    o, r = interleaved(block, n, BLOCK)
    name = f"lock hand-over, nodes {LOCK_NODES[0]}+{LOCK_NODES[1]} [1 mgr]"
    log(f"{name} done")
    return row(name, f"release() at one node's client -> acquire() returning at the other's "
               f"(ivyzmq.sync.Lock, waiting since {HOLD * 1000:g} ms before)", o, r), (o, r)


def atomic_rows(clients: dict, n_hit: int, n_fault: int, n_lock: int
                ) -> tuple[list[dict], dict[str, tuple[list, list]]]:
    """cas and add hits, cas and add faults, the lock hand-over: (rows, samples by name)."""
    made = [_kind_row(clients, kind, fault, n_fault if fault else n_hit)
            for fault in (False, True) for kind in ("cas", "add")]
    made.append(lock_row(clients, n_lock))
    return [r for r, _ in made], {r["name"]: s for r, s in made}
