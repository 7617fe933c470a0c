"""Logs people can use: the daemons' `--log-format json` (one JSON object a line, through
`ivy up`), and a program embedding a node gets no log lines unless it asks for them."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ivy


def json_lines(path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines, f"{path} is empty"
    return [json.loads(line) for line in lines]     # every line is one JSON object


def test_ivy_up_passes_json_log_format_to_every_daemon(clusters):
    run = clusters.make("jsonlogs", up=False, heartbeat_interval=0.2)
    proc = ivy(run, "up", "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    assert ivy(run, "read", 2, 1).returncode == 0
    assert ivy(run, "down").returncode == 0
    for name in run.cluster.daemon_names():
        recs = json_lines(run.path / f"{name}.log")
        assert {"time", "level", "daemon", "message"} <= set(recs[0])
        assert {r["daemon"] for r in recs} == {name}
        messages = [r["message"] for r in recs]
        assert any(m.startswith(f"{name} serving at tcp://") for m in messages)
        assert messages[-1] == f"{name} stopped"
        assert json_lines(run.path / f"{name}.out")[0]["level"] == "INFO"   # stderr too


EMBED = """
import sys
from ivyzmq.client import embed
if sys.argv[2] == "enable":
    from loguru import logger
    logger.enable("ivyzmq")
with embed(sys.argv[1], node=0) as mem:
    assert len(mem.read(1)) == 4096      # a fault through the running cluster
print("done")
"""


def test_embed_prints_nothing_unless_the_program_enables_ivyzmq_logging(clusters):
    # The cluster runs without node 0, which each program below hosts (a new incarnation
    # each time: it joins the running cluster, then leaves).
    run = clusters.make("embedquiet", only=["primary", "backup", "node1", "node2"])

    def embed(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", EMBED, run.config_path, mode],
                              capture_output=True, text=True, timeout=60)
    quiet = embed("quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "done\n", "")
    loud = embed("enable")
    assert loud.returncode == 0, loud.stderr
    assert "node0 serving at" in loud.stderr and "node0 stopped" in loud.stderr
