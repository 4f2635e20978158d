"""Grade a whole class: every submission in a folder, in parallel, outside the batch's own process.

Layouts (autograder/staff/export.py): notebooks (or folders holding one) in DIR, or Gradescope's "Export Submissions".
Under OUT (created 0700: it holds every student's work and feedback) it writes `<id>/results.json`,
`<id>/grader.log`, `<id>/batch.json` (status and the key below), and the reports of autograder/staff/reports.py:
`grades.csv` (a row per student) and `summary.csv` (a row per test).

What a grading used (autograder/staff/inputs.py): the secret and rubric of the uploaded zip (`uploaded`) or of this
checkout. A rerun skips a submission only when its batch.json records the same key: the submission's bytes, a
hash of the secret, a hash of the rubric and the grader's version; anything else is graded again (`force`: all).
The development secret, whose hidden inputs anyone can compute, is refused unless `dev_secret`.

Each job slot keeps one long-lived grader process (`python -m autograder.staff.batch_worker`, with the slot's own
sandbox user) and sends it one submission after another, so the grader's start-up (python, torch, pytest:
seconds of CPU) is paid once per slot, not per submission. Each submission still has its own timeout: a grader
that times out or dies costs that one row; it is stopped, tree and all, and the slot's next submission gets a
fresh one. A grader is also replaced after RECYCLE_AFTER submissions, so a slow leak stays bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from autograder.assignment import load_assignment
from autograder.config import SANDBOX_USER_VARIABLE, from_environment
from autograder.errors import InputError
from autograder.staff.export import Entry, Submitter, discover, read_metadata
from autograder.staff.inputs import Inputs, dev_secret_warning, grader_env, grading_inputs
from autograder.staff.reports import STATUSES, Row, summary_text, write_reports

__all__ = ["Entry", "Row", "Submitter", "default_out", "dev_secret_warning", "discover", "grade_all",
           "read_metadata", "status_of", "summary_text", "write_reports"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout
GRACE_SECONDS = 120  # grader start-up, reference values and cases, on top of the sandbox's own wall limit
RECYCLE_AFTER = 50  # submissions per grader process


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
        _private_folder(out)
        _close_to_others(submissions)
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


@dataclass
class _Slot:
    """A job slot: its sandbox user and the grader process that grades its submissions one after another."""
    user: str
    process: subprocess.Popen | None = None
    graded: int = 0  # by this process


class _Runner:
    """Keeps a grader per job slot and remembers the live ones, so that Ctrl-C or a timeout can stop their tree."""

    def __init__(self, out: Path, command: list[str], timeout: float, users: list[str],
                 assignment: str | None = None, inputs: Inputs | None = None):
        self.out, self.command, self.timeout, self.assignment = out, command, timeout, assignment
        self.env = grader_env(inputs.env if inputs else {})
        self.key = inputs.key if inputs else {}  # with the submission's digest: what decides a result
        self.slots = [_Slot(user) for user in users]
        self.free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()  # each grading takes one for its run
        for slot in self.slots:
            self.free.put(slot)
        self.live: set[subprocess.Popen] = set()  # started and not yet being stopped
        self.lock = threading.Lock()
        self.cancelled = False

    def previous(self, entry: Entry) -> Row | None:
        record = _read_json(self.out / entry.key / "batch.json") or {}
        if record.get("status") not in STATUSES or record.get("digest") != _digest(entry.path) \
                or record.get("inputs") != self.key:
            return None
        return Row(entry, record["status"], str(record.get("detail", "")),
                   _read_json(self.out / entry.key / "results.json"), float(record.get("seconds", 0)), skipped=True)

    def grade(self, entry: Entry) -> Row:
        folder, started = self.out / entry.key, time.monotonic()
        try:
            digest = _digest(entry.path)  # before grading: a file replaced meanwhile is graded again next run
            _private_folder(folder)
            for stale in ("batch.json", "results.json"):
                (folder / stale).unlink(missing_ok=True)
            job = {"submission": str(entry.path.resolve()), "results": str((folder / "results.json").resolve()),
                   "log": str((folder / "grader.log").resolve()), "assignment": self.assignment}
            slot = self.free.get()
            try:
                returncode, timed_out = self._run(slot, job)
            finally:
                self.free.put(slot)
            results = _read_json(folder / "results.json")
        except Exception as error:  # a batch-side failure (disk full, say): this row only, retried next run
            return Row(entry, "crashed", f"batch error: {error!r}", None, time.monotonic() - started)
        row = Row(entry, *status_of(results, returncode, timed_out), results, round(time.monotonic() - started, 1))
        if not self.cancelled:  # an interrupted grading is not a result: the next run grades it again
            record = {"status": row.status, "detail": row.detail, "returncode": returncode, "seconds": row.seconds,
                      "digest": digest, "inputs": self.key, "submission": str(entry.path)}
            (folder / "batch.json").write_text(json.dumps(record, indent=2))
        return row

    def _run(self, slot: _Slot, job: dict) -> tuple[int | None, bool]:
        """(returncode, timed out) of one job on the slot's grader: 0 when it answered, else the dead one's."""
        log = Path(job["log"])
        if slot.graded >= RECYCLE_AFTER:
            self._retire(slot)
        if slot.process is None:
            with log.open("wb") as stream:  # its start-up's messages, if any, go to its first job's log
                slot.process, slot.graded = self._start(slot.user, stream), 0
        else:
            log.write_bytes(b"")
        process = slot.process
        slot.graded += 1
        with self.lock:
            cancelled = self.cancelled  # Ctrl-C came before this job was sent
        reply: bytes | None = b""
        if not cancelled:
            try:
                process.stdin.write(json.dumps(job).encode() + b"\n")
                process.stdin.flush()
                reply = _reply(process.stdout.fileno(), self.timeout)
            except OSError:  # BrokenPipeError: it died between two jobs
                pass
        if _answered(reply):
            return 0, False
        slot.process = None  # timed out, died or cancelled: stopped, and the next job gets a fresh one
        self._end(process)
        return process.returncode, reply is None

    def _start(self, user: str, stderr) -> subprocess.Popen:
        process = subprocess.Popen(self.command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=stderr, env={**self.env, SANDBOX_USER_VARIABLE: user},
                                   start_new_session=True)
        with self.lock:
            self.live.add(process)
        return process

    def _end(self, process: subprocess.Popen) -> None:
        """Stop it, unless cancel() is already doing so (then wait for it): one _stop per process."""
        with self.lock:
            ours = process in self.live
            self.live.discard(process)
        if ours:
            _stop(process)
        else:
            process.wait()
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def _retire(self, slot: _Slot) -> None:
        """End the slot's grader: EOF on its stdin lets it exit by itself; what is left is stopped."""
        process, slot.process, slot.graded = slot.process, None, 0
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._end(process)

    def close(self) -> None:
        """End every slot's grader; call once no grading is running."""
        for slot in self.slots:
            self._retire(slot)

    def cancel(self) -> None:
        with self.lock:
            self.cancelled, live = True, list(self.live)
            self.live.clear()
        for process in live:
            _stop(process)


