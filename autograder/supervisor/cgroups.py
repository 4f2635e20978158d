"""cgroups (v1) around a run: a memory and a pids limit, and how every process of it is found. Root only.

The fallback's run puts itself in them before it drops root (inside/confine.py); the full sandbox's run cannot see
them, so the grader moves it (`add`) while it waits for its request, before it has started anything."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

__all__ = ["Cgroups"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


class Cgroups:
    """A memory and a pids cgroup (v1) around the worker's tree; inert where cgroups are unavailable."""

    def __init__(self, paths: dict[str, Path]):
        self.paths = paths

    @classmethod
    def create(cls, limits, notes: list[str], disabled: frozenset[str] = frozenset()) -> "Cgroups":
        """`disabled`: the layers the grader's config switches off ("cgroups": none made)."""
        paths = {}
        if "cgroups" in disabled:
            notes.append("cgroups disabled (AUTOGRADER_DISABLE): falling back to rlimits")
            return cls({})
        name = f"autograder-{uuid.uuid4().hex[:12]}"
        for controller in ("memory", "pids"):
            path = CGROUP_ROOT / controller / name
            try:
                path.mkdir()
                paths[controller] = path
            except OSError:
                pass
        groups = cls(paths)
        try:
            if "memory" in paths:
                (paths["memory"] / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 2**20))
                swap = paths["memory"] / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(limits.memory_mb * 2**20))
            if "pids" in paths:
                (paths["pids"] / "pids.max").write_text(str(limits.max_processes))
        except OSError as error:
            notes.append(f"cgroup limits could not be set ({error}); using rlimits")
            groups.remove()
            groups = cls({})
        for controller in ("memory", "pids"):
            if controller not in groups.paths and paths:
                notes.append(f"no {controller} cgroup: {controller} is bounded by the watchdog and rlimits only")
        if not paths:
            notes.append("no cgroups (not root, or refused by the container): memory is bounded by the grader's watchdog "
                         "only, processes by rlimits")
        return groups

    def add(self, pid: int) -> bool:
        """Move process `pid` (a host pid) into every controller; False, with nothing left half done, on failure."""
        try:
            for path in self.paths.values():
                (path / "cgroup.procs").write_text(str(pid))
        except OSError:
            return False
        return True

    def pids(self) -> set[int]:
        found = set()
        for path in self.paths.values():
            try:
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def memory_report(self) -> tuple[int, float | None]:
        """(OOM kills in the run's memory cgroup, its peak usage in MB); (0, None) without one."""
        path = self.paths.get("memory")
        if not path:
            return 0, None
        try:
            peak = int((path / "memory.max_usage_in_bytes").read_text()) / 2**20
            kills = [line.split()[1] for line in (path / "memory.oom_control").read_text().splitlines()
                     if line.startswith("oom_kill ")]
            return (int(kills[0]) if kills else 0), round(peak, 1)
        except (OSError, ValueError):
            return 0, None

    def remove(self) -> None:
        for path in self.paths.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
