"""Build one assignment's Gradescope zip (what it holds: bundle.py): entry points, pinned requirements, the engine,
the assignment folder with its secret, and the reference modules its cases import — nothing else. The zip is
written 0600: it holds the secret and the reference.

The secret decides every student's hidden inputs, so a rebuild keeps it when it can: `--secret-from OLD.zip`
(the zip uploaded before), else the one Assignment.secret finds ($AUTOGRADER_SECRET_<NAME>, $AUTOGRADER_SECRET,
the assignment's `secret` file), else a fresh one. Never the development default.

Before zipping, the reference notebook must score full marks and the student template 0, both graded here with
the secret and the rubric that ship in the zip. Run: `./run_autograder build --assignment hw4_part1 -o dist/`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import secrets
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from autograder.assignment import ASSIGNMENTS, DEV_SECRET, Assignment, load_assignment
from autograder.config import GraderConfig, secret_variable
from autograder.errors import BuildError, InputError, RubricError
from autograder.grade import grade
from autograder.rubric import case_numbers, check_matches, load_rubric
from autograder.staff.bundle import ENGINE, ENTRY_POINTS, ROOT, secret_member, zip_assignment, zip_members, zip_secret

__all__ = ["BuildError", "build", "check_rubric", "shipped_secret", "shipped_requirements"]

REQUIREMENTS = ENGINE / "requirements.txt"  # the engine's runtime; an assignment folder's requirements.txt adds to it
PINNED = re.compile(r"^[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+!\-]+$")


def build(assignment_name: str, out_dir: Path, *, check: bool = True, log: Callable[[str], None] = print,
          secret_from: Path | None = None, config: GraderConfig | None = None) -> Path:
    """Write `out_dir/<assignment>_autograder.zip` and return its path. Raises BuildError (nothing written).

    `secret_from`: an earlier zip of this assignment, whose secret the new one keeps. `config`: the staff's
    (config.from_environment at the CLI): where the secret may come from, and the sandbox layers switched off."""
    config = config or GraderConfig()
    try:
        assignment = load_assignment(assignment_name)
    except InputError as error:
        raise BuildError(str(error)) from None
    check_rubric(assignment)
    secret, source = shipped_secret(assignment, secret_from, config)
    members = zip_members(assignment)
    requirements = shipped_requirements(assignment)
    if check:
        check_scores(assignment, secret, log, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{assignment.name}_autograder.zip"
    secret_name = secret_member(assignment.name)
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when an interrupted build left a partial file with other permissions
    with os.fdopen(fd, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(members.items()):
            _add(archive, name, path.read_bytes(), 0o755 if name in ENTRY_POINTS else 0o644)
        _add(archive, "requirements.txt", requirements.encode(), 0o644)
        _add(archive, secret_name, (secret + "\n").encode(), 0o600)
    os.replace(partial, target)
    log(f"wrote {target} ({len(members) + 2} files, {target.stat().st_size // 1024} KiB, mode 0600)")
    log(f"secret: {source}")
    if changed := _uncommitted(sorted(members)):
        log(f"note: shipped with uncommitted changes to {', '.join(changed)}; commit them to know what you uploaded")
    return target


def check_rubric(assignment: Assignment) -> None:
    """The shipped rubric.yml is valid and has one row per case and a case per row."""
    try:
        cases = importlib.import_module(f"autograder.assignments.{assignment.name}.cases")
        check_matches(load_rubric(assignment.folder / "rubric.yml"), case_numbers(cases), assignment.name)
    except RubricError as error:
        raise BuildError(f"refusing to build {assignment.name}: {error}") from None


def shipped_secret(assignment: Assignment, secret_from: Path | None = None,
                   config: GraderConfig | None = None) -> tuple[str, str]:
    """(secret, where it came from, for the log) of the zip being built."""
    config = config or GraderConfig()
    if secret_from is not None:
        try:
            held = zip_assignment(secret_from)
            if held != assignment.name:
                raise InputError(f"{secret_from} is the zip of {held}, not of {assignment.name}")
            secret = zip_secret(secret_from, assignment.name)
        except InputError as error:
            raise BuildError(f"cannot keep the secret: {error}") from None
        source = f"kept from {secret_from}"
    else:
        secret, is_default = assignment.secret(config)
        if is_default:
            return secrets.token_hex(32), ("fresh: keep this zip, a regrade needs its secret (rebuild with "
                                           f"--secret-from this zip, or set ${secret_variable(assignment.name)})")
        given = config.secret_for(assignment.name)
        source = f"from ${given[1]}" if given else f"from {(assignment.folder / 'secret').relative_to(ROOT)}"
    if secret == DEV_SECRET:
        raise BuildError(f"refusing to ship the development secret ({source}): its hidden inputs are public")
    return secret, source


def pinned_requirements(path: Path) -> str:
    """The requirements file as is, after checking every requirement is pinned with ==."""
    loose = [line for line in (raw.split("#")[0].strip() for raw in path.read_text().splitlines())
             if line and not PINNED.match(line)]
    if loose:
        raise BuildError(f"{path} must pin every package with `==` (Gradescope rebuilds from it); not pinned: {loose}")
    return path.read_text()


def shipped_requirements(assignment: Assignment) -> str:
    """The zip's requirements.txt: the engine's runtime, then the assignment's own file if it has one; every line
    pinned, and no package named twice (pip refuses conflicting pins, on Gradescope only)."""
    files = [REQUIREMENTS, ASSIGNMENTS / assignment.name / "requirements.txt"]
    texts = [(path, pinned_requirements(path)) for path in files if path.is_file()]
    names = [re.sub(r"[-_.]+", "-", line.split("==")[0].split("[")[0]).lower()
             for _, text in texts for line in (raw.split("#")[0].strip() for raw in text.splitlines()) if line]
    shown = {path: path.relative_to(ROOT) if path.is_relative_to(ROOT) else path for path, _ in texts}
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise BuildError(f"{assignment.name}: {', '.join(twice)} pinned both in {shown[REQUIREMENTS]} "
                         f"and in the assignment's requirements.txt; keep one pin")
    return "".join(f"# {shown[path]}\n{text.rstrip()}\n" for path, text in texts)


def check_scores(assignment: Assignment, secret: str, log: Callable[[str], None],
                 config: GraderConfig | None = None) -> None:
    """Grade the reference notebook (must score full marks) and the template (must score 0), in both sandboxes,
    with the secret and the rubric being shipped: a config of its own, with that secret and no rubric override
    (so the assignment folder's rubric.yml), and the staff's `config`'s sandbox settings."""
    config = config or GraderConfig()
    notebooks = {"reference": ROOT / "solution" / "notebooks" / f"{assignment.name}.ipynb",
                 "template": ROOT / "student_template" / f"{assignment.name}.ipynb"}
    for label, path in notebooks.items():
        if not path.is_file():
            raise BuildError(f"the {label} notebook {path} is missing; the build grades it before zipping")
    shipped = dataclasses.replace(config, secrets={assignment.name: secret}, rubric=None)
    # Both sandboxes: Gradescope's container may force the fallback, which must grade the same.
    sandboxes = {"full sandbox": shipped,
                 "fallback sandbox": dataclasses.replace(shipped, disabled=shipped.disabled | {"bwrap"})}
    with tempfile.TemporaryDirectory(prefix="autograder-build-") as scratch:
        for (label, path), (sandbox, setting) in [(n, b) for b in sandboxes.items() for n in notebooks.items()]:
            log(f"grading the {label} notebook {path.relative_to(ROOT)} in the {sandbox} ...")
            results = grade(path, Path(scratch) / f"{label}.json", assignment.name, log=lambda message: None,
                            config=setting)
            tests = [t for t in results["tests"] if t["max_score"] > 0]
            total = sum(t["max_score"] for t in tests)
            wrong = [t for t in tests if (t["score"] < t["max_score"] if label == "reference" else t["score"] > 0)]
            if total <= 0 or wrong or (label == "template" and results["score"] > 0):
                want = f"full marks ({total:g})" if label == "reference" else "0"
                detail = "\n".join(f"  {t.get('number', '')} {t['name']}: {t['score']:g}/{t['max_score']:g} "
                                   f"{t['output'].splitlines()[0] if t['output'] else ''}" for t in wrong[:10])
                raise BuildError(f"refusing to build {assignment.name}: in the {sandbox}, the {label} notebook {path} scores "
                                 f"{results['score']:g}/{total:g}, it must score {want}.\n"
                                 f"{results['output']}\n{detail}")
            log(f"  {label}, {sandbox}: {results['score']:g}/{total:g} as required")


def _uncommitted(names: list[str]) -> list[str]:
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--", *names], cwd=ROOT, capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line[3:] for line in status.stdout.splitlines()] if status.returncode == 0 else []


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions once unzipped
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


