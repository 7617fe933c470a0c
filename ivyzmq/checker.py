"""Linearizability checker for histories of page operations.

Every page is an independent register (`ivyzmq.register`): read, write and
compare-and-swap of strings with initial value "", or, on a page that has
adds, an integer counter starting at 0.  Linearizability is compositional (a
history is linearizable iff its restriction to each object is), so the
history is split by page and each page is checked on its own.

How outcomes are modelled: "failed" ops definitely had no effect and are
dropped; "unknown" reads constrain nothing and are dropped; other "unknown"
ops may take effect at any time after their start, or never.

Each page goes to the first check that applies:

* cheap rejections (`_precheck`): a read, or a cas that swapped, whose value
  no write could have put there in time;
* when the page has only reads and writes and every write has its own value,
  Gibbons and Korach's zones (`ivyzmq.zones`), exact and O(n log n);
* otherwise the memoised Wing-Gong-Lowe search (`ivyzmq.wgl`), exponential
  in the worst case and so bounded by a state budget.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec

from ivyzmq.history import Op
from ivyzmq.register import INITIAL, PageResult, describe
from ivyzmq.wgl import search
from ivyzmq.zones import check_zones

__all__ = ["DEFAULT_MAX_STATES", "CheckResult", "check", "verdict_text"]

DEFAULT_MAX_STATES = 1_000_000
"""Per-page limit on memoized search states before giving up with ok=None.

Valid histories from real workloads need a few states per op; the limit
only matters for pathological (typically non-linearizable) histories with
many concurrent or unknown ops, where the search is exponential."""

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


def _relevant(ops: Iterable[Op]) -> list[Op]:
    """Drop the ops that cannot constrain the register: failed ops, unknown reads."""
    return [op for op in ops
            if op.outcome == "ok" or (op.outcome == "unknown" and op.kind != "read")]


def _precheck(page: int, ops: Sequence[Op]) -> PageResult | None:
    """Cheap rejection of what no interleaving can explain (pages without adds).

    A read of v, or a cas that swapped from v (v other than the initial ""),
    needs some write of v, or some cas to v, that starts no later than it
    ends.  Catching these first gives a precise explanation and skips the
    search; it never accepts anything.
    """
    first_write: dict[str, float] = {}
    for op in ops:
        if op.kind == "write" or (op.kind == "cas" and op.swapped is not False):
            first_write[op.value] = min(first_write.get(op.value, _INF), op.start)
    seen = [(op, op.value if op.kind == "read" else op.expected) for op in ops
            if op.outcome == "ok" and (op.kind == "read" or op.swapped)]
    seen.sort(key=lambda pair: pair[0].start)
    for op, value in seen:
        if value == INITIAL:
            continue
        assert op.end is not None  # ok ops always have an end (checked by Op)
        started = first_write.get(value)
        if started is None:
            why = "no write of that value on this page"
        elif started > op.end:
            why = f"every write of that value started after the {op.kind} ended"
        else:
            continue
        return PageResult(False, f"page {page}: {describe(op)} cannot be linearized: {why}", op)
    return None


def _check_page(page: int, ops: list[Op], integer: bool, max_states: int,
                fast_path: bool) -> PageResult:
    """The verdict on the (filtered) ops of one page; an `integer` page has adds (even
    failed ones: its values are recorded as integers)."""
    if fast_path and not integer:
        res = _precheck(page, ops) or check_zones(page, ops)
        if res is not None:
            return res
    return search(page, ops, integer, max_states)


def check(
    ops: Iterable[Op], *, max_states: int = DEFAULT_MAX_STATES, fast_path: bool = True
) -> CheckResult:
    """Check a history for linearizability, page by page.

    Pages are checked in increasing order and checking stops at the first
    page that is not linearizable.  A page whose search exceeds `max_states`
    does not stop the check, since a later page may still prove a violation;
    if none does, the result is ok=None naming the first such page.
    `fast_path=False` skips the cheap checks and the zones, so that every page
    goes to the search (useful to test the search).
    """
    by_page: dict[int, list[Op]] = defaultdict(list)
    for op in ops:
        by_page[op.page].append(op)
    pages = total = states = 0
    undecided: tuple[int, PageResult] | None = None
    for page in sorted(by_page):
        page_ops = _relevant(by_page[page])
        if not page_ops:
            continue
        pages += 1
        total += len(page_ops)
        integer = any(op.kind == "add" for op in by_page[page])
        res = _check_page(page, page_ops, integer, max_states, fast_path)
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
