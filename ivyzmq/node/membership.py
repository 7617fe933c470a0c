"""A node's membership in the cluster (docs/PROTOCOL.md section 6): its incarnation, its
admission by the serving manager, the beats that keep it alive in the managers' eyes, the
lease under which it may answer local hits, and what it does when it is declared dead
(fenced) or told that a page is lost; and the memory as laid out at start, which an
emptied node no longer has (a page's state is made when first touched), with what a node
reports of it to a recovery round and to tools. `Node` (node/core.py) inherits these methods.

Why a lease: a manager declares a silent node dead and lets writes go on without it. A node
that was only paused must not, on waking, serve a read from its old copy or write its old
page: it serves local hits only while the serving manager has answered one of its beats
within the last `lease` seconds, and `lease` is shorter than the managers' node liveness,
so by the time a manager decides a node is dead, that node has stopped serving by itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from ivyzmq import protocol as P
from ivyzmq.node.state import NIL, RW, PageState


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a local operation failed, for the client: `code` picks the exception class."""

    code: P.ErrorCode
    text: str
    peer: int | None = None      # the process it is about (a lost page's dead owner)
    maybe: bool = False          # the operation may have taken effect (a write being synced)

    def __str__(self) -> str:
        return self.text


class Membership:
    """Membership state and handlers of a `Node` (see the module docstring)."""

    def _init_membership(self, inc: int, lease: float | None, beat_interval: float) -> None:
        self.inc = inc                  # this incarnation; a fenced node takes the next
        self.member = lease is None     # without leases (a node alone, in unit tests): yes
        self.lease = lease              # None: local hits need no lease
        self.lease_until = 0.0
        self.beat_interval = beat_interval
        self.last_beat = -1e9
        self.want_lease = False         # a local hit waits for a beat to be answered
        self.awake_at = None            # this core's last step (a longer gap: it slept)
        self.slept_at: int | None = None   # the epoch it slept at, until a term serves

    def _notice_sleep(self, now: float) -> None:
        """A gap longer than the lease between two steps (paused, or starved): the Recovers
        in the inbox may come from a round that finished without this node, which declared
        it dead. Until it hears a term serve, it reports the epoch it slept at as the one it
        was at (P.TableReport.was), so that a later round still tells it from a member
        even if every manager that held it dead has died since (docs/PROTOCOL.md 6.1)."""
        if self.lease is not None and self.awake_at is not None and \
                now - self.awake_at > self.lease and self.slept_at is None:
            self.slept_at = self.epoch
        self.awake_at = now

    def may_hit(self, now: float) -> bool:
        """May this node answer a local read or write without a manager right now?"""
        return self.member and (self.lease is None or now < self.lease_until
                                or "no_lease" in self.bugs)

    def wait_of(self, now: float, page: int) -> P.WaitReply:
        """What the local operations on `page` wait for at `now`, read-only: the pending
        fault and the manager it was sent to, or the lease, or admission (asked by a client
        after a time-out, never on the hot path). Times are seconds before `now`."""
        st = self.pages.peek(page)
        renewed = self.lease_until - self.lease if self.lease and self.lease_until else None
        reply = P.WaitReply(page=page, waits="nothing", manager=self.manager,
                            queued=len(st.local),
                            heard=now - self.last_heard if self.last_heard else None,
                            lease=None if renewed is None else now - renewed)
        if st.pending is not None:
            reply.waits, reply.kind, reply.rid = "fault", st.pending.kind, st.pending.rid
            item = self.outstanding.get(st.pending.rid)
            if item is not None:
                reply.began, reply.asked = now - item.began, now - item.first
        elif st.local and not self.member:
            reply.waits = "admission"
        elif st.local and not self.may_hit(now):
            reply.waits = "lease"
        return reply

    def _beat(self, now: float) -> None:
        self.last_beat = now
        for m in self.managers:
            self._send(m, P.NodeBeat(inc=self.inc, member=self.member, t=now))

    def _beats(self, now: float) -> None:
        """The regular beat, and an early one when a local hit waits for its lease. A node
        without a lease (alone, in unit tests) is not watched and does not beat."""
        if self.lease is None:
            return
        due = self.beat_interval
        if self.want_lease or not self.member:
            due = min(due, self.retry_timeout / 4)
        if now - self.last_beat >= due:
            self._beat(now)

    def _wait_lease(self, now: float) -> None:
        if not self.want_lease:
            self.want_lease = True
            self._beat(now)

    def _advance_all(self, now: float) -> None:
        self.want_lease = False
        for p, st in list(self.pages.items()):     # an untouched page has no operation
            if st.local:
                self._advance(now, p)

    def _on_beat_ack(self, now, msg: P.NodeBeatAck, _payload) -> None:
        if self.member and self.lease is not None:
            self.lease_until = max(self.lease_until, msg.t + self.lease)
            if self.want_lease:
                self._advance_all(now)

    def _on_admit(self, now, msg: P.Admit, _payload) -> None:
        if msg.inc != self.inc or self.member:
            return
        logger.info("node {} admitted as incarnation {}{}", self.pid, self.inc,
                    "" if msg.fresh else " with an empty memory")
        if not msg.fresh:
            self._drop_pages()
        self.member = True
        self.lease_until = now + (self.lease or 0.0)
        self._advance_all(now)

    def _on_fenced(self, now, msg: P.Fenced, _payload) -> None:
        if msg.inc != self.inc:
            return
        logger.warning("node {}: incarnation {} was declared dead; dropping every page and "
                       "joining again", self.pid, self.inc)
        for st in self.pages.values():
            if st.writing:      # its replicas may hold it: it may have taken effect
                self.done.append((st.local.pop(0).opid, None, Failure(
                    P.ErrorCode.FENCED, f"node {self.pid} was declared dead while the write "
                    "reached its replicas; it may have taken effect", maybe=True)))
            self._fail_local(st, P.ErrorCode.FENCED, f"node {self.pid} was declared dead "
                             "while the operation waited; it rejoins with an empty memory")
        self._drop_pages()
        self.outstanding.clear()
        self.inc += 1
        self.member, self.lease_until = False, 0.0
        self._beat(now)

    def _on_lost(self, now, msg: P.Lost, _payload) -> None:
        st = self.pages[msg.page]
        if st.pending is None or st.pending.rid != msg.rid:
            return          # answered already (the page arrived after all), or stale
        self.outstanding.pop(msg.rid, None)
        st.pending = None
        self._fail_local(st, P.ErrorCode.LOST, f"page {msg.page} is lost: its owner, node "
                         f"{msg.owner}, died holding the only copy", msg.owner)

    def _fail_local(self, st, code: P.ErrorCode, text: str, peer: int | None = None) -> None:
        while st.local:
            self.done.append((st.local.pop(0).opid, None, Failure(code, text, peer)))

    def _drop_pages(self) -> None:
        """Forget every page (in place: an embedded reader holds the data list); from now
        on an untouched page is empty, not as laid out at start."""
        for st in self.pages.values():
            st.is_owner, st.access, st.pending = False, "Nil", None
            st.handoff, st.handoff_data, st.opseq = None, None, 0
            st.version, st.holders, st.unacked, st.staged = (0, 0), [], [], None
            st.writing, st.grant, st.deferred = False, None, []
        self.pages.empty = True
        self.data[:] = [None] * len(self.data)
        self.rep.clear()
        self.syncing.clear()

    # -- the memory as laid out, and what differs from it ----------------------------------

    def _touch(self, page: int) -> PageState:
        """A page's state when first touched: as laid out at start (docs/PROTOCOL.md
        section 1: owner with ReadWrite and zeros, or a replica of zeros at version (0, 0)
        on its initial holders), or empty once the node's memory was emptied."""
        st = PageState()
        if self.pages.empty:
            return st
        owner = self.owner_of(page)
        if owner == self.pid:
            st.is_owner, st.access, st.holders = True, RW, list(self.pages.owned.holders)
            self.data[page] = self.zero
        elif self.pid in P.initial_holders(owner, self.n_nodes, self.k):
            self.rep[page] = ((0, 0), self.zero)
        return st

    def report(self) -> list[P.PageReport]:
        """The pages whose state differs from their base (P.base_report), in page order:
        only touched pages can."""
        rows = []
        for p in sorted(self.pages.keys()):
            st = self.pages[p]
            row = P.PageReport(p, st.is_owner, st.access, st.opseq, st.last_rid, st.pending,
                               st.handoff, self.replica_version(p))
            if row != self._base_report(p):
                rows.append(row)
        return rows

    def _base_report(self, page: int) -> P.PageReport:
        owner = self.owner_of(page)
        return P.base_report(page, self.pid, owner,
                             P.initial_holders(owner, self.n_nodes, self.k), self.pages.empty)

    def status_rows(self) -> list[P.PageRow]:
        """The page table as a status reply shows it (shared by the daemon and tools)."""
        laid = not self.pages.empty     # untouched pages are as laid out (by their owner)
        held = [laid and self.pid in P.initial_holders(o, self.n_nodes, self.k)
                for o in range(self.n_nodes)]
        get, owner_of, rows = self.pages.get, self.owner_of, []
        for p in range(len(self.pages)):
            st = get(p)
            if st is not None:
                rows.append(P.PageRow(p, st.is_owner, st.access, p in self.rep))
            else:
                own = laid and owner_of(p) == self.pid
                rows.append(P.PageRow(p, own, RW if own else NIL, held[owner_of(p)]))
        return rows
