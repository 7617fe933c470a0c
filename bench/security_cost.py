"""The bench rows "read fault / write fault, curve / none": what CURVE costs on the hot
path (the handshakes are done before the timing starts; each message is encrypted,
authenticated and checked against its connection's key).

Two clusters of the same shape (4 node daemons and a primary) run side by side, one with
`security: curve`, one with `security: none`. Blocks of faults on the two alternate, as
ours and raw do in the other rows, so that noise hits both alike. In the rows, "ours" is
curve and "raw" none; the aim is a read fault under curve within 1.3x of none.
"""
from __future__ import annotations

from pathlib import Path

from common import PAGE_SIZE, PAGES, log
from measure import Clients, alternate, read_fault_block, row, write_fault_block
from ours import OurCluster

NODES = 4            # the read fault's reader and owner, the write fault's two writers
READ_NAME = "read fault, curve / none [4 nodes]"
WRITE_NAME = "write fault, curve / none [4 nodes]"


def security_rows(workdir: Path, n_read: int, n_write: int) -> tuple[list[dict], dict]:
    """The two rows, and their samples (curve, none) for the CDF."""
    curve = OurCluster(workdir, NODES, PAGES, PAGE_SIZE, name="curve", security="curve")
    none = OurCluster(workdir, NODES, PAGES, PAGE_SIZE, name="none")
    names = ["primary"] + [f"node{i}" for i in range(NODES)]
    clients = {"ours": Clients(curve.client), "raw": Clients(none.client)}
    try:
        for c in (curve, none):
            c.start(names)
        for c in (curve, none):
            c.wait(names)
        ro, rr = alternate(read_fault_block, clients, n_read, 20)

        def step(client_of, state, k, out):
            write_fault_block(client_of, state, 0, k, out)
        wo, wr = alternate(step, clients, n_write, 8)
        log("security rows done")
        rows = [row(READ_NAME, "read fault round trip, CURVE on every socket / none", ro, rr),
                row(WRITE_NAME, "write fault round trip (no copies), CURVE / none", wo, wr)]
        return rows, {READ_NAME: (ro, rr), WRITE_NAME: (wo, wr)}
    finally:
        for c in clients.values():
            c.close()
        for c in (curve, none):
            c.down()
