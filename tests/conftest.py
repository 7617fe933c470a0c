"""Fixtures for real-process tests: clusters of daemons started through the package's
entry points (the same `ivy-cm` / `ivy-node` that `ivy up` runs), on loopback ports picked
free for each test, always stopped afterwards by the pids this test started."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from ivyzmq import config as C
from ivyzmq.control import RunDir, free_ports

BIN = Path(sys.executable).parent


def cluster_dict(nodes: int = 3, pages: int = 5, managers=("primary", "backup"),
                 **timing) -> dict:
    ports = free_ports(2 * len(managers) + nodes)
    data = {
        "pages": pages, "page_size": 4096,
        "timing": {"heartbeat_interval": 0.5, "liveness": 3, "retry_timeout": 0.5,
                   "retries": 3, "op_timeout": 10.0, **timing},
        "managers": [{"name": m, "endpoint": f"tcp://127.0.0.1:{ports[2 * i]}",
                      "heartbeat": f"tcp://127.0.0.1:{ports[2 * i + 1]}"}
                     for i, m in enumerate(managers)],
        "nodes": [{"id": i, "endpoint": f"tcp://127.0.0.1:{ports[2 * len(managers) + i]}"}
                  for i in range(nodes)],
    }
    return data


class Clusters:
    """Makes clusters for one test and stops every one of them at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.runs: list[RunDir] = []

    def make(self, name: str = "test", up: bool = True, only=None, failback: bool = True,
             **kw) -> RunDir:
        data = cluster_dict(**kw)
        data["failback"] = failback
        path = self.tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        run = RunDir(str(path), C.load(path), self.tmp_path / f"run-{name}", log_level="DEBUG")
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


# -- helpers for real-process tests (appended) ---------------------------------------------------

import subprocess  # noqa: E402
import time  # noqa: E402


def wait_until(cond, timeout: float = 10.0, what="condition", interval: float = 0.02):
    """Poll `cond` until it returns something true (returned) or fail after `timeout` s.
    `what` names the condition in the failure, or is a callable that describes it then."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {text}")
        time.sleep(interval)  # poll


def ivy(run: RunDir, *args, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run the real `ivy` command on `run`'s config and run directory."""
    cmd = [str(BIN / "ivy"), *map(str, args), "-c", run.config_path, "--run-dir", str(run.path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def pid_gone(pid: int, config_path: str) -> bool:
    """The process is gone from /proc, a zombie, or a recycled pid running something else."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z" or config_path.encode() not in cmdline
