"""The import rules of docs/ARCHITECTURE.md, read from the source (every import statement,
also those inside functions): the cores stay pure, the catalogue stands alone, the
simulator never reaches a socket, and programs reach daemons only through the client API."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "ivyzmq"
CORES = ["node/core.py", "node/membership.py", "node/replicas.py", "node/state.py",
         "manager/core.py", "manager/pages.py", "manager/roles.py", "manager/members.py",
         "manager/replication.py", "manager/holders.py"]
IO = {"zmq", "ivyzmq.transport", "ivyzmq.daemon", "ivyzmq.node.daemon",
      "ivyzmq.manager.daemon"}


def imports(source: str) -> set[str]:
    """Every module an import statement in `source` names (`from a import b` names a and
    a.b, since b may be a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    return imports(MODULES[name].read_text())


def reaches(name: str, seen: set[str] | None = None) -> set[str]:
    """Every module `name` imports, directly or through modules of the package."""
    seen = set() if seen is None else seen
    for dep in imports_of(name):
        if dep not in seen:
            seen.add(dep)
            if dep in MODULES:
                reaches(dep, seen)
    return seen


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def forbidden(found: set[str], banned: set[str]) -> set[str]:
    return {n for n in found if any(n == b or n.startswith(b + ".") for b in banned)}


@pytest.mark.parametrize("path", CORES)
def test_cores_import_no_io_clock_or_thread(path):
    found = imports((PKG / path).read_text())
    bad = forbidden(found, IO | {"time", "threading", "asyncio", "datetime", "socket",
                                 "ivyzmq.client"})
    assert not bad, f"{path} imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("ivyzmq.protocol")))
def test_catalogue_imports_only_msgspec(name):
    found = imports_of(name)
    outside = {n for n in found if n.split(".")[0] == "ivyzmq"} - \
        {n for n in found if n == "ivyzmq" or n.startswith("ivyzmq.protocol")}
    assert top(found) <= {"__future__", "msgspec", "typing", "enum", "ivyzmq"}, found
    assert not outside, f"{name} imports {sorted(outside)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("ivyzmq.sim")))
def test_simulator_never_reaches_a_socket(name):
    bad = forbidden(reaches(name), IO | {"ivyzmq.client", "ivyzmq.deploy"})
    assert not bad, f"{name} reaches {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES
                                        if n.startswith(("ivyzmq.programs", "ivyzmq.harness"))))
def test_programs_and_harness_reach_daemons_through_the_client_api(name):
    bad = forbidden(imports_of(name), IO)
    assert not bad, f"{name} imports {sorted(bad)}"


def test_the_rules_catch_a_forbidden_import():
    """The checks above read real import statements: a core that imported zmq inside a
    function, or a program that imported the transport, would be caught."""
    core = "def f():\n    import zmq\n    from time import monotonic\n"
    assert forbidden(imports(core), IO | {"time"}) == {"zmq", "time", "time.monotonic"}
    program = "from ivyzmq import transport\n"
    assert forbidden(imports(program), IO) == {"ivyzmq.transport"}
    assert "ivyzmq.transport" in reaches("ivyzmq.daemon")


def test_supervisor_imports_no_zmq():
    assert not forbidden(imports_of("ivyzmq.supervisor"), IO | {"ivyzmq.client"})
