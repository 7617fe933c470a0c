"""Progress bars on long runs: drawn on a terminal (a real one, in tmux), never when the
output is piped or in CI."""
from __future__ import annotations

import os
import pty
import subprocess
import sys

from conftest import BIN
from ivyzmq import progress
from terminal import Tmux


def test_bars_only_on_a_terminal_and_never_in_ci(monkeypatch):
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            monkeypatch.delenv("CI", raising=False)
            assert progress.wanted(tty)
            monkeypatch.setenv("CI", "true")
            assert not progress.wanted(tty)
    finally:
        os.close(master)
    monkeypatch.delenv("CI", raising=False)
    r, w = os.pipe()
    with os.fdopen(w, "w") as pipe:
        assert not progress.wanted(pipe)
    os.close(r)


def test_sim_shows_a_bar_with_rate_and_eta_in_a_terminal(tmp_path):
    term = Tmux(tmp_path, [str(BIN / "ivy"), "sim", "--seeds", "5000", "--jobs", "1"])
    try:
        screen = term.wait_for("sim", "seeds/s", "eta", "/5000")
        line = next(ln for ln in screen.splitlines() if "seeds/s" in ln)
        done = int(line.split("/5000")[0].split()[-1])
        assert 0 < done < 5000, line
    finally:
        term.close()


def test_piped_output_has_no_bar():
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.run([sys.executable, "-m", "ivyzmq.cli", "sim", "--seeds", "30",
                           "--jobs", "1"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "seeds run: 30" in proc.stdout
