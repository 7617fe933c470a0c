"""The wire format (ivyzmq/protocol.py): every message type survives a round trip, and
decoding is strict - anything malformed raises ProtocolError with a message naming what is
wrong, never another exception."""
from __future__ import annotations

import json
import typing

import pytest

from ivyzmq import protocol as P

PAGE = bytes(range(256)) * 16          # a 4 KiB page with every byte value in it


def _ivy(cls):
    return cls(page=1, requester=2, rid=1234567890123, opseq=7, sender=2, epoch=4, lc=99)


SAMPLES: dict[type, tuple[P.Msg, bytes | None]] = {
    P.ReadRequest: (_ivy(P.ReadRequest), None),
    P.WriteRequest: (_ivy(P.WriteRequest), None),
    P.ReadConfirmation: (_ivy(P.ReadConfirmation), None),
    P.WriteConfirmation: (_ivy(P.WriteConfirmation), None),
    P.InvalidateConfirmation: (_ivy(P.InvalidateConfirmation), None),
    P.ReadForward: (_ivy(P.ReadForward), None),
    P.WriteForward: (_ivy(P.WriteForward), None),
    P.Invalidate: (_ivy(P.Invalidate), None),
    P.WriteGrant: (_ivy(P.WriteGrant), None),
    P.ReadPage: (_ivy(P.ReadPage), PAGE),
    P.WritePage: (_ivy(P.WritePage), PAGE),
    P.Ack: (P.Ack(page=3, rid=17, done=True, sender=3, epoch=2), None),
    P.Confirmed: (P.Confirmed(acks=[(3, 17), (1, 18)], sender=3, epoch=2), None),
    P.NotActive: (P.NotActive(hint=4, sender=3, epoch=2), None),
    P.Recover: (P.Recover(sender=4, epoch=5), None),
    P.TableReport: (P.TableReport(sender=1, epoch=5, pages=[
        P.PageReport(0, True, "ReadWrite", 3, 11),
        P.PageReport(1, False, "Read", 4, 12, P.Pending("write", 13)),
        P.PageReport(2, False, "Nil", 5, 0, None, P.Handoff("write", 2, 99, 5)),
    ]), None),
    P.Heartbeat: (P.Heartbeat(role="active", seq=12, boot=77, sender=3, epoch=2), None),
    P.Replicate: (P.Replicate(seq=5, sender=3, epoch=2, changes=[
        P.PageRec(page=1, owner=2, copy_set=[0, 1], opseq=9,
                  op=P.InFlight("write", 2, 55, "invalidating", [0, 1]),
                  queue=[P.Req("read", 0, 56)], last_rid={2: 55, 0: 56}),
    ]), None),
    P.ReplicateAck: (P.ReplicateAck(seq=5, sender=4, epoch=2), None),
    P.Snapshot: (P.Snapshot(seq=6, sender=3, epoch=2, pages=[P.PageRec(page=0, owner=0)],
                            members=[P.Member(0, 5), P.Member(1, 3, True)]), None),
    P.SnapshotRequest: (P.SnapshotRequest(sender=4, epoch=2), None),
    P.Handback: (P.Handback(sender=4, epoch=3), None),
    P.ClientRead: (P.ClientRead(page=2, cid=8), None),
    P.ClientWrite: (P.ClientWrite(page=2, offset=10, cid=9), b"hello"),
    P.ClientCas: (P.ClientCas(page=2, offset=1, cid=10), b"oldnew"),
    P.ClientAdd: (P.ClientAdd(page=2, offset=8, delta=-3, cid=11), None),
    P.ClientReply: (P.ClientReply(cid=9, error="page 9 out of range 0..4",
                                  code=P.ErrorCode.RANGE), None),
    P.StatusQuery: (P.StatusQuery(), None),
    P.StatusReply: (P.StatusReply(name="primary", kind="manager", role="active", serving=True,
                                  pending=1, records=[P.RecordRow(0, 0, []),
                                                      P.RecordRow(1, 1, [2])]), None),
    P.TraceQuery: (P.TraceQuery(clear=True), None),
    P.TraceReply: (P.TraceReply(rows=[P.TraceRow(5, "ReadRequest", 2, 3, 1, 2)]), None),
    P.ErrorReply: (P.ErrorReply(error="bad message: nope"), None),
    P.Lost: (P.Lost(page=1, requester=2, rid=7, opseq=3, owner=1, sender=3, epoch=2), None),
    P.NodeBeat: (P.NodeBeat(inc=5, member=True, t=12.5, sender=1, epoch=2), None),
    P.NodeBeatAck: (P.NodeBeatAck(t=12.5, sender=3, epoch=2), None),
    P.Admit: (P.Admit(inc=5, fresh=False, sender=3, epoch=2), None),
    P.Update: (P.Update(page=2, version=(7, 3), sender=1, epoch=2), PAGE),
    P.UpdateAck: (P.UpdateAck(page=2, version=(7, 3), sender=2, epoch=2), None),
    P.Assign: (P.Assign(pages=[(2, 8, [1, 3], True, [3])], sender=4, epoch=6), None),
    P.AssignAck: (P.AssignAck(sender=1, epoch=6), None),
    P.Fenced: (P.Fenced(inc=5, sender=3, epoch=2), None),
    P.WaitQuery: (P.WaitQuery(page=2), None),
    P.WaitReply: (P.WaitReply(page=2, waits="fault", manager=3, queued=1, kind="read",
                              rid=77, began=2.5, asked=1.0, heard=0.2, lease=None,
                              sender=0), None),
    P.PageQuery: (P.PageQuery(page=2), None),
    P.PageReply: (P.PageReply(page=2, role="active", serving=True,
                              record=P.RecordRow(2, 1, [2]),
                              op=P.InFlight("read", 0, 77, "forwarded"), sent=0.4,
                              queue=[P.Req("write", 2, 9)], sender=3), None),
}


