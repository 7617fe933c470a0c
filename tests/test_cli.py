"""The `ivy` command as a user runs it: a real subprocess per command, real daemons started
by `ivy up` itself and stopped by `ivy down` (the fixture stops them too if a test fails)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, cluster_dict, ivy, pid_gone, wait_until
from ivyzmq import cli, programs
from ivyzmq import config as C
from ivyzmq import keys as K
from ivyzmq import protocol as P


def one_line(proc) -> str:
    err = proc.stderr.strip()
    assert err and "\n" not in err and "Traceback" not in err, proc.stderr
    return err


def daemons_of(config_path: str) -> list[int]:
    """Pids of every process on this machine whose command line names this config."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if config_path.encode() in cmd.split(b"\0") and state != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def test_up_twice_json_readouts_and_down(clusters):
    run = clusters.make("cli", up=False, heartbeat_interval=0.2)
    names = run.cluster.daemon_names()

    proc = ivy(run, "up")
    assert proc.returncode == 0, proc.stderr
    made, started = proc.stdout.splitlines()
    assert made == f"made CURVE keys for {', '.join(names)}, client in {run.cluster.keys_dir}/"
    assert started.startswith("started " + ", ".join(names))
    recs = run.procs.records()
    assert sorted(recs) == sorted(names)
    pids = sorted(rec["os_pid"] for rec in recs.values())
    assert daemons_of(run.config_path) == pids

    # a second `ivy up` starts nothing
    proc = ivy(run, "up")
    assert proc.returncode != 0
    assert "already running" in one_line(proc)
    assert daemons_of(run.config_path) == pids
    assert sorted(rec["os_pid"] for rec in run.procs.records().values()) == pids

    # status and trace as JSON
    status = json.loads(ivy(run, "status", "--json").stdout)
    assert [s["name"] for s in status] == names
    assert all(s["answering"] for s in status)
    primary = status[0]
    assert primary["kind"] == "manager" and primary["serving"] is True
    assert primary["pages"][1] == {"page": 1, "owner": 1, "copy_set": []}
    assert status[2]["name"] == "node0"
    assert status[2]["pages"][0] == {"page": 0, "is_owner": True, "access": "ReadWrite"}
    assert json.loads(ivy(run, "trace", "--json", "--clear").stdout) == []

    proc = ivy(run, "write", 0, 1, "hi there")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    proc = ivy(run, "read", 2, 1)
    assert (proc.returncode, proc.stdout) == (0, "hi there\n")
    proc = ivy(run, "write", 1, 1, "HI", "--offset", 3)
    assert proc.returncode == 0
    got = json.loads(ivy(run, "read", 2, 1, "--json").stdout)
    assert got == {"node": 2, "page": 1, "text": "hi HIere", "hex": b"hi HIere".hex()}
    trace = json.loads(ivy(run, "trace", "--json").stdout)
    hops = [(t["type"], t["from_name"], t["to_name"]) for t in trace]
    assert hops[0] == ("WriteRequest", "node0", "primary")
    assert hops.index(("WriteForward", "primary", "node1")) < \
        hops.index(("WritePage", "node1", "node0")) < \
        hops.index(("WriteConfirmation", "node0", "primary"))
    assert [t["lc"] for t in trace] == sorted(t["lc"] for t in trace)
    assert all(set(t) == {"lc", "type", "from", "to", "page", "requester", "rid", "op",
                          "from_name", "to_name"} for t in trace)

    # failures: non-zero exit, one line saying why
    proc = ivy(run, "read", 0, 9)
    assert proc.returncode != 0 and "out of range 0..4" in one_line(proc)
    proc = ivy(run, "read", 5, 1)
    assert proc.returncode == 2 and "node 5 out of range 0..2" in one_line(proc)
    proc = ivy(run, "write", 0, 1, "x" * 5000)
    assert proc.returncode != 0 and "do not fit" in one_line(proc)
    proc = ivy(run, "kill", "nosuch")
    assert proc.returncode == 2 and "no daemon named 'nosuch'" in one_line(proc)

    # down stops exactly what up started, a paused daemon too
    assert ivy(run, "pause", "node1").returncode == 0
    proc = ivy(run, "down")
    assert proc.returncode == 0 and proc.stdout.startswith("stopped")
    for pid in pids:
        assert pid_gone(pid, run.config_path), f"daemon {pid} still runs"
    assert daemons_of(run.config_path) == []
    assert not run.procs.record_file.exists()
    proc = ivy(run, "down")
    assert proc.returncode == 0 and "nothing was running" in proc.stdout


