"""Fixtures for real-process tests: clusters of daemons started through the package's
entry points (the same `ivy-cm` / `ivy-node` that `ivy up` runs), on loopback ports picked
free for each test, always stopped afterwards by the os_pids this test started."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivyzmq import config as C
from ivyzmq.deploy import Deployment
from ivyzmq.harness import configs
from ivyzmq.supervisor import process_alive

BIN = Path(sys.executable).parent


def cluster_dict(nodes: int = 3, pages: int = 5, managers=("primary", "backup"),
                 **timing) -> dict:
    return configs.cluster_dict(nodes, pages, managers, **timing)


class Clusters:
    """Makes clusters for one test and stops every one of them at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.runs: list[Deployment] = []

    def make(self, name: str = "test", up: bool = True, only=None, failback: bool = True,
             **kw) -> Deployment:
        data = cluster_dict(**kw)
        data["failback"] = failback
        path = configs.write(self.tmp_path / f"{name}.yaml", data)
        run = Deployment(str(path), C.load(path), self.tmp_path / f"run-{name}",
                         log_level="DEBUG")
        self.runs.append(run)
        if up:
            run.up(only)
        return run

    def stop_all(self) -> None:
        for run in self.runs:
            run.down()


@pytest.fixture
def clusters(tmp_path):
    c = Clusters(tmp_path)
    yield c
    c.stop_all()


def poll_until(cond, timeout: float, interval: float = 0.02):
    """Poll `cond` until it returns something true (returned) or `timeout` s pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(interval)  # poll


def wait_until(cond, timeout: float = 10.0, what="condition", interval: float = 0.02):
    """Poll `cond` until it returns something true (returned) or fail after `timeout` s.
    `what` names the condition in the failure, or is a callable that describes it then."""
    value = poll_until(cond, timeout, interval)
    if value is None:
        text = what() if callable(what) else what
        raise AssertionError(f"timed out after {timeout:g} s waiting for {text}")
    return value


def ivy(run: Deployment, *args, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run the real `ivy` command on `run`'s config and run directory."""
    cmd = [str(BIN / "ivy"), *map(str, args), "-c", run.config_path, "--run-dir", str(run.path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def pid_gone(os_pid: int, config_path: str) -> bool:
    """The process is gone, a zombie, or a recycled os_pid running something else."""
    return not process_alive(os_pid, config_path.encode())
