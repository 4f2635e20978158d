"""The measurement process's policy, as the assignment declares it, put in place before any student code.

In the measurement process, once, in this order (`confine_measurement`):
  1. what the assignment preloads: shared libraries by path (CUDA's driver for the GPU harness: ctypes is
     refused once the guard is in) and modules (the kernel layers need torch imported, if torch is used);
  2. the kernel's file policy (files.py): the forbidden packages' folders unreadable, by any route: Landlock,
     applied here, and what the sandbox set up before this process existed (the fallback's file permissions, the
     full sandbox's read-only view), checked here; the reply names each route in force, or says that none is;
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
    `switched_off` (tests, to show that a defence is what stops an attack; "landlock" also by the grader's
    AUTOGRADER_DISABLE): layers not to install. ("permissions" and "view" are the grader's to leave out.)"""
    import ctypes
    layers: list[str] = []
    for path in policy.get("libraries", []):
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)  # before the guard, which refuses ctypes
        layers.append(f"preloaded {os.path.basename(path)}")
    for module in policy.get("imports", []):
        __import__(module)
    forbidden = tuple(policy.get("forbidden", []))
    folders = guard.forbidden_folders(forbidden)
    if folders:
        layers += _file_layers(folders, switched_off)
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


def _file_layers(folders: list[str], switched_off: tuple[str, ...]) -> list[str]:
    """The file policy's routes in force here, or one "missing: file policy (...)" saying why each is not.
    Checked before Landlock is applied, so that each check sees its own route only."""
    found, missing = [], []
    for check in (files.view_layer, files.permissions_layer):
        try:
            layer, why = check(folders)
        except OSError as error:
            layer, why = "", f"{type(error).__name__}: {error}"
        found += [layer] if layer else []
        missing += [why] if why else []
    if "landlock" in switched_off:
        missing.append("Landlock switched off")
    else:
        try:
            found.append(files.install(folders))
        except Exception as error:  # an old kernel (no Landlock) or no binding
            missing.append(f"no Landlock ({type(error).__name__}: {error})")
    return found or ["missing: file policy (" + "; ".join(missing) + ")"]


def confine_child() -> None:
    """In a measurement child, before anything of the student's: its own filter, then the seal. Raises if the
    filter the measurement process has cannot be installed here (the call then fails as the grader's problem)."""
    try:
        if _child_filter["wanted"]:
            syscalls.install("child", os.getpid())
    finally:
        sys.audit(SEAL_EVENT)
