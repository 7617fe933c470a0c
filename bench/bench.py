#!/usr/bin/env python
"""Latency and throughput of ivyzmq beside a raw pyzmq baseline, measured in the same run.

    .venv/bin/python bench/bench.py [--quick] [--cpu] [--json FILE]

Starts a real cluster (10 node daemons and a primary manager, later also a backup) from a
generated config through RunDir, and beside it a "raw" cluster: the same processes, sockets
(a ROUTER inbox per process, one DEALER per destination) and message pattern written
directly with pyzmq and msgspec JSON headers, with nothing of ivyzmq's protocol machinery
(no replication log, epochs, Lamport clocks, traces, retries, dedupe or strict decoding):
just enough routing state (owner, copy set, a lock per page) to send the same messages.
Blocks of ours and raw samples alternate so that noise from other work on the machine hits
both alike. Prints one table; every process started is stopped by pid at the end.

Rows (ours | raw):
  read fault     node 1 reads a page owned by node 0 that it does not hold; timed at the
                 client program from its request to the node's reply, so the path is
                 client->node->manager->owner->node(+4 KiB)->[manager confirm] ->client.
                 Between samples (untimed) the owner writes the page, invalidating node 1.
  write fault    node 2 or 3 writes a page the other owns, after k other nodes (4..) took
                 read copies (untimed): client->node->manager->k invalidations and their
                 confirmations->owner->node(+4 KiB)->[manager confirm]->client.
  embedded hit   embed(config, 9).read(p) of a page node 9 holds, per call in batches of
                 100; the baseline is a plain Python list lookup in the same loop.
  throughput     10 client threads (in this process), client i on node i, 50% reads and
                 50% 8-byte writes, for a fixed time: each on its own page (no sharing) and
                 all on one hot page. ops/s, plus the per-operation latency.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import msgspec
import yaml
import zmq
from loguru import logger

from ivyzmq import config as C
from ivyzmq import protocol as P
from ivyzmq.client import connect, embed
from ivyzmq.control import RunDir, free_ports

N_NODES = 10
PAGES = 64
PAGE_SIZE = 4096
READER, READ_OWNER = 1, 0                 # read fault: node 1 faults on node 0's pages
READ_PAGES = [0, 10, 20, 30]              # owned by node 0 at start
WRITERS = (2, 3)                          # write fault: these two take turns
WRITE_PAGES = [2, 12, 22, 32]             # owned by node 2 at start
COPY_HOLDERS = [4, 5, 6, 7]               # nodes that take read copies before a write
EMBED_NODE, EMBED_PAGE = 9, 9             # node 9 owns page 9 at start
OWN_PAGE_BASE = 40                        # client i's own page 40+i is owned by node i
HOT_PAGE = 50


# -- small helpers ----------------------------------------------------------------------------

def pct(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q / 100 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def summary(samples_us: list[float]) -> dict:
    s = sorted(samples_us)
    return {"median_us": statistics.median(s) if s else float("nan"),
            "p99_us": pct(s, 99), "n": len(s)}


def fmt_us(v: float) -> str:
    if v != v:
        return "-"
    if v < 10:
        return f"{v:.2f} us"
    if v < 1000:
        return f"{v:.0f} us"
    return f"{v / 1000:.2f} ms"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the raw pyzmq cluster ----------------------------------------------------------------------
#
# Process ids as in ivyzmq: nodes 0..N-1, the manager N, its backup N+1. Headers are small
# msgspec-JSON dicts; a page travels as a second raw frame. Each process blocks on its ROUTER
# inbox and sends through one DEALER per destination, like ivyzmq's transport.

_enc = msgspec.json.encode
_dec = msgspec.json.decode


class _Out:
    def __init__(self, ctx: zmq.Context, endpoints: list[str]):
        self.ctx, self.endpoints, self.socks = ctx, endpoints, {}

    def send(self, dest: int, frames: list) -> None:
        sock = self.socks.get(dest)
        if sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.sndhwm = 100_000
            sock.connect(self.endpoints[dest])
            self.socks[dest] = sock
        sock.send_multipart(frames, zmq.NOBLOCK)


def _inbox(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    sock.rcvhwm = 100_000
    sock.bind(endpoint)
    return sock


def raw_node(pid: int, endpoints: list[str], n_nodes: int, pages: int, page_size: int) -> None:
    ctx = zmq.Context()
    inbox = _inbox(ctx, endpoints[pid])
    out = _Out(ctx, endpoints)
    mgr = n_nodes
    data = [bytes(page_size) if p % n_nodes == pid else None for p in range(pages)]
    owner = [p % n_nodes == pid for p in range(pages)]
    rw = list(owner)
    local = [deque() for _ in range(pages)]       # (ident, kind, cid, payload, offset)
    pending: list = [None] * pages                # "r" / "w" while a fault is out
    rid = [0]

    def to_mgr(t: str, p: int, requester: int, r: int) -> None:
        out.send(mgr, [_enc({"t": t, "sender": pid, "page": p, "requester": requester,
                             "rid": r})])

    def advance(p: int) -> None:
        q = local[p]
        while q:
            ident, kind, cid, payload, off = q[0]
            if kind == "r" and data[p] is not None:
                inbox.send_multipart([ident, _enc({"cid": cid}), data[p]], zmq.NOBLOCK)
            elif kind == "w" and rw[p]:
                old = data[p]
                data[p] = old[:off] + payload + old[off + len(payload):]
                inbox.send_multipart([ident, _enc({"cid": cid})], zmq.NOBLOCK)
            else:
                if pending[p] is None:
                    pending[p] = kind
                    rid[0] += 1
                    to_mgr("RQ" if kind == "r" else "WQ", p, pid, rid[0])
                return
            q.popleft()

    def done(p: int, h: dict) -> None:
        kind, pending[p] = pending[p], None
        to_mgr("RC" if kind == "r" else "WC", p, pid, h["rid"])
        advance(p)

    while True:
        frames = inbox.recv_multipart()
        ident = frames[0]
        try:
            h = _dec(frames[1])
            t = h["t"]
        except Exception:       # noqa: BLE001 - a stray peer (a stale DEALER elsewhere)
            continue
        if t == "read" or t == "write":                      # from a client program
            p = h["page"]
            local[p].append((ident, t[0], h["cid"], frames[2] if t == "write" else b"",
                             h.get("offset", 0)))
            if len(local[p]) == 1:
                advance(p)
            continue
        if t == "ping":
            inbox.send_multipart([ident, _enc({"t": "pong"})])
            continue
        p, req = h["page"], h["requester"]
        hdr = {"t": "", "sender": pid, "page": p, "requester": req, "rid": h["rid"]}
        if t == "RF":                                        # manager: send a read copy
            rw[p] = False
            hdr["t"] = "RP"
            out.send(req, [_enc(hdr), data[p]])
        elif t == "WF":                                      # manager: hand the page over
            hdr["t"] = "WP"
            out.send(req, [_enc(hdr), data[p]])
            data[p], owner[p], rw[p] = None, False, False
        elif t == "IV":                                      # manager: drop your copy
            data[p] = None
            hdr["t"] = "IC"
            out.send(mgr, [_enc(hdr)])
        elif t == "WG":                                      # manager: upgrade in place
            rw[p] = True
            done(p, h)
        elif t == "RP" and pending[p] == "r":                # owner: a read copy
            data[p] = frames[2]
            done(p, h)
        elif t == "WP" and pending[p] == "w":                # old owner: the page
            data[p], owner[p], rw[p] = frames[2], True, True
            done(p, h)


def raw_manager(pid: int, endpoints: list[str], n_nodes: int, pages: int) -> None:
    """Central manager: owner, copy set and a FIFO lock per page. With a backup switched on,
    every step's record goes to the backup first and the step's messages wait for its ack
    (as ivyzmq's replicate-before-acting does)."""
    ctx = zmq.Context()
    inbox = _inbox(ctx, endpoints[pid])
    out = _Out(ctx, endpoints)
    owner = [p % n_nodes for p in range(pages)]
    copies: list[set] = [set() for _ in range(pages)]
    op: list = [None] * pages               # [kind, requester, rid, waiting set]
    queue = [deque() for _ in range(pages)]
    backup: int | None = None
    seq = 0
    held: deque = deque()

    def msg(t: str, p: int, o: list) -> list:
        return [_enc({"t": t, "sender": pid, "page": p, "requester": o[1], "rid": o[2]})]

    def proceed(p: int, o: list, outs: list) -> None:
        if o[1] == owner[p]:
            outs.append((o[1], msg("WG", p, o)))
        else:
            outs.append((owner[p], msg("WF", p, o)))

    def start(p: int, o: list, outs: list) -> None:
        op[p] = o
        if o[0] == "r":
            outs.append((owner[p], msg("RF", p, o)))
            return
        targets = copies[p] - {o[1]}
        if targets:
            o[3] = set(targets)
            for n in sorted(targets):
                outs.append((n, msg("IV", p, o)))
        else:
            proceed(p, o, outs)

    while True:
        frames = inbox.recv_multipart()
        ident = frames[0]
        try:
            h = _dec(frames[1])
            t = h["t"]
        except Exception:       # noqa: BLE001 - a stray peer
            continue
        if t == "ACK":
            while held and held[0][0] <= h["seq"]:
                for dest, fr in held.popleft()[1]:
                    out.send(dest, fr)
            continue
        if t == "ping":
            inbox.send_multipart([ident, _enc({"t": "pong"})])
            continue
        if t == "backup":
            backup = h["pid"]
            inbox.send_multipart([ident, _enc({"t": "ok"})])
            continue
        p = h["page"]
        outs: list = []
        if t == "RQ" or t == "WQ":
            o = ["r" if t == "RQ" else "w", h["requester"], h["rid"], set()]
            if op[p] is None:
                start(p, o, outs)
            else:
                queue[p].append(o)
        elif t == "IC":
            o = op[p]
            o[3].discard(h["sender"])
            copies[p].discard(h["sender"])
            if not o[3]:
                proceed(p, o, outs)
        elif t == "RC" or t == "WC":
            if t == "RC":
                if h["requester"] != owner[p]:
                    copies[p].add(h["requester"])
            else:
                owner[p], copies[p] = h["requester"], set()
            op[p] = None
            if queue[p]:
                start(p, queue[p].popleft(), outs)
        if backup is None:
            for dest, fr in outs:
                out.send(dest, fr)
        else:
            seq += 1
            rec = {"page": p, "owner": owner[p], "copy_set": sorted(copies[p]),
                   "op": None if op[p] is None else op[p][:3]}
            out.send(backup, [_enc({"t": "REP", "sender": pid, "seq": seq, "changes": [rec]})])
            held.append((seq, outs))


def raw_backup(pid: int, endpoints: list[str], primary: int, pages: int) -> None:
    ctx = zmq.Context()
    inbox = _inbox(ctx, endpoints[pid])
    out = _Out(ctx, endpoints)
    table: dict[int, dict] = {}
    while True:
        frames = inbox.recv_multipart()
        ident = frames[0]
        try:
            h = _dec(frames[1])
            t = h["t"]
        except Exception:       # noqa: BLE001 - a stray peer
            continue
        if t == "ping":
            inbox.send_multipart([ident, _enc({"t": "pong"})])
            continue
        for rec in h["changes"]:
            table[rec["page"]] = rec
        out.send(primary, [_enc({"t": "ACK", "sender": pid, "seq": h["seq"]})])


class RawClient:
    """What a program does to talk to a raw node: one DEALER, send, wait for the answer."""

    def __init__(self, ctx: zmq.Context, endpoint: str):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.rcvtimeo = 30_000       # a dead raw process fails the run, not hangs it
        self.sock.connect(endpoint)
        self.cid = 0

    def read(self, page: int) -> bytes:
        self.cid += 1
        self.sock.send_multipart([_enc({"t": "read", "page": page, "cid": self.cid})])
        frames = self.sock.recv_multipart()
        _dec(frames[0])
        if len(frames) < 2:
            raise RuntimeError(f"raw baseline: read of page {page} answered without a page")
        return frames[1]

    def write(self, page: int, data: bytes, offset: int = 0) -> None:
        self.cid += 1
        self.sock.send_multipart([_enc({"t": "write", "page": page, "offset": offset,
                                        "cid": self.cid}), data])
        _dec(self.sock.recv_multipart()[0])

    def request(self, header: dict) -> dict:
        self.sock.send_multipart([_enc(header)])
        return _dec(self.sock.recv_multipart()[0])

    def close(self) -> None:
        self.sock.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawCluster:
    def __init__(self, n_nodes: int, pages: int, page_size: int):
        self.n = n_nodes
        ports = free_ports(n_nodes + 2)
        self.endpoints = [f"tcp://127.0.0.1:{p}" for p in ports]
        self.pages, self.page_size = pages, page_size
        self.procs: list[mp.Process] = []
        self.ctx = zmq.Context.instance()

    def up(self) -> None:
        spawn = mp.get_context("spawn")
        n = self.n
        for pid in range(n):
            self.procs.append(spawn.Process(target=raw_node, name=f"raw-node{pid}", daemon=True,
                                            args=(pid, self.endpoints, n, self.pages,
                                                  self.page_size)))
        self.procs.append(spawn.Process(target=raw_manager, name="raw-manager", daemon=True,
                                        args=(n, self.endpoints, n, self.pages)))
        self.procs.append(spawn.Process(target=raw_backup, name="raw-backup", daemon=True,
                                        args=(n + 1, self.endpoints, n, self.pages)))
        for proc in self.procs:
            proc.start()
        deadline = time.monotonic() + 30
        for pid in range(n + 2):
            while True:
                sock = self.ctx.socket(zmq.DEALER)
                sock.linger = 0
                sock.connect(self.endpoints[pid])
                sock.send_multipart([_enc({"t": "ping"})])
                ok = sock.poll(200)
                sock.close(linger=0)
                if ok:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"raw process {pid} does not answer")

    def use_backup(self) -> None:
        with RawClient(self.ctx, self.endpoints[self.n]) as c:
            c.request({"t": "backup", "pid": self.n + 1})

    def client(self, node: int) -> RawClient:
        return RawClient(self.ctx, self.endpoints[node])

    def down(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()          # by its own pid: Process.terminate is os.kill(pid)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
        self.procs.clear()


# -- our cluster ---------------------------------------------------------------------------------

class OurCluster:
    def __init__(self, workdir: Path, n_nodes: int, pages: int, page_size: int):
        ports = free_ports(4 + n_nodes)
        data = {
            "pages": pages, "page_size": page_size, "failback": True,
            # Default timing, but a lazier failure detector: a loaded 2-core machine must not
            # see a live manager as dead in the middle of a throughput run.
            "timing": {"heartbeat_interval": 0.5, "liveness": 6, "retry_timeout": 0.5,
                       "retries": 3, "redrive_timeout": 2.0, "op_timeout": 30.0},
            "managers": [{"name": m, "endpoint": f"tcp://127.0.0.1:{ports[2 * i]}",
                          "heartbeat": f"tcp://127.0.0.1:{ports[2 * i + 1]}"}
                         for i, m in enumerate(("primary", "backup"))],
            "nodes": [{"id": i, "endpoint": f"tcp://127.0.0.1:{ports[4 + i]}"}
                      for i in range(n_nodes)],
        }
        self.config_path = workdir / "bench.yaml"
        self.config_path.write_text(yaml.safe_dump(data))
        self.cluster = C.load(self.config_path)
        self.run = RunDir(str(self.config_path), self.cluster, workdir / "run")

    def start(self, names: list[str]) -> None:
        for name in names:
            self.run.start(name)

    def wait(self, names: list[str]) -> None:
        self.run.wait_answering(names, 30.0)
        self.run.wait_serving(30.0)

    def up_backup(self) -> None:
        """Start the backup and wait until the primary has sent it a snapshot (after which
        every step of the primary waits for the backup's acknowledgement)."""
        self.run.up(["backup"], timeout=30.0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            prim = self.run.query("primary", P.StatusQuery(), timeout=1.0)
            back = self.run.query("backup", P.StatusQuery(), timeout=1.0)
            if prim and back and back[0].table == prim[0].table and back[0].epoch == \
                    prim[0].epoch and prim[0].serving:
                time.sleep(0.3)
                return
            time.sleep(0.1)
        raise RuntimeError("the backup did not catch up with the primary")

    def client(self, node: int):
        return connect(self.cluster, node)

    def down(self) -> None:
        self.run.down()


# -- measurements --------------------------------------------------------------------------------

now_ns = time.perf_counter_ns


def read_fault_block(client_of, state: dict, n: int, out: list[float]) -> None:
    """n read faults: the reader reads (timed), the owner writes the page (untimed)."""
    reader, owner = client_of(READER), client_of(READ_OWNER)
    i = state.setdefault("i", 0)
    for _ in range(n):
        page = READ_PAGES[i % len(READ_PAGES)]
        i += 1
        t0 = now_ns()
        data = reader.read(page)
        t1 = now_ns()
        if len(data) != PAGE_SIZE:
            raise RuntimeError(f"read fault returned {len(data)} bytes")
        out.append((t1 - t0) / 1000)
        owner.write(page, b"w%07d" % i)
    state["i"] = i


def write_fault_block(client_of, state: dict, copies: int, n: int, out: list[float]) -> None:
    """n write faults: `copies` nodes take read copies (untimed), then the writer that does not
    own the page writes it (timed); the two writers take turns owning each page."""
    owners = state.setdefault("owners", {p: WRITERS[0] for p in WRITE_PAGES})
    i = state.setdefault("i", 0)
    holders = [client_of(h) for h in COPY_HOLDERS[:copies]]
    for _ in range(n):
        page = WRITE_PAGES[i % len(WRITE_PAGES)]
        i += 1
        for h in holders:
            h.read(page)
        writer = WRITERS[1] if owners[page] == WRITERS[0] else WRITERS[0]
        c = client_of(writer)
        t0 = now_ns()
        c.write(page, b"x%07d" % i)
        t1 = now_ns()
        out.append((t1 - t0) / 1000)
        owners[page] = writer
    state["i"] = i


def throughput(make_client, assign, duration: float, seed: int) -> dict:
    """len(assign) client threads; assign[i] = (node, page). Each does 50% reads and 50%
    8-byte writes until the deadline. Returns the time taken and per-op latencies."""
    lat: list[list[float]] = [[] for _ in assign]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(assign) + 1)
    stop_at = [0.0]

    def run(i: int, node: int, page: int) -> None:
        rng = random.Random(seed * 1000 + i)
        try:
            c = make_client(node)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait()
            mine = lat[i]
            k = 0
            while True:
                k += 1
                t0 = now_ns()
                if t0 >= stop_at[0]:
                    break
                if rng.random() < 0.5:
                    c.read(page)
                else:
                    c.write(page, b"c%dk%d" % (i, k))
                mine.append((now_ns() - t0) / 1000)
        except BaseException as exc:   # noqa: BLE001
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i, nd, pg), daemon=True)
               for i, (nd, pg) in enumerate(assign)]
    for t in threads:
        t.start()
    stop_at[0] = now_ns() + 10**12                  # not before everyone is ready
    barrier.wait()
    t0 = now_ns()
    stop_at[0] = t0 + int(duration * 1e9)
    for t in threads:
        t.join(duration + 60)
    elapsed = (now_ns() - t0) / 1e9
    if errors:
        raise RuntimeError(f"throughput client failed: {errors[0]!r}")
    return {"elapsed": elapsed, "samples": [v for x in lat for v in x]}


