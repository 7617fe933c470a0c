"""`ivy experiment a|b|c|d|e`: the fault-tolerance experiments (a)-(e) of docs/PROTOCOL.md
section 8, against real daemons.

    ivy experiment a|b|c|d|e [-c CONFIG] [--clients 10] [--ops 1000] [--pages 10] [--seed 1]

(a) no faults: once with the primary manager alone (no replication), once with the backup too;
(b) the primary fails once at a random time (SIGKILL, no restart), then, as a second run, fails
    and is restarted; (c) the primary fails and restarts several times; (d) primary and backup
    both fail and restart several times, with moments where both are down and restarts in
    either order.

Each run starts the cluster afresh (or reuses the one found running, leaving it as it was
found at the end), drives the harness's client loop with at least 10 concurrent clients
while a nemesis applies the run's schedule (ivyzmq/programs/experiment_plans.py), and a
monitor polls every manager's status so that the time without a serving manager and each
failover can be measured. The clients of (b)-(d) pace themselves with a think time so that
a run lasts long enough for its faults to land while operations are flowing; (a) runs flat
out, since it measures replication's cost.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivyzmq import args as A
from ivyzmq.programs import Fail, Result
from ivyzmq.programs.experiment_plans import FAULT_CYCLES, Run, plan

NAME = "experiment"
HELP = "the fault-tolerance experiments (a)-(e) of docs/PROTOCOL.md section 8"
WHICH_HELP = ("a: no faults, without and with a backup; b: primary fails once, and fails "
              "then restarts; c: primary fails and restarts several times; d: primary and "
              "backup both fail and restart several times; e: random nodes die and come "
              "back, then a node and the primary")


def add_arguments(p) -> None:
    p.add_argument("which", choices=["a", "b", "c", "d", "e"], help=WHICH_HELP)
    p.add_argument("--clients", type=A.count, default=10)
    p.add_argument("--ops", type=A.count, default=1000, help="operations in all per run")
    p.add_argument("--pages", type=A.count,
                   help="pages used (default 10, or all the config has if fewer)")
    A.fits(p, "--pages", "pages", default=10)
    p.add_argument("--seed", type=A.natural, default=1)
    p.add_argument("--cycles", type=A.count, default=FAULT_CYCLES,
                   help=f"fail/restart cycles in (c) and (d) (default {FAULT_CYCLES})")
    p.add_argument("--plot", metavar="FILE.png", help="draw ops/s and latency over time, "
                   "faults marked, no-manager spans shaded (needs the `plot` extra)")


@dataclass
class RunResult:
    label: str
    counts: dict[str, int]
    elapsed: float
    no_manager: float
    dual: float
    failovers: list
    handbacks: int
    terms: list
    events: list
    verdict: object
    history_path: Path
    think: float
    t0: float
    error: str | None = None
    ops: list = field(default_factory=list)       # the history, for --plot
    spans: list = field(default_factory=list)     # (start, end) without a serving manager
    lost: int = 0                                 # pages lost at the end
    replicas: int = 0                             # the config's page replicas
    deaths: list = field(default_factory=list)    # (node name, kill -> declared dead s)

    @property
    def ok(self) -> bool:
        return bool(self.verdict.ok) and self.error is None


def run_once(dep, run: Run, *, clients: int, ops: int, pages: int, seed: int,
             history_path: Path, read_share: float = 0.5, done=None) -> RunResult:
    """One workload under the run's schedule; the cluster must be up. `done` (a progress
    bar) advances after each operation."""
    from ivyzmq.harness.failovers import failovers
    from ivyzmq.harness.monitor import SETTLE_TIMEOUT, Monitor
    from ivyzmq.harness.nemesis import Nemesis
    from ivyzmq.harness.ops import run_clients
    monitor = Monitor(dep.cluster).start()
    monitor.wait_seen()
    rngs = [random.Random(seed * 7919 + i) for i in range(clients)]

    def after_op(i: int, _op) -> None:
        if done is not None:
            done.advance()
        if run.think > 0:
            time.sleep(run.think * rngs[i].uniform(0.5, 1.5))   # the client's think time

    nemesis = Nemesis(dep, monitor, run.schedule)
    t0 = time.monotonic()
    nemesis.start(t0)
    try:
        res = run_clients(dep.cluster, clients=clients, ops=ops, read_share=read_share,
                          pages=pages, seed=seed, after_op=after_op)
        t_end = time.monotonic()
        nemesis.finish(2 * SETTLE_TIMEOUT)   # let it finish its repairs (restarts, handback)
    finally:
        nemesis.halt(SETTLE_TIMEOUT + 5)
        monitor.stop()
    t_last = max([t_end] + [e.t for e in nemesis.events])
    history_path.parent.mkdir(parents=True, exist_ok=True)
    res.history.save(history_path)
    monitor.save(history_path.with_suffix(".monitor.jsonl"), t0)
    none, dual = monitor.outage(t0, t_end)
    return RunResult(
        label=run.label, counts=res.counts(), elapsed=res.elapsed, no_manager=none, dual=dual,
        failovers=failovers(nemesis.events, monitor, res.history.ops()),
        handbacks=monitor.handbacks(t0, t_last + 1e-3 + SETTLE_TIMEOUT),
        terms=monitor.terms(t0 - 1.0, t_last + SETTLE_TIMEOUT), events=nemesis.events,
        verdict=res.verdict(), history_path=history_path, think=run.think, t0=t0,
        error=None if nemesis.error is None else repr(nemesis.error),
        ops=res.history.ops(), spans=monitor.no_manager_spans(t0, t_last),
        lost=_lost_pages(dep), replicas=dep.cluster.replicas, deaths=_deaths(dep, nemesis.events, monitor))


def _lost_pages(dep) -> int:
    """Pages the serving manager holds lost (their owner died with the only copy)."""
    from ivyzmq import protocol as P
    name = dep.admin.serving()
    reply = dep.admin.query(name, P.StatusQuery()) if name else None
    return sum(r.lost for r in reply.records) if reply else 0


def _deaths(dep, events: list, monitor) -> list[tuple[str, float | None]]:
    """For each node killed: how long until a serving manager held it dead."""
    out = []
    for ev in events:
        if ev.action == "kill" and ev.target.startswith("node"):
            seen = monitor.declared_dead(dep.cluster.pid_of(ev.target), ev.t)
            out.append((ev.target, None if seen is None else seen - ev.t))
    return out


# -- the cluster as found ------------------------------------------------------------------

class Found:
    """Brings up exactly the daemons each run wants, and at the end leaves the cluster as it
    was found: daemons found running run again, those this experiment started are stopped."""

    def __init__(self, dep):
        self.dep = dep
        self.found = set(dep.procs.running())

    def prepare(self, names: list[str]) -> None:
        from ivyzmq.harness.monitor import SETTLE_TIMEOUT
        if not self.found:
            self.dep.down()             # a fresh cluster for every run
            self.dep.up(names)
        else:
            running = set(self.dep.procs.running())
            for name in running - set(names):
                self.dep.procs.stop(name)
            missing = [n for n in names if n not in running]
            if missing:
                self.dep.up(missing)
        # Every node must report before a manager serves; with part of the managers up,
        # Deployment.up does not wait for that, so wait here (a lone primary waits out the
        # backup's grace first).
        self.dep.admin.wait_serving(SETTLE_TIMEOUT)

    def restore(self) -> None:
        if not self.found:
            self.dep.down()
            return
        running = set(self.dep.procs.running())
        for name in running - self.found:
            self.dep.procs.stop(name)
        missing = [n for n in self.dep.cluster.daemon_names()
                   if n in self.found and n not in running]
        if missing:
            self.dep.up(missing)


# -- output ------------------------------------------------------------------------------

HEADER = ("run", "ok", "failed", "unknown", "time s", "no-CM s", "kill->serving ms",
          "kill->op ms", "handbacks", "verdict")


def _ms_list(values: list[float | None], clean: list[bool]) -> str:
    """Milliseconds; a star marks a recovery (another fault came before the takeover)."""
    return ",".join("-" if v is None else f"{v * 1000:.0f}{'' if c else '*'}"
                    for v, c in zip(values, clean)) or "-"


def row(r: RunResult) -> tuple[str, ...]:
    from ivyzmq.checker import verdict_text
    fos = r.failovers
    serve = [None if f.serving is None else f.serving.got - f.killed for f in fos]
    op = [None if f.first_op is None else f.first_op - f.killed for f in fos]
    clean = [f.clean for f in fos]
    verdict = "linearizable" if r.verdict.ok else verdict_text(r.verdict)
    if r.error:
        verdict += f" (nemesis error: {r.error})"
    return (r.label, str(r.counts["ok"]), str(r.counts["failed"]), str(r.counts["unknown"]),
            f"{r.elapsed:.2f}", f"{r.no_manager:.2f}", _ms_list(serve, clean),
            _ms_list(op, clean), str(r.handbacks), verdict)


def table(rows: list[tuple[str, ...]]) -> str:
    allrows = [HEADER] + rows
    widths = [max(len(r[i]) for r in allrows) for i in range(len(HEADER) - 1)]
    lines = []
    for r in allrows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                 enumerate(zip(r, widths))]
        lines.append("  ".join(cells + [r[-1]]))
    return "\n".join(lines)


def details(r: RunResult) -> list[str]:
    out = [f"{r.label}: history {r.history_path}"]
    if r.think:
        out.append(f"  think time {r.think * 1000:.0f} ms per op (x0.5-1.5) so the run spans "
                   "its faults")
    for ev in r.events:
        state = " (serving)" if ev.serving and ev.action in ("kill", "pause") else ""
        out.append(f"  t={ev.t - r.t0:6.2f} s  {ev.action} {ev.target}{state}")
    for f in r.failovers:
        out.append(f"  {f.text()}")
    for name, took in r.deaths:
        out.append(f"  kill {name} -> declared dead "
                   + ("never seen" if took is None else f"after {took * 1000:.0f} ms"))
    if r.deaths or r.lost:
        out.append(f"  pages lost (replicas: {r.replicas}): {r.lost}")
    terms = " -> ".join(f"{t.name}@{t.epoch}" for t in r.terms)
    out.append(f"  serving terms seen: {terms or '-'}; handbacks: {r.handbacks}; "
               f"an older term still serving after a newer one: {r.dual:.2f} s")
    return out


def progress(r: RunResult) -> str:
    c = r.counts
    return (f"  run {r.label}: {c['ok']} ok, {c['failed']} failed, {c['unknown']} unknown "
            f"in {r.elapsed:.2f} s")


@dataclass
class ExperimentResult(Result):
    which: str
    head: str
    results: list[RunResult] = field(default_factory=list)
    plot: str | None = None

    @property
    def status(self) -> int:
        return 0 if self.ok else 1

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def text(self) -> str:
        rs = self.results
        lines = [self.head] + [progress(r) for r in rs] + ["", table([row(r) for r in rs])]
        if any(not f.clean for r in rs for f in r.failovers):
            lines.append("* a recovery, not a failover: another manager was hit before one "
                         "took over")
        for r in rs:
            lines += details(r)
        if self.which == "a" and len(rs) == 2:
            base, ft = rs
            lines.append(f"replication cost: {ft.elapsed:.3f} s with the backup / "
                         f"{base.elapsed:.3f} s without = {ft.elapsed / base.elapsed:.2f}x")
        if self.plot:
            lines.append(f"plot: {self.plot}")
        lines.append("verdict: every history linearizable" if self.ok else
                     "verdict: NOT every history is linearizable (or a nemesis failed)")
        return "\n".join(lines)

    def json(self) -> dict:
        return {"which": self.which, "ok": self.ok, "runs": [_run_json(r) for r in self.results]}


def _run_json(r: RunResult) -> dict:
    from ivyzmq.checker import verdict_text
    return {"label": r.label, "counts": r.counts, "elapsed": r.elapsed,
            "no_manager_s": r.no_manager, "dual_serving_s": r.dual, "handbacks": r.handbacks,
            "takeovers_ms": [None if f.serving is None else
                             round((f.serving.got - f.killed) * 1000) for f in r.failovers],
            "events": [{"t": round(e.t - r.t0, 3), "action": e.action, "target": e.target,
                        "serving": e.serving} for e in r.events],
            "terms": [{"name": t.name, "epoch": t.epoch} for t in r.terms],
            "linearizable": r.verdict.ok, "verdict": verdict_text(r.verdict),
            "history": str(r.history_path), "nemesis_error": r.error, "lost_pages": r.lost,
            "declared_dead_ms": {n: None if t is None else round(t * 1000)
                                 for n, t in r.deaths}}


# -- entry points ----------------------------------------------------------------------------

def experiment(args, dep) -> ExperimentResult:
    """The experiment `args.which` on the Deployment `dep`."""
    from ivyzmq.progress import bar
    cluster, which, seed = dep.cluster, args.which, args.seed
    clients = max(1, args.clients)
    t = cluster.timing
    head = (f"experiment ({which}): {clients} clients, {args.ops} ops per run on "
            f"{min(args.pages, cluster.pages)} pages, {len(cluster.nodes)} nodes, managers "
            f"{', '.join(m.name for m in cluster.managers)}; heartbeat "
            f"{t.heartbeat_interval:g} s x {t.liveness} (dead after {t.dead_after:g} s), "
            f"seed {seed}")
    runs = plan(which, cluster, seed, args.cycles, clients, args.ops)
    out = ExperimentResult(which, head)
    state = Found(dep)
    try:
        with bar(f"experiment {which}", len(runs) * args.ops) as done:
            for k, r in enumerate(runs):
                state.prepare(r.names)
                path = dep.path / f"experiment-{which}{k + 1}.jsonl"
                out.results.append(run_once(dep, r, clients=clients, ops=args.ops,
                                            pages=args.pages, seed=seed + k,
                                            history_path=path, done=done))
    finally:
        state.restore()
    if getattr(args, "plot", None):
        from ivyzmq import plots
        plots.write_png(args.plot, [plots.panel(r.label, r.ops, r.t0, r.t0 + r.elapsed,
                                                r.events, r.spans) for r in out.results],
                        f"experiment ({which})")
        out.plot = args.plot
    return out


def run(args) -> ExperimentResult:
    from ivyzmq.deploy import open_config
    from ivyzmq.plots import missing
    if args.plot and missing():
        raise Fail(f"--plot: {missing()}", 2)
    return experiment(args, open_config(args.config, args.run_dir))
