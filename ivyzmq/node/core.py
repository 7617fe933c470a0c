"""The process node as a pure state machine: messages, local operations and timer ticks go in;
messages to send and finished operations come out. No socket, clock or thread in here - the
daemon, the embedded API and the simulator all drive this same code.

A node keeps, per page: whether it owns it, its access (Nil / Read / ReadWrite), the bytes
when it has access, and for fault tolerance the fault it is waiting on, the newest request id
it issued, the manager's operation number it last saw, and the last page it handed away (so a
page in transit is visible to a recovering manager and a re-sent forward can be answered).
"""
from __future__ import annotations

from loguru import logger

from ivyzmq import protocol as P
from ivyzmq.node.membership import Failure, Membership  # noqa: F401 (Done names Failure)
from ivyzmq.node.replicas import Replicas
from ivyzmq.node.state import (IN_PROGRESS_LIMIT, NIL, READ, RW, WORD, Done,  # noqa: F401
                               LocalOp, Outstanding, PageError, PageRangeError,
                               PageSizeError, Pages, PageState, Send, apply, width)
from ivyzmq.bugs import check as check_bugs

class Node(Membership, Replicas):
    def __init__(self, pid: int, *, n_nodes: int, managers: list[int], pages: int,
                 page_size: int, retry_timeout: float = 0.5, retries: int = 3,
                 rid_base: int = 0, initial_owner=None, bugs: frozenset[str] = frozenset(),
                 inc: int = 1, lease: float | None = None, beat_interval: float = 0.5,
                 replicas: int = 0):
        self.pid = pid
        self.bugs = check_bugs(bugs)   # broken variants (ivyzmq/bugs.py): simulator, tests
        self.managers = managers
        self.n_nodes = n_nodes
        self.n_processes = n_nodes + len(managers)
        self.page_size = page_size
        self.retry_timeout = retry_timeout
        self.silence_limit = retry_timeout * retries
        self.owner_of = initial_owner or (lambda p: p % n_nodes)
        self.k = min(replicas, n_nodes - 1)      # page replicas besides the owner
        # data[p] is the page's bytes while this node has access, else None. Kept apart from
        # PageState so an embedded read hit is one list lookup (bytes are immutable, so a
        # reader on another thread sees either the old or the new page, never a torn one).
        # A page nobody wrote holds the one shared `zero`, from when it is first touched
        # (until then None: its reads go through `start`, which touches it).
        self.data: list[bytes | None] = [None] * pages
        self.zero = bytes(page_size)
        self.rep: dict[int, tuple[tuple[int, int], bytes]] = {}   # see node/replicas.py
        owned = PageState(is_owner=True, access=RW,
                          holders=P.initial_holders(pid, n_nodes, self.k))
        self.pages = Pages(pages, lambda p: self.owner_of(p) == pid, self._touch, owned)
        self.epoch = 0
        self.was_epoch = self.served_epoch = 0    # see P.TableReport
        self.manager = managers[0]
        self.suspect: int | None = None   # manager left for silence: not back to it at once
        self.suspect_until = 0.0
        self.recover_boot = 0
        self.last_heard = 0.0
        self.next_rid = rid_base
        self.outstanding: dict[int, Outstanding] = {}   # rid -> request or confirmation
        self.in_progress = 0      # local operations started and not yet in `done`
        self.out: list[Send] = []
        self.done: list[Done] = []
        self._init_membership(inc, lease, beat_interval)
        self._init_replicas()

    # -- outputs -----------------------------------------------------------------------------

    def drain(self) -> tuple[list[Send], list[Done]]:
        out, done = self.out, self.done
        self.out, self.done = [], []
        self.in_progress -= len(done)
        return out, done

    def _send(self, dest: int, msg: P.Msg, payload: bytes | None = None) -> None:
        msg.sender, msg.epoch = self.pid, self.epoch
        self.out.append((dest, msg, payload))

    def _to_manager(self, now: float, msg: P.IvyMsg) -> None:
        self.outstanding[msg.rid] = Outstanding(msg, now, now, now)
        self._send(self.manager, msg)

    # -- local operations --------------------------------------------------------------------

    def check_op(self, page: int, data: bytes = b"", offset: int = 0,
                 kind: str = "write") -> None:
        if not isinstance(page, int) or not 0 <= page < len(self.pages):
            raise PageRangeError(f"page {page!r} out of range 0..{len(self.pages) - 1}")
        if kind == "cas" and (len(data) % 2 or not data):
            raise PageError("compare-and-swap needs expected and new bytes of one length")
        if kind == "add" and len(data) != WORD:
            raise PageError(f"add needs an {WORD}-byte delta")
        n = width(kind, data)
        if offset < 0 or offset + n > self.page_size:
            raise PageSizeError(f"{n} bytes at offset {offset} do not fit a page of "
                                f"{self.page_size} bytes")

    def read_hit(self, page: int) -> bytes | None:
        """The page's bytes if this node holds a copy (no protocol step needed), else None."""
        data = self.data[page]
        if data is None and page not in self.pages and self.pages.peek(page).is_owner:
            return self.zero            # untouched, as laid out
        return data

    def start(self, now: float, opid: int, kind: str, page: int, data: bytes = b"",
              offset: int = 0) -> None:
        """Begin a local read, write, cas or add (node/state.py `apply`); its result
        appears in `done` now or later."""
        self.check_op(page, data, offset, kind)
        if self.in_progress >= IN_PROGRESS_LIMIT:
            raise PageError(f"node {self.pid} has {self.in_progress} operations in progress; "
                            "try again later")
        self.in_progress += 1
        st = self.pages[page]
        st.local.append(LocalOp(opid, kind, bytes(data), offset))
        if len(st.local) == 1:
            self._advance(now, page)

    def _advance(self, now: float, page: int, granted: bool = False) -> None:
        """Finish queued local operations the page's access allows; fault for the next one.
        A local hit needs the lease (see node/membership.py), except for the operation whose
        fault was just `granted` by the protocol."""
        st = self.pages[page]
        while st.local and self.member and not st.unacked:
            op = st.local[0]
            hit = st.access == RW or (op.kind == "read" and st.access != NIL)
            if hit and not granted and not self.may_hit(now):
                self._wait_lease(now)
                return
            granted = False
            if hit and op.kind == "read":
                self.done.append((op.opid, self.data[page], None))
            elif hit:
                new, result = apply(op.kind, self.data[page], op.data, op.offset)
                if new is not None and st.holders:   # done once they have it (replicas.py)
                    st.version = (st.opseq, st.version[1] + 1)
                    st.writing, st.result = "ack_before_replica" not in self.bugs, result
                    self._stage(now, page, new)
                    if st.writing:
                        return
                elif new is not None:
                    self.data[page] = new
                self.done.append((op.opid, result, None))
            else:
                if st.pending is None:
                    self.next_rid += 1
                    rid = st.last_rid = self.next_rid
                    kind = "read" if op.kind == "read" else "write"
                    st.pending = P.Pending(kind, rid)
                    cls = P.ReadRequest if kind == "read" else P.WriteRequest
                    self._to_manager(now, cls(page=page, requester=self.pid, rid=rid))
                return
            st.local.pop(0)

    def _fault_done(self, now: float, page: int, opseq: int) -> None:
        st = self.pages[page]
        pend, st.pending = st.pending, None
        st.opseq = max(st.opseq, opseq)
        if st.confirming is not None:
            # This fault's forward shows that the manager released the page since the last
            # confirmation: that one is needed no more (so at most one a page is kept).
            self._confirmed(st.confirming)
        st.confirming = pend.rid
        cls = P.ReadConfirmation if pend.kind == "read" else P.WriteConfirmation
        self._to_manager(now, cls(page=page, requester=self.pid, rid=pend.rid, opseq=opseq))
        self._advance(now, page, granted=True)

    # -- messages ----------------------------------------------------------------------------

    def receive(self, now: float, msg: P.Msg, payload: bytes | None = None) -> None:
        self._notice_sleep(now)
        from_manager = msg.sender in self.managers
        handlers = self._from_manager if from_manager else self._from_node
        handler = handlers.get(type(msg))
        if handler is None or not 0 <= msg.sender < self.n_processes:
            logger.warning("node {} ignores unexpected {} from {}", self.pid,
                           P.type_name(msg), msg.sender)
            return
        if not self.member and isinstance(msg, (P.ReadForward, P.WriteForward, P.Invalidate)):
            return   # before admission its pages are only tentative: never hand them out
        page, requester = getattr(msg, "page", 0), getattr(msg, "requester", 0)
        if not (0 <= page < len(self.pages) and 0 <= requester < self.n_nodes):
            logger.warning("node {} ignores {}: page {} out of range or requester {} not "
                           "a node", self.pid, P.type_name(msg), page, requester)
            return
        if not from_manager and msg.epoch < self.epoch and "unfenced_nodes" not in self.bugs:
            # From a node of an older term: the recovery round since has settled whatever
            # it was about (a dead owner's late page or update must change nothing).
            logger.debug("node {} drops {} of old epoch {} from node {}", self.pid,
                         P.type_name(msg), msg.epoch, msg.sender)
            return
        if from_manager and not isinstance(msg, P.Recover):   # Recover judges its own epoch
            if msg.epoch < self.epoch and "accept_old_epoch" not in self.bugs:
                logger.debug("node {} drops {} of old epoch {} < {}", self.pid,
                             P.type_name(msg), msg.epoch, self.epoch)
                return
            self._take_epoch(msg.epoch)
            if not isinstance(msg, (P.NotActive, P.Ack)):   # only a serving manager's
                self.served_epoch = max(self.served_epoch, msg.epoch)
                self.slept_at = None
            if not isinstance(msg, P.NotActive):
                # Only the serving manager sends anything else: follow it (it may be one
                # we left for silence that was only slow).
                if msg.sender != self.manager:
                    logger.info("node {} follows manager {} (epoch {})", self.pid,
                                msg.sender, msg.epoch)
                self.manager, self.suspect = msg.sender, None
            if msg.sender == self.manager:
                self.last_heard = now
        handler(self, now, msg, payload)

    def _stale(self, msg: P.IvyMsg) -> bool:
        if msg.opseq < self.pages[msg.page].opseq:
            logger.debug("node {} drops stale {} (opseq {} < {})", self.pid, P.type_name(msg),
                         msg.opseq, self.pages[msg.page].opseq)
            return True
        return False

    def _on_read_forward(self, now, msg: P.ReadForward, _payload) -> None:
        st = self.pages[msg.page]
        if self._stale(msg) or self._busy(msg):
            return
        if not st.is_owner:
            logger.error("node {} got ReadForward for page {} it does not own; ignored",
                         self.pid, msg.page)
            return
        st.opseq = msg.opseq
        if msg.requester == self.pid:       # the owner itself faulted: nothing to transfer
            if st.pending and st.pending.rid == msg.rid:
                self._fault_done(now, msg.page, msg.opseq)
            return
        if st.access == RW:
            st.access = READ
        st.handoff = P.Handoff("read", msg.requester, msg.rid, msg.opseq)
        self._send(msg.requester, P.ReadPage(page=msg.page, requester=msg.requester,
                                             rid=msg.rid, opseq=msg.opseq), self.data[msg.page])

    def _on_write_forward(self, now, msg: P.WriteForward, _payload) -> None:
        st = self.pages[msg.page]
        if self._stale(msg) or self._busy(msg):
            return
        page_msg = P.WritePage(page=msg.page, requester=msg.requester, rid=msg.rid,
                               opseq=msg.opseq, version=st.version, holders=msg.holders)
        if not st.is_owner:
            h = st.handoff
            if h and (h.kind, h.to, h.rid) == ("write", msg.requester, msg.rid):
                self._send(msg.requester, page_msg, st.handoff_data)   # re-driven forward
            else:
                logger.error("node {} got WriteForward for page {} it does not own; ignored",
                             self.pid, msg.page)
            return
        st.opseq = msg.opseq
        if msg.requester == self.pid:
            self._on_write_grant(now, msg, None)
            return
        st.handoff = P.Handoff("write", msg.requester, msg.rid, msg.opseq)
        st.handoff_data = self.data[msg.page]
        self._hand_off(msg.page, msg.holders)
        st.is_owner, st.access, self.data[msg.page] = False, NIL, None
        self._send(msg.requester, page_msg, st.handoff_data)

    def _on_invalidate(self, now, msg: P.Invalidate, _payload) -> None:
        st = self.pages[msg.page]
        if self._stale(msg):
            return
        if st.is_owner:
            logger.error("node {} owns page {} but was asked to invalidate it; ignored",
                         self.pid, msg.page)
            return
        st.opseq = msg.opseq
        st.access, self.data[msg.page] = NIL, None
        self._send(msg.sender, P.InvalidateConfirmation(
            page=msg.page, requester=msg.requester, rid=msg.rid, opseq=msg.opseq))

    def _on_write_grant(self, now, msg: P.IvyMsg, _payload) -> None:
        st = self.pages[msg.page]
        pend = st.pending
        if not (pend and pend.kind == "write" and pend.rid == msg.rid and st.is_owner):
            logger.debug("node {} ignores {} for rid {}", self.pid, P.type_name(msg), msg.rid)
            return
        st.access, st.holders = RW, self._nodes_of(msg.holders)
        self._fault_done(now, msg.page, msg.opseq)

    def _on_page(self, now, msg: P.IvyMsg, payload: bytes) -> None:
        st = self.pages[msg.page]
        kind = "read" if isinstance(msg, P.ReadPage) else "write"
        pend = st.pending
        if not (pend and pend.kind == kind and pend.rid == msg.rid):
            logger.debug("node {} ignores duplicate {} rid {}", self.pid, P.type_name(msg),
                         msg.rid)
            return
        if len(payload) != self.page_size:
            logger.error("node {} got {} of {} bytes, expected {}; ignored", self.pid,
                         P.type_name(msg), len(payload), self.page_size)
            return
        self.data[msg.page] = payload
        if kind == "read":
            st.access = READ if not st.is_owner else st.access
        else:
            st.is_owner, st.access = True, RW
            self._take(msg.page, tuple(msg.version), msg.holders)
        self._fault_done(now, msg.page, msg.opseq)

    def _on_ack(self, now, msg: P.Ack, _payload) -> None:
        if msg.done:
            self._confirmed(msg.rid)

    def _on_confirmed(self, now, msg: P.Confirmed, _payload) -> None:
        for _page, rid in msg.acks:
            self._confirmed(rid)

    def _confirmed(self, rid: int) -> None:
        item = self.outstanding.get(rid)
        if item and isinstance(item.msg, (P.ReadConfirmation, P.WriteConfirmation)):
            del self.outstanding[rid]

    def _on_not_active(self, now, msg: P.NotActive, _payload) -> None:
        if msg.sender != self.manager:
            return
        if msg.hint is not None and msg.hint == self.suspect and now < self.suspect_until:
            return          # the manager that went silent: keep asking here for a while
        target = msg.hint if msg.hint in self.managers else self._next_manager()
        if target != self.manager:
            # Re-send soon rather than at once, so passives that point at each other from a
            # stale view cannot make the node spin.
            self._switch(now, target, resend_at=now + self.retry_timeout / 4)

    def _take_epoch(self, epoch: int) -> None:
        """Follow a newer term, remembering the epoch this node was at before it (what a
        TableReport says as `was`, whichever message of the term came first: an `Ack` of
        the recovering manager may overtake its `Recover`)."""
        if epoch > self.epoch:
            self.was_epoch = self.epoch if self.slept_at is None else self.slept_at
            self.epoch = epoch

    def _on_recover(self, now, msg: P.Recover, _payload) -> None:
        """Accept a newer epoch, or a repeat of the Recover we accepted; tell any other
        manager (an older one, or a restarted one that picked an epoch it used before)
        which epoch we are at, so it can pick a newer one."""
        if msg.epoch > self.epoch or (msg.epoch, msg.boot) == (self.epoch, self.recover_boot):
            self._take_epoch(msg.epoch)
            self.recover_boot = msg.boot
            self.manager, self.suspect, self.last_heard = msg.sender, None, now
            self._send(msg.sender, P.TableReport(pages=self.report(), inc=self.inc,
                                                 member=self.member, was=self.was_epoch,
                                                 served=self.served_epoch,
                                                 empty=self.pages.empty))
        else:
            logger.info("node {} refuses Recover of epoch {} from {} (at epoch {})",
                        self.pid, msg.epoch, msg.sender, self.epoch)
            self._send(msg.sender, P.TableReport(pages=[], refused=True))

    _from_manager = {
        P.ReadForward: _on_read_forward, P.WriteForward: _on_write_forward,
        P.Invalidate: _on_invalidate, P.WriteGrant: _on_write_grant, P.Ack: _on_ack,
        P.Confirmed: _on_confirmed, P.Recover: _on_recover,
        P.NotActive: _on_not_active, P.Admit: Membership._on_admit,
        P.Fenced: Membership._on_fenced, P.NodeBeatAck: Membership._on_beat_ack,
        P.Lost: Membership._on_lost, P.Assign: Replicas._on_assign,
    }
    _from_node = {P.ReadPage: _on_page, P.WritePage: _on_page, P.Update: Replicas._on_update,
                  P.UpdateAck: Replicas._on_update_ack}

    # -- timer -------------------------------------------------------------------------------

    def _next_manager(self) -> int:
        i = self.managers.index(self.manager)
        return self.managers[(i + 1) % len(self.managers)]

    def _switch(self, now: float, manager: int, resend_at: float | None = None) -> None:
        logger.info("node {} turns to manager {} (was {})", self.pid, manager, self.manager)
        self.manager, self.last_heard = manager, now
        for item in self.outstanding.values():
            item.first = now
            if resend_at is None:
                item.sent_at = now
                self._send(manager, item.msg)
            else:
                item.sent_at = resend_at - self.retry_timeout

    def tick(self, now: float) -> None:
        """Beat; re-send what the manager has not answered; move along the list if it went
        silent."""
        self._notice_sleep(now)
        self._beats(now)
        self._resend_updates(now)
        if not self.outstanding:
            return
        oldest = min(item.first for item in self.outstanding.values())
        if now - max(self.last_heard, oldest) >= self.silence_limit and len(self.managers) > 1:
            self.suspect, self.suspect_until = self.manager, now + self.silence_limit
            self._switch(now, self._next_manager())
            return
        for item in self.outstanding.values():
            if now - item.sent_at >= self.retry_timeout:
                item.sent_at = now
                self._send(self.manager, item.msg)
