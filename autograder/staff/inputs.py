"""What a batch grades with besides the submissions: each assignment's secret and rubric, and the grader itself.

`--zip UPLOADED.zip` takes the secret and the rubric from the zip uploaded to Gradescope, so the hidden inputs
and weights are the ones Gradescope used; otherwise they come from this checkout and its environment
(Assignment.secret: $AUTOGRADER_SECRET_<NAME>, $AUTOGRADER_SECRET, the `secret` file). The graders get them as
AUTOGRADER_SECRET_<NAME> and AUTOGRADER_RUBRIC; the rubric is extracted to a private (0700) folder that lives as
long as the batch.

`key` is what, besides the submission's bytes, decides a result: a hash of the secret (never the secret), of
the rubric in use, and of the grader's source (what a zip of it would ship). A rerun regrades a submission whose
recorded key differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from autograder.assignment import DEV_SECRET, assignment_names, dev_secret_warning, load_assignment, secret_variable
from autograder.config import from_environment
from autograder.errors import InputError
from autograder.staff.bundle import read_member, rubric_member, secret_member, zip_assignment, zip_members, zip_secret

__all__ = ["RUBRIC_FILE", "RUBRIC_VARIABLE", "Inputs", "dev_secret_warning", "grader_env", "grader_version",
           "grading_inputs", "rubric_in_use", "zip_assignment", "zip_secret"]

RUBRIC_VARIABLE = "AUTOGRADER_RUBRIC"
RUBRIC_FILE = "rubric.yml"


@dataclass(frozen=True)
class Inputs:
    assignments: tuple[str, ...]  # the one being graded, or every candidate when the batch detects it per notebook
    env: dict[str, str | None] = field(default_factory=dict)  # for the graders, over os.environ; None: unset
    key: dict[str, dict[str, str]] = field(default_factory=dict)  # assignment -> {secret, rubric, grader} hashes
    dev_secret: tuple[str, ...] = ()  # assignments that would be graded with the development secret
    notes: tuple[str, ...] = ()  # for the console


@contextlib.contextmanager
def grading_inputs(assignment: str | None = None, uploaded: Path | None = None) -> Iterator[Inputs]:
    """The secrets, rubrics and key a batch grades with; with `uploaded`, the zip's (and its assignment)."""
    if uploaded is None:
        names = (assignment,) if assignment else tuple(assignment_names())
        for name in names:
            load_assignment(name)  # an unknown one fails here, with the known ones named
        yield _inputs(names, {})
        return
    name = zip_assignment(uploaded)
    if assignment and assignment != name:
        raise InputError(f"{uploaded} is the zip of {name}, not of {assignment}")
    load_assignment(name)
    with tempfile.TemporaryDirectory(prefix="autograder-zip-") as private:  # mkdtemp: 0700, ours only
        env: dict[str, str | None] = {secret_variable(name): zip_secret(uploaded, name)}
        notes: list[str] = []
        rubric = read_member(uploaded, rubric_member(name))
        if rubric is None:
            notes.append(f"{uploaded} holds no {RUBRIC_FILE}: grading with this checkout's weights and visibility")
            env[RUBRIC_VARIABLE] = None  # not one left over in the environment: the checkout's
        else:
            path = Path(private) / RUBRIC_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as stream:
                stream.write(rubric)
            env[RUBRIC_VARIABLE] = str(path)
        if changed := _differences(uploaded, name):
            notes.append(f"this checkout's grader differs from {uploaded.name}'s in {', '.join(changed[:5])}"
                         + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
                         + ": scores may differ from Gradescope's")
        yield _inputs((name,), env, notes)


def rubric_in_use(name: str, env: dict[str, str] | None = None) -> Path | None:
    """The rubric file the grader reads: $AUTOGRADER_RUBRIC when set (in `env`, default os.environ), else the
    assignment's own, if any."""
    given = (os.environ if env is None else env).get(RUBRIC_VARIABLE)
    path = Path(given) if given else load_assignment(name).folder / RUBRIC_FILE
    return path if path.is_file() else None


def grader_version(name: str) -> str:
    """A hash of what grades `name`: the files its zip would ship, less the secret and the rubric (keyed apart)."""
    digest = hashlib.sha256()
    for member, path in _grader_files(name).items():
        digest.update(member.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def grader_env(env: dict[str, str | None], base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (os.environ by default) with `env` applied: a None value removes the variable."""
    merged = dict(os.environ if base is None else base)
    for k, v in env.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return merged


def _inputs(names: tuple[str, ...], env: dict[str, str | None], notes: list[str] | None = None) -> Inputs:
    """Resolved as the graders, which get grader_env(env) and read it with config.from_environment, resolve them."""
    key, dev = {}, []
    config = from_environment(grader_env(env))
    for name in names:
        secret, is_default = load_assignment(name).secret(config)
        if is_default or secret == DEV_SECRET:
            dev.append(name)
        rubric = rubric_in_use(name, grader_env(env))
        key[name] = {"secret": _sha256(secret.encode()), "rubric": _sha256(rubric.read_bytes()) if rubric else "none",
                     "grader": grader_version(name)}
    return Inputs(names, env, key, tuple(dev), tuple(notes or ()))


def _grader_files(name: str) -> dict[str, Path]:
    members = zip_members(load_assignment(name))
    return {m: p for m, p in sorted(members.items()) if not m.endswith(f"/{RUBRIC_FILE}")}


def _differences(uploaded: Path, name: str) -> list[str]:
    """Grader files whose bytes differ between the zip and this checkout (or that only one of them has)."""
    ours = _grader_files(name)
    with zipfile.ZipFile(uploaded) as archive:
        theirs = {n for n in archive.namelist() if not n.endswith("/")}
        changed = [m for m, p in ours.items() if m not in theirs or archive.read(m) != p.read_bytes()]
    skipped = {"requirements.txt", secret_member(name), rubric_member(name)}
    return sorted(changed + [m for m in theirs - set(ours) - skipped if not m.startswith("requirements")])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
