"""`bench.py --cdf FILE.png`: the latency distribution of each fault row as a CDF, ours
beside the raw baseline measured in the same run, one panel per row.

A median and a p99 hide the shape: a CDF shows whether ours is slower everywhere (a shift)
or only in its tail (a few slow steps, such as a timer tick). matplotlib is the optional
`plot` extra; `make bench` installs it.
"""
from __future__ import annotations

import json
import math


def write_cdf(path: str, samples: dict[str, tuple[list[float], list[float]]]) -> list[dict]:
    """One panel per row name: the CDFs of ours and raw (microseconds, log scale). Returns
    what was drawn (also stored in the PNG's Description)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    names = list(samples)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    shown = []
    for ax, name in zip([a for line in axes for a in line], names):
        drawn = {"row": name}
        for who, vals, colour in (("ours", samples[name][0], "#1f77b4"),
                                  ("raw", samples[name][1], "#7f7f7f")):
            xs = sorted(vals)
            ax.step(xs, [(k + 1) / len(xs) for k in range(len(xs))], where="post",
                    color=colour, label=f"{who} (n={len(xs)})")
            drawn[who] = len(xs)
        ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("latency (us)")
        ax.set_ylabel("fraction of samples")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        shown.append(drawn)
    for ax in [a for line in axes for a in line][len(names):]:
        ax.set_visible(False)
    fig.suptitle("latency CDF per row: ivyzmq beside the raw pyzmq relay", fontsize=11)
    fig.savefig(path, dpi=100, metadata={"Description": json.dumps(shown)})
    return shown
