"""The homework's printouts: the managers' and nodes' page tables, and the message trace.

    cm_primary: active, epoch 2, serving
    Record    Owner_ID  copy_set
    1         1         map[2:true]

    process_2:
    Page      isOwner   Access
    1         false     Read

    Type             From      To        Page      Requester Op
    ReadRequest      2         3         1         2         1
"""
from __future__ import annotations

import msgspec

from ivyzmq import protocol as P
from ivyzmq import tracing
from ivyzmq.config import Cluster

W = 10


def _row(*cells, first: int = W) -> str:
    head, *rest = [str(c) for c in cells]
    return (head.ljust(first) + "".join(c.ljust(W) for c in rest)).rstrip()


def copy_set_text(members: list[int]) -> str:
    """Go's printing of a map[int]bool, as the homework's readout shows it."""
    return "map[" + " ".join(f"{m}:true" for m in sorted(members)) + "]"


def heading(name: str, reply: P.StatusReply | None, kind: str) -> str:
    label = f"cm_{name}" if kind == "manager" else f"process_{name.removeprefix('node')}"
    if reply is None:
        return f"{label}: not answering"
    if kind == "manager":
        state = "serving" if reply.serving else "not serving"
        dead = f"; dead: {', '.join(f'node{n}' for n in reply.dead)}" if reply.dead else ""
        return f"{label}: {reply.role}, epoch {reply.epoch}, {state}{dead}"
    return f"{label}:"


def extra(cluster: Cluster, cell: str) -> tuple[str, ...]:
    return (cell,) if cluster.replicas else ()


def status_text(cluster: Cluster, replies: list[tuple[str, P.StatusReply | None]]) -> str:
    lines: list[str] = []
    managers = {m.name for m in cluster.managers}
    for name, reply in replies:
        kind = "manager" if name in managers else "node"
        lines.append(heading(name, reply, kind))
        if reply is None:
            continue
        # With replicas a last column names them (the homework's tables have none).
        if kind == "manager":
            lines.append(_row("Record", "Owner_ID", "copy_set", *extra(cluster, "replicas")))
            lines += [_row(r.page, f"lost({r.owner})" if r.lost else r.owner,
                           copy_set_text(r.copy_set).ljust(W),
                           *extra(cluster, copy_set_text(r.holders))) for r in reply.records]
        else:
            lines.append(_row("Page", "isOwner", "Access", *extra(cluster, "Replica")))
            lines += [_row(r.page, str(r.is_owner).lower(), r.access,
                           *extra(cluster, str(r.replica).lower())) for r in reply.pages]
    lines.append(security_line(replies))
    return "\n".join(lines)


def security_line(replies: list[tuple[str, P.StatusReply | None]]) -> str:
    """Which security the answering daemons use: one word, or who uses which."""
    used = {name: reply.security for name, reply in replies if reply is not None}
    kinds = sorted(set(used.values()))
    if len(kinds) <= 1:
        return f"security: {kinds[0] if kinds else 'unknown (no daemon answers)'}"
    return "security: " + "; ".join(
        f"{k} at {', '.join(n for n, v in used.items() if v == k)}" for k in kinds)


def status_json(replies: list[tuple[str, P.StatusReply | None]]) -> str:
    out = []
    for name, reply in replies:
        if reply is None:
            out.append({"name": name, "answering": False})
            continue
        item = {"name": name, "answering": True, "kind": reply.kind, "epoch": reply.epoch,
                "security": reply.security}
        if reply.kind == "manager":
            item.update(role=reply.role, serving=reply.serving, dead=reply.dead,
                        pages=[{"page": r.page, "owner": r.owner, "copy_set": r.copy_set,
                                **({"lost": True} if r.lost else {}),
                                **({"replicas": r.holders} if r.holders else {})}
                               for r in reply.records])
        else:
            item["pages"] = [{"page": r.page, "is_owner": r.is_owner, "access": r.access,
                              **({"replica": True} if r.replica else {})}
                             for r in reply.pages]
        out.append(item)
    return msgspec.json.encode(out).decode()


def trace_text(rows: list[P.TraceRow], nums: dict | None = None) -> str:
    """The homework's table, plus the operation each row belongs to (`nums`: the numbers
    of the whole trace when `rows` is a part of it)."""
    nums = tracing.numbers(rows) if nums is None else nums
    lines = [_row("Type", "From", "To", "Page", "Requester", "Op", first=24)]
    lines += [_row(r.type, r.sender, r.to, r.page, r.requester, nums[tracing.op_key(r)],
                   first=24) for r in rows]
    return "\n".join(lines)


def trace_json(cluster: Cluster, rows: list[P.TraceRow], nums: dict | None = None) -> str:
    nums = tracing.numbers(rows) if nums is None else nums
    return msgspec.json.encode([
        {"lc": r.lc, "type": r.type, "from": r.sender, "to": r.to, "page": r.page,
         "requester": r.requester, "rid": r.rid, "op": nums[tracing.op_key(r)],
         "from_name": cluster.name(r.sender), "to_name": cluster.name(r.to)}
        for r in rows]).decode()


def page_text(data: bytes) -> str:
    """A page as text: trailing zero bytes dropped, undecodable bytes escaped."""
    return data.rstrip(b"\0").decode("utf-8", errors="backslashreplace")
