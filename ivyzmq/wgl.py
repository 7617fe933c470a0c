"""The general linearizability check of one page: the Wing-Gong-Lowe search.

Call and return events sit in a doubly linked list sorted by time.  Walking
from the head, any call met before the first return belongs to an op that
may take effect now; we apply its step to the register (`ivyzmq.register`),
and if legal we unlink its two events, push it on a stack and start again
from the head.  Meeting a return event means the op it belongs to should
already have taken effect, so we backtrack.  The pair (set of linearized
ops, register value) is memoised, so no configuration is explored twice,
and the number of pairs is bounded by a budget: past it there is no verdict.

Ops that ended "ok" are required and must take effect by their end.  Ops
with an unknown outcome may take effect at any time after their start, or
never: their return is at +infinity and they are optional, i.e. the search
succeeds once every required op is linearized.  On pages with only reads and
writes, unknown writes are narrowed first (see `_narrowed`), because each
optional op that stays pending doubles the search space.

One reduction on top of WGL: an op that may take effect now and never
changes the register (`ivyzmq.register.observes`: a read, a cas that did not
swap) is taken at once, and the other candidates at that point are not
tried.  Any linearization from here can move that op to the front, since
every op not yet linearized returns after it was called, and the op leaves
the register as it found it wherever it stands; so once what follows it
fails, the point fails.  This keeps many concurrent reads of one value from
multiplying the search.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from ivyzmq.history import Op
from ivyzmq.register import INITIAL, NotAnInteger, PageResult, apply, describe, observes, steps

__all__ = ["search"]

_INF = math.inf


class _Entry:
    """One call or return event in the linked list."""

    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op: int, is_call: bool) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _intervals(ops: Sequence[Op]) -> list[tuple[Op, float, bool]]:
    """(op, latest linearization time, required?): ok ops by their end, the
    others optional."""
    return [(op, op.end, True) if op.outcome == "ok" and op.end is not None
            else (op, _INF, False) for op in ops]


def _narrowed(ops: Sequence[Op]) -> list[tuple[Op, float, bool]]:
    """`_intervals` for a page of reads and writes, with unknown writes narrowed;
    both rules keep the verdict unchanged:

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
        elif op.value != INITIAL and writers[op.value] == 1:
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


def search(page: int, page_ops: Sequence[Op], integer: bool, max_states: int) -> PageResult:
    """Search for a linearization of the (already filtered) ops of one page."""
    plain = all(op.kind in ("read", "write") for op in page_ops)
    intervals = _narrowed(page_ops) if plain else _intervals(page_ops)
    ops = [op for op, _, _ in intervals]
    try:
        code = steps(ops, integer)
    except NotAnInteger as e:
        return PageResult(False, f"page {page}: {describe(e.op)} cannot be linearized: "
                          f"{e.text!r} is not an integer, and the page is a counter "
                          "(it has adds)", e.op)
    required = [req for _, _, req in intervals]
    return _run(page, ops, code, required, _event_list(intervals), 0 if integer else INITIAL,
                max_states)


def _run(page: int, ops: list[Op], code: list[tuple[int, object, object]],
         required: list[bool], head: _Entry, state: object, max_states: int) -> PageResult:
    """The search loop proper, from register value `state`."""
    n, bits = len(ops), [1 << i for i in range(len(ops))]
    at_once = [observes(*step) for step in code]
    remaining, linearized = sum(required), 0
    stack: list[tuple[_Entry, object, bool]] = []   # (entry, state before, taken at once?)
    cache: set[tuple[int, object]] = set()
    # Deepest point reached, for the explanation: the op whose return
    # forced the backtrack there, and the register value at that point.
    best_depth, best_op, best_state = -1, -1, state
    entry = head.next
    while remaining:
        assert entry is not None  # a required op's finite return is still listed
        i = entry.op
        if entry.is_call:
            new_state = apply(*code[i], state)
            if new_state is None:
                entry = entry.next
                continue
            key = (linearized | bits[i], new_state)
            if key not in cache:
                cache.add(key)
                if len(cache) > max_states:
                    return PageResult(None, f"search budget exceeded on page {page} "
                                      f"({max_states} states, {n} ops)", states=len(cache))
                stack.append((entry, state, at_once[i]))
                linearized, state = key
                remaining -= required[i]
                _lift(entry)
                entry = head.next
                continue
            if not at_once[i]:
                entry = entry.next
                continue
        # Op i must have taken effect by now but has not, or what follows an
        # op taken at once failed before: backtrack.
        if len(stack) > best_depth:
            best_depth, best_op, best_state = len(stack), i, state
        while stack:
            entry, state, forced = stack.pop()
            linearized &= ~bits[entry.op]
            remaining += required[entry.op]
            _restore(entry)
            if not forced:
                break
        else:
            break
        entry = entry.next
    else:
        return PageResult(True, states=len(cache))
    bad = ops[best_op]
    return PageResult(False, f"page {page}: {describe(bad)} cannot be linearized (register "
                      f"held {best_state!r} in the longest partial linearization, "
                      f"{best_depth} of {n} ops)", bad, len(cache))
