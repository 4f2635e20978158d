"""What a batch keeps of each submission under OUT, and how a rerun reads it back.

`<id>/batch.json` records a grading's status and the key that decided it: the submission's bytes (a digest) and
the grading inputs' key (autograder/staff/inputs.py: a hash of the secret, of the rubric, the grader's version).
A rerun skips a submission only when both match. Every folder holding students' work is closed to other users.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from autograder.staff.export import Entry
from autograder.staff.reports import STATUSES, Row

__all__ = ["status_of", "previous", "record", "digest", "read_json", "private_folder", "close_to_others"]


def status_of(results: dict | None, returncode: int | None, timed_out: bool = False) -> tuple[str, str]:
    """(status, detail) of one grader run: from its exit, and from the status the grader wrote in results.json's
    extra_data. Never from the Markdown, which embeds text the student's code wrote."""
    if timed_out:
        return "timeout", "the grader did not finish in time and was stopped"
    if results is None:
        return "crashed", f"the grader exited with status {returncode} and left no valid results.json"
    extra = results.get("extra_data")
    extra = extra if isinstance(extra, dict) else {}
    status = extra.get("status")
    if status not in STATUSES:
        return "crashed", "results.json carries no status from the grader (extra_data.status)"
    return status, str(extra.get("detail") or "")


def previous(folder: Path, entry: Entry, key: dict) -> Row | None:
    """The row an earlier run recorded in `folder` for this submission, if graded from the same bytes and key."""
    found = read_json(folder / "batch.json") or {}
    if found.get("status") not in STATUSES or found.get("digest") != digest(entry.path) or found.get("inputs") != key:
        return None
    return Row(entry, found["status"], str(found.get("detail", "")), read_json(folder / "results.json"),
               float(found.get("seconds", 0)), skipped=True)


def record(folder: Path, row: Row, returncode: int | None, submission_digest: str, key: dict) -> None:
    """Write `folder`/batch.json: the row's outcome and what decided it (read back by `previous`)."""
    found = {"status": row.status, "detail": row.detail, "returncode": returncode, "seconds": row.seconds,
             "digest": submission_digest, "inputs": key, "submission": str(row.entry.path)}
    (folder / "batch.json").write_text(json.dumps(found, indent=2))


def digest(path: Path) -> str:
    """Of the submitted files: a changed resubmission is graded again on rerun."""
    hashed = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    for file in files:
        hashed.update(f"{file.relative_to(path.parent).as_posix()}\0".encode() + file.read_bytes())
    return hashed.hexdigest()


def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def close_to_others(path: Path) -> None:
    """The submissions folder: no other user may enter it (a sandboxed run in the fallback is another user, and
    the environment's parent folders may be traversable), when it is ours to change."""
    try:
        info = path.stat()
    except OSError:
        return
    if path.is_dir() and info.st_mode & 0o007 and info.st_uid == os.geteuid():
        path.chmod(info.st_mode & ~0o007)


def private_folder(path: Path) -> None:
    """Make `path` (and missing parents) and leave it 0700: it holds other students' work and grades."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():  # an older run's, made before this rule
        path.chmod(0o700)
