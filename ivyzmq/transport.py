"""The one module that owns ZeroMQ sockets: a daemon's inbox, its outboxes, heartbeats,
the poll loop's receive side, Lamport clocks and the trace of protocol messages sent.

Every daemon binds one ROUTER at its configured endpoint (its inbox). It sends to another
daemon through one DEALER per destination, connected to that daemon's inbox; a DEALER keeps
a connection's messages in order and queues them while the peer is away. Tools and client
programs talk to the same ROUTER and get their answers back through it.
"""
from __future__ import annotations

import math
import time
from collections import deque

import zmq
from loguru import logger

from ivyzmq import protocol as P
from ivyzmq.config import Cluster

TRACE_LIMIT = 200_000


def make_socket(ctx: zmq.Context, kind: int) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.linger = 0          # never hang on shutdown waiting for a dead peer
    return sock


class Transport:
    def __init__(self, cluster: Cluster, pid: int, ctx: zmq.Context | None = None):
        self.cluster, self.pid = cluster, pid
        self.n_processes = len(cluster.nodes) + len(cluster.managers)
        self.ctx = ctx or zmq.Context.instance()
        self.inbox = make_socket(self.ctx, zmq.ROUTER)
        self.inbox.rcvhwm = 100_000
        self.inbox.bind(cluster.endpoint(pid))
        self.outboxes: dict[int, zmq.Socket] = {}
        self.poller = zmq.Poller()
        self.poller.register(self.inbox, zmq.POLLIN)
        self.sub_poller = zmq.Poller()      # heartbeats only
        self.pub: zmq.Socket | None = None
        self.sub: zmq.Socket | None = None
        self.lc = 0
        self.trace: deque[P.TraceRow] = deque(maxlen=TRACE_LIMIT)
        self.counting = None     # a metrics.Counting while the daemon serves metrics

    def enable_heartbeats(self) -> None:
        """Managers: publish on our heartbeat endpoint, subscribe to every peer's."""
        n = len(self.cluster.nodes)
        self.pub = make_socket(self.ctx, zmq.PUB)
        self.pub.bind(self.cluster.managers[self.pid - n].heartbeat)
        self.sub = make_socket(self.ctx, zmq.SUB)
        self.sub.subscribe(b"")
        for i, spec in enumerate(self.cluster.managers):
            if n + i != self.pid:
                self.sub.connect(spec.heartbeat)
        self.poller.register(self.sub, zmq.POLLIN)
        self.sub_poller.register(self.sub, zmq.POLLIN)

    def _outbox(self, dest: int) -> zmq.Socket:
        sock = self.outboxes.get(dest)
        if sock is None:
            sock = make_socket(self.ctx, zmq.DEALER)
            sock.sndhwm = 100_000
            sock.connect(self.cluster.endpoint(dest))
            self.outboxes[dest] = sock
        return sock

    def send(self, dest: int, msg: P.Msg, payload: bytes | None = None) -> None:
        """Send to a daemon of the cluster (or publish a heartbeat when dest is P.HEARTBEAT)."""
        self.lc += 1
        msg.lc = self.lc
        if isinstance(msg, P.IvyMsg):
            self.trace.append(P.TraceRow(self.lc, type(msg).__name__, self.pid, dest,
                                         msg.page, msg.requester, msg.rid, time.time()))
        if dest == P.HEARTBEAT:
            sock = self.pub
        else:
            sock = self._outbox(dest) if 0 <= dest < self.n_processes else None
        if sock is None:
            logger.error("no daemon {} to send {} to; dropped", dest, P.type_name(msg))
            return
        frames = P.encode(msg, payload)
        if self.counting is not None:
            self.counting.sent_msg(dest, msg, frames)
        try:
            sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            logger.warning("queue to {} is full; dropped {}", dest, P.type_name(msg))
            if self.counting is not None:
                self.counting.dropped += 1

    def reply(self, ident: bytes, msg: P.Msg, payload: bytes | None = None) -> None:
        """Answer a tool or client program through the inbox."""
        msg.sender = self.pid
        frames = [ident] + P.encode(msg, payload)
        if self.counting is not None:
            self.counting.sent_msg(-1, msg, frames[1:])
        try:
            self.inbox.send_multipart(frames, zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            logger.warning("cannot answer {}: {}", ident, exc)

    def receive(self, timeout_ms: float, limit: int = 1000, inbox: bool = True):
        """Wait up to timeout_ms, then yield (ident, msg, payload) for what has arrived
        (heartbeats only, when inbox is False). A malformed frame is logged with its sender
        and answered with ErrorReply."""
        poller = self.poller if inbox else self.sub_poller
        # Round up: pyzmq truncates to whole milliseconds, and poll(0) in the last one
        # before each tick would spin.
        events = dict(poller.poll(math.ceil(timeout_ms)))
        if self.sub is not None and self.sub in events:
            for frames in self._drain(self.sub, limit):
                got = self._decode(b"<heartbeat>", frames)
                if got is not None:
                    yield None, got[0], got[1]
        if not inbox or self.inbox not in events:
            return
        for frames in self._drain(self.inbox, limit):
            ident, body = frames[0], frames[1:]
            got = self._decode(ident, body)
            if got is not None:
                yield ident, got[0], got[1]

    @staticmethod
    def _drain(sock: zmq.Socket, limit: int):
        """What is queued on a socket that poll found readable. Asking EVENTS is cheaper
        than the zmq.Again a receive on an empty socket raises."""
        for _ in range(limit):
            yield sock.recv_multipart(zmq.NOBLOCK)
            if not sock.get(zmq.EVENTS) & zmq.POLLIN:
                return

    def _decode(self, ident: bytes, frames: list[bytes]):
        try:
            msg, payload = P.decode(frames)
        except P.ProtocolError as exc:
            logger.warning("bad frame from {!r}: {}", ident, exc)
            if self.counting is not None:
                self.counting.bad_frames += 1
            if ident != b"<heartbeat>":
                self.reply(ident, P.ErrorReply(error=f"bad message: {exc}"))
            return None
        if msg.lc > self.lc:
            self.lc = msg.lc
        self.lc += 1
        if self.counting is not None:
            self.counting.received_msg(msg, frames)
        return msg, payload

    def trace_rows(self, clear: bool) -> list[P.TraceRow]:
        rows = list(self.trace)
        if clear:
            self.trace.clear()
        return rows

    def close(self) -> None:
        for sock in [self.inbox, self.pub, self.sub, *self.outboxes.values()]:
            if sock is not None:
                sock.close(linger=0)
