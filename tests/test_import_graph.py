"""The shape of autograder/: its import graph has no cycle, the shipped grader never imports the staff's tools,
and what runs inside the sandbox imports nothing trusted. Imports are read with ast, those inside functions too
(an import moved into a function still makes a cycle, only a hidden one)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autograder"
# The program `python -m autograder`: nothing imports it; it picks the staff's CLI where autograder/staff exists.
ENTRY_POINT = "autograder.__main__"
INSIDE = "autograder.inside"  # runs in the sandbox; on sys.path as its own folder there


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def imported(path: Path, root: Path = ROOT) -> set[str]:
    """Every module named by an import in the file (absolute, or relative resolved), anywhere in it."""
    own = module_name(path, root).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from a import b`: b may be a module
    return names


def edges() -> dict[str, set[str]]:
    """Module -> the autograder modules it imports (a package's own __init__ counts as imported with it). The
    sandbox's modules import each other by bare name (`import protocol`): those name autograder.inside's own."""
    graph = {}
    for name, path in MODULES.items():
        targets = set()
        for target in imported(path):
            if name.startswith(f"{INSIDE}.") and f"{INSIDE}.{target}" in MODULES:
                target = f"{INSIDE}.{target}"
            if target in MODULES and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_reader_sees_imports_inside_functions_and_relative_ones(tmp_path):
    path = tmp_path / "autograder" / "staff" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text("def f():\n    from autograder.grade import grade\nfrom . import cli\nfrom .. import errors\n")
    assert {"autograder.grade", "autograder.staff.cli", "autograder.errors"} <= imported(path, tmp_path)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_import_graph_of_autograder_has_no_cycle():
    assert len(MODULES) > 20  # the whole package was read
    graph = edges()
    assert {"autograder.inside.protocol", "autograder.inside.measure_seed"} <= graph["autograder.inside.worker"]
    assert find_cycle(graph) is None


def _is_staff(module: str) -> bool:
    return module == "autograder.staff" or module.startswith("autograder.staff.")  # not autograder.stafftext


def test_nothing_outside_the_staff_package_imports_it():
    offenders = {name: sorted(t for t in targets if _is_staff(t))
                 for name, targets in edges().items()
                 if not _is_staff(name) and name != ENTRY_POINT}
    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("autograder.inside")))
def test_what_runs_inside_the_sandbox_imports_nothing_trusted(name):
    trusted = sorted(n for n in imported(MODULES[name]) if n.split(".")[0] in ("autograder", "solution", "tests"))
    assert trusted == [], name
