#!/usr/bin/env python
"""Latency and throughput of ivyzmq beside a raw pyzmq baseline, measured in the same run.

    .venv/bin/python bench/bench.py [--quick] [--cpu] [--json FILE]

Starts a real cluster (10 node daemons and a primary manager, later also a backup) from a
generated config as a Deployment, and beside it a "raw" cluster: the same processes, sockets
(a ROUTER inbox per process, one DEALER per destination) and message pattern written
directly with pyzmq and msgspec JSON headers, with nothing of ivyzmq's protocol machinery
(no replication log, epochs, Lamport clocks, traces, retries, dedupe or strict decoding):
just enough routing state (owner, copy set, a lock per page) to send the same messages.
Blocks of ours and raw samples alternate so that noise from other work on the machine hits
both alike. Prints one table; every process started is stopped by os_pid at the end.

Rows (ours | raw):
  read fault     node 1 reads a page owned by node 0 that it does not hold; timed at the
                 client program from its request to the node's reply, so the path is
                 client->node->manager->owner->node(+4 KiB)->[manager confirm] ->client.
                 Between samples (untimed) the owner writes the page, invalidating node 1.
  write fault    node 2 or 3 writes a page the other owns, after k other nodes (4..) took
                 read copies (untimed): client->node->manager->k invalidations and their
                 confirmations->owner->node(+4 KiB)->[manager confirm]->client.
  write hit      node 8 writes a page it owns and holds ReadWrite, with replicas: 0, 1, 2
                 (the page to K holders and their acks before the reply); the raw node sends
                 K Update-like messages with the page and waits for K acks the same way.
  write fault,   the write fault with no read copies on clusters with replicas: 1, 2; the
  replicas K     new owner sends the page to K holders and waits for their acks.
  cas / add      a cas (8 bytes, always swapping) or an add at node 8, which owns the page
                 with ReadWrite (a hit), and with a write fault first like the write fault
                 with no copies; the raw node applies them like a write and replies the result.
  lock hand-over ivyzmq.sync.Lock between clients of nodes 6 and 7 (a thread each), timed
                 from one's release() to the other's acquire() returning; raw: the same Lock
                 over the raw relay's read and cas.
  failover       kill -9 of the primary -> the next write done through the backup, with a
                 node killed and declared dead first / with every node alive (replicas 1).
  embedded hit   embed(config, 9).read(p) of a page node 9 holds, per call in batches of
                 100; the baseline is a plain Python list lookup in the same loop.
  curve / none   read fault and write fault (no copies) on two 4-node clusters, one with
                 security: curve, one with none (bench/security_cost.py): what CURVE costs.
  throughput     10 client threads (in this process), client i on node i, 50% reads and
                 50% 8-byte writes, for a fixed time: each on its own page (no sharing) and
                 all on one hot page. ops/s, plus the per-operation latency.

The pieces: common.py (layout, helpers), ours.py (the ivyzmq cluster), raw.py (the raw
baseline; raw_cluster.py starts it, raw_replicas.py adds replicas), measure.py (latency
blocks), replicas.py, atomics.py and failover.py (their rows), throughput.py, cpu.py
(--cpu), table.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from ivyzmq.client import embed

from atomics import atomic_rows
from common import EMBED_NODE, EMBED_PAGE, HOT_PAGE, N_NODES, OWN_PAGE_BASE, PAGE_SIZE, PAGES, log
from cpu import cpu_per_cycle, print_cpu
from failover import failover_row
from measure import (Clients, embedded_hit, embedded_row, alternate, read_fault_block, row,
                     write_fault_block)
from metrics_cost import NAME as METRICS_ROW, metrics_row
from ours import OurCluster
from raw_cluster import RawCluster
from replicas import hit_name, hit_row, replica_rows
from security_cost import security_rows
from table import print_table
from throughput import merge_tp, throughput, tp_row


@dataclass(frozen=True)
class Sizes:
    """Samples per row: a full run, or a quick one (CI smoke)."""

    n_read: int
    n_write: int
    duration: float          # s of each throughput row, per system
    emb_batches: int
    n_hit: int               # write hits at the owner, per replicas value
    replicas: tuple          # the K >= 1 that get clusters of their own
    failovers: int           # repetitions of the failover row (0: no row)
    n_lock: int              # lock hand-overs between two nodes

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:            # replicas 1 only, fewer hits, no failover row
            return cls(300, 100, 0.6, 2000, 200, (1,), 0, 40)
        return cls(2000, 600, 3.0, 20000, 1000, (1, 2), 3, 300)


class Bench:
    """Both clusters, a client per node of each, and the rows measured so far."""

    def __init__(self, workdir: Path, sizes: Sizes, cpu: bool):
        self.sizes, self.want_cpu, self.workdir = sizes, cpu, workdir
        self.ours = OurCluster(workdir, N_NODES, PAGES, PAGE_SIZE)
        self.raw = RawCluster(N_NODES, PAGES, PAGE_SIZE)
        self.clients = {"ours": Clients(self.ours.client), "raw": Clients(self.raw.client)}
        self.rows: list[dict] = []
        self.samples: dict[str, tuple[list[float], list[float]]] = {}   # for --cdf
        self.cpu: tuple[dict, dict] | None = None

    def run(self) -> None:
        self.start()
        self.fault_rows("1 mgr")
        if self.want_cpu:
            self.cpu = (cpu_per_cycle(self.clients["ours"], self.ours.os_pids(),
                                      self.sizes.n_read // 2),
                        cpu_per_cycle(self.clients["raw"], self.raw.os_pids(),
                                      self.sizes.n_read // 2))
        self.replica_rows()
        self.atomic_rows()
        self.throughput_rows("1 mgr", ("own", "hot"))
        log("starting the backup manager")
        self.ours.up_backup()
        self.raw.use_backup()
        self.fault_rows("primary+backup")
        self.throughput_rows("primary+backup", ("hot",))
        self.rows.append(embedded_row(*self.embedded()))
        self.metrics_row()
        rows, samples = security_rows(self.workdir, self.sizes.n_read, self.sizes.n_write)
        self.rows += rows
        self.samples.update(samples)
        if self.sizes.failovers:
            log(f"failover: {self.sizes.failovers} repetitions, 2 fresh clusters each")
            self.rows.append(failover_row(self.workdir, self.sizes.failovers))

    def start(self) -> None:
        log(f"starting {N_NODES} node daemons + primary (and {N_NODES} raw nodes + manager)")
        names = ["primary"] + [f"node{i}" for i in range(N_NODES)]
        self.ours.start(names)
        self.raw.up()
        self.ours.wait(names)
        log("cluster up")

    def embedded(self) -> tuple[dict, dict]:
        """The embedded read hit, last: node 9's daemon makes way for a node hosted in this
        process. That is a new incarnation of node 9, so the old one's pages are lost (the
        bench is done with them); the hosted node writes page EMBED_PAGE, which a live node
        owns, to hold it, and reads it back from memory."""
        self.ours.dep.procs.stop(f"node{EMBED_NODE}")
        mem = embed(self.ours.cluster, EMBED_NODE)
        try:
            mem.write(EMBED_PAGE, b"embedded")
            return embedded_hit(mem, self.sizes.emb_batches)
        finally:
            mem.close()

    def fault_rows(self, config: str) -> None:
        """The remote read fault, then write faults with 0, 1 and 4 read copies."""
        o, r = alternate(read_fault_block, self.clients, self.sizes.n_read, 20)
        self.rows.append(row(f"read fault [{config}]",
                             "client->node ... ->client round trip of a read that faults", o, r))
        self.samples[self.rows[-1]["name"]] = (o, r)
        log(f"read fault [{config}] done")
        for copies in (0, 1, 4):
            def step(client_of, state, k, out, copies=copies):
                write_fault_block(client_of, state, copies, k, out)
            o, r = alternate(step, self.clients, self.sizes.n_write, 8)
            self.rows.append(row(f"write fault, {copies} copies [{config}]",
                                 "client->node ... ->client round trip of a write that faults",
                                 o, r))
            self.samples[self.rows[-1]["name"]] = (o, r)
            log(f"write fault {copies} copies [{config}] done")

    def replica_rows(self) -> None:
        """The write hit at the owner with replicas 0 (this cluster), then the write hit and
        the write fault on clusters of their own with each K in sizes.replicas."""
        hit0, self.samples[hit_name(0)] = hit_row(self.clients, 0, self.sizes.n_hit)
        rows, samples = replica_rows(self.workdir, self.sizes.replicas, self.sizes.n_hit,
                                     self.sizes.n_write)
        self.rows += [hit0] + rows
        self.samples.update(samples)

    def atomic_rows(self) -> None:
        """cas and add at the owner (hits: n_hit) and with a write fault (n_write), and the
        lock hand-over between two nodes (n_lock), on this cluster (replicas 0)."""
        rows, samples = atomic_rows(self.clients, self.sizes.n_hit, self.sizes.n_write,
                                    self.sizes.n_lock)
        self.rows += rows
        self.samples.update(samples)

    def throughput_rows(self, config: str, which: tuple[str, ...]) -> None:
        """10 clients on their own pages ("own") or all on one ("hot"); ours and raw take
        turns in two halves of the time."""
        for kind in which:
            if kind == "own":
                assign = [(i, OWN_PAGE_BASE + i) for i in range(N_NODES)]
                label = "throughput, 10 clients, own pages"
            else:
                assign = [(i, HOT_PAGE) for i in range(N_NODES)]
                label = "throughput, 10 clients, 1 hot page"
            res: dict = {"ours": [], "raw": []}
            halves = 2
            for h in range(halves):
                for who, make in (("ours", self.ours.client), ("raw", self.raw.client)):
                    res[who].append(throughput(make, assign, self.sizes.duration / halves,
                                               seed=h))
            self.rows.append(tp_row(f"{label} [{config}]", merge_tp(res["ours"]),
                                    merge_tp(res["raw"])))
            log(f"{label} [{config}] done")

    def metrics_row(self) -> None:
        measured, self.samples[METRICS_ROW] = metrics_row(self.workdir, self.sizes.n_read)
        self.rows.append(measured)

    def close(self) -> None:
        """Stop everything started (by os_pid)."""
        for c in self.clients.values():
            c.close()
        try:
            self.ours.down()
        finally:
            self.raw.down()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="a few hundred samples per row (CI smoke, ~30 s)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    ap.add_argument("--cpu", action="store_true",
                    help="also print the CPU time each process spends per read fault")
    ap.add_argument("--cdf", metavar="FILE.png", help="also draw each fault row's latency "
                    "CDF, ours beside raw (needs matplotlib: the `plot` extra)")
    return ap.parse_args(argv)


def write_json(path: str, bench: Bench, quick: bool, elapsed: float, load) -> None:
    cpu = bench.cpu
    Path(path).write_text(json.dumps({"quick": quick, "elapsed_s": elapsed, "loadavg": load,
                                      "cores": os.cpu_count(), "rows": bench.rows,
                                      "cpu_per_read_fault_cycle_us":
                                          None if cpu is None else
                                          {"ours": cpu[0], "raw": cpu[1]}},
                                     indent=1))


def _on_term(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The node that embed() hosts in this process logs like a daemon: keep stderr quiet.
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="ivybench-"))
    bench = Bench(workdir, Sizes.of(args.quick), args.cpu)
    t_start = time.monotonic()
    signal.signal(signal.SIGTERM, _on_term)
    try:
        bench.run()
    finally:
        try:
            bench.close()
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                log(f"run directory kept: {workdir}")
    elapsed = time.monotonic() - t_start
    load = (load_before, os.getloadavg()[0])
    print_table(bench.rows, elapsed, args.quick, load)
    if bench.cpu is not None:
        print_cpu(*bench.cpu)
    if args.json:
        write_json(args.json, bench, args.quick, elapsed, load)
    if args.cdf:
        from cdf import write_cdf
        write_cdf(args.cdf, bench.samples)
        log(f"latency CDFs written to {args.cdf}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
