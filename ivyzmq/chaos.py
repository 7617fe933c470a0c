"""`ivy chaos`: concurrent clients against a real cluster while a seeded nemesis kills, pauses
and partitions its managers; the history is checked for linearizability at the end.

    ivy chaos [--duration 20] [--seed 1] [--nodes 10] [--clients 10] [--timing fast|default]

The cluster (at least 10 nodes, a primary and a backup manager) is generated for the run and
started through the `ivy-cm` / `ivy-node` entry points, like `ivy up`. The nemesis schedule is
fixed by --seed: SIGKILL and restart of the primary and of the backup, SIGSTOP / SIGCONT for
longer than the failover timeout, and a network partition between the managers.

Partitions need root and `ip`: the runner then creates a network namespace
`ivychaos-<pid>`, runs itself inside it (`ip netns exec NS python -m ivyzmq.chaos --inside`),
gives every daemon its own 127.0.0.x address, and deletes the namespace at the end, also on
Ctrl-C. Inside, the managers run under uids of their own (`setpriv`, keeping only the
capability to read and write the run's files): a packet on loopback leaves from 127.0.0.1
whoever sends it, so the firewall marks each connection with the uid of the manager that
opened it (conntrack) and a partition drops both directions of every connection between two
managers, with nftables, or iptables when nft is missing. With neither, or without root, the
run goes on without partitions and says why in one line.

Exit status: 0 when the history is linearizable and the cluster's tables agree once healed,
1 otherwise, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from loguru import logger

from ivyzmq import config as C
from ivyzmq import protocol as P
from ivyzmq.client import connect
from ivyzmq.control import RunDir, free_ports
from ivyzmq.observe import Monitor, Nemesis, failovers
from ivyzmq.history import History
from ivyzmq import checker
from ivyzmq.workload import seed_pages, timed_op, verdict_text

TIMINGS = {
    "fast": {"heartbeat_interval": 0.1, "liveness": 3, "retry_timeout": 0.1, "retries": 3,
             "redrive_timeout": 0.5, "step_delay": 0.0, "op_timeout": 5.0},
    "default": {"heartbeat_interval": 0.5, "liveness": 3, "retry_timeout": 0.5, "retries": 3,
                "redrive_timeout": 2.0, "step_delay": 0.0, "op_timeout": 10.0},
}
MANAGER_UID = 61000          # managers run as 61000, 61001, ... when partitions are on
MAX_OPS_PER_CLIENT = 10_000_000
SETTLE = 30.0                # longest wait for a healed cluster to go quiet (s)
TABLE = "ivychaos"


# -- the cluster ---------------------------------------------------------------------------

def make_config(nodes: int, pages: int, timing: str, own_addresses: bool) -> dict:
    """Managers primary and backup, then `nodes` nodes. With own_addresses (inside a fresh
    namespace) every daemon gets 127.0.0.x of its own; else free ports on 127.0.0.1."""
    if own_addresses:
        mgr = [(f"127.0.0.{2 + i}", 5000, 5001) for i in range(2)]
        nds = [(f"127.0.0.{10 + i}", 5000) for i in range(nodes)]
    else:
        ports = free_ports(4 + nodes)
        mgr = [("127.0.0.1", ports[2 * i], ports[2 * i + 1]) for i in range(2)]
        nds = [("127.0.0.1", ports[4 + i]) for i in range(nodes)]
    return {
        "pages": pages, "page_size": 4096, "failback": True, "timing": dict(TIMINGS[timing]),
        "managers": [{"name": name, "endpoint": f"tcp://{h}:{p}", "heartbeat": f"tcp://{h}:{q}"}
                     for name, (h, p, q) in zip(["primary", "backup"], mgr)],
        "nodes": [{"id": i, "endpoint": f"tcp://{h}:{p}"} for i, (h, p) in enumerate(nds)],
    }


def host_of(endpoint: str) -> str:
    return endpoint.split("://", 1)[1].rsplit(":", 1)[0]


class ChaosRun(RunDir):
    """RunDir whose managers may run under their own uids (for the firewall's marks)."""

    def __init__(self, *a, uids: dict[str, int] | None = None, **kw):
        super().__init__(*a, **kw)
        self.uids = uids or {}

    def command(self, name: str) -> list[str]:
        cmd = super().command(name)
        uid = self.uids.get(name)
        if uid is None:
            return cmd
        # setpriv execs the daemon in place (same pid); keeping CAP_DAC_OVERRIDE lets it
        # read the config and write its log wherever root's run directory is.
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=+dac_override", "--ambient-caps=+dac_override", "--"] + cmd


# -- the firewall (inside the namespace) ---------------------------------------------------

class FirewallError(RuntimeError):
    pass


class Firewall:
    """Cuts manager<->manager traffic. `managers` is [(name, address, uid)]. Connections are
    marked (conntrack) with 1 + the index of the manager whose uid opened them; a cut drops
    every packet of a manager's connections to another manager's address, both ways."""

    def __init__(self, kind: str, managers: list[tuple[str, str, int]]):
        self.kind, self.managers = kind, managers
        self.is_cut = False

    def _run(self, args: list[str], stdin: str | None = None) -> None:
        proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            err = " ".join(proc.stderr.split())[:200]
            raise FirewallError(f"{' '.join(args[:3])}: {err}")

    def _pairs(self):
        for i, (_, _, _) in enumerate(self.managers):
            for j, (_, addr, _) in enumerate(self.managers):
                if i != j:
                    yield i + 1, addr

    def install(self) -> None:
        if self.kind == "nft":
            marks = "\n".join(f"    ct state new meta skuid {uid} ct mark set {i + 1}"
                              for i, (_, _, uid) in enumerate(self.managers))
            self._run(["nft", "-f", "-"], f"""table inet {TABLE} {{
  chain marking {{
    type filter hook output priority -150; policy accept;
{marks}
  }}
  chain cutoff {{
    type filter hook output priority 0; policy accept;
  }}
}}
""")
        else:
            self._run(["iptables", "-t", "mangle", "-N", "IVYCHAOS_MARK"])
            self._run(["iptables", "-t", "mangle", "-A", "OUTPUT", "-j", "IVYCHAOS_MARK"])
            for i, (_, _, uid) in enumerate(self.managers):
                self._run(["iptables", "-t", "mangle", "-A", "IVYCHAOS_MARK", "-m", "owner",
                           "--uid-owner", str(uid), "-m", "conntrack", "--ctstate", "NEW",
                           "-j", "CONNMARK", "--set-mark", str(i + 1)])
            self._run(["iptables", "-N", "IVYCHAOS_CUT"])
            self._run(["iptables", "-A", "OUTPUT", "-j", "IVYCHAOS_CUT"])

    def cut(self) -> None:
        if self.kind == "nft":
            rules = "\n".join(f"add rule inet {TABLE} cutoff ct mark {m} ip {way} {addr} "
                              "counter drop"
                              for m, addr in self._pairs() for way in ("daddr", "saddr"))
            self._run(["nft", "-f", "-"], rules + "\n")
        else:
            for m, addr in self._pairs():
                for way in ("-d", "-s"):
                    self._run(["iptables", "-A", "IVYCHAOS_CUT", "-m", "connmark", "--mark",
                               str(m), way, addr, "-j", "DROP"])
        self.is_cut = True

    def dropped(self) -> int:
        """Packets the cut has dropped so far: proof that it cut live manager traffic."""
        if self.kind == "nft":
            out = subprocess.run(["nft", "list", "chain", "inet", TABLE, "cutoff"],
                                 capture_output=True, text=True, timeout=10).stdout
            return sum(int(n) for n in re.findall(r"packets (\d+)", out))
        out = subprocess.run(["iptables", "-L", "IVYCHAOS_CUT", "-v", "-x", "-n"],
                             capture_output=True, text=True, timeout=10).stdout
        return sum(int(line.split()[0]) for line in out.splitlines()[2:]
                   if line.split() and line.split()[0].isdigit())

    def heal(self) -> None:
        if self.kind == "nft":
            self._run(["nft", "flush", "chain", "inet", TABLE, "cutoff"])
        else:
            self._run(["iptables", "-F", "IVYCHAOS_CUT"])
        self.is_cut = False

    def remove(self) -> None:
        try:
            if self.kind == "nft":
                self._run(["nft", "delete", "table", "inet", TABLE])
            else:
                self._run(["iptables", "-D", "OUTPUT", "-j", "IVYCHAOS_CUT"])
                self._run(["iptables", "-F", "IVYCHAOS_CUT"])
                self._run(["iptables", "-X", "IVYCHAOS_CUT"])
                self._run(["iptables", "-t", "mangle", "-D", "OUTPUT", "-j", "IVYCHAOS_MARK"])
                self._run(["iptables", "-t", "mangle", "-F", "IVYCHAOS_MARK"])
                self._run(["iptables", "-t", "mangle", "-X", "IVYCHAOS_MARK"])
        except (FirewallError, subprocess.TimeoutExpired) as exc:
            logger.warning("firewall cleanup: {}", exc)


def pick_firewall() -> tuple[str | None, str]:
    if shutil.which("nft"):
        return "nft", ""
    if shutil.which("iptables"):
        return "iptables", ""
    return None, "neither nft nor iptables is installed"


# -- the nemesis schedule ------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    at: float          # seconds after the clients start
    action: str        # kill, pause, partition
    target: str        # a manager name, or "managers" for a partition
    hold: float        # seconds until the restart, resume or heal


def schedule(seed: int, duration: float, cluster: C.Cluster, partitions: bool) -> list[Step]:
    """A deterministic list of faults for `duration` seconds: the first ones cover every
    kind, in a seeded order; each lasts longer than a failover takes and the gaps leave
    time for the backup to take over and hand back."""
    rng = random.Random(seed)
    t = cluster.timing
    primary, backup = cluster.managers[0].name, cluster.managers[1].name
    failover = max(t.dead_after, t.retry_timeout * t.retries)
    kinds = [("kill", primary), ("kill", backup), ("pause", primary), ("pause", backup)]
    if partitions:
        kinds.append(("partition", "managers"))
    first = kinds[:]
    rng.shuffle(first)
    steps: list[Step] = []
    at = rng.uniform(0.5, 1.0) * min(2.0, 0.1 * duration)
    for _ in range(1000):
        action, target = first.pop(0) if first else rng.choice(kinds)
        hold = {"kill": rng.uniform(1.5, 3.0), "pause": rng.uniform(2.0, 3.5),
                "partition": rng.uniform(2.5, 4.5)}[action] * failover
        if at + hold > duration - 0.2:
            break
        steps.append(Step(round(at, 3), action, target, round(hold, 3)))
        at += hold + rng.uniform(1.0, 2.5) * (failover + 0.5)
    return steps


class ChaosNemesis(Nemesis):
    def __init__(self, *a, firewall: Firewall | None = None, **kw):
        super().__init__(*a, **kw)
        self.firewall = firewall
        self.killed: set[str] = set()
        self.paused: set[str] = set()
        self.dropped = 0         # manager<->manager packets the partitions dropped

    def partition(self):
        ev = self._note("partition", "managers")
        self.firewall.cut()
        return ev

    def heal(self):
        try:
            self.dropped += self.firewall.dropped()
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            logger.warning("cannot read the firewall's counters: {}", exc)
        ev = self._note("heal", "managers")
        self.firewall.heal()
        return ev

    def apply(self, step: Step) -> None:
        if step.action == "kill":
            self.kill(step.target)
            self.killed.add(step.target)
            self.pause(step.hold)
            self.restart(step.target)
            self.killed.discard(step.target)
        elif step.action == "pause":
            self.sigstop(step.target)
            self.paused.add(step.target)
            self.pause(step.hold)
            self.sigcont(step.target)
            self.paused.discard(step.target)
        elif step.action == "partition":
            self.partition()
            self.pause(step.hold)
            self.heal()

    def repair(self) -> None:
        """Undo whatever fault is still applied (the run ended, or was interrupted)."""
        for name in sorted(self.paused):
            self.sigcont(name)
        self.paused.clear()
        if self.firewall is not None and self.firewall.is_cut:
            self.heal()
        for name in sorted(self.killed):
            self.restart(name)
        self.killed.clear()


# -- the clients ---------------------------------------------------------------------------

def run_for(cluster: C.Cluster, *, clients: int, duration: float, pages: int,
            read_share: float, seed: int, stop: threading.Event) -> tuple[History, float]:
    """Like workload.run_clients, but each client goes on until `duration` has passed."""
    history = History()
    pages = max(1, min(pages, cluster.pages))
    tag = seed_pages(cluster, pages, history)
    t0 = time.monotonic()
    deadline = t0 + duration

    def client(i: int) -> None:
        rng = random.Random(seed * 100_003 + i)
        node = i % len(cluster.nodes)
        with connect(cluster, node) as mem:
            for k in range(MAX_OPS_PER_CLIENT):
                if stop.is_set() or time.monotonic() >= deadline:
                    return
                page = rng.randrange(pages)
                kind = "read" if rng.random() < read_share else "write"
                history.append(timed_op(mem, cluster.page_size, client=i, node=node,
                                        page=page, kind=kind, value=f"{tag}-c{i}-{k}"))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + cluster.timing.op_timeout + 30)
    return history, time.monotonic() - t0


