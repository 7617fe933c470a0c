"""The central manager's Ivy logic on one page record: locks, FIFO queues, forwards,
invalidations and confirmations (Li & Hudak's central manager, with the owner-upgrade and
requester-in-copy_set cases). Pure: the functions mutate the record and return messages.

A page's lock is `rec.op`: the one operation in flight. Requests for a locked page wait in
`rec.queue`; requests for other pages are not affected.

`bugs` (keyword argument, from the manager) names the broken variants of ivyzmq/bugs.py that
are switched on; empty except in the simulator and tests.
"""
from __future__ import annotations


from ivyzmq import protocol as P

Out = list[tuple[int, P.Msg]]
NONE: frozenset[str] = frozenset()


class Layout:
    """The initial layout (docs/PROTOCOL.md section 1): page p owned by `owner_of(p)`, its
    replicas on the k nodes after the owner (P.initial_holders)."""

    def __init__(self, pages: int, nodes: int, k: int, owner_of=None):
        self.pages, self.nodes, self.k = pages, nodes, k
        self.owner_of = owner_of or (lambda p: p % nodes)
        self.default = owner_of is None
        self._holders = [P.initial_holders(o, nodes, k) for o in range(nodes)]

    def holders(self, owner: int) -> list[int]:
        """The initial holders of a page of `owner` (shared: copy before changing it)."""
        return self._holders[owner]

    def record(self, page: int) -> P.PageRec:
        owner = self.owner_of(page)
        return P.PageRec(page=page, owner=owner, holders=list(self._holders[owner]))

    def report(self, page: int, node: int, empty: bool) -> P.PageReport:
        owner = self.owner_of(page)
        return P.base_report(page, node, owner, self._holders[owner], empty)

    def pages_of(self, nodes: set[int]) -> list[int]:
        """The pages whose initial owner or initial holders include one of `nodes`."""
        owners = {o for o in range(self.nodes) if nodes & {o, *self._holders[o]}}
        if self.default:
            return [p for o in owners for p in range(o, self.pages, self.nodes)]
        return [p for p in range(self.pages) if self.owner_of(p) in owners]


class Table(dict):
    """page -> PageRec of the records that may differ from the initial layout: any other
    page's record is its initial one, made and kept when first asked for (`table[p]`; the
    caller checks the range). len() and iteration cover every page, as a list would;
    iteration keeps nothing (an untouched page's record is made afresh, to read only)."""

    def __init__(self, layout: Layout, records=()):
        super().__init__((r.page, r) for r in records)
        self.layout = layout

    def __missing__(self, page: int) -> P.PageRec:
        rec = self[page] = self.layout.record(page)
        return rec

    def __len__(self) -> int:
        return self.layout.pages

    def __iter__(self):
        """Every page's record, to read only (an untouched page's shares its holders)."""
        get, owner_of, holders = self.get, self.layout.owner_of, self.layout.holders
        return (get(p) or P.PageRec(page=p, owner=(o := owner_of(p)), holders=holders(o))
                for p in range(self.layout.pages))

    def rows(self) -> list[P.RecordRow]:
        """Every page's record as a status reply shows it."""
        get, owner_of, holders = self.get, self.layout.owner_of, self.layout.holders
        return [row(r) if (r := get(p)) is not None else
                P.RecordRow(p, (o := owner_of(p)), [], False, holders(o))
                for p in range(self.layout.pages)]

    def changed(self) -> list[P.PageRec]:
        """The records that differ from the initial layout, in page order."""
        record = self.layout.record
        return [r for p, r in sorted(self.items()) if r != record(p)]


def row(r: P.PageRec) -> P.RecordRow:
    return P.RecordRow(r.page, r.owner, list(r.copy_set), r.lost, list(r.holders))


class Report(dict):
    """One node's TableReport as page -> PageReport: the pages it listed; any other page
    reads as its base (P.base_report), made afresh each time."""

    def __init__(self, msg: P.TableReport, layout: Layout):
        super().__init__((r.page, r) for r in msg.pages)
        self.node, self.empty, self.layout = msg.sender, msg.empty, layout

    def __missing__(self, page: int) -> P.PageReport:
        return self.layout.report(page, self.node, self.empty)


def valid_pages(pages: list[int], n: int) -> bool:
    """Pages of a sparse table or report: in range, each once, in order."""
    return all(a < b for a, b in zip(pages, pages[1:])) and \
        (not pages or (0 <= pages[0] and pages[-1] < n))


def _msg(cls, rec: P.PageRec, op: P.InFlight | P.Req, **extra) -> P.IvyMsg:
    return cls(page=rec.page, requester=op.requester, rid=op.rid, opseq=rec.opseq, **extra)


