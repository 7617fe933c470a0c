"""Page replicas in the raw baseline (`RawCluster(..., replicas=K)`), the messages ivyzmq's
`replicas: K` adds and nothing more: a write at a page's owner (a hit, or the write after a
write fault) is staged, the owner sends an Update header with the 4 KiB page as a second
frame to each of the page's K holders, each holder answers UpdateAck, and only when all K
acks are in does the write take effect and the client get its reply. After a write fault
the new owner sends its confirmation to the manager first (as ivyzmq does), then the
Updates.

The holders of page p start as nodes owner+1 .. owner+K (mod N); the manager keeps them per
page and a WriteForward carries them (the old owner takes the new owner's place among them),
as ivyzmq's manager does. No failover, no versions beyond a counter per page, no re-sends.
"""
from __future__ import annotations

import zmq

from raw import RawManager, RawNode, _enc


def ring(page: int, n_nodes: int, k: int) -> list[int]:
    """The initial holders of `page`: the k nodes after its initial owner."""
    owner = page % n_nodes
    return [(owner + i) % n_nodes for i in range(1, min(k, n_nodes - 1) + 1)]


class RawReplicaNode(RawNode):
    """A raw node whose writes at the owner wait for the page's holders."""

    def __init__(self, pid: int, endpoints: list[str], n_nodes: int, pages: int,
                 page_size: int, k: int):
        super().__init__(pid, endpoints, n_nodes, pages, page_size)
        self.holders = [ring(p, n_nodes, k) if self.owner[p] else [] for p in range(pages)]
        self.rep = {p: bytes(page_size) for p in range(pages) if pid in ring(p, n_nodes, k)}
        self.unacked = [0] * pages                   # acks still to come for the staged write
        self.staged: list = [None] * pages
        self.version = [0] * pages
        self.deferred: list[list] = [[] for _ in range(pages)]  # forwards while syncing
        self.handlers.update(UP=self.update, UA=self.update_ack)

    def advance(self, p: int) -> None:
        """RawNode.advance, but a write to a page with holders is staged and waits."""
        q, data = self.local[p], self.data
        while q and not self.unacked[p]:
            ident, kind, cid, payload, off = q[0]
            if kind == "r" and data[p] is not None:
                self.inbox.send_multipart([ident, _enc({"cid": cid}), data[p]], zmq.NOBLOCK)
            elif kind == "w" and self.rw[p]:
                old = data[p]
                new = old[:off] + payload + old[off + len(payload):]
                if self.holders[p]:
                    self.stage(p, new)
                    return
                data[p] = new
                self.inbox.send_multipart([ident, _enc({"cid": cid})], zmq.NOBLOCK)
            else:
                if self.pending[p] is None:
                    self.pending[p] = kind
                    self.rid += 1
                    self.to_mgr("RQ" if kind == "r" else "WQ", p, self.pid, self.rid)
                return
            q.popleft()

    def stage(self, p: int, new: bytes) -> None:
        self.staged[p], self.unacked[p] = new, len(self.holders[p])
        self.version[p] += 1
        header = _enc({"t": "UP", "sender": self.pid, "page": p, "version": self.version[p]})
        for h in self.holders[p]:
            self.out.send(h, [header, new])

    def update(self, h: dict, frames: list) -> None:            # owner: hold this
        self.rep[h["page"]] = frames[2]
        self.out.send(h["sender"], [_enc({"t": "UA", "sender": self.pid, "page": h["page"],
                                          "version": h["version"]})])

    def update_ack(self, h: dict, frames: list) -> None:        # holder: I hold it
        p = h["page"]
        if not self.unacked[p] or h["version"] != self.version[p]:
            return
        self.unacked[p] -= 1
        if self.unacked[p]:
            return
        self.data[p], self.staged[p] = self.staged[p], None
        ident, _kind, cid, _payload, _off = self.local[p].popleft()
        self.inbox.send_multipart([ident, _enc({"cid": cid})], zmq.NOBLOCK)
        deferred, self.deferred[p] = self.deferred[p], []
        for handler, dh, dframes in deferred:
            handler(dh, dframes)
        self.advance(p)

    def read_forward(self, h: dict, frames: list) -> None:
        if self.unacked[h["page"]]:
            self.deferred[h["page"]].append((self.read_forward, h, frames))
        else:
            super().read_forward(h, frames)

    def write_forward(self, h: dict, frames: list) -> None:    # manager: hand the page over
        p = h["page"]
        if self.unacked[p]:
            self.deferred[p].append((self.write_forward, h, frames))
            return
        header = _enc({"t": "WP", "sender": self.pid, "page": p, "requester": h["requester"],
                       "rid": h["rid"], "version": self.version[p], "holders": h["holders"]})
        self.out.send(h["requester"], [header, self.data[p]])
        if self.pid in h["holders"]:
            self.rep[p] = self.data[p]
        self.data[p], self.owner[p], self.rw[p], self.holders[p] = None, False, False, []

    def write_grant(self, h: dict, frames: list) -> None:
        self.holders[h["page"]] = h["holders"]
        super().write_grant(h, frames)

    def write_page(self, h: dict, frames: list) -> None:       # old owner: the page
        p = h["page"]
        if self.pending[p] == "w":
            self.holders[p], self.version[p] = h["holders"], h["version"]
            self.rep.pop(p, None)
        super().write_page(h, frames)


class RawReplicaManager(RawManager):
    """The raw manager, keeping each page's holders and sending them with a forward."""

    def __init__(self, pid: int, endpoints: list[str], n_nodes: int, pages: int, k: int):
        super().__init__(pid, endpoints, n_nodes, pages)
        self.holders = [ring(p, n_nodes, k) for p in range(pages)]

    def moved(self, p: int, new_owner: int) -> list[int]:
        """The holders once new_owner owns p: the old owner takes new_owner's place."""
        return [self.owner[p] if h == new_owner else h for h in self.holders[p]]

    def with_holders(self, t: str, p: int, o: list, holders: list[int]) -> list:
        return [_enc({"t": t, "sender": self.pid, "page": p, "requester": o[1], "rid": o[2],
                      "holders": holders})]

    def proceed(self, p: int, o: list, outs: list) -> None:
        if o[1] == self.owner[p]:
            outs.append((o[1], self.with_holders("WG", p, o, self.holders[p])))
        else:
            outs.append((self.owner[p], self.with_holders("WF", p, o, self.moved(p, o[1]))))

    def confirmed(self, h: dict, frames: list) -> None:        # node: RC / WC
        if h["t"] == "WC":
            self.holders[h["page"]] = self.moved(h["page"], h["requester"])
        super().confirmed(h, frames)


# The processes' entry points (multiprocessing targets of raw_cluster.RawCluster).
def raw_replica_node(pid: int, endpoints: list[str], n_nodes: int, pages: int, page_size: int,
                     k: int) -> None:
    RawReplicaNode(pid, endpoints, n_nodes, pages, page_size, k).serve()


def raw_replica_manager(pid: int, endpoints: list[str], n_nodes: int, pages: int,
                        k: int) -> None:
    RawReplicaManager(pid, endpoints, n_nodes, pages, k).serve()