# -- the end state ---------------------------------------------------------------------------

def quiescent_problems(run: RunDir, cluster: C.Cluster, timeout: float = SETTLE) -> list[str]:
    """Wait until one manager serves and nothing is pending, then compare its table with the
    nodes': one owner per page, the manager's owner and copy_set as the nodes say, no
    writer beside readers, every node at the serving manager's epoch."""
    deadline = time.monotonic() + timeout
    last = "no status yet"
    n = len(cluster.nodes)
    seen: list[list[str]] = []     # problems must persist: a handback may be under way
    while time.monotonic() < deadline:
        replies = dict(run.status(timeout=1.0))
        mgrs = [replies[m.name] for m in cluster.managers]
        serving = [r for r in mgrs if r is not None and r.serving]
        nodes = [replies[nd.name] for nd in cluster.nodes]
        if len(serving) != 1:
            last = f"{len(serving)} managers serving"
        elif any(r is None for r in nodes):
            last = "a node does not answer"
        elif serving[0].pending or any(r.pending for r in nodes):
            last = "operations still pending"
        else:
            problems = _compare(serving[0], nodes, n)
            if not problems:
                return []
            seen.append(problems)
            last = "; ".join(problems)
            if len(seen) >= 3:
                return problems
        time.sleep(0.2)   # poll
    return [f"the cluster did not go quiet within {timeout:g} s: {last}"]


