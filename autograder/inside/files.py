"""The measurement's file policy, enforced by the kernel: Landlock, and what the sandbox set up before this process.

Three routes keep the forbidden packages' folders (torch/optim: sources and caches) from the measurement process,
each by any path (absolute, relative to a descriptor, `..`, /proc/self/fd, a link):
  - Landlock (`install`, through the `landlock` package), which this process applies to itself, where the kernel
    has it;
  - in the fallback, file permissions: the grader made the folders readable by their owner and one group only,
    and this process runs as a fresh user without that group (supervisor/filepolicy.py, confine.py);
  - in the full sandbox, a read-only view: an empty mode-0 tmpfs over each folder in this process's own mount
    namespace (isolate.hide).
The last two are set up before this process runs; `permissions_layer` and `view_layer` check that they are in
force here (the kernel's own answer, not the plan's word) and name them for the reply's "layers".

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

__all__ = ["read_grants", "install", "permissions_layer", "view_layer"]


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
    return f"file policy: Landlock ABI {abi}"


def permissions_layer(hidden: list[str]) -> tuple[str, str]:
    """("file policy: permissions (group NAME)", "") when the kernel's permission checks alone keep every folder in
    `hidden` from this process (it may neither list nor enter them) and it cannot change that (it owns none of
    them); else ("", why not)."""
    import grp
    names = set()
    for folder in hidden:
        info = os.stat(folder)
        if info.st_uid == os.geteuid():
            return "", f"{folder} belongs to this process's user"
        if os.access(folder, os.R_OK) or os.access(folder, os.X_OK):
            return "", f"{folder} is readable by this process"
        try:
            names.add(grp.getgrgid(info.st_gid).gr_name)
        except KeyError:
            names.add(f"gid {info.st_gid}")
    return f"file policy: permissions (group {', '.join(sorted(names))})", ""


def view_layer(hidden: list[str]) -> tuple[str, str]:
    """("file policy: read-only view", "") when every folder in `hidden` is covered here by an empty read-only
    mount of mode 0; else ("", why not)."""
    for folder in hidden:
        info, above = os.stat(folder), os.stat(os.path.dirname(folder))
        if info.st_dev == above.st_dev:
            return "", f"{folder} is not covered in this process's view"
        if not os.statvfs(folder).f_flag & os.ST_RDONLY or info.st_mode & 0o7777:
            return "", f"{folder} is not under a read-only cover of mode 0 here"
    return "file policy: read-only view", ""
