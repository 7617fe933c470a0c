"""`ivy workload`: concurrent clients doing random reads and writes on a running cluster,
every operation recorded in a history and the history checked for linearizability.

    ivy workload [--clients 10] [--ops 1000] [--read-share 0.5] [--pages 3] [--seed 1]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivyzmq import args as A
from ivyzmq.programs import Result

NAME = "workload"
HELP = "concurrent random reads and writes (and cas and add), recorded and checked"


def add_arguments(p) -> None:
    p.add_argument("--clients", type=A.count, default=10,
                   help="concurrent clients (default 10)")
    p.add_argument("--ops", type=A.count, default=1000, help="operations in all (default 1000)")
    p.add_argument("--read-share", type=A.share, default=0.5,
                   help="fraction of reads (default 0.5)")
    p.add_argument("--mix", type=A.mix, metavar="KIND=W,...",
                   help="operation weights instead, e.g. read=4,write=2,cas=2,add=2: with "
                        "add, the odd pages are counters (read and add; all of them when "
                        "there are no writes or cas), the others strings")
    p.add_argument("--pages", type=A.count, help="use pages 0..K-1 only, so pages contend "
                   "(default 3, or all the config has if fewer)")
    A.fits(p, "--pages", "pages", default=3)
    p.add_argument("--seed", type=A.natural, default=1)
    p.add_argument("--history", help="history file (default <run dir>/history.jsonl)")


@dataclass
class WorkloadResult(Result):
    ops: int
    clients: int
    pages: int
    elapsed: float
    counts: dict[str, int]
    history: Path
    verdict: object

    def __post_init__(self) -> None:
        self.status = 0 if self.verdict.ok else 1

    def text(self) -> str:
        from ivyzmq.checker import verdict_text
        c = self.counts
        return "\n".join([
            f"{self.ops} operations by {self.clients} clients on {self.pages} pages in "
            f"{self.elapsed * 1000:.0f} ms ({self.ops / self.elapsed:.0f} ops/s): "
            f"{c['ok']} ok, {c['failed']} failed, {c['unknown']} unknown",
            f"history: {self.history}", f"checker: {verdict_text(self.verdict)}"])

    def json(self) -> dict:
        return {"ops": self.ops, "clients": self.clients, "pages": self.pages,
                "elapsed": self.elapsed, "counts": self.counts, "history": str(self.history),
                "linearizable": self.verdict.ok}


def run(args) -> WorkloadResult:
    from ivyzmq.deploy import open_config
    from ivyzmq.harness.ops import run_clients
    from ivyzmq.progress import bar
    dep = open_config(args.config, args.run_dir)
    with bar("workload", args.ops) as done:
        res = run_clients(dep.cluster, clients=args.clients, ops=args.ops,
                          read_share=args.read_share, pages=args.pages, seed=args.seed,
                          mix=args.mix, after_op=lambda _i, _op: done.advance())
    path = Path(args.history) if args.history else dep.path / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    res.history.save(path)
    return WorkloadResult(len(res.history), args.clients, args.pages, res.elapsed,
                          res.counts(), path, res.verdict())
