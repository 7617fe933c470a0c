"""The fast check of a page whose writes all have distinct values: Gibbons and Korach's
zones ("Testing shared memories", SIAM J. Computing 26(4), 1997), in O(n log n).

It applies when the page has only reads and writes, no two writes share a value and none
writes the initial "".  Then each read names the write it saw, and a linearization, if one
exists, puts each write right before the reads of its value ("its cluster"; the reads of
"" form the cluster of a virtual write at -infinity).  Three things can go wrong:

1. a read of a value nobody wrote;
2. a read that ended before the write of its value started;
3. two clusters that must each come before the other.  Cluster C must come before D when
   an op of C ended before an op of D started, i.e. when low(C) < high(D), writing low for
   the earliest end of a cluster's ops and high for the latest start.  When low < high
   the cluster's value must stay in place throughout (low, high), its *forward zone*;
   otherwise all its ops share the instants of [high, low], its *backward zone*.  Two
   clusters conflict exactly when two forward zones overlap, or a backward zone lies
   strictly inside a forward one (two backward zones never conflict).

If none happens the page is linearizable: the "must come before" relation between
clusters has no cycle of two, and (as one shows by always shortening a longer cycle) so no
cycle at all, so the clusters can be put in a line.  An unknown write counts only if a
read saw its value (else it can be left out), and then with its end at +infinity.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from ivyzmq.history import Op
from ivyzmq.register import INITIAL, PageResult, describe

__all__ = ["check_zones"]

_INF = math.inf


class _Cluster:
    """A write (None for the initial value) and the reads of its value: the earliest
    end and the latest start among them, with the ops that have them."""

    __slots__ = ("value", "write", "low", "low_op", "high", "high_op")

    def __init__(self, value: str, write: Op | None) -> None:
        self.value, self.write = value, write
        self.low_op = self.high_op = write
        # An unknown write may take effect after its recorded end, too.
        self.low = -_INF if write is None else write.end if write.outcome == "ok" \
            and write.end is not None else _INF
        self.high = -_INF if write is None else write.start

    def add(self, read: Op) -> None:
        assert read.end is not None  # only ok reads reach the check
        if read.end < self.low:
            self.low, self.low_op = read.end, read
        if read.start > self.high:
            self.high, self.high_op = read.start, read


def _clusters(page: int, ops: Sequence[Op]) -> list[_Cluster] | PageResult | None:
    """The clusters, a PageResult naming a read no write explains, or None if the
    page is not one for this check."""
    initial = _Cluster(INITIAL, None)
    by_value: dict[str, _Cluster] = {}
    reads = []
    for op in ops:
        if op.kind == "read":
            reads.append(op)
        elif op.kind != "write" or op.value == INITIAL or op.value in by_value:
            return None
        else:
            by_value[op.value] = _Cluster(op.value, op)
    for op in reads:
        cluster = initial if op.value == INITIAL else by_value.get(op.value)
        if cluster is None:
            return _bad(page, op, "no write of that value on this page")
        assert op.end is not None
        if cluster.write is not None and cluster.write.start > op.end:
            return _bad(page, op, "the write of that value started after the read ended")
        cluster.add(op)
    return [initial, *by_value.values()]


def _bad(page: int, op: Op, why: str) -> PageResult:
    return PageResult(False, f"page {page}: {describe(op)} cannot be linearized: {why}", op)


def _conflict(page: int, a: _Cluster, b: _Cluster) -> PageResult:
    """Each of `a` and `b` must come before the other: say why, blaming the op that
    started last of the two that force it."""
    def first(c: _Cluster, d: _Cluster) -> str:
        if c.low_op is None:
            return f"{c.value!r} is the initial value, so it comes first"
        assert d.high_op is not None    # a cluster in conflict has ops
        return f"{describe(c.low_op)} ended before {describe(d.high_op)} started"
    assert a.high_op is not None and b.high_op is not None
    blame = a.high_op if a.high_op.start >= b.high_op.start else b.high_op
    return _bad(page, blame, f"the values {a.value!r} and {b.value!r} must each come before "
                f"the other: {first(a, b)}, and {first(b, a)}")


def check_zones(page: int, ops: Sequence[Op]) -> PageResult | None:
    """The verdict on one page's (already filtered) ops, or None if the page has ops
    other than reads and writes, or two writes of one value (or of "")."""
    clusters = _clusters(page, ops)
    if not isinstance(clusters, list):
        return clusters
    forward = sorted((c for c in clusters if c.low < c.high), key=lambda c: c.low)
    widest: _Cluster | None = None      # the zone reaching furthest so far
    for c in forward:
        if widest is not None and c.low < widest.high:
            return _conflict(page, widest, c)
        if widest is None or c.high > widest.high:
            widest = c
    lows = [c.low for c in forward]
    for c in clusters:
        if c.low >= c.high:
            k = bisect.bisect_left(lows, c.high) - 1
            if k >= 0 and forward[k].high > c.low:
                return _conflict(page, forward[k], c)
    return PageResult(True)
