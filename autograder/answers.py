"""The reference's answers to a submission's calls, and what each cost in CPU time, before the sandbox runs.

Computed in a forked child that exits: the memory the reference needs (Part 2 imports transformers and builds
BERTs) is given back before the student's processes start, so the two never add up in Gradescope's 768 MiB box.
Each call's CPU time calibrates that call's budget in the sandbox (sandbox.Limits: cpu_factor, cpu_floor_seconds).
A call whose reference fails is left out; its case recomputes it in the grader and reports the failure.
If the child cannot answer (it died, or fork is refused), the answers are computed here instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Callable

__all__ = ["reference_answers", "LazyReference"]

CHILD_SECONDS = 600

_answers: dict[tuple[str, str], str] = {}  # (module, call key) -> JSON; a batch computes each distinct call once
_costs: dict[tuple[str, str], float] = {}
STORE_SIZE = 256


class LazyReference:
    """A reference module's `expected(call)`, imported at the first call: in the answers' child, not the grader
    (Part 2's imports transformers), unless a case must recompute an answer after the run."""

    def __init__(self, module: str):
        self.module = module

    def __call__(self, call) -> dict:
        import importlib
        return importlib.import_module(self.module).expected(call)


def reference_answers(reference: Callable, calls: list) -> tuple[dict, dict]:
    """({call name: answer}, {call name: CPU seconds}) for the calls the reference answers."""
    module = getattr(reference, "module", None) or reference.__module__
    keys = {call.name: (module, call.key()) for call in calls}
    missing = [call for call in calls if keys[call.name] not in _answers]
    if missing:
        computed = _in_child(reference, missing)
        if computed is None:
            computed = _compute(reference, missing)
        for call in missing:
            if call.name in computed:
                _store(keys[call.name], *computed[call.name])
    answers, costs = {}, {}
    for call in calls:
        if keys[call.name] in _answers:
            answers[call.name] = json.loads(_answers[keys[call.name]])  # a fresh copy: cases may not share one
            costs[call.name] = _costs[keys[call.name]]
    return answers, costs


def _store(key: tuple[str, str], answer: str, seconds: float) -> None:
    _answers[key], _costs[key] = answer, seconds
    while len(_answers) > STORE_SIZE:  # most calls are one submission's own: keep the store small
        oldest = next(iter(_answers))
        del _answers[oldest], _costs[oldest]


def _compute(reference: Callable, calls: list) -> dict[str, tuple[str, float]]:
    done = {}
    for call in calls:
        started = time.process_time()
        try:
            answer = json.dumps(reference(call))
        except Exception:
            continue
        done[call.name] = (answer, round(time.process_time() - started, 3))
    return done


def _in_child(reference: Callable, calls: list) -> dict[str, tuple[str, float]] | None:
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        try:
            os.close(read_end)
            data = json.dumps(_compute(reference, calls)).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view):]
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, end = [], time.monotonic() + CHILD_SECONDS
    while (left := end - time.monotonic()) > 0 and select.select([read_end], [], [], left)[0]:
        chunk = os.read(read_end, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    if time.monotonic() >= end:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    try:
        done = json.loads(b"".join(chunks)) if os.waitstatus_to_exitcode(status) == 0 else None
    except ValueError:
        return None
    return {name: (answer, seconds) for name, (answer, seconds) in done.items()} if isinstance(done, dict) else None
