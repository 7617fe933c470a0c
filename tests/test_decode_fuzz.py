"""`protocol.decode` on hostile frames: random bytes, random JSON, and valid encodings of
every message type mutated (fields deleted, renamed, given values of the wrong type, huge
integers, nested garbage, the type tag swapped, frames added or dropped, bytes cut short).
decode either returns a message or raises ProtocolError, never anything else; and when one
field of a valid header is deleted (a required one) or given a value of the wrong type, the
error names that field. Fixed seed, bounded examples."""
from __future__ import annotations

import json
import re

import msgspec.inspect as mi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivyzmq import protocol as P
from test_protocol import SAMPLES

SETTINGS = dict(derandomize=True, deadline=None, database=None, max_examples=400,
                suppress_health_check=[HealthCheck.too_slow])
NAMES = [cls.__name__ for cls in P.MESSAGE_TYPES]
BASES = ["Msg", "PeerMsg", "ToolMsg", "IvyMsg"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 80, 2 ** 80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=4),
    max_leaves=12)
garbage = st.one_of(json_values, st.sampled_from([2 ** 64, -2 ** 63 - 1, 10 ** 30, 1e308,
                                                  "", "\x00", [[[[[]]]]], {"type": "Ack"}]))
samples = st.sampled_from(sorted(SAMPLES, key=lambda c: c.__name__))


def decodes_or_refuses(frames: list[bytes]):
    """decode's result, or the ProtocolError it raised (any other exception fails)."""
    try:
        return P.decode(frames)
    except P.ProtocolError as exc:
        return exc


def valid(cls) -> tuple[dict, bytes | None]:
    msg, payload = SAMPLES[cls]
    return json.loads(P.encode(msg)[0]), payload


def frames_of(header: dict, payload: bytes | None) -> list[bytes]:
    raw = json.dumps(header).encode()
    return [raw] if payload is None else [raw, payload]


@settings(**SETTINGS)
@given(st.lists(st.binary(max_size=80), max_size=4))
def test_random_bytes(frames):
    decodes_or_refuses(frames)


@settings(**SETTINGS)
@given(json_values, st.sampled_from(NAMES + BASES + ["", "Nope", None, 1]),
       st.booleans(), st.booleans())
def test_random_json(value, tag, tagged, payload):
    if tagged and isinstance(value, dict):
        value = {**value, "type": tag}
    frames = [json.dumps(value).encode()] + ([b"\0" * 4] if payload else [])
    decodes_or_refuses(frames)


MUTATIONS = ["delete", "rename", "garbage", "huge", "tag", "cut", "frames"]


@settings(**SETTINGS)
@given(samples, st.sampled_from(MUTATIONS), st.data())
def test_mutated_valid_messages(cls, how, data):
    header, payload = valid(cls)
    field = data.draw(st.sampled_from(sorted(header)))
    frames = frames_of(header, payload)
    if how == "delete":
        del header[field]
    elif how == "rename":
        header[field + data.draw(st.sampled_from(["x", "_", "S"]))] = header.pop(field)
    elif how == "garbage":
        header[field] = data.draw(garbage)
    elif how == "huge":
        header[field] = data.draw(st.sampled_from([2 ** 64, 2 ** 200, -2 ** 200, [2 ** 70]]))
    elif how == "tag":
        header["type"] = data.draw(st.sampled_from(NAMES + BASES))
    if how in ("delete", "rename", "garbage", "huge", "tag"):
        frames = frames_of(header, payload)
    elif how == "cut":
        frames[0] = frames[0][:data.draw(st.integers(0, len(frames[0]) - 1))]
    else:
        frames = data.draw(st.sampled_from([frames[:1], frames + [b""], frames[:1] + [b"x"],
                                            [b""] + frames, frames * 2]))
    got = decodes_or_refuses(frames)
    if how == "cut":
        assert isinstance(got, P.ProtocolError)


# -- the error names the field ------------------------------------------------------------

WRONG = {"str": "\x00wrong", "float": 1.5, "bool": True, "none": None, "dict": {"\x00": 1},
         "list": ["\x00wrong"]}


def _accepts(t, kind: str) -> bool:
    """Whether a value of `kind` could decode as type `t` (erring towards yes)."""
    if isinstance(t, mi.UnionType):
        return any(_accepts(u, kind) for u in t.types)
    ok = {mi.IntType: (), mi.FloatType: ("float",), mi.BoolType: ("bool",),
          mi.StrType: ("str",), mi.NoneType: ("none",), mi.LiteralType: (),
          mi.EnumType: (), mi.ListType: ("list",), mi.TupleType: ("list",),
          mi.DictType: ("dict",)}.get(type(t))
    if isinstance(t, mi.StructType):
        ok = ("list",) if t.array_like else ("dict",)
    return ok is None or kind in ok     # a type not listed here: assume it accepts


def _fields(cls) -> list[tuple[str, object, bool]]:
    """(name, type, required) of each header field, the type tag included."""
    info = mi.type_info(cls)
    return [("type", mi.StrType(), True)] + [(f.encode_name, f.type, f.required)
                                             for f in info.fields]


def _names(text: str, field: str) -> bool:
    return f"`{field}`" in text or re.search(rf"`\$\.{field}[`\[.]", text) is not None


@settings(**SETTINGS)
@given(samples, st.data())
def test_one_bad_field_is_named(cls, data):
    header, payload = valid(cls)
    name, ftype, required = data.draw(st.sampled_from(_fields(cls)))
    wrong = [k for k in WRONG if not _accepts(ftype, k)]
    if required and data.draw(st.booleans()) or not wrong:
        if not required:
            return
        del header[name]
    else:
        header[name] = WRONG[data.draw(st.sampled_from(wrong))]
    got = decodes_or_refuses(frames_of(header, payload))
    assert isinstance(got, P.ProtocolError), (cls.__name__, name, header)
    assert _names(str(got), name), (name, str(got))


def test_every_required_field_and_every_type_is_tried():
    """The property above can reach every field: each has a wrong value or is required."""
    for cls in SAMPLES:
        for name, ftype, required in _fields(cls):
            assert required or any(not _accepts(ftype, k) for k in WRONG), (cls, name)
