"""What the engine needs to know about an assignment, and how it finds one.

An assignment is a package `autograder/assignments/<name>/` whose `__init__.py` defines `ASSIGNMENT`, plus
`probes.py` (text run in the student's kernel) and `cases.py` (weighted pytest cases run by the grader).
Nothing else in the engine knows about any homework.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from autograder.config import GraderConfig, secret_variable
from autograder.errors import InputError
from autograder.limits import Limits
from autograder.notebook import Notebook
from autograder.rubric import Row, load_rubric

__all__ = ["Assignment", "MeasurementPolicy", "Call", "Seeds", "ProbeHelpers", "load_assignment", "assignment_names",
           "detect_assignment", "secret_variable", "dev_secret_warning"]

ASSIGNMENTS = Path(__file__).with_name("assignments")
DEV_SECRET = "development secret: set AUTOGRADER_SECRET or write the assignment's `secret` file"


@dataclass(frozen=True)
class Call:
    """One probe: `entry(args)` in a fresh measurement process, its reply stored under `name`. `seed` seeds
    Python's, numpy's and torch's generators there before the notebook's definitions run."""

    name: str
    entry: str
    args: dict
    timeout: int = 60
    seed: int = 0

    def to_json(self) -> dict:
        return {"name": self.name, "entry": self.entry, "args": self.args, "timeout": self.timeout, "seed": self.seed}

    def key(self) -> str:
        """Identifies what the reference computes for it (the name is not part of that): a digest, since the answers'
        store keeps hundreds of keys and a call's arguments can be large."""
        return hashlib.sha256(json.dumps([self.entry, self.args], sort_keys=True).encode()).hexdigest()


class Seeds:
    """Per-submission, per-case seeds: HMAC(secret, notebook digest + case). Same file, same seeds."""

    def __init__(self, secret: str, digest: str):
        self._secret = secret.encode()
        self.digest = digest

    def __call__(self, case: str) -> int:
        mac = hmac.new(self._secret, f"{self.digest}:{case}".encode(), hashlib.sha256)
        return int.from_bytes(mac.digest()[:4], "big") % 2**31


class ProbeHelpers(Protocol):
    """`_autograder`, the one name the measurement process gives probes.py's text (inside/runtime.py builds it).
    Stated here, for the type checker only: the grader imports the same probes as a module, where the name is
    never bound, and inside/ may import nothing from the grader."""

    namespace: dict[str, Any]  # the notebook's imports, definitions and context
    Missing: type[Exception]  # raised when a graded name is absent: reported as missing, not as an error

    def load(self, name: str, base: str | None = None, not_base: str | None = None) -> Any: ...

    def describe(self, error: BaseException) -> str: ...


@dataclass(frozen=True)
class MeasurementPolicy:
    """What the measurement process sets up before any student code (inside/policy.py), as the assignment says.

    libraries: shared libraries it loads by path first (CUDA's driver for the GPU harness: ctypes is refused
    afterwards); imports: modules it imports first; forbidden: packages whose code is stubbed in memory and whose
    folders the kernel makes unreadable (Landlock); kernels: torch operator-name prefixes given a raising kernel."""

    libraries: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    kernels: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("libraries", "imports", "forbidden", "kernels"):
            if not isinstance(getattr(self, name), tuple):
                raise ValueError(f"MeasurementPolicy.{name} must be a tuple, not {getattr(self, name)!r}")

    def to_json(self) -> dict:
        return {"libraries": list(self.libraries), "imports": list(self.imports), "forbidden": list(self.forbidden),
                "kernels": list(self.kernels)}


@dataclass(frozen=True)
class Assignment:
    name: str  # the folder name, e.g. "hw4_part1"
    title: str
    graded_names: tuple[str, ...]  # definitions that identify this assignment's notebook
    make_calls: Callable[[Notebook, Seeds], list[Call]]
    run_all_cells: bool = True  # False: run only imports and definitions (no downloads, no training)
    limits: Limits = field(default_factory=Limits)
    reference_paths: tuple[str, ...] = ("solution",)  # relative to the repo root; hidden from the sandbox
    # Public modules the warm start imports once for every worker and kernel (supervisor/zygotes.warm_start).
    preload: tuple[str, ...] = ()
    # What the measurement process forbids is described to students as "while your {measured} are measured".
    measured: str = "definitions"
    policy: MeasurementPolicy = field(default_factory=MeasurementPolicy)
    # Which of the notebook's other top-level statements also run where the graded code is measured (its
    # constants, `device`, data: globals a graded class may read), e.g. all but the given evaluation cells.
    # None: only imports and definitions run there.
    context: Callable[[ast.stmt], bool] | None = None
    # Packages the grader's image leaves out on purpose (matplotlib, say): importing them is not the student's error.
    absent_modules: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        return ASSIGNMENTS / self.name

    @property
    def probes_source(self) -> str:
        return (self.folder / "probes.py").read_text()

    @property
    def cases_path(self) -> Path:
        return self.folder / "cases.py"

    def rubric_path(self, config: GraderConfig | None = None) -> Path:
        """The config's rubric ($AUTOGRADER_RUBRIC) when it names one, else the assignment folder's rubric.yml."""
        return config.rubric if config is not None and config.rubric else self.folder / "rubric.yml"

    def rubric(self, config: GraderConfig | None = None) -> dict[str, Row]:
        """Test number -> Row (weight, visibility, name): rubric.yml, the only source of points, validated."""
        return load_rubric(self.rubric_path(config))

    def secret(self, config: GraderConfig) -> tuple[str, bool]:
        """(secret, is_the_development_default): the config's ($AUTOGRADER_SECRET_<NAME>, else $AUTOGRADER_SECRET,
        one for every assignment, so only a fallback), else the assignment's `secret` file, else DEV_SECRET."""
        if (given := config.secret_for(self.name)) is not None:
            return given[0], False
        path = self.folder / "secret"
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip(), False
        return DEV_SECRET, True


def assignment_names() -> list[str]:
    return sorted(p.name for p in ASSIGNMENTS.iterdir() if (p / "__init__.py").exists())


def load_assignment(name: str) -> Assignment:
    if name not in assignment_names():
        raise InputError(f"unknown assignment {name!r}; known: {', '.join(assignment_names())}")
    return importlib.import_module(f"autograder.assignments.{name}").ASSIGNMENT


def detect_assignment(notebook: Notebook) -> tuple[Assignment, int]:
    """The assignment whose graded names the notebook defines most of, and that count."""
    scored = []
    for name in assignment_names():
        assignment = load_assignment(name)
        scored.append((sum(n in notebook.definitions for n in assignment.graded_names), name, assignment))
    count, _, assignment = max(scored, key=lambda item: item[0])
    return assignment, count


def dev_secret_warning(names: tuple[str, ...] | list[str], refused: bool = False) -> str:
    """The loud console warning (or, `refused`, the refusal) for grading with the development secret."""
    bar = "!" * 100
    variables = " / ".join(f"${secret_variable(n)}" for n in names)
    lines = [f"WARNING: {', '.join(names)} would be graded with the DEVELOPMENT SECRET: its hidden inputs are "
             "public, so these grades are not the ones Gradescope gives.",
             f"Set {variables}, or grade a batch with --zip UPLOADED.zip (the zip uploaded to Gradescope)"
             + ("; --dev-secret allows it for a rehearsal." if refused else ".")]
    if len(names) > 1:
        lines.append("Without --assignment (or --zip) the batch cannot know which one a notebook is: each counts.")
    return "\n".join([bar, *(f"!!! {line}" for line in lines), bar])
