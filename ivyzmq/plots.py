"""Pictures of runs under faults (`ivy experiment X --plot`, `ivy chaos --plot`): completed
operations per second over time with each fault marked and the spans without a serving
manager shaded, and the latency percentiles beneath, one column per run.

matplotlib is the optional extra `plot` (`pip install ivyzmq[plot]`; `make test` installs
it): nothing else in ivyzmq needs it, so `make run` and the daemons do without. It is
imported only here, with the non-interactive Agg backend, so a plot never needs a display.

What was drawn is read back from the figure before saving (the fault markers and shaded
spans actually on the axes) and stored in the PNG's Description text, so that a test or a
script can check the picture's content without looking at pixels.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field

from ivyzmq.history import Op

FAULT_COLOURS = {"kill": "#d62728", "restart": "#2ca02c", "pause": "#ff7f0e",
                 "resume": "#17becf", "cut": "#9467bd", "heal": "#8c564b"}
PERCENTILES = (50, 90, 99)


def missing() -> str | None:
    """Why plots cannot be drawn here (None: they can)."""
    if importlib.util.find_spec("matplotlib") is None:
        return "matplotlib is not installed (pip install 'ivyzmq[plot]')"
    return None


@dataclass
class Panel:
    """One run: its operations, faults and outages, times in seconds from its start."""

    label: str
    ops: list[Op]
    t0: float                                   # monotonic time of the run's start
    end: float                                  # length of the run (s)
    faults: list[tuple[float, str, str]] = field(default_factory=list)  # (t, action, target)
    outages: list[tuple[float, float]] = field(default_factory=list)    # no manager served


def _bins(end: float) -> tuple[float, int]:
    width = max(0.25, end / 80)
    return width, max(1, int(end / width) + 1)


def series(panel: Panel) -> tuple[list[float], list[float], dict[int, list[float]]]:
    """Bin centres, completed ok operations per second, and per percentile the latency (ms)
    of the operations that ended in each bin (nan where none did)."""
    width, n = _bins(panel.end)
    done: list[list[float]] = [[] for _ in range(n)]
    for op in panel.ops:
        if op.outcome == "ok" and op.end is not None and op.client >= 0:
            k = int((op.end - panel.t0) / width)
            if 0 <= k < n:
                done[k].append((op.end - op.start) * 1000)
    centres = [(k + 0.5) * width for k in range(n)]
    rate = [len(d) / width for d in done]
    pcts = {q: [_pct(sorted(d), q) for d in done] for q in PERCENTILES}
    return centres, rate, pcts


def _pct(vals: list[float], q: int) -> float:
    if not vals:
        return float("nan")
    return vals[min(len(vals) - 1, max(0, round(q / 100 * len(vals)) - 1))]


def _draw(ax_tp, ax_lat, panel: Panel) -> None:
    centres, rate, pcts = series(panel)
    ax_tp.plot(centres, rate, color="#1f77b4", lw=1.2, label="ok ops/s")
    for q, style in zip(PERCENTILES, ("-", "--", ":")):
        ax_lat.plot(centres, pcts[q], color="#333", ls=style, lw=1, label=f"p{q}")
    top = max(rate + [1.0]) * 1.15
    ax_tp.set_ylim(0, top)
    for a, b in panel.outages:
        ax_tp.axvspan(a, b, color="#999", alpha=0.3, lw=0, gid="no-manager")
        ax_lat.axvspan(a, b, color="#999", alpha=0.3, lw=0)
    for t, action, target in panel.faults:
        colour = FAULT_COLOURS.get(action, "black")
        ax_tp.axvline(t, color=colour, ls="--", lw=1, gid=f"fault {action} {target}")
        ax_lat.axvline(t, color=colour, ls="--", lw=0.6)
        ax_tp.text(t, top * 0.98, f" {action} {target}", rotation=90, va="top",
                   fontsize=7, color=colour)
    ax_tp.set_title(panel.label, fontsize=10)
    ax_tp.set_label("throughput")
    ax_tp.set_ylabel("completed ops/s")
    ax_lat.set_ylabel("latency (ms)")
    ax_lat.set_xlabel("seconds from the start of the run")
    if any(v == v for vals in pcts.values() for v in vals):
        ax_lat.set_yscale("log")
        ax_lat.legend(fontsize=7, loc="upper right")
    for ax in (ax_tp, ax_lat):
        ax.set_xlim(0, panel.end)
        ax.grid(alpha=0.3)


def drawn(fig) -> list[dict]:
    """Per run (column), what the figure shows: its fault markers and no-manager spans."""
    out = []
    for ax in (ax for ax in fig.axes if ax.get_label() == "throughput"):
        faults = [ln.get_gid().removeprefix("fault ") for ln in ax.lines
                  if (ln.get_gid() or "").startswith("fault ")]
        spans = [p for p in ax.patches if p.get_gid() == "no-manager"]
        out.append({"label": ax.get_title(), "faults": faults, "no_manager_spans": len(spans)})
    return out


def figure(panels: list[Panel], title: str):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(max(6.0, 5.5 * len(panels)), 6.0), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False, sharex="col",
                        gridspec_kw={"height_ratios": [3, 2]})
    for k, panel in enumerate(panels):
        _draw(axes[0][k], axes[1][k], panel)
    fig.suptitle(title + "  (shaded: no serving manager; dashed: faults)", fontsize=11)
    return fig


def write_png(path: str, panels: list[Panel], title: str) -> list[dict]:
    """Draw the runs into a PNG at `path`; return what was drawn (also in the PNG)."""
    fig = figure(panels, title)
    shown = drawn(fig)
    fig.savefig(path, dpi=110, metadata={"Description": json.dumps(shown)})
    return shown


def panel(label: str, ops: list[Op], t0: float, t1: float, events, spans) -> Panel:
    """A Panel from what a program measured on the monotonic clock: the run [t0, t1], the
    nemesis's events (`.t`, `.action`, `.target`) and the monitor's no-manager spans."""
    end = max([t1] + [ev.t for ev in events]) - t0 + 0.25
    return Panel(label, ops, t0, end, [(ev.t - t0, ev.action, ev.target) for ev in events],
                 [(a - t0, b - t0) for a, b in spans])
