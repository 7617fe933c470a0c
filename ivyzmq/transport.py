"""The one module that owns ZeroMQ sockets: a daemon's inbox, its outboxes, heartbeats,
the poll loop's receive side, Lamport clocks and the trace of protocol messages sent.

Every daemon binds one ROUTER at its configured endpoint (its inbox). It sends to another
daemon through one DEALER per destination, connected to that daemon's inbox; a DEALER keeps
a connection's messages in order and queues them while the peer is away. Tools and client
programs talk to the same ROUTER and get their answers back through it.

Under `security: curve` every socket is a CURVE socket (ivyzmq/keys.py): the inbox and the
heartbeat PUB are servers that let in only the cluster's keys (ivyzmq/gate.py), the outboxes
and the heartbeat SUB are clients that talk only to the daemon whose key they expect. A
message from the cluster's processes must come from the process its `sender` names, with
that process's key, and be of a kind such a process sends; anything else is dropped and
logged once (docs/PROTOCOL.md section 10). Every socket bounds the size of a frame it takes
and the messages it queues.
"""
from __future__ import annotations

import math
import time
from collections import deque

import zmq
from loguru import logger

from ivyzmq import keys as K
from ivyzmq import protocol as P
from ivyzmq.config import Cluster
from ivyzmq.gate import Gate, Once

TRACE_LIMIT = 200_000
INBOX_HWM = 10_000          # messages queued per connection before its sender must wait
OUTBOX_HWM = 100_000        # messages queued for one destination before we drop
BAD_LOGGED = 20             # bad frames logged per connection; the rest are only counted
# Plain ints for the receive path: pyzmq's enum members cost a microsecond an operation.
_EVENTS, _POLLIN, _NOBLOCK = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK)


def max_frame(cluster: Cluster) -> int:
    """The largest frame a daemon takes (libzmq disconnects a peer that sends a larger one):
    a page, or a header listing every page (a snapshot, a table report) at its largest -
    every node in each page's copy set, queue and request ids - with room
    (tests/test_security.py builds that snapshot)."""
    per_page = 160 + 72 * len(cluster.nodes)
    return max(cluster.page_size, cluster.pages * per_page) + 65536


def make_socket(ctx: zmq.Context, kind: int, max_size: int = -1) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.linger = 0          # never hang on shutdown waiting for a dead peer
    sock.maxmsgsize = max_size
    return sock


