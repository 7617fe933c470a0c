"""The ivyzmq cluster under test: a generated config (free loopback ports, the default
timing preset with a lazier failure detector) and its daemons as a Deployment."""
from __future__ import annotations

import time
from pathlib import Path

from ivyzmq import keys as K
from ivyzmq import protocol as P
from ivyzmq.client import connect
from ivyzmq.deploy import Deployment, open_config
from ivyzmq.harness import configs

# The default preset, but a lazier failure detector and a longer client time-out: a loaded
# 2-core machine must not see a live manager as dead in the middle of a throughput run.
TIMING = "default"
TIMING_OVERRIDES = {"liveness": 6, "op_timeout": 30.0}
WAIT = 30.0            # s for daemons to answer, a manager to serve, the backup to catch up


class OurCluster:
    def __init__(self, workdir: Path, n_nodes: int, pages: int, page_size: int,
                 metrics: bool = False, name: str = "bench", replicas: int = 0,
                 overrides: dict | None = None, security: str = "none"):
        """`overrides` of the TIMING preset: default TIMING_OVERRIDES. Open sockets by
        default, like the raw baseline's; the security rows compare curve with none."""
        overrides = TIMING_OVERRIDES if overrides is None else overrides
        data = configs.cluster_dict(n_nodes, pages, page_size=page_size, timing=TIMING,
                                    metrics=metrics, replicas=replicas, security=security,
                                    **overrides)
        self.config_path = configs.write(workdir / f"{name}.yaml", data)
        self.dep: Deployment = open_config(str(self.config_path), workdir / f"run-{name}")
        self.cluster = self.dep.cluster
        if security == "curve":
            K.ensure(self.cluster)

    def start(self, names: list[str]) -> None:
        for name in names:
            self.dep.procs.start(name)

    def wait(self, names: list[str]) -> None:
        self.dep.wait_answering(names, WAIT)
        self.dep.admin.wait_serving(WAIT)

    def up_backup(self) -> None:
        """Start the backup and wait until the primary has sent it a snapshot (after which
        every step of the primary waits for the backup's acknowledgement)."""
        self.dep.up(["backup"], timeout=WAIT)
        self.wait_backup()

    def wait_backup(self) -> None:
        """Wait until the running backup holds the serving primary's records."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            prim = self.dep.admin.query("primary", P.StatusQuery(), timeout=1.0)
            back = self.dep.admin.query("backup", P.StatusQuery(), timeout=1.0)
            if prim and back and back.records == prim.records and back.epoch == prim.epoch \
                    and prim.serving:
                time.sleep(0.3)
                return
            time.sleep(0.1)
        raise RuntimeError("the backup did not catch up with the primary")

    def os_pids(self) -> dict[str, int]:
        """The os_pid of each daemon started, by name."""
        return {name: rec["os_pid"] for name, rec in self.dep.procs.records().items()}

    def client(self, node: int):
        return connect(self.cluster, node)

    def down(self) -> None:
        self.dep.down()
