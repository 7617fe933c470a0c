"""The bench's one table: a row per measurement (ours and raw median, p99, n, the ratio), what
is timed, the aims, and a footer with the run's length and the machine's load."""
from __future__ import annotations

import os

LEGEND = """\
What is timed:
  read/write fault  one operation at the client program, from its request to the node's reply:
                    client->node->manager->(k invalidations->)owner->node(+4 KiB)->client; the
                    node sends its confirmation to the manager just before it replies. Untimed
                    between samples: the owner re-writes the page (read fault), k nodes take
                    read copies (write fault).
  write hit         the same, of an 8-byte write at the node that owns the page (ReadWrite).
  replicas K        the cluster keeps K holders of each page: a write at the owner (a hit, or
                    the write after a fault) sends the page to the K holders and waits for
                    their acks before it replies; raw sends the same K messages and waits too.
                    Replicas 0 of the write fault is "write fault, 0 copies [1 mgr]".
  cas / add         the same, of a cas (8 bytes, always swapping) or an add at node 8, which
                    owns the page ReadWrite (hit), or after a write fault like the write fault
                    with 0 copies (fault); the raw node applies them like a write.
  lock hand-over    ivyzmq.sync.Lock between clients of nodes 6 and 7: from one's release() to
                    the other's acquire() returning (it waits with backoff 1 ms doubling to
                    50 ms from 1 ms before the release); raw: the same Lock over the raw relay.
  throughput        10 client threads, client i on node i, 50% reads, 50% 8-byte writes; the
                    p99 column is per operation; the ratio is ours/raw ops/s.
  embedded hit      per call of embed(config, 9).read(page it holds), batches of 100; raw: a
                    plain list lookup in the same loop.
  raw               the same processes, sockets and messages written directly with pyzmq
                    (msgspec JSON headers, 4 KiB payload frame), no ivyzmq protocol machinery.
  metrics on / off  read faults on two 3-node clusters side by side: "ours" serves Prometheus
                    metrics from every daemon (scraped each second), "raw" serves none.
  curve / none      read and write faults on two 4-node clusters side by side: "ours" with
                    security: curve (CURVE on every socket), "raw" with security: none.
  failover          kill -9 of the primary -> the next write (a fault) done through the
                    backup, fresh 5-node clusters (replicas 1, default timing: dead after 1.5 s)
                    per repetition: "ours" with a node killed and declared dead just before,
                    "raw" with every node alive; p99 is the slowest repetition."""


def fmt_us(v: float) -> str:
    if v != v:
        return "-"
    if v < 10:
        return f"{v:.2f} us"
    if v < 1000:
        return f"{v:.0f} us"
    if v < 1e6:
        return f"{v / 1000:.2f} ms"
    return f"{v / 1e6:.2f} s"


def _line(r: dict, w: int) -> str:
    o, s = r["ours"], r["raw"]
    if r["unit"] == "ops/s":
        om, sm = f"{o['ops_per_s']:.0f}/s", f"{s['ops_per_s']:.0f}/s"
        ratio = f"{r['ratio']:.2f}x tp"
    else:
        om, sm = fmt_us(o["median_us"]), fmt_us(s["median_us"])
        ratio = f"{r['ratio']:.2f}x"
    extra_o, extra_s = f"{fmt_us(o['p99_us']):>9}", f"{fmt_us(s['p99_us']):>9}"
    return (f"{r['name']:<{w}}  {om:>11} {extra_o} {o['n']:>6}  {sm:>11} {extra_s} "
            f"{s['n']:>6}  {ratio:>8}")


def _aims(rows: list[dict]) -> list[str]:
    goals = []
    for r in rows:
        if r["name"].startswith("read fault ["):
            goals.append(f"  {r['name']}: {r['ratio']:.2f}x raw (aim <= 1.5x): "
                         f"{'met' if r['ratio'] <= 1.5 else 'NOT met'}")
        if r["name"].startswith("read fault, metrics"):
            goals.append(f"  {r['name']}: {r['ratio']:.3f}x (aim < 1.05x): "
                         f"{'met' if r['ratio'] < 1.05 else 'NOT met'}")
        elif r["name"].startswith("read fault, curve"):
            goals.append(f"  {r['name']}: {r['ratio']:.2f}x (aim <= 1.3x): "
                         f"{'met' if r['ratio'] <= 1.3 else 'NOT met'}")
        elif r["name"].startswith("embedded"):
            m = r["ours"]["median_us"]
            goals.append(f"  {r['name']}: {m:.2f} us (aim < 5 us): "
                         f"{'met' if m < 5 else 'NOT met'}")
    return goals


def _footer(elapsed: float, quick: bool, load: tuple[float, float]) -> None:
    cores = os.cpu_count() or 1
    print(f"\n({'quick' if quick else 'full'} run, {elapsed:.0f} s, {cores} cores, load average "
          f"{load[0]:.1f} before / {load[1]:.1f} after)")
    if load[0] > cores:
        print(f"warning: the machine was already busy (load {load[0]:.1f} on {cores} cores): "
              "absolute times are\ninflated; the ratios are less affected (ours and raw "
              "alternate in blocks of 20) but noisier.")


def print_table(rows: list[dict], elapsed: float, quick: bool,
                load: tuple[float, float]) -> None:
    w = max(len(r["name"]) for r in rows)
    head = (f"{'measurement':<{w}}  {'ours median':>11} {'p99':>9} {'n':>6}  "
            f"{'raw median':>11} {'p99':>9} {'n':>6}  {'ours/raw':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(_line(r, w))
    print()
    print(LEGEND)
    print()
    print("Aims:")
    print("\n".join(_aims(rows)))
    _footer(elapsed, quick, load)
