"""--cpu: the CPU time each process spends per read-fault cycle, main thread apart from the
zmq I/O threads, read from /proc/<os_pid>/task/*/schedstat."""
from __future__ import annotations

import time
from pathlib import Path

from common import READ_OWNER, READER
from measure import read_fault_block


def task_cpu_ns(os_pid: int) -> tuple[int, int]:
    """(main thread, other threads) CPU time of a process, from /proc/OS_PID/task/*/schedstat."""
    main = other = 0
    for task in Path(f"/proc/{os_pid}/task").glob("*"):
        try:
            ns = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if task.name == str(os_pid):
            main += ns
        else:
            other += ns
    return main, other


def cpu_per_cycle(client_of, os_pids: dict[str, int], n: int) -> dict[str, float]:
    """CPU time (us) that each process spends per read-fault cycle (the timed fault plus the
    untimed invalidating write), main thread apart from the zmq I/O threads."""
    state: dict = {}
    read_fault_block(client_of, state, 20, [])
    before = {k: task_cpu_ns(p) for k, p in os_pids.items()}
    c0 = time.thread_time_ns()
    read_fault_block(client_of, state, n, [])
    c1 = time.thread_time_ns()
    after = {k: task_cpu_ns(p) for k, p in os_pids.items()}
    res = {"client (this thread)": (c1 - c0) / n / 1000}
    for k in os_pids:
        res[k] = (after[k][0] - before[k][0]) / n / 1000
        res[k + " io"] = (after[k][1] - before[k][1]) / n / 1000
    return res


def _group(d: dict[str, float], io: bool) -> dict[str, float]:
    """Sum per-process times into the parts a read fault has."""
    g = {"client program": d["client (this thread)"], "reader node 1": 0.0,
         "owner node 0": 0.0, "manager(s)": 0.0, "8 idle nodes": 0.0}
    for k, v in d.items():
        if k.startswith("client") or k.endswith(" io") != io:
            continue
        base = k.removesuffix(" io")
        key = ("reader node 1" if base == f"node{READER}" else
               "owner node 0" if base == f"node{READ_OWNER}" else
               "8 idle nodes" if base.startswith("node") else "manager(s)")
        g[key] += v
    return g


def print_cpu(ours: dict[str, float], raw: dict[str, float]) -> None:
    print("\nCPU time per read-fault cycle (timed fault + untimed invalidating write), us:")
    print(f"  {'process':<16} {'ours main':>10} {'raw main':>9}   {'ours zmq io':>11} "
          f"{'raw zmq io':>10}")
    om, rm = _group(ours, False), _group(raw, False)
    oi, ri = _group(ours, True), _group(raw, True)
    oi["client program"] = ri["client program"] = 0.0     # its zmq thread is not counted
    for k in om:
        print(f"  {k:<16} {om[k]:>10.0f} {rm[k]:>9.0f}   {oi[k]:>11.0f} {ri[k]:>10.0f}")
    print(f"  {'total':<16} {sum(om.values()):>10.0f} {sum(rm.values()):>9.0f}   "
          f"{sum(oi.values()):>11.0f} {sum(ri.values()):>10.0f}")
