"""The manager daemon: the pure manager core (roles, replication, recovery, Ivy) plus its
transport and heartbeat sockets."""
from __future__ import annotations

import os
import sys
import time


from ivyzmq import protocol as P
from ivyzmq.config import Cluster
from ivyzmq.daemon import Daemon, daemon_args, load_or_exit, serve
from ivyzmq.manager.core import Manager


PAUSE_GAP = 0.25      # the loop ticks every 50 ms at most: ticks this far apart mean a pause


class ManagerDaemon(Daemon):
    kind = "manager"

    def __init__(self, cluster: Cluster, pid: int, transport=None):
        super().__init__(cluster, pid, transport)
        self.transport.enable_heartbeats()
        t = cluster.timing
        self.step_delay = t.step_delay
        self.core = Manager(pid, nodes=cluster.node_ids, managers=cluster.manager_ids,
                            pages=cluster.pages, now=time.monotonic(),
                            boot=int.from_bytes(os.urandom(4), "big"),
                            heartbeat_interval=t.heartbeat_interval, liveness=t.liveness,
                            redrive_timeout=t.redrive_timeout, failback=cluster.failback,
                            initial_owner=cluster.initial_owner,
                            node_liveness=t.node_dead_after, pause_gap=PAUSE_GAP,
                            replicas=cluster.replicas)

    def on_protocol(self, msg, payload) -> None:
        seq = self.core.seq
        self.core.receive(time.monotonic(), msg)
        self.flush(changed=self.core.seq != seq)

    def on_tick(self, now: float) -> None:
        seq = self.core.seq
        self.core.tick(now)
        self.flush(changed=self.core.seq != seq)

    def flush(self, changed: bool) -> None:
        for dest, msg, _ in self.core.drain():
            self.transport.send(dest, msg)
        if changed and self.step_delay and self.core.serving:
            # The homework's demo knob: after each state change (replicated, its messages
            # sent or, for a membership step, held for the backups) read nothing for a while,
            # so that a kill can land in the middle of a request. Heartbeats go on.
            self.hold_until = time.monotonic() + self.step_delay
            self.core.hold(self.hold_until)

    def on_control(self, ident, msg, payload) -> None:
        if isinstance(msg, P.PageQuery) and 0 <= msg.page < len(self.core.table):
            self.transport.reply(ident, self.core.page_view(time.monotonic(), msg.page))
        else:
            super().on_control(ident, msg, payload)

    def status(self, rows: bool = True) -> P.StatusReply:
        c = self.core
        pending = sum(rec.op is not None for rec in dict.values(c.table))   # touched only
        return P.StatusReply(name=self.name, kind="manager", role=c.role,
                             serving=c.serving, pending=pending,
                             records=c.status_rows() if rows else [],
                             epoch=c.epoch, dead=c.dead_nodes(), security=self.security)


def main(argv: list[str] | None = None) -> int:
    args = daemon_args("ivy-cm", "manager", argv)
    cluster = load_or_exit("ivy-cm", args.config)
    names = [m.name for m in cluster.managers]
    if args.name not in names:
        print(f"ivy-cm: error: no manager named {args.name!r} (have: {', '.join(names)})",
              file=sys.stderr)
        return 2
    return serve(ManagerDaemon, cluster, cluster.pid_of(args.name), args)


if __name__ == "__main__":
    raise SystemExit(main())