def embedded_hit(mem, batches: int, per: int = 100) -> tuple[dict, dict]:
    """Per-call time of embed(config, 9).read(own page) vs a list lookup, in batches."""
    ours, raw = [], []
    read, page = mem.read, EMBED_PAGE
    if len(read(page)) != PAGE_SIZE:
        raise RuntimeError("embedded read returned the wrong size")
    lst = [bytes(PAGE_SIZE) if p == page else None for p in range(PAGES)]
    loop = range(per)
    for _ in range(batches):
        t0 = now_ns()
        for _ in loop:
            read(page)
        t1 = now_ns()
        for _ in loop:
            lst[page]
        t2 = now_ns()
        ours.append((t1 - t0) / 1000 / per)
        raw.append((t2 - t1) / 1000 / per)
    return summary(ours), summary(raw)


class Clients:
    """One client per node for the latency runs, opened once."""

    def __init__(self, make):
        self.make, self.cache = make, {}

    def __call__(self, node: int):
        c = self.cache.get(node)
        if c is None:
            c = self.cache[node] = self.make(node)
        return c

    def close(self) -> None:
        for c in self.cache.values():
            c.close()
        self.cache.clear()


def task_cpu_ns(pid: int) -> tuple[int, int]:
    """(main thread, other threads) CPU time of a process, from /proc/PID/task/*/schedstat."""
    main = other = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            ns = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if task.name == str(pid):
            main += ns
        else:
            other += ns
    return main, other


