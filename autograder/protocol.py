"""What crosses between the grader and the sandbox, in one place: plain JSON both ways, nothing unpickled.

The grader (grade.build_request, then sandbox.run_worker, which adds the limits) writes a Request on the run's request
descriptor. Inside (autograder/inside/, which cannot import this file and mirrors these shapes), the worker hands the
measurement process its MeasureRequest; that process answers Measurements on a descriptor only it holds, and the worker
answers a Report of the notebook run on another. supervisor/replies.parse_replies merges the two into the Reply that
grade.py and the cases read. Events are the kinds of autograder/inside/protocol.py, shared by both sides.
"""

from __future__ import annotations

from typing import TypedDict

from autograder.inside.protocol import (DEFINITION_SLOW, DEFINITION_STOPPED, KINDS, MEASUREMENT_EXITED, MEASUREMENT_FAILED,
                                        NOTEBOOK_RUN_STOPPED, STOP_REASONS, event, is_event)

__all__ = ["Cell", "MeasuredCell", "Definition", "CallJSON", "Policy", "MeasureRequest", "Request", "ProbeResult",
           "Measurements", "CellReport", "Report", "Reply", "Event", "KINDS", "STOP_REASONS", "MEASUREMENT_FAILED",
           "DEFINITION_STOPPED", "DEFINITION_SLOW", "MEASUREMENT_EXITED", "NOTEBOOK_RUN_STOPPED", "event", "is_event",
           "events_of"]


class Cell(TypedDict):
    id: str  # the notebook cell's id
    source: str  # as written, magics included: the notebook run executes it in a Jupyter kernel


class MeasuredCell(TypedDict):
    label: str  # how the student finds the cell (notebook.CodeCell.label)
    source: str  # the cell's imports, definitions or context statements, at their own line numbers
    kind: str  # "import", "definition" or "context" (runtime.KIND_TAGS tags the errors of the first and last)


class Definition(TypedDict):
    name: str
    bases: list[str]
    label: str  # the cell that defines it
    source: str


class CallJSON(TypedDict, total=False):
    name: str  # its result's key in Measurements.probes
    entry: str  # the probe function called
    args: dict  # its keyword arguments, plain JSON
    timeout: float  # wall-clock seconds: a backstop (limits.budgeted sets it from the CPU budget)
    seed: int  # Python's, numpy's and torch's generators are seeded with it before the definitions run
    reference_cpu_seconds: float | None  # the reference's own CPU time for the same call; None: not calibrated
    cpu_seconds: float  # the call's CPU budget (RLIMIT_CPU), set by limits.budgeted
    wall_is_limit: bool  # uncalibrated: the wall clock is the limit


class Policy(TypedDict):
    libraries: list[str]  # the assignment's MeasurementPolicy, as lists
    imports: list[str]
    forbidden: list[str]
    kernels: list[str]


class MeasureRequest(TypedDict, total=False):
    cells: list[MeasuredCell]
    definitions: dict[str, list[Definition]]  # graded name -> every definition of it, in notebook order
    sources: dict[str, str]  # cell label -> the cell as plain Python, to quote a failing line
    probes: str  # the assignment's probes.py, run in each call's child
    kind: str  # what is measured, in the student's words ("optimizers", "definitions")
    policy: Policy
    calls: list[CallJSON]
    deadline: float  # seconds for every call together (sandbox.py: half the run's wall limit)
    switched_off: list[str]  # tests only: layers switched off, to show that a layer is what stops an attack


class Request(TypedDict, total=False):
    cells: list[Cell]  # the notebook run, top to bottom; [] when the assignment does not run the notebook
    seed: int  # seeds the kernel's Python and numpy generators
    measure: MeasureRequest
    deadline: float  # the notebook run's seconds (sandbox.py adds it, and the next two)
    cell_timeout: float
    output_limit: int  # bytes of output kept per cell


class ProbeResult(TypedDict, total=False):
    ok: bool
    value: object  # the probe's answer, plain JSON (runtime.encode)
    error: str  # for the student: why there is no value
    cpu_seconds: float
    stopped: str  # "time", "cpu", "waited", "memory" (supervisor/replies._whose_fault), or the box's "killed" / "wall"
    needs_review: str  # "box" or "grader": not the student's fault; staff review it
    pids: list[int]  # the children stopped from outside, for supervisor/replies._whose_fault


class Event(TypedDict, total=False):
    kind: str  # one of KINDS; its one field is autograder/inside/protocol.py's FIELDS[kind]
    error: str
    cell: str
    status: int
    why: str


class Measurements(TypedDict):
    probes: dict[str, ProbeResult]  # call name -> its result
    definition_errors: list[list[str]]  # [cell label, error text tagged with runtime.KIND_TAGS]
    events: list[Event]
    layers: list[str]  # the policy layers in force, or "missing: ..."


class CellReport(TypedDict, total=False):
    id: str
    status: str  # "ok", "error", "timeout", "died" or "skipped"
    error: str  # the student's own exception text (never read as anything but text to show)
    seconds: float


class Report(TypedDict, total=False):
    cells: list[CellReport]
    events: list[Event]
    seconds: dict[str, float]  # phase -> seconds, and the run's CPU time
    output_truncated: bool


class Reply(Report, total=False):
    probes: dict[str, ProbeResult]
    definition_errors: list[list[str]]
    layers: list[str]


def events_of(*sources: object) -> list[Event]:
    """The well-formed events of each source (a list, else nothing), in order; anything else is dropped."""
    return [item for source in sources if isinstance(source, list) for item in source if is_event(item)]
