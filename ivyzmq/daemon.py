"""What both daemons share: the command line, logging, signals and the poll loop."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from loguru import logger

from ivyzmq import config as C
from ivyzmq import logs, metrics
from ivyzmq import protocol as P
from ivyzmq.transport import Transport

TICK = 0.05      # at most this many seconds between timer ticks of the cores
TICKS_PER_INTERVAL = 5    # and at least this many ticks per heartbeat or retry interval


def tick_of(timing: C.Timing) -> float:
    """The daemon's tick: fine enough for its shortest timer, no finer (each wake-up of an
    idle daemon costs CPU: about 0.1 ms on a small virtual machine)."""
    return min(TICK, min(timing.heartbeat_interval, timing.retry_timeout) / TICKS_PER_INTERVAL)

# Messages from another process of the cluster (everything else comes from tools and programs).
PROTOCOL_TYPES = P.PeerMsg


def setup_logging(name: str, log_file: str | None, level: str, fmt: str = "text") -> None:
    logs.setup(name, log_file, level, fmt)


def daemon_args(prog: str, what: str, argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=f"Run one ivyzmq {what} in the "
                                 "foreground (ivy up starts every daemon of a config).")
    ap.add_argument("name", help="manager name (e.g. primary)" if what == "manager"
                    else "node id (e.g. 2 or node2)")
    ap.add_argument("-c", "--config", default=C.DEFAULT_CONFIG,
                    help=f"cluster YAML file (default {C.DEFAULT_CONFIG})")
    ap.add_argument("--log-file", help="also log to this file (DEBUG lines included "
                    "with --log-level DEBUG)")
    ap.add_argument("--log-level", default="INFO",
                    choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    ap.add_argument("--log-format", default="text", choices=logs.FORMATS,
                    help="json: one JSON object a line, for log shippers (default text)")
    return ap.parse_args(argv)


def load_or_exit(prog: str, path: str) -> C.Cluster:
    try:
        return C.load(path)
    except C.ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(cls, cluster: C.Cluster, pid: int, args: argparse.Namespace) -> int:
    """Run one daemon in the foreground until SIGTERM or SIGINT."""
    setup_logging(cluster.name(pid), args.log_file, args.log_level, args.log_format)
    try:
        daemon = cls(cluster, pid)
        if (where := metrics.start(daemon)) is not None:
            logger.info("{} metrics at http://{}:{}/metrics", daemon.name, *where)
    except Exception as exc:      # e.g. the endpoint or the metrics port is taken
        logger.error("cannot start: {}", exc)
        return 1
    daemon.install_signals()
    daemon.run()
    return 0


class Daemon:
    """The loop: receive, hand messages to the core, send what it says, tick the timers."""

    kind = "daemon"

    def __init__(self, cluster: C.Cluster, pid: int, transport: Transport | None = None):
        self.cluster, self.pid = cluster, pid
        self.name = cluster.name(pid)
        self.transport = transport or Transport(cluster, pid)
        self.stop = threading.Event()
        self.hold_until = 0.0    # the inbox is not read before this (the step_delay knob)
        self.security = "curve" if self.transport.keys else "none"
        self.tick_every = tick_of(cluster.timing)

    def install_signals(self) -> None:
        def handler(signum, _frame):
            logger.info("{} stopping on signal {}", self.name, signum)
            self.stop.set()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        logger.info("{} serving at {}", self.name, self.cluster.endpoint(self.pid))
        next_tick = 0.0
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                held = self.hold_until > now     # the inbox waits; heartbeats go on
                wake = min(next_tick, self.hold_until) if held else next_tick
                for ident, msg, payload in self.transport.receive(
                        max(0.0, wake - now) * 1000, inbox=not held):
                    try:
                        self.dispatch(ident, msg, payload)
                    except Exception:   # one bad message must not take the daemon down
                        logger.exception("{} failed handling {} from {}", self.name,
                                         P.type_name(msg), msg.sender)
                    if self.hold_until and self.hold_until > time.monotonic():
                        break       # step_delay: the rest of the inbox waits
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + self.tick_every
                    self.on_tick(now)
        finally:
            self.transport.close()
            logger.info("{} stopped", self.name)

    def dispatch(self, ident, msg: P.Msg, payload) -> None:
        if isinstance(msg, PROTOCOL_TYPES):     # its sender is checked by the transport
            self.on_protocol(msg, payload)
        else:
            self.on_control(ident, msg, payload)

    def on_control(self, ident, msg: P.Msg, payload) -> None:
        if isinstance(msg, P.TraceQuery):
            self.transport.reply(ident, P.TraceReply(rows=self.transport.trace_rows(msg.clear)))
        elif isinstance(msg, P.StatusQuery):
            self.transport.reply(ident, self.status(msg.rows))
        elif ident is not None:
            self.transport.reply(ident, P.ErrorReply(
                error=f"{P.type_name(msg)} is not something a {self.kind} answers"))

    def on_protocol(self, msg: P.Msg, payload) -> None:
        raise NotImplementedError

    def on_tick(self, now: float) -> None:
        raise NotImplementedError

    def status(self, rows: bool = True) -> P.StatusReply:
        raise NotImplementedError
