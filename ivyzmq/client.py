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
from ivyzmq import keys as K
from ivyzmq import protocol as P
from ivyzmq import tracing, waits
from ivyzmq.errors import (ERRORS, IvyError, IvyTimeout, NodeFencedError,  # noqa: F401
                           PageLostError, PageRangeError, PageSizeError)


class Channel:
    """One request channel to one daemon endpoint: a DEALER socket, one request at a time.
    A late answer to an abandoned request is never taken for the answer to a new one: an
    answer carrying another cid is skipped, and a channel for requests without a cid
    (`fresh_after_timeout`) drops its socket after a time-out and connects afresh. With the
    `cluster` (under `security: curve`) the socket uses the client key and talks only to
    the daemon the cluster has at `endpoint`."""

    def __init__(self, endpoint: str, ctx: zmq.Context | None = None,
                 fresh_after_timeout: bool = True, cluster: C.Cluster | None = None):
        self.endpoint = endpoint
        self.ctx = ctx or zmq.Context.instance()
        self.fresh_after_timeout = fresh_after_timeout
        self._sock: zmq.Socket | None = None
        self.keys = K.client_keys(cluster) if cluster is not None else None
        self.server = _daemon_at(cluster, endpoint) if self.keys else None

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            self._sock = self.ctx.socket(zmq.DEALER)
            self._sock.linger = 0
            if self.keys:
                self.keys.client(self._sock, self.server)
            self._sock.connect(self.endpoint)
        return self._sock

    def poll(self, timeout_ms: float = 0) -> int:
        """Is an answer waiting (for tests of late answers)?"""
        return self._socket().poll(timeout_ms)

    def request(self, msg: P.Msg, payload: bytes | None = None, timeout: float = 10.0
                ) -> tuple[P.Msg, bytes | None]:
        """Send `msg` and wait for its answer (one with the same cid, if it has one)."""
        sock = self._socket()
        cid = getattr(msg, "cid", None)
        sock.send_multipart(P.encode(msg, payload))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(left * 1000):
                if self.fresh_after_timeout:
                    self.close()
                raise IvyTimeout(f"no answer from {self.endpoint} within {timeout:g} s",
                                 endpoint=self.endpoint, waited=timeout,
                                 page=getattr(msg, "page", None))
            try:
                reply, data = P.decode(sock.recv_multipart())
            except P.ProtocolError as exc:
                raise IvyError(f"bad answer from {self.endpoint}: {exc}") from None
            if isinstance(reply, P.ErrorReply):
                raise IvyError(reply.error)
            if cid is None or getattr(reply, "cid", None) == cid:
                return reply, data

    def ask(self, msg: P.Msg, timeout: float) -> P.Msg | None:
        """One question: the answer, an ErrorReply if the daemon refused it, None if
        silent. The channel is closed after."""
        try:
            return self.request(msg, timeout=timeout)[0]
        except IvyTimeout:
            return None
        except IvyError as exc:
            return P.ErrorReply(error=str(exc))
        finally:
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None


def dealer(cluster: C.Cluster, name: str, ctx: zmq.Context | None = None) -> zmq.Socket:
    """A bare DEALER socket connected to daemon `name` with the client key, for programs
    that speak frames themselves (fuzzers, tests of garbage)."""
    return Channel(cluster.endpoint(cluster.pid_of(name)), ctx, cluster=cluster)._socket()


def _daemon_at(cluster: C.Cluster, endpoint: str) -> str:
    for pid in range(len(cluster.nodes) + len(cluster.managers)):
        if cluster.endpoint(pid) == endpoint:
            return cluster.name(pid)
    raise IvyError(f"no daemon of the cluster has endpoint {endpoint}")


