"""The bench's fixed layout (which nodes and pages play which part in each row) and its
small helpers: the clock, percentiles, the log line."""
from __future__ import annotations

import math
import statistics
import sys
import time

N_NODES = 10
PAGES = 64
PAGE_SIZE = 4096
READER, READ_OWNER = 1, 0                 # read fault: node 1 faults on node 0's pages
READ_PAGES = [0, 10, 20, 30]              # owned by node 0 at start
WRITERS = (2, 3)                          # write fault: these two take turns
WRITE_PAGES = [2, 12, 22, 32]             # owned by node 2 at start
COPY_HOLDERS = [4, 5, 6, 7]               # nodes that take read copies before a write
EMBED_NODE, EMBED_PAGE = 9, 8             # the hosted node 9 writes page 8 to hold it
OWN_PAGE_BASE = 40                        # client i's own page 40+i is owned by node i
HOT_PAGE = 50
HIT_NODE, HIT_PAGE = 8, 58                # write hit at the owner: node 8 writes page 58
ATOMIC_HIT_PAGES = {"cas": 18, "add": 28}    # cas / add hits: node 8 owns these
ATOMIC_FAULT_PAGES = {"cas": [52, 62, 53, 63],  # cas / add faults: the WRITERS take turns
                      "add": [3, 13, 23, 33]}
LOCK_NODES, LOCK_PAGE = (6, 7), 16        # lock hand-over: clients of nodes 6 and 7
BLOCK = 20                                # ours and raw samples alternate in blocks of this

now_ns = time.perf_counter_ns


def pct(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q / 100 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def summary(samples_us: list[float]) -> dict:
    s = sorted(samples_us)
    return {"median_us": statistics.median(s) if s else float("nan"),
            "p99_us": pct(s, 99), "n": len(s)}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
