"""Command-line values are checked by the parser (counts positive, shares in [0, 1],
durations finite, seeds not negative) and, once the config is loaded, against it (page and
node numbers, page counts): a bad one stops the command with one line naming the option
and exit status 2 before anything runs. An exception nobody expected is one line and the
path of a file with its traceback. Most cases run `ivy` in-process (`cli.main`); the last
ones run the real command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, cluster_dict
from ivyzmq import args as A
from ivyzmq import cli
from ivyzmq.deploy import Deployment
from ivyzmq.harness import configs
from ivyzmq.history import Op, save_ops

SUBCOMMANDS = sorted(next(a for a in cli.parser()._actions if a.dest == "cmd").choices)
# The positionals (or required options) each subcommand needs; the others need none.
REQUIRED = {"read": ["0", "1"], "write": ["0", "1", "x"], "kill": ["primary"],
            "pause": ["primary"], "resume": ["primary"], "restart": ["primary"],
            "homework": ["r"], "experiment": ["a"], "check": ["h.jsonl"],
            "sim": ["--seed", "1"], "cas": ["0", "1", "a", "b"], "add": ["0", "1", "5"]}


@pytest.fixture
def five(tmp_path) -> Path:
    """A 3-node, 5-page cluster that does not run: whatever slips through the checks ends
    quickly in time-outs instead of hanging the test."""
    return configs.write(tmp_path / "five.yaml", cluster_dict(pages=5, op_timeout=0.3))


def ivy(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def refused(capsys, *argv) -> str:
    """The command exits 2 having printed nothing but its error: the one line naming the
    option (argparse puts its usage lines before it)."""
    rc, out, err = ivy(capsys, *argv)
    assert (rc, out) == (2, ""), err
    lines = err.strip().splitlines()
    assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), err
    return lines[-1]


# -- the cases of the issue -----------------------------------------------------------------

def test_workload_clients_0(capsys, five):
    line = refused(capsys, "workload", "--clients", 0, "-c", five)
    assert line == ("ivy workload: error: argument --clients: must be a whole number of "
                    "at least 1, got '0'")


def test_workload_ops_negative(capsys, five):
    line = refused(capsys, "workload", "--ops", -1, "-c", five)
    assert line.startswith("ivy workload: error: argument --ops:") and "'-1'" in line


def test_workload_read_share_2(capsys, five):
    line = refused(capsys, "workload", "--read-share", 2, "-c", five)
    assert line == ("ivy workload: error: argument --read-share: must be a number from 0 "
                    "to 1, got '2'")


def test_workload_pages_0(capsys, five):
    line = refused(capsys, "workload", "--pages", 0, "-c", five)
    assert line.startswith("ivy workload: error: argument --pages:") and "'0'" in line


def test_workload_pages_99_on_a_5_page_cluster(capsys, five):
    line = refused(capsys, "workload", "--pages", 99, "--ops", 5, "-c", five)
    assert line == f"ivy workload: error: --pages 99: more than the 5 pages of {five}"


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_accepts_config(cmd, tmp_path):
    args = cli.parser().parse_args([cmd, *REQUIRED.get(cmd, []), "-c", str(tmp_path / "x")])
    assert args.config == str(tmp_path / "x")
    args = cli.parser().parse_args([cmd, *REQUIRED.get(cmd, []), "--config", "y.yaml"])
    assert args.config == "y.yaml"


def _history(tmp_path: Path) -> Path:
    path = tmp_path / "h.jsonl"
    save_ops(path, [Op(client=0, node=0, page=1, kind="write", value="a", start=1.0,
                       end=2.0, outcome="ok"),
                    Op(client=1, node=1, page=1, kind="read", value="a", start=3.0, end=4.0,
                       outcome="ok")])
    return path


def _real(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ivy"), *map(str, argv)], capture_output=True,
                          text=True, timeout=120)


def test_check_file_with_config(tmp_path, five):
    """`ivy check` needs no cluster: it takes -c like every subcommand and ignores it."""
    history = _history(tmp_path)
    plain = _real("check", history)
    with_c = _real("check", history, "-c", five)
    assert plain.returncode == 0 and "linearizable" in plain.stdout, plain.stderr
    assert (with_c.returncode, with_c.stdout, with_c.stderr) == (0, plain.stdout, "")
    assert _real("check", history, "-c", tmp_path / "missing.yaml").returncode == 0


def test_sim_with_config(five):
    """`ivy sim` simulates its own cluster: -c is taken and changes nothing."""
    plain = _real("sim", "--seed", 3)
    with_c = _real("sim", "--seed", 3, "-c", five)
    assert "verdict:" in plain.stdout, plain.stderr
    assert (with_c.returncode, with_c.stdout) == (plain.returncode, plain.stdout)
    assert "unrecognized arguments" not in with_c.stderr


# -- more values the parser refuses -----------------------------------------------------------

@pytest.mark.parametrize("argv,option", [
    (["homework", "r", "--ops", "0"], "--ops"),
    (["homework", "w", "--kill-prob", "-0.1"], "--kill-prob"),
    (["homework", "w", "--restart-prob", "nan"], "--restart-prob"),
    (["homework", "w", "--seed", "-4"], "--seed"),
    (["experiment", "b", "--clients", "0"], "--clients"),
    (["experiment", "c", "--cycles", "0"], "--cycles"),
    (["experiment", "a", "--ops", "1.5"], "--ops"),
    (["chaos", "--duration", "0"], "--duration"),
    (["chaos", "--duration", "inf"], "--duration"),
    (["chaos", "--nodes", "0"], "--nodes"),
    (["chaos", "--read-share", "1.01"], "--read-share"),
    (["sim", "--seeds", "0"], "--seeds"),
    (["sim", "--seed", "-1"], "--seed"),
    (["sim", "--seeds", "5", "--jobs", "0"], "--jobs"),
    (["sim", "--seeds", "5", "--start", "-2"], "--start"),
    (["check", "h.jsonl", "--max-states", "0"], "--max-states"),
    (["write", "0", "1", "x", "--offset", "-1"], "--offset"),
    (["read", "zero", "1"], "node"),
])
def test_parser_refuses(capsys, five, argv, option):
    line = refused(capsys, *argv, "-c", five)
    assert line.startswith(f"ivy {argv[0]}: error: argument {option}: "), line


@pytest.mark.parametrize("argv,words", [
    (["read", "0", "5"], ["page 5 out of range 0..4", "has 5 pages"]),
    (["read", "0", "-1"], ["page -1 out of range 0..4"]),
    (["read", "3", "0"], ["node 3 out of range 0..2", "has 3 nodes"]),
    (["write", "0", "1", "x", "--offset", "4096"],
     ["--offset 4096 out of range 0..4095", "pages of 4096 bytes"]),
    (["experiment", "a", "--pages", "6"], ["--pages 6: more than the 5 pages"]),
])
def test_values_beyond_the_config_are_refused(capsys, five, argv, words):
    line = refused(capsys, *argv, "-c", five)
    assert line.startswith(f"ivy {argv[0]}: error: ") and str(five) in line
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("pages,expected", [(5, 3), (2, 2), (1, 1)])
def test_a_left_out_page_count_fits_a_small_cluster(tmp_path, pages, expected):
    """The default of --pages never fails on a small cluster: it is cut to the config's."""
    path = configs.write(tmp_path / "c.yaml", cluster_dict(pages=pages))
    args = cli.parser().parse_args(["workload", "-c", str(path)])
    assert args.pages is None
    A.check_fits(args, configs.C.load(path))
    assert args.pages == expected
    args = cli.parser().parse_args(["workload", "--pages", str(pages), "-c", str(path)])
    A.check_fits(args, configs.C.load(path))
    assert args.pages == pages


