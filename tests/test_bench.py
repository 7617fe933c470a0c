"""The benchmark's CI slice: `bench/bench.py --quick` runs against real daemons and a raw
pyzmq relay and reports every row. No timing is asserted (speed is for the table to show,
not for a test to guess); what is checked is that every measurement produced samples."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ivyzmq import plots
from test_pictures import png_description

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_reports_every_row(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "cdf.png"
    cdf = [] if plots.missing() else ["--cdf", str(png)]
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick",
                           "--json", str(out), *cdf], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "read fault [1 mgr]" in proc.stdout and "embedded read hit" in proc.stdout
    rows = json.loads(out.read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    names = " ".join(json.dumps(r) for r in rows)
    for what in ("read fault", "write fault, 0 copies", "write fault, 4 copies",
                 "throughput", "primary+backup", "embedded read hit",
                 "read fault, metrics on / off", "write hit at owner, replicas 0",
                 "write hit at owner, replicas 1", "write fault, replicas 1",
                 "cas hit at owner", "add hit at owner", "cas fault, 0 copies",
                 "add fault, 0 copies", "lock hand-over", "read fault, curve / none",
                 "write fault, curve / none"):
        assert what in names, f"no row for {what!r}"
    assert not any(r["name"].startswith("failover") for r in rows)   # not in a quick run
    if cdf:             # a CDF panel per latency row, each with both systems' samples
        shown = png_description(png.read_bytes())
        faults = [r for r in rows
                  if r["name"].startswith(("read fault", "write fault", "write hit", "cas ",
                                           "add ", "lock "))]
        assert [(s["row"], s["ours"], s["raw"]) for s in shown] == [
            (r["name"], r["ours"]["n"], r["raw"]["n"]) for r in faults]