class Transport:
    def __init__(self, cluster: Cluster, pid: int, ctx: zmq.Context | None = None):
        self.cluster, self.pid = cluster, pid
        self.n_processes = len(cluster.nodes) + len(cluster.managers)
        # Per process id, what the receive path checks a sender against (every message).
        self.names = [cluster.name(p) for p in range(self.n_processes)]
        self.roles = ["node"] * len(cluster.nodes) + ["manager"] * len(cluster.managers)
        self.ctx = ctx or zmq.Context.instance()
        self.max_frame = max_frame(cluster)
        self.keys = K.for_process(cluster, cluster.name(pid))
        self.gate = Gate.of(self.ctx) if self.keys else None
        self.domain = f"ivy-{id(self)}"
        self.inbox = make_socket(self.ctx, zmq.ROUTER, self.max_frame)
        self.inbox.rcvhwm = INBOX_HWM
        if self.keys:
            self.gate.allow(self.domain, cluster.name(pid), self.keys, K.names(cluster))
            self.keys.server(self.inbox, self.domain)
            self.gate.watch(self.inbox, cluster.name(pid))
        self.inbox.bind(cluster.endpoint(pid))
        self.once = Once()      # refused messages, logged once per peer and reason
        self.bad = Once(times=BAD_LOGGED)   # bad frames, logged a few times per connection
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
        if self.keys:
            names = [m.name for m in self.cluster.managers]
            self.gate.allow(self.domain + "-beat", f"{self.cluster.name(self.pid)} "
                            "heartbeats", self.keys, names)
            self.keys.server(self.pub, self.domain + "-beat")
            self.gate.watch(self.pub, f"{self.cluster.name(self.pid)} heartbeats")
        self.pub.bind(self.cluster.managers[self.pid - n].heartbeat)
        self.sub = make_socket(self.ctx, zmq.SUB, self.max_frame)
        self.sub.rcvhwm = INBOX_HWM
        self.sub.subscribe(b"")
        for i, spec in enumerate(self.cluster.managers):
            if n + i != self.pid:
                if self.keys:
                    self.keys.client(self.sub, spec.name)
                self.sub.connect(spec.heartbeat)
        self.poller.register(self.sub, zmq.POLLIN)
        self.sub_poller.register(self.sub, zmq.POLLIN)

    def _outbox(self, dest: int) -> zmq.Socket:
        sock = self.outboxes.get(dest)
        if sock is None:
            sock = make_socket(self.ctx, zmq.DEALER)
            sock.sndhwm = OUTBOX_HWM
            if self.keys:
                self.keys.client(sock, self.cluster.name(dest))
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
        and answered with ErrorReply; a message its connection may not send is dropped."""
        poller = self.poller if inbox else self.sub_poller
        # Round up: pyzmq truncates to whole milliseconds, and poll(0) in the last one
        # before each tick would spin.
        events = dict(poller.poll(math.ceil(timeout_ms)))
        if self.sub is not None and self.sub in events:
            for frames in self._drain(self.sub, limit):
                got = self._decode(b"<heartbeat>", frames)
                if got is not None and self._admit(None, got[0], None):
                    yield None, got[0], got[1]
        if not inbox or self.inbox not in events:
            return
        secure = self.keys is not None
        for frames in self._drain(self.inbox, limit, copy=not secure):
            head = frames[0] if secure else None    # a zmq.Frame: who its connection is
            user = head.get("User-Id") if secure else None
            if secure:
                frames = [f.bytes for f in frames]
            got = self._decode(frames[0], frames[1:])
            if got is not None and self._admit(user, got[0], head or frames[0]):
                yield frames[0], got[0], got[1]

    @staticmethod
    def _drain(sock: zmq.Socket, limit: int, copy: bool = True):
        """What is queued on a socket that poll found readable. Asking EVENTS is cheaper
        than the zmq.Again a receive on an empty socket raises."""
        for _ in range(limit):
            yield sock.recv_multipart(_NOBLOCK, copy=copy)
            if not sock.get(_EVENTS) & _POLLIN:
                return

    def _admit(self, user: str | None, msg: P.Msg, peer) -> bool:
        """May this connection send `msg`? `user`: the process whose key it authenticated
        (None without CURVE, and for heartbeats, whose publishers' keys are checked);
        `peer`: the message's first frame (a zmq.Frame under CURVE, else the ident)."""
        why = self._refusal(user, msg)
        if why is None:
            return True
        address = (peer.get("Peer-Address") if isinstance(peer, zmq.Frame)
                   else "a heartbeat publisher" if peer is None else f"connection {peer!r}")
        self.once((address, user, type(msg), why), "refused {} from {} (key {}): {}",
                  P.type_name(msg), address, user or "-", why)
        if self.counting is not None:
            self.counting.refused += 1
        return False

    def _refusal(self, user: str | None, msg: P.Msg) -> str | None:
        if not isinstance(msg, P.PeerMsg):
            return None             # a tool's request: any key of the cluster may ask
        sender = msg.sender
        if not 0 <= sender < self.n_processes:
            return f"sender {sender} is no process of the cluster"
        role = self.roles[sender]
        if msg.sent_by != role:
            return f"a {msg.sent_by} sends it, and sender {sender} is a {role}"
        if user is not None and user != self.names[sender]:
            return f"it claims sender {self.names[sender]}"
        return None

    def _decode(self, ident: bytes, frames: list[bytes]):
        try:
            msg, payload = P.decode(frames)
        except P.ProtocolError as exc:
            self.bad(ident, "bad frame from {!r}: {}", ident, exc)
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