@pytest.mark.parametrize("only", [",,,", "", " , "])
def test_up_only_naming_no_daemon_starts_nothing(capsys, monkeypatch, five, tmp_path, only):
    """`--only ,` is not `--only` left out: it would have started the whole cluster."""
    started = []
    monkeypatch.setattr(Deployment, "up", lambda self, names=None: started.append(names))
    rc, out, err = ivy(capsys, "up", "--only", only, "-c", five, "--run-dir", tmp_path)
    assert (rc, out, started) == (2, "", [])
    assert err == (f"ivy up: --only {only!r} names no daemon (have: primary, backup, node0, "
                   "node1, node2)\n")


# -- no traceback ----------------------------------------------------------------------------

def _boom(args, cluster):
    raise RuntimeError("the unexpected\nacross two lines")


def test_unexpected_exception_is_one_line_and_a_log(capsys, monkeypatch, five, tmp_path):
    monkeypatch.setitem(cli.COMMANDS, "status", _boom)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rc, out, err = ivy(capsys, "status", "-c", five, "--run-dir", run_dir)
    assert rc == 1 and out == ""
    log = run_dir / "ivy-errors.log"
    assert err == ("ivy status: internal error: RuntimeError: the unexpected across two "
                   f"lines; details in {log}\n")
    text = log.read_text()
    assert "Traceback" in text and "_boom" in text and "status -c" in text


