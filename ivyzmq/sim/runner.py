"""Run seeds: one verbosely, or many across processes, and report what failed and how.

A failing seed's report carries everything needed to understand and replay it without
re-running: the seed, the configuration, the fault schedule, the violation and the last
Ivy messages before it (with faults and role changes interleaved).
"""
from __future__ import annotations

import multiprocessing
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from loguru import logger

from ivyzmq import bugs
from ivyzmq.sim.schedule import Plan, make_plan
from ivyzmq.sim.checks import Violation
from ivyzmq.sim.world import Row, World

TRACE_TAIL = 60

BUG_NAMES = bugs.NAMES      # the broken variants, for --bug and the tests


@dataclass
class Result:
    seed: int
    kind: str
    failure: str | None = None      # a Violation kind, or "exception"
    message: str = ""
    at: float = 0.0                 # simulated time of the failure (or of the end)
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    failovers: int = 0
    steps: int = 0
    report: str = ""                # the full printout: kept for failing seeds only


def replay_command(seed: int, kind: str | None, bug_names: Iterable[str]) -> str:
    cmd = f"ivy sim --seed {seed}"
    if kind:
        cmd += f" --kind {kind}"
    return cmd + "".join(f" --bug {b}" for b in sorted(bug_names))


def run_plan(plan: Plan, bug_names: Iterable[str] = (),
             quiet: bool = True) -> tuple[Result, World]:
    """Run one plan to its end and check it, with the broken variants `bug_names` in the
    cores of this run (and nowhere else)."""
    names = bugs.check(bug_names)
    if quiet:
        logger.disable("ivyzmq")
    try:
        world = World(plan.seed, plan.cfg, plan.faults, bugs=names)
        res = Result(plan.seed, plan.kind)
        try:
            world.run()
            world.check_end()
        except Violation as v:
            res.failure, res.message = v.kind, v.text
        except Exception:   # a core that crashes is a bug too: report it like a violation
            res.failure, res.message = "exception", traceback.format_exc().rstrip()
    finally:
        if quiet:
            logger.enable("ivyzmq")
    outcomes = Counter(op.outcome for op in world.history)
    res.ok, res.failed, res.unknown = outcomes["ok"], outcomes["failed"], outcomes["unknown"]
    res.failovers = max(0, world.activations - 1)
    res.at, res.steps = world.now, world.steps
    return res, world


def format_rows(rows: list[Row]) -> str:
    lines = [f"{'time':>9}  {'type':<22} {'from':>4} {'to':>4} {'page':>4} {'req':>4} "
             f"{'rid':>4} {'epoch':>5} {'opseq':>5}  note"]
    for t, typ, src, dest, page, req, rid, epoch, opseq, note in rows:
        if typ == "#":
            lines.append(f"{t:9.4f}  -- {note}")
        else:
            lines.append(f"{t:9.4f}  {typ:<22} {src:>4} {dest:>4} {page:>4} {req:>4} "
                         f"{rid:>4} {epoch:>5} {opseq:>5}  {note}")
    return "\n".join(lines)


def tail(rows: list[Row], n: int = TRACE_TAIL) -> list[Row]:
    """The rows from the n-th last Ivy message on (markers in between kept)."""
    count, i = 0, len(rows)
    while i > 0 and count < n:
        i -= 1
        count += rows[i][1] != "#"
    return rows[i:]


def report(plan: Plan, res: Result, world: World, full_trace: bool = False,
           replay: str = "") -> str:
    out = [plan.describe(), outcome_line(res)]
    if res.failure:
        out.append(f"VIOLATION [{res.failure}] at t={res.at:.4f}: {res.message}")
    else:
        out.append("verdict: ok (invariants held, quiescent agreement, linearizable)")
    rows = world.trace if full_trace else tail(world.trace)
    if full_trace or res.failure:
        what = "message trace" if full_trace else f"last {TRACE_TAIL} Ivy messages"
        out += [f"{what}:", format_rows(rows)]
    if res.failure and replay:
        out.append(f"replay: {replay} --trace")
    return "\n".join(out)


def outcome_line(res: Result) -> str:
    return (f"operations: {res.ok} ok, {res.failed} failed, {res.unknown} unknown; "
            f"failovers {res.failovers}; {res.steps} steps, {res.at:.2f} s simulated")


def run_seed(seed: int, kind: str | None = None, bug_names: Iterable[str] = (),
             verbose: bool = False, full_trace: bool = False, quiet: bool = True) -> Result:
    """Run one seed. The report is filled in when it fails, or always when `verbose`
    (with the whole message trace if `full_trace`)."""
    plan = make_plan(seed, kind)
    names = bugs.check(bug_names)
    res, world = run_plan(plan, names, quiet=quiet)
    if res.failure or verbose:
        res.report = report(plan, res, world, full_trace, replay_command(seed, kind, names))
    return res


def _work(args: tuple[int, str | None, tuple[str, ...]]) -> Result:
    seed, kind, names = args
    return run_seed(seed, kind, names)


def run_many(seeds: Iterable[int], jobs: int = 1, kind: str | None = None,
             bug_names: Iterable[str] = ()) -> Iterator[Result]:
    """Results in seed order; with jobs > 1 the seeds are spread over worker processes."""
    names = tuple(sorted(bugs.check(bug_names)))
    work = ((s, kind, names) for s in seeds)
    if jobs <= 1:
        yield from map(_work, work)
        return
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        yield from pool.imap(_work, work, chunksize=8)


def first_failure(seeds: Iterable[int], kind: str | None = None,
                  bug_names: Iterable[str] = ()) -> tuple[Result | None, int]:
    """The first failing seed (or None) and how many seeds it took."""
    n = 0
    for res in run_many(seeds, 1, kind, bug_names):
        n += 1
        if res.failure:
            return res, n
    return None, n


@dataclass
class Summary:
    results: list[Result]
    seconds: float
    jobs: int

    def failures(self) -> list[Result]:
        return [r for r in self.results if r.failure]

    def table(self) -> str:
        rows: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
        for r in self.results:
            for key in (r.kind, "total"):
                row = rows[key]
                row[0] += 1
                row[1] += r.failure is not None
                row[2] += r.ok
                row[3] += r.failed
                row[4] += r.unknown
                row[5] += r.failovers
        head = f"{'fault kind':<16}{'seeds':>7}{'failed':>8}{'ops ok':>9}{'failed':>8}" \
               f"{'unknown':>9}{'failovers':>11}"
        lines = [head]
        for key in sorted(k for k in rows if k != "total") + ["total"]:
            s, f, ok, fl, un, fo = rows[key]
            lines.append(f"{key:<16}{s:>7}{f:>8}{ok:>9}{fl:>8}{un:>9}{fo:>11}")
        n = len(self.results)
        rate = n / self.seconds if self.seconds else 0.0
        lines.append(f"seeds run: {n} in {self.seconds:.1f} s ({rate:.1f} seeds/s, "
                     f"{self.jobs} jobs)")
        by_kind = Counter(r.failure for r in self.failures())
        lines.append("failures by kind: " + (", ".join(f"{k} {v}" for k, v in
                                                         sorted(by_kind.items())) or "none"))
        return "\n".join(lines)


def summarize(seeds: Iterable[int], jobs: int, kind: str | None = None,
              bug_names: Iterable[str] = ()) -> Summary:
    t0 = time.perf_counter()
    results = list(run_many(seeds, jobs, kind, bug_names))
    return Summary(results, time.perf_counter() - t0, jobs)
