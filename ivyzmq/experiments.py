"""The fault-tolerance experiments (a)-(d) of PROTOCOL.md section 2, against real daemons.

    ivy experiment a|b|c|d [-c CONFIG] [--clients 10] [--ops 1000] [--pages 10] [--seed 1]

(a) no faults: once with the primary manager alone (no replication), once with the backup too;
(b) the primary fails once at a random time (SIGKILL, no restart), then, as a second run, fails
    and is restarted; (c) the primary fails and restarts several times; (d) primary and backup
    both fail and restart several times, with moments where both are down and restarts in
    either order.

Each run starts the cluster afresh (or reuses the one found running, leaving it as it was
found at the end), drives `workload.run_clients` with at least 10 concurrent clients while a
nemesis thread applies the faults, and a monitor thread polls every manager's status so that
the time without a serving manager and each failover can be measured. The clients of (b)-(d)
pace themselves with a think time so that a run lasts long enough for its faults to land
while operations are flowing; (a) runs flat out, since it measures replication's cost.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path


from ivyzmq import config as C
from ivyzmq import workload
from ivyzmq.control import RunDir
from ivyzmq.history import Op
from ivyzmq.observe import (FAULT_CYCLES, SETTLE_TIMEOUT, Event, Failover,
                            Monitor, Nemesis, Term, failovers)


@dataclass
class RunResult:
    label: str
    counts: dict[str, int]
    elapsed: float
    no_manager: float
    dual: float
    failovers: list[Failover]
    handbacks: int
    terms: list[Term]
    events: list[Event]
    verdict: object
    history_path: Path
    think: float
    t0: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.verdict.ok) and self.error is None


def run_once(run: RunDir, cluster: C.Cluster, label: str, *, clients: int, ops: int,
             pages: int, seed: int, script=None, think: float = 0.0,
             history_path: Path, read_share: float = 0.5) -> RunResult:
    """One workload with an optional nemesis script; the cluster must be up."""
    monitor = Monitor(cluster).start()
    monitor.wait_seen()
    rngs = [random.Random(seed * 7919 + i) for i in range(clients)]

    def after_op(i: int, _op: Op) -> None:
        if think > 0:
            time.sleep(think * rngs[i].uniform(0.5, 1.5))   # the client's think time

    t0 = time.monotonic()
    nemesis = Nemesis(run, monitor, random.Random(seed), t0)
    thread = nemesis.run_script(script) if script else None
    try:
        res = workload.run_clients(cluster, clients=clients, ops=ops, read_share=read_share,
                                   pages=pages, seed=seed, after_op=after_op)
        t_end = time.monotonic()
        nemesis.done.set()
        if thread is not None:     # let the script finish its repairs (restarts, handback)
            thread.join(timeout=2 * SETTLE_TIMEOUT)
    finally:
        nemesis.stop.set()
        if thread is not None:
            thread.join(timeout=SETTLE_TIMEOUT + 5)
        monitor.stop()
    t_last = max([t_end] + [e.t for e in nemesis.events])
    history_path.parent.mkdir(parents=True, exist_ok=True)
    res.history.save(history_path)
    monitor.save(history_path.with_suffix(".monitor.jsonl"), t0)
    none, dual = monitor.outage(t0, t_end)
    ops_list = res.history.ops()
    return RunResult(
        label=label, counts=res.counts, elapsed=res.elapsed, no_manager=none, dual=dual,
        failovers=failovers(nemesis.events, monitor, ops_list),
        handbacks=monitor.handbacks(t0, t_last + 1e-3 + SETTLE_TIMEOUT),
        terms=monitor.terms(t0 - 1.0, t_last + SETTLE_TIMEOUT), events=nemesis.events,
        verdict=res.verdict, history_path=history_path, think=think, t0=t0,
        error=None if nemesis.error is None else repr(nemesis.error))


# -- the cluster as found ------------------------------------------------------------------

class Found:
    """Brings up exactly the daemons each run wants, and at the end leaves the cluster as it
    was found: daemons found running run again, those this experiment started are stopped."""

    def __init__(self, run: RunDir):
        self.run = run
        self.found = set(run.running())

    def prepare(self, names: list[str]) -> None:
        if not self.found:
            self.run.down()             # a fresh cluster for every run
            self.run.up(names)
        else:
            running = set(self.run.running())
            for name in running - set(names):
                self.run.stop(name)
            missing = [n for n in names if n not in running]
            if missing:
                self.run.up(missing)
        # Every node must report before a manager serves; with part of the managers up,
        # RunDir.up does not wait for that, so wait here (a lone primary waits out the
        # backup's grace first).
        self.run.wait_serving(SETTLE_TIMEOUT)

    def restore(self) -> None:
        if not self.found:
            self.run.down()
            return
        running = set(self.run.running())
        for name in running - self.found:
            self.run.stop(name)
        missing = [n for n in self.run.cluster.daemon_names()
                   if n in self.found and n not in running]
        if missing:
            self.run.up(missing)


# -- the experiments -------------------------------------------------------------------------

def _names(cluster: C.Cluster, without: str | None = None) -> list[str]:
    return [n for n in cluster.daemon_names() if n != without]


def _unit(cluster: C.Cluster) -> float:
    """Rough length of one failover plus one restart: the time scale of the schedules."""
    t = cluster.timing
    return max(t.dead_after, t.retry_timeout * t.retries) + 1.0


def _think(clients: int, ops: int, duration: float) -> float:
    """Per-op think time so that `ops` operations by `clients` last about `duration`."""
    return clients * duration / max(1, ops)


def script_b1(duration: float, primary: str):
    def script(nem: Nemesis) -> None:
        if nem.at(nem.rng.uniform(0.2, 0.5) * duration):
            nem.kill(primary)
    return script


def script_b2(duration: float, primary: str):
    def script(nem: Nemesis) -> None:
        if not nem.at(nem.rng.uniform(0.15, 0.35) * duration):
            return
        ev = nem.kill(primary)
        nem.wait_serving(ev.t, exclude=primary)
        nem.pause(nem.rng.uniform(0.05, 0.15) * duration)
        ev = nem.restart(primary)
        nem.wait_serving(ev.t, only=primary)       # the handback
    return script


def script_c(duration: float, primary: str, cycles: int):
    window = duration / cycles

    def script(nem: Nemesis) -> None:
        for i in range(cycles):
            if not nem.at((i + nem.rng.uniform(0.05, 0.3)) * window):
                return
            ev = nem.kill(primary)
            nem.wait_serving(ev.t, exclude=primary)
            nem.pause(nem.rng.uniform(0.02, 0.15) * window)
            ev = nem.restart(primary)
            nem.wait_serving(ev.t, only=primary)     # handback before the next cycle
    return script


D_PATTERNS = ("primary", "backup", "both_primary_first", "both_backup_first")


def d_patterns(rng: random.Random, cycles: int) -> list[str]:
    """Every cycle list has both double failures (one restart order each) when it can."""
    must = ["both_primary_first", "both_backup_first"]
    rest = [rng.choice(D_PATTERNS) for _ in range(max(0, cycles - len(must)))]
    pats = (must + rest)[:cycles]
    rng.shuffle(pats)
    return pats


def script_d(duration: float, primary: str, backup: str, cycles: int, dead_after: float,
             patterns: list[str]):
    window = duration / cycles

    def settle(nem: Nemesis) -> None:
        """Back to the starting shape: the primary serving and the backup answering."""
        t = time.monotonic()
        nem.wait_serving(t, only=primary)
        nem.wait_answering(backup, t)

    def script(nem: Nemesis) -> None:
        for i, pattern in enumerate(patterns):
            if not nem.at((i + nem.rng.uniform(0.05, 0.25)) * window):
                return
            if pattern == "primary":
                ev = nem.kill(primary)
                nem.wait_serving(ev.t, exclude=primary)
                nem.pause(nem.rng.uniform(0.02, 0.15) * window)
                nem.restart(primary)
            elif pattern == "backup":
                nem.kill(backup)
                nem.pause(nem.rng.uniform(0.3, 1.0) * dead_after)
                nem.restart(backup)
            else:
                serving = nem.monitor.serving_now()
                first = serving[0] if serving else primary
                second = backup if first == primary else primary
                nem.kill(first)
                # the second dies before it can take over: both are down
                nem.pause(nem.rng.uniform(0.2, 0.6) * dead_after)
                nem.kill(second)
                nem.pause(nem.rng.uniform(0.3, 1.0) * dead_after)
                if pattern == "both_primary_first":
                    ev = nem.restart(primary)
                    nem.wait_serving(ev.t, only=primary)
                    nem.pause(nem.rng.uniform(0.1, 0.5) * dead_after)
                    nem.restart(backup)
                else:
                    ev = nem.restart(backup)
                    nem.wait_serving(ev.t, only=backup)
                    nem.pause(nem.rng.uniform(0.1, 0.5) * dead_after)
                    nem.restart(primary)
            settle(nem)
    return script


def plan(which: str, cluster: C.Cluster, seed: int, cycles: int, clients: int, ops: int
         ) -> list[tuple[str, list[str], object, float]]:
    """The runs of one experiment: (label, daemons to start, nemesis script, think time)."""
    names = [m.name for m in cluster.managers]
    primary = names[0]
    backup = names[1] if len(names) > 1 else None
    u = _unit(cluster)
    dead_after = cluster.timing.dead_after
    if which == "a":
        return [("a1 primary only", _names(cluster, backup), None, 0.0),
                ("a2 primary+backup", _names(cluster), None, 0.0)]
    if backup is None:
        raise C.ConfigError("experiments (b)-(d) need a backup manager in the config")
    if which == "b":
        d = 4 * u
        return [("b1 kill", _names(cluster), script_b1(d, primary), _think(clients, ops, d)),
                ("b2 kill+restart", _names(cluster), script_b2(d, primary),
                 _think(clients, ops, d))]
    if which == "c":
        d = cycles * 2.5 * u
        return [(f"c {cycles}x kill+restart", _names(cluster), script_c(d, primary, cycles),
                 _think(clients, ops, d))]
    d = cycles * 3.0 * u
    pats = d_patterns(random.Random(seed), cycles)
    return [(f"d {cycles}x both", _names(cluster),
             script_d(d, primary, backup, cycles, dead_after, pats), _think(clients, ops, d))]


# -- output ------------------------------------------------------------------------------

HEADER = ("run", "ok", "failed", "unknown", "time s", "no-CM s", "kill->serving ms",
          "kill->op ms", "handbacks", "verdict")


def _ms_list(values: list[float | None], clean: list[bool]) -> str:
    """Milliseconds; a star marks a recovery (another fault came before the takeover)."""
    return ",".join("-" if v is None else f"{v * 1000:.0f}{'' if c else '*'}"
                    for v, c in zip(values, clean)) or "-"


def row(r: RunResult) -> tuple[str, ...]:
    fos = r.failovers
    serve = [None if f.serving is None else f.serving.got - f.killed for f in fos]
    op = [None if f.first_op is None else f.first_op - f.killed for f in fos]
    clean = [f.clean for f in fos]
    verdict = "linearizable" if r.verdict.ok else workload.verdict_text(r.verdict)
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
    terms = " -> ".join(f"{t.name}@{t.epoch}" for t in r.terms)
    out.append(f"  serving terms seen: {terms or '-'}; handbacks: {r.handbacks}; "
               f"an older term still serving after a newer one: {r.dual:.2f} s")
    return out


# -- entry points ----------------------------------------------------------------------------

def experiment(args, cluster: C.Cluster, run: RunDir) -> int:
    which = args.which
    clients = max(1, args.clients)
    cycles = args.cycles
    seed = args.seed
    t = cluster.timing
    print(f"experiment ({which}): {clients} clients, {args.ops} ops per run on "
          f"{min(args.pages, cluster.pages)} pages, {len(cluster.nodes)} nodes, managers "
          f"{', '.join(m.name for m in cluster.managers)}; heartbeat {t.heartbeat_interval:g} s "
          f"x {t.liveness} (dead after {t.dead_after:g} s), seed {seed}")
    state = Found(run)
    results: list[RunResult] = []
    try:
        for k, (label, names, script, think) in enumerate(
                plan(which, cluster, seed, cycles, clients, args.ops)):
            state.prepare(names)
            path = run.path / f"experiment-{which}{k + 1}.jsonl"
            r = run_once(run, cluster, label, clients=clients, ops=args.ops,
                         pages=args.pages, seed=seed + k, script=script, think=think,
                         history_path=path)
            results.append(r)
            c = r.counts
            print(f"  run {r.label}: {c['ok']} ok, {c['failed']} failed, {c['unknown']} "
                  f"unknown in {r.elapsed:.2f} s", flush=True)
    finally:
        state.restore()
    print()
    print(table([row(r) for r in results]))
    if any(not f.clean for r in results for f in r.failovers):
        print("* a recovery, not a failover: another manager was hit before one took over")
    for r in results:
        for line in details(r):
            print(line)
    if which == "a" and len(results) == 2:
        base, ft = results
        print(f"replication cost: {ft.elapsed:.3f} s with the backup / {base.elapsed:.3f} s "
              f"without = {ft.elapsed / base.elapsed:.2f}x")
    all_ok = all(r.ok for r in results)
    print("verdict: every history linearizable" if all_ok else
          "verdict: NOT every history is linearizable (or a nemesis failed)")
    return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivy experiment",
                                 description=" ".join(__doc__.splitlines()[0].split()))
    ap.add_argument("-c", "--config", default=C.DEFAULT_CONFIG)
    ap.add_argument("--run-dir")
    workload.add_experiment_arguments(ap)
    ap.add_argument("--cycles", type=int, default=FAULT_CYCLES,
                    help=f"(c), (d): fail/restart cycles (default {FAULT_CYCLES})")
    args = ap.parse_args(argv)
    from loguru import logger
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    try:
        cluster = C.load(args.config)
    except C.ConfigError as exc:
        print(f"ivy experiment: error: {exc}", file=sys.stderr)
        return 2
    return experiment(args, cluster, RunDir(args.config, cluster, args.run_dir))


if __name__ == "__main__":
    raise SystemExit(main())
