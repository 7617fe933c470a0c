"""The raw pyzmq baseline: the same processes, sockets and messages as an ivyzmq cluster,
written directly with pyzmq and msgspec JSON headers, with nothing of ivyzmq's protocol
machinery (no replication log, epochs, Lamport clocks, traces, retries, dedupe or strict
decoding): just enough routing state (owner, copy set, a lock per page) to send the same
messages.

Process ids as in ivyzmq: nodes 0..N-1, the manager N, its backup N+1. Headers are small
msgspec-JSON dicts; a page travels as a second raw frame. Each process blocks on its ROUTER
inbox and sends through one DEALER per destination, like ivyzmq's transport. Every process
is a `multiprocessing` (spawn) process (raw_cluster.py starts them; the bench stops them by
os_pid). raw_replicas.py adds page replicas to the node and the manager. A cas or an add
(atomics.py's rows) is a write to the node: applied where the page is ReadWrite, after a
write fault if need be, and answered with its result as a second frame.
"""
from __future__ import annotations

from collections import deque

import msgspec
import zmq

_enc = msgspec.json.encode
_dec = msgspec.json.decode


class _Out:
    """One DEALER per destination, opened on first use."""

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


class _Process:
    """What every raw process has: its ROUTER inbox, its DEALERs, and a loop that hands each
    message to the handler of its type (a ping is answered with a pong)."""

    def __init__(self, pid: int, endpoints: list[str]):
        self.pid = pid
        ctx = zmq.Context()
        self.inbox = _inbox(ctx, endpoints[pid])
        self.out = _Out(ctx, endpoints)
        self.handlers: dict = {"ping": self.ping}

    def ping(self, h: dict, frames: list) -> None:
        self.inbox.send_multipart([frames[0], _enc({"t": "pong"})])

    def serve(self) -> None:
        recv, handlers = self.inbox.recv_multipart, self.handlers
        while True:
            frames = recv()
            try:
                h = _dec(frames[1])
                handler = handlers[h["t"]]
            except Exception:       # noqa: BLE001 - a stray peer (a stale DEALER elsewhere)
                continue
            handler(h, frames)


# -- node ------------------------------------------------------------------------------------

