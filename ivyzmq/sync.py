"""Coordination built on the memory's atomic operations (docs/PROTOCOL.md section 6.3),
usable from any node through any `Memory` (remote or embedded).

    with Lock(mem, page=5):              # a critical section
        ...
    Barrier(mem, page=6, parties=4).wait()
    Counter(mem, page=7).add(1)

A Lock is one 16-byte word: zero when free, else the holder's random token and its node.
Waiting reads the word (a local hit while nobody writes it, so waiters cause no write
faults) and tries a compare-and-swap only when it reads free, backing off between looks.
A lock whose holder's node has been declared dead is broken by the next waiter that sees
so in the serving manager's status (`Lock.acquire(..., admin=...)`): the memory cannot tell
a dead holder from a slow one, but the managers can tell a dead node. A holder that is a
remote program on a live node which dies is not noticed: `acquire` times out with
`LockTimeout` naming the holder's node.
"""
from __future__ import annotations

import os
import random
import time

from ivyzmq import protocol as P
from ivyzmq.client import IvyError, Memory

LOCK_BYTES = 16
FREE = bytes(LOCK_BYTES)


class LockTimeout(IvyError, TimeoutError):
    """The lock stayed held for the whole time-out; `holder` is the holder's node."""

    def __init__(self, text: str, holder: int | None):
        super().__init__(text)
        self.holder = holder


def _backoff(delay: float) -> float:
    time.sleep(delay * random.uniform(0.5, 1.5))
    return min(delay * 2, 0.05)


class Lock:
    def __init__(self, mem: Memory, page: int, offset: int = 0, *, node: int = -1):
        """`node`: the node `mem` talks to, recorded in the word so that waiters can tell
        whether the holder died (-1: unknown, never broken)."""
        self.mem, self.page, self.offset, self.node = mem, page, offset, node
        self.token: bytes | None = None

    def _word(self) -> bytes:
        return self.mem.read(self.page)[self.offset:self.offset + LOCK_BYTES]

    def acquire(self, timeout: float = 30.0, admin=None) -> None:
        """Take the lock, waiting up to `timeout` s; with `admin` (a client.Admin), break
        a lock whose holder's node the serving manager lists as dead."""
        mine = os.urandom(8) + (self.node & (2 ** 64 - 1)).to_bytes(8, "little")
        deadline, delay, word = time.monotonic() + timeout, 0.001, FREE
        while True:
            word = self._word()
            if word == FREE and self.mem.cas(self.page, FREE, mine, self.offset):
                self.token = mine
                return
            if word != FREE and admin is not None and self._holder_dead(word, admin):
                self.mem.cas(self.page, word, FREE, self.offset)
                continue
            if time.monotonic() > deadline:
                holder = holder_node(word)
                raise LockTimeout(f"lock on page {self.page} offset {self.offset} still held "
                                  f"after {timeout:g} s (by a client of node {holder})", holder)
            delay = _backoff(delay)

    @staticmethod
    def _holder_dead(word: bytes, admin) -> bool:
        holder, name = holder_node(word), admin.serving()
        reply = name and admin.query(name, P.StatusQuery(rows=False))
        return bool(reply) and holder is not None and holder in reply.dead

    def release(self) -> None:
        if self.token is None or not self.mem.cas(self.page, self.token, FREE, self.offset):
            raise IvyError(f"lock on page {self.page} offset {self.offset} is not held here")
        self.token = None

    def __enter__(self) -> "Lock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def holder_node(word: bytes) -> int | None:
    node = int.from_bytes(word[8:16], "little", signed=True)
    return None if word == FREE or node < 0 else node


class Counter:
    """An 8-byte signed counter at `offset` of `page`."""

    def __init__(self, mem: Memory, page: int, offset: int = 0):
        self.mem, self.page, self.offset = mem, page, offset

    def add(self, delta: int = 1) -> int:
        return self.mem.add(self.page, delta, self.offset)

    def value(self) -> int:
        raw = self.mem.read(self.page)[self.offset:self.offset + P.WORD]
        return int.from_bytes(raw, "little", signed=True)


class Barrier:
    """`parties` callers meet: `wait` returns once all of them have called it, round after
    round. One counter of arrivals that never resets, so no round can mix with the next."""

    def __init__(self, mem: Memory, page: int, parties: int, offset: int = 0):
        if parties < 1:
            raise ValueError("a barrier needs at least one party")
        self.counter, self.parties = Counter(mem, page, offset), parties

    def wait(self, timeout: float = 60.0) -> int:
        """Returns this round's number (0, 1, ...)."""
        arrived = self.counter.add(1)
        round_ = (arrived - 1) // self.parties
        deadline, delay = time.monotonic() + timeout, 0.001
        while self.counter.value() < (round_ + 1) * self.parties:
            if time.monotonic() > deadline:
                raise IvyError(f"barrier on page {self.counter.page}: round {round_} still "
                               f"incomplete after {timeout:g} s")
            delay = _backoff(delay)
        return round_
