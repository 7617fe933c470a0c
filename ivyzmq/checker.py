"""Linearizability checker for histories of page reads and writes.

Every page is an independent read/write register whose initial value is "".
Linearizability is compositional (a history is linearizable iff its
restriction to each object is), so the history is split by page and each
page is checked on its own; this keeps every search small.

Each page is checked with the Wing-Gong-Lowe search: call and return events
sit in a doubly linked list sorted by time.  Walking from the head, any call
met before the first return belongs to an op that may take effect now; we
try it against the register, and if legal we unlink its two events, push it
on a stack and start again from the head.  Meeting a return event means the
op it belongs to should already have taken effect, so we backtrack.  The
pair (set of linearized ops, register value) is memoized, so no
configuration is explored twice.

How outcomes are modelled:

* "failed" ops definitely had no effect and are dropped.
* "unknown" reads constrain nothing and are dropped.
* "unknown" writes may take effect at any time after their start, or never:
  their return is placed at +infinity and they are optional, i.e. the search
  succeeds as soon as every "ok" op has been linearized.  Before the
  search they are narrowed (see `_search_intervals`), because each optional
  write that stays pending doubles the search space.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec

from ivyzmq.history import Op

__all__ = ["DEFAULT_MAX_STATES", "CheckResult", "check", "verdict_text"]

DEFAULT_MAX_STATES = 1_000_000
"""Per-page limit on memoized search states before giving up with ok=None.