class RawNode(_Process):
    """Pages, access and the client requests queued per page; faults go to the manager."""

    def __init__(self, pid: int, endpoints: list[str], n_nodes: int, pages: int,
                 page_size: int):
        super().__init__(pid, endpoints)
        self.mgr = n_nodes
        mine = [p % n_nodes == pid for p in range(pages)]
        self.data = [bytes(page_size) if m else None for m in mine]
        self.owner = mine
        self.rw = list(mine)
        self.local = [deque() for _ in range(pages)]    # (ident, kind, cid, payload, offset)
        self.pending: list = [None] * pages              # "r" / "w" while a fault is out
        self.rid = 0
        self.handlers.update(read=self.client_read, write=self.client_write,  # a program's
                             RF=self.read_forward, WF=self.write_forward, IV=self.invalidate,
                             WG=self.write_grant, RP=self.read_page, WP=self.write_page,
                             cas=self.client_cas, add=self.client_add)

    def to_mgr(self, t: str, p: int, requester: int, r: int) -> None:
        self.out.send(self.mgr, [_enc({"t": t, "sender": self.pid, "page": p,
                                       "requester": requester, "rid": r})])

    def peer_header(self, t: str, h: dict) -> bytes:
        return _enc({"t": t, "sender": self.pid, "page": h["page"],
                     "requester": h["requester"], "rid": h["rid"]})

    def advance(self, p: int) -> None:
        """Answer the queued client requests of page p that its access allows; fault on the
        first one it does not."""
        q, data = self.local[p], self.data
        while q:
            ident, kind, cid, payload, off = q[0]
            if kind == "r" and data[p] is not None:
                self.inbox.send_multipart([ident, _enc({"cid": cid}), data[p]], zmq.NOBLOCK)
            elif kind == "w" and self.rw[p]:
                old = data[p]
                data[p] = old[:off] + payload + old[off + len(payload):]
                self.inbox.send_multipart([ident, _enc({"cid": cid})], zmq.NOBLOCK)
            elif kind in ("c", "a") and self.rw[p]:        # cas / add: like a write
                data[p], result = atomic(kind, data[p], payload, off)
                self.inbox.send_multipart([ident, _enc({"cid": cid}), result], zmq.NOBLOCK)
            else:
                if self.pending[p] is None:
                    self.pending[p] = "r" if kind == "r" else "w"
                    self.rid += 1
                    self.to_mgr("RQ" if kind == "r" else "WQ", p, self.pid, self.rid)
                return
            q.popleft()

    def done(self, p: int, h: dict) -> None:
        kind, self.pending[p] = self.pending[p], None
        self.to_mgr("RC" if kind == "r" else "WC", p, self.pid, h["rid"])
        self.advance(p)

    def client_read(self, h: dict, frames: list) -> None:
        self.queue_op(h, (frames[0], "r", h["cid"], b"", h.get("offset", 0)))

    def client_write(self, h: dict, frames: list) -> None:
        self.queue_op(h, (frames[0], "w", h["cid"], frames[2], h.get("offset", 0)))

    def client_cas(self, h: dict, frames: list) -> None:      # frames[2]: expected + new
        self.queue_op(h, (frames[0], "c", h["cid"], frames[2], h.get("offset", 0)))

    def client_add(self, h: dict, frames: list) -> None:
        self.queue_op(h, (frames[0], "a", h["cid"], h["delta"], h.get("offset", 0)))

    def queue_op(self, h: dict, op: tuple) -> None:
        q = self.local[h["page"]]
        q.append(op)
        if len(q) == 1:
            self.advance(h["page"])

    def read_forward(self, h: dict, frames: list) -> None:     # manager: send a read copy
        p = h["page"]
        self.rw[p] = False
        self.out.send(h["requester"], [self.peer_header("RP", h), self.data[p]])

    def write_forward(self, h: dict, frames: list) -> None:    # manager: hand the page over
        p = h["page"]
        self.out.send(h["requester"], [self.peer_header("WP", h), self.data[p]])
        self.data[p], self.owner[p], self.rw[p] = None, False, False

    def invalidate(self, h: dict, frames: list) -> None:       # manager: drop your copy
        self.data[h["page"]] = None
        self.out.send(self.mgr, [self.peer_header("IC", h)])

    def write_grant(self, h: dict, frames: list) -> None:      # manager: upgrade in place
        self.rw[h["page"]] = True
        self.done(h["page"], h)

    def read_page(self, h: dict, frames: list) -> None:        # owner: a read copy
        p = h["page"]
        if self.pending[p] == "r":
            self.data[p] = frames[2]
            self.done(p, h)

    def write_page(self, h: dict, frames: list) -> None:       # old owner: the page
        p = h["page"]
        if self.pending[p] == "w":
            self.data[p], self.owner[p], self.rw[p] = frames[2], True, True
            self.done(p, h)


def atomic(kind: str, old: bytes, arg, off: int) -> tuple[bytes, bytes]:
    """(the page after, the reply's frame) of a cas ("c", arg = expected + new: 1 byte
    1/0 and the bytes found) or an add ("a", arg = the delta: the 8-byte word after)."""
    if kind == "c":
        half = len(arg) // 2
        found = old[off:off + half]
        if found != arg[:half]:
            return old, b"\0" + found
        return old[:off] + arg[half:] + old[off + half:], b"\1" + found
    value = (int.from_bytes(old[off:off + 8], "little", signed=True) + arg) & (2 ** 64 - 1)
    word = value.to_bytes(8, "little")
    return old[:off] + word + old[off + 8:], word


# -- manager ---------------------------------------------------------------------------------

