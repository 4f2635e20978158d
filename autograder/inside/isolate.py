"""A run's own corner of the sandbox: fresh namespaces, empty temporary folders, no capabilities.

Used by the zygote (zygote.py) inside bubblewrap's sandbox, which builds the view every run shares (the Python
environment read-only, no checkout, no network, its own user and PID namespaces). Each run then gets, from
`enter()`, a mount, PID and IPC namespace of its own, in which /tmp, /var/tmp, /dev/shm and the scratch folder
are new, size-capped tmpfs mounts and /proc shows only the run's processes; the caller becomes PID 1 there, so
that when it exits the kernel kills everything the run started, and every file and IPC object of the run goes with
its namespaces. Then every capability is dropped for good, before any student-facing code is loaded.

The measurement process, forked before that drop, first takes a mount namespace of its own in which each forbidden
package's folder (torch/optim: sources and caches) is covered by an empty, read-only tmpfs of mode 0 (`hide`),
at every path where the view shows that folder; the notebook run keeps the full view. Without capabilities it
can neither unmount nor remount that cover (and seccomp refuses both), and the run's other processes are not
dumpable, so their /proc/PID/root and /proc/PID/fd are no way around it either.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
PR_SET_DUMPABLE = 4
CAPABILITY_VERSION_3 = 0x20080522
TMPFS_MB = {"/tmp": 128, "/var/tmp": 16, "/dev/shm": 64}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str, target: str, kind: str, flags: int = 0, options: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), kind.encode(), flags,
                       options.encode() if options else None), f"mount {kind} on {target}")


def enter(scratch: str, scratch_mb: int, keep: Sequence[str] = ()) -> int:
    """Unshare and remount; fork. Returns 0 in the child (PID 1 of the run), the child's pid in the parent,
    which should only wait for it. `keep`: bound paths inside a folder that gets a fresh tmpfs (an environment
    under /tmp, say), bound again on top of it."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    _mount("none", "/", "", MS_REC | MS_PRIVATE)
    fresh = {**TMPFS_MB, scratch: scratch_mb}
    kept = {path: os.open(path, os.O_PATH) for path in keep
            if any(path.startswith(t + "/") for t in fresh) and os.path.exists(path)}
    for target, size in fresh.items():
        os.makedirs(target, exist_ok=True)
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,mode=1777")
    for path, fd in kept.items():
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, "", MS_BIND | MS_REC)
        _mount("none", path, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
        os.close(fd)
    pid = os.fork()
    if pid == 0:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV)  # this PID namespace's processes only
    return pid


def hide(folders: list[str]) -> None:
    """A mount namespace of this process's own where each folder in `folders` (and any other path the view gives
    it) is an empty, read-only, mode-0 tmpfs. Needs CAP_SYS_ADMIN in the run's user namespace: before the drop."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount("none", "/", "", MS_REC | MS_PRIVATE)  # nothing done here reaches the run's own view
    for folder in folders:
        for path in aliases(folder):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")


def aliases(folder: str, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Every path at which this process's mounts show `folder` (itself first): a bind mount of a folder above it
    elsewhere in the view is another way in."""
    mounts = []
    with open(mountinfo) as stream:
        for line in stream:
            fields = line.split()
            mounts.append((fields[2], _unescape(fields[3]), _unescape(fields[4])))  # device, root, mount point
    inside = None
    for mount in mounts:  # the mount holding it: the deepest mount point above it, the last one stacked there
        if _under(folder, mount[2]) and (inside is None or len(mount[2]) >= len(inside[2])):
            inside = mount
    if inside is None:
        return [folder]
    in_fs = os.path.normpath(os.path.join(inside[1], os.path.relpath(folder, inside[2])))
    target = os.stat(folder)
    found = [folder]
    for device, root, point in mounts:
        if device != inside[0] or not _under(in_fs, root):
            continue
        path = os.path.normpath(os.path.join(point, os.path.relpath(in_fs, root)))
        try:
            seen = os.stat(path)
        except OSError:
            continue
        if path not in found and (seen.st_dev, seen.st_ino) == (target.st_dev, target.st_ino):
            found.append(path)
    return found


def _under(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder + "/")


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("040", "011", "012", "134"):
        text = text.replace("\\" + code, chr(int(code, 8)))
    return text


def drop_privileges() -> None:
    """No capabilities in any set, none to regain (no_new_privs), and not dumpable: nothing the run starts can
    mount, trace its measurement process or read that process's memory."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(CAPABILITY_VERSION_3, 0), (Data * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def not_dumpable() -> None:
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
