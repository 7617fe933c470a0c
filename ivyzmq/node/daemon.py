"""The node daemon: the pure node core, its transport, and the client endpoint through which
programs (and the `ivy` command) read and write pages."""
from __future__ import annotations

import itertools
import sys
import time


from ivyzmq import protocol as P
from ivyzmq.config import Cluster
from ivyzmq.daemon import Daemon, daemon_args, load_or_exit, serve
from ivyzmq.node.core import WORD, Node, PageError

CLIENT_OPS = {P.ClientRead: "read", P.ClientWrite: "write", P.ClientCas: "cas",
              P.ClientAdd: "add"}


class NodeDaemon(Daemon):
    kind = "node"

    def __init__(self, cluster: Cluster, pid: int, transport=None):
        super().__init__(cluster, pid, transport)
        t = cluster.timing
        # Request ids and incarnations must grow across restarts of this node: the clock.
        clock = time.time_ns() // 1000
        self.core = Node(pid, n_nodes=len(cluster.nodes), managers=cluster.manager_ids,
                         pages=cluster.pages, page_size=cluster.page_size,
                         retry_timeout=t.retry_timeout, retries=t.retries, rid_base=clock,
                         initial_owner=cluster.initial_owner, inc=clock,
                         lease=t.lease, replicas=cluster.replicas,
                         beat_interval=t.heartbeat_interval)
        self.opids = itertools.count(1)
        self.waiting: dict[int, tuple[bytes, int]] = {}   # opid -> (client ident, cid)

    def on_protocol(self, msg, payload) -> None:
        self.core.receive(time.monotonic(), msg, payload)
        self.flush()

    def on_tick(self, now: float) -> None:
        self.core.tick(now)
        self.flush()

    def on_control(self, ident, msg, payload) -> None:
        kind = CLIENT_OPS.get(type(msg))
        if kind is not None:
            opid = next(self.opids)
            try:
                data = msg.delta.to_bytes(WORD, "little", signed=True) if kind == "add" \
                    else payload if kind in ("write", "cas") else b""
                self.core.start(time.monotonic(), opid, kind, msg.page, data,
                                getattr(msg, "offset", 0))
            except OverflowError:
                self.transport.reply(ident, P.ClientReply(
                    cid=msg.cid, error="add: delta must fit 64 bits", code=P.ErrorCode.REQUEST))
                return
            except PageError as exc:
                self.transport.reply(ident, P.ClientReply(cid=msg.cid, error=str(exc),
                                                          code=exc.code))
                return
            self.waiting[opid] = (ident, msg.cid)
            self.flush()
        elif isinstance(msg, P.WaitQuery) and 0 <= msg.page < len(self.core.pages):
            self.transport.reply(ident, self.core.wait_of(time.monotonic(), msg.page))
        else:
            super().on_control(ident, msg, payload)

    def flush(self) -> None:
        out, done = self.core.drain()
        for dest, msg, payload in out:
            self.transport.send(dest, msg, payload)
        for opid, data, error in done:
            ident, cid = self.waiting.pop(opid, (None, None))
            if ident is not None:
                reply = P.ClientReply(cid=cid) if error is None else \
                    P.ClientReply(cid=cid, error=error.text, code=error.code,
                                  peer=error.peer)
                self.transport.reply(ident, reply, data)

    def status(self, rows: bool = True) -> P.StatusReply:
        pending = sum(st.pending is not None for st in dict.values(self.core.pages))
        return P.StatusReply(name=self.name, kind="node", role=f"manager {self.core.manager}",
                             pending=pending, pages=self.core.status_rows() if rows else [],
                             epoch=self.core.epoch, security=self.security)


def main(argv: list[str] | None = None) -> int:
    args = daemon_args("ivy-node", "node", argv)
    cluster = load_or_exit("ivy-node", args.config)
    try:
        pid = cluster.pid_of(args.name if args.name.startswith("node") else f"node{args.name}")
    except ValueError as exc:
        print(f"ivy-node: error: {exc}", file=sys.stderr)
        return 2
    if pid >= len(cluster.nodes):
        print(f"ivy-node: error: {args.name!r} is not a node", file=sys.stderr)
        return 2
    return serve(NodeDaemon, cluster, pid, args)


if __name__ == "__main__":
    raise SystemExit(main())
