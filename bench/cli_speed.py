#!/usr/bin/env python
"""Wall time of the short `ivy` commands against a running cluster, beside `python -c pass`.

    .venv/bin/python bench/cli_speed.py [--runs N] [--no-bytecode-cache]

Starts a 3-node cluster with a primary and a backup (loopback ports 47100-47199, a config
in a temporary directory) as a Deployment, then runs each command N times (default 20),
the commands taking turns so that other work on the machine hits them alike, and prints
the median wall time, the fastest run and the median CPU time (user + system) of each.
`import zmq, msgspec` is the floor every command stands on. Aim: `ivy read`, `ivy write`
and `ivy status` within 80 ms on 2 cores. The interpreter reads its bytecode from a cache
in the temporary directory, as an installed package would (a first run, untimed, fills
it), unless --no-bytecode-cache leaves the environment alone (with PYTHONDONTWRITEBYTECODE
set and no __pycache__ in the tree, every run then compiles the package again). Every
daemon started is stopped at the end. Separate from bench.py, whose rows compare ours
with raw pyzmq.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ivyzmq.deploy import open_config
from ivyzmq.harness import configs

BASE_PORT = 47100
AIM_MS = 80.0
IVY = str(Path(sys.executable).parent / "ivy")


def write_config(workdir: Path) -> Path:
    """The homework's shape (3 nodes, 5 pages, primary and backup) on fixed ports."""
    data = configs.cluster_dict(3, 5)
    ports = iter(range(BASE_PORT, BASE_PORT + 100))
    for m in data["managers"]:
        m["endpoint"], m["heartbeat"] = (f"tcp://127.0.0.1:{next(ports)}" for _ in "ab")
    for nd in data["nodes"]:
        nd["endpoint"] = f"tcp://127.0.0.1:{next(ports)}"
    return configs.write(workdir / "clispeed.yaml", data)


def commands(config: Path, run_dir: Path) -> dict[str, list[str]]:
    where = ["-c", str(config), "--run-dir", str(run_dir)]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import zmq, msgspec": [sys.executable, "-c", "import zmq, msgspec"],
        "ivy --help": [IVY, "--help"],
        "ivy read 2 1": [IVY, "read", "2", "1", *where],
        "ivy write 2 1 hello": [IVY, "write", "2", "1", "hello", *where],
        "ivy add 2 3 1": [IVY, "add", "2", "3", "1", *where],
        "ivy status": [IVY, "status", *where],
    }


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def time_all(cmds: dict[str, list[str]], runs: int, env: dict) -> dict[str, list[tuple]]:
    """(wall ms, CPU ms) of each run of each command; the commands take turns."""
    times: dict[str, list[tuple]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, argv in cmds.items():
            t0, cpu0 = time.perf_counter(), _cpu()
            proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
            times[name].append(((time.perf_counter() - t0) * 1e3, (_cpu() - cpu0) * 1e3))
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed ({proc.returncode}): {proc.stderr}")
    return times


def print_table(times: dict[str, list[tuple]], cores: int) -> None:
    base = statistics.median(wall for wall, _ in times["python -c pass"])
    print(f"{'command':<22}{'median ms':>10}{'min ms':>9}{'- pass ms':>11}{'cpu ms':>9}   aim")
    for name, runs in times.items():
        wall = [w for w, _ in runs]
        med = statistics.median(wall)
        aim = f"<= {AIM_MS:g} ms: {'ok' if med <= AIM_MS else 'missed'}" \
            if name.split()[1] in ("read", "write", "status") else ""
        print(f"{name:<22}{med:>10.1f}{min(wall):>9.1f}{med - base:>11.1f}"
              f"{statistics.median(c for _, c in runs):>9.1f}   {aim}")
    print(f"({len(times['python -c pass'])} runs each, {cores} cores, load average "
          f"{os.getloadavg()[0]:.2f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--no-bytecode-cache", action="store_true")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ivy-clispeed-"))
    env = dict(os.environ)
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pyc")
    run = open_config(str(write_config(workdir)), workdir / "run")
    try:
        run.up()
        cmds = commands(Path(run.config_path), run.path)
        time_all(cmds, 1, env)              # fills the bytecode cache, makes page 1 hot
        print_table(time_all(cmds, args.runs, env), os.cpu_count() or 0)
    finally:
        run.down()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
