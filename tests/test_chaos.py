"""`ivy chaos` as a whole: a short seeded slice with 10 nodes, run as its own process (as
`make chaos` runs it). Real daemons, real signals; when root with `ip` and nft or iptables,
a real partition between the managers inside a network namespace the run creates."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from ivyzmq import plots
from test_pictures import png_description, png_summary

DURATION = 14
SEED = 5       # this seed's schedule kills, pauses and (when possible) partitions early


@pytest.fixture(scope="module")
def chaos_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("chaos")
    cmd = [sys.executable, "-m", "ivyzmq.cli", "chaos", "--duration", str(DURATION),
           "--seed", str(SEED), "--nodes", "10", "--clients", "10", "--run-dir", str(run_dir)]
    if plots.missing() is None:
        cmd += ["--plot", str(run_dir / "chaos.png")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DURATION + 120)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return proc, summary, run_dir


def test_schedule_is_seeded_and_covers_every_fault():
    from ivyzmq import config as C
    from ivyzmq.harness import configs
    from ivyzmq.programs import chaos
    cluster = C.parse(configs.cluster_dict(10, 10, timing="fast"))
    a = chaos.schedule(SEED, DURATION, cluster, partitions=True)
    assert a == chaos.schedule(SEED, DURATION, cluster, partitions=True)
    assert a != chaos.schedule(SEED + 1, DURATION, cluster, partitions=True)
    kinds = {(s.action, s.target) for s in a}
    assert {("kill", "primary"), ("kill", "backup"), ("pause", "primary"),
            ("pause", "backup"), ("partition", "managers")} <= kinds
    failover = cluster.timing.dead_after
    for s, nxt in zip(a, a[1:]):
        assert s.hold > failover            # long enough for the backup to take over
        assert nxt.at > s.at + s.hold       # one fault at a time
    assert a[-1].at + a[-1].hold < DURATION


def test_chaos_is_linearizable_and_fails_over(chaos_run):
    proc, summary, run_dir = chaos_run
    assert summary is not None, f"no summary.json; stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["linearizable"] is True, summary["verdict"]
    assert summary["problems"] == []
    assert summary["counts"]["ok"] > 1000
    actions = {e["action"] for e in summary["events"]}
    assert {"kill", "restart", "pause", "resume"} <= actions
    # A failover really happened: a later epoch served, and the backup served in one.
    assert summary["failovers"] >= 1
    assert max(summary["epochs"]) > min(summary["epochs"])
    assert summary["backup_served"] is True
    assert "checker: linearizable" in proc.stdout
    assert (run_dir / "history.jsonl").stat().st_size > 0
    assert summary["netns"] is None or summary["netns"] not in _namespaces()


def test_chaos_partition_cuts_manager_traffic(chaos_run):
    proc, summary, _ = chaos_run
    assert summary is not None, proc.stdout + proc.stderr
    if not summary["partition"]["ran"]:
        pytest.skip(f"no partition: {summary['partition']['reason'] or 'not scheduled'}")
    assert summary["netns"]
    assert summary["partition"]["dropped_packets"] > 0
    assert summary["linearizable"] is True
    assert summary["netns"] not in _namespaces()     # deleted at the end


def test_partition_reason_is_one_line_when_unavailable(chaos_run):
    proc, summary, _ = chaos_run
    assert summary is not None, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("network:"))
    if summary["partition"]["ran"]:
        assert "partitions: nft" in line or "partitions: iptables" in line
    else:
        assert "partitions: skipped (" in line and summary["partition"]["reason"]
        if os.geteuid() == 0 and shutil.which("ip") and (shutil.which("nft")
                                                         or shutil.which("iptables")):
            pytest.fail(f"root with a firewall tool, yet no partition: {line}")


def _namespaces() -> list[str]:
    if not shutil.which("ip"):
        return []
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.strip()]


@pytest.mark.skipif(plots.missing() is not None, reason=plots.missing() or "")
def test_chaos_plot_marks_every_fault_the_nemesis_applied(chaos_run):
    proc, summary, run_dir = chaos_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = (run_dir / "chaos.png").read_bytes()
    (shown,) = png_description(data)
    assert shown["faults"] == [f"{e['action']} {e['target']}" for e in summary["events"]]
    assert len(shown["faults"]) >= 4                  # kills, restarts, pauses, resumes
    assert shown["no_manager_spans"] >= 1             # a failover leaves a gap
    assert summary["plot"]["drawn"] == [shown]
    width, height, colours = png_summary(data)
    assert width > 500 and height > 500 and colours > 5
