"""Pictures: the trace's sequence diagram (its arrows are the trace's rows; it renders in a
real headless browser) and the failover plot (a valid PNG showing the faults and the spans
without a serving manager it was given)."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

import pytest

from conftest import ivy
from ivyzmq import plots, sequence, tracing
from ivyzmq import protocol as P
from ivyzmq.history import Op

NAMES = {0: "node0", 1: "node1", 2: "node2", 3: "primary", 4: "backup"}
SVG = "{http://www.w3.org/2000/svg}"
needs_matplotlib = pytest.mark.skipif(plots.missing() is not None,
                                      reason=plots.missing() or "")


def arrows(svg_text: str) -> list[dict]:
    """The diagram read back: one dict per arrow, with its line's coordinates."""
    root = ET.fromstring(svg_text)
    out = []
    for g in root.iter(SVG + "g"):
        if g.get("class") == "msg":
            line = g.find(SVG + "line")
            out.append({k[5:]: g.get(k) for k in g.keys() if k.startswith("data-")}
                       | {"x1": float(line.get("x1")), "x2": float(line.get("x2")),
                          "y": float(line.get("y1"))})
    return out


def lane_x(svg_text: str) -> dict[str, float]:
    root = ET.fromstring(svg_text)
    return {t.text: float(t.get("x")) for t in root.iter(SVG + "text") if t.get("class") == "lane"}


def random_rows(n: int) -> list[P.TraceRow]:
    """n rows of operations of four messages each, two operations at a time."""
    rows = []
    for k in range(n // 4):
        req, owner, page = k % 3, (k + 1) % 3, k % 5
        lc = 10 * k
        for j, (typ, a, b) in enumerate([("ReadRequest", req, 3), ("ReadForward", 3, owner),
                                         ("ReadPage", owner, req),
                                         ("ReadConfirmation", req, 3)]):
            rows.append(P.TraceRow(lc + 2 * j + (k % 2) * 5, typ, a, b, page, req, 100 + k,
                                   float(k) + 0.1 * j))
    return tracing.merge(rows)


@pytest.mark.parametrize("n", [4, 400])
def test_every_arrow_is_a_trace_row_at_4_and_400_messages(n):
    rows = random_rows(n)
    text = sequence.svg(rows, NAMES)
    got = arrows(text)
    nums = tracing.numbers(rows)
    assert [(a["type"], int(a["from"]), int(a["to"]), int(a["page"]), int(a["op"]))
            for a in got] == [(r.type, r.sender, r.to, r.page, nums[tracing.op_key(r)])
                              for r in rows]
    lanes = lane_x(text)
    assert list(lanes) == list(NAMES.values())                 # one lane per process
    for a, r in zip(got, rows):
        assert (a["x1"], a["x2"]) == (lanes[NAMES[r.sender]], lanes[NAMES[r.to]])
    ys = [a["y"] for a in got]
    assert all(b - a == sequence.ROW for a, b in zip(ys, ys[1:]))   # never on top of another
    bands = [e for e in ET.fromstring(text).iter(SVG + "rect") if e.get("class") == "band"]
    assert len({b.get("data-op") for b in bands}) == len(nums)


def render(chromium: str, url: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", *flags, url], capture_output=True, text=True,
                          timeout=120)


def test_ivy_trace_svg_and_html_show_the_trace_and_render_in_chromium(clusters, tmp_path):
    run = clusters.make("svg", heartbeat_interval=0.2)
    assert ivy(run, "trace", "--clear").returncode == 0
    assert ivy(run, "read", 2, 1).returncode == 0
    assert ivy(run, "write", 0, 1, "x").returncode == 0      # invalidates node 2's copy
    rows = json.loads(ivy(run, "trace", "--json").stdout)
    svg_path, html_path = tmp_path / "trace.svg", tmp_path / "trace.html"
    proc = ivy(run, "trace", "--svg", svg_path, "--html", html_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(rows)} messages, 2 operations" in proc.stdout
    got = arrows(svg_path.read_text())
    assert [(a["type"], int(a["from"]), int(a["to"]), int(a["page"]), int(a["op"]))
            for a in got] == [(r["type"], r["from"], r["to"], r["page"], r["op"]) for r in rows]
    assert "Invalidate" in [a["type"] for a in got]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (make sysdeps installs Debian's chromium as root)")
    dom = render(chromium, svg_path.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "parsererror" not in dom.stdout and "error on line" not in dom.stdout
    assert dom.stdout.count('class="msg"') == len(rows)
    shot = tmp_path / "shot.png"
    out = render(chromium, html_path.as_uri(), f"--screenshot={shot}", "--window-size=900,700")
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    width, height, colours = png_summary(shot.read_bytes())
    assert (width, height) == (900, 700)
    assert colours > 20            # text, lanes, coloured arrows: not a blank or error page


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    out, pos = [], 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        out.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def png_summary(data: bytes) -> tuple[int, int, int]:
    """Width, height and how many distinct pixel groups a sample of the (filtered) image
    data has, for an 8-bit RGB(A) PNG: a blank page has only a few."""
    chunks = png_chunks(data)
    width, height, depth, ctype = struct.unpack(">IIBB", chunks[0][1][:10])
    assert depth == 8 and ctype in (2, 6)
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    bpp = 3 if ctype == 2 else 4
    stride = width * bpp + 1
    sample = {raw[i:i + bpp] for y in range(0, height, 7)
              for i in range(y * stride + 1, (y + 1) * stride, bpp * 5)}
    return width, height, len(sample)


def png_description(data: bytes) -> list[dict]:
    texts = dict(d.split(b"\0", 1) for k, d in png_chunks(data) if k == b"tEXt")
    return json.loads(texts[b"Description"])


class Ev:
    def __init__(self, t, action, target):
        self.t, self.action, self.target = t, action, target


@needs_matplotlib
def test_failover_plot_marks_every_fault_and_shades_outages(tmp_path):
    t0 = 1000.0
    ops = [Op(client=i % 4, node=0, page=0, kind="read", value="", start=t0 + k * 0.01,
              end=t0 + k * 0.01 + 0.005, outcome="ok") for i, k in enumerate(range(800))]
    events = [Ev(t0 + 2, "kill", "primary"), Ev(t0 + 4, "restart", "primary"),
              Ev(t0 + 5, "pause", "backup"), Ev(t0 + 6.5, "resume", "backup")]
    spans = [(t0 + 2.05, t0 + 2.6), (t0 + 5.1, t0 + 5.3)]
    panel = plots.panel("b1", ops, t0, t0 + 8, events, spans)
    centres, rate, pcts = plots.series(panel)
    assert sum(r * (centres[1] - centres[0]) for r in rate) == pytest.approx(800)
    assert all(p == pytest.approx(5.0) for p in pcts[50] if p == p)
    path = tmp_path / "plot.png"
    shown = plots.write_png(str(path), [panel, plots.panel("b2", ops, t0, t0 + 8, [], [])],
                            "test")
    assert shown == [{"label": "b1", "faults": ["kill primary", "restart primary",
                                                "pause backup", "resume backup"],
                      "no_manager_spans": 2},
                     {"label": "b2", "faults": [], "no_manager_spans": 0}]
    data = path.read_bytes()
    assert png_description(data) == shown
    width, height, colours = png_summary(data)
    assert width > 1000 and height > 500 and colours > 5
