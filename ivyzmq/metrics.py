"""Prometheus metrics of one daemon, served over HTTP when its config entry has
`metrics: "HOST:PORT"` (off when absent).

Nothing here runs on the hot path but plain counting: the transport calls `Counting.sent` /
`received` / `bad_frame` (a dictionary increment or two per message; the transport skips
the call when metrics are off), and everything else - roles, epochs, page tables,
replication lag - is read from the core's plain attributes when Prometheus scrapes. The
cores import nothing of this (docs/ARCHITECTURE.md rule 2).

Names follow Prometheus conventions: one `ivy_` prefix, base units (seconds, bytes),
`_total` for counters, no page numbers as labels (a cluster has up to a million pages).
"""
from __future__ import annotations

import bisect
import time
from collections import Counter

from ivyzmq import protocol as P

# Fault durations: from a node's first request to its confirmation (s).
FAULT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
                 10.0)
ACK_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)
_KIND = {P.ReadRequest: "read", P.WriteRequest: "write",
         P.ReadConfirmation: "read", P.WriteConfirmation: "write"}
OPEN_LIMIT = 100_000      # faults or replication steps remembered while unanswered
EPOCH_LIMIT = 1000        # the newest epochs of Recover remembered (to count each once)


class Histogram:
    """Bucket counts and a sum: what a Prometheus histogram exposes, at the cost of one
    bisect per observation."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets, self.counts, self.sum = buckets, [0] * (len(buckets) + 1), 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip([*map(str, self.buckets), "+Inf"], self.counts):
            total += n
            out.append((bound, total))
        return out


class Counting:
    """What the transport counts for metrics, as plain Python numbers."""

    def __init__(self, pid: int, n_nodes: int, interval: float, n_processes: int | None = None):
        self.pid, self.is_node, self.interval = pid, pid < n_nodes, interval
        # Heartbeats are counted per manager pid only (decoded, not yet checked by the
        # daemon: a made-up sender must not add a row); unknown count: 16 managers at most.
        self.managers = range(n_nodes, n_nodes + 16 if n_processes is None else n_processes)
        self.sent: Counter[type] = Counter()
        self.received: Counter[type] = Counter()
        self.sent_bytes = self.received_bytes = self.bad_frames = self.dropped = 0
        self.refused = 0        # messages a connection was not allowed to send
        self.faults: Counter[str] = Counter()
        self.fault_seconds = {k: Histogram(FAULT_BUCKETS) for k in ("read", "write")}
        self._open: dict[tuple[int, int], tuple[str, float]] = {}     # (page, rid) -> start
        self.invalidations = 0             # node: copies dropped on Invalidate
        self.recoveries = 0                # manager: recovery rounds begun (new epochs)
        self.failovers = 0                 # node: a new term from another manager
        self._recover_epochs: dict[int, None] = {}     # the newest EPOCH_LIMIT
        self._last_recover_from: int | None = None
        self.ack_seconds = Histogram(ACK_BUCKETS)
        self._replicated: dict[tuple[int, int], float] = {}           # (backup, seq) -> sent
        self.beats: Counter[int] = Counter()
        self.missed: Counter[int] = Counter()
        self.last_beat: dict[int, float] = {}

    def sent_msg(self, dest: int, msg: P.Msg, frames: list[bytes]) -> None:
        cls = type(msg)
        self.sent[cls] += 1
        self.sent_bytes += sum(map(len, frames))
        if cls in _KIND and self.is_node:
            self._fault(cls, msg)
        elif cls is P.InvalidateConfirmation:
            self.invalidations += 1
        elif cls is P.Replicate:
            self._remember(self._replicated, (dest, msg.seq), time.monotonic())
        elif cls is P.Recover and msg.epoch not in self._recover_epochs:
            self._remember(self._recover_epochs, msg.epoch, None, EPOCH_LIMIT)
            self.recoveries += 1

    def _fault(self, cls: type, msg: P.IvyMsg) -> None:
        key = (msg.page, msg.rid)
        if cls in (P.ReadRequest, P.WriteRequest):
            if key not in self._open:           # a re-send keeps the fault's first send
                self.faults[_KIND[cls]] += 1
                self._remember(self._open, key, (_KIND[cls], time.monotonic()))
        else:
            start = self._open.pop(key, None)
            if start is not None:
                self.fault_seconds[start[0]].observe(time.monotonic() - start[1])

    @staticmethod
    def _remember(table: dict, key, value, limit: int = OPEN_LIMIT) -> None:
        if len(table) >= limit:     # answers that never came: forget the oldest
            del table[next(iter(table))]
        table[key] = value

    def received_msg(self, msg: P.Msg, frames: list[bytes]) -> None:
        cls = type(msg)
        self.received[cls] += 1
        self.received_bytes += sum(map(len, frames))
        if cls is P.Heartbeat and msg.sender in self.managers:
            self._beat(msg.sender)
        elif cls is P.ReplicateAck:
            sent = self._replicated.pop((msg.sender, msg.seq), None)
            if sent is not None:
                self.ack_seconds.observe(time.monotonic() - sent)
        elif cls is P.Recover and self.is_node and msg.epoch not in self._recover_epochs:
            self._remember(self._recover_epochs, msg.epoch, None, EPOCH_LIMIT)
            if self._last_recover_from not in (None, msg.sender):
                self.failovers += 1
            self._last_recover_from = msg.sender

    def _beat(self, peer: int) -> None:
        now = time.monotonic()
        last = self.last_beat.get(peer)
        if last is not None:
            self.missed[peer] += max(0, int((now - last) / self.interval + 0.5) - 1)
        self.last_beat[peer] = now
        self.beats[peer] += 1

    def missed_now(self, peer: int) -> int:
        """Heartbeats missed from `peer`, counting the silence going on now."""
        last = self.last_beat.get(peer)
        ongoing = 0 if last is None else max(0, int((time.monotonic() - last)
                                                    / self.interval + 0.5) - 1)
        return self.missed[peer] + ongoing


def parse_address(text: str) -> tuple[str, int]:
    """"HOST:PORT" -> (host, port); ValueError naming what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics: {text!r} is not HOST:PORT")
    return host, int(port)


def address_of(cluster, pid: int) -> str | None:
    """The daemon's metrics address from the config, or None (metrics off)."""
    n = len(cluster.nodes)
    spec = cluster.nodes[pid] if pid < n else cluster.managers[pid - n]
    return getattr(spec, "metrics", None)


def start(daemon) -> tuple[str, int] | None:
    """Count in the daemon's transport and serve /metrics, if its config says where."""
    where = address_of(daemon.cluster, daemon.pid)
    if not where:
        return None
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector

    from ivyzmq.metrics_collect import DaemonCollector
    host, port = parse_address(where)
    counting = Counting(daemon.pid, len(daemon.cluster.nodes),
                        daemon.cluster.timing.heartbeat_interval,
                        len(daemon.cluster.nodes) + len(daemon.cluster.managers))
    daemon.transport.counting = counting
    registry = CollectorRegistry()
    for builtin in (ProcessCollector, PlatformCollector, GCCollector):
        builtin(registry=registry)       # the process metrics the library gives
    registry.register(DaemonCollector(daemon, counting))
    start_http_server(port, host, registry=registry)
    return host, port
