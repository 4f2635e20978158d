"""Finding, measuring and stopping a run's processes on the host, through /proc."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["descendants", "command_name", "processes_of", "kill_all", "host_pid"]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = sorted(children.get(todo.pop(0), []))
        found += kids
        todo += kids
    return found


def host_pid(parent: int, inner: int) -> int | None:
    """The host pid of the child of host process `parent` that is process `inner` in its own pid namespace."""
    for pid in descendants(parent):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("NSpid:") and int(line.split()[-1]) == inner:
                    return pid
        except (OSError, ValueError):
            continue
    return None


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def kill_all(find, rounds: int = 100) -> None:
    """SIGKILL what `find()` lists until it lists nothing (a fork bomb may still be forking)."""
    for _ in range(rounds):
        pids = find()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