def test_up_only_starts_the_named_daemons(clusters):
    run = clusters.make("only", up=False, heartbeat_interval=0.2)
    proc = ivy(run, "up", "--only", "node0,node1,node2")
    assert proc.returncode == 0, proc.stderr
    assert set(run.procs.running()) == {"node0", "node1", "node2"}
    assert run.admin.query("primary", P.StatusQuery(), timeout=0.3) is None
    assert run.admin.query("backup", P.StatusQuery(), timeout=0.3) is None
    assert len(daemons_of(run.config_path)) == 3

    proc = ivy(run, "up", "--only", "node7")
    assert proc.returncode == 2 and "no daemon named 'node7'" in one_line(proc)
    assert len(daemons_of(run.config_path)) == 3

    proc = ivy(run, "up", "--only", "primary")       # another machine's share, say
    assert proc.returncode == 0, proc.stderr
    assert set(run.procs.running()) == {"primary", "node0", "node1", "node2"}
    assert run.admin.query("backup", P.StatusQuery(), timeout=0.3) is None
    wait_until(lambda: run.admin.query("primary", P.StatusQuery()).serving, 10,
               what="the primary to serve")
    proc = ivy(run, "write", 2, 0, "only")
    assert proc.returncode == 0, proc.stderr
    assert ivy(run, "read", 1, 0).stdout == "only\n"

    proc = ivy(run, "up")                            # the rest
    assert proc.returncode == 0 and proc.stdout.startswith("started backup")
    assert set(run.procs.running()) == set(run.cluster.daemon_names())


def _config(tmp_path: Path, name: str, **kw) -> Path:
    """A config of a cluster that is not running (but has run: its keys exist)."""
    data = cluster_dict(**kw)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    K.ensure(C.load(path))
    return path


