"""The fallback's user of one run: a numeric uid that no other run ever had, and a cleanup it cannot outrun.

Where the kernel refuses namespaces, a run is a set of processes of an unprivileged user on the host. Were that
user shared with later runs (a slot user), a process that survived its run could signal, trace or read the next
one, and its dead children would count against the next run's process limit. So each run gets a uid of its own,
drawn at random from a range no system or login user uses (no /etc/passwd entry is needed: setuid takes a number),
and that uid is never used again. When the run ends everything of that uid is killed with `kill(-1, SIGKILL)`
issued *as that uid*, from a helper process: the kernel delivers it to every process of the uid at once, under
the lock that fork takes, so a chain of processes that fork and exit cannot slip between two scans of /proc.
Root only.
"""

from __future__ import annotations

import errno
import os
import pwd
import secrets
import signal
import time
from dataclasses import dataclass

__all__ = ["RunUser", "fresh_user", "kill_everything_of", "FIRST_UID", "LAST_UID"]

FIRST_UID, LAST_UID = 200_000, 2**31 - 2  # above login and system users, and below (uid_t)-1 and overflowuid


@dataclass(frozen=True)
class RunUser:
    """What the sandbox needs of a user (the attribute names of pwd.struct_passwd)."""

    pw_uid: int
    pw_gid: int
    pw_name: str = ""


def fresh_user() -> RunUser:
    """A uid (and a gid of the same number) that no account, no process and no file in /tmp holds."""
    if os.geteuid() != 0:
        raise PermissionError("a fresh user per run needs root")
    for _ in range(100):
        uid = FIRST_UID + secrets.randbelow(LAST_UID - FIRST_UID)
        if _unused(uid):
            return RunUser(uid, uid, f"uid {uid}")
    raise RuntimeError("could not find an unused uid for the run")


def _unused(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return False
    except KeyError:
        pass
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                return False
        except OSError:
            continue
    return True


def kill_everything_of(uid: int, attempts: int = 10) -> int:
    """SIGKILL every process of `uid`, as `uid`, until none is left but zombies (dead, waiting for a parent to
    reap them: they can do nothing); returns how many kill rounds found some. RuntimeError if live ones remain."""
    if uid < FIRST_UID:
        raise ValueError(f"uid {uid} is not a run's own (they start at {FIRST_UID})")
    total = 0
    for _ in range(attempts):
        found = _kill_as(uid, rounds=200)
        total += abs(found)
        if found >= 0 or not _live_processes(uid):
            return total
    raise RuntimeError(f"processes of uid {uid} survived {attempts} x 200 rounds of kill(-1, SIGKILL)")


def _live_processes(uid: int) -> list[int]:
    live = []
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                with open(f"/proc/{entry.name}/stat") as stream:
                    if stream.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                        live.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return live


def _kill_as(uid: int, rounds: int) -> int:
    """In a helper that becomes `uid`: kill(-1, SIGKILL) until ESRCH. The number of rounds that found processes,
    negated if some were still there after `rounds`."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # now it may signal exactly that uid's processes
            found, gone = 0, False
            for _ in range(rounds):
                try:
                    os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except the caller
                    found += 1
                    time.sleep(0.005)  # the dead become zombies until their parents reap them
                except OSError as error:
                    if error.errno != errno.ESRCH:
                        raise
                    gone = True
                    break
            os.write(write, str(found if gone else -found).encode())
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        answer = stream.read()
    os.waitpid(pid, 0)
    if not answer:
        raise RuntimeError(f"the helper that kills uid {uid}'s processes failed")
    return int(answer)
