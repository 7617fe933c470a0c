"""The Python API: read and write pages through a node.

    from ivyzmq.client import connect, embed
    with connect("config/cluster.yaml", node=2) as mem:     # a running node daemon
        mem.write(1, b"hello")
        print(mem.read(1))
    with embed("config/cluster.yaml", node=2) as mem:       # host node 2 in this process
        mem.read(1)                                           # a hit costs a list lookup

Both are `Memory` objects with the same surface: read(page) -> bytes (the whole page),
write(page, data, offset=0). Errors: PageRangeError, PageSizeError, IvyTimeout, IvyError.
"""
from __future__ import annotations

import itertools
import threading
import time

import zmq

from ivyzmq import config as C
from ivyzmq import protocol as P


class IvyError(Exception):
    """Something went wrong talking to the cluster."""


class PageRangeError(IvyError, IndexError):
    pass


class PageSizeError(IvyError, ValueError):
    pass


class IvyTimeout(IvyError, TimeoutError):
    """No answer in time. For a write this means unknown: it may still take effect."""


_ERRORS = {"range": PageRangeError, "size": PageSizeError}


class Memory:
    """A connection to one node's client endpoint; one socket per thread."""

    def __init__(self, endpoint: str, *, pages: int | None = None,
                 page_size: int | None = None, timeout: float = 10.0,
                 ctx: zmq.Context | None = None):
        self.endpoint, self.pages, self.page_size = endpoint, pages, page_size
        self.timeout = timeout
        self.ctx = ctx or zmq.Context.instance()
        self._local = threading.local()
        self._sockets: list[zmq.Socket] = []
        self._lock = threading.Lock()
        self._cids = itertools.count(1)

    def _socket(self) -> zmq.Socket:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(self.endpoint)
            self._local.sock = sock
            with self._lock:
                self._sockets.append(sock)
        return sock

    def _check(self, page: int, data: bytes = b"", offset: int = 0) -> None:
        if not isinstance(page, int) or page < 0 or (self.pages is not None
                                                     and page >= self.pages):
            top = f"0..{self.pages - 1}" if self.pages else "0.."
            raise PageRangeError(f"page {page!r} out of range {top}")
        if offset < 0 or (self.page_size is not None and offset + len(data) > self.page_size):
            raise PageSizeError(f"{len(data)} bytes at offset {offset} do not fit a page of "
                                f"{self.page_size} bytes")

    def request(self, msg: P.Msg, payload: bytes | None = None) -> tuple[P.Msg, bytes | None]:
        """Send a request to the daemon and wait for the answer to it (stale answers to
        requests that timed out earlier are skipped)."""
        sock = self._socket()
        cid = getattr(msg, "cid", None)
        sock.send_multipart(P.encode(msg, payload))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(left * 1000):
                raise IvyTimeout(f"no answer from {self.endpoint} within {self.timeout:g} s")
            try:
                reply, data = P.decode(sock.recv_multipart())
            except P.ProtocolError as exc:
                raise IvyError(f"bad answer from {self.endpoint}: {exc}") from None
            if isinstance(reply, P.ErrorReply):
                raise IvyError(reply.error)
            if cid is None or getattr(reply, "cid", None) == cid:
                return reply, data

    def read(self, page: int) -> bytes:
        self._check(page)
        reply, data = self.request(P.ClientRead(page=page, cid=next(self._cids)))
        self._raise(reply)
        return data or b""

    def write(self, page: int, data: bytes, offset: int = 0) -> None:
        data = bytes(data)
        self._check(page, data, offset)
        reply, _ = self.request(P.ClientWrite(page=page, offset=offset, cid=next(self._cids)),
                                data)
        self._raise(reply)

    @staticmethod
    def _raise(reply: P.ClientReply) -> None:
        if reply.error is not None:
            raise _ERRORS.get(reply.code, IvyError)(reply.error)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
        self._local = threading.local()

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EmbeddedMemory(Memory):
    """Hosts a node daemon on a thread of this process. A read of a page this node holds is
    answered from memory; everything else goes through the node's loop like a remote call."""

    def __init__(self, cluster: C.Cluster, node: int, *, timeout: float | None = None):
        from ivyzmq.node.daemon import NodeDaemon
        self.daemon = NodeDaemon(cluster, node)
        super().__init__(cluster.endpoint(node), pages=cluster.pages,
                         page_size=cluster.page_size,
                         timeout=timeout or cluster.timing.op_timeout)
        self._thread = threading.Thread(target=self.daemon.run, name=f"ivy-node{node}",
                                        daemon=True)
        self._thread.start()
        self._data = self.daemon.core.data

    def read(self, page: int) -> bytes:
        if type(page) is int and 0 <= page < len(self._data):
            hit = self._data[page]
            if hit is not None:
                return hit
        return super().read(page)

    def close(self) -> None:
        super().close()
        self.daemon.stop.set()
        self._thread.join(timeout=5)


def _cluster(config: str | C.Cluster) -> C.Cluster:
    return config if isinstance(config, C.Cluster) else C.load(config)


def connect(config: str | C.Cluster = C.DEFAULT_CONFIG, node: int = 0, *,
            timeout: float | None = None) -> Memory:
    """A Memory talking to the running daemon of `node`."""
    cluster = _cluster(config)
    if not 0 <= node < len(cluster.nodes):
        raise IvyError(f"node {node} out of range 0..{len(cluster.nodes) - 1}")
    return Memory(cluster.endpoint(node), pages=cluster.pages, page_size=cluster.page_size,
                  timeout=timeout or cluster.timing.op_timeout)


def embed(config: str | C.Cluster = C.DEFAULT_CONFIG, node: int = 0, *,
          timeout: float | None = None) -> EmbeddedMemory:
    """Host `node` in this process (its daemon must not also run elsewhere)."""
    return EmbeddedMemory(_cluster(config), node, timeout=timeout)
