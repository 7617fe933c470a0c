"""The run of `ivy chaos` itself, inside the network namespace (or in this one when there is
none): the firewall, the cluster, clients for --duration while the nemesis applies the seeded
schedule, the quiescent-agreement check once healed, and the report (text, and the
summary.json the result's json() is)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loguru import logger

from ivyzmq import checker, progress
from ivyzmq import protocol as P
from ivyzmq import config as C
from ivyzmq.deploy import Deployment
from ivyzmq.harness import agreement, netns
from ivyzmq.harness.failovers import failovers
from ivyzmq.harness.monitor import Monitor
from ivyzmq.harness.nemesis import Nemesis
from ivyzmq.harness.ops import ClientRun, run_clients
from ivyzmq.history import counts
from ivyzmq.programs.chaos import ChaosResult, Step, faults_of, schedule



@dataclass
class Outcome:
    """What one run left to report, and what is measured from it (once: the check of a
    long history takes a while)."""

    steps: list[Step]
    nemesis: Nemesis
    monitor: Monitor
    clients: ClientRun
    problems: list[str]
    t_start: float
    t_end: float
    t_quiet: float
    ops: list = field(init=False)
    verdict: checker.CheckResult = field(init=False)
    terms: list = field(init=False)
    fos: list = field(init=False)
    none: float = field(init=False)      # seconds without a serving manager
    dual: float = field(init=False)      # seconds an older term still served

    def __post_init__(self) -> None:
        self.ops = self.clients.history.ops()
        self.verdict = checker.check(self.ops)
        self.terms = self.monitor.terms(self.t_start - 1.0, self.t_quiet)
        self.fos = failovers(self.nemesis.events, self.monitor, self.ops)
        self.none, self.dual = self.monitor.outage(self.t_start, self.t_end)


def _firewall(args, cluster: C.Cluster) -> tuple[netns.Firewall | None, str]:
    reason = args.partition_reason or ""
    if args.firewall not in ("nft", "iptables"):
        return None, reason
    firewall = netns.Firewall.for_cluster(args.firewall, cluster)
    try:
        firewall.install()
    except (netns.FirewallError, OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{args.firewall} failed: {exc}"
    return firewall, reason


def _head(args, cluster: C.Cluster, firewall, reason: str) -> list[str]:
    t = cluster.timing
    where = (f"namespace {args.netns}, each daemon on its own 127.0.0.x" if args.netns
             else "this network namespace, 127.0.0.1")
    return [f"chaos: {len(cluster.nodes)} nodes, managers "
            f"{', '.join(m.name for m in cluster.managers)}, {args.clients} clients on "
            f"{min(args.pages, cluster.pages)} pages for {args.duration:g} s, seed "
            f"{args.seed}; heartbeat {t.heartbeat_interval:g} s x {t.liveness}",
            f"network: {where}; partitions: "
            f"{firewall.kind + ' (conntrack marks by manager uid)' if firewall else 'skipped'}"
            f"{'' if firewall else ' (' + reason + ')'}"]


def _drive(args, dep: Deployment, steps: list[Step], firewall) -> Outcome:
    """Up, clients under the nemesis, repair, agreement; the cluster is down at the end."""
    monitor = nemesis = None
    try:
        dep.up()
        monitor = Monitor(dep.cluster).start()
        monitor.wait_seen()
        t_start = time.monotonic()
        nemesis = Nemesis(dep, monitor, faults_of(steps, dep.cluster), firewall)
        nemesis.start(t_start)
        with progress.timed("chaos", args.duration):
            clients = run_clients(dep.cluster, clients=args.clients, pages=args.pages,
                                  read_share=args.read_share, seed=args.seed,
                                  duration=args.duration)
        t_end = time.monotonic()
        nemesis.repair()
        problems = agreement.settle(lambda: dict(dep.status(timeout=1.0)),
                                    [m.name for m in dep.cluster.managers],
                                    [nd.name for nd in dep.cluster.nodes])
        problems += _lost(dep)
        return Outcome(steps, nemesis, monitor, clients, problems, t_start, t_end,
                       time.monotonic())
    except KeyboardInterrupt:
        print("chaos: interrupted; stopping the cluster", file=sys.stderr)
        raise
    finally:
        if nemesis is not None:
            try:
                nemesis.repair()
            except Exception as exc:     # the cluster is going down anyway
                logger.warning("repair: {}", exc)
        if monitor is not None:
            monitor.stop()
        dep.down()


def _lost(dep: Deployment) -> list[str]:
    """With replicas, no page may be lost: the nemesis takes one node down at a time."""
    name = dep.cluster.replicas and dep.admin.serving()
    reply = name and dep.admin.query(name, P.StatusQuery())
    lost = [r.page for r in reply.records if r.lost] if reply else []
    return [f"pages {lost} lost with replicas: {dep.cluster.replicas}"] if lost else []


def _report(o: Outcome, cluster: C.Cluster, history_path: Path, firewall) -> list[str]:
    ops, terms, fos = o.ops, o.terms, o.fos
    c = counts(ops)
    lines = ["nemesis (seeded schedule, times from the clients' start):"]
    for ev in o.nemesis.events:
        state = " (was serving)" if ev.serving and ev.action in ("kill", "pause") else ""
        lines.append(f"  t={ev.t - o.t_start:6.2f} s  {ev.action} {ev.target}{state}")
    if o.nemesis.error is not None:
        lines.append(f"  nemesis error: {o.nemesis.error!r}")
    lines.append(f"operations: {len(ops)} in {o.clients.elapsed:.1f} s: {c['ok']} ok, "
                 f"{c['failed']} failed, {c['unknown']} unknown")
    if fos:
        lines.append("takeovers after a hit on the serving manager:")
    lines += [f"  {fo.text()}" for fo in fos]
    chain = " -> ".join(f"{tm.name}@{tm.epoch}" for tm in terms)
    backup_served = any(tm.name != cluster.managers[0].name for tm in terms)
    lines += [f"failovers seen: {max(0, len(terms) - 1)} changes of serving manager or epoch "
              f"({chain}); epochs {', '.join(map(str, sorted({tm.epoch for tm in terms})))}; "
              f"backup served: {'yes' if backup_served else 'no'}",
              f"time without a serving manager: {o.none:.2f} s; an older term still "
              f"serving after a newer one: {o.dual:.2f} s (nodes refuse it by epoch)"]
    if any(ev.action == "cut" for ev in o.nemesis.events):
        lines.append(f"partitions dropped {firewall.dropped} manager<->manager packets")
    lines += ["tables once healed: " + ("agree" if not o.problems else "; ".join(o.problems)),
              f"history: {history_path}",
              f"checker: {checker.verdict_text(o.verdict)}"]
    return lines


def _summary(o: Outcome, args, cluster: C.Cluster, history_path: Path, firewall,
             reason: str) -> dict:
    verdict, terms, events = o.verdict, o.terms, o.nemesis.events
    return {
        "ok": bool(verdict.ok) and not o.problems and o.nemesis.error is None,
        "linearizable": verdict.ok, "counts": counts(o.ops), "elapsed": o.clients.elapsed,
        "events": [dict(asdict(ev), t=round(ev.t - o.t_start, 3)) for ev in events],
        "schedule": [asdict(s) for s in o.steps],
        "terms": [{"name": tm.name, "epoch": tm.epoch, "t": round(tm.first - o.t_start, 3)}
                  for tm in terms],
        "epochs": sorted({tm.epoch for tm in terms}), "failovers": max(0, len(terms) - 1),
        "backup_served": any(tm.name != cluster.managers[0].name for tm in terms),
        "takeovers_ms": [None if fo.serving is None else
                         round((fo.serving.got - fo.killed) * 1000) for fo in o.fos],
        "no_manager_s": round(o.none, 3), "dual_serving_s": round(o.dual, 3),
        "partition": {"ran": any(ev.action == "cut" for ev in events),
                      "firewall": firewall.kind if firewall else None, "reason": reason,
                      "dropped_packets": firewall.dropped if firewall else 0},
        "netns": args.netns or None, "problems": o.problems, "history": str(history_path),
        "verdict": checker.verdict_text(verdict), "nemesis_error":
            None if o.nemesis.error is None else repr(o.nemesis.error),
    }


def inside(args) -> ChaosResult:
    cluster = C.load(args.config)
    run_dir = Path(args.run_dir)
    firewall, reason = _firewall(args, cluster)
    prefix = {} if firewall is None else {
        name: netns.setpriv(uid) for name, uid in netns.manager_uids(cluster).items()}
    dep = Deployment(args.config, cluster, run_dir, log_level=args.log_level, prefix=prefix)
    head = _head(args, cluster, firewall, reason)
    steps = schedule(args.seed, args.duration, cluster, firewall is not None)
    try:
        o = _drive(args, dep, steps, firewall)
    finally:
        if firewall is not None:
            firewall.remove()
    history_path = run_dir / "history.jsonl"
    o.clients.history.save(history_path)
    o.monitor.save(run_dir / "monitor.jsonl", o.t_start)
    summary = _summary(o, args, cluster, history_path, firewall, reason)
    lines = head + _report(o, cluster, history_path, firewall)
    if args.plot:
        from ivyzmq import plots
        events = o.nemesis.events
        t1 = max([o.t_end] + [ev.t for ev in events])
        summary["plot"] = {"path": args.plot, "drawn": plots.write_png(args.plot, [
            plots.panel(f"chaos, seed {args.seed}", o.ops, o.t_start, o.t_end, events,
                        o.monitor.no_manager_spans(o.t_start, t1))], "ivy chaos")}
        lines.append(f"plot: {args.plot}")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return ChaosResult(lines, summary, 0 if summary["ok"] else 1)
