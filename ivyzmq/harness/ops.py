"""Client operations against a live cluster, recorded for the checker: one timed operation,
the seeding of pages with values of the run, and the concurrent client loop every program
(workload, homework, experiments, chaos) and the real-process tests use.

Every written value is unique (a run tag, the client and a counter), so a read names the
write it saw.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from ivyzmq import checker
from ivyzmq.client import IvyError, IvyTimeout, NodeFencedError, connect
from ivyzmq.config import Cluster
from ivyzmq.history import History, Op, counts
from ivyzmq.readout import page_text

VALUE_BYTES = 32
MAX_OPS_PER_CLIENT = 10_000_000    # a client bounded by time still stops after this many


def value_bytes(value: str, page_size: int) -> bytes:
    return value.encode().ljust(min(VALUE_BYTES, page_size), b"\0")


def attempt(mem, page_size: int, *, client: int, node: int, page: int, kind: str,
            value: str = "") -> tuple[Op, IvyError | None]:
    """Read, or write `value`, and return the history record with the error, if any: ok
    with the value read or written, unknown after a time-out (a write may still take
    effect, as may a write whose node was fenced while its replicas got it), failed
    otherwise."""
    start = time.monotonic()
    outcome, error = "ok", None
    try:
        if kind == "read":
            value = page_text(mem.read(page))
        else:
            mem.write(page, value_bytes(value, page_size))
    except IvyTimeout as exc:
        outcome, error = "unknown", exc
    except NodeFencedError as exc:      # a write its replicas may hold took effect, maybe
        outcome, error = ("unknown" if kind == "write" else "failed"), exc
    except IvyError as exc:
        outcome, error = "failed", exc
    if kind == "read" and outcome != "ok":
        value = ""
    end = time.monotonic()
    return Op(client=client, node=node, page=page, kind=kind, value=value, start=start,
              end=end if outcome == "ok" else None, outcome=outcome), error


def timed_op(mem, page_size: int, **kw) -> Op:
    """`attempt`, keeping only the record."""
    return attempt(mem, page_size, **kw)[0]


def run_tag(rng: random.Random | None = None) -> str:
    """A tag every value of one run carries, so runs on the same cluster never collide."""
    return f"{(rng or random.Random()).getrandbits(24):06x}"


def seed_pages(cluster: Cluster, pages: int, history: History) -> str:
    """Pages keep what earlier runs wrote: give pages 0..pages-1 a value of this run first
    (recorded), so every value a read returns names a write of this history. Returns the
    run's tag."""
    tag = run_tag()
    with connect(cluster, 0) as mem:
        for page in range(pages):
            op = timed_op(mem, cluster.page_size, client=-1, node=0, page=page, kind="write",
                          value=f"{tag}-init{page}")
            if op.outcome != "ok":
                raise IvyError(f"seeding page {page} through node 0: {op.outcome}")
            history.append(op)
    return tag


@dataclass
class ClientRun:
    """What a client loop recorded, and how long it took."""

    history: History
    elapsed: float

    def counts(self) -> dict[str, int]:
        return counts(self.history.ops())

    def verdict(self) -> checker.CheckResult:
        return checker.check(self.history.ops())


class Clients:
    """`clients` threads, each on its own node connection, doing random reads and writes on
    pages 0..pages-1: `ops` operations in all, or until `duration` seconds have passed or
    `stop()`. `after_op(client, op)` runs after every operation (think time, a nemesis
    hook); with `stop_on_error` a client ends at its first operation that is not ok (it
    would only pile up more unknowns). With `seed` the pages first get a value of this run
    (see `seed_pages`)."""

    def __init__(self, cluster: Cluster, *, clients: int, pages: int, read_share: float = 0.5,
                 seed: int = 1, ops: int | None = None, duration: float | None = None,
                 after_op=None, node_of=None, stop_on_error: bool = False,
                 timeout: float | None = None, seed_values: bool = True):
        self.cluster, self.clients = cluster, clients
        self.pages = max(1, min(pages, cluster.pages))
        self.read_share, self.seed, self.duration = read_share, seed, duration
        self.after_op, self.stop_on_error, self.timeout = after_op, stop_on_error, timeout
        self.node_of = node_of or (lambda i, rng: i % len(cluster.nodes))
        self.per = [MAX_OPS_PER_CLIENT] * clients if ops is None else \
            [ops // clients + (1 if i < ops % clients else 0) for i in range(clients)]
        self.history = History()
        self.tag = seed_pages(cluster, self.pages, self.history) if seed_values else run_tag()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                         for i in range(clients)]
        self.t0 = time.monotonic()
        self.deadline = None if duration is None else self.t0 + duration
        for t in self._threads:
            t.start()

    def _over(self) -> bool:
        return self._stop.is_set() or (self.deadline is not None
                                       and time.monotonic() >= self.deadline)

    def _client(self, i: int) -> None:
        rng = random.Random(self.seed * 100_003 + i)
        node = self.node_of(i, rng)
        with connect(self.cluster, node, timeout=self.timeout) as mem:
            for k in range(self.per[i]):
                if self._over():
                    return
                page = rng.randrange(self.pages)
                kind = "read" if rng.random() < self.read_share else "write"
                op = timed_op(mem, self.cluster.page_size, client=i, node=node, page=page,
                              kind=kind, value=f"{self.tag}-c{i}-{k}")
                self.history.append(op)
                if self.after_op is not None:
                    self.after_op(i, op)
                if self.stop_on_error and op.outcome != "ok":
                    return

    def ok_after(self, t: float) -> list[Op]:
        return [op for op in self.history.ops() if op.outcome == "ok" and op.start > t]

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> ClientRun:
        """Wait for the clients (each bounded by `timeout` if given); they must end."""
        for t in self._threads:
            t.join(timeout)
        if any(t.is_alive() for t in self._threads):
            raise IvyError("workload clients hang")
        return ClientRun(self.history, time.monotonic() - self.t0)

    def finish(self, timeout: float | None = None) -> ClientRun:
        self.stop()
        return self.join(timeout)


def run_clients(cluster: Cluster, *, duration: float | None = None, **kw) -> ClientRun:
    """Run `Clients` to their end: all their ops, or `duration` seconds. (A program that
    must be able to stop them early holds a `Clients` and calls `finish()`.)"""
    clients = Clients(cluster, duration=duration, **kw)
    return clients.join(None if duration is None else
                        duration + cluster.timing.op_timeout + 30)
