"""The Gradescope box's entry stage (see gradescope_box.py), run as root and outside the box's cgroups. It makes
the container's namespaces (mount, PID, network) and forks the container's init, which joins the box's cgroups,
brings the container's loopback up, builds its mount view (a fresh /proc of its PID namespace, the kit's overlay
and any other fresh folder's, a /run of its own, the cgroup mounts read-only with the box's own cgroups at their
roots), drops to Docker's capability bounding set, installs the Docker-like seccomp filter, then forks the command
(which inherits both) and reaps whatever is orphaned in the container until the command exits. When the init
exits the kernel kills every process left in its PID namespace: the container's processes die with it.
This stage (like Docker's runtime) stays outside the container and exits as the command did.
Usage: python gradescope_box_enter.py SPEC_JSON -- argv...
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import NoReturn

import pyseccomp as seccomp  # imported before the fork: the init's copy of it is the entry stage's pages

from gradescope_box import (CAP_NUMBERS, CGROUP_ROOT, CLONE_NAMESPACE_FLAGS, CLONE_NEWNS, DOCKER_CAPS, MS_BIND,
                            MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL,
                            PR_CAPBSET_DROP, REFUSED_SYSCALLS)

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP, IFREQ_SIZE = 0x8913, 0x8914, 0x1, 40


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


def enter(spec: dict, argv: list[str]) -> NoReturn:
    """Make the namespaces, fork the container's init, wait for it and exit as the command did."""
    libc = _libc()
    off = set(spec.get("switched_off", ()))  # the box's own tests only (Box's switched_off)
    flags = CLONE_NEWNS
    if "pid_namespace" not in off:
        flags |= CLONE_NAMESPACE_FLAGS["CLONE_NEWPID"]  # the next child is the namespace's init, pid 1
    if "network_namespace" not in off:
        flags |= CLONE_NAMESPACE_FLAGS["CLONE_NEWNET"]
    _check(libc.unshare(flags), f"unshare({flags:#x})")
    report, told = os.pipe()  # the init writes the command's wait status here
    init = os.fork()
    if init == 0:
        os.close(report)
        try:
            _init(spec, argv, off, libc, told)
        except BaseException as error:  # a setup failure must not go on as a second entry stage
            print(f"gradescope box: the container's init failed: {error!r}", file=sys.stderr, flush=True)
            os._exit(125)
    os.close(told)
    _, status = os.waitpid(init, 0)
    said = os.read(report, 32).decode().strip()
    _exit_as(int(said) if said else status)


def _init(spec: dict, argv: list[str], off: set[str], libc, told: int) -> NoReturn:
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the entry stage killed (a timeout): the container too
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as an init: no KeyboardInterrupt from a signal it cannot get
    for path in spec["cgroups"].values():
        Path(path, "cgroup.procs").write_text(str(os.getpid()))  # read in this PID namespace: the init itself
    if "network_namespace" not in off:
        _loopback_up()
    _mount_view(spec, off, libc)
    if "capabilities" not in off:
        _drop_capabilities(libc)
    if "filter" not in off:
        _install_filter()  # the init's children inherit the filter and the bounding set
    command = os.fork()
    if command == 0:
        for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python's own choices, not the container's
            signal.signal(number, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as error:
            print(f"gradescope box: cannot run {argv[0]}: {error}", file=sys.stderr, flush=True)
            os._exit(127)
    while True:  # pid 1 reaps the container's orphans, as Docker's init would
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(125)
        if pid == command:
            os.write(told, str(status).encode())
            os._exit(0)  # the kernel now kills what the command left in the PID namespace


def _exit_as(status: int) -> NoReturn:
    """Exit as a process with this wait status did: a signal that killed the command kills this stage too."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if number not in (signal.SIGKILL, signal.SIGSTOP):  # these two have no handler to reset
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status))


def _loopback_up() -> None:
    """A new network namespace has only `lo`, and it is down; up, it gets 127.0.0.1 and ::1 (Jupyter's kernels)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH", b"lo", 0).ljust(IFREQ_SIZE, b"\0")
        flags = struct.unpack_from("16sH", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP).ljust(IFREQ_SIZE, b"\0"))


def _mount_view(spec: dict, off: set[str], libc) -> None:
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    if "pid_namespace" not in off:  # this PID namespace's processes only (the init mounts it: it is in it)
        _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
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


def _drop_capabilities(libc) -> None:
    """Docker's bounding set; root's capabilities after exec are exactly it (inheritable and ambient are empty)."""
    keep = {CAP_NUMBERS[name] for name in DOCKER_CAPS}
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        if cap not in keep:
            _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"PR_CAPBSET_DROP {cap}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _install_filter() -> None:
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
