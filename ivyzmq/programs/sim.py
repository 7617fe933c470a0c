"""`ivy sim`: the real protocol cores in a deterministic simulator with seeded faults.

    ivy sim --seed N [--trace]                one seed: schedule, outcome, verdict (and trace)
    ivy sim --seeds N [--start S] [--jobs J]  seeds S..S+N-1; exit 1 if any failed

`--bug NAME` (repeatable, not in --help) switches on a broken variant of ivyzmq/bugs.py to
show that the simulator catches it.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field

from ivyzmq import args as A
from ivyzmq import bugs
from ivyzmq.programs import Result

NAME = "sim"
HELP = "deterministic simulation of the protocol"
DESCRIPTION = ("Run the real protocol cores in a deterministic simulator with seeded faults "
               "(manager crashes, pauses, partitions, connection resets, delays) and check "
               "invariants, quiescent agreement and linearizability.")
NEEDS_CLUSTER = False
SHOW_FAILURES = 50


def add_arguments(p) -> None:
    from ivyzmq.sim.schedule import KINDS
    p.description = DESCRIPTION
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=A.natural, metavar="N", help="replay seed N verbosely")
    what.add_argument("--seeds", type=A.count, metavar="N", help="run N seeds, print a summary")
    p.add_argument("--start", type=A.natural, default=0, metavar="S",
                   help="first seed for --seeds (default 0)")
    p.add_argument("--jobs", type=A.count, default=os.cpu_count() or 1, metavar="J",
                   help="worker processes for --seeds (default: all cores)")
    p.add_argument("--kind", choices=KINDS, help="force this fault kind instead of the seed's")
    p.add_argument("--trace", action="store_true", help="with --seed: the full message trace")
    p.add_argument("--log", action="store_true",
                   help="with --seed: let the cores' log messages through")
    p.add_argument("--bug", action="append", default=[], choices=bugs.NAMES,
                   help=argparse.SUPPRESS)


@dataclass
class SimResult(Result):
    bugs: list[str]
    lines: list[str] = field(default_factory=list)
    seeds: int = 0
    failures: list = field(default_factory=list)

    def text(self) -> str:
        head = [f"broken variants switched on: {', '.join(self.bugs)}"] if self.bugs else []
        return "\n".join(head + self.lines)

    def json(self) -> dict:
        return {"seeds": self.seeds, "bugs": self.bugs,
                "failures": [{"seed": r.seed, "kind": r.kind, "failure": r.failure,
                              "message": r.message} for r in self.failures]}


def _many(args, res: SimResult) -> None:
    from ivyzmq.progress import bar
    from ivyzmq.sim.runner import Summary, run_many
    seeds, jobs = range(args.start, args.start + args.seeds), max(1, args.jobs)
    t0 = time.perf_counter()
    results = []
    with bar("sim", len(seeds), "seeds") as done:
        for one in run_many(seeds, jobs, args.kind, args.bug):
            results.append(one)
            done.advance()
    summary = Summary(results, time.perf_counter() - t0, jobs)
    res.seeds, res.failures = len(summary.results), summary.failures()
    res.lines.append(summary.table())
    if res.failures:
        res.lines.append(f"\n{len(res.failures)} failing seeds:")
        res.lines += [f"  seed {r.seed} ({r.kind}): [{r.failure}] {r.message[:160]}"
                      for r in res.failures[:SHOW_FAILURES]]
        res.lines.append(f"\nfirst failure in full:\n{res.failures[0].report}")


def run(args) -> SimResult:
    from ivyzmq.sim.runner import run_seed
    res = SimResult(list(args.bug))
    if args.seed is not None:
        one = run_seed(args.seed, args.kind, args.bug, verbose=True, full_trace=args.trace,
                       quiet=not args.log)
        res.seeds, res.failures, res.lines = 1, [one] if one.failure else [], [one.report]
    else:
        _many(args, res)
    res.status = 1 if res.failures else 0
    return res
