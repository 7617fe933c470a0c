"""Starting and signalling the daemons of one config on this machine.

A run directory (default `.ivy/<config name>/`) records each daemon started: its
operating-system process id (`os_pid`), command line and log file. Only those processes are
ever signalled, and only while their command line still names this run's config, so a
recycled os_pid is never hit. Nothing here talks to a daemon: `ivyzmq.deploy` adds that.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from ivyzmq.config import Cluster


def default_run_dir(config_path: str) -> Path:
    env = os.environ.get("IVY_RUN_DIR")
    return Path(env) if env else Path(".ivy") / Path(config_path).stem


def process_alive(os_pid: int, *needles: bytes) -> bool:
    """The process runs (not a zombie) and its command line holds every needle."""
    try:
        cmd = Path(f"/proc/{os_pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{os_pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False      # dead, only not yet reaped
    return all(n in cmd for n in needles)


def resident_bytes(os_pid: int) -> int:
    """The process's resident memory (VmRSS), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{os_pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _script(name: str) -> list[str]:
    """The console script beside this interpreter, else the module run by it."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    module = {"ivy-cm": "ivyzmq.manager.daemon", "ivy-node": "ivyzmq.node.daemon"}[name]
    return [sys.executable, "-m", module]


def _wait_gone(rec: dict, alive, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while alive(rec) and time.monotonic() < deadline:
        time.sleep(0.01)   # poll


class Supervisor:
    """The daemons this run directory started: records, start, signals, stop."""

    def __init__(self, config_path: str, cluster: Cluster, path: Path,
                 log_level: str = "INFO", prefix: dict[str, list[str]] | None = None,
                 log_format: str = "text"):
        self.config_path = str(Path(config_path).resolve())
        self.cluster, self.path, self.log_level = cluster, Path(path), log_level
        self.log_format = log_format
        self.prefix = prefix or {}    # name -> argv put before the daemon's (e.g. setpriv)

    @property
    def record_file(self) -> Path:
        return self.path / "pids.json"

    def records(self) -> dict[str, dict]:
        try:
            return json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, recs: dict[str, dict]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.record_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(recs, indent=1))
        tmp.replace(self.record_file)

    def ours(self, rec: dict) -> bool:
        """Is the recorded process still the daemon we started (not a recycled os_pid)?"""
        return process_alive(rec["os_pid"], self.config_path.encode(), rec["name"].encode())

    def running(self) -> dict[str, dict]:
        return {name: rec for name, rec in self.records().items() if self.ours(rec)}

    def command(self, name: str) -> list[str]:
        pid = self.cluster.pid_of(name)
        script = "ivy-node" if pid < len(self.cluster.nodes) else "ivy-cm"
        return self.prefix.get(name, []) + _script(script) + [
            name, "-c", self.config_path, "--log-file", str(self.path / f"{name}.log"),
            "--log-level", self.log_level, "--log-format", self.log_format]

    def start(self, name: str) -> dict:
        import subprocess       # here: `ivy read` and `ivy status` start nothing
        self.path.mkdir(parents=True, exist_ok=True)
        cmd = self.command(name)
        with open(self.path / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        rec = {"name": name, "os_pid": proc.pid, "cmd": cmd, "started": time.time(),
               "log": str(self.path / f"{name}.log")}
        recs = self.records()
        recs[name] = rec
        self._save(recs)
        return rec

    def signal(self, name: str, sig: int) -> bool:
        rec = self.records().get(name)
        if rec is None or not self.ours(rec):
            return False
        os.kill(rec["os_pid"], sig)
        return True

    def kill(self, name: str) -> bool:
        """SIGKILL, and wait until the process is gone."""
        rec = self.records().get(name)
        if not self.signal(name, signal.SIGKILL):
            return False
        _wait_gone(rec, self.ours, 5.0)
        return True

    def stop(self, name: str, timeout: float = 5.0) -> None:
        """SIGTERM (after SIGCONT: a paused daemon cannot handle it), SIGKILL if it lingers."""
        rec = self.records().get(name)
        if rec is None or not self.ours(rec):
            return
        os.kill(rec["os_pid"], signal.SIGCONT)
        os.kill(rec["os_pid"], signal.SIGTERM)
        _wait_gone(rec, self.ours, timeout)
        if self.ours(rec):
            os.kill(rec["os_pid"], signal.SIGKILL)
            _wait_gone(rec, self.ours, 2.0)

    def down(self) -> list[str]:
        stopped = list(self.running())
        for name in stopped:
            self.stop(name)
        self.record_file.unlink(missing_ok=True)
        return stopped
