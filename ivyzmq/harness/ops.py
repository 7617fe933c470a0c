"""Client operations against a live cluster, recorded for the checker: one timed operation,
the seeding of pages with values of the run, and the concurrent client loop every program
(workload, homework, experiments, chaos) and the real-process tests use.

Every written value is unique (a run tag, the client and a counter), so a read names the
write it saw.
"""
from __future__ import annotations

import random
import threading
import typing
import time
from dataclasses import dataclass

from ivyzmq import checker
from ivyzmq.client import IvyError, IvyTimeout, NodeFencedError, connect
from ivyzmq.config import Cluster
from ivyzmq.history import History, Kind, Op, counts
from ivyzmq.readout import page_text

VALUE_BYTES = 32
MAX_OPS_PER_CLIENT = 10_000_000    # a client bounded by time still stops after this many


def value_bytes(value: str, page_size: int) -> bytes:
    return value.encode().ljust(min(VALUE_BYTES, page_size), b"\0")


def attempt(mem, page_size: int, *, client: int, node: int, page: int, kind: str,
            value: str = "", expected: str = "", counter: bool = False, seen=None
            ) -> tuple[Op, IvyError | None]:
    """Read, write `value`, compare-and-swap `expected` -> `value`, or add 1, and return
    the history record with the error, if any: ok with the value read or written, unknown
    after a time-out (a write may still take effect, as may a write whose node was fenced
    while its replicas got it), failed otherwise. On a `counter` page values are the
    8-byte integer in decimal (history.Op). `seen` (page -> value), if given, learns
    the value an ok operation saw or left."""
    start = time.monotonic()
    outcome, error, extra = "ok", None, {}
    try:
        if kind == "read":
            data = mem.read(page)
            value = str(_integer(data)) if counter else page_text(data)
        elif kind == "write":
            mem.write(page, int(value).to_bytes(8, "little", signed=True) if counter
                      else value_bytes(value, page_size))
        elif kind == "cas":
            swapped, found = mem.compare_and_swap(page, value_bytes(expected, page_size),
                                                  value_bytes(value, page_size))
            extra = dict(expected=expected, swapped=swapped)
            if seen is not None:
                seen[page] = value if swapped else page_text(found)
        else:
            value, extra = "", dict(delta=1, result=mem.add(page, 1))
    except IvyTimeout as exc:
        outcome, error = "unknown", exc
    except NodeFencedError as exc:      # a write its replicas may hold took effect, maybe
        outcome, error = ("failed" if kind == "read" else "unknown"), exc
    except IvyError as exc:
        outcome, error = "failed", exc
    if outcome != "ok":
        value = "" if kind in ("read", "add") else value
        extra = {"expected": expected} if kind == "cas" else {"delta": 1} if kind == "add" \
            else {}
    elif seen is not None and kind in ("read", "write"):
        seen[page] = value
    end = time.monotonic()
    return Op(client=client, node=node, page=page, kind=kind, value=value, start=start,
              end=end if outcome == "ok" else None, outcome=outcome, **extra), error


def _integer(data: bytes) -> int:
    return int.from_bytes(data[:8], "little", signed=True)


KINDS = typing.get_args(Kind)      # read, write, cas, add


def counter_page(mix: dict[str, float], page: int) -> bool:
    """With adds in the mix, pages are counters (read and add) - the odd ones only when
    writes or compare-and-swaps need string pages too."""
    if not mix.get("add"):
        return False
    return not (mix.get("write") or mix.get("cas")) or page % 2 == 1


def timed_op(mem, page_size: int, **kw) -> Op:
    """`attempt`, keeping only the record."""
    return attempt(mem, page_size, **kw)[0]


def run_tag(rng: random.Random | None = None) -> str:
    """A tag every value of one run carries, so runs on the same cluster never collide."""
    return f"{(rng or random.Random()).getrandbits(24):06x}"


def seed_pages(cluster: Cluster, pages: int, history: History, mix=None) -> str:
    """Pages keep what earlier runs wrote: give pages 0..pages-1 a value of this run first
    (recorded), so every value a read returns names a write of this history. Returns the
    run's tag."""
    tag = run_tag()
    with connect(cluster, 0) as mem:
        for page in range(pages):
            counter = counter_page(mix or {}, page)
            op = timed_op(mem, cluster.page_size, client=-1, node=0, page=page, kind="write",
                          value="0" if counter else f"{tag}-init{page}", counter=counter)
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
                 timeout: float | None = None, seed_values: bool = True,
                 mix: dict[str, float] | None = None):
        self.cluster, self.clients = cluster, clients
        self.pages = max(1, min(pages, cluster.pages))
        self.mix = mix or {"read": read_share, "write": 1 - read_share}
        self.seed, self.duration = seed, duration
        self.after_op, self.stop_on_error, self.timeout = after_op, stop_on_error, timeout
        self.node_of = node_of or (lambda i, rng: i % len(cluster.nodes))
        self.per = [MAX_OPS_PER_CLIENT] * clients if ops is None else \
            [ops // clients + (1 if i < ops % clients else 0) for i in range(clients)]
        self.history = History()
        self.tag = seed_pages(cluster, self.pages, self.history, self.mix) if seed_values \
            else run_tag()
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
        seen: dict[int, str] = {}          # the last value this client saw on each page
        with connect(self.cluster, node, timeout=self.timeout) as mem:
            for k in range(self.per[i]):
                if self._over():
                    return
                page = rng.randrange(self.pages)
                counter = counter_page(self.mix, page)
                kinds = [kd for kd in KINDS if self.mix.get(kd) and
                         (kd in ("read", "add") if counter else kd != "add")] or ["read"]
                kind = rng.choices(kinds, [self.mix[kd] for kd in kinds])[0]
                op = timed_op(mem, self.cluster.page_size, client=i, node=node, page=page,
                              kind=kind, value=f"{self.tag}-c{i}-{k}", counter=counter,
                              expected=seen.get(page, f"{self.tag}-init{page}"), seen=seen)
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
