"""One config's daemons on this machine: a `Supervisor` for their processes and an `Admin`
client for questions to them. `ivy up`, the programs and the tests hold a Deployment."""
from __future__ import annotations

import time
from pathlib import Path

from ivyzmq import config as C
from ivyzmq import keys as K
from ivyzmq import protocol as P
from ivyzmq.client import Admin, IvyError
from ivyzmq.supervisor import Supervisor, default_run_dir

START_TIMEOUT = 15.0       # a daemon started must answer within this (s)


class Deployment:
    def __init__(self, config_path: str, cluster: C.Cluster, run_dir: str | Path | None = None,
                 log_level: str = "INFO", prefix: dict[str, list[str]] | None = None,
                 log_format: str = "text"):
        self.cluster = cluster
        self.path = Path(run_dir) if run_dir else default_run_dir(config_path)
        self.procs = Supervisor(config_path, cluster, self.path, log_level, prefix, log_format)
        self.config_path = self.procs.config_path
        self.admin = Admin(cluster)
        self.made_keys: list[str] = []     # key pairs the last up() created

    def up(self, names: list[str] | None = None, timeout: float = START_TIMEOUT) -> list[str]:
        """Start the named daemons (default: all) that are not running; wait for answers,
        and, when the whole cluster runs here, until a manager serves."""
        names = names or self.cluster.daemon_names()
        if self.cluster.security == "curve":
            self.made_keys = K.ensure(self.cluster, if_none=True)
        running = self.procs.running()
        started = [n for n in names if n not in running]
        for name in started:
            self.procs.start(name)
        self.wait_answering(started, timeout)
        # A manager serves only once every node has reported its table, so without every
        # node (--only, a cluster spread over hosts) there is nothing more to wait for.
        running = set(self.procs.running())
        nodes = {nd.name for nd in self.cluster.nodes}
        if started and nodes <= running and running - nodes:
            self.admin.wait_serving(timeout)
        return started

    def wait_answering(self, names: list[str], timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while self.admin.query(name, P.StatusQuery(rows=False), timeout=0.5) is None:
                rec = self.procs.records().get(name)
                if rec and not self.procs.ours(rec):
                    raise IvyError(f"{name} exited at start; see {self.path / (name + '.out')}")
                if time.monotonic() > deadline:
                    raise IvyError(f"{name} did not answer within {timeout:g} s")

    def wait_serving(self, timeout: float = START_TIMEOUT) -> str:
        return self.admin.wait_serving(timeout)

    def restart(self, name: str) -> None:
        """Start one daemon again (SIGKILL first if it runs) and wait until it answers."""
        if name in self.procs.running():
            self.procs.kill(name)
        self.procs.start(name)
        self.wait_answering([name])

    def down(self) -> list[str]:
        return self.procs.down()

    def reachable(self) -> list[str]:
        """Daemons worth asking: all but those this run dir started and saw die (a daemon
        started elsewhere, on another host, is always asked)."""
        recs = self.procs.records()
        return [n for n in self.cluster.daemon_names()
                if n not in recs or self.procs.ours(recs[n])]

    def status(self, timeout: float = 1.0) -> list[tuple[str, P.StatusReply | None]]:
        up = set(self.reachable())
        replies = dict(self.admin.status(sorted(up), timeout))
        return [(n, replies.get(n)) for n in self.cluster.daemon_names()]

    def trace(self, clear: bool = False, timeout: float = 1.0) -> list[P.TraceRow]:
        return self.admin.trace(self.reachable(), clear, timeout)


def open_config(config_path: str, run_dir: str | Path | None = None, **kw) -> Deployment:
    """A Deployment of the config file at `config_path` (ConfigError if it is bad)."""
    return Deployment(config_path, C.load(config_path), run_dir, **kw)
