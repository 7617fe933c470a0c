"""A simulated cluster's size, timing and workload (the daemons' timing defaults, from
ivyzmq/config.py, are the simulator's)."""
from __future__ import annotations

from dataclasses import dataclass

from ivyzmq.config import Timing

_T = Timing()     # the protocol's timing defaults are the daemons' (ivyzmq/config.py)


@dataclass
class SimConfig:
    nodes: int = 5
    managers: int = 2
    pages: int = 3
    page_size: int = 32
    heartbeat_interval: float = _T.heartbeat_interval
    liveness: int = _T.liveness
    retry_timeout: float = _T.retry_timeout
    retries: int = _T.retries
    redrive_timeout: float = _T.redrive_timeout
    node_liveness: float = _T.node_liveness
    failback: bool = True
    replicas: int = 0             # page replica holders besides the owner
    atomics: bool = False         # clients also cas (string pages) and add (odd pages)
    tick: float = 0.05
    delay: tuple[float, float] = (0.0002, 0.003)   # one-way message delay, uniform
    op_timeout: float = 6.0       # a client gives up on an operation: outcome unknown
    ops: int = 12                 # operations per client
    read_share: float = 0.5
    think: float = 0.2            # mean pause between a client's operations (half are 0)
    grace: float = 30.0           # the run must settle this long after the last fault

    dead_after = Timing.dead_after              # the same definitions as the daemons'
    node_dead_after = Timing.node_dead_after
    lease = Timing.lease
