"""The trace as a message sequence diagram: one lane per process, one arrow per message
labelled with its type and page, the arrows of one operation on one coloured band.

Hand-written SVG (no drawing library): a diagram of 4 messages and one of 400 are the same
few element kinds, and the file opens in any browser. Every arrow is a `<g class="msg">`
carrying the row's fields as data attributes, so tests (and scripts) can read the diagram
back and compare it with the trace. The HTML page wraps the same SVG with a heading and a
legend, for a browser tab.

Readable at 400 messages: rows have a fixed height (the diagram grows downwards, a browser
scrolls it), lane headings are repeated at the bottom, and every arrow has a tooltip with
its clock, rid and operation.
"""
from __future__ import annotations

from html import escape

from ivyzmq import protocol as P
from ivyzmq import tracing

LANE = 120          # px between lanes
ROW = 22            # px per message
TOP = 56            # px above the first message: lane headings
LEFT = 70           # px left of the first lane: operation labels
# One colour per operation, cycling; chosen to stay apart on white and in grey print.
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2"]


def _lanes(rows: list[P.TraceRow], names: dict[int, str]) -> list[int]:
    """Every process of the cluster that the rows name, in pid order (nodes, then managers)."""
    return sorted(set(names) | {r.sender for r in rows} | {r.to for r in rows})


def _bands(rows: list[P.TraceRow]) -> list[tuple[int, int, tracing.OpKey]]:
    """Runs of consecutive rows of one operation: (first index, last index, operation)."""
    out: list[tuple[int, int, tracing.OpKey]] = []
    for i, r in enumerate(rows):
        key = tracing.op_key(r)
        if out and out[-1][2] == key:
            out[-1] = (out[-1][0], i, key)
        else:
            out.append((i, i, key))
    return out


def _heading(x: float, y: float, pid: int, names: dict[int, str]) -> str:
    name = names.get(pid, str(pid))
    return (f'<text class="lane" x="{x}" y="{y}" text-anchor="middle">{escape(name)}</text>'
            f'<text class="pid" x="{x}" y="{y + 13}" text-anchor="middle">{pid}</text>')


def _arrow(i: int, r: P.TraceRow, x: dict[int, float], op: int) -> str:
    y = TOP + (i + 1) * ROW
    x1, x2 = x[r.sender], x[r.to]
    colour = COLOURS[(op - 1) % len(COLOURS)]
    mid = (x1 + x2) / 2
    tip = (f"{r.type} page {r.page}: {r.sender} -> {r.to}, requester {r.requester}, "
           f"rid {r.rid}, lc {r.lc}, op {op}")
    return (f'<g class="msg" data-type="{escape(r.type)}" data-from="{r.sender}" '
            f'data-to="{r.to}" data-page="{r.page}" data-requester="{r.requester}" '
            f'data-op="{op}"><title>{escape(tip)}</title>'
            f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" '
            f'marker-end="url(#head{(op - 1) % len(COLOURS)})"/>'
            f'<text x="{mid}" y="{y - 4}" text-anchor="middle">{escape(r.type)} p{r.page}'
            f'</text></g>')


def _defs() -> str:
    heads = "".join(
        f'<marker id="head{k}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{c}"/></marker>' for k, c in enumerate(COLOURS))
    style = ("text{font-family:sans-serif;font-size:11px;fill:#222}"
             ".lane{font-size:13px;font-weight:bold}.pid{fill:#777}"
             ".oplabel{font-size:11px;fill:#555}line{stroke-width:1.5}"
             ".life{stroke:#bbb;stroke-width:1;stroke-dasharray:4 3}")
    return f"<defs>{heads}</defs><style>{style}</style>"


def svg(rows: list[P.TraceRow], names: dict[int, str],
        nums: dict[tracing.OpKey, int] | None = None) -> str:
    """The diagram of `rows` (in the order given: the merged trace, or a part of it with
    the whole trace's operation numbers `nums`)."""
    nums = tracing.numbers(rows) if nums is None else nums
    lanes = _lanes(rows, names)
    x = {pid: LEFT + LANE / 2 + k * LANE for k, pid in enumerate(lanes)}
    width = LEFT + LANE * len(lanes) + 10
    bottom = TOP + (len(rows) + 1) * ROW
    height = bottom + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">', _defs(),
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for first, last, key in _bands(rows):
        op = nums[key]
        y0 = TOP + (first + 0.5) * ROW
        colour = COLOURS[(op - 1) % len(COLOURS)]
        parts.append(f'<rect class="band" data-op="{op}" x="4" y="{y0}" width="{width - 8}" '
                     f'height="{(last - first + 1) * ROW}" fill="{colour}" '
                     f'fill-opacity="0.07"/><text class="oplabel" x="8" y="{y0 + 14}">'
                     f'op {op}</text>')
    for pid in lanes:
        parts.append(f'<line class="life" x1="{x[pid]}" y1="{TOP + 4}" x2="{x[pid]}" '
                     f'y2="{bottom}"/>')
        parts.append(_heading(x[pid], 22, pid, names))
        parts.append(_heading(x[pid], bottom + 16, pid, names))
    parts += [_arrow(i, r, x, nums[tracing.op_key(r)]) for i, r in enumerate(rows)]
    parts.append("</svg>")
    return "\n".join(parts)


def html(rows: list[P.TraceRow], names: dict[int, str],
         nums: dict[tracing.OpKey, int] | None = None, title: str = "ivyzmq trace") -> str:
    """A page with the diagram and a line saying what it shows."""
    nums = tracing.numbers(rows) if nums is None else nums
    ops = len({tracing.op_key(r) for r in rows})
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>body{{font-family:sans-serif;"
            "margin:1em}</style></head><body>"
            f"<h1>{escape(title)}</h1><p>{len(rows)} messages in {ops} operation"
            f"{'' if ops == 1 else 's'}; one "
            "lane per process, one arrow per message (type and page), one band per "
            "operation (a fault: the messages sharing its requester and rid). Hover an "
            f"arrow for its clock and rid.</p>\n{svg(rows, names, nums)}\n</body></html>\n")
