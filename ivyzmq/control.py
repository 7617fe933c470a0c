"""Starting, stopping and querying the daemons of a cluster from the shell or a program.

A run directory (default `.ivy/<config name>/`) records each daemon started: its pid, command
line and log file. Only those processes are ever signalled, and only while their command line
still names this run's config, so a recycled pid is never hit.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import zmq

from ivyzmq import config as C
from ivyzmq import protocol as P
from ivyzmq.client import IvyError, Memory


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n ports free on `host` right now (for generated configs: tests, bench, chaos)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((host, 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def default_run_dir(config_path: str) -> Path:
    env = os.environ.get("IVY_RUN_DIR")
    if env:
        return Path(env)
    return Path(".ivy") / Path(config_path).stem


def _script(name: str) -> list[str]:
    """The console script beside this interpreter, else the module run by it."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    module = {"ivy-cm": "ivyzmq.manager.daemon", "ivy-node": "ivyzmq.node.daemon"}[name]
    return [sys.executable, "-m", module]


class RunDir:
    def __init__(self, config_path: str, cluster: C.Cluster, run_dir: str | Path | None = None,
                 log_level: str = "INFO"):
        self.config_path = str(Path(config_path).resolve())
        self.cluster = cluster
        self.path = Path(run_dir) if run_dir else default_run_dir(config_path)
        self.log_level = log_level
        self.ctx = zmq.Context.instance()

    # -- records -------------------------------------------------------------------------

    @property
    def pid_file(self) -> Path:
        return self.path / "pids.json"

    def records(self) -> dict[str, dict]:
        try:
            return json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, recs: dict[str, dict]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(recs, indent=1))
        tmp.replace(self.pid_file)

    def ours(self, rec: dict) -> bool:
        """Is the recorded pid still the daemon we started (not a recycled pid)?"""
        try:
            cmd = Path(f"/proc/{rec['pid']}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{rec['pid']}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False      # a zombie: dead, only not yet reaped
        return self.config_path.encode() in cmd and rec["name"].encode() in cmd

    def running(self) -> dict[str, dict]:
        return {name: rec for name, rec in self.records().items() if self.ours(rec)}

    # -- lifecycle -----------------------------------------------------------------------

    def command(self, name: str) -> list[str]:
        pid = self.cluster.pid_of(name)
        script = "ivy-node" if pid < len(self.cluster.nodes) else "ivy-cm"
        return _script(script) + [name, "-c", self.config_path, "--log-file",
                                  str(self.path / f"{name}.log"), "--log-level", self.log_level]

    def start(self, name: str) -> dict:
        self.path.mkdir(parents=True, exist_ok=True)
        cmd = self.command(name)
        with open(self.path / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        rec = {"name": name, "pid": proc.pid, "cmd": cmd, "started": time.time(),
               "log": str(self.path / f"{name}.log")}
        recs = self.records()
        recs[name] = rec
        self._save(recs)
        return rec

    def up(self, names: list[str] | None = None, timeout: float = 15.0) -> list[str]:
        """Start the named daemons (default: all) that are not running; wait for answers."""
        names = names or self.cluster.daemon_names()
        running = self.running()
        started = [n for n in names if n not in running]
        for name in started:
            self.start(name)
        self.wait_answering(started, timeout)
        # A manager serves only once every node has reported its table, so without every
        # node (--only, a cluster spread over hosts) there is nothing more to wait for.
        running = set(self.running())
        nodes = {nd.name for nd in self.cluster.nodes}
        if started and nodes <= running and len(running - nodes) > 0:
            self.wait_serving(timeout)
        return started

    def wait_answering(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while self.query(name, P.StatusQuery(), timeout=0.5) is None:
                rec = self.records().get(name)
                if rec and not self.ours(rec):
                    raise IvyError(f"{name} exited at start; see {self.path / (name + '.out')}")
                if time.monotonic() > deadline:
                    raise IvyError(f"{name} did not answer within {timeout:g} s")

    def wait_serving(self, timeout: float) -> str:
        """Wait until some manager serves; return its name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.cluster.managers:
                reply = self.query(m.name, P.StatusQuery(), timeout=0.3)
                if reply is not None and reply[0].serving:
                    return m.name
            time.sleep(0.05)   # poll
        raise IvyError(f"no manager is serving after {timeout:g} s")

    def signal(self, name: str, sig: int) -> bool:
        rec = self.records().get(name)
        if rec is None or not self.ours(rec):
            return False
        os.kill(rec["pid"], sig)
        return True

    def stop(self, name: str, timeout: float = 5.0) -> None:
        rec = self.records().get(name)
        if rec is None or not self.ours(rec):
            return
        os.kill(rec["pid"], signal.SIGCONT)      # a paused daemon cannot handle SIGTERM
        os.kill(rec["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.ours(rec) and time.monotonic() < deadline:
            time.sleep(0.02)   # poll
        if self.ours(rec):
            os.kill(rec["pid"], signal.SIGKILL)
            while self.ours(rec) and time.monotonic() < deadline + 2:
                time.sleep(0.02)   # poll

    def down(self) -> list[str]:
        recs = self.records()
        stopped = [name for name, rec in recs.items() if self.ours(rec)]
        for name in stopped:
            self.stop(name)
        if self.pid_file.exists():
            self.pid_file.unlink()
        return stopped

    def kill(self, name: str) -> bool:
        rec = self.records().get(name)
        if not self.signal(name, signal.SIGKILL):
            return False
        deadline = time.monotonic() + 5
        while self.ours(rec) and time.monotonic() < deadline:
            time.sleep(0.01)   # poll
        return True

    def restart(self, name: str) -> None:
        if name in self.running():
            self.kill(name)
        self.start(name)
        self.wait_answering([name], 15.0)

    # -- queries -------------------------------------------------------------------------

    def query(self, name: str, msg: P.Msg, timeout: float = 1.0):
        """Ask one daemon; None when it does not answer in time."""
        pid = self.cluster.pid_of(name)
        mem = Memory(self.cluster.endpoint(pid), timeout=timeout, ctx=self.ctx)
        try:
            return mem.request(msg)
        except IvyError:
            return None
        finally:
            mem.close()

    def reachable(self) -> list[str]:
        """Daemons worth asking: all but those this run dir started and saw die (a daemon
        started elsewhere, on another host, is always asked)."""
        recs = self.records()
        return [n for n in self.cluster.daemon_names() if n not in recs or self.ours(recs[n])]

    def status(self, timeout: float = 1.0) -> list[tuple[str, P.StatusReply | None]]:
        up = set(self.reachable())
        return [(name, self._first(self.query(name, P.StatusQuery(), timeout))
                 if name in up else None) for name in self.cluster.daemon_names()]

    def trace(self, clear: bool = False, timeout: float = 1.0) -> list[P.TraceRow]:
        rows: list[P.TraceRow] = []
        for name in self.reachable():
            reply = self.query(name, P.TraceQuery(clear=clear), timeout)
            if reply is not None:
                rows.extend(reply[0].rows)
        rows.sort(key=lambda r: (r.lc, r.sender))
        return rows

    @staticmethod
    def _first(reply):
        return None if reply is None else reply[0]
