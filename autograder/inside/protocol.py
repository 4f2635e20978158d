"""The event kinds a run reports, shared by both sides: the sandbox's processes import this file as `protocol`
(standard library only, nothing trusted), the grader as autograder.inside.protocol. The request and reply types
are in autograder/protocol.py, which this folder cannot import; the shapes below are the events' whole contract.

An event is a JSON object that the measurement process, the worker or the grader's supervisor/replies.py builds itself
from its own structures: {"kind": one of KINDS, plus that kind's fields}. Never text a student's code wrote: the grader
decides what to tell the student by the kind and the fields' values, never by reading a sentence.
"""

MEASUREMENT_FAILED = "measurement_failed"  # {"error": repr of the exception}: a bug in measure.py (staff only)
DEFINITION_STOPPED = "definition_stopped"  # {"cell": label}: that definition cell killed its process; left out
DEFINITION_SLOW = "definition_slow"  # {"cell": label}: that cell's statements used up the CPU allowed; left out
MEASUREMENT_EXITED = "measurement_exited"  # {"status": int}: the measurement process's nonzero exit (staff only)
NOTEBOOK_RUN_STOPPED = "notebook_run_stopped"  # {"why": one of STOP_REASONS}: by the grader (supervisor/replies.py)

FIELDS = {MEASUREMENT_FAILED: ("error", str), DEFINITION_STOPPED: ("cell", str), DEFINITION_SLOW: ("cell", str),
          MEASUREMENT_EXITED: ("status", int), NOTEBOOK_RUN_STOPPED: ("why", str)}
KINDS = frozenset(FIELDS)
STOP_REASONS = ("memory", "time", "stopped")  # the notebook run ran out of memory, out of time, or stopped


def event(kind: str, value) -> dict:
    """The event of `kind` carrying its one field; a ValueError for a kind or value outside the contract."""
    if not is_event({"kind": kind, FIELDS.get(kind, ("", None))[0]: value}):
        raise ValueError(f"not a {kind!r} event: {value!r}")
    return {"kind": kind, FIELDS[kind][0]: value}


def is_event(item) -> bool:
    """An object of a known kind whose field has its type (and, for a stopped run, a known reason)."""
    if type(item) is not dict or item.get("kind") not in KINDS:
        return False
    name, kind = FIELDS[item["kind"]]
    value = item.get(name)
    if type(value) is not kind:
        return False
    return item["kind"] != NOTEBOOK_RUN_STOPPED or value in STOP_REASONS