def test_without_a_run_directory_the_log_is_a_temporary_file(capsys, monkeypatch, five,
                                                              tmp_path):
    monkeypatch.setitem(cli.COMMANDS, "status", _boom)
    rc, _, err = ivy(capsys, "status", "-c", five, "--run-dir", tmp_path / "never-made")
    assert rc == 1 and "internal error" in err
    path = Path(err.rsplit("details in ", 1)[1].strip())
    assert path.name.startswith("ivy-error-") and "RuntimeError" in path.read_text()
    assert not (tmp_path / "never-made").exists()
    path.unlink()


def test_an_os_error_is_one_line_exit_1(capsys, monkeypatch, five):
    def denied(args, cluster):
        raise PermissionError(13, "Permission denied", "/var/ivy/history.jsonl")
    monkeypatch.setitem(cli.COMMANDS, "status", denied)
    rc, _, err = ivy(capsys, "status", "-c", five)
    assert rc == 1
    assert err == "ivy status: error: [Errno 13] Permission denied: '/var/ivy/history.jsonl'\n"


CRASHING = """
import sys, threading
from ivyzmq import cli
def crash(args, cluster):
    if sys.argv[1] == "thread":
        t = threading.Thread(target=lambda: 1 / 0, name="client-3")
        t.start()
        t.join()
        return 0
    raise KeyError("no such thing")
cli.COMMANDS["status"] = crash
raise SystemExit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("where", ["main", "thread"])
def test_real_interpreter_prints_no_traceback(tmp_path, five, where):
    """The same through a real interpreter, whose own last resort would print the
    traceback: of the main thread, and of another thread (a workload client's)."""
    proc = subprocess.run([sys.executable, "-c", CRASHING, where, "status", "-c", str(five),
                           "--run-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    line = proc.stderr.strip()
    assert line and "\n" not in line and "Traceback" not in line, proc.stderr
    if where == "main":
        assert proc.returncode == 1
        assert line.startswith("ivy status: internal error: KeyError: 'no such thing'")
    else:
        assert line.startswith("ivy status: internal error in thread client-3: "
                               "ZeroDivisionError: division by zero")
    assert line.endswith(f"details in {tmp_path / 'ivy-errors.log'}")
    assert "Traceback" in (tmp_path / "ivy-errors.log").read_text()


@pytest.mark.parametrize("argv,words", [
    (["ivy-cm"], ["required", "name"]),
    (["ivy-cm", "primary", "--log-level", "LOUD"], ["--log-level", "LOUD"]),
    (["ivy-node", "-5"], ["node-5"]),
    (["ivy-node", "1", "--bogus"], ["unrecognized arguments: --bogus"]),
])
def test_daemon_entry_points_refuse_bad_arguments(five, argv, words):
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:], "-c", str(five)],
                          capture_output=True, text=True, timeout=60)
    out = proc.stderr + proc.stdout     # a daemon names an unknown id on stdout, for now
    assert proc.returncode == 2 and "Traceback" not in out
    line = out.strip().splitlines()[-1]
    assert line.startswith(f"{argv[0]}: error: ")
    for word in words:
        assert word in line, line
