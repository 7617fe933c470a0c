"""The one fault vocabulary (ivyzmq/harness/faults.py): every declared kind is applied by the
simulator's World and by the real Nemesis, or is listed as simulator-only with a reason; the
real nemesis applies a schedule of data in order (with a stand-in deployment, so no process
is started here) and undoes what is left applied."""
from __future__ import annotations

import ast
import signal
import sys
import time
from pathlib import Path

import pytest

from ivyzmq import config as C
from ivyzmq.harness import configs, faults
from ivyzmq.harness.faults import KINDS, SIM_ONLY, UNDO, Await, Delay, Fault
from ivyzmq.harness.monitor import Sample
from ivyzmq.harness.nemesis import Nemesis
from ivyzmq.sim.world import SimConfig, World


def test_every_kind_is_declared_once_with_a_meaning():
    assert list(KINDS) == [k.name for k in KINDS.values()]
    assert all(k.meaning and k.args for k in KINDS.values())
    assert set(UNDO) | set(UNDO.values()) <= set(KINDS)
    assert all(SIM_ONLY[k] for k in SIM_ONLY) and set(SIM_ONLY) <= set(KINDS)
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(1.0, "crash", 3)
    with pytest.raises(ValueError, match="unknown wait"):
        Await("serving", 3)


def test_the_simulator_applies_every_kind():
    assert set(World.FAULTS) == set(KINDS)
    w = World(1, SimConfig(nodes=3, managers=2, pages=2))
    for kind in KINDS:                 # each one really runs (no KeyError, no crash)
        w.faults_left += 1
        w._fault(Fault(0.0, kind, 3, 4 if kind not in ("kill", "restart") else -1))


def test_the_real_nemesis_applies_every_kind_but_the_simulator_only_ones():
    assert set(Nemesis.ACTIONS) == set(KINDS) - set(SIM_ONLY)


def test_the_vocabulary_imports_only_the_standard_library():
    tree = ast.parse(Path(faults.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
            for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}, mods


# -- the real nemesis, against stand-ins ------------------------------------------------------

class FakeProcs:
    def __init__(self, log):
        self.log = log

    def kill(self, name):
        self.log.append(("kill", name))
        return True

    def signal(self, name, sig):
        self.log.append(({signal.SIGSTOP: "stop", signal.SIGCONT: "cont"}[sig], name))
        return True


class FakeDeployment:
    def __init__(self, cluster):
        self.cluster, self.log = cluster, []
        self.procs = FakeProcs(self.log)

    def restart(self, name):
        self.log.append(("restart", name))


class FakeFirewall:
    def __init__(self, log):
        self.log = log

    def cut(self, a, b):
        self.log.append(("cut", a, b))

    def heal(self, a, b):
        self.log.append(("heal", a, b))


class FakeMonitor:
    """Says the primary serves, then (once anything was hit) that the backup does."""

    interval = 0.01

    def __init__(self):
        self.down: list[str] = []

    def serving_now(self):
        return ["primary"]

    def mark_down(self, name, t):
        self.down.append(name)

    def wait_serving(self, after, exclude=None, only=None, timeout=None, stop=None):
        return Sample(after, after, only or "backup", True, True, 2)

    def latest(self, name):
        return Sample(time.monotonic(), time.monotonic(), name, True)


@pytest.fixture
def rig():
    cluster = C.parse(configs.cluster_dict(nodes=2, pages=2))
    dep = FakeDeployment(cluster)
    return cluster, dep, FakeMonitor(), FakeFirewall(dep.log)


def test_nemesis_runs_a_schedule_of_data_in_order(rig):
    cluster, dep, monitor, firewall = rig
    p, b = cluster.manager_ids           # primary 2, backup 3
    schedule = [Fault(0.0, "kill", p), Await("another_serves", p), Delay(0.01),
                Fault(None, "restart", p), Await("serves", p), Fault(0.05, "pause", b),
                Fault(None, "resume", b), Await("answers", b), Fault(None, "cut", p, b),
                Fault(None, "heal", p, b)]
    nem = Nemesis(dep, monitor, schedule, firewall).start()
    nem.join(timeout=5)                  # the whole schedule: the workload is not over
    assert nem.error is None
    assert dep.log == [("kill", "primary"), ("restart", "primary"), ("stop", "backup"),
                       ("cont", "backup"), ("cut", "primary", "backup"),
                       ("heal", "primary", "backup")]
    assert [(e.action, e.target) for e in nem.events] == [
        ("kill", "primary"), ("restart", "primary"), ("pause", "backup"),
        ("resume", "backup"), ("cut", "primary<->backup"), ("heal", "primary<->backup")]
    assert nem.events[0].serving and not nem.events[2].serving
    assert monitor.down == ["primary", "backup"]
    assert not (nem.killed or nem.paused or nem.cut)


def test_nemesis_starts_no_timed_fault_after_the_workload_but_repairs(rig):
    cluster, dep, monitor, firewall = rig
    p, b = cluster.manager_ids
    schedule = [Fault(0.0, "kill", p), Fault(None, "pause", b), Fault(None, "cut", p, b),
                Delay(30.0), Fault(None, "restart", p), Fault(60.0, "kill", b)]
    nem = Nemesis(dep, monitor, schedule, firewall).start()
    deadline = time.monotonic() + 5
    while len(dep.log) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)   # poll
    nem.repair()                         # cuts the Delay short; undoes all three faults
    assert dep.log == [("kill", "primary"), ("stop", "backup"), ("cut", "primary", "backup"),
                       ("cont", "backup"), ("heal", "primary", "backup"),
                       ("restart", "primary")]
    assert nem.error is None


