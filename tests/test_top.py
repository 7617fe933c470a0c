"""`ivy top` in a real terminal (tmux): the live view shows the managers and nodes, follows a
failover when the serving manager is killed, and quits on q; piped, one snapshot."""
from __future__ import annotations

import threading

from conftest import BIN, ivy, wait_until
from ivyzmq.client import connect
from terminal import Tmux


NAMES = ("primary", "backup", "node0", "node1", "node2")


def rows(screen: str) -> dict[str, list[str]] | None:
    """Each daemon's table row as cells (rich draws │ between cells), or None while the
    screen is not completely drawn."""
    out = {}
    for line in screen.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if cells and cells[0] in NAMES and len(cells) >= 5:
            out[cells[0]] = cells
    return out if set(out) == set(NAMES) else None


def view(term, *needles: str, cond=lambda r: True, what: str = "the view") -> dict:
    """Wait until the screen shows every needle and its rows meet `cond`; the rows."""
    def shown():
        screen = term.screen()
        got = rows(screen) if all(n in screen for n in needles) else None
        return got if got and cond(got) else None
    return wait_until(shown, 30, what=lambda: f"{what}; screen:\n{term.screen()}")


def test_top_follows_a_failover_live_and_quits_on_q(clusters, tmp_path):
    run = clusters.make("top", heartbeat_interval=0.1, retry_timeout=0.1, metrics=True,
                        failback=False)
    term = Tmux(tmp_path, [str(BIN / "ivy"), "top", "-c", run.config_path, "--run-dir",
                           str(run.path), "--interval", "0.2"], width=150, height=40)
    stop = threading.Event()

    def reads() -> None:           # some load, so that ops/s and faults/s move
        with connect(run.cluster, 2) as two, connect(run.cluster, 0) as zero:
            while not stop.is_set():
                two.read(1)
                zero.write(1, b"x")
    load = threading.Thread(target=reads, daemon=True)
    try:
        r = view(term, "ivy top", "serving: primary@", "last failover: none seen")
        assert (r["primary"][1], r["primary"][3]) == ("active", "serving")
        assert (r["backup"][1], r["backup"][3]) == ("passive", "no")
        assert r["node2"][1] == "idle" and r["node2"][2] == "3"     # follows the primary
        load.start()
        view(term, cond=lambda r: r["node2"][4] not in ("-", "0.0")
             and r["node0"][5] not in ("-", "0.0"), what="ops/s and faults/s above 0")
        run.procs.kill("primary")
        r = view(term, "serving: backup@", "last failover: primary@", "-> backup@",
                 "without a serving manager",
                 cond=lambda r: r["primary"][1] == "not answering")
        assert (r["backup"][1], r["backup"][3]) == ("active", "serving")
        stop.set()
        load.join(15)
        term.keys("q")
        term.wait_for("[exit 0]")
    finally:
        stop.set()
        term.close()


def test_top_piped_prints_one_snapshot(clusters):
    run = clusters.make("topsnap", heartbeat_interval=0.2)
    proc = ivy(run, "top")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("ivy top") == 1 and "serving: primary@" in out
    assert "q quits" not in out
    r = rows(out)
    assert r["primary"][1] == "active" and r["node0"][1] == "idle"
    assert r["node0"][4] == "-"      # no metrics in this config: no rates