def test_samples_cover_every_message_type():
    assert set(SAMPLES) == set(typing.get_args(P.AnyMsg))


@pytest.mark.parametrize("base", ["Msg", "PeerMsg", "ToolMsg", "IvyMsg"])
def test_base_classes_are_not_messages(base):
    assert f"'{base}'" in _error([_frame(**{**GOOD, "type": base})])


def test_catalogue_is_derived_from_the_classes():
    assert set(P.WITH_PAYLOAD) == {P.ReadPage, P.WritePage, P.ClientWrite, P.Update,
                                   P.ClientCas}
    assert all(issubclass(c, (P.PeerMsg, P.ToolMsg)) for c in P.MESSAGE_TYPES)


def test_node_status_rows_and_error_codes():
    reply = P.StatusReply(name="node1", kind="node", pages=[P.PageRow(0, True, "ReadWrite")])
    got, _ = P.decode(P.encode(reply))
    assert got == reply and got.pages[0].access == "ReadWrite"
    assert b"[[0,true,\"ReadWrite\",false]]" in P.encode(reply)[0]     # rows stay arrays
    got, _ = P.decode(P.encode(P.ClientReply(cid=1, error="x", code=P.ErrorCode.SIZE)))
    assert got.code is P.ErrorCode.SIZE
    assert "$.code" in _error([_frame(type="ClientReply", cid=1, code="nope")])


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_round_trip(cls):
    msg, payload = SAMPLES[cls]
    frames = P.encode(msg, payload)
    assert len(frames) == (1 if payload is None else 2)
    header = json.loads(frames[0])
    assert header["type"] == cls.__name__
    got, got_payload = P.decode(frames)
    assert type(got) is cls
    assert got == msg
    assert got_payload == payload
    assert P.type_name(got) == cls.__name__


def test_defaults_filled_when_absent():
    msg, payload = P.decode([b'{"type":"ReadRequest","page":1,"requester":2,"rid":3}'])
    assert msg == P.ReadRequest(page=1, requester=2, rid=3, opseq=0, sender=-1, epoch=0, lc=0)
    assert payload is None


def test_payload_is_carried_raw():
    frames = P.encode(P.ReadPage(page=0, requester=1, rid=2), b"\0\xff" * 2048)
    assert frames[1] == b"\0\xff" * 2048          # not base64, not JSON
    assert b"\xff" not in frames[0]


def _error(frames) -> str:
    with pytest.raises(P.ProtocolError) as info:
        P.decode(frames)
    return str(info.value)


def _frame(**fields) -> bytes:
    return json.dumps(fields).encode()


GOOD = dict(type="ReadRequest", page=1, requester=2, rid=3)


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"\xff\xfe", b"[1, 2]", b"42",
                                 b"null"])
def test_not_json_or_not_an_object(raw):
    assert _error([raw])


def test_unknown_type_is_named():
    text = _error([_frame(**{**GOOD, "type": "ReadRequestt"})])
    assert "ReadRequestt" in text and "$.type" in text


def test_missing_type_tag():
    text = _error([_frame(page=1, requester=2, rid=3)])
    assert "type" in text


@pytest.mark.parametrize("field", ["page", "requester", "rid"])
def test_missing_field_is_named(field):
    fields = dict(GOOD)
    del fields[field]
    assert f"`{field}`" in _error([_frame(**fields)])


@pytest.mark.parametrize("field,value", [("page", "1"), ("rid", 1.5), ("requester", None),
                                         ("opseq", [1]), ("epoch", "x"), ("sender", {})])
def test_wrong_type_is_named(field, value):
    text = _error([_frame(**{**GOOD, field: value})])
    assert f"$.{field}" in text


def test_wrong_type_deep_inside_is_located():
    report = {"type": "TableReport", "sender": 0,
              "pages": [[0, True, "ReadWrite", 0, 0], [1, "yes", "Nil", 0, 0]]}
    text = _error([json.dumps(report).encode()])
    assert "$.pages[1]" in text


def test_bad_enum_value_is_named():
    report = {"type": "TableReport", "sender": 0, "pages": [[0, True, "Write", 0, 0]]}
    text = _error([json.dumps(report).encode()])
    assert "'Write'" in text and "$.pages[0][2]" in text


def test_unknown_field_is_named():
    text = _error([_frame(**GOOD, colour="red")])
    assert "colour" in text


@pytest.mark.parametrize("cls", P.WITH_PAYLOAD, ids=lambda c: c.__name__)
def test_missing_payload_frame(cls):
    msg, payload = SAMPLES[cls]
    text = _error(P.encode(msg))
    assert cls.__name__ in text and "payload" in text


@pytest.mark.parametrize("n", [0, 3, 5])
def test_wrong_number_of_frames(n):
    frames = [_frame(**GOOD)] + [b"x"] * max(0, n - 1) if n else []
    text = _error(frames)
    assert str(n) in text


def test_protocol_error_is_a_value_error():
    assert issubclass(P.ProtocolError, ValueError)
