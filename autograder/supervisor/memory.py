"""The run's memory, measured without privileges, and the watchdog that holds it to its limit.

Docker grants no CAP_SYS_PTRACE, so a root grader cannot read another user's /proc/PID/smaps_rollup there (it
read 0 forever). What works everywhere: /proc/PID/statm, world-readable. Its resident minus shared pages is the
process's anonymous memory, which counts the pages it still shares copy-on-write with the zygote; those are held
once, by the zygote, so each run process is charged only what it holds beyond the zygote's own anonymous memory.
Where the run has a memory cgroup of its own, the kernel enforces the limit and the cgroup says the peak.

Out-of-memory kills are reported as data (`MemoryReport`): the processes the watchdog stopped, the run's cgroup's
OOM kills, and the kills by the kernel in the container's own cgroup (Gradescope's box), counted from before to
after the run. A child killed by the container, not for its own size, is the grader's problem, not the student's.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["MemoryReport", "MemoryWatch", "anonymous_mb", "container_oom_kills", "room_to_overlap"]

PAGE = os.sysconf("SC_PAGE_SIZE")
CONTAINER_CGROUPS = (Path("/sys/fs/cgroup/memory/memory.oom_control"), Path("/sys/fs/cgroup/memory.events"))
CONTAINER_V1, CONTAINER_V2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
ROOM_MARGIN_MB = 64  # the watchdog samples: leave the kernel's OOM killer this much below the container's limit
OVERLAP_ROOM_MB = 2048  # room beyond which the grader's start-up work may overlap the sandbox's (grade.py)


@dataclass
class MemoryReport:
    limit_mb: int
    peak_mb: float = 0.0
    source: str = "statm"  # "statm" (the watchdog's estimate) or "cgroup" (the run's own cgroup)
    stopped: dict[int, float] = field(default_factory=dict)  # pid -> MB: processes the watchdog stopped
    stopped_inside: list[int] = field(default_factory=list)  # the same, as the run's own PID namespace numbers them
    cgroup_oom_kills: int = 0  # the run's own cgroup: every process in it is the run's
    container_oom_kills: int = 0  # the whole container, grader included, during the run

    @property
    def exceeded(self) -> bool:
        return bool(self.stopped) or self.cgroup_oom_kills > 0

    def to_json(self) -> dict:
        return {**asdict(self), "stopped": {str(k): v for k, v in self.stopped.items()}}

    def describe(self) -> str:
        parts = [f"peak {self.peak_mb:.1f} MB ({self.source}) of {self.limit_mb} MB"]
        if self.stopped:
            parts.append("watchdog stopped " + ", ".join(f"pid {p} at {mb:.0f} MB" for p, mb in self.stopped.items()))
        if self.cgroup_oom_kills:
            parts.append(f"the run's cgroup OOM-killed {self.cgroup_oom_kills} process(es)")
        if self.container_oom_kills:
            parts.append(f"the CONTAINER's OOM killer stopped {self.container_oom_kills} process(es) (the box, not "
                         f"the run's limit)")
        return "memory: " + "; ".join(parts)


def anonymous_mb(pid: int) -> float:
    """Resident minus shared (file-backed and shmem) pages, from the world-readable statm; 0 when gone."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
        return max(0, int(fields[1]) - int(fields[2])) * PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def innermost_pid(pid: int) -> int:
    """The pid as the process's own PID namespace sees it (the last NSpid field; the same pid without one)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return pid


def container_room_mb() -> float | None:
    """What the container's memory limit leaves beyond the anonymous memory it holds now (the grader, the warm
    start), in its own cgroup as Docker shows it (v1 or v2); None when it has no limit or none is visible."""
    for limit_file, stat_file, anon_keys in ((CONTAINER_V1 / "memory.limit_in_bytes", CONTAINER_V1 / "memory.stat",
                                              ("total_rss", "total_swap")),
                                             (CONTAINER_V2 / "memory.max", CONTAINER_V2 / "memory.stat", ("anon",))):
        try:
            limit = limit_file.read_text().strip()
            stat = dict(line.split() for line in stat_file.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**50:
            return None
        return (int(limit) - sum(int(stat.get(k, 0)) for k in anon_keys)) / 2**20
    return None


def room_to_overlap() -> bool:
    """Whether the container's memory leaves room for the grader to hold torch while the sandbox boots and runs:
    no limit, or OVERLAP_ROOM_MB free. Not so in Gradescope's 768 MiB box, where one thing runs at a time."""
    room = container_room_mb()
    return room is None or room >= OVERLAP_ROOM_MB


def container_oom_kills() -> int:
    """OOM kills so far in the cgroup this process sees as its own root (Docker's view; v1 or v2), else 0."""
    for path in CONTAINER_CGROUPS:
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return 0


class MemoryWatch:
    """A thread that samples the run's processes every `interval` s; over the limit, it stops the biggest, as the
    OOM killer would: a hog in one measurement costs that measurement, a hog in the notebook run its kernel."""

    def __init__(self, find, limit_mb: int, baseline_pid: int | None, interval: float = 0.2):
        self.find, self.baseline_pid, self.interval = find, baseline_pid, interval
        room = container_room_mb()
        if room is not None and room - ROOM_MARGIN_MB < limit_mb:  # Gradescope's box: the run's limit must bite
            limit_mb = max(1, int(room - ROOM_MARGIN_MB))  # before the container's OOM killer does
        self.report = MemoryReport(limit_mb)
        self._oom_before = container_oom_kills()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def stop(self, cgroup_peak_mb: float | None = None, cgroup_oom_kills: int = 0) -> MemoryReport:
        self._stop.set()
        self._thread.join(timeout=5)
        if cgroup_peak_mb is not None:
            self.report.peak_mb, self.report.source = cgroup_peak_mb, "cgroup"
        self.report.cgroup_oom_kills = cgroup_oom_kills
        self.report.container_oom_kills = max(0, container_oom_kills() - self._oom_before)
        return self.report

    def sizes(self) -> dict[int, float]:
        """pid -> MB each run process holds beyond what it shares with the zygote (at most its anonymous size)."""
        shared = anonymous_mb(self.baseline_pid) if self.baseline_pid else 0.0
        return {pid: max(0.0, anonymous_mb(pid) - shared) for pid in self.find() if pid != self.baseline_pid}

    def _watch(self) -> None:
        limit = self.report.limit_mb
        while not self._stop.wait(self.interval):
            sizes = self.sizes()
            used = sum(sizes.values())
            self.report.peak_mb = round(max(self.report.peak_mb, used), 1)
            if used > limit and sizes:
                biggest = max(sizes, key=lambda pid: sizes[pid])
                inner = innermost_pid(biggest)
                try:
                    os.kill(biggest, 9)
                    self.report.stopped[biggest] = round(sizes[biggest], 1)
                    self.report.stopped_inside.append(inner)
                except (ProcessLookupError, PermissionError):
                    pass
