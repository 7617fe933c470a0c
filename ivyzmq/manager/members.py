"""The manager's view of the nodes (docs/PROTOCOL.md section 6): which incarnation of each
node is a member, which are dead, and when each was last heard from. `Manager`
(manager/core.py) inherits these methods.

Every manager watches the nodes' beats; only the serving one decides: it admits a new
incarnation, answers beats with the lease acknowledgement, and declares a node dead after
`node_liveness` seconds of silence - fencing that incarnation and starting a new term,
whose recovery round (without the dead node) settles every page it owned, held, was
reading or was being sent: passed to a replica holder, or lost (replicas: 0). The node
records are replicated like the page records, so a backup that takes over knows who is
dead.

A manager that was itself not running (paused, or holding its inbox for step_delay) cannot
judge anybody's silence: such a gap restarts every node's clock.
"""
from __future__ import annotations

from loguru import logger

from ivyzmq import protocol as P
from ivyzmq.manager.pages import Table

START_GRACE = 2.0      # a manager just started gives a node not heard yet this long (s)


class Members:
    """Node records and liveness of a `Manager` (see the module docstring)."""

    def _init_members(self, now: float, node_liveness: float | None,
                      pause_gap: float | None) -> None:
        self.node_liveness = node_liveness    # None: nodes are not watched (unit tests)
        self.pause_gap = pause_gap            # ticks this far apart: we were paused
        self.members = {n: P.Member(n) for n in self.nodes}
        self.node_seen = {n: now + START_GRACE for n in self.nodes}
        self.heard_inc = {n: 0 for n in self.nodes}   # the newest incarnation heard beating
        self._members_dirty = False
        self._last_tick = now
        self.resumed = -1e9          # when a gap in our own ticks last ended (a pause)
        self.records_epoch = 0       # the term whose log our records follow
        self.recovery_from = 0       # the highest epoch seen when our recovery began
        self.fetching: int | None = None      # the peer whose records a new term awaits
        self.round_began = 0.0
        self.peer_served_at = -1e9     # when a peer last said it serves
        self.fetch_since = 0.0

    @property
    def watching(self) -> bool:
        return self.node_liveness is not None

    def dead_nodes(self) -> list[int]:
        return [n for n, m in self.members.items() if m.dead]

    def node_live(self, n: int) -> bool:
        """Must the recovery round wait for node n? Not for a node our records hold dead -
        unless the records may be stale (a newer term than theirs was seen, whose log we
        did not follow: it may have admitted a newer incarnation) - nor for one silent for
        node_liveness while we hear a peer (see `_may_declare`); with stale records, silent
        since our round began."""
        if not self.watching:
            return True
        heard = self._may_declare()
        if self.members[n].dead and self.records_epoch >= self.recovery_from:
            return False
        seen = self._silent_since(n)
        if self.records_epoch < self.recovery_from:
            # A newer term we did not follow may still be granting this node leases,
            # until its manager hears of our epoch: count its silence from our start.
            seen = max(seen, self.round_began)
        return not (heard and self._now - seen >= self.node_liveness)

    def _silent_since(self, n: int) -> float:
        """Since when node n's silence counts: its last word to us, or the last time we
        heard another manager serve, if later - that one may have renewed n's lease
        meanwhile, so the lease argument of the module docstring holds only from then."""
        return max(self.node_seen[n], self.peer_served_at)

    def _may_declare(self) -> bool:
        """Only a manager that hears another manager (or has none) declares nodes dead. One
        cut off from every peer may be the old side of a partition whose other side serves
        too: there a node silent to us may be alive, following the other manager and
        serving its copies under that one's lease, so letting writes go on without it
        could let it read stale data. It waits instead (as for a node's death together
        with every other manager's). "Hears" means a heartbeat within the last two
        intervals, not the peer's whole liveness window: a cut that silences a node and
        the peers at once must not leave the peers counted alive past the node's time."""
        return not self.peers or "declare_alone" in self.bugs or \
            any(self._now - p.last_beat < 2 * self.interval for p in self.peers.values())

    def hold(self, until: float) -> None:
        """The inbox is not read before `until` (step_delay): nobody's silence counts."""
        for n in self.nodes:
            self.node_seen[n] = max(self.node_seen[n], until)

    def _notice_gap(self, now: float) -> None:
        """A gap in our own ticks (we were paused): forgive everybody's silence over it,
        and remember when we came back (what queued meanwhile may not be read yet)."""
        if self.pause_gap is not None and now - self._last_tick > self.pause_gap:
            self.hold(now)
            self.resumed = self._last_tick = now

    def _watch(self, now: float) -> None:
        """Each tick: notice a gap; the serving manager declares silent nodes dead."""
        self._notice_gap(now)
        self._last_tick = now
        if self.role != "active" or not self.watching or not self._may_declare():
            return
        for n in self.nodes:
            if not self.members[n].dead and now - self._silent_since(n) >= self.node_liveness:
                logger.warning("manager {}: node {} silent for {:.2f} s: declared dead",
                               self.pid, n, now - self.node_seen[n])
                self._declare_dead(n)

    def _declare_dead(self, n: int) -> None:
        m = self.members[n]
        self.members[n] = P.Member(n, m.inc, True, m.fresh)
        self._members_dirty = True
        self._send(n, P.Fenced(inc=m.inc))
        self._members_changed()     # a new term settles its pages (manager/holders.py)

    def _admit(self, n: int, inc: int) -> None:
        m = self.members[n]
        if m.inc and not m.dead:
            self._declare_dead(n)       # a new incarnation: the old one is gone
            m = self.members[n]
        fresh = not m.inc and not m.dead
        self.members[n] = P.Member(n, inc, False, fresh)
        self._members_dirty = True
        logger.info("manager {}: node {} joins as incarnation {}{}", self.pid, n, inc,
                    "" if fresh else " with an empty memory")
        self._send(n, P.Admit(inc=inc, fresh=fresh))

    def _from_member(self, msg: P.Msg) -> bool:
        """Liveness and membership of whatever a node sends; False when the message must
        be ignored (a beat is handled here; a node that is not a member is not served)."""
        n = msg.sender
        if not self.watching:
            return True
        if isinstance(msg, P.NodeBeat):
            self._on_beat(msg)
            return False
        self.node_seen[n] = self._now
        m = self.members[n]
        if self.role == "active" and (m.dead or not m.inc):
            return isinstance(msg, P.TableReport)   # not a member: not served
        return True            # (a passive manager counts a request as a vote)

    def _on_beat(self, msg: P.NodeBeat) -> None:
        n, m = msg.sender, self.members[msg.sender]
        self.heard_inc[n] = max(self.heard_inc[n], msg.inc)
        if msg.inc > m.inc and msg.member:
            self.node_seen[n] = self._now   # alive: a round must hear its report
        if msg.inc < m.inc or (msg.inc == m.inc and m.dead) or (msg.inc > m.inc and msg.member):
            # An old incarnation, a dead one, or one admitted in a term whose records we
            # lack (both managers restarted): its pages are not in our records.
            if self.role == "active":
                self._direct(n, P.Fenced(inc=msg.inc))
            return
        self.node_seen[n] = self._now
        if self.role != "active":
            return
        if msg.inc > m.inc:
            self._admit(n, msg.inc)
        elif not msg.member:
            self._send(n, P.Admit(inc=m.inc, fresh=m.fresh))   # our Admit was lost
        else:
            self._direct(n, P.NodeBeatAck(t=msg.t))
            self._members_changed(joined=True)

    # -- the recovery round -------------------------------------------------------------------

    def _usable_reports(self) -> dict[int, list[P.PageReport]]:
        """The reports a new term rebuilds from: those of admitted incarnations that our
        records do not hold dead (one newer than our records was admitted in a term whose
        records we lack: its pages are real). Reports of incarnations never admitted count
        only at a cold start of the cluster - no member reported and the records know no
        earlier incarnation of that node - since a restarted node's initial pages are not
        the cluster's pages - or when the records admitted that incarnation keeping its
        initial pages and our Admit has not reached it yet (it never served anything).
        A member that had not reached the newest term a node heard served was declared
        dead by that term's round (which waits for every live member), though our records
        may not know it. A report of an incarnation that a newer one has replaced since
        (it died during the round) is stale."""
        if not self.watching:
            return {n: r for n, (r, _, _) in self.reports.items()}
        rec = self.members
        used = {n: r for n, (r, inc, member) in self.reports.items()
                if self.behind[n] >= self.newest_served and inc >= self.heard_inc[n] and (
                    member and (inc > rec[n].inc or inc == rec[n].inc and not rec[n].dead)
                    or self._admitted_late(n) and rec[n].fresh)}
        return used or {n: r for n, (r, _, member) in self.reports.items()
                        if not member and not rec[n].inc and not rec[n].dead}

    def _to_reconcile(self, used: dict) -> list[int]:
        """The pages a round rebuilds: those whose record may differ from the layout, those
        a node listed, and those laid out on a node that did not report as laid out (dead,
        not heard, or with an emptied memory). On any other page the record and every
        report are as laid out, and reconcile would leave the record as it is."""
        todo = set(self.table.keys())
        for r in used.values():
            todo.update(r.keys())
        odd = {n for n in self.nodes if n not in used or used[n].empty}
        if odd:
            todo.update(self.layout.pages_of(odd))
        return sorted(todo)

    def _settle_members(self, used: dict[int, list[P.PageReport]]) -> list[int]:
        """After the recovery round: reporters become members, the others are dead.
        Returns the nodes newly found dead, whose pages the caller loses."""
        gone = []
        for n in self.nodes:
            if n in used:
                _, inc, member = self.reports[n]
                if not member:
                    self._send(n, P.Admit(inc=inc, fresh=True))
                self.members[n] = P.Member(n, inc, False, self.members[n].fresh or not member)
            elif self._admitted_late(n):
                continue        # its Admit is on its way: a member with an empty memory
            elif self.watching and not self.members[n].dead:
                m = self.members[n]
                self.members[n] = P.Member(n, m.inc, True, m.fresh)
                gone.append(n)
        self._members_dirty = True
        return gone

    def _admitted_late(self, n: int) -> bool:
        """n reported as the incarnation our records admitted, but before our Admit
        reached it (its report holds only tentative pages: used only if the records kept
        its initial pages, see `_usable_reports`)."""
        if n not in self.reports or not self.watching:
            return False
        _, inc, member = self.reports[n]
        m = self.members[n]
        return not member and m.inc == inc and not m.dead

    def _members_msg(self) -> list[P.Member]:
        return [self.members[n] for n in self.nodes]

    def _apply_members(self, members: list[P.Member] | None) -> None:
        """A backup takes the serving manager's node records."""
        for m in members or ():
            if m.node in self.members:
                self.members[m.node] = m

    def _round_done(self) -> bool:
        """The recovery round is over when the freshest live peer's records are in (or it
        went silent) and every node has reported or is dead."""
        if self.fetching is not None and self._now - self.fetch_since < self.dead_after:
            return False
        return all(n in self.reports or not self.node_live(n) for n in self.nodes)

    def _fetch_records(self) -> None:
        """Starting a term: the records are the authority for the nodes that will not
        report (the dead), so take the freshest ones a live peer has, if newer than ours."""
        live = [q for q in self.peers if self.alive(q)]
        best = max(live, key=lambda q: (self.peers[q].epoch, self.peers[q].seq), default=None)
        self.fetching = None
        if best is not None and (self.peers[best].epoch, self.peers[best].seq) > \
                (self.epoch, self.seq):
            self.fetching, self.fetch_since = best, self._now
            self._direct(best, P.SnapshotRequest())

    def _fetched(self, msg: P.Snapshot) -> bool:
        """The records asked for by `_fetch_records` arrived: take them."""
        if self.role != "recovering" or msg.sender != self.fetching:
            return False
        if not self._fits(msg):
            return True
        self.table, self.seq, self.fetching = Table(self.layout, msg.pages), msg.seq, None
        self.records_epoch = msg.epoch
        self._apply_members(msg.members)
        if self._round_done():
            self.fire("recovered")
        return True