class Memory:
    """A connection to one node's client endpoint; one channel per thread. With the
    `cluster`, a time-out names the manager or owner the node waits on, not only the node."""

    def __init__(self, endpoint: str, *, pages: int | None = None,
                 page_size: int | None = None, timeout: float = 10.0,
                 ctx: zmq.Context | None = None, cluster: C.Cluster | None = None):
        self.endpoint, self.pages, self.page_size = endpoint, pages, page_size
        self.cluster = cluster
        self.timeout = timeout
        self.ctx = ctx or zmq.Context.instance()
        self._local = threading.local()
        self._channels: list[Channel] = []
        self._lock = threading.Lock()
        self._cids = itertools.count(1)

    def _channel(self) -> Channel:
        chan = getattr(self._local, "channel", None)
        if chan is None:
            chan = self._local.channel = Channel(self.endpoint, self.ctx,
                                                 fresh_after_timeout=False,
                                                 cluster=self.cluster)
            with self._lock:
                self._channels.append(chan)
        return chan

    def _check(self, page: int, data: bytes = b"", offset: int = 0) -> None:
        if not isinstance(page, int) or page < 0 or (self.pages is not None
                                                     and page >= self.pages):
            top = f"0..{self.pages - 1}" if self.pages else "0.."
            raise PageRangeError(f"page {page!r} out of range {top}")
        if offset < 0 or (self.page_size is not None and offset + len(data) > self.page_size):
            raise PageSizeError(f"{len(data)} bytes at offset {offset} do not fit a page of "
                                f"{self.page_size} bytes")

    def request(self, msg: P.Msg, payload: bytes | None = None) -> tuple[P.Msg, bytes | None]:
        """Send a request to the node and wait for the answer to it. A read or write that
        times out says what the page waits for (the questions take up to a few PROBEs)."""
        try:
            return self._channel().request(msg, payload, self.timeout)
        except IvyTimeout as exc:
            if not isinstance(msg, (P.ClientRead, P.ClientWrite, P.ClientCas, P.ClientAdd)):
                raise
            why = waits.explain(self._ask, self.cluster, self.endpoint, msg.page, self.timeout)
            raise IvyTimeout(why.text, endpoint=exc.endpoint, waited=exc.waited,
                             page=msg.page, peer=why.peer, since=why.since) from None

    def _ask(self, endpoint: str, msg: P.Msg) -> P.Msg | None:
        return Channel(endpoint, self.ctx, cluster=self.cluster).ask(msg, waits.PROBE)

    def read(self, page: int) -> bytes:
        self._check(page)
        reply, data = self.request(P.ClientRead(page=page, cid=next(self._cids)))
        self._raise(reply, page)
        return data or b""

    def write(self, page: int, data: bytes, offset: int = 0) -> None:
        data = bytes(data)
        self._check(page, data, offset)
        reply, _ = self.request(P.ClientWrite(page=page, offset=offset, cid=next(self._cids)),
                                data)
        self._raise(reply, page)

    # -- atomic operations: one step at the page's owner (docs/PROTOCOL.md section 6.3) ----

    def compare_and_swap(self, page: int, expected: bytes, new: bytes,
                         offset: int = 0) -> tuple[bool, bytes]:
        """If the bytes at `offset` equal `expected`, replace them with `new` (the same
        length), atomically. Returns (swapped, the bytes found there)."""
        expected, new = bytes(expected), bytes(new)
        if len(expected) != len(new) or not new:
            raise PageSizeError(f"cas: expected ({len(expected)} bytes) and new "
                                f"({len(new)} bytes) must be non-empty and of one length")
        self._check(page, new, offset)
        reply, data = self.request(P.ClientCas(page=page, offset=offset,
                                               cid=next(self._cids)), expected + new)
        self._raise(reply, page)
        return data[:1] == b"\1", data[1:]

    def cas(self, page: int, expected: bytes, new: bytes, offset: int = 0) -> bool:
        """Compare and swap (see `compare_and_swap`): whether it swapped."""
        return self.compare_and_swap(page, expected, new, offset)[0]

    def add(self, page: int, delta: int, offset: int = 0) -> int:
        """Add `delta` to the 8-byte little-endian signed integer at `offset` (wrapping at
        64 bits) and return the value after the add, atomically."""
        if not -2 ** 63 <= delta < 2 ** 63:
            raise PageSizeError(f"add: delta {delta} does not fit 64 bits")
        self._check(page, bytes(P.WORD), offset)
        reply, data = self.request(P.ClientAdd(page=page, offset=offset, delta=delta,
                                               cid=next(self._cids)))
        self._raise(reply, page)
        return int.from_bytes(data, "little", signed=True)

    # -- one address space over every page ---------------------------------------------------

    def _span(self, address: int, length: int):
        """(page, offset, length) of each page's part of [address, address + length)."""
        size, pages = self.page_size, self.pages
        if size is None or pages is None:
            raise IvyError("addresses need the page size and count: connect with a config")
        if address < 0 or length < 0 or address + length > size * pages:
            raise PageSizeError(f"{length} bytes at address {address} do not fit the memory "
                                f"of {pages} pages x {size} bytes")
        while length > 0:
            page, offset = divmod(address, size)
            n = min(length, size - offset)
            yield page, offset, n
            address, length = address + n, length - n

    def read_at(self, address: int, length: int) -> bytes:
        """`length` bytes from `address` = page * page_size + offset, across pages. Each
        page's part is read atomically; the whole is not (unless under a lock)."""
        return b"".join(self.read(page)[offset:offset + n]
                        for page, offset, n in self._span(address, length))

    def write_at(self, address: int, data: bytes) -> None:
        """Write `data` at `address`, across pages; each page's part is one atomic write,
        the whole is not (unless under a lock)."""
        data, done = bytes(data), 0
        for page, offset, n in list(self._span(address, len(data))):
            self.write(page, data[done:done + n], offset)
            done += n

    @staticmethod
    def _raise(reply: P.ClientReply, page: int) -> None:
        if reply.error is None:
            return
        exc = ERRORS.get(reply.code, IvyError)(reply.error)
        if isinstance(exc, PageLostError):
            exc.page, exc.node = page, reply.peer
        raise exc

    def close(self) -> None:
        with self._lock:
            for chan in self._channels:
                chan.close()
            self._channels.clear()
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
                         page_size=cluster.page_size, cluster=cluster,
                         timeout=timeout or cluster.timing.op_timeout)
        self._thread = threading.Thread(target=self.daemon.run, name=f"ivy-node{node}",
                                        daemon=True)
        self._thread.start()
        self._core = self.daemon.core
        self._data = self._core.data

    def read(self, page: int) -> bytes:
        if type(page) is int and 0 <= page < len(self._data):
            hit = self._data[page]
            if hit is not None and self._core.may_hit(time.monotonic()):
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
    K.client_keys(cluster)      # a missing key is an error now, not a time-out later
    return Memory(cluster.endpoint(node), pages=cluster.pages, page_size=cluster.page_size,
                  timeout=timeout or cluster.timing.op_timeout, cluster=cluster)


