"""The measurement's system-call policy, enforced by the kernel (seccomp-BPF through libseccomp's `pyseccomp`).

Two filters, each installed before any student code and irremovable (a process can only add filters, never
drop one; no_new_privs comes with it):
  - "measurement": the measurement process itself, which forks a child per call and stops what overruns: no new
    programs, no sockets, no tracing or cross-process memory, no namespaces or mounts, no io_uring (its requests
    are not seen by seccomp), no kernel keyrings, BPF or perf;
  - "child": each measurement child, where student code runs: all of the above, and no processes but threads
    (clone only with CLONE_THREAD; clone3 answers ENOSYS so glibc falls back to clone), no signals to anything but
    itself, no new links (symbolic or hard: no second path to a file the file policy hides).
A refused call fails with EPERM (the student's code sees an ordinary PermissionError); a syscall of another ABI
(32-bit int 0x80, x32) kills the process. Runs inside the sandbox: standard library and pyseccomp only.
"""

from __future__ import annotations

import errno

__all__ = ["Rule", "rules", "install", "CLONE_THREAD"]

CLONE_THREAD = 0x00010000
# Every process: what would start another program, reach the network or another process, or leave the view.
_ALWAYS_REFUSED = (
    "execve", "execveat", "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsmount", "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "lookup_dcookie", "personality",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid",
)
# The children only: no process but a thread, no signal to another process, no second path to a file.
_CHILD_REFUSED = ("fork", "vfork", "pidfd_open", "pidfd_send_signal", "rt_sigqueueinfo", "symlink", "symlinkat",
                  "link", "linkat")


class Rule(tuple):
    """(action, syscall, conditions): conditions are (argument index, operator name, value[, mask])."""

    def __new__(cls, action: str, syscall: str, *conditions: tuple):
        return super().__new__(cls, (action, syscall, tuple(conditions)))


def rules(role: str, pid: int) -> list[Rule]:
    """The filter's rules for `role` ("measurement" or "child") in process `pid`; everything else is allowed."""
    if role not in ("measurement", "child"):
        raise ValueError(f"role must be 'measurement' or 'child', not {role!r}")
    found = [Rule("EPERM", name) for name in _ALWAYS_REFUSED]
    if role == "child":
        found += [Rule("EPERM", name) for name in _CHILD_REFUSED]
        found += [Rule("ENOSYS", "clone3"),
                  # clone without CLONE_THREAD would be a new process: only threads
                  Rule("EPERM", "clone", (0, "MASKED_EQ", 0, CLONE_THREAD))]
        for name in ("kill", "tkill"):  # itself only (kill(0) and kill(-1) reach others)
            found.append(Rule("EPERM", name, (0, "NE", pid)))
        found.append(Rule("EPERM", "tgkill", (0, "NE", pid)))
        found.append(Rule("EPERM", "rt_tgsigqueueinfo", (0, "NE", pid)))
    return found


def install(role: str, pid: int) -> str:
    """Load the filter into this process (and, by inheritance, everything it starts); returns the layer's name.
    Raises OSError or ImportError where the kernel or libseccomp cannot."""
    import pyseccomp as seccomp

    actions = {"EPERM": seccomp.ERRNO(errno.EPERM), "ENOSYS": seccomp.ERRNO(errno.ENOSYS)}
    operators = {"NE": seccomp.NE, "EQ": seccomp.EQ, "MASKED_EQ": seccomp.MASKED_EQ}
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    flt.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    for action, syscall, conditions in rules(role, pid):
        args = []
        for index, operator, value, *mask in conditions:
            if operator == "MASKED_EQ":
                args.append(seccomp.Arg(index, seccomp.MASKED_EQ, mask[0], value))
            else:
                args.append(seccomp.Arg(index, operators[operator], value))
        try:
            flt.add_rule(actions[action], syscall, *args)
        except (OSError, ValueError, RuntimeError):
            if syscall in ("execve", "clone", "fork", "socket", "ptrace", "kill"):
                raise
            # a syscall this architecture or libseccomp does not know cannot be called either
    flt.load()
    return f"seccomp ({role})"
