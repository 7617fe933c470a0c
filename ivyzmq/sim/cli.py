"""`ivy sim`: replay one seed verbosely, or run many and print a summary table.

    ivy sim --seed N [--trace]              one seed: schedule, outcome, verdict (and trace)
    ivy sim --seeds N [--start S] [--jobs J]  seeds S..S+N-1; exit 1 if any failed

`--bug NAME` (repeatable, not in --help) switches on a broken variant from ivyzmq/bugs.py to
show that the simulator catches it.
"""
from __future__ import annotations

import argparse
import os

from ivyzmq.sim.runner import BUG_NAMES, run_seed, summarize
from ivyzmq.sim.schedule import KINDS

SHOW_FAILURES = 50


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ivy sim",
        description="Run the real protocol cores in a deterministic simulator with seeded "
                    "faults (manager crashes, pauses, partitions, connection resets, delays) "
                    "and check invariants, quiescent agreement and linearizability.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=int, metavar="N", help="replay seed N verbosely")
    what.add_argument("--seeds", type=int, metavar="N", help="run N seeds, print a summary")
    p.add_argument("--start", type=int, default=0, metavar="S",
                   help="first seed for --seeds (default 0)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                   help="worker processes for --seeds (default: all cores)")
    p.add_argument("--kind", choices=KINDS, help="force this fault kind instead of the seed's")
    p.add_argument("--trace", action="store_true", help="with --seed: the full message trace")
    p.add_argument("--log", action="store_true",
                   help="with --seed: let the cores' log messages through")
    p.add_argument("--bug", action="append", default=[], choices=BUG_NAMES,
                   help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:     # --help or a usage error: return instead of exiting
        return e.code if isinstance(e.code, int) else 2
    if args.bug:
        print(f"broken variants switched on: {', '.join(args.bug)}")
    if args.seed is not None:
        res = run_seed(args.seed, args.kind, args.bug, verbose=True, full_trace=args.trace,
                       quiet=not args.log)
        print(res.report)
        return 1 if res.failure else 0
    summary = summarize(range(args.start, args.start + args.seeds), max(1, args.jobs),
                        args.kind, args.bug)
    print(summary.table())
    failures = summary.failures()
    if failures:
        print(f"\n{len(failures)} failing seeds:")
        for r in failures[:SHOW_FAILURES]:
            print(f"  seed {r.seed} ({r.kind}): [{r.failure}] {r.message[:160]}")
        print(f"\nfirst failure in full:\n{failures[0].report}")
    return 1 if failures else 0