def holders_for(rec: P.PageRec, new_owner: int) -> list[int]:
    """The replica holders once `new_owner` owns the page: the same nodes, except that the
    old owner takes the new owner's place if it was one (it has the latest contents)."""
    return [rec.owner if h == new_owner else h for h in rec.holders]


def _write_forward(rec: P.PageRec, op: P.InFlight) -> P.IvyMsg:
    return _msg(P.WriteForward, rec, op, holders=holders_for(rec, op.requester))


def start(rec: P.PageRec, req: P.Req, *, bugs: frozenset[str] = NONE) -> Out:
    """Take the page's lock for `req` and send its first messages."""
    rec.opseq += 1
    if req.kind == "read":
        rec.op = P.InFlight("read", req.requester, req.rid, "forwarded")
        return [(rec.owner, _msg(P.ReadForward, rec, req))]
    # A requester holding a read copy keeps it while it upgrades; only the others go.
    targets = [n for n in rec.copy_set if n != req.requester]
    if "skip_invalidation" in bugs and targets:
        targets.pop()
    if targets:
        rec.op = P.InFlight("write", req.requester, req.rid, "invalidating", targets)
        return [(n, _msg(P.Invalidate, rec, req)) for n in targets]
    rec.op = P.InFlight("write", req.requester, req.rid, "forwarded")
    return proceed(rec)


def proceed(rec: P.PageRec) -> Out:
    """Every copy is gone: hand the page over, or upgrade the owner in place."""
    op = rec.op
    if op.requester == rec.owner:
        op.phase = "granted"      # no transfer and no WriteForward to itself
        return [(op.requester, _msg(P.WriteGrant, rec, op, holders=list(rec.holders)))]
    op.phase = "forwarded"
    return [(rec.owner, _write_forward(rec, op))]


def pending_messages(rec: P.PageRec) -> Out:
    """The messages the operation in flight still waits on, to send again after silence."""
    op = rec.op
    if op is None:
        return []
    if op.phase == "invalidating":
        return [(n, _msg(P.Invalidate, rec, op)) for n in op.waiting]
    if op.phase == "granted":
        return [(op.requester, _msg(P.WriteGrant, rec, op, holders=list(rec.holders)))]
    if op.kind == "read":
        return [(rec.owner, _msg(P.ReadForward, rec, op))]
    return [(rec.owner, _write_forward(rec, op))]


def request(rec: P.PageRec, req: P.Req, *, bugs: frozenset[str] = NONE) -> tuple[bool, Out]:
    """A read or write fault. Returns (new, messages); a request id already seen is not new."""
    if req.rid <= rec.last_rid.get(req.requester, 0) and "no_dedupe" not in bugs:
        return False, []
    rec.last_rid[req.requester] = req.rid
    if rec.op is None:
        return True, start(rec, req, bugs=bugs)
    # A node waits on one fault a page: a newer request replaces its older one in the
    # queue (abandoned, say by a fenced incarnation), so a queue holds a request per node.
    mine = [i for i, q in enumerate(rec.queue) if q.requester == req.requester]
    if mine:
        rec.queue[mine[0]] = req
    else:
        rec.queue.append(req)
    return True, []


def _matches(rec: P.PageRec, msg: P.IvyMsg, kind: str) -> bool:
    op = rec.op
    return op is not None and op.kind == kind and op.rid == msg.rid \
        and op.requester == msg.requester


def invalidated(rec: P.PageRec, msg: P.InvalidateConfirmation, *,
                bugs: frozenset[str] = NONE) -> tuple[bool, Out]:
    op = rec.op
    if not (_matches(rec, msg, "write") and op.phase == "invalidating"
            and msg.sender in op.waiting):
        return False, []
    op.waiting.remove(msg.sender)
    if msg.sender in rec.copy_set:
        rec.copy_set.remove(msg.sender)
    if "forward_each_confirmation" in bugs:
        return True, proceed(rec)
    return True, (proceed(rec) if not op.waiting else [])


def confirmed(rec: P.PageRec, msg: P.IvyMsg, *,
              bugs: frozenset[str] = NONE) -> tuple[bool, Out]:
    """Read or write confirmation: record the outcome, release the lock, start the next."""
    kind = "read" if isinstance(msg, P.ReadConfirmation) else "write"
    if rec.lost:
        return _found(rec, msg, kind)
    if not _matches(rec, msg, kind) or rec.op.phase == "invalidating":
        return False, []
    if kind == "read":
        if msg.requester != rec.owner and msg.requester not in rec.copy_set:
            rec.copy_set = sorted(rec.copy_set + [msg.requester])
    else:
        rec.holders = holders_for(rec, msg.requester)
        rec.owner, rec.copy_set = msg.requester, []
    rec.op = None
    return True, (start(rec, rec.queue.pop(0), bugs=bugs) if rec.queue else [])


