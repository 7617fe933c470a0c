"""`ivy chaos`: concurrent clients against a real cluster while a seeded nemesis kills, pauses
and partitions its managers; the history is checked for linearizability at the end.

    ivy chaos [--duration 20] [--seed 1] [--nodes 10] [--clients 10] [--replicas 1]
              [--timing fast|default]

The cluster (at least 10 nodes, a primary and a backup manager) is generated for the run and
started through the `ivy-cm` / `ivy-node` entry points, like `ivy up`. The nemesis schedule is
fixed by --seed: SIGKILL and restart of the primary and of the backup, SIGSTOP / SIGCONT for
longer than the failover timeout, and a network partition between the managers.

Partitions need root and `ip`: the runner then creates a network namespace
`ivychaos-<pid>`, runs itself inside it (`ip netns exec NS python -m ivyzmq.cli chaos
--inside ...`), gives every daemon its own 127.0.0.x address, and deletes the namespace at
the end, also on Ctrl-C. Inside, the managers run under uids of their own and the firewall
cuts the link between them (ivyzmq/harness/netns.py), with nftables, or iptables when nft is
missing. With neither, or without root, the run goes on without partitions and says why in
one line.

Exit status: 0 when the history is linearizable and the cluster's tables agree once healed,
1 otherwise, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ivyzmq import config as C
from ivyzmq.harness.faults import UNDO, Delay, Fault
from ivyzmq import args as A
from ivyzmq.programs import Fail, Result

NAME = "chaos"
HELP = "kills, pauses and partitions on a real cluster, checked"


def add_arguments(p) -> None:
    p.description = " ".join(__doc__.split("\n\n")[0].split())
    p.add_argument("--duration", type=A.duration, default=20.0,
                   help="seconds of client load under faults (default 20)")
    p.add_argument("--seed", type=A.natural, default=1, help="fixes the nemesis schedule")
    p.add_argument("--nodes", type=A.count, default=10, help="process nodes (default 10)")
    p.add_argument("--clients", type=A.count, default=10,
                   help="concurrent clients (default 10)")
    p.add_argument("--pages", type=A.count, default=10, help="pages (default 10)")
    p.add_argument("--read-share", type=A.share, default=0.5)
    p.add_argument("--replicas", type=A.natural, default=1,
                   help="page replicas of the generated cluster (default 1): with one node "
                        "down at a time, no page may be lost")
    p.add_argument("--timing", choices=sorted(C.TIMING_PRESETS), default="fast",
                   help="fast: 0.1 s heartbeats; default: 0.5 s (default fast)")
    p.add_argument("--no-netns", action="store_true",
                   help="run in this network namespace (no partitions)")
    p.add_argument("--firewall", choices=["auto", "nft", "iptables", "none"], default="auto",
                   help="tool for partitions (default: nft, else iptables)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"],
                   help="the daemons' log level (logs go to the run directory)")
    p.add_argument("--plot", metavar="FILE.png", help="draw ops/s and latency over time, "
                   "faults marked, no-manager spans shaded (needs the `plot` extra)")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--netns", default="", help=argparse.SUPPRESS)
    p.add_argument("--partition-reason", default="", help=argparse.SUPPRESS)


# -- the nemesis schedule ------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One episode of the seeded schedule: the fault `action` (kill, pause, or partition: a
    cut of the link between the managers, target "managers") on `target`, undone `hold`
    seconds later. summary.json keeps the episodes as drawn; `faults_of` turns them into
    the nemesis's schedule in the vocabulary of ivyzmq/harness/faults.py."""

    at: float          # seconds after the clients start
    action: str
    target: str
    hold: float        # seconds until the restart, resume or heal


def schedule(seed: int, duration: float, cluster: C.Cluster, partitions: bool) -> list[Step]:
    """A deterministic list of faults for `duration` seconds: the first ones cover every
    kind (of the managers, and of a node drawn at random), in a seeded order; each lasts
    longer than a failover takes - so a node killed or paused is declared dead, and comes
    back as a new incarnation - and the gaps leave time for the backup to take over and
    hand back."""
    rng = random.Random(seed)
    t = cluster.timing
    primary, backup = cluster.managers[0].name, cluster.managers[1].name
    failover = max(t.dead_after, t.retry_timeout * t.retries)
    # A node target of None is drawn when the episode is: any node may die or stop.
    kinds = [("kill", primary), ("kill", backup), ("pause", primary), ("pause", backup)]
    if partitions:
        kinds.append(("partition", "managers"))
    first = kinds[:]
    rng.shuffle(first)
    nodes = [("kill", None), ("pause", None)]
    first += nodes
    kinds += nodes
    steps: list[Step] = []
    at = rng.uniform(0.5, 1.0) * min(2.0, 0.1 * duration)
    for _ in range(1000):
        action, target = first.pop(0) if first else rng.choice(kinds)
        target = target or f"node{rng.randrange(len(cluster.nodes))}"
        hold = {"kill": rng.uniform(1.5, 3.0), "pause": rng.uniform(2.0, 3.5),
                "partition": rng.uniform(2.5, 4.5)}[action] * failover
        if at + hold > duration - 0.2:
            break
        steps.append(Step(round(at, 3), action, target, round(hold, 3)))
        at += hold + rng.uniform(1.0, 2.5) * (failover + 0.5)
    return steps


