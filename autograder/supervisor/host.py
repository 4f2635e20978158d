"""What the grader prepares and cleans on the host around sandboxed runs: users, permissions, leftovers.

Root only, except `remove_tree`. In the full sandbox (bubblewrap) the host keeps nothing of a run; these matter
for the fallback, where the run is a process of an unprivileged user on the host itself.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

__all__ = ["sandbox_user", "let_user_run_python", "lock_down", "remove_leftovers", "remove_tree"]

TEMPORARY = ("/tmp", "/var/tmp", "/dev/shm")


def sandbox_user(name: str, notes: list[str]) -> pwd.struct_passwd | None:
    """The run's unprivileged user (one per concurrent slot), created on first use; None when not root.
    Concurrent gradings may create users at once, and useradd then fails on /etc/passwd's lock: retried."""
    if os.geteuid() != 0:
        return None
    error = ""
    for attempt in range(20):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                              capture_output=True, text=True)
        if made.returncode == 0:
            notes.append(f"created the sandbox user {name}")
            return pwd.getpwnam(name)
        error = made.stderr.strip()
        time.sleep(0.1 * (attempt + 1))
    raise OSError(f"could not create the sandbox user {name}: {error}")


def python_paths() -> list[Path]:
    """What a sandboxed run must be able to read: the interpreter, its libraries and the environment."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sysconfig.get_paths()["stdlib"]),
             Path(sysconfig.get_paths()["purelib"]), Path(sys.executable).resolve().parent}
    return sorted({p.resolve() for p in paths})


def let_user_run_python(inside: Path, notes: list[str]) -> None:
    """Traverse-only permission on the folders above the environment and the sandbox package (a venv under
    /root, say): the user can reach them without listing or reading anything else on the way."""
    for path in [*python_paths(), inside.resolve()]:
        for folder in path.parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                folder.chmod(mode | stat.S_IXOTH)
                notes.append(f"granted traverse permission on {folder}")


def lock_down(root: Path, keep: list[Path], notes: list[str]) -> None:
    """Fallback only: other users may not read anything under `root` but `keep` (the environment and the sandbox
    package); the folders on the way to a kept path become traverse-only."""
    keep = [k.resolve() for k in keep]
    changed, todo = 0, [root.resolve()]
    while todo:
        folder = todo.pop()
        changed += _set_other(folder, stat.S_IXOTH)
        for entry in folder.iterdir():
            if entry in keep or entry.is_symlink():
                continue
            if any(entry in k.parents for k in keep):
                todo.append(entry)
            else:
                changed += _set_other(entry, 0)
    if changed:
        notes.append(f"fallback: made {changed} entries under {root} unreadable to the sandbox user")


def _set_other(path: Path, bits: int) -> int:
    mode = path.lstat().st_mode
    wanted = (mode & ~0o007) | bits
    if stat.S_IMODE(wanted) == stat.S_IMODE(mode):
        return 0
    path.chmod(stat.S_IMODE(wanted))
    return 1


def remove_leftovers(uid: int) -> list[str]:
    """Fallback only: files the run's user left in the shared temporary folders and its System V IPC objects."""
    removed = []
    for folder in TEMPORARY:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    remove_tree(Path(entry.path))
                    removed.append(entry.path)
            except OSError:
                pass
    for kind, flag in (("shm", "-m"), ("sem", "-s"), ("msg", "-q")):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        header = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[0].split()
        for line in lines:
            fields = dict(zip(header, line.split()))
            if fields.get("uid") == str(uid):
                subprocess.run(["ipcrm", flag, fields["shmid" if kind == "shm" else "semid" if kind == "sem" else "msqid"]],
                               capture_output=True)
                removed.append(f"System V {kind} {fields.get('key')}")
    return removed


def remove_tree(path: Path) -> None:
    """Delete `path` and everything under it, however deep, without following a link, whatever the modes.

    Iterative and descriptor-relative: each folder's entries are moved up into the top folder, so the depth
    never grows past one and no path is longer than a name.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    os.chmod(path, 0o700)
    top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    counter = 0
    try:
        while True:
            names = os.listdir(top)
            if not names:
                break
            for name in names:
                info = os.lstat(name, dir_fd=top)
                if not stat.S_ISDIR(info.st_mode):
                    os.unlink(name, dir_fd=top)
                    continue
                os.chmod(name, 0o700, dir_fd=top)  # a folder (lstat said so), not a link
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
                try:
                    for child in os.listdir(inner):
                        counter += 1
                        while _exists(f".autograder-removing-{counter}", top):
                            counter += 1
                        os.rename(child, f".autograder-removing-{counter}", src_dir_fd=inner, dst_dir_fd=top)
                finally:
                    os.close(inner)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(path)


def _exists(name: str, folder: int) -> bool:
    try:
        os.lstat(name, dir_fd=folder)
        return True
    except FileNotFoundError:
        return False
