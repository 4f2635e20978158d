"""The grader-sandbox protocol (autograder/protocol.py, autograder/inside/protocol.py): the summary reads event kinds,
never sentences; unknown or malformed events are dropped; student-written text cannot become an event. Unit, in
process: replies are built by hand and parsed by supervisor.replies.parse_replies as the grader parses a run's."""

import ast
import json
import types
from pathlib import Path

import pytest

from autograder import protocol
from autograder.assignment import load_assignment
from autograder.grade import _staff_detail, _summary
from autograder.notebook import load_notebook
from autograder.supervisor.replies import WorkerRun, parse_replies

ROOT = Path(__file__).resolve().parent.parent
INSIDE = ROOT / "autograder" / "inside"
PART1 = load_assignment("hw4_part1")
NOTEBOOK = load_notebook(ROOT / "tests" / "submissions" / "hw4_part1" / "course_sgd_numpy_rng.ipynb")
LABEL = NOTEBOOK.cells[2].label
STOPPED_SENTENCE = "stopped the grading process (`os._exit`, say)"


def summary(events) -> str:
    reply = {"cells": [{"id": c.id, "status": "ok"} for c in NOTEBOOK.cells], "events": events,
             "definition_errors": []}
    text, _ = _summary(NOTEBOOK, PART1, types.SimpleNamespace(reply=reply, problem="", memory_exceeded=False), [])
    return text


def parsed(measurements, report, **run) -> dict:
    replies = {"measurements": [json.dumps(measurements).encode()] if measurements is not None else [],
               "report": [json.dumps(report).encode()] if report is not None else []}
    reply, problem = parse_replies(replies, WorkerRun(None, **run))
    assert reply is not None, problem
    return reply


MEASURED = {"probes": {}, "definition_errors": [], "layers": ["seccomp"]}


@pytest.mark.parametrize("why, sentence", [
    ("memory", "The notebook run ran out of memory and was stopped."),
    ("time", "The notebook run did not finish within the time limit and was stopped."),
    ("stopped", "The notebook run stopped and was stopped.")])
def test_a_stopped_notebook_run_is_told_by_its_reason(why, sentence):
    event = protocol.event(protocol.NOTEBOOK_RUN_STOPPED, why)
    assert event == {"kind": "notebook_run_stopped", "why": why}
    text = summary([event])
    assert sentence in text and "measured your functions and classes on their own" in text
    assert _staff_detail([event]) == "the notebook run " + sentence.removeprefix("The notebook run ").removesuffix(
        " and was stopped.")


def test_the_grader_writes_the_stopped_runs_event_from_its_own_observation():
    for run, why in (({"memory_exceeded": True}, "memory"), ({"timed_out": True}, "time"), ({}, "stopped")):
        reply = parsed({**MEASURED, "events": []}, None, **run)
        assert reply["events"] == [{"kind": "notebook_run_stopped", "why": why}] and reply["cells"] == []
    assert parsed({**MEASURED, "events": []}, {"cells": [], "events": []})["events"] == []  # a run that finished


def test_a_definition_that_stopped_its_process_names_the_notebooks_own_cell():
    event = protocol.event(protocol.DEFINITION_STOPPED, LABEL)
    assert f"A statement in {LABEL} {STOPPED_SENTENCE}" in summary([event])
    assert _staff_detail([event]) == ""
    # A label that is not one of this notebook's cells is not shown: the summary only names what the student wrote.
    assert STOPPED_SENTENCE not in summary([protocol.event(protocol.DEFINITION_STOPPED, "**full marks**")])


def test_a_top_level_run_left_out_for_its_cpu_is_told_by_its_cell():
    event = protocol.event(protocol.DEFINITION_SLOW, LABEL)
    assert f"The top-level statements of {LABEL} took more than 30 s of computing" in summary([event])
    assert "took more than" not in summary([protocol.event(protocol.DEFINITION_SLOW, "**full marks**")])


def test_the_measurement_processes_own_failures_are_for_the_staff_only():
    events = [protocol.event(protocol.MEASUREMENT_FAILED, "KeyError('calls')"),
              protocol.event(protocol.MEASUREMENT_EXITED, 3)]
    assert summary(events) == summary([])
    assert _staff_detail(events) == ("the measurement process failed: KeyError('calls'); "
                                     "the measurement process exited with status 3")


def test_an_unknown_or_malformed_event_is_dropped_and_never_shown():
    junk = [{"kind": "grade_override", "score": 40}, {"kind": "notebook_run_stopped", "why": "you passed"},
            {"kind": "definition_stopped", "cell": ["code cell 1"]}, {"kind": "measurement_exited", "status": "3"},
            "the notebook run ran out of memory", f"definition stopped its process: {LABEL}", None, 7]
    assert not any(protocol.is_event(item) for item in junk)
    assert summary(junk) == summary([])
    assert _staff_detail(protocol.events_of(junk)) == ""
    reply = parsed({**MEASURED, "events": junk}, {"cells": [], "events": junk})
    assert reply["events"] == []
    assert parsed({**MEASURED, "events": "not a list"}, {"cells": [], "events": {"kind": "x"}})["events"] == []


def test_student_text_in_a_cells_error_never_becomes_an_event():
    """The report's cells carry the student's exception text; events come only from the processes' own structures."""
    forged = [f"definition stopped its process: {LABEL}", json.dumps({"kind": "definition_stopped", "cell": LABEL}),
              "the notebook run ran out of memory"]
    report = {"cells": [{"id": NOTEBOOK.cells[0].id, "status": "error", "error": f"RuntimeError: {text}"}
                        for text in forged], "events": []}
    reply = parsed({**MEASURED, "events": [], "definition_errors": [[LABEL, forged[1]]]}, report)
    assert reply["events"] == []
    text, _ = _summary(NOTEBOOK, PART1, types.SimpleNamespace(reply=reply, problem="", memory_exceeded=False), [])
    assert STOPPED_SENTENCE not in text and "and was stopped" not in text


def test_every_event_the_sandbox_side_writes_is_built_by_protocol_event():
    """Mechanism: in autograder/inside/, whatever is appended to a reply's events is protocol.event(KIND, value)."""
    appended = []
    for path in sorted(INSIDE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append" \
                    and isinstance(node.func.value, ast.Subscript) and ast.unparse(node.func.value.slice) == "'events'":
                appended.append((path.name, node.args[0]))
    assert {name for name, _ in appended} == {"measure.py", "worker.py"}
    for name, argument in appended:
        assert ast.unparse(argument.func) == "protocol.event", (name, ast.unparse(argument))
        kind = argument.args[0]
        assert isinstance(kind, ast.Attribute) and getattr(protocol, kind.attr) in protocol.KINDS, name


def test_an_event_outside_the_contract_cannot_be_built():
    with pytest.raises(ValueError, match="grade_override"):
        protocol.event("grade_override", 40)
    with pytest.raises(ValueError, match="notebook_run_stopped"):
        protocol.event(protocol.NOTEBOOK_RUN_STOPPED, "out of patience")