def test_nemesis_refuses_what_it_cannot_apply(rig):
    cluster, dep, monitor, firewall = rig
    p, b = cluster.manager_ids
    with pytest.raises(ValueError, match="simulator-only"):
        Nemesis(dep, monitor, [Fault(0.0, "slow", p, b, x=0.1)], firewall)
    with pytest.raises(ValueError, match="needs a firewall"):
        Nemesis(dep, monitor, [Fault(0.0, "cut", p, b)])
    with pytest.raises(ValueError, match="no such manager"):
        Nemesis(dep, monitor, [Fault(0.0, "cut", 0, b)], firewall)
    with pytest.raises(ValueError, match="no such process"):
        Nemesis(dep, monitor, [Fault(0.0, "kill")], firewall)


def test_nemesis_keeps_an_exception_of_its_thread(rig):
    cluster, dep, monitor, firewall = rig

    def broken(name):
        raise OSError("no such process")
    dep.procs.kill = broken
    nem = Nemesis(dep, monitor, [Fault(0.0, "kill", cluster.manager_ids[0])]).start()
    nem.finish(timeout=5)
    assert isinstance(nem.error, OSError)


def test_after_the_workload_the_fault_under_way_still_finishes(rig):
    cluster, dep, monitor, firewall = rig
    p, b = cluster.manager_ids
    schedule = [Fault(0.0, "kill", p), Delay(0.05), Fault(None, "restart", p),
                Fault(30.0, "kill", b)]
    nem = Nemesis(dep, monitor, schedule).start()
    deadline = time.monotonic() + 5
    while not dep.log and time.monotonic() < deadline:
        time.sleep(0.01)   # poll
    t = time.monotonic()
    nem.finish(timeout=5)
    assert dep.log == [("kill", "primary"), ("restart", "primary")]
    assert time.monotonic() - t < 5 and not nem.killed


@pytest.mark.parametrize("which", ["b", "c", "d"])
def test_the_experiments_schedules_are_data_the_nemesis_accepts(rig, which):
    from ivyzmq.programs.experiment_plans import plan
    cluster, dep, monitor, _ = rig
    runs = plan(which, cluster, seed=4, cycles=3, clients=10, ops=100)
    assert runs == plan(which, cluster, seed=4, cycles=3, clients=10, ops=100)
    for run in runs:
        Nemesis(dep, monitor, run.schedule)
        kills = [s for s in run.schedule if isinstance(s, Fault) and s.kind == "kill"]
        assert kills and all(isinstance(s, (Fault, Delay, Await)) for s in run.schedule)


def test_the_chaos_schedule_becomes_faults_with_their_undo(rig):
    from ivyzmq.programs.chaos import faults_of, schedule
    cluster, dep, monitor, firewall = rig
    steps = schedule(5, 14, cluster, partitions=True)
    plan = faults_of(steps, cluster)
    Nemesis(dep, monitor, plan, firewall)
    assert len(plan) == 3 * len(steps)
    for s, (fault, delay, undo) in zip(steps, zip(plan[::3], plan[1::3], plan[2::3])):
        assert (fault.at, delay.seconds, undo.at) == (s.at, s.hold, None)
        assert UNDO[fault.kind] == undo.kind and (fault.a, fault.b) == (undo.a, undo.b)
