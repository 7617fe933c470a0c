"""The properties a simulated run must keep (docs/PROTOCOL.md section 7), checked against the
real cores' state: invariants after every step, and at the end quiescent agreement of the
serving manager with the nodes, a complete history and linearizability.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ivyzmq.checker import check
from ivyzmq.harness import agreement
from ivyzmq.node.core import NIL, RW

if TYPE_CHECKING:
    from ivyzmq.sim.world import World


class Violation(AssertionError):
    """A property failed. `kind` sorts failures in the summary: invariant, linearizability,
    quiescence, liveness (the run did not finish), history or replicas (a page lost that
    its replicas should have kept)."""

    def __init__(self, kind: str, text: str):
        super().__init__(f"[{kind}] {text}")
        self.kind, self.text = kind, text


class InvariantError(Violation):
    def __init__(self, text: str):
        super().__init__("invariant", text)


def counted(w: World) -> dict:
    """The nodes whose pages count: running members whose incarnation no manager has
    declared dead - nor the newest serving manager declared dead under an older
    incarnation number, which is how a round settles a member admitted in a term its
    records never knew (a node left behind by a partition or by both managers' restart).
    A fenced node that has not heard so yet may still hold old pages, and a node not yet
    admitted holds only its tentative initial ones; neither serves them."""
    live = [mgr for mgr in w.managers.values() if mgr is not None]
    dead = {(n, m.inc) for mgr in live for n, m in mgr.members.items() if m.dead}
    serving = [mgr for mgr in live if mgr.role == "active"]
    head = max(serving, key=lambda mgr: mgr.epoch).members if serving else {}
    return {n: nd for n, nd in w.nodes.items()
            if nd.member and (n, nd.inc) not in dead
            and not (n in head and head[n].dead and head[n].inc <= nd.inc)}


def invariants(w: World, pages: Iterable[int] | None = None) -> None:
    """At most one owner per page; a ReadWrite node is the owner and alone has access;
    every copy holds the same bytes (all among the counted nodes); epochs never go back at
    a node; managers too. `pages` limits the page checks to those a step touched (the
    others did not change)."""
    nodes = counted(w)
    for p in range(w.cfg.pages) if pages is None else pages:
        owners, writers, holders = [], [], []
        for n, nd in nodes.items():
            st = nd.pages.peek(p)        # touches nothing: the check changes no state
            if st.is_owner:
                owners.append(n)
            if st.access != NIL:
                holders.append(n)
                if st.access == RW:
                    writers.append(n)
        if len(owners) > 1:
            raise InvariantError(f"page {p} has several owners {owners}")
        if writers and (len(writers) > 1 or writers != owners or len(holders) > 1):
            raise InvariantError(f"page {p}: ReadWrite at {writers} while owners are "
                                 f"{owners} and {holders} have access")
        data = {n: nodes[n].data[p] or nodes[n].zero for n in holders}   # None: untouched
        if len(set(data.values())) > 1:
            copies = {n: d.rstrip(b"\0").decode() for n, d in data.items()}
            raise InvariantError(f"page {p}: copies differ {copies}")
    for n, nd in w.nodes.items():
        if nd.epoch < w.node_epoch[n]:
            raise InvariantError(f"node {n} epoch went back {w.node_epoch[n]}"
                                 f" -> {nd.epoch}")
        w.node_epoch[n] = nd.epoch
    if pages is None:
        managers(w)


def managers(w: World) -> None:
    """No two managers serve in the same epoch (epochs are what nodes tell terms apart by)."""
    serving = sorted((m.epoch, m.pid) for m in w.managers.values()
                     if m is not None and m.role == "active")
    epochs = [e for e, _ in serving]
    if len(set(epochs)) != len(epochs):
        raise InvariantError(f"two managers serve the same epoch: {serving}")


def node_faults(w: World) -> int:
    """How many faults may take a node down (or cut it off) in this run: an upper bound
    of the page holders that die."""
    return sum(1 for f in w.faults if f.kind == "kill_on_send" or
               (f.kind in ("kill", "pause", "cut", "slow") and (f.a in w.node_ids or
                                                        f.b in w.node_ids)))


def end(w: World) -> None:
    """After `run`: quiescent agreement, no page lost while at most `replicas` holders can
    have died, a complete history, linearizability."""
    quiescent(w)
    if w.cfg.replicas and node_faults(w) <= w.cfg.replicas:
        m = next(m for m in w.managers.values() if m is not None and m.role == "active")
        lost = [r.page for r in m.table if r.lost]
        if lost:
            raise Violation("replicas", f"pages {lost} lost with replicas {w.cfg.replicas} "
                            f"and {node_faults(w)} node fault(s)")
    if len(w.history) != w.issued:
        raise Violation("history", f"{w.issued} operations issued but "
                        f"{len(w.history)} ended")
    res = check(w.history)
    if res.ok is False:
        raise Violation("linearizability", res.explanation)
    if res.ok is None:
        raise Violation("linearizability", "checker gave up: " + res.explanation)


def quiescent(w: World) -> None:
    """Once nothing is in flight, the serving manager agrees with the nodes (the same check
    the real-process drivers make, on the same status rows), epochs included."""
    active = [m for m in w.managers.values() if m is not None and m.role == "active"]
    if len(active) != 1:
        raise Violation("quiescence", f"{len(active)} managers serve at the end")
    m = active[0]
    nodes = counted(w)
    found = agreement.problems(m.status_rows(), {n: nd.status_rows() for n, nd in nodes.items()},
                               epoch=m.epoch,
                               node_epochs={n: nd.epoch for n, nd in nodes.items()})
    if found:
        raise Violation("quiescence", f"manager {m.pid}: " + "; ".join(found))


def stuck(w: World) -> str:
    """What is still open, for a liveness failure."""
    parts = []
    for n, nd in w.nodes.items():
        for p, st in enumerate(nd.pages):
            if st.pending or st.local:
                parts.append(f"node {n} page {p} pending {st.pending} "
                             f"({len(st.local)} local ops), asks manager {nd.manager}")
        if nd.outstanding and not any(st.pending for st in nd.pages):
            parts.append(f"node {n} awaits acks for rids {sorted(nd.outstanding)}")
    for q, m in w.managers.items():
        if m is None:
            parts.append(f"manager {q} down")
            continue
        ops = [f"p{r.page}:{r.op.kind} by {r.op.requester} {r.op.phase} "
               f"waiting {r.op.waiting}" for r in m.table if r.op]
        parts.append(f"manager {q} {m.role} epoch {m.epoch} seq {m.seq} "
                     f"held {len(m.held)} replicas {m.replicas} ops {ops}")
    return "; ".join(parts)
