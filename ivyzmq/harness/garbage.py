"""Frames for fuzzing real daemons: random bytes, random JSON objects that look like
messages, and real messages of every kind mutated (fields dropped, retyped, made huge,
bytes flipped or cut, frames added). Seeded, so a run can be repeated.

`Garbage(cluster, spare_pages)` never yields a well-formed client request that could change
a page outside `spare_pages`: a workload running beside the fuzzer owns the other pages,
and its history must stay checkable.
"""
from __future__ import annotations

import json
import random

from ivyzmq import protocol as P
from ivyzmq.config import Cluster

_CHANGES = (P.ClientWrite, P.ClientCas, P.ClientAdd)
_ODD = [None, True, -1, 0, 2 ** 63, -(2 ** 70), 1e308, "", "x" * 300, [], [[1, 2]], {},
        {"type": "ReadRequest"}]


def samples(cluster: Cluster, page: int) -> list[tuple[P.Msg, bytes | None]]:
    """One well-formed message of the main kinds, in the names of the cluster's processes."""
    manager, node = cluster.manager_ids[0], 0
    data = b"f" * cluster.page_size
    ivy = dict(page=page, requester=node, rid=7, opseq=3, epoch=1)
    return [
        (P.ClientRead(page=page, cid=1), None), (P.ClientWrite(page=page, cid=2), b"fuzz"),
        (P.ClientCas(page=page, cid=3), b"ab"), (P.ClientAdd(page=page, delta=1, cid=4), None),
        (P.StatusQuery(), None), (P.TraceQuery(), None), (P.WaitQuery(page=page), None),
        (P.ReadRequest(sender=node, **ivy), None), (P.WriteRequest(sender=node, **ivy), None),
        (P.ReadForward(sender=manager, **ivy), None),
        (P.WriteForward(sender=manager, holders=[1], **ivy), None),
        (P.Invalidate(sender=manager, **ivy), None), (P.ReadPage(sender=node, **ivy), data),
        (P.WritePage(sender=node, **ivy), data),
        (P.Update(sender=node, page=page, version=(3, 1)), data),
        (P.Recover(sender=manager, epoch=10 ** 9), None),
        (P.Heartbeat(sender=manager, role="active", seq=5, boot=1, epoch=4), None),
        (P.Assign(sender=manager, pages=[(page, 4, [1], False, [])], epoch=9), None),
        (P.NodeBeat(sender=node, inc=2, t=1.0), None),
        (P.TableReport(sender=node, epoch=9, pages=[]), None),
    ]


class Garbage:
    def __init__(self, cluster: Cluster, spare_pages: range, seed: int = 0):
        self.cluster, self.spare = cluster, spare_pages
        self.rng = random.Random(seed)
        self.fields = sorted({f for cls in P.MESSAGE_TYPES for f in cls.__struct_fields__})

    def frames(self) -> list[bytes]:
        """One fuzz input: a list of frames."""
        while True:
            pick = self.rng.random()
            frames = (self._random() if pick < 0.2 else self._lookalike() if pick < 0.4
                      else self._mutated())
            if self._harmless(frames):
                return frames

    def _random(self) -> list[bytes]:
        n = self.rng.choice([1, 1, 1, 2, 3])
        return [self.rng.randbytes(self.rng.choice([0, 1, 7, 64, 500])) for _ in range(n)]

    def _lookalike(self) -> list[bytes]:
        obj = {"type": self.rng.choice([c.__name__ for c in P.MESSAGE_TYPES] + ["Nope"])}
        for name in self.rng.sample(self.fields, self.rng.randint(0, 6)):
            obj[name] = self._value()
        return [json.dumps(obj).encode()] + ([b"p"] if self.rng.random() < 0.3 else [])

    def _value(self):
        r = self.rng.random()
        return (self.rng.randint(-3, 12) if r < 0.5 else self.rng.choice(_ODD) if r < 0.8
                else [self.rng.randint(-1, 5) for _ in range(self.rng.randint(0, 3))])

    def _mutated(self) -> list[bytes]:
        msg, payload = self.rng.choice(samples(self.cluster, self.rng.choice(self.spare)))
        frames = P.encode(msg, payload)
        obj = json.loads(frames[0])
        how = self.rng.randrange(6)
        keys = [k for k in obj if k != "type"]
        if how == 0 and keys:
            del obj[self.rng.choice(keys)]
        elif how == 1 and keys:
            obj[self.rng.choice(keys)] = self._value()
        elif how == 2:
            obj[self.rng.choice(self.fields)] = self._value()
        elif how == 3:
            raw = bytearray(frames[0])
            for _ in range(self.rng.randint(1, 4)):
                raw[self.rng.randrange(len(raw))] = self.rng.randrange(256)
            return [bytes(raw)] + frames[1:]
        elif how == 4:
            return [frames[0][:self.rng.randrange(len(frames[0]))]] + frames[1:]
        else:
            return frames + [b"extra"] if self.rng.random() < 0.5 else frames[:1]
        return [json.dumps(obj).encode()] + frames[1:]

    def _harmless(self, frames: list[bytes]) -> bool:
        """False for a valid client request that would change a page the workload uses."""
        try:
            msg, _ = P.decode(frames)
        except P.ProtocolError:
            return True
        return not isinstance(msg, _CHANGES) or msg.page in self.spare
