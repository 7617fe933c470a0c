"""The trace as people read it (ivyzmq/tracing.py): operations, and the merge that keeps
each operation's rows together without breaking causality; `ivy trace --op / --page` on a
real cluster."""
from __future__ import annotations

import json
import random

from conftest import ivy
from ivyzmq import protocol as P
from ivyzmq import tracing


def row(lc, typ, sender, to, page, requester, rid, at=0.0) -> P.TraceRow:
    return P.TraceRow(lc, typ, sender, to, page, requester, rid, at)


# Two read faults at once through manager 4: node 1 on page 5 (owner node 0), node 2 on
# page 6 (owner node 3). Clocks as Lamport's rules give them for this schedule.
CONCURRENT = [
    row(1, "ReadRequest", 1, 4, 5, 1, 10), row(1, "ReadRequest", 2, 4, 6, 2, 20),
    row(4, "ReadForward", 4, 0, 5, 1, 10), row(5, "ReadForward", 4, 3, 6, 2, 20),
    row(6, "ReadPage", 0, 1, 5, 1, 10), row(7, "ReadPage", 3, 2, 6, 2, 20),
    row(8, "ReadConfirmation", 1, 4, 5, 1, 10), row(9, "ReadConfirmation", 2, 4, 6, 2, 20),
]


def test_concurrent_operations_come_out_together():
    merged = tracing.merge(list(reversed(CONCURRENT)))
    assert [(r.type, r.requester) for r in merged] == [
        ("ReadRequest", 1), ("ReadRequest", 2),          # the manager got both first
        ("ReadForward", 1), ("ReadPage", 1), ("ReadConfirmation", 1),
        ("ReadForward", 2), ("ReadPage", 2), ("ReadConfirmation", 2)]
    # the Lamport order interleaves them
    assert [r.requester for r in tracing.lamport(CONCURRENT)] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert tracing.numbers(merged) == {(1, 10): 1, (2, 20): 2}
    assert [r.type for r in tracing.select(merged, op=2)] == [
        "ReadRequest", "ReadForward", "ReadPage", "ReadConfirmation"]
    assert {r.page for r in tracing.select(merged, page=5)} == {5}
    assert tracing.select(merged, op=2, page=5) == []


def simulate(seed: int, procs: int = 5, steps: int = 120):
    """A random run with true receive events: rows, and for each row the vector clock of
    its send (so the real happens-before between two sends is known). Odd seeds give the
    rows their send times, even seeds leave them out (a daemon of an older version)."""
    rng = random.Random(seed)
    now = 0.0
    lc = [0] * procs
    vc = [[0] * procs for _ in range(procs)]
    channels: dict[tuple[int, int], list] = {}
    rows, clocks = [], {}
    for _ in range(steps):
        now += rng.random()
        p = rng.randrange(procs)
        inbound = [k for k, q in channels.items() if k[1] == p and q]
        if inbound and rng.random() < 0.6:            # receive, FIFO per channel
            msg_lc, msg_vc = channels[rng.choice(inbound)].pop(0)
            lc[p] = max(lc[p], msg_lc) + 1
            vc[p] = [max(a, b) for a, b in zip(vc[p], msg_vc)]
            continue
        to = rng.choice([q for q in range(procs) if q != p])
        lc[p] += 1
        vc[p][p] += 1
        r = row(lc[p], "ReadRequest", p, to, rng.randrange(3), rng.randrange(procs),
                rng.randrange(4), now if seed % 2 else 0.0)
        rows.append(r)
        clocks[id(r)] = list(vc[p])
        channels.setdefault((p, to), []).append((lc[p], list(vc[p])))
    return rows, clocks


def test_the_merge_never_breaks_happens_before():
    for seed in range(200):
        rows, clocks = simulate(seed)
        merged = tracing.merge(rows)
        assert sorted(map(id, merged)) == sorted(map(id, rows))
        where = {id(r): i for i, r in enumerate(merged)}
        for a in rows:
            for b in rows:
                va, vb = clocks[id(a)], clocks[id(b)]
                if a is not b and all(x <= y for x, y in zip(va, vb)):
                    assert where[id(a)] < where[id(b)], (seed, a, b)
                if a.page == b.page and (a.lc, a.sender) < (b.lc, b.sender):
                    assert where[id(a)] < where[id(b)], (seed, "page order", a, b)


def test_ivy_trace_filters_by_operation_and_page(clusters):
    run = clusters.make("trace", heartbeat_interval=0.2)
    assert ivy(run, "trace", "--clear").returncode == 0
    assert ivy(run, "read", 2, 1).returncode == 0          # op 1: page 1, owner node 1
    assert ivy(run, "write", 0, 2, "x").returncode == 0    # op 2: page 2, owner node 2
    rows = json.loads(ivy(run, "trace", "--json").stdout)
    assert [r["op"] for r in rows] == sorted(r["op"] for r in rows)   # one after the other
    assert {(r["op"], r["page"], r["requester"]) for r in rows} == {(1, 1, 2), (2, 2, 0)}
    assert all(r["rid"] > 0 for r in rows)
    two = json.loads(ivy(run, "trace", "--json", "--op", "2").stdout)
    assert [r["type"] for r in two] == ["WriteRequest", "WriteForward", "WritePage",
                                        "WriteConfirmation"]
    assert two == [r for r in rows if r["op"] == 2]
    text = ivy(run, "trace", "--page", "1").stdout.splitlines()
    assert text[0].split() == ["Type", "From", "To", "Page", "Requester", "Op"]
    assert [line.split() for line in text[1:]] == [
        ["ReadRequest", "2", "3", "1", "2", "1"], ["ReadForward", "3", "1", "1", "2", "1"],
        ["ReadPage", "1", "2", "1", "2", "1"], ["ReadConfirmation", "2", "3", "1", "2", "1"]]


def test_an_idle_node_with_a_low_clock_does_not_cut_into_an_earlier_operation():
    """Node 0 was idle (clock 1) when it wrote page 2, after node 2's read of page 1 had
    ended: by Lamport clock alone its request would come first; by send time it is last."""
    read = [row(1, "ReadRequest", 2, 3, 1, 2, 7, 10.0), row(3, "ReadForward", 3, 1, 1, 2, 7, 10.1),
            row(5, "ReadPage", 1, 2, 1, 2, 7, 10.2),
            row(7, "ReadConfirmation", 2, 3, 1, 2, 7, 10.3)]
    write = [row(1, "WriteRequest", 0, 3, 2, 0, 9, 20.0),
             row(9, "WriteForward", 3, 2, 2, 0, 9, 20.1)]
    assert tracing.lamport(read + write)[0].type == "WriteRequest"
    assert tracing.merge(write + read) == read + write
