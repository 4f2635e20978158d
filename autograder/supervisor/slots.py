"""The machine's slot users: one per concurrent run (as root), each claimed by a lock file that no other run holds."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from autograder.supervisor import host

__all__ = ["SLOTS", "claim_user"]

SLOTS = 8  # concurrent runs on one machine, each with a user of its own


def claim_user(notes: list[str], base: str):
    """(user, lock): as root, the first of this machine's slot users (`base`, `base`-run1, ...) that no other run
    holds (flock)."""
    if os.geteuid() != 0:
        return None, None
    global _last_slot
    folder = Path("/run/autograder")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = [base] + [f"{base}-run{slot}" for slot in range(1, SLOTS)]
    for name in sorted(names, key=lambda n: n != _last_slot):  # this process's last one first: its warm start
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _last_slot = name
        return host.sandbox_user(name, notes), fd
    raise RuntimeError(f"all {SLOTS} sandbox users are busy")


_last_slot = ""
