"""The rows of page replicas (`replicas: K`): a write hit at the owner and a write fault
(no read copies), each beside a raw baseline that sends the same extra messages (K Updates
with the page, K UpdateAcks) before the write returns.

replicas 0 is the bench's main cluster (`hit_rows` with its clients; its write fault is the
row "write fault, 0 copies [1 mgr]"). For K >= 1 both systems get a cluster of their own of
the same shape (10 node daemons and a primary; 10 raw nodes and a raw manager), started
together, measured in alternating blocks, and stopped before the bench goes on.
"""
from __future__ import annotations

from pathlib import Path

from common import N_NODES, PAGE_SIZE, PAGES, log
from measure import Clients, alternate, row, write_fault_block, write_hit_block
from ours import OurCluster
from raw_cluster import RawCluster


def hit_name(k: int) -> str:
    return f"write hit at owner, replicas {k} [1 mgr]"


def fault_name(k: int) -> str:
    return f"write fault, replicas {k} [1 mgr]"


def hit_row(clients: dict, k: int, n: int) -> tuple[dict, tuple[list, list]]:
    """The write hit at the owner on the clusters of `clients` (which have replicas k)."""
    o, r = alternate(write_hit_block, clients, n, 20)
    log(f"{hit_name(k)} done")
    timed = "client->node ... ->client round trip of a write the node owns" + (
        f": the page to {k} holders and their acks first" if k else "")
    return row(hit_name(k), timed, o, r), (o, r)


def fault_row(clients: dict, k: int, n: int) -> tuple[dict, tuple[list, list]]:
    """The write fault with no read copies on the clusters of `clients` (replicas k)."""
    def step(client_of, state, m, out):
        write_fault_block(client_of, state, 0, m, out)
    o, r = alternate(step, clients, n, 8)
    log(f"{fault_name(k)} done")
    return row(fault_name(k), "client->node ... ->client round trip of a write that faults: "
               f"the new owner sends the page to {k} holders and waits for their acks", o, r), \
        (o, r)


def replica_rows(workdir: Path, ks: tuple[int, ...], n_hit: int, n_fault: int
                 ) -> tuple[list[dict], dict[str, tuple[list, list]]]:
    """For each K in ks: a cluster of ours and a raw one with replicas K (all started
    together); the write hit rows, then the write fault rows. Returns (rows, samples)."""
    names = ["primary"] + [f"node{i}" for i in range(N_NODES)]
    ours = {k: OurCluster(workdir, N_NODES, PAGES, PAGE_SIZE, name=f"replicas{k}", replicas=k)
            for k in ks}
    raw = {k: RawCluster(N_NODES, PAGES, PAGE_SIZE, replicas=k) for k in ks}
    clients = {k: {"ours": Clients(ours[k].client), "raw": Clients(raw[k].client)}
               for k in ks}
    hits, faults, samples = [], [], {}
    try:
        log(f"starting clusters with replicas {', '.join(map(str, ks))} (ours and raw)")
        for k in ks:
            ours[k].start(names)
        for k in ks:
            raw[k].up()
        for k in ks:
            ours[k].wait(names)
        for k in ks:
            for made, out in ((hit_row(clients[k], k, n_hit), hits),
                              (fault_row(clients[k], k, n_fault), faults)):
                out.append(made[0])
                samples[made[0]["name"]] = made[1]
    finally:
        for k in ks:
            for c in clients[k].values():
                c.close()
            try:
                ours[k].down()
            finally:
                raw[k].down()
    rows = hits + faults
    return rows, {r["name"]: samples[r["name"]] for r in rows}