def _found(rec: P.PageRec, msg: P.IvyMsg, kind: str) -> tuple[bool, Out]:
    """A confirmation of a node's latest request on a lost page, for an operation no older
    than any the records know: the page (or a copy) had reached it from the owner before
    that one died, so the node holds the last contents. A read copy joins the copy_set; a written page has its owner back."""
    if msg.rid != rec.last_rid.get(msg.requester) or msg.opseq < rec.opseq:
        return False, []           # an older operation's: the page moved on since
    rec.opseq = msg.opseq
    if kind == "write":
        rec.owner, rec.copy_set, rec.lost = msg.requester, [], False
    elif msg.requester not in rec.copy_set:
        rec.copy_set = sorted(rec.copy_set + [msg.requester])
    return True, []


def reconcile(rec: P.PageRec, reports: dict[int, P.PageReport], k: int = 0,
              live: list[int] = ()) -> list[str]:
    """Rebuild a page's record from the live nodes' reports (the nodes are the ground
    truth), keeping the replicated queue order. A page no live node owns or receives
    passes to the holder of its newest replica (replicas: k >= 1), or is lost. Returns
    complaints about impossible states."""
    problems: list[str] = []
    owners = [n for n, r in reports.items() if r.is_owner]
    # Replica versions count too: their opseq may come from a term whose records are gone,
    # and a promoted owner's version must be above every replica's (section 6.2).
    rec.opseq = max([rec.opseq] + [r.opseq for r in reports.values()] +
                    [r.replica[0] for r in reports.values() if r.replica is not None])
    for n, r in reports.items():
        rec.last_rid[n] = max(rec.last_rid.get(n, 0), r.last_rid)
    # A fault is in transit when its page (or copy) left the owner but has not arrived.
    sent = {(r.handoff.kind, r.handoff.to, r.handoff.rid): n
            for n, r in reports.items() if r.handoff is not None}
    transit = None
    waiting: list[P.Req] = []
    for n, r in reports.items():
        if r.pending is None:
            continue
        req = P.Req(r.pending.kind, n, r.pending.rid)
        if (req.kind, n, req.rid) in sent:
            transit = req
        else:
            waiting.append(req)
    if len(owners) > 1:
        problems.append(f"page {rec.page}: several nodes claim ownership: {owners}")
    if owners:
        rec.owner, rec.lost = owners[0], False
    elif transit is not None and transit.kind == "write":
        # The old owner stays on record until the confirmation, as in a normal write.
        rec.owner, rec.lost = sent[(transit.kind, transit.requester, transit.rid)], False
    elif k and any(r.replica is not None for r in reports.values()):
        rec.owner = _newest(reports)
        rec.opseq, rec.lost = rec.opseq + 1, False    # fences what the old owner sent
    else:
        # No live node owns it or receives it: whoever had it last is gone (the records
        # may not know who, after both managers died).
        rec.lost = True
    rec.copy_set = sorted(n for n, r in reports.items() if r.access == "Read"
                          and (rec.lost or n != rec.owner))
    rec.holders = [] if rec.lost or not k else _holders(rec, reports, k, live)
    rec.op = None
    if transit is not None:
        rec.op = P.InFlight(transit.kind, transit.requester, transit.rid, "forwarded")
    order = {(q.requester, q.rid): i for i, q in enumerate(rec.queue)}
    rec.queue = sorted(waiting, key=lambda q: (order.get((q.requester, q.rid), len(order)),
                                               q.rid, q.requester))
    return problems


def _newest(reports: dict[int, P.PageReport]) -> int:
    """The node holding the page's newest replica."""
    return max((tuple(r.replica), n) for n, r in reports.items() if r.replica is not None)[1]


def _holders(rec: P.PageRec, reports: dict[int, P.PageReport], k: int,
             live: list[int]) -> list[int]:
    """k replica holders among the live nodes: first the recorded ones that still hold a
    replica, then other holders of replicas (newest first), then any live node (in ring
    order after the owner) - these get the contents from the owner (section 6.2)."""
    def holds(n):
        return n in reports and n != rec.owner and reports[n].replica is not None
    kept = [h for h in rec.holders if holds(h)]
    others = sorted((n for n in reports if holds(n) and n not in kept),
                    key=lambda n: tuple(reports[n].replica), reverse=True)
    ring = sorted(live, key=lambda n: (n - rec.owner) % (max(live, default=0) + 1))
    fill = [n for n in ring if n != rec.owner and n not in kept and n not in others]
    return (kept + others + fill)[:k]


# -- node deaths (docs/PROTOCOL.md section 6) ---------------------------------------------------

def lost_reply(rec: P.PageRec, req: P.Req) -> Out:
    """A fault on a lost page fails at once, every time it is asked (a lost reply may be
    lost itself, and the node asks again with the same rid)."""
    return [(req.requester, P.Lost(page=rec.page, requester=req.requester, rid=req.rid,
                                   opseq=rec.opseq, owner=rec.owner))]
