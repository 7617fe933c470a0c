"""`ivy homework r|w`: the homework's `make r` / `make w`. Random reads or writes by random
nodes on random pages, one at a time, while the primary manager is killed (SIGKILL) and
restarted at random. Prints the message trace, the readouts, the faults, `Done in N ms` and
the checker's verdict."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from ivyzmq import args as A
from ivyzmq.programs import Result

NAME = "homework"
HELP = ("the homework's `make r` / `make w`: 100 random reads or writes while the primary "
        "is killed and restarted at random")


def add_arguments(p) -> None:
    p.add_argument("mode", choices=["r", "w"], help="r: random reads, w: random writes")
    p.add_argument("--ops", type=A.count, default=100)
    p.add_argument("--kill-prob", type=A.share, default=0.1,
                   help="chance to kill the primary after each operation (default 0.1)")
    p.add_argument("--restart-prob", type=A.share, default=0.1,
                   help="chance to restart a dead primary after each operation (default 0.1)")
    p.add_argument("--seed", type=A.natural, default=None)


@dataclass
class HomeworkResult(Result):
    mode: str
    seed: int
    trace: str = ""
    readout: str = ""
    events: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    verdict: object = None
    busy: float = 0.0

    def text(self) -> str:
        from ivyzmq.checker import verdict_text
        c = self.counts
        return "\n".join([
            self.trace, self.readout,
            "\n".join(self.events) if self.events else "no faults this time",
            f"{sum(c.values())} {'reads' if self.mode == 'r' else 'writes'} (seed {self.seed}): "
            f"{c['ok']} ok, {c['failed']} failed, {c['unknown']} unknown",
            f"checker: {verdict_text(self.verdict)}", f"Done in {self.busy * 1000:.0f} ms"])

    def json(self) -> dict:
        return {"mode": self.mode, "seed": self.seed, "events": self.events,
                "counts": self.counts, "linearizable": self.verdict.ok,
                "busy_ms": round(self.busy * 1000)}


def _fault(dep, rng: random.Random, args, i: int) -> str | None:
    """Maybe kill the running primary, or restart the dead one; say what was done."""
    from ivyzmq import protocol as P
    primary = dep.cluster.managers[0].name
    if primary in dep.procs.running():
        if rng.random() >= args.kill_prob:
            return None
        # Say whether it was serving: a primary restarted a moment ago may still be
        # catching up as a backup, and killing it then costs no failover.
        reply = dep.admin.query(primary, P.StatusQuery(), timeout=0.3)
        role = "serving" if reply and reply.serving else "not serving"
        dep.procs.kill(primary)
        return f"after op {i}: killed {primary} ({role})"
    if rng.random() < args.restart_prob:
        dep.procs.start(primary)
        return f"after op {i}: restarted {primary}"
    return None


def _operations(dep, res: HomeworkResult, args, rng: random.Random, history, done) -> list:
    from ivyzmq.client import connect
    from ivyzmq.harness.ops import run_tag, timed_op
    cluster = dep.cluster
    rows = []
    mems = {n: connect(cluster, n) for n in cluster.node_ids}
    tag = run_tag(rng)
    try:
        for i in range(args.ops):
            t0 = time.monotonic()
            node, page = rng.choice(cluster.node_ids), rng.randrange(cluster.pages)
            kind = "read" if args.mode == "r" else "write"
            history.append(timed_op(mems[node], cluster.page_size, client=node, node=node,
                                    page=page, kind=kind, value=f"{tag}-n{node}-{i}"))
            # Collect the trace before any kill, so the primary's messages are not lost with it.
            res.busy += time.monotonic() - t0
            rows += dep.trace(clear=True)
            t1 = time.monotonic()
            event = _fault(dep, rng, args, i)
            if event:
                res.events.append(event)
            res.busy += time.monotonic() - t1
            done.advance()
    finally:
        for mem in mems.values():
            mem.close()
    return rows


def run(args) -> HomeworkResult:
    from ivyzmq import readout
    from ivyzmq.checker import check
    from ivyzmq.deploy import open_config
    from ivyzmq.harness import agreement
    from ivyzmq.progress import bar
    from ivyzmq.history import History, counts
    dep = open_config(args.config, args.run_dir)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    primary = dep.cluster.managers[0].name
    res = HomeworkResult(args.mode, seed)
    started = dep.up()
    dep.trace(clear=True)
    history = History()
    with bar("homework", args.ops) as done:
        rows = _operations(dep, res, args, rng, history, done)
    if primary not in dep.procs.running():
        dep.procs.start(primary)
        res.events.append(f"at the end: restarted {primary}")
    # Wait until the tables agree, so the final readouts show the state carried over.
    agreement.settle(lambda: dict(dep.status(timeout=0.5)),
                     [m.name for m in dep.cluster.managers],
                     [nd.name for nd in dep.cluster.nodes], timeout=15.0, others=True,
                     serving=primary if dep.cluster.failback else None)
    rows += dep.trace(clear=True)
    res.trace = readout.trace_text(rows)
    res.readout = readout.status_text(dep.cluster, dep.status())
    ops = history.ops()
    res.counts, res.verdict = counts(ops), check(ops)
    res.status = 0 if res.verdict.ok else 1
    if started:
        dep.down()
    return res
