"""The central manager as a pure state machine: one of several replicas (primary first,
then backups), each passive, recovering or active. Messages and timer ticks go in, with the
time; messages to send come out. No socket, clock or thread: the daemon and the simulator
drive this same code.

Rules it keeps (docs/PROTOCOL.md sections 4 and 5):
- Replicate: every step that changes records ships them to the live backups with a
  sequence number; only a membership step's messages wait for their acknowledgement.
- A backup serves only after the earlier managers went silent for `liveness` heartbeats AND a
  node asked it (the node's request is the vote). The primary also starts serving by itself
  when no other manager is serving.
- Each term has an epoch no other manager can pick (epoch mod M is the manager's index);
  a manager that meets a newer active one steps down.
- A manager that starts serving first asks every node for its page table (Recover) and
  rebuilds its records from the answers before it serves.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from loguru import logger

from ivyzmq import protocol as P
from ivyzmq.bugs import check as check_bugs
from ivyzmq.manager import pages
from ivyzmq.manager.pages import Layout, Report, Table
from ivyzmq.manager.holders import Holders
from ivyzmq.manager.members import Members
from ivyzmq.manager.replication import Replication, clone
from ivyzmq.manager.roles import transition

PROBLEMS_KEPT = 1000      # the newest reconcile problems kept in Manager.problems

@dataclass
class Peer:
    last_beat: float
    role: str = "passive"
    epoch: int = 0
    seq: int = 0
    boot: int = 0


class Manager(Members, Replication, Holders):
    def __init__(self, pid: int, *, nodes: list[int], managers: list[int], pages: int,
                 now: float, boot: int = 0, heartbeat_interval: float = 0.5,
                 liveness: int = 3, redrive_timeout: float = 2.0, failback: bool = True,
                 initial_owner=None, bugs: frozenset[str] = frozenset(),
                 node_liveness: float | None = None, pause_gap: float | None = None,
                 replicas: int = 0):
        self.pid, self.nodes, self.managers = pid, nodes, managers
        self.bugs = check_bugs(bugs)   # broken variants (ivyzmq/bugs.py): simulator, tests
        self.index = managers.index(pid)
        self.boot = boot
        self.interval = heartbeat_interval
        self.dead_after = heartbeat_interval * liveness
        self.redrive_timeout = redrive_timeout
        self.failback = failback
        self.k = min(replicas, len(nodes) - 1)    # page replicas besides the owner
        self.layout = Layout(pages, len(nodes), self.k, initial_owner)
        self.table = Table(self.layout)    # records that may differ from the layout
        self.role = "passive"
        self.epoch = 0            # the term this manager serves in, or follows
        self.max_epoch = 0        # the highest epoch seen anywhere
        self.seq = 0              # replication log position
        self.started = now
        self.peers = {q: Peer(last_beat=now) for q in managers if q != pid}
        self.last_beat_sent = -1e9
        self.replicas: dict[int, int] = {}    # backup -> highest seq it acknowledged
        self.held: deque[tuple[int, list]] = deque()
        self.held_since = 0.0
        self.holding = 0          # held steps that have messages
        self.reports: dict[int, tuple[Report, int, bool]] = {}   # node -> (pages, inc, member)
        self.behind: dict[int, int] = {}     # reporter -> the epoch it was at
        self.newest_served = 0               # the newest term a reporter heard serving
        self.recover_sent = 0.0
        self.sent_at: dict[int, float] = {}   # page -> when its operation last sent anything
        self.confirmed: dict[int, list[tuple[int, int]]] = {}   # node -> (page, rid) to ack
        self.problems: list[str] = []
        self.out: list[tuple[int, P.Msg, None]] = []
        self._step: list[tuple[int, P.Msg]] = []
        self._dirty: set[int] = set()
        self._now = now
        self._init_members(now, node_liveness, pause_gap)
        self._init_holders()

    # -- helpers -----------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        return self.role == "active"

    def alive(self, q: int) -> bool:
        return self._now - self.peers[q].last_beat < self.dead_after

    def drain(self) -> list[tuple[int, P.Msg, None]]:
        out, self.out = self.out, []
        return out

    def _send(self, dest: int, msg: P.Msg) -> None:
        msg.sender, msg.epoch = self.pid, self.epoch
        self._step.append((dest, msg))

    def _emit(self, out: pages.Out, page: int | None = None) -> None:
        for dest, msg in out:
            self._send(dest, msg)
        if out and page is not None:
            self.sent_at[page] = self._now

    def fire(self, event: str) -> None:
        """Move the role machine; the table in roles.py says what each event does."""
        new_role, action = transition(self.role, event)
        if action is None:
            logger.debug("manager {}: {} ignored in role {}", self.pid, event, self.role)
            return
        logger.info("manager {}: {} -> {} on {}", self.pid, self.role, new_role, event)
        self.role = new_role
        getattr(self, action)()

    # -- role actions ----------------------------------------------------------------------

    def _begin_recovery(self) -> None:
        self.recovery_from = self.max_epoch
        self._fetch_records()
        m = len(self.managers)
        self._ship_pending()    # what ends the term (a death, say) reaches the backups
        self.epoch = self.max_epoch = (self.max_epoch // m + 1) * m + self.index
        self.replicas.clear()
        self._drop_held()
        self.reports, self.behind, self.newest_served = {}, {}, 0
        self.recover_sent = self.round_began = self._now
        self.round_wanted = False
        self.assigning.clear()
        if "trust_replica" in self.bugs:
            self.fire("recovered")
            return
        for n in self.nodes:
            self._direct(n, P.Recover(boot=self.boot))

    def _serve(self) -> None:
        trust = "trust_replica" in self.bugs
        used = {} if trust else self._usable_reports()
        for n in [] if trust else self._settle_members(used):
            self._send(n, P.Fenced(inc=self.members[n].inc))
        live = sorted(used)
        todo = sorted(self.table.keys()) if trust else self._to_reconcile(used)
        for p in todo:
            rec = self.table[p]
            self._dirty.add(p)
            if trust:
                self.sent_at[p] = self._now
                continue
            reports = {n: r[p] for n, r in used.items()}
            for problem in pages.reconcile(rec, reports, self.k, live):
                logger.error("manager {}: {}", self.pid, problem)
                self.problems = self.problems[1 - PROBLEMS_KEPT:] + [problem]
            self._assign(rec, reports)
        self._settle_holders(len(live))     # owners learn their pages before any forward
        for rec in [] if trust else (self.table[p] for p in todo):
            if rec.lost:
                self._emit([m for q in rec.queue for m in pages.lost_reply(rec, q)])
                rec.queue = []
            elif rec.op is not None:
                self.sent_at[rec.page] = self._now
            elif rec.queue:
                self._emit(pages.start(rec, rec.queue.pop(0), bugs=self.bugs), rec.page)
        self.reports = {}
        self.records_epoch = self.epoch
        for q, peer in self.peers.items():
            if self.alive(q) and peer.role == "passive":
                self._snapshot_to(q)
        logger.info("manager {} serves epoch {}", self.pid, self.epoch)

    def _step_down(self) -> None:
        self.assigning.clear()
        self.confirmed.clear()
        self.replicas.clear()
        self._drop_held()
        self.reports = {}

    def _hand_back(self) -> None:
        primary = self.managers[0]
        self._direct(primary, P.Handback())
        self._step_down()

    # -- input -----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self._now = now
        self._watch(now)
        if now - self.last_beat_sent >= self.interval:
            self.last_beat_sent = now
            self._direct(P.HEARTBEAT, P.Heartbeat(role=self.role, seq=self.seq, boot=self.boot))
        if self.role == "passive" and self.index == 0 and self._nobody_serving(now):
            self.fire("alone")
        elif self.role == "recovering" and self._round_done():
            self.fire("recovered")
        elif self.role == "recovering" and now - self.recover_sent >= self.interval:
            self.recover_sent = now
            for n in self.nodes:
                if n not in self.reports:
                    self._direct(n, P.Recover(boot=self.boot))
        elif self.role == "active":
            self._resend_assigns(now)
            for n, acks in self.confirmed.items():
                self._send(n, P.Confirmed(acks=acks))
            self.confirmed.clear()
            for q in [q for q in self.replicas if not self.alive(q)]:
                logger.warning("manager {}: backup {} is silent; replicating without it",
                               self.pid, q)
                del self.replicas[q]
            if self.held and now - self.held_since >= 2 * self.interval:
                # A backup that is alive but has not acknowledged for a while lost a
                # Replicate (say, a connection reset): a snapshot brings it up to date.
                self.held_since = now
                for q, acked in list(self.replicas.items()):
                    if acked < self.held[0][0]:
                        self._snapshot_to(q)
            for p, sent in list(self.sent_at.items()):   # pages whose operations sent
                rec = self.table[p]
                if rec.op is None:
                    del self.sent_at[p]
                elif now - sent >= self.redrive_timeout:
                    self._emit(pages.pending_messages(rec), p)
            if self._primary_is_back():
                self.fire("primary_back")
            elif self.round_wanted:
                self.fire("members_changed")
        self._finish()

    def _nobody_serving(self, now: float) -> bool:
        """For the primary: no live peer serves, and each live peer has been heard from
        (one not heard since we started may still be serving: wait out the grace; after a
        pause of ours, the peers' queued heartbeats may not be read yet: wait too)."""
        if now - self.resumed < self.dead_after:
            return False
        return not any(self.alive(q) and (p.role != "passive" or p.last_beat <= self.started)
                       for q, p in self.peers.items())

    def _primary_is_back(self) -> bool:
        """Hand back once the primary follows our log. Under load some step is always in
        flight; the primary's recovery round takes those over from the nodes' reports."""
        primary = self.managers[0]
        return (self.failback and self.index != 0 and self.alive(primary)
                and self.peers[primary].role == "passive"
                and self.replicas.get(primary, -1) >= 0)

    def receive(self, now: float, msg: P.Msg) -> None:
        self._now = now
        self._notice_gap(now)
        if msg.sender in self.peers:
            self._from_peer(msg)
        elif msg.sender in self.nodes:
            self._from_node(msg)
        else:
            logger.warning("manager {} ignores {} from unknown sender {}", self.pid,
                           P.type_name(msg), msg.sender)
        self._finish()

    def _from_peer(self, msg: P.Msg) -> None:
        q = msg.sender
        self.max_epoch = max(self.max_epoch, msg.epoch)
        if isinstance(msg, P.Heartbeat):
            peer = self.peers[q]
            restarted = peer.boot != msg.boot
            peer.last_beat, peer.role, peer.epoch, peer.seq, peer.boot = \
                self._now, msg.role, msg.epoch, msg.seq, msg.boot
            if msg.role == "active":
                self.peer_served_at = self._now     # it may be granting leases
            if msg.role != "passive" and msg.epoch > self.epoch:
                self.fire("newer_epoch")
            elif self.role == "active" and msg.role == "passive" and \
                    (q not in self.replicas or restarted):
                self._snapshot_to(q)
            return
        if isinstance(msg, P.Snapshot) and self._fetched(msg):
            return
        if msg.epoch < self.max_epoch and isinstance(msg, (P.Replicate, P.Snapshot, P.Handback)):
            logger.debug("manager {} drops {} of old epoch {}", self.pid, P.type_name(msg),
                         msg.epoch)
            return
        if isinstance(msg, P.ReplicateAck):
            if self.role == "active" and q in self.replicas and msg.epoch == self.epoch:
                self.replicas[q] = max(self.replicas[q], msg.seq)
        elif isinstance(msg, P.SnapshotRequest):
            if self.role == "active":
                self._snapshot_to(q)
            elif self.role == "passive":     # a manager starting a term wants our records
                self._direct(q, P.Snapshot(seq=self.seq, members=self._members_msg(),
                                           pages=[clone(r) for r in self.table.changed()]))
        elif isinstance(msg, (P.Replicate, P.Snapshot)):
            if self.role != "passive":
                self.fire("newer_epoch")
            self._apply(msg)
        elif isinstance(msg, P.Handback):
            self.fire("handback")
        else:
            logger.warning("manager {} ignores {} from manager {}", self.pid,
                           P.type_name(msg), q)

    def _from_node(self, msg: P.Msg) -> None:
        n = msg.sender
        if msg.epoch > self.max_epoch:
            self.max_epoch = msg.epoch
        if msg.epoch > self.epoch and self.role != "passive":
            self.fire("newer_epoch")     # a newer manager took over while we were away
        if not self._from_member(msg):
            return
        if isinstance(msg, P.AssignAck):
            if msg.epoch == self.epoch:
                self.assigning.pop(n, None)
            return
        if isinstance(msg, P.TableReport):
            if msg.refused and msg.epoch == self.epoch:
                self.fire("refused")     # our own epoch from before a restart: pick anew
            elif self.role == "recovering" and msg.epoch == self.epoch and \
                    pages.valid_pages([r.page for r in msg.pages], len(self.table)):
                self.reports[n] = (Report(msg, self.layout), msg.inc, msg.member)
                self.behind[n] = msg.was
                self.newest_served = max(self.newest_served, msg.served)
                if self._round_done():
                    self.fire("recovered")
            return
        if not isinstance(msg, P.IvyMsg) or not 0 <= msg.page < len(self.table):
            logger.warning("manager {} ignores {} from node {}", self.pid, P.type_name(msg), n)
            return
        if self.role == "passive":
            self._vote(msg)
            if self.role == "passive":
                return
        if self.role == "recovering":
            self._send(n, P.Ack(page=msg.page, rid=msg.rid))   # alive; ask again later
            return
        self._ivy(msg)

    def _vote(self, msg: P.IvyMsg) -> None:
        """A node asks a passive manager: point it at the one in charge, or take over."""
        serving = [q for q, p in self.peers.items() if self.alive(q) and p.role != "passive"]
        if serving:
            hint = max(serving, key=lambda q: self.peers[q].epoch)
        else:
            earlier = [q for q in self.managers[:self.index] if self.alive(q)]
            hint = earlier[0] if earlier else None
        if hint is None and self._now - max(self.started, self.resumed) < self.dead_after:
            # Just started, or just back from a pause (the peers' heartbeats that queued
            # meanwhile may not be read yet): peers may be alive; ask me again shortly.
            hint = self.pid
        if hint is not None:
            self._direct(msg.sender, P.NotActive(hint=hint))
            return
        self.fire("vote")
        self._send(msg.sender, P.Ack(page=msg.page, rid=msg.rid))

    def _ivy(self, msg: P.IvyMsg) -> None:
        rec = self.table[msg.page]
        n = msg.sender
        if isinstance(msg, (P.ReadRequest, P.WriteRequest)):
            if msg.requester != n:
                logger.warning("manager {}: {} from {} names requester {}; ignored", self.pid,
                               P.type_name(msg), n, msg.requester)
                return
            kind = "read" if isinstance(msg, P.ReadRequest) else "write"
            if rec.lost:
                for dest, lost in pages.lost_reply(rec, P.Req(kind, n, msg.rid)):
                    self._direct(dest, lost)
                return
            new, out = pages.request(rec, P.Req(kind, n, msg.rid), bugs=self.bugs)
            if not new:
                # "Known, wait": depends on no state change, so not held behind the
                # backups' acknowledgements - a node must not think us silent meanwhile.
                self._direct(n, P.Ack(page=msg.page, rid=msg.rid))
        elif isinstance(msg, P.InvalidateConfirmation):
            new, out = pages.invalidated(rec, msg, bugs=self.bugs)
        elif isinstance(msg, (P.ReadConfirmation, P.WriteConfirmation)):
            new, out = pages.confirmed(rec, msg, bugs=self.bugs)
            acks = self.confirmed.setdefault(n, [])
            if len(acks) < 2 * len(self.table):      # a node re-sends any left out
                acks.append((msg.page, msg.rid))
        else:
            logger.warning("manager {} ignores {} from node {}", self.pid, P.type_name(msg), n)
            return
        if new:
            self._dirty.add(msg.page)
        self._emit(out, msg.page)

    # -- readout -----------------------------------------------------------------------------

    def status_rows(self) -> list[P.RecordRow]:
        """The page records as a status reply shows them (shared by the daemon and tools)."""
        return self.table.rows()

    def page_view(self, now: float, page: int) -> P.PageReply:
        """One page's record and operation, for a client explaining a time-out."""
        r = self.table.get(page) or self.layout.record(page)
        sent = self.sent_at.get(page) if r.op is not None else None
        return P.PageReply(page=page, role=self.role, serving=self.serving,
                           record=pages.row(r), op=r.op,
                           sent=None if sent is None else now - sent, queue=list(r.queue))
