"""Grade Part 1 optimizer classes in this process, without a sandbox: the probes measure classes given as source
text (as the measurement process would, guard aside), and the assignment's cases judge the observations.
For fast tests of the cases and the replay; the sandboxed path is tests/test_corpus.py's."""

from __future__ import annotations

import types

import torch

from autograder.assignment import Seeds, load_assignment
from autograder.assignments.hw4_part1 import make_calls, probes, reference
from autograder.plugin import Submission, run_cases

ASSIGNMENT = load_assignment("hw4_part1")


def namespace(source: str) -> dict:
    scope = {"__name__": "__main__", "torch": torch, "nn": torch.nn}
    exec(compile(source, "<notebook>", "exec"), scope)
    return scope


def observe(scope: dict, digest: str = "in-process", only: set[str] | None = None) -> Submission:
    """Every call of the assignment measured on the classes in `scope` (a missing class: that call's error)."""
    seeds = Seeds("test secret", digest)
    calls = make_calls(None, seeds)

    def load(name, base=None, not_base=None):
        if name == "LinearModel" and base == "Module":
            return scope.get("TorchLinearModel", scope.get("LinearModel"))
        if name not in scope:
            raise KeyError(f"`{name}` is not defined in your notebook")
        return scope[name]

    probes._autograder = types.SimpleNamespace(load=load, describe=lambda e: f"{type(e).__name__}: {e}")
    observed = {}
    for call in calls:
        if only is not None and call.name not in only:
            continue
        torch.manual_seed(call.seed)
        try:
            observed[call.name] = {"ok": True, "value": getattr(probes, call.entry)(call.args)}
        except Exception as error:
            observed[call.name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return Submission(None, {"probes": observed, "cells": []}, "", {c.name: c for c in calls}, seeds,
                      reference.expected)


def grade(scope: dict, **kwargs) -> dict[str, object]:
    """number -> CaseResult."""
    cases, _ = run_cases(ASSIGNMENT.cases_path, observe(scope, **kwargs), ASSIGNMENT.rubric())
    return {case.number: case for case in cases}