def test_read_on_a_stopped_cluster_times_out(tmp_path):
    path = _config(tmp_path, "stopped", op_timeout=1.0)
    t0 = time.monotonic()
    proc = subprocess.run([BIN / "ivy", "read", "0", "1", "-c", path], capture_output=True,
                          text=True, timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 1 and proc.stdout == ""
    err = one_line(proc)
    assert "IvyTimeout" in err and "within 1 s" in err
    proc = subprocess.run([BIN / "ivy", "write", "0", "1", "x", "-c", path],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "IvyTimeout" in one_line(proc)


def test_status_of_a_stopped_cluster_fails(tmp_path):
    path = _config(tmp_path, "lonely", nodes=1, pages=2, managers=("primary",))
    proc = subprocess.run([BIN / "ivy", "status", "-c", path, "--run-dir", tmp_path / "run"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "no daemon answers" in one_line(proc)
    assert "cm_primary: not answering" in proc.stdout
    assert "process_0: not answering" in proc.stdout


def test_bad_page_is_refused_before_any_traffic(tmp_path):
    path = _config(tmp_path, "range", op_timeout=5.0)   # nothing runs: a request would hang
    for args, words in [(["read", "0", "5"], ["page 5", "out of range 0..4"]),
                        (["read", "0", "-1"], ["out of range 0..4"]),
                        (["write", "0", "5", "x"], ["out of range 0..4"])]:
        t0 = time.monotonic()
        proc = subprocess.run([BIN / "ivy", *args, "-c", path], capture_output=True,
                              text=True, timeout=30)
        assert time.monotonic() - t0 < 4
        assert proc.returncode != 0
        err = one_line(proc)
        assert all(w in err for w in words), err


def test_bad_arguments_exit_2(tmp_path):
    path = _config(tmp_path, "args")
    for args in (["read", "zero", "1"], ["frobnicate"], []):
        proc = subprocess.run([BIN / "ivy", *args, "-c", path] if args else [BIN / "ivy"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2
        assert "usage:" in proc.stderr and "Traceback" not in proc.stderr


SUBCOMMANDS = sorted(next(a for a in cli.parser()._actions
                          if a.dest == "cmd").choices)
MODULES = {name: f"ivyzmq.programs.{name}" for name in programs.NAMES}


def _missing(module: str | None) -> bool:
    try:
        return module is not None and importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


@pytest.fixture(scope="module")
def helps():
    """`ivy --help` and `ivy CMD --help` for every subcommand, run side by side."""
    procs = {cmd: subprocess.Popen([BIN / "ivy", *([cmd] if cmd else []), "--help"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in ["", *SUBCOMMANDS]}
    out = {}
    for cmd, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        out[cmd] = (proc.returncode, stdout, stderr)
    return out


def test_top_level_help_lists_every_subcommand(helps):
    rc, out, _ = helps[""]
    assert rc == 0 and out.startswith("usage: ivy")
    for cmd in SUBCOMMANDS:
        assert cmd in out
    assert {"up", "down", "status", "read", "write", "trace", "kill", "restart",
            "workload"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("cmd", [
    pytest.param(c, marks=pytest.mark.xfail(
        _missing(MODULES.get(c)), strict=True,
        reason=f"`ivy {c}` is listed but its module {MODULES.get(c)} does not exist: "
               "ImportError traceback")) for c in SUBCOMMANDS])
def test_every_subcommand_has_help(helps, cmd):
    rc, out, err = helps[cmd]
    assert rc == 0, err
    assert out.startswith(f"usage: ivy {cmd}") and "Traceback" not in err
    assert "-h, --help" in out


def test_workload_command(clusters):
    run = clusters.make("wl", nodes=3, pages=3, heartbeat_interval=0.2)
    hist = run.path / "h.jsonl"
    proc = ivy(run, "workload", "--clients", 4, "--ops", 200, "--pages", 2, "--history", hist)
    assert proc.returncode == 0, proc.stderr
    assert "202 operations by 4 clients" in proc.stdout
    assert "202 ok, 0 failed, 0 unknown" in proc.stdout
    assert "checker: linearizable" in proc.stdout
    assert len(hist.read_text().splitlines()) == 202
    proc = subprocess.run([BIN / "ivy", "check", hist], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_trace_of_a_stopped_cluster_fails(tmp_path):
    path = _config(tmp_path, "silent", nodes=1, pages=2, managers=("primary",))
    proc = subprocess.run([BIN / "ivy", "trace", "-c", path, "--run-dir", tmp_path / "run"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "answer" in one_line(proc)


def test_restart_of_a_node_rejoins_empty(clusters):
    """A restarted node comes back as a new incarnation with an empty memory: it must not
    claim the initial pages it gave away (page 1 moved from node 1 to node 2 before)."""
    run = clusters.make("restart", heartbeat_interval=0.2)
    assert ivy(run, "write", 2, 1, "two").returncode == 0    # page 1 moves from node 1 to 2
    proc = ivy(run, "restart", "node1")
    assert proc.returncode == 0, proc.stderr
    assert ivy(run, "read", 1, 1).stdout == "two\n"
    status = dict(run.status())
    owners = [n for n in range(3) if status[f"node{n}"].pages[1].is_owner]
    assert owners == [2]


def test_homework_random_writes_with_primary_kills(clusters):
    """`make w` in small: random writes by random nodes while the primary is killed and
    restarted at random (real SIGKILL). The printout has the trace, the readouts, the
    faults, `Done in N ms` and the checker's verdict; every write is acknowledged."""
    run = clusters.make("homework", heartbeat_interval=0.1, retry_timeout=0.1)
    proc = ivy(run, "homework", "w", "--ops", 30, "--kill-prob", 0.3, "--restart-prob", 0.5,
               "--seed", 4, timeout=180)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert out.startswith("Type") and "WriteRequest" in out and "WriteConfirmation" in out
    assert "cm_primary:" in out and "cm_backup:" in out and "process_2:" in out
    assert "killed primary" in out                  # the seed makes at least one kill
    assert "30 writes (seed 4): 30 ok, 0 failed, 0 unknown" in out
    assert "checker: linearizable" in out
    assert "Done in " in out
    # the homework restarts a dead primary at the end: control is back with it
    status = dict(run.status())
    assert status["primary"].serving and not status["backup"].serving