class RawManager(_Process):
    """Central manager: owner, copy set and a FIFO lock per page. With a backup switched on,
    every step's record goes to the backup first and the step's messages wait for its ack
    (as ivyzmq's replicate-before-acting does)."""

    def __init__(self, pid: int, endpoints: list[str], n_nodes: int, pages: int):
        super().__init__(pid, endpoints)
        self.owner = [p % n_nodes for p in range(pages)]
        self.copies: list[set] = [set() for _ in range(pages)]
        self.op: list = [None] * pages               # [kind, requester, rid, waiting set]
        self.queue = [deque() for _ in range(pages)]
        self.backup: int | None = None
        self.seq = 0
        self.held: deque = deque()
        self.handlers.update(ACK=self.ack, backup=self.use_backup, RQ=self.request,
                             WQ=self.request, IC=self.invalidated, RC=self.confirmed,
                             WC=self.confirmed)

    def msg(self, t: str, p: int, o: list) -> list:
        return [_enc({"t": t, "sender": self.pid, "page": p, "requester": o[1], "rid": o[2]})]

    def proceed(self, p: int, o: list, outs: list) -> None:
        if o[1] == self.owner[p]:
            outs.append((o[1], self.msg("WG", p, o)))
        else:
            outs.append((self.owner[p], self.msg("WF", p, o)))

    def start(self, p: int, o: list, outs: list) -> None:
        self.op[p] = o
        if o[0] == "r":
            outs.append((self.owner[p], self.msg("RF", p, o)))
            return
        targets = self.copies[p] - {o[1]}
        if targets:
            o[3] = set(targets)
            for n in sorted(targets):
                outs.append((n, self.msg("IV", p, o)))
        else:
            self.proceed(p, o, outs)

    def ack(self, h: dict, frames: list) -> None:              # backup: records up to seq
        held = self.held
        while held and held[0][0] <= h["seq"]:
            for dest, fr in held.popleft()[1]:
                self.out.send(dest, fr)

    def use_backup(self, h: dict, frames: list) -> None:       # bench: switch the backup on
        self.backup = h["pid"]
        self.inbox.send_multipart([frames[0], _enc({"t": "ok"})])

    def request(self, h: dict, frames: list) -> None:          # node: RQ / WQ
        p, outs = h["page"], []
        o = ["r" if h["t"] == "RQ" else "w", h["requester"], h["rid"], set()]
        if self.op[p] is None:
            self.start(p, o, outs)
        else:
            self.queue[p].append(o)
        self.emit(p, outs)

    def invalidated(self, h: dict, frames: list) -> None:      # node: IC
        p, outs = h["page"], []
        o = self.op[p]
        o[3].discard(h["sender"])
        self.copies[p].discard(h["sender"])
        if not o[3]:
            self.proceed(p, o, outs)
        self.emit(p, outs)

    def confirmed(self, h: dict, frames: list) -> None:        # node: RC / WC
        p, outs = h["page"], []
        if h["t"] == "RC":
            if h["requester"] != self.owner[p]:
                self.copies[p].add(h["requester"])
        else:
            self.owner[p], self.copies[p] = h["requester"], set()
        self.op[p] = None
        if self.queue[p]:
            self.start(p, self.queue[p].popleft(), outs)
        self.emit(p, outs)

    def emit(self, p: int, outs: list) -> None:
        """Send a step's messages, or with a backup: its record first, the messages on ack."""
        if self.backup is None:
            for dest, fr in outs:
                self.out.send(dest, fr)
            return
        self.seq += 1
        op = self.op[p]
        rec = {"page": p, "owner": self.owner[p], "copy_set": sorted(self.copies[p]),
               "op": None if op is None else op[:3]}
        self.out.send(self.backup, [_enc({"t": "REP", "sender": self.pid, "seq": self.seq,
                                          "changes": [rec]})])
        self.held.append((self.seq, outs))


class RawBackup(_Process):
    """Keeps the primary's records and acknowledges each step."""

    def __init__(self, pid: int, endpoints: list[str], primary: int):
        super().__init__(pid, endpoints)
        self.primary = primary
        self.table: dict[int, dict] = {}
        self.handlers["REP"] = self.replicate

    def replicate(self, h: dict, frames: list) -> None:
        for rec in h["changes"]:
            self.table[rec["page"]] = rec
        self.out.send(self.primary, [_enc({"t": "ACK", "sender": self.pid, "seq": h["seq"]})])


# The processes' entry points (multiprocessing targets).
def raw_node(pid: int, endpoints: list[str], n_nodes: int, pages: int, page_size: int) -> None:
    RawNode(pid, endpoints, n_nodes, pages, page_size).serve()


def raw_manager(pid: int, endpoints: list[str], n_nodes: int, pages: int) -> None:
    RawManager(pid, endpoints, n_nodes, pages).serve()


def raw_backup(pid: int, endpoints: list[str], primary: int, pages: int) -> None:
    RawBackup(pid, endpoints, primary).serve()
