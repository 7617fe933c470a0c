"""Tests for the EDN reader, the Jepsen history formats and `ivy check --format`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivyzmq import cli
from ivyzmq.checker import check
from ivyzmq.edn import EdnError, Keyword, Symbol, read_all, read_items, read_one
from ivyzmq.histfmt import load_history
from ivyzmq.history import HistoryError

DATA = Path(__file__).resolve().parent / "data" / "jepsen"


def main(argv: list[str]) -> int:
    return cli.main(["check", *argv])


def write(tmp_path: Path, text: str, name: str = "h.edn") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the EDN reader ---------------------------------------------------------------


def test_edn_values() -> None:
    text = ('{:type :invoke, :f :cas, :value [1 -2], :n nil, :t true, :ff false,\n'
            ' :s "a \\"q\\"\\n\\u00e9", :x 1.5, :big 12N, :ns/kw sym, :set #{1}, :l (1 2)}')
    [(line, form)] = read_all(text)
    assert line == 1
    assert form == {Keyword("type"): Keyword("invoke"), Keyword("f"): Keyword("cas"),
                    Keyword("value"): [1, -2], Keyword("n"): None, Keyword("t"): True,
                    Keyword("ff"): False, Keyword("s"): 'a "q"\né', Keyword("x"): 1.5,
                    Keyword("big"): 12, Keyword("ns/kw"): Symbol("sym"),
                    Keyword("set"): [1], Keyword("l"): [1, 2]}


def test_edn_comments_tags_discards_and_lines() -> None:
    text = '; a comment\n#jepsen.history.Op{:a 1}\n#_ {:skipped 1}\n\n{:b [#inst "x" \\c]}\n'
    assert read_all(text) == [(2, {Keyword("a"): 1}), (3, {Keyword("b"): ["x", "c"]})]
    assert read_items("[{:a 1}\n {:a 2}\n]") == [(1, {Keyword("a"): 1}), (2, {Keyword("a"): 2})]
    assert read_items("({:a 1} ; c\n{:a 2})")[1] == (2, {Keyword("a"): 2})
    assert read_one(" [1 2] ") == [1, 2]


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("{:a 1}\n{:b [1 2}\n", 2, "closes '['"),
    ("{:a 1}\n\n{:b 1", 3, "never closed"),
    ("{:a 1 :b}", 1, "even number"),
    ("{:a 1}\n]", 2, "unexpected ']'"),
    ('{:a "x\\q"}', 1, "unknown escape"),
    ("[{:a 1}]\n{:b 2}", 2, "more text after"),
    ("{:a 1x}", 1, "not a number"),
    ('{:a 1}\n{:b "x\n', 2, "string here is never closed"),
    ('{:a "\\uZZ"}', 1, "bad escape"),
    ("{{:a 1} 2}", 1, "cannot hash"),
    ("[" * 5000 + "]" * 5000, 1, "nested too deeply"),
])
def test_edn_errors_name_the_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(EdnError) as info:
        read_items(text)
    assert info.value.line == line and needle in str(info.value)


# --- Jepsen histories ------------------------------------------------------------------


ONE_PER_LINE = """\
{:type :invoke, :f :write, :value 1, :process 0, :time 10, :index 0}
{:type :ok, :f :write, :value 1, :process 0, :time 20, :index 1}
{:type :invoke, :f :cas, :value [1 2], :process 1, :time 30, :index 2}
{:type :invoke, :f :read, :value nil, :process 2, :time 35, :index 3}
{:type :info, :f :cas, :value [1 2], :process 1, :time 40, :index 4}
{:type :info, :f :start, :process :nemesis, :time 41, :index 5}
{:type :ok, :f :read, :value 2, :process 2, :time 50, :index 6}
{:type :invoke, :f :read, :value nil, :process 1, :time 60, :index 7}
{:type :ok, :f :read, :value 2, :process 1, :time 70, :index 8}
{:type :invoke, :f :write, :value 3, :process 3, :time 80, :index 9}
{:type :fail, :f :write, :value 3, :process 3, :time 90, :index 10}
{:type :invoke, :f :cas, :value [2 4], :process 3, :time 95, :index 11}
"""


def test_edn_history_pairs_invokes_and_completions(tmp_path: Path) -> None:
    ops = load_history(write(tmp_path, ONE_PER_LINE), "edn")
    shown = sorted((op.start, op.kind, op.client, op.value, op.expected, op.swapped, op.outcome,
                    op.end) for op in ops)
    assert shown == [
        (1.0, "write", 0, "1", "", None, "ok", 2.0),
        (3.0, "cas", 1, "2", "1", None, "unknown", None),     # :info
        (4.0, "read", 2, "2", "", None, "ok", 7.0),
        (8.0, "read", 1, "2", "", None, "ok", 9.0),           # process 1 again, after :info
        (10.0, "write", 3, "3", "", None, "failed", 11.0),
        (12.0, "cas", 3, "4", "2", None, "unknown", None),    # never completed
    ]
    assert check(ops).ok is True        # the unknown cas landed before the reads of 2
    vector = "[" + ONE_PER_LINE.replace("{:type :ok, :f :read, :value 2, :process 1", "{:type "
                                        ":ok, :f :read, :value 1, :process 1") + "]"
    res = check(load_history(write(tmp_path, vector), "edn"))
    assert res.ok is False and "read by client 1 of '1' at [8, 9]" in res.explanation


def test_edn_history_with_events_sharing_a_line_uses_positions(tmp_path: Path) -> None:
    text = ("[{:type :invoke :f :write :value 1 :process 0} {:type :ok :f :write :value 1 "
            ":process 0} {:type :invoke :f :read :process 1} {:type :ok :f :read :value 1 "
            ":process 1}]")
    ops = load_history(write(tmp_path, text), "edn")
    assert [(op.start, op.end) for op in ops] == [(0.0, 1.0), (2.0, 3.0)]
    cas_ok = text.replace(":f :write :value 1", ":f :cas :value [nil 1]")
    assert [op.swapped for op in load_history(write(tmp_path, cas_ok), "edn")] == [True, None]
    some = text.replace("} {:type :invoke :f :read", "}\n{:type :invoke :f :read")
    assert [(op.start, op.end) for op in load_history(write(tmp_path, some), "edn")] == [
        (0.0, 1.0), (2.0, 3.0)]


def test_an_invoke_never_completed_is_unknown(tmp_path: Path) -> None:
    text = """\
{:type :invoke, :f :write, :value 1, :process 0}
{:type :invoke, :f :write, :value 2, :process 0}
{:type :ok, :f :write, :value 2, :process 0}
{:type :invoke, :f :read, :value nil, :process 1}
{:type :ok, :f :read, :value 1, :process 1}
"""
    ops = load_history(write(tmp_path, text), "edn")
    assert sorted((op.start, op.value, op.outcome) for op in ops) == [
        (1.0, "1", "unknown"), (2.0, "2", "ok"), (4.0, "1", "ok")]
    assert check(ops).ok is True        # the first write landed late


def test_independent_keys_become_pages(tmp_path: Path) -> None:
    text = """\
{:type :invoke, :f :write, :value [3 1], :process 0}
{:type :ok, :f :write, :value [3 1], :process 0}
{:type :invoke, :f :cas, :value [5 [nil 7]], :process 1}
{:type :ok, :f :cas, :value [5 [nil 7]], :process 1}
{:type :invoke, :f :read, :value [3 nil], :process 2}
{:type :ok, :f :read, :value [3 1], :process 2}
{:type :invoke, :f :read, :value [5 nil], :process 2}
{:type :ok, :f :read, :value [5 7], :process 2}
"""
    ops = load_history(write(tmp_path, text), "edn")
    assert sorted((op.page, op.kind, op.value) for op in ops) == [
        (3, "read", "1"), (3, "write", "1"), (5, "cas", "7"), (5, "read", "7")]
    res = check(ops)
    assert res.ok is True and res.pages_checked == 2
    bad = text.replace(":value [5 7]", ":value [5 1]")
    assert check(load_history(write(tmp_path, bad), "edn")).page == 5


def test_jepsen_adds_make_a_counter(tmp_path: Path) -> None:
    text = "\n".join(f"{{:type {t}, :f {f}, :value {v}, :process {p}}}" for t, f, v, p in [
        (":invoke", ":add", 2, 0), (":invoke", ":add", 3, 1), (":ok", ":add", 2, 0),
        (":ok", ":add", 3, 1), (":invoke", ":read", "nil", 0), (":ok", ":read", 5, 0)])
    assert check(load_history(write(tmp_path, text), "edn")).ok is True
    lost = text.replace(":value 5", ":value 3")
    assert check(load_history(write(tmp_path, lost), "edn")).ok is False


LOG = """\
2017-01-01 12:00:00,000{GMT}	INFO	[jepsen worker 0] jepsen.core - Worker 0 starting
INFO  jepsen.util - 0	:invoke	:write	1
INFO  jepsen.util - 0	:ok	:write	1
INFO  jepsen.util - 1	:invoke	:cas	[1 2]
INFO  jepsen.util - 2	:invoke	:read	nil
INFO  jepsen.util - 1	:ok	:cas	[1 2]
INFO  jepsen.util - :nemesis	:info	:start	nil
INFO  jepsen.util - 2	:ok	:read	2
INFO  jepsen.util - 3	:invoke	:read	nil
INFO  jepsen.util - 3	:fail	:read	:timed-out
"""


def test_jepsen_log(tmp_path: Path) -> None:
    ops = load_history(write(tmp_path, LOG, "h.log"), "jepsen-log")
    assert sorted((op.start, op.kind, op.value, op.outcome) for op in ops) == [
        (2.0, "write", "1", "ok"), (4.0, "cas", "2", "ok"), (5.0, "read", "2", "ok"),
        (9.0, "read", "", "failed")]
    assert check(ops).ok is True
    stale = LOG.replace("3	:fail	:read	:timed-out", "3	:ok	:read	1")   # after the cas
    assert check(load_history(write(tmp_path, stale, "h.log"), "jepsen-log")).ok is False


@pytest.mark.parametrize(("fmt", "text", "line", "needle"), [
    ("edn", "{:type :invoke, :f :read, :process 0}\n{:type :bogus, :f :read, :process 0}",
     2, "unknown :type :bogus"),
    ("edn", "{:type :invoke, :f :read, :process 0}\n\n{:type :ok, :f :read, :process 0",
     3, "never closed"),
    ("edn", "{:type :ok, :f :read, :value 1, :process 4}", 1, "which invoked nothing"),
    ("edn", "{:type :invoke, :f :write, :value 1, :process 0}\n{:type :ok, :f :read, :process 0}",
     2, "completes the :invoke :write of line 1"),
    ("edn", "{:type :invoke, :f :incr, :process 0}", 1, "unsupported :f :incr"),
    ("edn", "{:type :invoke, :process 0}", 1, "no :f"),
    ("edn", "[1 2]", 1, "expected a map"),
    ("edn", "{:type :invoke, :f :cas, :value 3, :process 0}", 1, "a cas needs [expected new]"),
    ("jepsen-log", "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 1\t:invoke"
     "\t:cas\t[1 2\n", 2, "never closed"),
    ("jepsen-log", "INFO  jepsen.util - 0\t:invoke\n", 1, "needs process, type and function"),
    ("jepsen-log", "garbage\nmore garbage\n", 1, "no op lines"),
])
def test_malformed_input_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        fmt: str, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HistoryError) as info:
        load_history(path, fmt)
    assert str(info.value).startswith(f"{path}:{line}: ") and needle in str(info.value)
    assert main([str(path), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ivy check: error: {path}:{line}: ") and err.count("\n") == 1


# --- public histories with known verdicts, and the command ----------------------------


@pytest.mark.parametrize("path", sorted(DATA.iterdir()), ids=lambda p: p.name)
def test_public_histories_get_their_known_verdicts(path: Path) -> None:
    """Jepsen CAS-register histories from knossos and porcupine (see each file's first
    line for where it comes from); the name says the verdict."""
    fmt = "edn" if path.suffix == ".edn" else "jepsen-log"
    res = check(load_history(path, fmt))
    assert res.ok is ("-good-" in path.name), res.explanation


def test_cli_formats_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = DATA / "knossos-good-cas-register-bug.edn", DATA / "porcupine-bad-etcd_000.log"
    assert main([str(good), "--format", "edn"]) == 0
    assert capsys.readouterr().out == "linearizable: 5 ops on 1 pages\n"
    assert main([str(bad), "--format", "jepsen-log", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
    assert main([str(DATA / "porcupine-good-etcd_002.log"), "--format", "jepsen-log",
                 "--max-states", "10"]) == 2
    assert capsys.readouterr().out.startswith("unknown: search budget exceeded on page 0")
    assert main([str(good)]) == 2                       # not JSON Lines
    assert f"{good}:1: not valid JSON" in capsys.readouterr().err
    assert main([str(good), "--format", "yaml"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.edn"), "--format", "edn"]) == 2
    assert "cannot read" in capsys.readouterr().err
