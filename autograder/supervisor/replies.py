"""What a run gives back: its two JSON replies read off their pipes (capped), merged into one protocol.Reply, with
what the host saw of the run (WorkerRun)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import cast

from autograder import protocol
from autograder.supervisor.memory import MemoryReport

__all__ = ["WorkerRun", "REPLY_LIMIT", "read_capped", "parse_replies"]

REPLY_LIMIT = 32_000_000


@dataclass
class WorkerRun:
    reply: protocol.Reply | None
    returncode: int | None = None
    timed_out: bool = False
    memory_exceeded: bool = False
    peak_memory_mb: float | None = None
    memory: MemoryReport | None = None  # how memory was measured, what was stopped and by whom
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    problem: str = ""  # why there is no reply, for the student
    review: str = ""  # "grader" when there is no reply through no doing of the student's (the sandbox did not start)
    mode: str = ""  # "namespaces" or "fallback"


def parse_replies(replies: dict[str, list[bytes]], run: WorkerRun) -> tuple[protocol.Reply | None, str]:
    """The reply (protocol.Reply): the measurements decide; the notebook run (after them) only adds its report. A
    run that ran out of time or memory in the notebook, once the measurement process had answered, keeps its
    measurements. Only well-formed events of known kinds are kept (protocol.events_of)."""
    decoded = {}
    for name, chunks in replies.items():
        raw = b"".join(chunks)
        try:
            decoded[name] = json.loads(raw) if raw and len(raw) < REPLY_LIMIT else None
        except ValueError:
            decoded[name] = None
    measured, report = decoded["measurements"], decoded["report"]
    if not isinstance(measured, dict):
        if run.timed_out:
            return None, "the notebook did not finish within the time limit"
        if run.memory_exceeded:
            return None, "the notebook ran out of memory"
        return None, f"the grading process stopped without a result (exit status {run.returncode})"
    events = protocol.events_of(measured.get("events"))
    if not isinstance(report, dict):
        why = "memory" if run.memory_exceeded else "time" if run.timed_out else "stopped"
        stopped = cast(protocol.Event, protocol.event(protocol.NOTEBOOK_RUN_STOPPED, why))
        report, events = {"cells": []}, events + [stopped]
    reply = cast(protocol.Reply, {**report, "probes": _whose_fault(measured.get("probes", {}), run.memory),
             "definition_errors": measured.get("definition_errors", []), "layers": measured.get("layers", []),
             "events": protocol.events_of(report.get("events")) + events})
    return reply, ""


def _whose_fault(probes: dict, memory: MemoryReport | None) -> dict:
    """A call stopped twice from outside asks for review (the box's fault) unless this run's own limit stopped it:
    a process the watchdog killed, or an OOM kill in the run's own cgroup (which holds only the run)."""
    for result in probes.values():
        if not isinstance(result, dict) or result.get("needs_review") != "box" or memory is None:
            continue
        if memory.cgroup_oom_kills or set(result.get("pids", [])) & {*memory.stopped, *memory.stopped_inside}:
            result.pop("needs_review")
            result["stopped"] = "memory"
            result["error"] = f"your code used more memory than allowed ({memory.limit_mb} MB) and was stopped, twice"
    return probes


def read_capped(fd: int, chunks: list[bytes]) -> None:
    size = 0
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            if size < REPLY_LIMIT:
                chunks.append(chunk)
            size += len(chunk)
