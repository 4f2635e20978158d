"""A Part 2 grading without sandbox or kernel, for fast tests: each probe call runs as in the measurement process
(a namespace holding the notebook's imports and definitions, built afresh per call; probes.py's text in a private
namespace with an `_autograder` of load / describe / Missing / namespace), but in this process."""

from __future__ import annotations

import json
import types

import torch

from autograder.assignment import Call, Seeds
from autograder.assignments.hw4_part2 import ASSIGNMENT, make_calls, reference
from autograder.notebook import Notebook, python_source
from autograder.plugin import CaseResult, Submission, run_cases


class Missing(Exception):
    pass


def student_namespace(notebook: Notebook) -> dict:
    """The notebook's imports (each on its own: a failing one costs its names) and definitions, as they ran."""
    namespace: dict = {"__name__": "__main__"}
    for cell in notebook.definitions_only():
        try:
            exec(compile(python_source(cell["source"]), f"<{cell['id']}>", "exec"), namespace)
        except Exception:
            pass
    return namespace


def _loader(notebook: Notebook, namespace: dict):
    def load(name, base=None, not_base=None):
        chosen = notebook.last(name)
        if chosen is None:
            raise Missing(f"`{name}` is not defined in your notebook")
        copy = dict(namespace)
        exec(compile("\n" * (chosen.line - 1) + chosen.source, f"<{chosen.cell.label}>", "exec"), copy)
        return copy[name]
    return load


def measure(notebook: Notebook, call: Call) -> dict:
    """One call's reply entry, as the measurement process would give it."""
    namespace = student_namespace(notebook)
    runtime = types.SimpleNamespace(load=_loader(notebook, namespace), Missing=Missing, namespace=namespace,
                                    describe=lambda error: f"{type(error).__name__}: {error}"[:1500])
    probes: dict = {"_autograder": runtime, "__name__": "probes"}
    exec(compile(ASSIGNMENT.probes_source, "<probes>", "exec"), probes)
    try:
        return {"ok": True, "value": json.loads(json.dumps(probes[call.entry](call.args)))}
    except Missing as error:
        return {"ok": False, "error": str(error), "missing": True}
    except Exception as error:
        return {"ok": False, "error": runtime.describe(error)}


def grade_in_process(notebook: Notebook, seed_name: str = "corpus") -> dict[str, CaseResult]:
    """Case number -> result: the same calls, reference and cases as a grading."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the sandbox: on a busy 2-core box torch's default threads cost 10x
    try:
        seeds = Seeds("secret", seed_name)
        calls = make_calls(notebook, seeds)
        reply = {"cells": [], "events": [], "probes": {c.name: measure(notebook, c) for c in calls}}
        submission = Submission(notebook, reply, "", {c.name: c for c in calls}, seeds, reference.expected)
        return {case.number: case for case in run_cases(ASSIGNMENT.cases_path, submission)[0]}
    finally:
        torch.set_num_threads(previous)


def lora_functions(notebook: Notebook) -> tuple:
    """(MyLoraConfig, get_lora_model) as the measurement process loads them: get_lora_model's globals hold the
    notebook's imports and definitions."""
    namespace = student_namespace(notebook)
    load = _loader(notebook, namespace)
    return load("MyLoraConfig"), load("get_lora_model")
