"""A Part 2 grading without the sandbox, for fast tests: each probe call runs through the measurement process's
own runtime (autograder/inside/runtime.py: the notebook's imports and definitions built afresh per call, probes.py
in a private namespace with `_autograder`), but in this process and without the guard."""

from __future__ import annotations

import json
import torch

from autograder.assignment import Call, Seeds
from autograder.assignments.hw4_part2 import ASSIGNMENT, make_calls, reference
from autograder.inside import runtime
from autograder.notebook import Notebook
from autograder.plugin import CaseResult, Submission, run_cases


def student_namespace(notebook: Notebook) -> dict:
    """The notebook's imports (each on its own: a failing one costs its names) and definitions, as they ran."""
    return _runtime(notebook).namespace


def _runtime(notebook: Notebook) -> runtime.Runtime:
    definitions = {name: [d.to_json() for d in group] for name, group in notebook.definitions.items()}
    return runtime.Runtime(notebook.definition_cells(), definitions, notebook.sources())


def measure(notebook: Notebook, call: Call) -> dict:
    """One call's reply entry, as the measurement process gives it: the sandbox's own runtime, in this process."""
    reply = _runtime(notebook).call(ASSIGNMENT.probes_source, call.entry, call.args)
    return json.loads(runtime.encode(reply))


def grade_in_process(notebook: Notebook, seed_name: str = "corpus") -> dict[str, CaseResult]:
    """Case number -> result: the same calls, reference and cases as a grading."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the sandbox: on a busy 2-core box torch's default threads cost 10x
    try:
        seeds = Seeds("secret", seed_name)
        calls = make_calls(notebook, seeds)
        reply = {"cells": [], "events": [], "probes": {c.name: measure(notebook, c) for c in calls}}
        submission = Submission(notebook, reply, "", {c.name: c for c in calls}, seeds, reference.expected)
        return {case.number: case for case in run_cases(ASSIGNMENT.cases_path, submission, ASSIGNMENT.rubric())[0]}
    finally:
        torch.set_num_threads(previous)


def lora_functions(notebook: Notebook) -> tuple:
    """(MyLoraConfig, get_lora_model) as the measurement process loads them: get_lora_model's globals hold the
    notebook's imports and definitions."""
    runtime = _runtime(notebook)
    return runtime.load("MyLoraConfig"), runtime.load("get_lora_model")
