"""The experiments of docs/PROTOCOL.md section 8 against real daemons, on a small cluster with the
fast timing (0.1 s heartbeats) so that a run takes seconds: their tables carry every field,
the failovers are timed, the histories are linearizable, and the cluster is left as found."""
from __future__ import annotations

import argparse
import re

import pytest

from ivyzmq import plots
from ivyzmq.programs import experiment
from test_pictures import png_description

FAST = {"heartbeat_interval": 0.1, "retry_timeout": 0.1, "redrive_timeout": 0.5}
COLUMNS = ["run", "ok", "failed", "unknown", "time s", "no-CM s", "kill->serving ms",
           "kill->op ms", "handbacks", "verdict"]


def _args(which: str, ops: int, seed: int = 3, plot=None) -> argparse.Namespace:
    return argparse.Namespace(which=which, clients=10, ops=ops, pages=5, seed=seed,
                              cycles=None, plot=plot)


def _table(out: str) -> dict[str, dict[str, str]]:
    """The final table: {run label: {column: cell}}."""
    lines = out.splitlines()
    head = max(i for i, ln in enumerate(lines) if ln.startswith("run ") and "verdict" in ln)
    assert re.split(r"\s{2,}", lines[head].strip()) == COLUMNS
    rows = {}
    for ln in lines[head + 1:]:
        cells = re.split(r"\s{2,}", ln.strip())
        if len(cells) < len(COLUMNS):
            break
        cells = cells[:len(COLUMNS) - 1] + [" ".join(cells[len(COLUMNS) - 1:])]
        rows[cells[0]] = dict(zip(COLUMNS, cells))
    return rows


def test_experiment_b_times_failover_and_is_linearizable(clusters, tmp_path):
    run = clusters.make("expb", up=False, nodes=3, pages=5, **FAST)
    plot = None if plots.missing() else tmp_path / "b.png"
    res = experiment.experiment(_args("b", ops=200, plot=plot), run)
    rc, out = res.status, res.text()
    assert rc == 0, out
    rows = _table(out)
    assert set(rows) == {"b1 kill", "b2 kill+restart"}, out
    for label, r in rows.items():
        assert r["verdict"] == "linearizable", out
        assert int(r["ok"]) + int(r["failed"]) + int(r["unknown"]) == 205   # + 5 first writes
        assert float(r["time s"]) > 0
        # One clean failover per run, timed both ways; with 0.1 s heartbeats it is quick
        # (well under a second even on a loaded test machine).
        serving, first_op = int(r["kill->serving ms"]), int(r["kill->op ms"])
        assert 0 < serving < 1000, out
        assert first_op >= serving - 50, out
        assert 0 < float(r["no-CM s"]) < 2.0, out
    assert rows["b1 kill"]["handbacks"] == "0"
    assert int(rows["b2 kill+restart"]["handbacks"]) >= 1, out
    assert "verdict: every history linearizable" in out
    assert (run.path / "experiment-b1.jsonl").stat().st_size > 0
    assert run.procs.running() == {}      # it started the cluster, so it stopped it
    if plot is not None:                  # one column per run, its faults marked
        shown = png_description(plot.read_bytes())
        assert [(s["label"], s["faults"]) for s in shown] == [
            (r.label, [f"{e.action} {e.target}" for e in r.events]) for r in res.results]
        assert shown[0]["faults"][0] == "kill primary"
        assert all(s["no_manager_spans"] >= 1 for s in shown)


def test_experiment_a_leaves_a_running_cluster_running(clusters):
    run = clusters.make("expa", up=True, nodes=3, pages=5, **FAST)
    before = {name: rec["os_pid"] for name, rec in run.procs.running().items()}
    res = experiment.experiment(_args("a", ops=300), run)
    rc, out = res.status, res.text()
    assert rc == 0, out
    rows = _table(out)
    assert set(rows) == {"a1 primary only", "a2 primary+backup"}
    assert all(r["verdict"] == "linearizable" for r in rows.values())
    assert all(r["kill->serving ms"] == "-" for r in rows.values())
    m = re.search(r"replication cost: .* = (\d+\.\d+)x", out)
    assert m and float(m.group(1)) > 0, out
    after = run.procs.running()
    assert set(after) == set(before)      # found running, left running
    assert after["primary"]["os_pid"] == before["primary"]
    assert after["backup"]["os_pid"] != before["backup"]   # stopped for (a1), restarted


@pytest.mark.parametrize("replicas", [0, 1])
def test_experiment_e_kills_nodes_and_stays_linearizable(clusters, replicas):
    """(e) on 5 nodes: a node dies and comes back (e1), then a node and the primary (e2).
    Each killed node is seen held dead; with replicas: 0 operations on its pages fail, all
    others go on; with replicas: 1 nothing fails and no page is lost; the backup serves in
    e2 without waiting for the dead node; linearizable."""
    run = clusters.make("expe", up=False, nodes=5, pages=5, replicas=replicas, **FAST)
    args = _args("e", ops=300)
    args.cycles = 1
    res = experiment.experiment(args, run)
    out = res.text()
    assert res.status == 0, out
    rows = _table(out)
    assert set(rows) == {"e1 1x node kill", "e2 node, then primary"}, out
    for r in rows.values():
        assert r["verdict"] == "linearizable", out
        assert int(r["ok"]) > 0, out
    assert int(rows["e2 node, then primary"]["kill->serving ms"].rstrip("*")) > 0, out
    deaths = re.findall(r"kill node\d -> declared dead after (\d+) ms", out)
    assert len(deaths) == 2, out
    assert f"pages lost (replicas: {replicas}): " in out
    if replicas:
        assert "pages lost (replicas: 1): 0" in out, out
        assert all(r["failed"] == "0" for r in rows.values()), out
