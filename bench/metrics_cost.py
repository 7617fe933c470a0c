"""The bench row "read fault, metrics on / off": what serving Prometheus metrics costs on
the hot path (the transport's counting, the HTTP server thread, the scrapes).

Two small clusters of the same shape (3 node daemons and a primary) run side by side, one
with a metrics address for every daemon and a scraper asking each of them every second (a
busy Prometheus; the usual interval is 15 s), one without. Blocks of read faults on the two
alternate, as ours and raw do in the other rows, so that noise hits both alike. In the row,
"ours" is metrics on and "raw" metrics off; the aim is a ratio under 1.05.
"""
from __future__ import annotations

import threading
from pathlib import Path

from ivyzmq import scrape
from ivyzmq.metrics import address_of

from common import PAGE_SIZE, PAGES, log
from measure import Clients, alternate, read_fault_block, row
from ours import OurCluster

NODES = 3
NAME = "read fault, metrics on / off [3 nodes]"
SCRAPE_EVERY = 1.0     # s


def _scraper(cluster, stop: threading.Event) -> threading.Thread:
    addresses = [address_of(cluster, pid) for pid in range(len(cluster.daemon_names()))]

    def body() -> None:
        while not stop.wait(SCRAPE_EVERY):
            for where in addresses:
                scrape.fetch_text(where, timeout=1.0)
    thread = threading.Thread(target=body, name="scraper", daemon=True)
    thread.start()
    return thread


def metrics_row(workdir: Path, samples: int) -> tuple[dict, tuple[list, list]]:
    """The row, and its samples (metrics on, metrics off) for the CDF."""
    on = OurCluster(workdir, NODES, PAGES, PAGE_SIZE, metrics=True, name="metrics-on")
    off = OurCluster(workdir, NODES, PAGES, PAGE_SIZE, name="metrics-off")
    names = ["primary"] + [f"node{i}" for i in range(NODES)]
    clients = {"ours": Clients(on.client), "raw": Clients(off.client)}
    stop = threading.Event()
    try:
        for c in (on, off):
            c.start(names)
        for c in (on, off):
            c.wait(names)
        thread = _scraper(on.cluster, stop)
        o, r = alternate(read_fault_block, clients, samples, 20)
        stop.set()
        thread.join(5)
        log(f"{NAME} done")
        return row(NAME, "read fault round trip with every daemon serving metrics "
                   "(scraped each second) / without", o, r), (o, r)
    finally:
        stop.set()
        for c in clients.values():
            c.close()
        for c in (on, off):
            c.down()