def _reply(fd: int, timeout: float) -> bytes | None:
    """The grader's answer line: b"" when it closed its end (it died), None when none came within `timeout`."""
    deadline, line = time.monotonic() + timeout, b""
    while not line.endswith(b"\n"):
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return b""
        line += chunk
    return line


def _answered(reply: bytes | None) -> bool:
    try:
        answer = json.loads(reply) if reply else None
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("done") is True


def _stop(process: subprocess.Popen, grace: float = 20) -> None:
    """SIGINT first: the grader then kills its sandbox (cgroup and all) and writes results; then SIGKILL the rest."""
    tree = _descendants(process.pid)  # now: once the grader dies, its children are re-parented and lost to us
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=grace)
    except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
        pass
    if process.poll() is None:
        process.kill()  # through Popen: never a reaped pid that the system may have given to another process
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found, todo = found + kids, todo + kids
    return found


def _digest(path: Path) -> str:
    """Of the submitted files: a changed resubmission is graded again on rerun."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    for file in files:
        digest.update(f"{file.relative_to(path.parent).as_posix()}\0".encode() + file.read_bytes())
    return digest.hexdigest()


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _counts(rows) -> dict[str, int]:
    found = Counter(row.status for row in rows)
    return {status: found[status] for status in STATUSES}


def _close_to_others(path: Path) -> None:
    """The submissions folder: no other user may enter it (a sandboxed run in the fallback is another user, and
    the environment's parent folders may be traversable), when it is ours to change."""
    try:
        info = path.stat()
    except OSError:
        return
    if path.is_dir() and info.st_mode & 0o007 and info.st_uid == os.geteuid():
        path.chmod(info.st_mode & ~0o007)


def _private_folder(path: Path) -> None:
    """Make `path` (and missing parents) and leave it 0700: it holds other students' work and grades."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():  # an older run's, made before this rule
        path.chmod(0o700)