def cpu_per_cycle(client_of, pids: dict[str, int], n: int) -> dict[str, float]:
    """CPU time (us) that each process spends per read-fault cycle (the timed fault plus the
    untimed invalidating write), main thread apart from the zmq I/O threads."""
    state: dict = {}
    read_fault_block(client_of, state, 20, [])
    before = {k: task_cpu_ns(p) for k, p in pids.items()}
    c0 = time.thread_time_ns()
    read_fault_block(client_of, state, n, [])
    c1 = time.thread_time_ns()
    after = {k: task_cpu_ns(p) for k, p in pids.items()}
    res = {"client (this thread)": (c1 - c0) / n / 1000}
    for k in pids:
        res[k] = (after[k][0] - before[k][0]) / n / 1000
        res[k + " io"] = (after[k][1] - before[k][1]) / n / 1000
    return res


def print_cpu(ours: dict[str, float], raw: dict[str, float]) -> None:
    def group(d: dict[str, float], io: bool) -> dict[str, float]:
        g = {"client program": d["client (this thread)"], "reader node 1": 0.0,
             "owner node 0": 0.0, "manager(s)": 0.0, "8 idle nodes": 0.0}
        for k, v in d.items():
            if k.startswith("client") or k.endswith(" io") != io:
                continue
            base = k.removesuffix(" io")
            key = ("reader node 1" if base == f"node{READER}" else
                   "owner node 0" if base == f"node{READ_OWNER}" else
                   "8 idle nodes" if base.startswith("node") else "manager(s)")
            g[key] += v
        return g
    print("\nCPU time per read-fault cycle (timed fault + untimed invalidating write), us:")
    print(f"  {'process':<16} {'ours main':>10} {'raw main':>9}   {'ours zmq io':>11} "
          f"{'raw zmq io':>10}")
    om, rm, oi, ri = group(ours, False), group(raw, False), group(ours, True), group(raw, True)
    oi["client program"] = ri["client program"] = 0.0     # its zmq thread is not counted
    for k in om:
        print(f"  {k:<16} {om[k]:>10.0f} {rm[k]:>9.0f}   {oi[k]:>11.0f} {ri[k]:>10.0f}")
    print(f"  {'total':<16} {sum(om.values()):>10.0f} {sum(rm.values()):>9.0f}   "
          f"{sum(oi.values()):>11.0f} {sum(ri.values()):>10.0f}")