def _compare(mgr: P.StatusReply, nodes: list[P.StatusReply], n: int) -> list[str]:
    problems = []
    for page, owner, copy_set in mgr.table:
        owners = [i for i in range(n) if nodes[i].table[page][1]]
        writers = [i for i in range(n) if nodes[i].table[page][2] == "ReadWrite"]
        readers = sorted(i for i in range(n) if nodes[i].table[page][2] == "Read"
                         and not nodes[i].table[page][1])
        if owners != [owner]:
            problems.append(f"page {page}: manager says owner {owner}, nodes say {owners}")
        if writers and (writers != [owner] or readers):
            problems.append(f"page {page}: writer {writers} beside readers {readers}")
        if readers != sorted(copy_set):
            problems.append(f"page {page}: manager's copy_set {sorted(copy_set)}, "
                            f"nodes with a read copy {readers}")
    for i, r in enumerate(nodes):
        if r.epoch != mgr.epoch:
            problems.append(f"node {i} is at epoch {r.epoch}, the serving manager at "
                            f"{mgr.epoch}")
    return problems


# -- inside: the run itself ------------------------------------------------------------------

def inside(args) -> int:
    cluster = C.load(args.config)
    run_dir = Path(args.run_dir)
    reason = args.partition_reason or ""
    firewall = None
    if args.firewall in ("nft", "iptables"):
        spec = [(m.name, host_of(m.endpoint), MANAGER_UID + i)
                for i, m in enumerate(cluster.managers)]
        firewall = Firewall(args.firewall, spec)
        try:
            firewall.install()
        except (FirewallError, OSError, subprocess.TimeoutExpired) as exc:
            reason, firewall = f"{args.firewall} failed: {exc}", None
    uids = {} if firewall is None else {m.name: MANAGER_UID + i
                                        for i, m in enumerate(cluster.managers)}
    run = ChaosRun(args.config, cluster, run_dir, uids=uids, log_level=args.log_level)
    t = cluster.timing
    print(f"chaos: {len(cluster.nodes)} nodes, managers "
          f"{', '.join(m.name for m in cluster.managers)}, {args.clients} clients on "
          f"{min(args.pages, cluster.pages)} pages for {args.duration:g} s, seed {args.seed}; "
          f"heartbeat {t.heartbeat_interval:g} s x {t.liveness}", flush=True)
    where = (f"namespace {args.netns}, each daemon on its own 127.0.0.x" if args.netns
             else "this network namespace, 127.0.0.1")
    print(f"network: {where}; partitions: "
          f"{firewall.kind + ' (conntrack marks by manager uid)' if firewall else 'skipped'}"
          f"{'' if firewall else ' (' + reason + ')'}", flush=True)
    steps = schedule(args.seed, args.duration, cluster, firewall is not None)
    history_path = run_dir / "history.jsonl"
    monitor = None
    nemesis = None
    stop = threading.Event()
    problems: list[str] = []
    try:
        run.up()
        monitor = Monitor(cluster).start()
        monitor.wait_seen()
        t_start = time.monotonic()
        nemesis = ChaosNemesis(run, monitor, random.Random(args.seed), t_start,
                               firewall=firewall)

        def nemesis_body(nem: ChaosNemesis) -> None:
            for step in steps:
                if not nem.at(step.at):
                    return
                nem.apply(step)
        thread = nemesis.run_script(nemesis_body)
        history, elapsed = run_for(cluster, clients=args.clients, duration=args.duration,
                                   pages=args.pages, read_share=args.read_share,
                                   seed=args.seed, stop=stop)
        t_end = time.monotonic()
        nemesis.done.set()
        nemesis.stop.set()
        thread.join(timeout=SETTLE)
        nemesis.repair()
        problems = quiescent_problems(run, cluster)
        t_quiet = time.monotonic()
    except KeyboardInterrupt:
        print("chaos: interrupted; stopping the cluster", file=sys.stderr)
        return 130
    finally:
        stop.set()
        if nemesis is not None:
            nemesis.stop.set()
            try:
                nemesis.repair()
            except Exception as exc:     # the cluster is going down anyway
                logger.warning("repair: {}", exc)
        if monitor is not None:
            monitor.stop()
        run.down()
        if firewall is not None:
            firewall.remove()

    history.save(history_path)
    monitor.save(run_dir / "monitor.jsonl", t_start)
    ops = history.ops()
    verdict = checker.check(ops)
    counts = {o: sum(op.outcome == o for op in ops) for o in ("ok", "failed", "unknown")}
    terms = monitor.terms(t_start - 1.0, t_quiet)
    none, dual = monitor.outage(t_start, t_end)
    epochs = sorted({tm.epoch for tm in terms})
    backup_served = any(tm.name != cluster.managers[0].name for tm in terms)
    events = nemesis.events
    ok = bool(verdict.ok) and not problems and nemesis.error is None

    print("nemesis (seeded schedule, times from the clients' start):")
    for ev in events:
        state = " (was serving)" if ev.serving and ev.action in ("kill", "pause") else ""
        print(f"  t={ev.t - t_start:6.2f} s  {ev.action} {ev.target}{state}")
    if nemesis.error is not None:
        print(f"  nemesis error: {nemesis.error!r}")
    print(f"operations: {len(ops)} in {elapsed:.1f} s: {counts['ok']} ok, {counts['failed']} "
          f"failed, {counts['unknown']} unknown")
    fos = failovers(events, monitor, ops)
    if fos:
        print("takeovers after a hit on the serving manager:")
    for fo in fos:
        print(f"  {fo.text()}")
    chain = " -> ".join(f"{tm.name}@{tm.epoch}" for tm in terms)
    print(f"failovers seen: {max(0, len(terms) - 1)} changes of serving manager or epoch "
          f"({chain}); epochs {', '.join(map(str, epochs))}; backup served: "
          f"{'yes' if backup_served else 'no'}")
    print(f"time without a serving manager: {none:.2f} s; an older term still serving after "
          f"a newer one: {dual:.2f} s (nodes refuse it by epoch)")
    if any(ev.action == "partition" for ev in events):
        print(f"partitions dropped {nemesis.dropped} manager<->manager packets")
    print("tables once healed: " + ("agree" if not problems else "; ".join(problems)))
    print(f"history: {history_path}")
    print(f"checker: {verdict_text(verdict)}")
    summary = {
        "ok": ok, "linearizable": verdict.ok, "counts": counts, "elapsed": elapsed,
        "events": [dict(asdict(ev), t=round(ev.t - t_start, 3)) for ev in events],
        "schedule": [asdict(s) for s in steps],
        "terms": [{"name": tm.name, "epoch": tm.epoch, "t": round(tm.first - t_start, 3)}
                  for tm in terms],
        "epochs": epochs, "failovers": max(0, len(terms) - 1), "backup_served": backup_served,
        "takeovers_ms": [None if fo.serving is None else round((fo.serving.got - fo.killed)
                                                               * 1000) for fo in fos],
        "no_manager_s": round(none, 3), "dual_serving_s": round(dual, 3),
        "partition": {"ran": any(ev.action == "partition" for ev in events),
                      "firewall": firewall.kind if firewall else None, "reason": reason,
                      "dropped_packets": nemesis.dropped},
        "netns": args.netns or None, "problems": problems, "history": str(history_path),
        "verdict": verdict_text(verdict), "nemesis_error": None if nemesis.error is None
        else repr(nemesis.error),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0 if ok else 1


# -- outside: the namespace around it ------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ivy chaos",
                                 description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--duration", type=float, default=20.0,
                    help="seconds of client load under faults (default 20)")
    ap.add_argument("--seed", type=int, default=1, help="fixes the nemesis schedule")
    ap.add_argument("--nodes", type=int, default=10, help="process nodes (default 10)")
    ap.add_argument("--clients", type=int, default=10, help="concurrent clients (default 10)")
    ap.add_argument("--pages", type=int, default=10, help="pages (default 10)")
    ap.add_argument("--read-share", type=float, default=0.5)
    ap.add_argument("--timing", choices=sorted(TIMINGS), default="fast",
                    help="fast: 0.1 s heartbeats; default: 0.5 s (default fast)")
    ap.add_argument("--run-dir", help="config, logs, history and summary.json go here "
                    "(default: a new /tmp/ivychaos-* directory)")
    ap.add_argument("--no-netns", action="store_true",
                    help="run in this network namespace (no partitions)")
    ap.add_argument("--firewall", choices=["auto", "nft", "iptables", "none"], default="auto",
                    help="tool for partitions (default: nft, else iptables)")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"],
                    help="the daemons' log level (logs go to the run directory)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--netns", default="", help=argparse.SUPPRESS)
    ap.add_argument("--partition-reason", default="", help=argparse.SUPPRESS)
    return ap


