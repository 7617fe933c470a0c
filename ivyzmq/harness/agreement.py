"""The quiescent-agreement check: once nothing is in flight, the serving manager's records
say what the nodes hold (docs/PROTOCOL.md section 7). Works on the typed status rows, so the
simulator (rows built from its cores) and the real-process drivers (rows from StatusReply)
run the same check."""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from ivyzmq import protocol as P


def page_problems(rec: P.RecordRow, nodes: Mapping[int, Sequence[P.PageRow]]) -> list[str]:
    """One page: a single owner (none if the page is lost), the manager's owner and
    copy_set as the nodes say, a writer only where nobody else has access, and every
    replica holder of the records holding a replica (not the owner)."""
    page = rec.page
    owners = [n for n, rows in nodes.items() if rows[page].is_owner]
    readers = sorted(n for n, rows in nodes.items()
                     if rows[page].access == "Read" and not rows[page].is_owner)
    writers = [n for n, rows in nodes.items() if rows[page].access == "ReadWrite"]
    out = []
    expected = [] if rec.lost else [rec.owner]
    if owners != expected:
        out.append(f"page {page}: manager says owner {rec.owner}"
                   f"{' (lost)' if rec.lost else ''}, nodes say {owners}")
    if writers and (writers != [rec.owner] or readers):
        out.append(f"page {page}: writer {writers} beside readers {readers}")
    if readers != sorted(rec.copy_set):
        out.append(f"page {page}: manager's copy_set {sorted(rec.copy_set)}, nodes with a "
                   f"read copy {readers}")
    missing = [h for h in rec.holders if h in nodes and not nodes[h][page].replica]
    if not rec.lost and (missing or rec.owner in rec.holders):
        out.append(f"page {page}: manager's replica holders {rec.holders}, of which "
                   f"{missing or [rec.owner]} hold no replica or own the page")
    return out


def problems(records: Sequence[P.RecordRow], nodes: Mapping[int, Sequence[P.PageRow]], *,
             epoch: int | None = None, node_epochs: Mapping[int, int] | None = None,
             others: Mapping[str, Sequence[P.RecordRow]] | None = None) -> list[str]:
    """Everything on which the serving manager (`records`, serving `epoch`), the nodes
    (node id -> rows, at `node_epochs`) and the other managers (name -> records) disagree."""
    out = [text for rec in records for text in page_problems(rec, nodes)]
    for n, e in (node_epochs or {}).items():
        if e != epoch:
            out.append(f"node {n} is at epoch {e}, the serving manager at {epoch}")
    for name, table in (others or {}).items():
        if list(table) != list(records):
            out.append(f"{name}'s records differ from the serving manager's")
    return out


def from_replies(replies: Mapping[str, P.StatusReply | None], managers: Sequence[str],
                 nodes: Sequence[str], *, epochs: bool = True, others: bool = False
                 ) -> list[str] | str:
    """The check on status replies of a live cluster. Returns the problems, or a string
    saying why the cluster is not quiescent yet (someone silent, not exactly one manager
    serving, operations pending)."""
    silent = [n for n in list(managers) + list(nodes) if replies.get(n) is None]
    if silent:
        return f"no answer from {silent}"
    serving = [m for m in managers if replies[m].serving]
    if len(serving) != 1:
        return f"serving managers: {serving}"
    head = replies[serving[0]]
    if head.pending or any(replies[n].pending for n in nodes):
        return "operations still pending"
    node_rows = {i: replies[n].pages for i, n in enumerate(nodes)}
    node_epochs = {i: replies[n].epoch for i, n in enumerate(nodes)} if epochs else None
    rest = {m: replies[m].records for m in managers if m != serving[0]} if others else None
    return problems(head.records, node_rows, epoch=head.epoch, node_epochs=node_epochs,
                    others=rest)


QUIET_TIMEOUT = 30.0       # longest wait for a healed cluster to go quiet (s)


def settle(status, managers: Sequence[str], nodes: Sequence[str], *,
           timeout: float = QUIET_TIMEOUT, serving: str | None = None, epochs: bool = True,
           others: bool = False, persist: int = 3) -> list[str]:
    """Poll `status()` (daemon name -> StatusReply or None) until the cluster is quiescent
    and agrees: [] then. Problems seen on `persist` quiescent looks are returned (they
    must last: a handback may be under way); a cluster that never goes quiet gets one line
    saying so. With `serving`, only that manager serving counts as settled."""
    deadline = time.monotonic() + timeout
    last, seen = "no status yet", 0
    while time.monotonic() < deadline:
        replies = status()
        found = from_replies(replies, managers, nodes, epochs=epochs, others=others)
        if not isinstance(found, str) and serving is not None and \
                not replies[serving].serving:
            found = f"{serving} does not serve yet"
        if isinstance(found, str):
            last = found
        elif not found:
            return []
        else:
            seen, last = seen + 1, "; ".join(found)
            if seen >= persist:
                return found
        time.sleep(0.2)   # poll
    return [f"the cluster did not go quiet within {timeout:g} s: {last}"]