def embed(config: str | C.Cluster = C.DEFAULT_CONFIG, node: int = 0, *,
          timeout: float | None = None) -> EmbeddedMemory:
    """Host `node` in this process (its daemon must not also run elsewhere)."""
    return EmbeddedMemory(_cluster(config), node, timeout=timeout)


class Admin:
    """Questions to any daemon of a cluster by name (status, trace, ...), for tools. Each
    query uses a fresh channel, so one Admin may be used from any thread; a monitor that
    polls often keeps a `Channel` of its own instead."""

    def __init__(self, cluster: C.Cluster, ctx: zmq.Context | None = None):
        self.cluster = cluster
        self.ctx = ctx or zmq.Context.instance()

    def channel(self, name: str) -> Channel:
        return Channel(self.cluster.endpoint(self.cluster.pid_of(name)), self.ctx,
                       cluster=self.cluster)

    def query(self, name: str, msg: P.Msg, timeout: float = 1.0) -> P.Msg | None:
        """Ask one daemon; None when it does not answer in time (or refuses)."""
        reply = self.channel(name).ask(msg, timeout)
        return None if isinstance(reply, P.ErrorReply) else reply

    def status(self, names: list[str] | None = None, timeout: float = 1.0
               ) -> list[tuple[str, P.StatusReply | None]]:
        """Every named daemon's status reply (default: all), None where it is silent."""
        names = self.cluster.daemon_names() if names is None else names
        return [(n, self.query(n, P.StatusQuery(), timeout)) for n in names]

    def trace(self, names: list[str] | None = None, clear: bool = False,
              timeout: float = 1.0) -> list[P.TraceRow]:
        """The protocol messages the named daemons sent, merged in one causal order that
        keeps each operation's messages together where it can (ivyzmq/tracing.py)."""
        rows: list[P.TraceRow] = []
        for name in self.cluster.daemon_names() if names is None else names:
            reply = self.query(name, P.TraceQuery(clear=clear), timeout)
            if reply is not None:
                rows.extend(reply.rows)
        return tracing.merge(rows)

    def serving(self, timeout: float = 0.3) -> str | None:
        """The name of a manager that says it serves, if one does."""
        for m in self.cluster.managers:
            reply = self.query(m.name, P.StatusQuery(rows=False), timeout)
            if reply is not None and reply.serving:
                return m.name
        return None

    def wait_serving(self, timeout: float) -> str:
        """Wait until some manager serves; return its name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            name = self.serving()
            if name is not None:
                return name
            time.sleep(0.05)   # poll
        raise IvyError(f"no manager is serving after {timeout:g} s")