def _why_no_netns(args) -> str:
    if args.no_netns:
        return "--no-netns"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root, so no network namespace"
    if not shutil.which("ip"):
        return "`ip` is not installed, so no network namespace"
    return ""


def _inner_argv(args, config: Path, run_dir: Path, firewall: str, reason: str,
                netns: str) -> list[str]:
    return ["--inside", "--config", str(config), "--run-dir", str(run_dir),
            "--duration", str(args.duration), "--seed", str(args.seed),
            "--clients", str(args.clients), "--pages", str(args.pages),
            "--read-share", str(args.read_share), "--firewall", firewall,
            "--log-level", args.log_level,
            f"--partition-reason={reason}", f"--netns={netns}"]


def _ip(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=10)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    if args.inside:
        return inside(args)
    if args.nodes < 1 or args.clients < 1 or args.pages < 1 or args.duration <= 0:
        print("ivy chaos: error: --nodes, --clients, --pages and --duration must be positive",
              file=sys.stderr)
        return 2
    if args.nodes > 200:
        print("ivy chaos: error: at most 200 nodes", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="ivychaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "chaos.yaml"

    reason = _why_no_netns(args)
    firewall = "none"
    if args.firewall == "none":
        reason = reason or "--firewall none"
    elif args.firewall == "auto":
        kind, why = pick_firewall()
        firewall, reason = (kind or "none"), (reason or why)
    elif shutil.which(args.firewall):
        firewall = args.firewall
    else:
        reason = reason or f"{args.firewall} is not installed"
    netns = "" if _why_no_netns(args) else f"ivychaos-{os.getpid()}"
    if netns and firewall != "none" and not shutil.which("setpriv"):
        firewall, reason = "none", "setpriv (util-linux) is missing"
    if netns:
        made = _ip("netns", "add", netns)
        if made.returncode != 0:
            reason = reason or f"cannot create a network namespace: {made.stderr.strip()}"
            netns = ""
    if not netns:
        firewall = "none"
        config.write_text(yaml.safe_dump(make_config(args.nodes, args.pages, args.timing,
                                                     own_addresses=False)))
        return inside(parser().parse_args(_inner_argv(args, config, run_dir, firewall,
                                                      reason, netns)))

    child = None
    try:
        config.write_text(yaml.safe_dump(make_config(args.nodes, args.pages, args.timing,
                                                     own_addresses=True)))
        inner = _inner_argv(args, config, run_dir, firewall, reason, netns)
        lo = _ip("-n", netns, "link", "set", "lo", "up")
        if lo.returncode != 0:
            print(f"ivy chaos: cannot bring up lo in {netns}: {lo.stderr.strip()}",
                  file=sys.stderr)
            return 1
        child = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m",
                                  "ivyzmq.chaos", *inner])
        try:
            return child.wait(timeout=args.duration + 600)
        except subprocess.TimeoutExpired:
            print("ivy chaos: the run inside the namespace hangs; killing it", file=sys.stderr)
            return 1
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
            return 130
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        # Whatever the child left running (killed before its own cleanup): by recorded pid.
        try:
            if config.exists():
                RunDir(str(config), C.load(config), run_dir).down()
        except (C.ConfigError, OSError) as exc:
            print(f"ivy chaos: cleanup: {exc}", file=sys.stderr)
        gone = _ip("netns", "del", netns)
        if gone.returncode != 0:
            print(f"ivy chaos: cannot delete namespace {netns}: {gone.stderr.strip()}",
                  file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