def interleaved(block_fn, total: int, block: int) -> tuple[list[float], list[float]]:
    """Alternate blocks of ours and raw samples until each has `total`."""
    ours: list[float] = []
    raw: list[float] = []
    while len(ours) < total:
        k = min(block, total - len(ours))
        block_fn("ours", k, ours)
        block_fn("raw", k, raw)
    return ours, raw


# -- the run -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="a few hundred samples per row (CI smoke, ~30 s)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    ap.add_argument("--cpu", action="store_true",
                    help="also print the CPU time each process spends per read fault")
    args = ap.parse_args(argv)

    # The node that embed() hosts in this process logs like a daemon: keep stderr quiet.
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    load_before = os.getloadavg()[0]
    q = args.quick
    n_read = 300 if q else 2000
    n_write = 100 if q else 600
    block = 20
    duration = 0.6 if q else 3.0
    emb_batches = 2000 if q else 20000

    workdir = Path(tempfile.mkdtemp(prefix="ivybench-"))
    ours = OurCluster(workdir, N_NODES, PAGES, PAGE_SIZE)
    raw = RawCluster(N_NODES, PAGES, PAGE_SIZE)
    rows: list[dict] = []
    cpu = None
    t_start = time.monotonic()

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)

    ours_clients = Clients(ours.client)
    raw_clients = Clients(raw.client)
    try:
        log(f"starting {N_NODES} node daemons + primary (and {N_NODES} raw nodes + manager)")
        # node 9 is hosted in this process first (embed), so start the others now.
        names = ["primary"] + [f"node{i}" for i in range(N_NODES) if i != EMBED_NODE]
        ours.start(names)
        raw.up()

        # 3. embedded read hit. The managers wait for every node's page table before they
        # serve, node 9's included: the node hosted here by embed() answers them.
        mem = embed(ours.cluster, EMBED_NODE)
        try:
            ours.wait(names)
            emb_ours, emb_raw = embedded_hit(mem, emb_batches)
        finally:
            mem.close()
        # Node 9 only served hits of its own page: a fresh daemon takes over its state.
        ours.start([f"node{EMBED_NODE}"])
        ours.wait([f"node{EMBED_NODE}"])
        log("cluster up")

        def fault_rows(config: str) -> None:
            # 1. remote read fault
            state = {"ours": {}, "raw": {}}

            def rblock(who, k, out):
                read_fault_block(ours_clients if who == "ours" else raw_clients, state[who],
                                 k, out)
            warm = 20
            rblock("ours", warm, [])
            rblock("raw", warm, [])
            o, r = interleaved(rblock, n_read, block)
            rows.append(row(f"read fault [{config}]",
                            "client->node ... ->client round trip of a read that faults",
                            o, r))
            log(f"read fault [{config}] done")
            # 2. write faults with 0, 1, 4 read copies
            for copies in (0, 1, 4):
                wstate = {"ours": {}, "raw": {}}

                def wblock(who, k, out, copies=copies, wstate=wstate):
                    write_fault_block(ours_clients if who == "ours" else raw_clients,
                                      wstate[who], copies, k, out)
                wblock("ours", 8, [])
                wblock("raw", 8, [])
                o, r = interleaved(wblock, n_write, block)
                rows.append(row(f"write fault, {copies} copies [{config}]",
                                "client->node ... ->client round trip of a write that faults",
                                o, r))
                log(f"write fault {copies} copies [{config}] done")

        def throughput_rows(config: str, which: tuple[str, ...]) -> None:
            for kind in which:
                if kind == "own":
                    assign = [(i, OWN_PAGE_BASE + i) for i in range(N_NODES)]
                    label = "throughput, 10 clients, own pages"
                else:
                    assign = [(i, HOT_PAGE) for i in range(N_NODES)]
                    label = "throughput, 10 clients, 1 hot page"
                res = {"ours": [], "raw": []}
                halves = 2
                for h in range(halves):
                    for who, make in (("ours", ours.client), ("raw", raw.client)):
                        res[who].append(throughput(make, assign, duration / halves,
                                                   seed=h))
                o, r = merge_tp(res["ours"]), merge_tp(res["raw"])
                rows.append(tp_row(f"{label} [{config}]", o, r))
                log(f"{label} [{config}] done")

        fault_rows("1 mgr")
        if args.cpu:
            pids = {n: r["pid"] for n, r in ours.run.records().items()}
            raw_pids = {("primary" if p.name == "raw-manager" else p.name.removeprefix("raw-")):
                        p.pid for p in raw.procs if p.name != "raw-backup"}
            cpu = (cpu_per_cycle(ours_clients, pids, n_read // 2),
                   cpu_per_cycle(raw_clients, raw_pids, n_read // 2))
        throughput_rows("1 mgr", ("own", "hot"))

        log("starting the backup manager")
        ours.up_backup()
        raw.use_backup()
        fault_rows("primary+backup")
        throughput_rows("primary+backup", ("hot",))

        rows.append({"name": "embedded read hit (own page)",
                     "timed": "embed(config, 9).read(9) per call, batches of 100; "
                              "raw: list[i] in the same loop",
                     "unit": "us", "ours": emb_ours, "raw": emb_raw,
                     "ratio": emb_ours["median_us"] / emb_raw["median_us"]})
    finally:
        ours_clients.close()
        raw_clients.close()
        try:
            ours.down()
        finally:
            raw.down()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                log(f"run directory kept: {workdir}")

    elapsed = time.monotonic() - t_start
    load = (load_before, os.getloadavg()[0])
    print_table(rows, elapsed, q, load)
    if cpu is not None:
        print_cpu(*cpu)
    if args.json:
        Path(args.json).write_text(json.dumps({"quick": q, "elapsed_s": elapsed,
                                               "loadavg": load, "cores": os.cpu_count(),
                                               "rows": rows,
                                               "cpu_per_read_fault_cycle_us":
                                                   None if cpu is None else
                                                   {"ours": cpu[0], "raw": cpu[1]}},
                                              indent=1))
    return 0


def row(name: str, timed: str, o: list[float], r: list[float]) -> dict:
    so, sr = summary(o), summary(r)
    return {"name": name, "timed": timed, "unit": "us", "ours": so, "raw": sr,
            "ratio": so["median_us"] / sr["median_us"]}


def merge_tp(parts: list[dict]) -> dict:
    """Combine the parts of a throughput run (alternated with the other system's)."""
    samples = [v for p in parts for v in p["samples"]]
    res = summary(samples)
    res["ops_per_s"] = len(samples) / sum(p["elapsed"] for p in parts)
    return res


def tp_row(name: str, o: dict, r: dict) -> dict:
    return {"name": name, "timed": "ops/s of 10 client threads; latency per operation",
            "unit": "ops/s", "ours": o, "raw": r, "ratio": o["ops_per_s"] / r["ops_per_s"]}


def print_table(rows: list[dict], elapsed: float, quick: bool,
                load: tuple[float, float]) -> None:
    w = max(len(r["name"]) for r in rows)
    head = (f"{'measurement':<{w}}  {'ours median':>11} {'p99':>9} {'n':>6}  "
            f"{'raw median':>11} {'p99':>9} {'n':>6}  {'ours/raw':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        o, s = r["ours"], r["raw"]
        if r["unit"] == "ops/s":
            om, sm = f"{o['ops_per_s']:.0f}/s", f"{s['ops_per_s']:.0f}/s"
            ratio = f"{r['ratio']:.2f}x tp"
            extra_o = f"{fmt_us(o['p99_us']):>9}"
            extra_s = f"{fmt_us(s['p99_us']):>9}"
        else:
            om, sm = fmt_us(o["median_us"]), fmt_us(s["median_us"])
            ratio = f"{r['ratio']:.2f}x"
            extra_o, extra_s = f"{fmt_us(o['p99_us']):>9}", f"{fmt_us(s['p99_us']):>9}"
        print(f"{r['name']:<{w}}  {om:>11} {extra_o} {o['n']:>6}  {sm:>11} {extra_s} "
              f"{s['n']:>6}  {ratio:>8}")
    print()
    print("What is timed:")
    print("  read/write fault  one operation at the client program, from its request to the "
          "node's reply:\n"
          "                    client->node->manager->(k invalidations->)owner->node(+4 KiB)"
          "->client; the\n"
          "                    node sends its confirmation to the manager just before it "
          "replies. Untimed\n"
          "                    between samples: the owner re-writes the page (read fault), "
          "k nodes take\n"
          "                    read copies (write fault).")
    print("  throughput        10 client threads, client i on node i, 50% reads, 50% 8-byte "
          "writes; the\n"
          "                    p99 column is per operation; the ratio is ours/raw ops/s.")
    print("  embedded hit      per call of embed(config, 9).read(page it holds), batches of "
          "100; raw: a\n"
          "                    plain list lookup in the same loop.")
    print("  raw               the same processes, sockets and messages written directly "
          "with pyzmq\n"
          "                    (msgspec JSON headers, 4 KiB payload frame), no ivyzmq "
          "protocol machinery.")
    print()
    goals = []
    for r in rows:
        if r["name"].startswith("read fault"):
            goals.append(f"  {r['name']}: {r['ratio']:.2f}x raw (aim <= 1.5x): "
                         f"{'met' if r['ratio'] <= 1.5 else 'NOT met'}")
        if r["name"].startswith("embedded"):
            m = r["ours"]["median_us"]
            goals.append(f"  {r['name']}: {m:.2f} us (aim < 5 us): "
                         f"{'met' if m < 5 else 'NOT met'}")
    print("Aims:")
    print("\n".join(goals))
    cores = os.cpu_count() or 1
    print(f"\n({'quick' if quick else 'full'} run, {elapsed:.0f} s, {cores} cores, load average "
          f"{load[0]:.1f} before / {load[1]:.1f} after)")
    if load[0] > cores:
        print(f"warning: the machine was already busy (load {load[0]:.1f} on {cores} cores): "
              "absolute times are\ninflated; the ratios are less affected (ours and raw "
              "alternate in blocks of 20) but noisier.")


if __name__ == "__main__":
    raise SystemExit(main())
