"""The measurement process's policy, as the assignment declares it, put in place before any student code.

In the measurement process, once, in this order (`confine_measurement`):
  1. what the assignment preloads: shared libraries by path (CUDA's driver for the GPU harness: ctypes is
     refused once the guard is in) and modules (the kernel layers need torch imported, if torch is used);
  2. the kernel's file policy (files.py, Landlock): the forbidden packages' folders unreadable, by any route;
  3. the kernel's system-call policy for the measurement process (syscalls.py, seccomp);
  4. the guard (guard.py): the forbidden packages' code and kernels stubbed in memory, the audit hook.
In each child, before student code (`confine_child`): the stricter system-call policy, then the seal (the audit
hook lets the child's own set-up call ctypes, pyseccomp's binding, until the child seals itself; student code only
ever runs after). A layer the kernel or the environment cannot provide is reported missing, never silently
skipped: the reply's "layers" list says what is active, the staff log shows it.
Policy (JSON): {"libraries": [path], "imports": [module], "forbidden": [package], "kernels": [operator prefix]}.
"""

from __future__ import annotations

import os
import sys

import files
import guard
import syscalls

__all__ = ["confine_measurement", "confine_child", "SEAL_EVENT"]

SEAL_EVENT = guard.SEAL_EVENT
_child_filter = {"wanted": False}


def confine_measurement(policy: dict, kind: str, switched_off: tuple[str, ...] = ()) -> list[str]:
    """Apply the policy to this process; returns the active layers (and "missing: ..." entries).
    `switched_off` (tests only, to show that a defence is what stops an attack): layers not to install."""
    import ctypes
    layers: list[str] = []
    for path in policy.get("libraries", []):
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)  # before the guard, which refuses ctypes
        layers.append(f"preloaded {os.path.basename(path)}")
    for module in policy.get("imports", []):
        __import__(module)
    forbidden = tuple(policy.get("forbidden", []))
    folders = guard.forbidden_folders(forbidden)
    if folders and "files" not in switched_off:
        try:
            layers.append(files.install(folders))
        except Exception as error:  # an old kernel (no Landlock) or no binding: the guard's check remains
            layers.append(f"missing: file policy ({type(error).__name__}: {error})")
    if "syscalls" not in switched_off:
        try:
            import pyseccomp  # noqa: F401  (loaded now: the children only call it)
            layers.append(syscalls.install("measurement", os.getpid()))
            _child_filter["wanted"] = True
        except Exception as error:
            layers.append(f"missing: system-call policy ({type(error).__name__}: {error})")
    if "guard" not in switched_off:
        guard.install(forbidden, tuple(policy.get("kernels", [])), kind)
        layers.append("guard (" + ", ".join(forbidden) + ")" if forbidden else "guard")
    return layers


def confine_child() -> None:
    """In a measurement child, before anything of the student's: its own filter, then the seal. Raises if the
    filter the measurement process has cannot be installed here (the call then fails as the grader's problem)."""
    try:
        if _child_filter["wanted"]:
            syscalls.install("child", os.getpid())
    finally:
        sys.audit(SEAL_EVENT)
