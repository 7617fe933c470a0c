"""The short `ivy` commands import only what they use (issue 12: a fast command line).

Each command runs as a real subprocess (the `ivy` entry point, `cli.main`) against real
daemons and writes the names in `sys.modules` as it exits, so a module imported at any
point of the run counts, also one a function imports late or `importlib` loads (which
`python -X importtime` would not list). `ivy read` must not pay for loguru (and its
asyncio), PyYAML (the config comes from the run directory's copy), rich, the programs, the
simulator or the checker."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ivy
from ivyzmq import cli, programs

HEAVY = ("loguru", "yaml", "rich", "asyncio", "multiprocessing", "matplotlib",
         "ivyzmq.sim", "ivyzmq.checker", "ivyzmq.harness", "ivyzmq.history",
         *(f"ivyzmq.programs.{name}" for name in programs.NAMES))
SHORT = {"read": ["read", 2, 1], "write": ["write", 2, 1, "hi"], "cas": ["cas", 2, 3, "", "x"],
         "add": ["add", 2, 4, 1], "status": ["status"]}


PROBE = """
import atexit, json, os, sys
def written():
    with open(os.environ["IVY_MODULES_FILE"], "w") as f:
        json.dump(list(sys.modules), f)
atexit.register(written)
from ivyzmq.cli import main
sys.exit(main())
"""


def imported(tmp_path, run, *args) -> set[str]:
    """The modules a real `ivy` command on `run`'s cluster imported from start to exit."""
    where = [] if run is None else ["-c", run.config_path, "--run-dir", str(run.path)]
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, *map(str, args), *where],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "IVY_MODULES_FILE": str(out)})
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text()))


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)}


def test_short_commands_import_nothing_heavy(clusters, tmp_path):
    run = clusters.make("imports")
    assert ivy(run, "read", 0, 0).returncode == 0      # the first command keeps the config
    for name, args in SHORT.items():
        modules = imported(tmp_path, run, *args)
        assert "ivyzmq.client" in modules and "zmq" in modules, name
        assert not heavy(modules), f"ivy {name} imports {sorted(heavy(modules))}"
        assert name == "status" or "ivyzmq.deploy" not in modules, name


def test_a_program_imports_its_own_module_only(tmp_path):
    modules = imported(tmp_path, None, "homework", "--help")
    assert "ivyzmq.programs.homework" in modules
    assert not {f"ivyzmq.programs.{n}" for n in programs.NAMES if n != "homework"} & modules


def test_the_check_catches_a_heavy_import():
    """What the test above reads: a module imported anywhere in the run is caught."""
    assert heavy({"zmq", "loguru._logger", "ivyzmq.programs.sim"}) == \
        {"loguru._logger", "ivyzmq.programs.sim"}
    assert heavy({"ivyzmq.client", "yamlish"}) == set()


def test_a_changed_config_is_read_again(clusters):
    """The run directory's copy of the config stands only for the same text."""
    run = clusters.make("copy")
    assert ivy(run, "read", 0, 0).returncode == 0
    copy = run.path / cli.CONFIG_COPY
    assert json.loads(copy.read_text())["cluster"]["pages"] == 5
    text = open(run.config_path).read()
    with open(run.config_path, "w") as f:
        f.write(text.replace("pages: 5", "pages: 4"))
    proc = ivy(run, "read", 0, 4)
    assert proc.returncode == 2 and "out of range 0..3" in proc.stderr, proc.stderr
    assert json.loads(copy.read_text())["cluster"]["pages"] == 4
    copy.write_text("not json")                  # a broken copy is only a missed copy
    assert ivy(run, "read", 0, 3).returncode == 0


QUIET = """
import sys
import ivyzmq
assert "loguru" not in sys.modules
code = "from loguru import logger\\nlogger.warning('from ' + __name__)"
exec(code, {"__name__": "ivyzmq.somewhere"})    # a module of the package: silent
exec(code, {"__name__": "elsewhere"})           # anyone else: logs as usual
"""


def test_ivyzmq_is_quiet_in_loguru_imported_after_it():
    proc = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "from elsewhere" in proc.stderr and "from ivyzmq" not in proc.stderr
