"""Throughput: client threads in this process, each on its own node and page (or all on one
hot page), 50% reads and 50% 8-byte writes, for a fixed time."""
from __future__ import annotations

import random
import threading

from common import now_ns, summary


def _client_loop(c, i: int, page: int, rng: random.Random, stop_at: list[float],
                 mine: list[float]) -> None:
    k = 0
    while True:
        k += 1
        t0 = now_ns()
        if t0 >= stop_at[0]:
            break
        if rng.random() < 0.5:
            c.read(page)
        else:
            c.write(page, b"c%dk%d" % (i, k))
        mine.append((now_ns() - t0) / 1000)


def throughput(make_client, assign, duration: float, seed: int) -> dict:
    """len(assign) client threads; assign[i] = (node, page). Each does 50% reads and 50%
    8-byte writes until the deadline. Returns the time taken and per-op latencies."""
    lat: list[list[float]] = [[] for _ in assign]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(assign) + 1)
    stop_at = [0.0]

    def run(i: int, node: int, page: int) -> None:
        rng = random.Random(seed * 1000 + i)
        try:
            c = make_client(node)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait()
            _client_loop(c, i, page, rng, stop_at, lat[i])
        except BaseException as exc:   # noqa: BLE001
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i, nd, pg), daemon=True)
               for i, (nd, pg) in enumerate(assign)]
    for t in threads:
        t.start()
    stop_at[0] = now_ns() + 10**12                  # not before everyone is ready
    barrier.wait()
    t0 = now_ns()
    stop_at[0] = t0 + int(duration * 1e9)
    for t in threads:
        t.join(duration + 60)
    elapsed = (now_ns() - t0) / 1e9
    if errors:
        raise RuntimeError(f"throughput client failed: {errors[0]!r}")
    return {"elapsed": elapsed, "samples": [v for x in lat for v in x]}


def merge_tp(parts: list[dict]) -> dict:
    """Combine the parts of a throughput run (alternated with the other system's)."""
    samples = [v for p in parts for v in p["samples"]]
    res = summary(samples)
    res["ops_per_s"] = len(samples) / sum(p["elapsed"] for p in parts)
    return res


def tp_row(name: str, o: dict, r: dict) -> dict:
    return {"name": name, "timed": "ops/s of 10 client threads; latency per operation",
            "unit": "ops/s", "ours": o, "raw": r, "ratio": o["ops_per_s"] / r["ops_per_s"]}
