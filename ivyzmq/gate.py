"""Who gets into a daemon: the ZAP handler of its CURVE sockets, and the log of refusals.

libzmq asks the ZAP handler (a REP socket at inproc://zeromq.zap.01 of the socket's
context) about every CURVE handshake a server socket accepts. The gate answers on a thread
of its own, so a handshake never waits for the daemon's loop: a key of the cluster gets in,
with its process name as the connection's User-Id (the transport binds each message's
`sender` to it); any other key is refused. A peer that does not speak CURVE at all never
reaches ZAP: the gate learns of it from the sockets' monitors. Each refusal is logged once
for its peer address and reason (bounded), so a peer that retries every 100 ms does not
flood the log.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict

import zmq
from loguru import logger
from zmq.utils import z85

from ivyzmq.keys import Keys

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
EVENTS = (zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
          | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_DISCONNECTED
          | zmq.EVENT_MONITOR_STOPPED)
SEEN_LIMIT = 4096           # (address, reason) pairs remembered as logged
CLOSED_EVERY = 60.0         # a closed connection is logged once a minute per address


class Once:
    """Log a line for each key `times` times at most (then nothing), remembering the last
    SEEN_LIMIT keys: the log of a flood is bounded, and so is the memory of it."""

    def __init__(self, limit: int = SEEN_LIMIT, times: int = 1):
        self.seen: OrderedDict = OrderedDict()
        self.limit, self.times = limit, times

    def __call__(self, key, text: str, *args, level: str = "WARNING") -> bool:
        count = self.seen.pop(key, 0)
        self.seen[key] = count + 1
        if len(self.seen) > self.limit:
            self.seen.popitem(last=False)
        if count >= self.times:
            return False
        last = " (the last such line for it)" if count + 1 == self.times > 1 else ""
        logger.log(level, text + last, *args)
        return True


class Gate(threading.Thread):
    """The ZAP handler and monitor reader of one ZeroMQ context. Domains are registered by
    the sockets that use them: `allow(domain, names)` lets in the keys of those names."""

    _gates: dict[int, "Gate"] = {}
    _lock = threading.Lock()

    @classmethod
    def of(cls, ctx: zmq.Context) -> "Gate":
        with cls._lock:
            gate = cls._gates.get(id(ctx))
            if gate is None:
                gate = cls._gates[id(ctx)] = cls(ctx)
                gate.start()
            return gate

    def __init__(self, ctx: zmq.Context):
        super().__init__(name="ivy-gate", daemon=True)
        self.ctx = ctx
        self.zap = ctx.socket(zmq.REP)
        self.zap.linger = 0
        self.zap.bind(ZAP_ENDPOINT)
        self.domains: dict[bytes, tuple[str, dict[bytes, str]]] = {}
        self.monitors: list[tuple[zmq.Socket, str]] = []
        self.new_monitors: list[tuple[str, str]] = []
        self.once = Once()
        self.peers: dict[int, str] = {}     # fd -> address, from ACCEPTED events
        self.failed: set[str] = set()       # sockets whose last handshake failed
        self.refused = 0

    def allow(self, domain: str, what: str, keys: Keys, names: list[str]) -> None:
        """Let the keys of `names` into sockets of `domain` (`what` names it in the log)."""
        self.domains[domain.encode()] = (what, {z85.decode(keys.public[n]): n for n in names})

    def watch(self, sock: zmq.Socket, what: str) -> None:
        """Report refused handshakes on `sock` (call before it binds)."""
        addr = f"inproc://ivy-monitor-{id(sock)}"
        sock.monitor(addr, EVENTS)
        with self._lock:
            self.new_monitors.append((addr, what))

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.zap, zmq.POLLIN)
        while True:
            with self._lock:
                for addr, what in self.new_monitors:
                    mon = self.ctx.socket(zmq.PAIR)
                    mon.connect(addr)
                    poller.register(mon, zmq.POLLIN)
                    self.monitors.append((mon, what))
                self.new_monitors.clear()
            try:
                events = dict(poller.poll(100))
                if self.zap in events:
                    self.zap.send_multipart(self.answer(self.zap.recv_multipart()))
                for mon, what in list(self.monitors):
                    if mon in events and not self.event(mon.recv_multipart(), what):
                        poller.unregister(mon)       # its socket is closed
                        self.monitors.remove((mon, what))
                        mon.close(linger=0)
            except zmq.ContextTerminated:
                return
            except Exception:      # the gate must outlive any odd request
                logger.exception("the ZAP handler failed on a request")

    def answer(self, frames: list[bytes]) -> list[bytes]:
        """One ZAP request -> its reply (RFC 27)."""
        if len(frames) < 6:
            return [b"1.0", b"", b"500", b"bad ZAP request", b"", b""]
        version, rid, domain, address, _ident, mechanism, *creds = frames
        what, allowed = self.domains.get(domain, ("an unknown domain", {}))
        name = allowed.get(creds[0]) if mechanism == b"CURVE" and creds else None
        if name is not None:
            return [version, rid, b"200", b"OK", name.encode(), b""]
        self.refused += 1
        key = z85.encode(creds[0]).decode() if creds and len(creds[0]) == 32 else "-"
        self.once((address, key, domain), "refused a connection from {} at {}: CURVE key {} "
                  "is not one of those let in there", address.decode(errors="replace"), what,
                  key)
        return [version, rid, b"400", b"key not allowed", b"", b""]

    def event(self, frames: list[bytes], what: str) -> bool:
        """A monitor event (False: the socket is closed, the monitor ends). ACCEPTED and
        DISCONNECTED carry the connection's fd; a failed handshake carries an error code,
        and its connection's DISCONNECTED comes next."""
        kind = int.from_bytes(frames[0][:2], "little")
        fd = int.from_bytes(frames[0][2:6], "little")
        if kind == zmq.EVENT_MONITOR_STOPPED:
            return False
        if kind == zmq.EVENT_ACCEPTED:
            self.peers[fd] = _peer_of(fd)
            if len(self.peers) > SEEN_LIMIT:
                self.peers.pop(next(iter(self.peers)))
        elif kind in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                      zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            self.failed.add(what)
        elif kind == zmq.EVENT_DISCONNECTED:
            address = self.peers.pop(fd, "an unknown address")
            host = address.rpartition(":")[0] or address
            if what in self.failed:
                self.failed.discard(what)
                self.refused += 1
                self.once((host, what, "handshake"), "refused a connection from {} at {}: it "
                          "does not speak CURVE with the cluster's keys", address, what)
                return True
            slot = int(time.monotonic() // CLOSED_EVERY)
            self.once((host, what, "closed", slot), "a connection from {} at {} closed (the "
                      "peer closed it, or sent a frame over the size limit)", address, what,
                      level="INFO")
        return True


def _peer_of(fd: int) -> str:
    """The remote address of an accepted connection's socket (best effort: it may be gone)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return "an unknown address"
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "an unknown address"
    finally:
        sock.close()
