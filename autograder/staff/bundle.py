"""What a Gradescope zip of one assignment holds, and how to read one back.

A zip holds the entry points (setup.sh, run_autograder), the engine (autograder/ with its subpackages, less the
staff's tools in autograder/staff/ and the other assignments), the assignment's folder with its secret, and the
reference modules its code imports; build.py adds the pinned requirements.txt and the secret. A batch reads the
assignment, secret and rubric back from the zip that was uploaded.
"""

from __future__ import annotations

import ast
import re
import zipfile
from pathlib import Path
from typing import Iterator

from autograder.assignment import ASSIGNMENTS, Assignment
from autograder.errors import BuildError, InputError

__all__ = ["ROOT", "ENGINE", "ENTRY_POINTS", "zip_members", "reference_modules", "zip_assignment", "zip_secret",
           "read_member", "secret_member", "rubric_member"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout
ENGINE = ROOT / "autograder"
ENTRY_POINTS = ("setup.sh", "run_autograder")  # executable, at the zip's root
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
# Never shipped, whatever a future change to the collection rules does: a last check on the final list.
FORBIDDEN = re.compile(r"(^|/)(tests|student_template|notebooks|staff|\.venv|__pycache__|\.git)(/|$)|\.(pyc|ipynb)$")
_MEMBER = re.compile(r"autograder/assignments/([A-Za-z0-9_]+)/__init__\.py")


def secret_member(name: str) -> str:
    return f"autograder/assignments/{name}/secret"


def rubric_member(name: str) -> str:
    return f"autograder/assignments/{name}/rubric.yml"


def zip_members(assignment: Assignment) -> dict[str, Path]:
    """Archive name -> file, for everything but requirements.txt and the secret (build.py writes those)."""
    members = {name: ROOT / name for name in ENTRY_POINTS}
    # The engine with its subpackages (e.g. the sandbox's inside/), not the staff's tools; of the assignments,
    # this one only.
    members |= {p.relative_to(ROOT).as_posix(): p for p in ENGINE.rglob("*")
                if p.is_file() and _shippable(p) and p.relative_to(ENGINE).parts[0] not in ("assignments", "staff")}
    folder = ASSIGNMENTS / assignment.name
    members |= {p.relative_to(ROOT).as_posix(): p for p in folder.rglob("*")
                if p.is_file() and _shippable(p) and p.name != "secret"}
    members |= {p.relative_to(ROOT).as_posix(): p for p in reference_modules(assignment)}
    missing = [name for name, path in members.items() if not path.is_file()]
    forbidden = [name for name in members if FORBIDDEN.search(name)]
    if missing or forbidden:
        raise BuildError(f"refusing to build {assignment.name}: missing {missing or 'nothing'}, "
                         f"forbidden {forbidden or 'nothing'}")
    return members


def reference_modules(assignment: Assignment) -> list[Path]:
    """The reference files the assignment's modules import, followed transitively (package __init__s included)."""
    packages = {Path(p).parts[0] for p in assignment.reference_paths}
    todo = sorted((ASSIGNMENTS / assignment.name).rglob("*.py"))
    found: set[Path] = set()
    while todo:
        for module, required in _imports(todo.pop()):
            if module.split(".")[0] not in packages:
                continue
            files = _module_files(module)
            if not files and required:
                raise BuildError(f"{assignment.name} imports `{module}`, which is not in the repository")
            new = [f for f in files if f not in found]
            found.update(new)
            todo.extend(new)
    return sorted(found)


def zip_assignment(uploaded: Path) -> str:
    """The assignment a zip built by `run_autograder build` holds (exactly one)."""
    try:
        with zipfile.ZipFile(uploaded) as archive:
            names = sorted({m.group(1) for n in archive.namelist() if (m := _MEMBER.fullmatch(n))})
    except (OSError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read the zip {uploaded}: {error}") from None
    if len(names) != 1:
        raise InputError(f"{uploaded} holds {len(names)} assignments ({', '.join(names) or 'none'}); a zip built by "
                         f"`run_autograder build` holds one")
    return names[0]


def zip_secret(uploaded: Path, name: str) -> str:
    """The secret shipped in the zip for `name`."""
    data = read_member(uploaded, secret_member(name))
    secret = (data or b"").decode("utf-8", errors="replace").strip()
    if not secret:
        raise InputError(f"{uploaded} holds no secret for {name} (autograder/assignments/{name}/secret)")
    return secret


def read_member(uploaded: Path, member: str) -> bytes | None:
    with zipfile.ZipFile(uploaded) as archive:
        try:
            return archive.read(member)
        except KeyError:
            return None


def _shippable(path: Path) -> bool:
    return not (SKIPPED_PARTS & set(path.parts)) and path.suffix not in (".pyc", ".ipynb") \
        and not path.name.startswith(".")


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(module, required) for each import; `from a import b` also yields `a.b`, which may be a plain name."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]  # a module's package, or an __init__'s own
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, True) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this file's package
                parent = package[:len(package) - node.level + 1]
                base = ".".join(parent + ((node.module,) if node.module else ()))
            yield base, True
            yield from ((f"{base}.{alias.name}", False) for alias in node.names)


def _module_files(module: str) -> list[Path]:
    """The module's file and its packages' __init__.py files, or [] when it is not a file under ROOT."""
    parts = module.split(".")
    target = ROOT.joinpath(*parts)
    own = target.with_suffix(".py") if target.with_suffix(".py").is_file() else target / "__init__.py"
    if not own.is_file():
        return []
    inits = [ROOT.joinpath(*parts[:i], "__init__.py") for i in range(1, len(parts))]
    return [p for p in inits if p.is_file()] + [own]
