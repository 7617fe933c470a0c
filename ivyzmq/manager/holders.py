"""The serving manager's side of page replicas (docs/PROTOCOL.md section 6.2). `Manager`
(manager/core.py) inherits these methods.

With `replicas: k >= 1` each page record names k replica holders besides the owner. The
holders change only with membership: when a node is declared dead (with any k), or a node
joins while some page has fewer holders than k, the serving manager starts a new term -
the same recovery round as a failover. The round fences everything the old term sent (nodes drop
node messages of an older epoch), holds every page's lock, and rebuilds each record from
the live nodes' reports: a page whose owner is gone passes to the holder of its newest
replica. Then each owner is told its page's holders (and a promoted node that it owns the
page) by an Assign, re-sent until acknowledged.
"""
from __future__ import annotations

from ivyzmq import protocol as P


class Holders:
    """Replica holder records of a `Manager` (see the module docstring)."""

    def _init_holders(self) -> None:
        self.assigning: dict[int, P.Assign] = {}   # node -> Assign not yet acknowledged
        self.assign_sent = 0.0
        self.round_wanted = False    # a membership change wants a new term (k >= 1)
        self.short_with = None       # live members when some page last lacked holders

    def _assign(self, rec: P.PageRec, reports: dict[int, P.PageReport]) -> None:
        """After reconciling `rec` from `reports`: its owner's Assign entry. Not for a page
        whose write is in transit - the re-driven WriteForward carries the holders."""
        if not self.k or rec.lost or (rec.op is not None and rec.op.kind == "write"):
            return
        empty = [h for h in rec.holders if h not in reports or reports[h].replica is None]
        msg = self.assigning.setdefault(rec.owner, P.Assign(pages=[]))
        msg.pages.append((rec.page, rec.opseq, list(rec.holders), bool(rec.copy_set), empty))

    def _settle_holders(self, live: int) -> None:
        """End of a round: send the Assigns; remember whether some page is short of holders
        (a node that joins later can fill it)."""
        for n, msg in self.assigning.items():
            self._send(n, msg)
        self.assign_sent = self._now
        short = self.k and any(len(r.holders) < self.k for r in self.table.values()
                               if not r.lost)      # a page as laid out has k holders
        self.short_with = live if short else None

    def _resend_assigns(self, now: float) -> None:
        if self.assigning and now - self.assign_sent >= self.interval:
            self.assign_sent = now
            for n, msg in self.assigning.items():
                self._send(n, P.Assign(pages=msg.pages))

    def _members_changed(self, joined: bool = False) -> None:
        """A node died (or, `joined`, a member beat while pages lack replica holders): a
        new term settles it - the nodes' reports say where each page really is."""
        if joined:
            live = sum(1 for m in self.members.values() if m.inc and not m.dead)
            if not self.k or self.short_with is None or live <= self.short_with:
                return
        self.round_wanted = True
