"""The bench's side of the raw baseline (raw.py): a client as a program uses one, and the
cluster - n raw nodes, the raw manager and its backup as `multiprocessing` processes, with
page replicas (raw_replicas.py) when asked for."""
from __future__ import annotations

import multiprocessing as mp
import time

import zmq

from ivyzmq.harness.configs import free_ports

from raw import _dec, _enc, raw_backup, raw_manager, raw_node

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

    def cas(self, page: int, expected: bytes, new: bytes, offset: int = 0) -> bool:
        """Compare and swap at the node: whether it swapped (ivyzmq's Memory.cas)."""
        self.cid += 1
        self.sock.send_multipart([_enc({"t": "cas", "page": page, "offset": offset,
                                        "cid": self.cid}), expected + new])
        frames = self.sock.recv_multipart()
        _dec(frames[0])
        return frames[1][:1] == b"\1"

    def add(self, page: int, delta: int, offset: int = 0) -> int:
        """Add to the 8-byte word at the node: the value after (ivyzmq's Memory.add)."""
        self.cid += 1
        self.sock.send_multipart([_enc({"t": "add", "page": page, "offset": offset,
                                        "delta": delta, "cid": self.cid})])
        frames = self.sock.recv_multipart()
        _dec(frames[0])
        return int.from_bytes(frames[1], "little", signed=True)

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
    """n raw nodes, the raw manager and its backup (switched on by use_backup). With
    `replicas` K >= 1 the nodes and the manager are raw_replicas.py's: each page's owner
    keeps K holders up to date before a write returns."""

    def __init__(self, n_nodes: int, pages: int, page_size: int, replicas: int = 0):
        self.n, self.replicas = n_nodes, replicas
        self.endpoints = [f"tcp://127.0.0.1:{p}" for p in free_ports(n_nodes + 2)]
        self.pages, self.page_size = pages, page_size
        self.procs: list[mp.Process] = []
        self.ctx = zmq.Context.instance()

    def up(self, timeout: float = 30.0) -> None:
        spawn = mp.get_context("spawn")
        n, eps = self.n, self.endpoints
        node, manager, extra = raw_node, raw_manager, ()
        if self.replicas:
            from raw_replicas import raw_replica_manager as manager, raw_replica_node as node
            extra = (self.replicas,)
        for pid in range(n):
            self.procs.append(spawn.Process(target=node, name=f"raw-node{pid}", daemon=True,
                                            args=(pid, eps, n, self.pages, self.page_size,
                                                  *extra)))
        self.procs.append(spawn.Process(target=manager, name="raw-manager", daemon=True,
                                        args=(n, eps, n, self.pages, *extra)))
        self.procs.append(spawn.Process(target=raw_backup, name="raw-backup", daemon=True,
                                        args=(n + 1, eps, n, self.pages)))
        for proc in self.procs:
            proc.start()
        deadline = time.monotonic() + timeout
        for pid in range(n + 2):
            self._wait_answering(pid, deadline)

    def _wait_answering(self, pid: int, deadline: float) -> None:
        while True:
            sock = self.ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(self.endpoints[pid])
            sock.send_multipart([_enc({"t": "ping"})])
            ok = sock.poll(200)
            sock.close(linger=0)
            if ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"raw process {pid} does not answer")

    def use_backup(self) -> None:
        with RawClient(self.ctx, self.endpoints[self.n]) as c:
            c.request({"t": "backup", "pid": self.n + 1})

    def client(self, node: int) -> RawClient:
        return RawClient(self.ctx, self.endpoints[node])

    def os_pids(self) -> dict[str, int]:
        """The os_pid of each raw process but the backup, by the name of its ivyzmq twin."""
        return {("primary" if p.name == "raw-manager" else p.name.removeprefix("raw-")): p.pid
                for p in self.procs if p.name != "raw-backup"}

    def down(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()      # by its own os_pid: Process.terminate is os.kill(pid)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
        self.procs.clear()
