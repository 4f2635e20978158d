"""A submission's calls and the reference's answers to them, with what each cost in CPU time, before the sandbox runs.

Made in a forked child that exits: the memory the assignment's code needs to make the calls (Part 1 draws its hidden
problems with torch) and the reference's (Part 2 imports transformers and builds BERTs) is given back before the
student's processes start, so neither adds up with them in Gradescope's 768 MiB box.
Each call's CPU time calibrates that call's budget in the sandbox (sandbox.Limits: cpu_factor, cpu_floor_seconds).
A call whose reference fails is left out; its case recomputes it in the grader and reports the failure.
If the child cannot answer (it died, or fork is refused), the work is done here instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Any, Callable, Mapping, Sequence

from autograder.assignment import Call

__all__ = ["prepared_calls", "reference_answers", "LazyReference"]

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


def prepared_calls(make_calls: Callable[[], list[Call]], reference: Callable) -> tuple[list[Call], dict, dict]:
    """(calls, {call name: answer}, {call name: CPU seconds}): `make_calls()` and the reference's answers to those
    calls, both in one child that exits (the imports they need are not the grader's to keep)."""
    def work() -> dict:
        calls = make_calls()
        return {"calls": [call.to_json() for call in calls], "computed": _compute(reference, _missing(reference, calls))}

    done = _in_child(work)
    if not isinstance(done, dict):  # the child could not answer: the same work, here
        calls = make_calls()
        return (calls, *reference_answers(reference, calls))
    calls = [Call(**fields) for fields in done["calls"]]
    _keep(reference, calls, done["computed"])
    return (calls, *_known(reference, calls))


def reference_answers(reference: Callable, calls: list) -> tuple[dict, dict]:
    """({call name: answer}, {call name: CPU seconds}) for the calls the reference answers."""
    missing = _missing(reference, calls)
    if missing:
        computed = _in_child(lambda: _compute(reference, missing))
        _keep(reference, missing, computed if isinstance(computed, dict) else _compute(reference, missing))
    return _known(reference, calls)


def _keys(reference: Callable, calls: list) -> dict[str, tuple[str, str]]:
    module = getattr(reference, "module", None) or reference.__module__
    return {call.name: (module, call.key()) for call in calls}


def _missing(reference: Callable, calls: list) -> list:
    keys = _keys(reference, calls)
    return [call for call in calls if keys[call.name] not in _answers]


def _keep(reference: Callable, calls: list, computed: Mapping[str, Sequence]) -> None:
    """Store the computed answers ((answer, seconds), or [answer, seconds] as they came back from a child)."""
    keys = _keys(reference, calls)
    for call in calls:
        if call.name in computed:
            answer, seconds = computed[call.name]
            _store(keys[call.name], answer, seconds)


def _known(reference: Callable, calls: list) -> tuple[dict, dict]:
    keys = _keys(reference, calls)
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


def _in_child(work: Callable[[], object]) -> Any:
    """work()'s result, computed in a forked child and sent back as JSON; None when the child could not answer."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        code = 70
        try:
            os.close(read_end)
            data = json.dumps(work()).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view):]
            code = 0
        finally:
            os._exit(code)
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
        return json.loads(b"".join(chunks)) if os.waitstatus_to_exitcode(status) == 0 else None
    except ValueError:
        return None
