"""The measurement's file policy, enforced by the kernel (Landlock, through the `landlock` package).

Landlock grants, it cannot deny: a rule on a folder opens everything beneath it. So to hide some folders (the
forbidden package's sources and caches: torch/optim) while leaving the rest of the system readable, the ruleset
handles reading only, lets every folder be listed (names are no secret), and grants reading on each sibling of
each folder on the way down to a hidden one, never on the way itself. Writing is left to the file permissions and
mounts; Landlock also refuses, once any ruleset is in place, to move or hard-link a file into another folder, so
no second path to a hidden file can be made. Applies to this process and everything it starts; irremovable.
Where the kernel has no Landlock (an old host), `install` raises and the caller reports the layer as missing.
Runs inside the sandbox: standard library and landlock only.
"""

from __future__ import annotations

import os

__all__ = ["read_grants", "install"]


def read_grants(hidden: list[str], root: str = "/") -> list[tuple[str, bool]]:
    """(path, is_folder) for every entry to grant reading on so that all under `root` is readable except the
    folders in `hidden` (absolute, resolved). An entry that is an ancestor of a hidden folder is descended into
    instead of granted."""
    for path in hidden:
        if not os.path.isabs(path) or os.path.realpath(path) == root:
            raise ValueError(f"a hidden folder must be an absolute path below {root!r}, not {path!r}")
    hidden = [os.path.realpath(h) for h in hidden]
    ancestors = {root}
    for path in hidden:
        parent = os.path.dirname(path)
        while parent not in ancestors and parent != os.path.dirname(parent):
            ancestors.add(parent)
            parent = os.path.dirname(parent)
    grants: list[tuple[str, bool]] = []
    for folder in sorted(ancestors):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.path in ancestors or entry.path in hidden:
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
                if entry.is_symlink():  # a rule on a link applies to its target; grant what it points to
                    target = os.path.realpath(entry.path)
                    if any(target == h or target.startswith(h + "/") or h.startswith(target + "/")
                           for h in hidden):
                        continue  # a link into (or above) a hidden folder: the way down is granted elsewhere
                    is_folder = os.path.isdir(target)
            except OSError:
                continue
            grants.append((entry.path, is_folder))
    return grants


def install(hidden: list[str]) -> str:
    """Hide `hidden` from this process for good; returns the layer's name with the kernel's Landlock ABI."""
    import ctypes

    import landlock
    from landlock.plumbing import FSAccess

    # The binding takes ctypes' saved errno for the call's own: a stale one from any earlier call reads as a
    # failure. Cleared before each of its calls (a successful system call leaves errno as it was).
    ctypes.set_errno(0)
    abi = landlock.landlock_abi_version()
    reading = FSAccess.READ_FILE | FSAccess.READ_DIR
    ctypes.set_errno(0)
    ruleset = landlock.Ruleset(restrict_rules=reading)
    ctypes.set_errno(0)
    ruleset.allow("/", rules=FSAccess.READ_DIR)  # listing only, everywhere
    for path, is_folder in read_grants(hidden):
        try:
            ctypes.set_errno(0)
            ruleset.allow(path, rules=reading if is_folder else FSAccess.READ_FILE)
        except OSError:  # vanished, or not a file Landlock can hold (a socket): not readable then
            continue
    ctypes.set_errno(0)
    ruleset.apply()
    os.close(ruleset._fd)  # the ruleset is in force; its descriptor must not reach the children
    return f"landlock (ABI {abi})"
