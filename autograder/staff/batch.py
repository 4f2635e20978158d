"""Grade a whole class: every submission in a folder, in parallel, outside the batch's own process.

Layouts (autograder/staff/export.py): notebooks (or folders holding one) in DIR, or Gradescope's "Export Submissions".
Under OUT (created 0700: it holds every student's work and feedback) it writes `<id>/results.json`,
`<id>/grader.log`, `<id>/batch.json` (status and the key below), and the reports of autograder/staff/reports.py:
`grades.csv` (a row per student) and `summary.csv` (a row per test).

What a grading used (autograder/staff/inputs.py): the secret and rubric of the uploaded zip (`uploaded`) or of this
checkout. A rerun skips a submission only when its batch.json records the same key: the submission's bytes, a
hash of the secret, a hash of the rubric and the grader's version (autograder/staff/batch_records.py); anything
else is graded again (`force`: all). The development secret, whose hidden inputs anyone can compute, is refused
unless `dev_secret`. The graders themselves, one long-lived process per job slot with its own sandbox user, are
autograder/staff/batch_graders.py's.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from autograder.assignment import load_assignment
from autograder.config import from_environment
from autograder.errors import InputError
from autograder.staff.batch_graders import Graders
from autograder.staff.batch_records import (close_to_others, digest, previous, private_folder, read_json, record,
                                            status_of)
from autograder.staff.export import Entry, Submitter, discover, read_metadata
from autograder.staff.inputs import Inputs, dev_secret_warning, grader_env, grading_inputs
from autograder.staff.reports import STATUSES, Row, summary_text, write_reports

__all__ = ["Entry", "Row", "Submitter", "default_out", "dev_secret_warning", "discover", "grade_all",
           "read_metadata", "status_of", "summary_text", "write_reports"]

GRACE_SECONDS = 120  # grader start-up, reference values and cases, on top of the sandbox's own wall limit


def grade_all(submissions: Path, out: Path | None = None, *, jobs: int = os.cpu_count() or 1,
              force: bool = False, assignment: str | None = None, uploaded: Path | None = None,
              dev_secret: bool = False, timeout: float | None = None, command: list[str] | None = None,
              progress: bool = True, warn: Callable[[str], None] | None = None) -> list[Row]:
    """Grade every submission in `submissions` into `out`; write grades.csv and summary.csv; return the rows.

    `uploaded`: the zip uploaded to Gradescope, whose secret and rubric to grade with. Raises InputError (nothing
    graded) for a bad folder, zip or assignment, or the development secret without `dev_secret`. `warn` gets
    console warnings (default: stderr). `command` replaces the grader's argv (tests use a fake that speaks
    autograder.staff.batch_worker's protocol).
    """
    if jobs < 1:
        raise InputError(f"jobs must be at least 1, not {jobs}")
    warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
    out = out or default_out(submissions)
    entries = [e for e in discover(submissions) if e.path.resolve() != out.resolve()]  # OUT may sit inside DIR
    with grading_inputs(assignment, uploaded) as inputs:
        if inputs.dev_secret and not dev_secret:
            raise InputError(dev_secret_warning(inputs.dev_secret, refused=True))
        for note in ((dev_secret_warning(inputs.dev_secret),) if inputs.dev_secret else ()) + inputs.notes:
            warn(note)
        if timeout is None:
            timeout = max(load_assignment(n).limits.wall_seconds for n in inputs.assignments) + GRACE_SECONDS
        private_folder(out)
        close_to_others(submissions)
        chosen = inputs.assignments[0] if assignment or uploaded else None  # else detected per notebook
        users = _slot_users(jobs, create=command is None, base=from_environment(grader_env(inputs.env)).sandbox_user)
        runner = _Runner(out, command or _grader_command(), timeout, users, chosen, inputs)
        done = {e.key: row for e in entries if not force and (row := runner.previous(e))}
        try:
            with tqdm(total=len(entries), initial=len(done), unit="nb", desc="grading", disable=not progress) as bar, \
                    ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(runner.grade, e) for e in entries if e.key not in done]
                try:
                    for future in as_completed(futures):
                        row = future.result()
                        done[row.entry.key] = row
                        bar.update()
                        bar.set_postfix_str(" ".join(f"{s}={n}" for s, n in _counts(done.values()).items() if n))
                except KeyboardInterrupt:
                    runner.cancel()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        finally:
            runner.close()
    rows = [done[e.key] for e in entries]
    write_reports(rows, out)
    return rows


def default_out(submissions: Path) -> Path:
    return Path("out") / "batch" / submissions.resolve().name


def _slot_users(jobs: int, create: bool, base: str) -> list[str]:
    """A sandbox user per job slot (`base`-1, ...), each grader told its own in $AUTOGRADER_SANDBOX_USER. Without a
    cgroup (cgroup v2 machines), the sandbox ends a run by killing every process of its user: shared by concurrent
    runs, that would kill the neighbours' workers as well."""
    users = [f"{base}-{slot}" for slot in range(1, jobs + 1)]
    for user in users if create and os.geteuid() == 0 else []:  # here, serially: concurrent useradds can fail
        try:
            pwd.getpwnam(user)
        except KeyError:
            made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                                  capture_output=True, text=True)
            if made.returncode != 0:
                raise InputError(f"could not create the sandbox user {user}: {made.stderr.strip()}") from None
    return users


def _grader_command() -> list[str]:
    return [sys.executable, "-m", "autograder.staff.batch_worker"]


class _Runner:
    """Grades one submission at a time into its folder under `out` on a free slot's grader, and tells which
    submissions an earlier run already graded with the same inputs."""

    def __init__(self, out: Path, command: list[str], timeout: float, users: list[str],
                 assignment: str | None = None, inputs: Inputs | None = None):
        self.out, self.assignment = out, assignment
        self.key = inputs.key if inputs else {}  # with the submission's digest: what decides a result
        self.graders = Graders(command, timeout, users, grader_env(inputs.env if inputs else {}))

    def previous(self, entry: Entry) -> Row | None:
        return previous(self.out / entry.key, entry, self.key)

    def grade(self, entry: Entry) -> Row:
        folder, started = self.out / entry.key, time.monotonic()
        try:
            submission_digest = digest(entry.path)  # before grading: a file replaced meanwhile is graded again
            private_folder(folder)
            for stale in ("batch.json", "results.json"):
                (folder / stale).unlink(missing_ok=True)
            job = {"submission": str(entry.path.resolve()), "results": str((folder / "results.json").resolve()),
                   "log": str((folder / "grader.log").resolve()), "assignment": self.assignment}
            returncode, timed_out = self.graders.run(job)
            results = read_json(folder / "results.json")
        except Exception as error:  # a batch-side failure (disk full, say): this row only, retried next run
            return Row(entry, "crashed", f"batch error: {error!r}", None, time.monotonic() - started)
        row = Row(entry, *status_of(results, returncode, timed_out), results, round(time.monotonic() - started, 1))
        if not self.graders.cancelled:  # an interrupted grading is not a result: the next run grades it again
            record(folder, row, returncode, submission_digest, self.key)
        return row

    def cancel(self) -> None:
        self.graders.cancel()

    def close(self) -> None:
        """End every slot's grader; call once no grading is running."""
        self.graders.close()


def _counts(rows) -> dict[str, int]:
    found = Counter(row.status for row in rows)
    return {status: found[status] for status in STATUSES}
