"""Page replicas at a node (docs/PROTOCOL.md section 6.2): with `replicas: K >= 1` the
owner of a page keeps K other nodes (its holders) holding the page's latest contents, and
a node holds replicas of other nodes' pages. `Node` (node/core.py) inherits these methods.

A write at the owner is staged: the new bytes go to every holder (Update) and become the
page's contents - visible to local reads, returned to the writer, served to other nodes -
only when every holder has acknowledged them (UpdateAck). While a page syncs, its local
operations and the manager's forwards for it wait. So whatever anyone has seen of a page is
held by every holder, and the holder with the newest version can take the owner's place.

Versions are (opseq, count): opseq is the manager's operation number the owner was at when
it wrote (a new owner's is higher than any old owner's), count grows with each write.
"""
from __future__ import annotations

from loguru import logger

from ivyzmq import protocol as P
from ivyzmq.node.state import NIL, READ, RW


class Replicas:
    """Replica state and handlers of a `Node` (see the module docstring)."""

    def _init_replicas(self) -> None:
        # rep[p] = (version, bytes): this node holds a replica of page p. A page not yet
        # touched (node/core.py `_touch`) holds the initial layout's: zeros at (0, 0) on
        # the page's initial holders.
        self.syncing: dict[int, float] = {}     # page -> when its Updates were last sent

    # -- the owner's side --------------------------------------------------------------------

    def _stage(self, now: float, page: int, data: bytes) -> None:
        """A write (or a promotion) at the owner: the new contents wait for the holders."""
        st = self.pages[page]
        st.staged = data
        st.unacked = list(st.holders)
        self._push(now, page, st.unacked)
        if not st.unacked:
            self._synced(now, page)

    def _push(self, now: float, page: int, to: list[int]) -> None:
        """Send the staged contents to holders `to`. Not between accepting a Recover and
        hearing that term's manager serve: this may be an incarnation the term holds dead,
        its Fenced on the way, and a holder at the new epoch would take its stale write.
        The re-send timer pushes once the term serves."""
        st = self.pages[page]
        data = st.staged if st.staged is not None else self.data[page]
        for h in to if self.served_epoch >= self.epoch else ():
            self._send(h, P.Update(page=page, version=st.version), data)
        if st.unacked:
            self.syncing[page] = now

    def _synced(self, now: float, page: int) -> None:
        """Every holder has the staged contents: they become the page's, the write that
        staged them is done, and what waited (local operations, forwards) goes on."""
        st = self.pages[page]
        self.syncing.pop(page, None)
        if st.staged is not None:
            self.data[page], st.staged = st.staged, None
        if st.grant is not None:
            st.access, st.grant = st.grant, None
        if st.writing:
            st.writing = False
            self.done.append((st.local.pop(0).opid, st.result, None))
        deferred, st.deferred = st.deferred, []
        for msg in deferred:
            self.receive(now, msg, None)
        if not st.unacked:
            self._advance(now, page)

    def _hand_off(self, page: int, holders: list[int]) -> None:
        """The owner gives the page away: it keeps a replica if it is one of the new
        owner's holders (it has the latest contents)."""
        st = self.pages[page]
        if self.pid in holders:
            self.rep[page] = (st.version, self.data[page])
        st.holders = []

    def _nodes_of(self, holders: list[int]) -> list[int]:
        """Holders named by a message, as this owner keeps them: distinct nodes other than
        itself, so fewer than the cluster's nodes whatever the message says."""
        return [h for h in dict.fromkeys(holders) if 0 <= h < self.n_nodes and h != self.pid]

    def _take(self, page: int, version: tuple[int, int], holders: list[int]) -> None:
        """This node became the page's owner: its replica (if any) is superseded."""
        st = self.pages[page]
        st.version, st.holders = version, self._nodes_of(holders)
        self.rep.pop(page, None)

    def _busy(self, msg: P.IvyMsg) -> bool:
        """A forward for a page that is syncing waits until the holders have it."""
        st = self.pages[msg.page]
        if st.unacked and st.is_owner:
            st.deferred = [m for m in st.deferred if type(m) is not type(msg)] + [msg]
            return True
        return False

    def _on_update_ack(self, now, msg: P.UpdateAck, _payload) -> None:
        st = self.pages[msg.page]
        if st.is_owner and msg.sender in st.unacked and tuple(msg.version) == st.version:
            st.unacked.remove(msg.sender)
            if not st.unacked:
                self._synced(now, msg.page)

    def _resend_updates(self, now: float) -> None:
        for page, sent in list(self.syncing.items()):
            if now - sent >= self.retry_timeout:
                self._push(now, page, self.pages[page].unacked)

    # -- the holder's side -------------------------------------------------------------------

    def _on_update(self, now, msg: P.Update, payload: bytes) -> None:
        st = self.pages[msg.page]
        version = tuple(msg.version)
        if st.is_owner or not self.member or len(payload) != self.page_size:
            return
        held = self.rep.get(msg.page)
        if held is None or version >= held[0]:
            self.rep[msg.page] = (version, payload)
            self._send(msg.sender, P.UpdateAck(page=msg.page, version=version))

    def replica_version(self, page: int) -> tuple[int, int] | None:
        if page not in self.pages and not self.pages.empty:     # untouched: as laid out
            holders = P.initial_holders(self.owner_of(page), self.n_nodes, self.k)
            return (0, 0) if self.pid in holders else None
        held = self.rep.get(page)
        return None if held is None else held[0]

    # -- the manager's assignment after a recovery round ---------------------------------------

    def _on_assign(self, now, msg: P.Assign, _payload) -> None:
        if not self.member:
            return      # a node not yet admitted holds only tentative pages and replicas
        for page, opseq, holders, readers, empty in msg.pages:
            if 0 <= page < len(self.pages):
                self._assign(now, page, opseq, holders, readers, empty)
        self._send(msg.sender, P.AssignAck())

    def _assign(self, now: float, page: int, opseq: int, holders: list[int],
                readers: bool, empty: list[int]) -> None:
        st = self.pages[page]
        if opseq < st.opseq:
            return                                  # the page moved on since
        st.opseq, holders = opseq, self._nodes_of(holders)
        if st.is_owner:                             # kept: new holders get the contents
            new = [h for h in holders if h not in st.holders or h in empty]
            new = [h for h in new if h not in st.unacked]
            st.holders = holders
            st.unacked = [h for h in st.unacked if h in holders] + new
            self._push(now, page, new)
            if not st.unacked:
                self._synced(now, page)
            return
        held = self.rep.pop(page, None)
        if held is None:
            logger.error("node {} is assigned page {} but holds no replica of it", self.pid,
                         page)
            return
        logger.info("node {} takes over page {} from its replica (version {})", self.pid,
                    page, held[0])
        st.is_owner, st.access, st.version = True, NIL, (opseq, held[0][1])
        st.holders, st.grant = holders, READ if readers else RW
        self._stage(now, page, held[1])