def faults_of(steps: list[Step], cluster: C.Cluster) -> list:
    """Each episode as a fault at its time, a delay of its hold, and the undo right after."""
    primary, backup = cluster.manager_ids[:2]
    out: list = []
    for s in steps:
        kind = "cut" if s.action == "partition" else s.action
        a, b = (primary, backup) if kind == "cut" else (cluster.pid_of(s.target), -1)
        out += [Fault(s.at, kind, a, b), Delay(s.hold), Fault(None, UNDO[kind], a, b)]
    return out


@dataclass
class ChaosResult(Result):
    lines: list[str]
    summary: dict = field(default_factory=dict)
    status: int = 0

    def text(self) -> str:
        return "\n".join(self.lines)

    def json(self) -> dict:
        return self.summary


# -- outside: the namespace around the run -------------------------------------------------

def run(args) -> ChaosResult:
    from ivyzmq.harness import netns
    if args.inside:
        from ivyzmq.programs.chaos_run import inside
        return inside(args)
    from ivyzmq.plots import missing
    if args.plot and missing():
        raise Fail(f"--plot: {missing()}", 2)
    if args.nodes > 200:
        raise Fail("error: at most 200 nodes", 2)
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="ivychaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    no_netns = "--no-netns" if args.no_netns else netns.why_no_netns()
    firewall, reason = _firewall(args, no_netns)
    ns = None if no_netns else netns.Namespace(f"ivychaos-{os.getpid()}")
    if ns is not None and firewall != "none" and not shutil.which("setpriv"):
        firewall, reason = "none", "setpriv (util-linux) is missing"
    if ns is not None and (err := ns.create()):
        reason = reason or f"cannot create a network namespace: {err}"
        ns = None
    config = run_dir / "chaos.yaml"
    if ns is None:
        from ivyzmq.programs.chaos_run import inside
        _write_config(args, config, own_addresses=False)
        return inside(argparse.Namespace(**{
            **vars(args), "inside": True, "config": str(config), "run_dir": str(run_dir),
            "firewall": "none", "partition_reason": reason, "netns": ""}))
    try:
        _write_config(args, config, own_addresses=True)
        if err := ns.lo_up():
            raise Fail(f"cannot bring up lo in {ns.name}: {err}")
        return _child(args, ns, _inner_argv(args, config, run_dir, firewall, reason, ns.name))
    finally:
        _cleanup(config, run_dir, ns)


def _firewall(args, no_netns: str) -> tuple[str, str]:
    """The firewall tool to ask the inside for ("none" for no partitions), and why not."""
    from ivyzmq.harness.netns import pick_firewall
    if args.firewall == "none":
        return "none", no_netns or "--firewall none"
    if args.firewall == "auto":
        kind, why = pick_firewall()
        return kind or "none", no_netns or why
    if shutil.which(args.firewall):
        return args.firewall, no_netns
    return "none", no_netns or f"{args.firewall} is not installed"


def _write_config(args, path: Path, own_addresses: bool) -> None:
    from ivyzmq.harness import configs
    configs.write(path, configs.cluster_dict(args.nodes, args.pages, timing=args.timing,
                                             own_addresses=own_addresses,
                                             replicas=min(args.replicas, args.nodes - 1)))


def _inner_argv(args, config: Path, run_dir: Path, firewall: str, reason: str,
                netns: str) -> list[str]:
    return ["chaos", "--inside", "-c", str(config), "--run-dir", str(run_dir),
            "--duration", str(args.duration), "--seed", str(args.seed),
            "--clients", str(args.clients), "--pages", str(args.pages),
            "--read-share", str(args.read_share), "--firewall", firewall,
            "--log-level", args.log_level,
            f"--partition-reason={reason}", f"--netns={netns}"] + (
            ["--plot", str(Path(args.plot).resolve())] if args.plot else [])


def _child(args, ns, inner: list[str]) -> ChaosResult:
    """Run the inside in the namespace; its report becomes this run's result."""
    child = subprocess.Popen(ns.exec_argv([sys.executable, "-m", "ivyzmq.cli", *inner]),
                             stdout=subprocess.PIPE, text=True)
    try:
        out, _ = child.communicate(timeout=args.duration + 600)
    except subprocess.TimeoutExpired:
        raise Fail("the run inside the namespace hangs; killing it") from None
    except KeyboardInterrupt:
        # From a terminal the child got the same Ctrl-C and is stopping its cluster;
        # otherwise pass it on. Either way give it the time to clean up.
        try:
            child.wait(timeout=3)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=30)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
        raise
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
    summary_path = Path(inner[inner.index("--run-dir") + 1]) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return ChaosResult([out.rstrip("\n")], summary, child.returncode)


def _cleanup(config: Path, run_dir: Path, ns) -> None:
    """Whatever the child left running (killed before its own cleanup), by recorded os_pid;
    then the namespace."""
    from ivyzmq.supervisor import Supervisor
    try:
        if config.exists():
            Supervisor(str(config), C.load(config), run_dir).down()
    except (C.ConfigError, OSError) as exc:
        print(f"ivy chaos: cleanup: {exc}", file=sys.stderr)
    if err := ns.delete():
        print(f"ivy chaos: cannot delete namespace {ns.name}: {err}", file=sys.stderr)
