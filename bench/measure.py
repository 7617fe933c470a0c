"""The latency measurements: blocks of read and write faults (the same code times ours and
the raw baseline, through a client per node), the embedded read hit, and the alternation
of ours and raw blocks."""
from __future__ import annotations

from common import (BLOCK, COPY_HOLDERS, EMBED_PAGE, HIT_NODE, HIT_PAGE, PAGE_SIZE, PAGES, READ_OWNER,
                    READ_PAGES, READER, WRITE_PAGES, WRITERS, now_ns, summary)


class Clients:
    """One client per node for the latency runs, opened once."""

    def __init__(self, make):
        self.make, self.cache = make, {}

    def __call__(self, node: int):
        c = self.cache.get(node)
        if c is None:
            c = self.cache[node] = self.make(node)
        return c

    def close(self) -> None:
        for c in self.cache.values():
            c.close()
        self.cache.clear()


def read_fault_block(client_of, state: dict, n: int, out: list[float]) -> None:
    """n read faults: the reader reads (timed), the owner writes the page (untimed)."""
    reader, owner = client_of(READER), client_of(READ_OWNER)
    i = state.setdefault("i", 0)
    for _ in range(n):
        page = READ_PAGES[i % len(READ_PAGES)]
        i += 1
        t0 = now_ns()
        data = reader.read(page)
        t1 = now_ns()
        if len(data) != PAGE_SIZE:
            raise RuntimeError(f"read fault returned {len(data)} bytes")
        out.append((t1 - t0) / 1000)
        owner.write(page, b"w%07d" % i)
    state["i"] = i


def write_fault_block(client_of, state: dict, copies: int, n: int, out: list[float]) -> None:
    """n write faults: `copies` nodes take read copies (untimed), then the writer that does not
    own the page writes it (timed); the two writers take turns owning each page."""
    owners = state.setdefault("owners", {p: WRITERS[0] for p in WRITE_PAGES})
    i = state.setdefault("i", 0)
    holders = [client_of(h) for h in COPY_HOLDERS[:copies]]
    for _ in range(n):
        page = WRITE_PAGES[i % len(WRITE_PAGES)]
        i += 1
        for h in holders:
            h.read(page)
        writer = WRITERS[1] if owners[page] == WRITERS[0] else WRITERS[0]
        c = client_of(writer)
        t0 = now_ns()
        c.write(page, b"x%07d" % i)
        t1 = now_ns()
        out.append((t1 - t0) / 1000)
        owners[page] = writer
    state["i"] = i


def write_hit_block(client_of, state: dict, n: int, out: list[float]) -> None:
    """n write hits: the owner's node writes 8 bytes of a page it owns and holds ReadWrite
    (with replicas: K >= 1 the write returns once the page's K holders have it)."""
    c = client_of(HIT_NODE)
    i = state.setdefault("i", 0)
    for _ in range(n):
        i += 1
        t0 = now_ns()
        c.write(HIT_PAGE, b"h%07d" % i)
        t1 = now_ns()
        out.append((t1 - t0) / 1000)
    state["i"] = i


def embedded_hit(mem, batches: int, per: int = 100) -> tuple[dict, dict]:
    """Per-call time of embed(config, 9).read(own page) vs a list lookup, in batches."""
    ours, raw = [], []
    read, page = mem.read, EMBED_PAGE
    if len(read(page)) != PAGE_SIZE:
        raise RuntimeError("embedded read returned the wrong size")
    lst = [bytes(PAGE_SIZE) if p == page else None for p in range(PAGES)]
    loop = range(per)
    for _ in range(batches):
        t0 = now_ns()
        for _ in loop:
            read(page)
        t1 = now_ns()
        for _ in loop:
            lst[page]
        t2 = now_ns()
        ours.append((t1 - t0) / 1000 / per)
        raw.append((t2 - t1) / 1000 / per)
    return summary(ours), summary(raw)


def alternate(step, clients: dict, total: int, warm: int) -> tuple[list[float], list[float]]:
    """`warm` untimed samples of ours and of raw, then their blocks in turn until each has
    `total`: step(client_of, state, k, out) times k samples into out, with
    `clients[who]` and a state of its own per system (which page is next, whose turn)."""
    state: dict = {"ours": {}, "raw": {}}

    def block(who, k, out):
        step(clients[who], state[who], k, out)
    block("ours", warm, [])
    block("raw", warm, [])
    return interleaved(block, total, BLOCK)


def interleaved(block_fn, total: int, block: int) -> tuple[list[float], list[float]]:
    """Alternate blocks of ours and raw samples until each has `total`."""
    ours: list[float] = []
    raw: list[float] = []
    while len(ours) < total:
        k = min(block, total - len(ours))
        block_fn("ours", k, ours)
        block_fn("raw", k, raw)
    return ours, raw


def row(name: str, timed: str, o: list[float], r: list[float]) -> dict:
    so, sr = summary(o), summary(r)
    return {"name": name, "timed": timed, "unit": "us", "ours": so, "raw": sr,
            "ratio": so["median_us"] / sr["median_us"]}


def embedded_row(ours: dict, raw: dict) -> dict:
    return {"name": "embedded read hit (own page)",
            "timed": "embed(config, 9).read(9) per call, batches of 100; "
                     "raw: list[i] in the same loop",
            "unit": "us", "ours": ours, "raw": raw,
            "ratio": ours["median_us"] / raw["median_us"]}
