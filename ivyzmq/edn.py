"""A small, tolerant reader for the part of EDN that Jepsen histories use.

Maps become dicts, vectors, lists and sets become lists, keywords become `Keyword`,
symbols `Symbol`, and strings, integers, floats, nil (None), true and false what Python
has for them.  Commas are whitespace, `;` starts a comment, `#_` discards the next form
and a tag (`#inst`, `#jepsen.history.Op`) is dropped, leaving the form it tags.
Characters (`\\a`) read as one-letter strings.  `read_all` returns every top-level form
with the line it starts on, `read_items` the same for the forms inside a file that is one
vector or list; a problem raises `EdnError` naming its line.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["EdnError", "Keyword", "Symbol", "read_all", "read_items", "read_one"]


class EdnError(ValueError):
    """Text that is not (this subset of) EDN; `line` is where the problem is."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class Keyword(NamedTuple):
    """`:name` (the name keeps a namespace: `:a/b` is Keyword("a/b"))."""

    name: str


class Symbol(NamedTuple):
    """A bare word that is not nil, true, false or a number."""

    name: str


_TOKEN = re.compile(r"""
    (?: [\s,] | ;[^\n]* )*                    # whitespace and comments before a token
    (?: (?P<string> "(?: [^"\\] | \\. )*" )
      | (?P<open> \#\{ | [\[({] )
      | (?P<close> [\])}] )
      | (?P<discard> \#_ )
      | (?P<tag> \#[^\s,;"\[\](){}\#]+ )
      | (?P<char> \\(?: newline | space | tab | . ) )
      | (?P<atom> [^\s,;"\[\](){}\#\\]+ )
      | (?P<end> \Z )
      | (?P<bad> . ) )
""", re.VERBOSE | re.DOTALL)
_INT = re.compile(r"[+-]?[0-9]+N?")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_FLOAT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?M?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}
_CHARS = {"\\newline": "\n", "\\space": " ", "\\tab": "\t"}
_CLOSER = {"[": "]", "(": ")", "{": "}", "#{": "}"}
_KNOWN: dict = {"nil": None, "true": True, "false": False}    # and keywords once seen


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) of every token, the last one of kind "end"."""
    out, line, pos = [], 1, 0
    while True:
        m = _TOKEN.match(text, pos)
        assert m is not None    # "bad" matches any character
        kind = m.lastgroup
        start = m.start(kind)   # type: ignore[arg-type]
        line += text.count("\n", pos, start)
        tok = m.group(kind)     # type: ignore[arg-type]
        if kind == "bad":
            raise EdnError(line, "a string here is never closed" if tok == '"' else
                           f"unexpected {tok!r}")
        out.append((kind, tok, line))     # type: ignore[arg-type]
        if kind == "end":
            return out
        if kind == "string":
            line += tok.count("\n")
        pos = m.end()


def _string(tok: str, line: int) -> str:
    body, out, i = tok[1:-1], [], 0
    if "\\" not in body:
        return body
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt == "u":
                code = body[i + 2:i + 6]
                if not _HEX4.fullmatch(code):
                    raise EdnError(line, f"bad escape \\u{code} in a string")
                out.append(chr(int(code, 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise EdnError(line, f"unknown escape \\{nxt} in a string")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _atom(tok: str, line: int) -> object:
    known = _KNOWN.get(tok, _KNOWN)
    if known is not _KNOWN:
        return known
    if tok[0] == ":":
        if len(tok) == 1:
            raise EdnError(line, "a keyword needs a name")
        kw = Keyword(tok.lstrip(":"))
        if len(_KNOWN) < 4096:
            _KNOWN[tok] = kw
        return kw
    if _INT.fullmatch(tok):
        return int(tok.rstrip("N"))
    if _FLOAT.fullmatch(tok):
        return float(tok.rstrip("M"))
    if tok[0].isdigit():
        raise EdnError(line, f"not a number: {tok}")
    return Symbol(tok)


class _Reader:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def more(self) -> bool:
        return self.toks[self.i][0] != "end"

    def line(self) -> int:
        return self.toks[self.i][2]

    def form(self) -> object:
        kind, tok, line = self.toks[self.i]
        self.i += 1
        if kind == "atom":
            return _atom(tok, line)
        if kind == "open":
            return self.collection(tok, line)
        if kind == "string":
            return _string(tok, line)
        if kind == "char":
            return _CHARS.get(tok, tok[1:])
        if kind in ("discard", "tag"):
            dropped = self.form()
            return self.form() if kind == "discard" else dropped
        self.i -= 1
        raise EdnError(line, "unexpected end of input" if kind == "end" else
                       f"unexpected {tok!r}")

    def rest(self) -> list[tuple[int, object]]:
        """The forms from here on, each with the line it starts on."""
        out = []
        while self.more():
            line = self.line()
            out.append((line, self.form()))
        return out

    def collection(self, opener: str, line: int) -> object:
        items, toks = [], self.toks
        while True:
            kind, tok, at = toks[self.i]
            if kind == "close":
                self.i += 1
                if tok != _CLOSER[opener]:
                    raise EdnError(at, f"{tok!r} closes {opener!r} of line {line}")
                break
            if kind == "end":
                raise EdnError(line, f"{opener!r} opened here is never closed")
            items.append(self.form())
        if opener != "{":
            return items
        if len(items) % 2:
            raise EdnError(line, "a map needs an even number of forms")
        keys = [tuple(k) if isinstance(k, list) else k for k in items[::2]]
        try:
            return dict(zip(keys, items[1::2]))
        except TypeError:
            raise EdnError(line, "a map here has a key Python cannot hash (a map, or "
                           "a vector holding one)") from None


def read_all(text: str) -> list[tuple[int, object]]:
    """Every top-level form of `text`, with the line it starts on."""
    reader = _Reader(text)
    return _shallow(reader, reader.rest)


def _shallow(reader: _Reader, read):
    """`read()`, with too deep a nesting reported as an EdnError."""
    try:
        return read()
    except RecursionError:
        raise EdnError(reader.line(), "nested too deeply") from None


def read_items(text: str) -> list[tuple[int, object]]:
    """The forms of `text` with their lines, or, when `text` is one vector or list, the
    forms inside it (so that each element of a long history keeps its own line)."""
    reader = _Reader(text)
    return _shallow(reader, lambda: _items(reader))


def _items(reader: _Reader) -> list[tuple[int, object]]:
    if not reader.more() or reader.toks[0][:2] not in (("open", "["), ("open", "(")):
        return reader.rest()
    _, opener, first = reader.toks[0]
    reader.i = 1
    out = []
    while True:
        kind, tok, line = reader.toks[reader.i]
        if kind == "end":
            raise EdnError(first, f"{opener!r} opened here is never closed")
        if kind == "close":
            if tok != _CLOSER[opener]:
                raise EdnError(line, f"{tok!r} closes {opener!r} of line {first}")
            reader.i += 1
            break
        out.append((line, reader.form()))
    if reader.more():
        raise EdnError(reader.line(), f"more text after the {opener}...{_CLOSER[opener]} "
                       f"of line {first}")
    return out


def read_one(text: str, line: int = 1) -> object:
    """The one form in `text` (a field of a log line); errors name `line`."""
    try:
        forms = read_all(text)
    except EdnError as e:
        raise EdnError(line, e.message) from None
    if len(forms) != 1:
        raise EdnError(line, f"expected one value, found {len(forms)}")
    return forms[0][1]
