"""The batch's graders: one long-lived grader process per job slot, sent one submission after another.

Each slot runs `python -m autograder.staff.batch_worker` as its own sandbox user and sends it one job (a JSON
line) at a time, so the grader's start-up (python, torch, pytest: seconds of CPU) is paid once per slot, not per
submission. Each job still has its own timeout: a grader that times out or dies costs that one job; it is
stopped, tree and all, and the slot's next job gets a fresh one. A grader is also replaced after RECYCLE_AFTER
jobs, so a slow leak stays bounded. Ctrl-C (`cancel`) stops every live grader's tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from autograder.config import SANDBOX_USER_VARIABLE

__all__ = ["Graders", "RECYCLE_AFTER", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout
RECYCLE_AFTER = 50  # submissions per grader process


@dataclass
class _Slot:
    """A job slot: its sandbox user and the grader process that grades its submissions one after another."""
    user: str
    process: subprocess.Popen | None = None
    graded: int = 0  # by this process


class Graders:
    """Keeps a grader per job slot and remembers the live ones, so that Ctrl-C or a timeout can stop their tree."""

    def __init__(self, command: list[str], timeout: float, users: list[str], env: dict[str, str]):
        self.command, self.timeout, self.env = command, timeout, env
        self.slots = [_Slot(user) for user in users]
        self.free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()  # each job takes one for its run
        for slot in self.slots:
            self.free.put(slot)
        self.live: set[subprocess.Popen] = set()  # started and not yet being stopped
        self.lock = threading.Lock()
        self.cancelled = False

    def run(self, job: dict) -> tuple[int | None, bool]:
        """(returncode, timed out) of one job on a free slot's grader: 0 when it answered, else the dead one's."""
        slot = self.free.get()
        try:
            return self._run(slot, job)
        finally:
            self.free.put(slot)

    def _run(self, slot: _Slot, job: dict) -> tuple[int | None, bool]:
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
                stdin, stdout = _pipes(process)
                stdin.write(json.dumps(job).encode() + b"\n")
                stdin.flush()
                reply = _reply(stdout.fileno(), self.timeout)
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
        for pipe in _pipes(process):
            with contextlib.suppress(OSError):
                pipe.close()

    def _retire(self, slot: _Slot) -> None:
        """End the slot's grader: EOF on its stdin lets it exit by itself; what is left is stopped."""
        process, slot.process, slot.graded = slot.process, None, 0
        if process is None:
            return
        try:
            _pipes(process)[0].close()
            process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._end(process)

    def close(self) -> None:
        """End every slot's grader; call once no job is running."""
        for slot in self.slots:
            self._retire(slot)

    def cancel(self) -> None:
        with self.lock:
            self.cancelled, live = True, list(self.live)
            self.live.clear()
        for process in live:
            _stop(process)


def _pipes(process: subprocess.Popen) -> tuple[IO[bytes], IO[bytes]]:
    """(stdin, stdout): _start always opens both (typeshed types them Optional)."""
    if process.stdin is None or process.stdout is None:
        raise RuntimeError("a grader was started without its pipes")
    return process.stdin, process.stdout


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
