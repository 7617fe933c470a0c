"""The `ivy` subcommands that use the memory through one node: read, write, cas and add,
by page (and offset) or, for read and write, by address over the whole memory."""
from __future__ import annotations

import argparse
import json

from ivyzmq import args as A
from ivyzmq import readout
from ivyzmq.client import connect
from ivyzmq.programs import Fail

NOT_SWAPPED = 3      # exit status of a cas that found other bytes


def add_parsers(cmd) -> None:
    """`cmd(name, help)` makes a subparser with the common options."""
    p = cmd("read", "read a page through a node; prints its bytes as text")
    _node(p)
    p.add_argument("page", type=int, nargs="?", help="the page (or give --at)")
    A.fits(p, "page", "pages", index=True)
    p.add_argument("--at", type=A.natural, metavar="ADDRESS",
                   help="read --length bytes at ADDRESS = page x page_size + offset instead")
    p.add_argument("--length", type=A.count, default=None,
                   help="with --at: how many bytes (default: one page)")
    p.add_argument("--json", action="store_true")
    p = cmd("write", "write DATA at the start of a page (or at --offset) through a node")
    _node(p)
    p.add_argument("page", help="the page; left out with --at")
    p.add_argument("data", nargs="?")
    p.add_argument("--offset", type=A.natural, default=0)
    A.fits(p, "--offset", "page_size", index=True)
    p.add_argument("--at", type=A.natural, metavar="ADDRESS",
                   help="write at ADDRESS = page x page_size + offset, across pages")
    p = cmd("cas", "compare and swap: if the bytes at --offset are EXPECTED, make them NEW "
            "(the shorter is padded with zero bytes, so '' matches an unwritten page); "
            "prints 'swapped', or 'not swapped: <bytes found>' with exit status 3")
    _node_and_page(p)
    p.add_argument("expected")
    p.add_argument("new")
    p.add_argument("--offset", type=A.natural, default=0)
    A.fits(p, "--offset", "page_size", index=True)
    p = cmd("add", "add DELTA to the 8-byte little-endian integer at --offset of a page, "
            "atomically; prints the value after the add")
    _node_and_page(p)
    p.add_argument("delta", type=int)
    p.add_argument("--offset", type=A.natural, default=0)
    A.fits(p, "--offset", "page_size", index=True)


def _node(p: argparse.ArgumentParser) -> None:
    p.add_argument("node", type=int)
    A.fits(p, "node", "nodes", index=True)


def _node_and_page(p: argparse.ArgumentParser) -> None:
    _node(p)
    p.add_argument("page", type=int)
    A.fits(p, "page", "pages", index=True)


def cmd_read(args, cluster):
    if (args.page is None) == (args.at is None):
        raise Fail("give a page or --at ADDRESS (not both)", 2)
    with connect(cluster, args.node) as mem:
        if args.at is None:
            data = mem.read(args.page)
        else:
            data = mem.read_at(args.at, args.length or cluster.page_size)
    text = readout.page_text(data)
    if args.json:
        where = {"page": args.page} if args.at is None else {"address": args.at}
        print(json.dumps({"node": args.node, **where, "text": text,
                          "hex": data.rstrip(b"\0").hex()}))
    else:
        print(text)


def cmd_write(args, cluster):
    if args.at is not None:
        if args.data is not None:
            raise Fail("with --at, give the data alone (no page)", 2)
        with connect(cluster, args.node) as mem:
            mem.write_at(args.at, args.page.encode())
        return
    if args.data is None:
        raise Fail("give PAGE DATA, or DATA with --at ADDRESS", 2)
    try:
        page = int(args.page)
    except ValueError:
        raise A.OptionError(f"page {args.page!r} is not a page number") from None
    if not 0 <= page < cluster.pages:
        raise A.OptionError(f"page {page} out of range 0..{cluster.pages - 1} ({args.config} "
                            f"has {cluster.pages} pages)")
    with connect(cluster, args.node) as mem:
        mem.write(page, args.data.encode(), args.offset)


def cmd_cas(args, cluster):
    expected, new = args.expected.encode(), args.new.encode()
    n = max(len(expected), len(new), 1)
    with connect(cluster, args.node) as mem:
        swapped, found = mem.compare_and_swap(args.page, expected.ljust(n, b"\0"),
                                              new.ljust(n, b"\0"), args.offset)
    if swapped:
        print("swapped")
        return 0
    print(f"not swapped: {readout.page_text(found)}")
    return NOT_SWAPPED


def cmd_add(args, cluster):
    with connect(cluster, args.node) as mem:
        print(mem.add(args.page, args.delta, args.offset))


COMMANDS = {"read": cmd_read, "write": cmd_write, "cas": cmd_cas, "add": cmd_add}
