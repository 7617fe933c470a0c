"""The serving manager's replication (docs/PROTOCOL.md section 4.1): each step's changed
page (and node) records go to the backups with a sequence number. A step's messages go out
at once, but those of a step that changed membership (and of every step after it) are held
until every backup has acknowledged it; a backup that is new or behind gets a snapshot.
`Manager` (manager/core.py) inherits these methods."""
from __future__ import annotations

import msgspec
from loguru import logger

from ivyzmq import protocol as P
from ivyzmq.manager.pages import Table, valid_pages

HELD_LIMIT = 10_000    # held steps; beyond, the replicas behind them are dropped

# JSON, as on the wire: msgpack refuses integers beyond 64 bits, which a request may carry.
_clone_enc = msgspec.json.Encoder()
_clone_dec = msgspec.json.Decoder(P.PageRec)


def clone(rec: P.PageRec) -> P.PageRec:
    return _clone_dec.decode(_clone_enc.encode(rec))


class Replication:
    """Replication methods of a `Manager` (see the module docstring)."""

    def _finish(self) -> None:
        """End of a step: replicate what changed. The step's messages go out at once, unless
        the step changed membership or a held step is ahead of them: those wait until every
        backup has acknowledged (docs/PROTOCOL.md section 4.1)."""
        step, self._step = self._step, []
        replicated = (self._dirty or self._members_dirty) and self.role == "active"
        membership = replicated and self._members_dirty
        held = self.replicas and self.role == "active"
        if not held or "replicate_after_act" in self.bugs or not (membership or self.holding):
            self.out.extend((d, m, None) for d, m in step)     # before the Replicate: the
            step = []                                          # forward is what is waited on
        if replicated:
            self._ship()
        self._dirty.clear()
        self._members_dirty = False
        if held and (step or replicated):
            if not self.held:
                self.held_since = self._now
            self.holding += bool(step)
            self.held.append((self.seq, step))    # an empty step: for the laggard check
            if len(self.held) > HELD_LIMIT:
                self._drop_laggards()
        self._release()

    def _ship_pending(self) -> None:
        """What the step that ends the term changed (a node declared dead starts a new
        one) goes to the backups before the term clears them: else a backup that takes
        over with no peer left would wait for the dead node for ever (it may not declare
        one dead alone)."""
        if self.replicas and (self._dirty or self._members_dirty):
            self._ship()

    def _ship(self) -> None:
        """Send the replicas what this step changed, under the next seq."""
        self.seq += 1
        members = self._members_msg() if self._members_dirty else None
        for q in self.replicas:
            changes = [clone(self.table[p]) for p in sorted(self._dirty)]
            self._direct(q, P.Replicate(seq=self.seq, changes=changes, members=members))
        self._dirty.clear()
        self._members_dirty = False

    def _drop_held(self) -> None:
        """Forget the held steps: they are never sent (a new term recovers from the nodes)."""
        self.held.clear()
        self.holding = 0

    def _drop_laggards(self) -> None:
        """A replica that beats but has not acknowledged HELD_LIMIT steps (snapshots
        included) is dropped like a silent one; its next heartbeat gets it a snapshot."""
        for q, acked in list(self.replicas.items()):
            if acked < self.held[0][0]:
                logger.warning("manager {}: backup {} acknowledged nothing for {} steps; "
                               "replicating without it", self.pid, q, len(self.held))
                del self.replicas[q]

    def _fits(self, msg: P.Replicate | P.Snapshot) -> bool:
        """Records from a peer name pages of ours (a snapshot: each at most once, in order)."""
        whole = isinstance(msg, P.Snapshot)
        pages = [r.page for r in (msg.pages if whole else msg.changes)]
        ok = valid_pages(pages, len(self.table)) if whole else \
            all(0 <= p < len(self.table) for p in pages)
        if not ok:
            logger.warning("manager {} ignores {} of pages {} from manager {}", self.pid,
                           P.type_name(msg), pages[:10], msg.sender)
        return ok

    def _direct(self, dest: int, msg: P.Msg) -> None:
        """Send at once, outside the held step (replication and role traffic)."""
        msg.sender, msg.epoch = self.pid, self.epoch
        self.out.append((dest, msg, None))

    def _release(self) -> None:
        upto = min(self.replicas.values(), default=self.seq)
        while self.held and self.held[0][0] <= upto:
            _, step = self.held.popleft()
            self.out.extend((d, m, None) for d, m in step)
            self.holding -= bool(step)
            self.held_since = self._now

    def _snapshot_to(self, q: int) -> None:
        """The records that differ from the initial layout (every other page is as laid
        out): a snapshot costs what the cluster has used, not its size."""
        self.replicas[q] = -1
        snap = [clone(rec) for rec in self.table.changed()]
        self._direct(q, P.Snapshot(seq=self.seq, pages=snap, members=self._members_msg()))

    def _apply(self, msg: P.Replicate | P.Snapshot) -> None:
        """A backup applies the active manager's log; a gap costs a snapshot."""
        if not self._fits(msg):
            return
        if isinstance(msg, P.Snapshot):
            self.table, self.seq, self.epoch = Table(self.layout, msg.pages), msg.seq, msg.epoch
            self._apply_members(msg.members)
            self.records_epoch = msg.epoch
        elif msg.epoch == self.epoch and msg.seq == self.seq + 1:
            for rec in msg.changes:
                self.table[rec.page] = rec
            self._apply_members(msg.members)
            self.seq, self.records_epoch = msg.seq, msg.epoch
        elif msg.epoch != self.epoch or msg.seq > self.seq:
            self._direct(msg.sender, P.SnapshotRequest())
            return
        self._direct(msg.sender, P.ReplicateAck(seq=self.seq))