Valid histories from real workloads need a few states per op; the limit
only matters for pathological (typically non-linearizable) histories with
many concurrent or unknown writes, where the search is exponential."""

_INF = math.inf


class CheckResult(msgspec.Struct):
    """Verdict of `check`.

    `ok` is True (linearizable), False (not linearizable; `page`,
    `explanation` and `op` say where) or None (the search budget was exceeded
    on `page`, so no verdict).  `pages_checked` and `ops_checked` count the
    pages and ops checked (failed ops and unknown reads are dropped, not
    counted); the check stops at the first page that is not linearizable.
    `states` is the number of search states explored, a measure of effort.
    """

    ok: bool | None
    pages_checked: int
    ops_checked: int
    page: int | None = None
    explanation: str = ""
    op: Op | None = None
    states: int = 0


class _PageResult(msgspec.Struct):
    ok: bool | None
    explanation: str = ""
    op: Op | None = None
    states: int = 0


class _Entry:
    """One call or return event in the WGL linked list."""

    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op: int, is_call: bool) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _describe(op: Op) -> str:
    end = "?" if op.end is None else f"{op.end:.6f}"
    return f"{op.kind} by client {op.client} of {op.value!r} at [{op.start:.6f}, {end}]"


def _relevant(ops: Iterable[Op]) -> list[Op]:
    """Drop the ops that cannot constrain the register: failed ops, unknown reads."""
    return [
        op
        for op in ops
        if op.outcome == "ok" or (op.outcome == "unknown" and op.kind == "write")
    ]


def _fast_path(page: int, ops: Sequence[Op]) -> _PageResult | None:
    """Cheap rejection of reads that no interleaving can explain.

    A read of v (other than the initial "") needs some write of v that starts
    no later than the read ends.  Catching these first gives a precise
    explanation and skips the search; it never accepts anything.
    """
    first_write: dict[str, float] = {}
    for op in ops:
        if op.kind == "write":
            first_write[op.value] = min(first_write.get(op.value, _INF), op.start)
    reads = sorted((op for op in ops if op.kind == "read" and op.value != ""), key=lambda o: o.start)
    for op in reads:
        assert op.end is not None  # ok ops always have an end (checked by Op)
        started = first_write.get(op.value)
        if started is None:
            why = "no write of that value on this page"
        elif started > op.end:
            why = "every write of that value started after the read ended"
        else:
            continue
        return _PageResult(False, f"page {page}: {_describe(op)} cannot be linearized: {why}", op)
    return None


def _search_intervals(ops: Sequence[Op]) -> list[tuple[Op, float, bool]]:
    """(op, latest linearization time, required?) for each op worth searching.

    Ok ops are required and must take effect by their end.  Unknown writes
    would otherwise be optional with an infinite return, and each one pending
    forever doubles the search space, so they are narrowed first; both rules
    keep the verdict unchanged:

    * An unknown write whose value no ok read returned is dropped: in any
      linearization that includes it, no read falls between it and the next
      write, so removing it keeps the linearization legal.
    * An unknown write that is the only write of a value some ok read
      returned must have happened, before every such read: it becomes
      required, due by the earliest end of those reads.

    Other unknown writes (values written more than once, or "") stay optional.
    """
    read_end: dict[str, float] = {}
    writers: dict[str, int] = defaultdict(int)
    for op in ops:
        if op.kind == "read":
            assert op.end is not None  # only ok reads reach the search
            read_end[op.value] = min(read_end.get(op.value, _INF), op.end)
        else:
            writers[op.value] += 1
    out: list[tuple[Op, float, bool]] = []
    for op in ops:
        if op.outcome == "ok":
            assert op.end is not None
            out.append((op, op.end, True))
        elif op.value not in read_end:
            continue
        elif op.value != "" and writers[op.value] == 1:
            out.append((op, max(op.start, read_end[op.value]), True))
        else:
            out.append((op, _INF, False))
    return out


def _event_list(intervals: list[tuple[Op, float, bool]]) -> _Entry:
    """The call and return events as a doubly linked list behind a head entry. At equal
    times calls sort before returns, so intervals are closed and touching ops count as
    concurrent."""
    events: list[tuple[float, int, int]] = []
    for i, (op, ret, _) in enumerate(intervals):
        events.append((op.start, 0, i))
        events.append((ret, 1, i))
    events.sort()
    head = _Entry(-1, False)
    calls: list[_Entry | None] = [None] * len(intervals)
    prev = head
    for _, kind, i in events:
        e = _Entry(i, kind == 0)
        if kind == 0:
            calls[i] = e
        else:
            c = calls[i]
            assert c is not None
            c.match = e
        prev.next = e
        e.prev = prev
        prev = e
    return head


def _lift(entry: _Entry) -> None:
    """Unlink a call and its return (the op is linearized)."""
    ret = entry.match
    assert ret is not None
    entry.prev.next = entry.next  # type: ignore[union-attr]
    if entry.next is not None:
        entry.next.prev = entry.prev
    ret.prev.next = ret.next  # type: ignore[union-attr]
    if ret.next is not None:
        ret.next.prev = ret.prev


def _restore(entry: _Entry) -> None:
    """Relink what `_lift` unlinked, in reverse order (return, then call)."""
    ret = entry.match
    assert ret is not None
    ret.prev.next = ret  # type: ignore[union-attr]
    if ret.next is not None:
        ret.next.prev = ret
    entry.prev.next = entry  # type: ignore[union-attr]
    if entry.next is not None:
        entry.next.prev = entry


def _wgl(page: int, page_ops: Sequence[Op], max_states: int) -> _PageResult:
    """Wing-Gong-Lowe search over the (already filtered) ops of one page."""
    intervals = _search_intervals(page_ops)
    ops = [op for op, _, _ in intervals]
    n, is_write = len(ops), [op.kind == "write" for op in ops]
    values = [op.value for op in ops]
    required = [req for _, _, req in intervals]
    bits = [1 << i for i in range(n)]
    head = _event_list(intervals)
    remaining, linearized, state = sum(required), 0, ""
    stack: list[tuple[_Entry, str]] = []
    cache: set[tuple[int, str]] = set()
    # Deepest point reached, for the explanation: the op whose return
    # forced the backtrack there, and the register value at that point.
    best_depth, best_op, best_state = -1, -1, ""

    entry = head.next
    while remaining:
        assert entry is not None  # a required op's finite return is still listed
        i = entry.op
        if entry.is_call:
            value = values[i]
            if is_write[i] or value == state:
                new_state = value
                new_lin = linearized | bits[i]
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    if len(cache) > max_states:
                        return _PageResult(None, f"search budget exceeded on page {page} "
                                           f"({max_states} states, {n} ops)", states=len(cache))
                    stack.append((entry, state))
                    linearized = new_lin
                    state = new_state
                    if required[i]:
                        remaining -= 1
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # Op i must have taken effect by now but has not: backtrack.
            if len(stack) > best_depth:
                best_depth, best_op, best_state = len(stack), i, state
            if not stack:
                break
            entry, state = stack.pop()
            j = entry.op
            linearized &= ~bits[j]
            if required[j]:
                remaining += 1
            _restore(entry)
            entry = entry.next
    else:
        return _PageResult(True, states=len(cache))

    bad = ops[best_op]
    return _PageResult(False, f"page {page}: {_describe(bad)} cannot be linearized (register "
                       f"held {best_state!r} in the longest partial linearization, "
                       f"{best_depth} of {n} ops)", bad, len(cache))


def check(
    ops: Iterable[Op], *, max_states: int = DEFAULT_MAX_STATES, fast_path: bool = True
) -> CheckResult:
    """Check a history for linearizability, page by page.

    Pages are checked in increasing order and checking stops at the first
    page that is not linearizable.  A page whose search exceeds `max_states`
    does not stop the check, since a later page may still prove a violation;
    if none does, the result is ok=None naming the first such page.
    `fast_path=False` skips the cheap pre-checks (useful to test the search).
    """
    by_page: dict[int, list[Op]] = defaultdict(list)
    for op in _relevant(ops):
        by_page[op.page].append(op)
    pages = 0
    total = 0
    states = 0
    undecided: tuple[int, _PageResult] | None = None
    for page in sorted(by_page):
        page_ops = by_page[page]
        pages += 1
        total += len(page_ops)
        res = _fast_path(page, page_ops) if fast_path else None
        if res is None:
            res = _wgl(page, page_ops, max_states)
        states += res.states
        if res.ok is False:
            return CheckResult(False, pages, total, page, res.explanation, res.op, states)
        if res.ok is None and undecided is None:
            undecided = (page, res)
    if undecided is not None:
        page, res = undecided
        return CheckResult(None, pages, total, page, res.explanation, None, states)
    return CheckResult(True, pages, total, states=states)


def verdict_text(result: CheckResult) -> str:
    """The verdict in one line: every program that checks a history prints this."""
    if result.ok:
        return f"linearizable: {result.ops_checked} ops on {result.pages_checked} pages"
    if result.ok is False:
        return f"NOT linearizable: {result.explanation}"
    return f"unknown: {result.explanation}"
