"""The Gradescope box's entry stage (see gradescope_box.py): run as root inside the box's cgroups, it builds the
container's mount view (a private mount namespace, the kit's overlay and any other fresh folder's, a /run of its
own, the cgroup mounts read-only with the box's own cgroups at their roots), drops to Docker's capability bounding
set, installs the Docker-like seccomp filter and execs the command.
Usage: python gradescope_box_enter.py SPEC_JSON -- argv...
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
from pathlib import Path

from gradescope_box import (CAP_NUMBERS, CGROUP_ROOT, CLONE_NAMESPACE_FLAGS, CLONE_NEWNS, DOCKER_CAPS, MS_BIND,
                            MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL,
                            PR_CAPBSET_DROP, REFUSED_SYSCALLS)


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _mount(libc, source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    def encode(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    _check(libc.mount(encode(source), encode(target), encode(kind), flags, encode(data)), f"mount {target}")


def enter(spec: dict, argv: list[str]) -> None:
    """Join the cgroups, build the container's mount view, drop to Docker's capabilities, install the filter,
    exec argv. Never returns."""
    for path in spec["cgroups"].values():
        Path(path, "cgroup.procs").write_text(str(os.getpid()))
    libc = _libc()
    off = set(spec.get("switched_off", ()))  # the box's own tests only (Box's switched_off)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    kit = spec["kit"]
    for folder in (spec["upper"], spec["work"]):
        os.makedirs(folder, exist_ok=True)
    if "overlay" not in off:
        _mount(libc, "overlay", kit, "overlay", 0, f"lowerdir={kit},upperdir={spec['upper']},workdir={spec['work']}")
    for fresh in spec.get("fresh", []):  # more of the image, fresh per run as a container's is
        for folder in (fresh["upper"], fresh["work"]):
            os.makedirs(folder, exist_ok=True)
        _mount(libc, "overlay", fresh["lower"], "overlay", 0,
               f"lowerdir={fresh['lower']},upperdir={fresh['upper']},workdir={fresh['work']}")
    _mount(libc, "tmpfs", "/run", "tmpfs", 0, "mode=755")  # the container's own /run (the graders' slot locks)
    cgroup_mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                     if line.split()[2] in ("cgroup", "cgroup2")]
    for controller, path in spec["cgroups"].items():  # the container sees its own cgroup as the root
        target = str(CGROUP_ROOT / controller)
        if target in cgroup_mounts:
            _mount(libc, path, target, None, MS_BIND)
    for target in cgroup_mounts if "read_only_cgroups" not in off else []:
        _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    if "capabilities" not in off:
        _drop_capabilities(libc)
    if "filter" not in off:
        _install_filter()
    os.execvp(argv[0], argv)


def _drop_capabilities(libc) -> None:
    """Docker's bounding set; root's capabilities after exec are exactly it (inheritable and ambient are empty)."""
    keep = {CAP_NUMBERS[name] for name in DOCKER_CAPS}
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        if cap not in keep:
            _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"PR_CAPBSET_DROP {cap}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _install_filter() -> None:
    import pyseccomp as seccomp
    box = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in REFUSED_SYSCALLS:
        try:
            box.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):  # a syscall this architecture or libseccomp does not know
            pass
    for flag in CLONE_NAMESPACE_FLAGS.values():  # rules for one syscall are or-ed: any namespace flag refuses
        box.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    box.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    box.set_attr(seccomp.Attr.CTL_NNP, 0)  # Docker (runc, which holds CAP_SYS_ADMIN) loads it without no_new_privs
    box.load()


if __name__ == "__main__":
    at = sys.argv.index("--")
    enter(json.loads(sys.argv[1]), sys.argv[at + 1:])
