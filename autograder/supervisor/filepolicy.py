"""The grader's part of the measurement's file policy: which folders to hide, and how where Landlock cannot.

The measurement process must not read the forbidden packages' files (torch/optim: sources and caches) by any
route. Where the kernel has Landlock, that process applies it to itself (inside/files.py). Two more routes are
prepared here, before the run, and checked by the measurement process, which names each one in force in its reply:
  - the full sandbox (bubblewrap), always: a read-only view. The plan's "hide" folders are covered by an empty
    mode-0 tmpfs in the measurement process's own mount namespace (inside/isolate.hide); the host is not touched;
  - the fallback (no namespaces), where the grader is root and Landlock is missing or switched off
    (AUTOGRADER_DISABLE=landlock): file permissions. Each folder and everything in it goes to the group GROUP,
    with nothing left for other users (folders rwxr-x---, files rw-r-----, the owner's bits kept); the run's
    notebook run gets GROUP as a supplementary group (the course's given cells use torch.optim there), its
    measurement process no group at all (the plan's "groups" and "measure_groups"; inside/confine.py). The run's
    fresh uid owns none of these files, so it cannot give the bits back; the kernel checks them on every path.
    Idempotent and cheap (a few dozen lstat calls): each run changes only what differs, such as a cache file the
    grader itself wrote since. Once done it stays, so every later run on this host gives its notebook run, and
    bubblewrap's user (supervisor/warmstart.py), the group, and root, the trusted grader, reads them anyway.
Where a route cannot be prepared (a grader that is not root, files of a run's own uid) the staff log says why; the
measurement process reports "missing: file policy (...)" if no route holds.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import stat
import subprocess
import time

from autograder.supervisor import runusers

__all__ = ["GROUP", "forbidden_folders", "landlock_refusal", "readers_gid", "hide_by_permissions", "plan"]

GROUP = "ag-forbidden"  # may read the forbidden packages' files: the notebook run, never the measurement process


def forbidden_folders(forbidden: list[str]) -> list[str]:
    """The real folders of the forbidden packages (those inside/guard.forbidden_folders finds), found without
    importing anything: the grader keeps torch out of its own memory while the run lasts. A package that is not
    installed has none."""
    found: set[str] = set()
    for name in forbidden:
        top, *below = name.split(".")
        try:
            spec = importlib.util.find_spec(top)  # a top-level name: found, not imported
        except (ImportError, ValueError):
            continue
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        for part in below:
            folders = [os.path.join(f, part) for f in folders if os.path.isfile(os.path.join(f, part, "__init__.py"))]
        found.update(os.path.realpath(folder) for folder in folders)
    return sorted(found)


def landlock_refusal() -> str:
    """"" where this kernel gives Landlock to the processes here (the measurement process applies it), else why not."""
    try:
        import ctypes

        import landlock
        ctypes.set_errno(0)  # the binding reads a stale errno as its own failure (see inside/files.py)
        abi = landlock.landlock_abi_version()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "" if abi >= 1 else f"Landlock ABI {abi}"


def readers_gid() -> int | None:
    try:
        return grp.getgrnam(GROUP).gr_gid
    except KeyError:
        return None


def hide_by_permissions(folders: list[str], notes: list[str]) -> int:
    """Make `folders` readable by their owners and GROUP only (created if need be); returns GROUP's gid.
    OSError (PermissionError) with the reason where this grader may not."""
    if os.geteuid() != 0:
        raise PermissionError("the grader is not root")
    entries = [path for folder in folders for path in _tree(folder)]
    for path in entries:
        owner = os.lstat(path).st_uid
        if runusers.FIRST_UID <= owner <= runusers.LAST_UID:
            raise PermissionError(f"{path} belongs to uid {owner}, in the range of the runs' own users")
    gid = _group(notes)
    changed = sum(_restrict(path, gid) for path in entries)
    if changed:
        notes.append(f"file permissions: {changed} entries of {', '.join(folders)} made readable by their owner and "
                     f"group {GROUP} only")
    return gid


def _tree(folder: str) -> list[str]:
    """The folder and everything under it, top down, links left out (neither followed nor changed)."""
    found = [folder]
    for parent, folders, names in os.walk(folder):
        found += [os.path.join(parent, name) for name in folders + names]
    return [path for path in found if not os.path.islink(path)]


def _restrict(path: str, gid: int) -> int:
    """1 if `path` had to change. The group first, then the bits: the group never loses access on the way."""
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        wanted = (mode & 0o700) | 0o050
    else:
        wanted = (mode & 0o700) | 0o040 | (0o010 if mode & 0o100 else 0)
    changed = 0
    if info.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
        changed = 1
    if mode != wanted:
        os.chmod(path, wanted)  # not a link: lstat said so, and only root writes here
        changed = 1
    return changed


def _group(notes: list[str]) -> int:
    """GROUP's gid, the group created first if need be; concurrent graders may both try: retried."""
    error = ""
    for attempt in range(20):
        gid = readers_gid()
        if gid is not None:
            return gid
        made = subprocess.run(["groupadd", "--system", GROUP], capture_output=True, text=True)
        if made.returncode == 0:
            notes.append(f"created the group {GROUP}")
            continue
        error = made.stderr.strip()
        time.sleep(0.1 * (attempt + 1))
    raise OSError(f"could not create the group {GROUP}: {error}")


def plan(mode: str, root: bool, measure: dict, disabled: frozenset[str], notes: list[str]) -> dict:
    """What the run's plan needs for the file policy (inside/zygote.py reads it), preparing the host first.
    `measure`: the measurement's request (its policy's "forbidden"; the test-only "switched_off": "view" leaves the
    cover out, "permissions" gives the measurement process the group too); `disabled`: the grader's
    AUTOGRADER_DISABLE ("landlock": the fallback's permissions are set up even where Landlock works)."""
    folders = forbidden_folders(measure.get("policy", {}).get("forbidden", []))
    switched_off = set(measure.get("switched_off", []))
    if not folders:
        return {}
    if mode == "namespaces":
        return {"hide": [] if "view" in switched_off else folders}
    why = "Landlock switched off (AUTOGRADER_DISABLE)" if "landlock" in disabled else landlock_refusal()
    if why and not root:
        notes.append(f"missing: file permissions (the grader is not root: the run runs as the grader's own user); {why}")
    if not root:
        return {}
    if why:
        try:
            hide_by_permissions(folders, notes)
        except OSError as error:
            notes.append(f"missing: file permissions ({error}); {why}")
    gid = readers_gid()
    groups = [] if gid is None else [gid]  # set up by this run or an earlier one: the notebook run needs it
    return {"groups": groups, "measure_groups": groups if "permissions" in switched_off else []}
