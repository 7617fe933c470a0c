"""Checker speed: histories of unique-value reads and writes on one page by 100 clients,
valid and with one stale read, at 1k, 10k and 100k operations; the time to load each from
JSON Lines and to check it, with the zones (the default) and with the search alone.

    .venv/bin/python bench/checker_speed.py [--sizes 1000,10000,100000] [--clients 100]
                                            [--search-up-to 1000] [--seed 1]

Each client runs its operations one after another (random durations, 1 ms on average);
each takes effect at a random instant of its interval, and a read returns what the
register held then.  About 1% of the writes time out (unknown, half of them applied) and
1% fail.  The stale history changes one read, late in the run, to the value of a write
that was overwritten before the read started.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import msgspec

from ivyzmq.checker import check
from ivyzmq.history import Op, load, save_ops


def history(n: int, clients: int, rng: random.Random) -> list[Op]:
    """A linearizable history of `n` ops on page 0."""
    clock = [rng.uniform(0, 0.001) for _ in range(clients)]
    planned = []        # (instant it takes effect, client, k, start, end)
    for i in range(n):
        c = rng.randrange(clients)
        start = clock[c]
        end = start + rng.expovariate(1000.0)
        clock[c] = end + rng.expovariate(10_000.0)
        planned.append((rng.uniform(start, end), c, i, start, end))
    planned.sort()
    ops, value = [], ""
    for _, c, i, start, end in planned:
        roll = rng.random()
        if roll < 0.5:
            ops.append(Op(client=c, node=c % 10, page=0, kind="read", value=value,
                          start=start, end=end, outcome="ok"))
            continue
        v, sub = f"c{c}-{i}", rng.random()
        outcome = "unknown" if sub < 0.01 else "failed" if sub < 0.02 else "ok"
        if outcome == "ok" or sub < 0.005:      # half the unknown writes took effect
            value = v
        ops.append(Op(client=c, node=c % 10, page=0, kind="write", value=v, start=start,
                      end=end if outcome != "unknown" else None, outcome=outcome))
    return ops


def with_stale_read(ops: list[Op], rng: random.Random) -> list[Op]:
    """A copy where one late read returns a value overwritten before it started: the
    value of an ok write that ended before another ok write started, which in turn
    ended before the read started."""
    writes = sorted((op for op in ops if op.kind == "write" and op.outcome == "ok"),
                    key=lambda op: op.end)
    reads = [i for i, op in enumerate(ops) if op.kind == "read"]
    i = rng.choice(reads[len(reads) * 3 // 4:])
    read = ops[i]
    later = max((w for w in writes if w.end < read.start), key=lambda w: w.start)
    stale = max((w for w in writes if w.end < later.start), key=lambda w: w.end)
    out = list(ops)
    out[i] = msgspec.structs.replace(read, value=stale.value)
    return out


def timed(ops: list[Op], **kw) -> tuple[str, float]:
    t0 = time.perf_counter()
    res = check(ops, **kw)
    took = time.perf_counter() - t0
    verdict = {True: "ok", False: "NOT", None: "unknown"}[res.ok]
    return verdict, took


def load_time(ops: list[Op], tmp: Path) -> float:
    path = tmp / "h.jsonl"
    save_ops(path, ops)
    t0 = time.perf_counter()
    load(path)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--search-up-to", type=int, default=1000,
                    help="also time the search alone on histories up to this size")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"{'ops':>7} {'load':>7}   {'valid':>14}   {'stale read':>14}   "
          f"{'valid, search only':>20}   {'stale, search only':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            good = history(n, args.clients, rng)
            bad = with_stale_read(good, rng)
            cells = [timed(good), timed(bad)]
            if n <= args.search_up_to:
                cells += [timed(good, fast_path=False), timed(bad, fast_path=False)]
            shown = [f"{v:>7} {t:5.2f} s" for v, t in cells]
            shown[2:] = [f"{s:>20}" for s in shown[2:]] or [f"{'-':>20}"] * 2
            print(f"{n:>7} {load_time(good, Path(tmp)):5.2f} s   {shown[0]:>14}   "
                  f"{shown[1]:>14}   " + "   ".join(shown[2:]))


if __name__ == "__main__":
    main()
