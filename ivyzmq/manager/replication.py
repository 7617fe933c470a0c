"""The serving manager's replication (docs/PROTOCOL.md section 4.1): each step's changed
page (and node) records go to the backups with a sequence number, and the step's messages
are held until every backup has acknowledged them; a backup that is new or behind gets a
snapshot. `Manager` (manager/core.py) inherits these methods."""
from __future__ import annotations

import msgspec

from ivyzmq import protocol as P

_clone_enc = msgspec.msgpack.Encoder()
_clone_dec = msgspec.msgpack.Decoder(P.PageRec)


def clone(rec: P.PageRec) -> P.PageRec:
    return _clone_dec.decode(_clone_enc.encode(rec))


class Replication:
    """Replication methods of a `Manager` (see the module docstring)."""

    def _finish(self) -> None:
        """End of a step: replicate what changed, hold the step's messages until acknowledged."""
        step, self._step = self._step, []
        if (self._dirty or self._members_dirty) and self.role == "active":
            self.seq += 1
            members = self._members_msg() if self._members_dirty else None
            for q in self.replicas:
                changes = [clone(self.table[p]) for p in sorted(self._dirty)]
                self._direct(q, P.Replicate(seq=self.seq, changes=changes, members=members))
        self._dirty.clear()
        self._members_dirty = False
        if step:
            if self.replicas and self.role == "active" and \
                    "replicate_after_act" not in self.bugs:
                if not self.held:
                    self.held_since = self._now
                self.held.append((self.seq, step))
            else:
                self.out.extend((d, m, None) for d, m in step)
        self._release()

    def _direct(self, dest: int, msg: P.Msg) -> None:
        """Send at once, outside the held step (replication and role traffic)."""
        msg.sender, msg.epoch = self.pid, self.epoch
        self.out.append((dest, msg, None))

    def _release(self) -> None:
        upto = min(self.replicas.values(), default=self.seq)
        while self.held and self.held[0][0] <= upto:
            _, step = self.held.popleft()
            self.out.extend((d, m, None) for d, m in step)
            self.held_since = self._now

    def _snapshot_to(self, q: int) -> None:
        self.replicas[q] = -1
        snap = [clone(rec) for rec in self.table]
        self._direct(q, P.Snapshot(seq=self.seq, pages=snap, members=self._members_msg()))

    def _apply(self, msg: P.Replicate | P.Snapshot) -> None:
        """A backup applies the active manager's log; a gap costs a snapshot."""
        if isinstance(msg, P.Snapshot):
            self.table, self.seq, self.epoch = list(msg.pages), msg.seq, msg.epoch
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
