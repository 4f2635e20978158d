"""A run's own corner of the sandbox: fresh namespaces, empty temporary folders, no capabilities.

Used by the zygote (zygote.py) inside bubblewrap's sandbox, which builds the view every run shares (the Python
environment read-only, no checkout, no network, its own user and PID namespaces). Each run then gets, from
`enter()`, a mount, PID and IPC namespace of its own, in which /tmp, /var/tmp, /dev/shm and the scratch folder
are new, size-capped tmpfs mounts and /proc shows only the run's processes; the caller becomes PID 1 there, so
that when it exits the kernel kills everything the run started, and every file and IPC object of the run goes with
its namespaces. Then every capability is dropped for good, before any student-facing code is loaded.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x20, 0x1000, 0x4000, 0x40000
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


def enter(scratch: str, scratch_mb: int, keep: list[str] = ()) -> int:
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
