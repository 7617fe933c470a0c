"""Tests for ivyzmq.history and ivyzmq.checker."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from ivyzmq import cli
from ivyzmq.checker import CheckResult, check
from ivyzmq.history import History, HistoryError, Op, load, save_ops
from ivyzmq.zones import check_zones


def main(argv: list[str]) -> int:
    """`ivy check ARGV` in this process."""
    return cli.main(["check", *argv])


REPO = Path(__file__).resolve().parent.parent


def w(value: str, start: float, end: float | None, *, page: int = 0, client: int = 0,
      outcome: str = "ok") -> Op:
    return Op(client=client, node=0, page=page, kind="write", value=value,
              start=start, end=end, outcome=outcome)  # type: ignore[arg-type]


def r(value: str, start: float, end: float | None, *, page: int = 0, client: int = 0,
      outcome: str = "ok") -> Op:
    return Op(client=client, node=0, page=page, kind="read", value=value,
              start=start, end=end, outcome=outcome)  # type: ignore[arg-type]


def both(ops: list[Op]) -> list[CheckResult]:
    """Check with and without the fast path: the WGL search must agree."""
    return [check(ops), check(ops, fast_path=False)]


def assert_ok(ops: list[Op]) -> None:
    for res in both(ops):
        assert res.ok is True, res.explanation


def assert_bad(ops: list[Op], page: int = 0) -> list[CheckResult]:
    results = both(ops)
    for res in results:
        assert res.ok is False
        assert res.page == page
        assert res.explanation.startswith(f"page {page}: ")
        assert res.op is not None
    return results


# --- accepted histories -----------------------------------------------------


def test_empty_history() -> None:
    res = check([])
    assert res.ok is True and res.pages_checked == 0 and res.ops_checked == 0


def test_sequential() -> None:
    assert_ok([r("", 0, 1), w("a", 2, 3), r("a", 4, 5), w("b", 6, 7), r("b", 8, 9), r("b", 10, 11)])


def test_concurrent_read_sees_either_write() -> None:
    base = [w("a", 0, 10, client=1), w("b", 1, 11, client=2)]
    for seen in ("", "a", "b"):
        assert_ok(base + [r(seen, 2, 3, client=3)])
    # Reads after both writes must agree on one final value, either one.
    assert_ok(base + [r("a", 12, 13), r("a", 14, 15)])
    assert_ok(base + [r("b", 12, 13), r("b", 14, 15)])


def test_read_concurrent_with_write_sees_old_then_new() -> None:
    assert_ok([w("a", 0, 1), w("b", 2, 10), r("a", 3, 4), r("b", 5, 6), r("b", 11, 12)])


def test_touching_intervals_are_concurrent() -> None:
    # The read ends exactly when the write starts: closed intervals overlap.
    assert_ok([w("a", 5, 6), r("a", 0, 5)])


def test_unknown_write_took_effect() -> None:
    # The write timed out, but a much later read shows it did happen.
    assert_ok([w("a", 0, 1), w("b", 2, None, outcome="unknown"), r("a", 3, 4), r("b", 50, 51)])


def test_unknown_write_did_not_take_effect() -> None:
    assert_ok([w("a", 0, 1), w("b", 2, 3, outcome="unknown"), r("a", 10, 11), r("a", 12, 13)])


def test_unknown_write_may_take_effect_after_client_gave_up() -> None:
    # The client recorded an end of 3, but the write may land later.
    assert_ok([w("b", 2, 3, outcome="unknown"), r("", 10, 11), r("b", 12, 13)])


def test_unknown_and_failed_reads_are_ignored() -> None:
    assert_ok([w("a", 0, 1), r("zzz", 2, None, outcome="unknown"), r("zzz", 3, 4, outcome="failed")])


# --- rejected histories -----------------------------------------------------


def test_stale_read() -> None:
    results = assert_bad([w("w1", 0, 1), w("w2", 2, 3), r("w1", 4, 5, client=7)])
    for res in results:
        assert res.op == r("w1", 4, 5, client=7)
        assert "read by client 7 of 'w1'" in res.explanation


def test_lost_write() -> None:
    results = assert_bad([w("w1", 0, 1), w("w2", 2, 3), r("w2", 4, 5), r("w1", 6, 7, client=3)])
    for res in results:
        assert res.op == r("w1", 6, 7, client=3)


def test_read_of_never_written_value() -> None:
    results = assert_bad([w("a", 0, 1), r("nope", 2, 3)])
    assert "no write of that value" in results[0].explanation


def test_read_of_value_written_only_later() -> None:
    results = assert_bad([r("a", 0, 1), w("a", 2, 3)])
    assert "started after the read ended" in results[0].explanation
    assert results[1].op == r("a", 0, 1)


def test_reads_disagree_on_order() -> None:
    # w1 then w2 (not concurrent); a read sees w2, a later read sees w1.
    assert_bad([w("w1", 0, 1), w("w2", 2, 10), r("w2", 3, 4), r("w1", 5, 6)])
    # Concurrent writes: either order is fine, but readers must agree on it.
    assert_bad([w("w1", 0, 10), w("w2", 0, 10), r("w2", 11, 12), r("w1", 13, 14)])


def test_initial_value_after_write_completed() -> None:
    assert_bad([w("a", 0, 1), r("", 2, 3)])


def test_failed_write_is_ignored() -> None:
    results = assert_bad([w("a", 0, 1), w("b", 2, 3, outcome="failed"), r("b", 4, 5)])
    assert results[0].ops_checked == 2
    assert_ok([w("a", 0, 1), w("b", 2, 3, outcome="failed"), r("a", 4, 5)])


def test_unknown_write_cannot_take_effect_twice() -> None:
    # b may land once: a -> b -> a -> b would need b twice.
    assert_bad([w("a", 0, 1), w("b", 2, None, outcome="unknown"), r("b", 3, 4),
                w("a", 5, 6), r("a", 7, 8), r("b", 9, 10)])


def test_split_by_page() -> None:
    good = [w("x", 0, 1, page=1), r("x", 2, 3, page=1), w("y", 0, 1, page=3), r("y", 2, 3, page=3)]
    # On page 2 the read sees the older write; the same values on one page
    # would be fine on other pages.
    bad = [w("w1", 0, 1, page=2), w("w2", 2, 3, page=2), r("w1", 4, 5, page=2)]
    assert_bad(good + bad, page=2)
    # Values written on one page say nothing about another page.
    assert_bad([w("a", 0, 1, page=1), r("a", 2, 3, page=2)], page=2)
    res = check(good)
    assert res.ok is True and res.pages_checked == 2 and res.ops_checked == 4


def test_search_takes_matching_reads_at_once() -> None:
    """Two dozen reads concurrent with two writes: taking a matching read at once (and
    not trying the others at that point) keeps the search to a few hundred states."""
    ops = [w("a", 0, 1), w("b", 2, 10, client=1), w("a", 2, 10, client=2)]
    ops += [r(v, 2, 10, client=10 + i) for i in range(12) for v in "ab"]
    res = check(ops + [r("a", 11, 12)], fast_path=False, max_states=2000)
    assert res.ok is True
    res = check(ops + [r("b", 11, 12), r("a", 13, 14)], fast_path=False, max_states=2000)
    assert res.ok is False and res.op == r("a", 13, 14)


def test_budget_exceeded_gives_unknown() -> None:
    # Many concurrent unknown writes of one value (so all optional) and an
    # impossible final read force an exponential search; a tiny budget must
    # give up rather than hang.
    ops = [w("u", 0, None, outcome="unknown") for i in range(12)]
    ops += [w("a", 0, 1), r("a", 2, 3), r("u", 4, 5), r("a", 6, 7)]
    res = check(ops, max_states=100, fast_path=False)
    assert res.ok is None
    assert res.page == 0
    assert "search budget exceeded on page 0" in res.explanation
    assert check(ops).ok is False  # with the default budget it is decided


def test_violation_on_another_page_beats_budget() -> None:
    hard = [w("u", 0, None, outcome="unknown") for i in range(12)]
    hard += [w("a", 0, 1), r("a", 2, 3), r("u", 4, 5), r("a", 6, 7)]
    bad = [w("w1", 0, 1, page=5), w("w2", 2, 3, page=5), r("w1", 4, 5, page=5)]
    res = check(hard + bad, max_states=100, fast_path=False)
    assert res.ok is False and res.page == 5


# --- the fast path (zones) ------------------------------------------------------


def test_zones_decide_unique_values_and_name_the_read() -> None:
    """Each rejection the zones must make, with its reason; states=0 shows no search."""
    cases = [
        ([w("w1", 0, 1), w("w2", 2, 3), r("w1", 4, 5)], "must each come before the other"),
        ([w("a", 0, 1), r("nope", 2, 3)], "no write of that value"),
        ([r("a", 0, 1), w("a", 2, 3)], "started after the read ended"),
        ([w("w1", 0, 10), w("w2", 0, 10), r("w2", 11, 12), r("w1", 13, 14)], "each come before"),
        ([w("a", 0, 1), w("b", 2, 3, outcome="failed"), r("b", 4, 5)], "no write of that value"),
        ([w("a", 0, 1), r("", 2, 3)], "'' is the initial value, so it comes first"),
    ]
    for ops, why in cases:
        res = check(ops)
        assert res.ok is False and res.states == 0 and why in res.explanation, res
        assert res.op is not None and res.op.kind == "read"
        assert check(ops, fast_path=False).ok is False


def test_zones_with_pending_writes() -> None:
    pending = w("b", 2, None, outcome="unknown")
    for ops in ([w("a", 0, 1), pending, r("a", 3, 4), r("b", 50, 51)],   # it landed late
                [w("a", 0, 1), pending, r("a", 3, 4), r("a", 60, 61)],   # it never did
                [pending, r("b", 0.5, 2.5), w("c", 5, 6), r("c", 7, 8)]):
        res = check(ops)
        assert res.ok is True and res.states == 0, res.explanation
    # Landed, overwritten, then seen again: no.
    res = check([w("a", 0, 1), pending, r("b", 3, 4), w("c", 5, 6), r("b", 7, 8)])
    assert res.ok is False and res.op == r("b", 7, 8)


def test_zones_on_their_own() -> None:
    # Without the cheap checks in front: a read that ended before its write started.
    res = check_zones(0, [r("a", 0, 1), w("a", 2, 3)])
    assert res is not None and res.ok is False and "started after the read ended" in res.explanation
    assert check_zones(0, [w("a", 0, 1), w("a", 2, 3)]) is None      # not unique: not theirs
    assert check_zones(0, [w("", 0, 1)]) is None
    # Zones that only touch: the read of a and the write of b may share instant 3.
    assert_ok([w("a", 0, 1), r("a", 3, 4), w("b", 2, 3), r("b", 5, 6)])
    assert_ok([w("a", 0, 1), r("a", 3, 4), w("b", 3, 3)])


def test_zones_decide_a_large_history_of_many_clients() -> None:
    """100 clients with overlapping ops: far past what the search decides within its
    budget, and the zones take it in one pass."""
    ops = random_execution(random.Random(7), 20_000, spread=40.0, clients=100)
    res = check(ops)
    assert res.ok is True and res.states == 0, res.explanation
    i = max(k for k, op in enumerate(ops) if op.kind == "read" and op.outcome == "ok")
    bad = list(ops)
    bad[i] = msgspec.structs.replace(ops[i], value=ops[0].value if ops[0].kind == "write"
                                     else "p0-w0")
    assert check(bad).ok is False


# --- compare and swap, add --------------------------------------------------------


def cas(expected: str, new: str, start: float, end: float | None, *, swapped: bool | None = True,
        outcome: str = "ok", client: int = 0, page: int = 0) -> Op:
    return Op(client=client, node=0, page=page, kind="cas", value=new, expected=expected,
              swapped=swapped if outcome == "ok" else None, start=start, end=end,
              outcome=outcome)  # type: ignore[arg-type]


def add(delta: int, start: float, end: float | None, *, result: int | None = None,
        outcome: str = "ok", client: int = 0, page: int = 0) -> Op:
    return Op(client=client, node=0, page=page, kind="add", value="", delta=delta,
              result=result, start=start, end=end, outcome=outcome)  # type: ignore[arg-type]


def test_cas_accepted() -> None:
    assert_ok([w("a", 0, 1), cas("a", "b", 2, 3), r("b", 4, 5), cas("a", "c", 6, 7, swapped=False),
               r("b", 8, 9), cas("", "x", 10, 11, swapped=False)])
    assert_ok([cas("", "a", 0, 1), r("a", 2, 3)])     # from the initial value
    # Two concurrent cas from one value: only one of them swaps.
    assert_ok([w("0", 0, 1), cas("0", "1", 2, 5, client=1), cas("0", "2", 2, 5, client=2,
                                                                   swapped=False), r("1", 6, 7)])


def test_cas_rejected() -> None:
    bad = assert_bad([w("1", 0, 1), cas("2", "3", 2, 3)])     # swapped from a value not there
    assert "cas by client 0 of '2' -> '3' (swapped)" in bad[0].explanation
    assert_bad([w("2", 0, 1), w("1", 2, 3), cas("2", "3", 4, 5)])   # 2 was overwritten
    assert_bad([w("2", 0, 1), cas("2", "3", 2, 3, swapped=False)])  # it was there
    assert_bad([w("0", 0, 1), cas("0", "1", 2, 5, client=1), cas("0", "2", 2, 5, client=2)])
    assert_bad([w("a", 0, 1), cas("a", "b", 2, 3), r("a", 4, 5)])


def test_unknown_cas_may_or_may_not_apply() -> None:
    base = [w("1", 0, 1), cas("1", "2", 2, None, outcome="unknown")]
    assert_ok(base + [r("1", 3, 4)])
    assert_ok(base + [r("2", 3, 4)])
    assert_ok(base + [r("1", 3, 4), r("2", 50, 51)])     # it landed after the first read
    assert_bad(base + [r("2", 3, 4), r("1", 5, 6)])      # it cannot be undone
    assert_bad([w("1", 0, 1), cas("3", "2", 2, None, outcome="unknown"), r("2", 3, 4)])
    assert_ok([w("1", 0, 1), cas("1", "2", 2, 3, outcome="failed"), r("1", 4, 5)])
    assert_bad([w("1", 0, 1), cas("1", "2", 2, 3, outcome="failed"), r("2", 4, 5)])


def test_adds() -> None:
    adds = [add(1, 0, 1), add(2, 0, 1, client=1), add(3, 2, 3)]
    assert_ok(adds + [r("6", 4, 5)])
    lost = assert_bad(adds + [r("5", 4, 5)])      # the sum of the ok adds is 6
    assert "read by client 0 of '5'" in lost[0].explanation
    assert_ok([r("", 0, 1), r("0", 2, 3), add(5, 4, 5, result=5), r("5", 6, 7)])
    assert_ok([add(1, 0, 5, result=2), add(1, 0, 5, result=1, client=1)])
    assert_bad([add(1, 0, 5, result=1), add(1, 0, 5, result=1, client=1)])  # a lost update
    assert_ok([add(5, 0, None, outcome="unknown"), r("0", 1, 2)])
    assert_ok([add(5, 0, None, outcome="unknown"), r("5", 1, 2)])
    assert_bad([add(5, 0, None, outcome="unknown"), r("10", 1, 2)])
    assert_bad([add(5, 0, 1, outcome="failed"), r("5", 2, 3)])
    assert_ok([w("7", 0, 1), cas("7", "9", 2, 3), add(-10, 4, 5, result=-1)])
    assert_ok([w(str(2 ** 63 - 1), 0, 1), add(1, 2, 3, result=-2 ** 63)])     # 64-bit wrap
    res = check([add(1, 0, 1), r("many", 2, 3)])
    assert res.ok is False and "'many' is not an integer" in res.explanation


def test_adds_on_one_page_strings_on_another() -> None:
    ops = [add(2, 0, 1, page=1), r("2", 2, 3, page=1), w("2", 0, 1, page=2), r("2", 2, 3, page=2)]
    res = check(ops)
    assert res.ok is True and res.pages_checked == 2
    assert check(ops + [r("0", 4, 5, page=2)]).ok is False      # "0" is not "" on page 2


# --- randomized --------------------------------------------------------------


def random_execution(rng: random.Random, n: int, *, page: int = 0, spread: float = 3.0,
                     clients: int = 10) -> list[Op]:
    """A real sequential execution on one register, with blurred timestamps.

    Op i takes effect at time i; its recorded interval is widened randomly
    around that point, so ops overlap but each interval still contains the
    op's real linearization point.  Some writes are failed (never applied)
    or unknown (applied or not, recorded without an end).
    """
    ops: list[Op] = []
    value = ""
    for i in range(n):
        t = float(i)
        start = t - rng.uniform(0, spread)
        end = t + rng.uniform(0, spread)
        client = rng.randrange(clients)
        roll = rng.random()
        if roll < 0.45:
            ops.append(r(value, start, end, page=page, client=client))
        elif roll < 0.85:
            value = f"p{page}-w{i}"
            ops.append(w(value, start, end, page=page, client=client))
        elif roll < 0.92:
            ops.append(w(f"p{page}-failed{i}", start, end, page=page, client=client, outcome="failed"))
        else:
            applied = rng.random() < 0.5
            v = f"p{page}-unknown{i}"
            if applied:
                value = v
            ops.append(w(v, start, None, page=page, client=client, outcome="unknown"))
    return ops


@pytest.mark.parametrize("seed", range(20))
def test_random_valid_histories_accepted_and_corruptions_rejected(seed: int) -> None:
    rng = random.Random(seed)
    ops = random_execution(rng, 200)
    assert_ok(ops)

    reads = [i for i, op in enumerate(ops) if op.kind == "read" and op.outcome == "ok"]

    # Corruption 1: a value nobody wrote.
    i = rng.choice(reads)
    bad = list(ops)
    bad[i] = msgspec.structs.replace(ops[i], value="never-written")
    assert_bad(bad)

    # Corruption 2: the value of an ok write that was definitely overwritten
    # before the read started (w_j ends before w_k starts, w_k ends before
    # the read starts).  Only the search can reject this one.
    ok_writes = [op for op in ops if op.kind == "write" and op.outcome == "ok"]
    candidates = []
    for i in reads:
        rd = ops[i]
        # Latest start of a write that surely finished before the read began.
        latest = max((wk.start for wk in ok_writes if wk.end is not None and wk.end < rd.start),
                     default=None)
        if latest is not None:
            candidates += [(i, wj.value) for wj in ok_writes
                           if wj.end is not None and wj.end < latest]
    assert candidates
    i, stale = rng.choice(candidates)
    bad = list(ops)
    bad[i] = msgspec.structs.replace(ops[i], value=stale)
    assert_bad(bad)


def _sequential_ok(order: Sequence[Op], integer: bool) -> bool:
    """Whether the ops, one after another in this order, are legal on a register."""
    def num(text: str) -> object:
        return (int(text) if text else 0) if integer else text
    value = num("")
    for op in order:
        if op.kind == "read" and num(op.value) != value:
            return False
        if op.kind == "write":
            value = num(op.value)
        elif op.kind == "cas":
            hit = value == num(op.expected)
            if op.swapped is not None and op.swapped != hit:
                return False
            value = num(op.value) if hit else value
        elif op.kind == "add":
            value = (value + op.delta + 2 ** 63) % 2 ** 64 - 2 ** 63  # type: ignore[operator]
            if op.result is not None and op.result != value:
                return False
    return True


def brute_force_linearizable(ops: list[Op]) -> bool:
    """Reference answer by trying every order of every allowed subset of ops."""
    integer = any(op.kind == "add" for op in ops)
    ops = [op for op in ops if op.outcome == "ok" or (op.outcome == "unknown" and op.kind != "read")]
    ok_ops = [op for op in ops if op.outcome == "ok"]
    unknown = [op for op in ops if op.outcome == "unknown"]

    def ret(op: Op) -> float:
        return op.end if op.outcome == "ok" and op.end is not None else float("inf")

    for mask in range(1 << len(unknown)):
        chosen = ok_ops + [u for k, u in enumerate(unknown) if mask >> k & 1]
        for order in itertools.permutations(chosen):
            # Real-time order: an op that returned before another was called
            # must come first.
            if any(ret(b) < a.start for k, a in enumerate(order) for b in order[k + 1:]):
                continue
            if _sequential_ok(order, integer):
                return True
    return False


def random_small_op(rng: random.Random, kinds: str, values: list[str]) -> Op:
    """One op of a random kind (r, w, c, a in `kinds`) on values from `values`."""
    start = float(rng.randint(0, 8))
    end = start + rng.randint(0, 4)
    outcome = rng.choice(["ok", "ok", "ok", "unknown", "failed"])
    kind = {"r": "read", "w": "write", "c": "cas", "a": "add"}[rng.choice(kinds)]
    extra: dict = {}
    if kind == "cas":
        extra = {"expected": rng.choice(values),
                 "swapped": rng.choice([True, False, None]) if outcome == "ok" else None}
    if kind == "add":
        extra = {"delta": rng.choice([1, 2, -1]),
                 "result": rng.choice([None, rng.randint(0, 3)]) if outcome == "ok" else None}
    value = "" if kind == "add" else rng.choice(values if kind == "read" else values[1:])
    return Op(client=0, node=0, page=0, kind=kind, value=value, start=start,  # type: ignore[arg-type]
              end=None if outcome == "unknown" and rng.random() < 0.5 else end,
              outcome=outcome, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(400))
@pytest.mark.parametrize("kinds", ["rw", "rwc", "rwca"])
def test_small_random_histories_match_brute_force(seed: int, kinds: str) -> None:
    rng = random.Random(seed)
    values = ["", "1", "2", "3"] if "a" in kinds else ["", "a", "b", "c"]
    ops = [random_small_op(rng, kinds, values) for _ in range(rng.randint(1, 6))]
    expected = brute_force_linearizable(ops)
    for res in both(ops):
        assert res.ok is expected, (ops, res)


@pytest.mark.parametrize("seed", range(400))
def test_small_unique_value_histories_match_brute_force(seed: int) -> None:
    """Every write has its own value: the zones decide (with no search states)."""
    rng = random.Random(seed)
    ops = []
    for i in range(rng.randint(1, 6)):
        op = random_small_op(rng, "rw", ["", "v0", "v1", "v2", "v3", "zz"])
        ops.append(msgspec.structs.replace(op, value=f"v{i}") if op.kind == "write" else op)
    expected = brute_force_linearizable(ops)
    fast, search = both(ops)
    assert fast.ok is expected and search.ok is expected, (ops, fast, search)
    assert fast.states == 0


def test_large_concurrent_history_on_three_pages() -> None:
    rng = random.Random(1234)
    ops: list[Op] = []
    for page in range(3):
        ops += random_execution(rng, 700, page=page, spread=4.0)
    rng.shuffle(ops)
    assert len(ops) >= 2000
    res = check(ops)
    assert res.ok is True, res.explanation
    assert res.pages_checked == 3


# --- history file ------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    hist = History()
    ops = random_execution(random.Random(5), 50)
    threads = [threading.Thread(target=lambda chunk=ops[k::4]: [hist.append(o) for o in chunk])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(hist) == len(ops)
    path = tmp_path / "h.jsonl"
    hist.save(path)
    assert sorted(load(path), key=lambda o: o.start) == sorted(ops, key=lambda o: o.start)
    assert len(path.read_text().splitlines()) == len(ops)


GOOD_LINE = {"client": 1, "node": 2, "page": 3, "kind": "write", "value": "v",
             "start": 1.0, "end": 2.0, "outcome": "ok"}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({k: v for k, v in GOOD_LINE.items() if k != "end"}), "`end`"),
        (json.dumps(GOOD_LINE | {"page": "3"}), "$.page"),
        (json.dumps(GOOD_LINE | {"kind": "delete"}), "$.kind"),
        (json.dumps(GOOD_LINE | {"outcome": "maybe"}), "$.outcome"),
        (json.dumps(GOOD_LINE | {"extra": 1}), "`extra`"),
        (json.dumps(GOOD_LINE | {"end": 0.5}), "`end`"),
        (json.dumps(GOOD_LINE | {"end": None}), "`end`"),
        ("[1, 2]", "invalid op"),
    ],
)
def test_load_rejects_malformed_line(tmp_path: Path, line: str, needle: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps(GOOD_LINE) + "\n\n" + line + "\n")
    with pytest.raises(HistoryError) as info:
        load(path)
    msg = str(info.value)
    assert f"{path}:3:" in msg
    assert needle in msg


def test_atomic_ops_round_trip_and_old_lines_still_load(tmp_path: Path) -> None:
    ops = [w("a", 0, 1), cas("a", "b", 2, 3), cas("b", "c", 4, None, outcome="unknown"),
           add(3, 5, 6, result=3, page=1), add(-1, 7, None, outcome="unknown", page=1)]
    path = tmp_path / "h.jsonl"
    save_ops(path, ops)
    assert load(path) == ops
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == GOOD_LINE | {"client": 0, "node": 0, "page": 0, "value": "a",
                                    "start": 0.0, "end": 1.0}   # no new keys on a write
    assert lines[1]["swapped"] is True and lines[1]["expected"] == "a"
    assert lines[3]["delta"] == 3 and lines[3]["result"] == 3
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps(GOOD_LINE) + "\n")
    assert load(old)[0].swapped is None and load(old)[0].delta == 0


@pytest.mark.parametrize(("fields", "needle"), [
    ({"swapped": True}, "`swapped` is only for kind 'cas'"),
    ({"expected": "x"}, "`expected` is only for kind 'cas'"),
    ({"delta": 1}, "`delta` is only for kind 'add'"),
    ({"kind": "add", "result": 1, "outcome": "unknown", "end": None}, "`result` must be null"),
    ({"kind": "cas", "swapped": False, "outcome": "failed"}, "`swapped` must be null"),
])
def test_load_rejects_misplaced_atomic_fields(tmp_path: Path, fields: dict, needle: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps(GOOD_LINE | fields) + "\n")
    with pytest.raises(HistoryError, match=needle):
        load(path)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read"):
        load(tmp_path / "absent.jsonl")


def test_op_rejects_end_before_start() -> None:
    with pytest.raises(ValueError, match="before `start`"):
        w("a", 2, 1)


# --- CLI ---------------------------------------------------------------------


def write_history(tmp_path: Path, ops: list[Op], name: str = "h.jsonl") -> str:
    path = tmp_path / name
    save_ops(path, ops)
    return str(path)


GOOD = [w("a", 0, 1, page=1), r("a", 2, 3, page=1), w("b", 0, 1, page=2)]
BAD = [w("w1", 0, 1, page=4), w("w2", 2, 3, page=4), r("w1", 4, 5, page=4, client=2)]


def test_cli_linearizable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write_history(tmp_path, GOOD)]) == 0
    assert capsys.readouterr().out == "linearizable: 3 ops on 2 pages\n"


def test_cli_not_linearizable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write_history(tmp_path, BAD)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("NOT linearizable: page 4: read by client 2 of 'w1'")
    assert out.count("\n") == 1


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write_history(tmp_path, BAD), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["page"] == 4 and doc["op"]["value"] == "w1"
    assert main([write_history(tmp_path, GOOD), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_cli_budget_exceeded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ops = [w("u", 0, None, outcome="unknown") for i in range(12)]
    ops += [w("a", 0, 1), r("a", 2, 3), r("u", 4, 5), r("a", 6, 7)]
    # The fast path cannot decide this one, so a tiny budget runs out.
    assert main([write_history(tmp_path, ops), "--max-states", "10"]) == 2
    assert capsys.readouterr().out.startswith("unknown: search budget exceeded on page 0")


def test_cli_malformed_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("garbage\n")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ivy check: error: {path}:1:") and err.count("\n") == 1
    assert main([str(tmp_path / "absent.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("ivy check: error: ")


def test_cli_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: ivy check" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "HISTORY_FILE" in capsys.readouterr().out


def test_cli_subprocess(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys; from ivyzmq.cli import main; sys.exit(main(['check', *sys.argv[1:]]))"
    for ops, status, prefix in [(GOOD, 0, "linearizable"), (BAD, 1, "NOT linearizable")]:
        path = write_history(tmp_path, ops, f"h{status}.jsonl")
        proc = subprocess.run([sys.executable, "-c", code, path], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)
        assert proc.returncode == status, proc.stderr
        assert proc.stdout.startswith(prefix)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ivy check: error: ")
