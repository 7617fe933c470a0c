"""The trace as people read it: operations, and one causal order of every daemon's rows that
keeps each operation's messages together where causality allows.

An **operation** is one fault: every message that carries its requester and rid - the
request and its re-sends (to whichever manager), the forwards or invalidations, the page or
grant, the confirmation. Operations are numbered by their first message in the merged
trace: operation 1 comes first. The numbering only holds for one trace: `ivy trace --clear`
starts it again.

Sorting by Lamport clock alone interleaves operations by accident of clock values: a node
that was idle has a low clock, so its next request sorts before messages sent long before it
(clients, which order operations in real time, carry no clock). Each row also has its send
time, but each daemon records only what it sent, so the merge cannot know when a message was
received; it keeps every order that *may* be causal:

1. a daemon's own messages in the order it sent them;
2. a message to daemon Q before every message Q sent later (by the wall clock) with a
   higher Lamport clock: had Q received it first, Q's clock would have been above it;
3. the messages on one page in clock order: a page's operations are serialised by its lock,
   and the lock can pass between them through messages the trace does not record (a new
   manager's recovery round).

Every constraint goes from a lower Lamport clock to a higher one, so the Lamport order meets
them all and the merge can never get stuck. Among the orders that meet them, it follows the
operation under way as long as it can, then the operation started earliest, then the row
sent first. Rows without a send time (at = 0) fall back to the Lamport rules alone.
"""
from __future__ import annotations

import heapq
from collections import defaultdict, deque

from ivyzmq import protocol as P

OpKey = tuple[int, int]        # (requester, rid)


def op_key(row: P.TraceRow) -> OpKey:
    return row.requester, row.rid


def lamport(rows: list[P.TraceRow]) -> list[P.TraceRow]:
    return sorted(rows, key=lambda r: (r.lc, r.sender))


class _Merge:
    """The state of one merge: which rows are placed, and which may go next."""

    def __init__(self, rows: list[P.TraceRow]):
        self.rows = lamport(rows)
        self.by_sender: dict[int, deque[int]] = defaultdict(deque)
        self.by_page: dict[int, deque[int]] = defaultdict(deque)
        self.inbound: dict[int, list[int]] = defaultdict(list)   # in clock order
        for i, r in enumerate(self.rows):
            self.by_sender[r.sender].append(i)
            self.by_page[r.page].append(i)
            self.inbound[r.to].append(i)
        self.in_pos: dict[int, int] = defaultdict(int)
        self.placed = [False] * len(self.rows)
        self.offered: set[int] = set()
        self.started: dict[OpKey, int] = {}
        self.ready_of_op: dict[OpKey, int] = {}
        self.heap: list[tuple[int, float, int]] = []

    def _blocked_by_inbound(self, r: P.TraceRow) -> bool:
        """Is a message to r's sender, of a lower clock and sent before r, not yet placed?"""
        lst, k = self.inbound.get(r.sender, []), self.in_pos[r.sender]
        while k < len(lst) and self.placed[lst[k]]:
            k += 1
        self.in_pos[r.sender] = k
        for j in lst[k:]:
            a = self.rows[j]
            if a.lc >= r.lc:
                return False
            if not self.placed[j] and a.at <= r.at:
                return True
        return False

    def _offer(self, queue: deque[int]) -> None:
        if not queue:
            return
        i = queue[0]
        r = self.rows[i]
        if i in self.offered or self.by_sender[r.sender][0] != i or \
                self.by_page[r.page][0] != i or self._blocked_by_inbound(r):
            return
        self.offered.add(i)
        op = op_key(r)
        self.ready_of_op[op] = i      # one page, one head: at most one ready row per op
        heapq.heappush(self.heap, (self.started.get(op, len(self.rows)), r.at, i))

    def _place(self, i: int, out: list[P.TraceRow]) -> OpKey:
        r = self.rows[i]
        op = op_key(r)
        self.placed[i] = True
        self.ready_of_op.pop(op, None)
        self.started.setdefault(op, len(self.started))
        self.by_sender[r.sender].popleft()
        self.by_page[r.page].popleft()
        out.append(r)
        for queue in (self.by_sender[r.sender], self.by_page[r.page], self.by_sender[r.to]):
            self._offer(queue)
        return op

    def run(self) -> list[P.TraceRow]:
        out: list[P.TraceRow] = []
        for queue in list(self.by_sender.values()):
            self._offer(queue)
        current: OpKey | None = None
        while len(out) < len(self.rows):
            i = self.ready_of_op.get(current) if current is not None else None
            while i is None or self.placed[i]:
                i = heapq.heappop(self.heap)[2]
            current = self._place(i, out)
        return out


def merge(rows: list[P.TraceRow]) -> list[P.TraceRow]:
    """Every daemon's rows in one causal order, each operation's rows together where the
    constraints above allow (see the module's docstring)."""
    return _Merge(rows).run()


def numbers(rows: list[P.TraceRow]) -> dict[OpKey, int]:
    """Operation -> its number (1, 2, ...) by its first row in `rows`."""
    out: dict[OpKey, int] = {}
    for r in rows:
        out.setdefault(op_key(r), len(out) + 1)
    return out


def select(rows: list[P.TraceRow], op: int | None = None, page: int | None = None
           ) -> list[P.TraceRow]:
    """The rows of operation number `op` and/or of `page` (numbers as in `numbers(rows)`)."""
    nums = numbers(rows)
    return [r for r in rows if (op is None or nums[op_key(r)] == op)
            and (page is None or r.page == page)]
