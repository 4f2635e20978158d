"""One submission, one straight line: notebook -> sandbox -> observations -> graded cases -> results.json."""

from __future__ import annotations

import dataclasses
import hashlib
import time
import traceback
from pathlib import Path

from autograder import protocol
from autograder.answers import LazyReference, prepared_calls
from autograder.config import GraderConfig
from autograder.assignment import ASSIGNMENTS, Assignment, Call, Seeds, assignment_names, detect_assignment, load_assignment
from autograder.errors import SubmissionError
from autograder.limits import Limits
from autograder.notebook import Notebook, find_notebooks, load_notebook
from autograder.plugin import Submission, import_cases_soon, run_cases
from autograder.results import build_results, failure_results, write_results
from autograder.sandbox import run_worker
from autograder.supervisor.memory import room_to_overlap
from autograder.supervisor.zygotes import close_warm_starts, warm_start

__all__ = ["grade", "build_request", "measure"]

ROOT = Path(__file__).resolve().parent.parent
PROTECTED = ("tests",)  # besides each assignment's reference paths and the assignments folder itself
STOPPED_RUN = {"memory": "ran out of memory", "time": "did not finish within the time limit", "stopped": "stopped"}


def grade(submission: Path, results_path: Path, assignment_name: str | None = None, log=print,
          limits: Limits | None = None, keep_warm: bool = True, config: GraderConfig | None = None) -> dict:
    """Grade one submission (a notebook or a folder) and write results.json, whatever happens.

    `config`: the secret, rubric and sandbox settings (an entry point reads them from the environment with
    config.from_environment; GraderConfig(): no override, the assignment's own secret file and rubric).
    `limits` replaces the assignment's sandbox limits (tests use short timeouts). `keep_warm=False` (one
    submission, as on Gradescope) stops the sandbox's warm start once the run is over, so that its memory is free
    while the cases run.
    """
    config = config or GraderConfig()
    started = time.monotonic()
    results = None
    try:
        notebook, notes = choose_notebook(submission, assignment_name)
        assignment = load_assignment(assignment_name) if assignment_name else detect_assignment(notebook)[0]
        if limits is not None:
            assignment = dataclasses.replace(assignment, limits=limits)
        wrong = _other_assignment(notebook, assignment)
        if wrong and not any(n in notebook.definitions for n in assignment.graded_names):
            # Another assignment's notebook, none of this one's names: running it (Part 2 trains BERT) buys nothing
            raise SubmissionError(wrong[0], f"graded as {assignment.name}, defines none of its names")
        log(f"grading {notebook.path} as {assignment.name}")
        results = grade_notebook(notebook, assignment, notes, started, keep_warm, config)
    except SubmissionError as error:
        log(f"submission error: {error.staff_detail}")
        assignment = load_assignment(assignment_name or assignment_names()[0])
        results = _grade_without_run(assignment, error.student_message, started, config)
    except Exception:  # a grader bug must still leave a valid results.json
        detail = traceback.format_exc()
        log(detail)
        results = failure_results("Your course staff have been told; please let them know as well.", detail,
                                  time.monotonic() - started)
    finally:
        if results is None:  # KeyboardInterrupt or SystemExit while grading
            results = failure_results("Grading was interrupted.", "interrupted", time.monotonic() - started)
        write_results(results, results_path)
    return results


def choose_notebook(submission: Path, assignment_name: str | None) -> tuple[Notebook, list[str]]:
    """The notebook to grade; with several, the one implementing most graded names (then the newest)."""
    candidates = find_notebooks(submission)
    links = sorted(p.name for p in submission.rglob("*.ipynb") if p.is_symlink()) if submission.is_dir() else []
    ignored = [f"Links are not followed: {', '.join(f'`{n}`' for n in links)} was ignored."] if links else []
    if len(candidates) == 1:
        return load_notebook(candidates[0]), ignored
    loaded, problems = [], []
    for path in candidates:
        try:
            loaded.append(load_notebook(path))
        except SubmissionError as error:
            problems.append(error.student_message)
    if not loaded:
        raise SubmissionError(problems[0])

    names = load_assignment(assignment_name).graded_names if assignment_name else \
        sorted({n for a in assignment_names() for n in load_assignment(a).graded_names})

    def score(notebook: Notebook) -> tuple[int, float]:
        written = sum(1 for n in names if (d := notebook.last(n)) is not None and not d.is_stub)
        return written, notebook.path.stat().st_mtime

    chosen = max(loaded, key=score)
    others = ", ".join(f"`{n.path.name}`" for n in loaded if n is not chosen)
    return chosen, ignored + [f"Your submission holds {len(candidates)} notebooks; graded `{chosen.path.name}`, the "
                              f"one that implements the most graded functions and classes (not graded: {others})."]


def grade_notebook(notebook: Notebook, assignment: Assignment, notes: list[str], started: float,
                   keep_warm: bool = True, config: GraderConfig | None = None) -> dict:
    config = config or GraderConfig()
    notes = notes + _other_assignment(notebook, assignment)
    secret, is_default = assignment.secret(config)
    seeds = Seeds(secret, hashlib.sha256(notebook.path.read_bytes()).hexdigest())
    protected = _protected(assignment)
    reference = LazyReference(f"autograder.assignments.{assignment.name}.reference")
    # Before the sandbox, in a child that exits: what making the calls and the reference's answers import (torch,
    # transformers) is not held by the grader while the student's processes run, and each call's CPU cost
    # calibrates that call's CPU budget in the sandbox. Where memory is plentiful the zygote boots beside that
    # child and the cases' imports load while the sandbox runs; in Gradescope's box each waits its turn.
    overlap = room_to_overlap()
    if overlap:
        warm_start(assignment.preload, config=config)
    calls, expected, costs = prepared_calls(lambda: assignment.make_calls(notebook, seeds), reference)
    warm_start(assignment.preload, config=config)
    loading = import_cases_soon(assignment.cases_path) if overlap else None  # after the fork above
    request = build_request(notebook, assignment, calls, run_seed=seeds("notebook run"), reference_cpu=costs)
    run = run_worker(request, assignment.limits, protected, assignment.preload, config)
    if loading is not None:
        loading.join()
    if not keep_warm:
        close_warm_starts()
    reply = dict(run.reply) if run.reply is not None else None
    submission = Submission(notebook, reply, run.problem, {c.name: c for c in calls}, seeds, reference,
                            _expected=expected, review=run.review)
    cases, pytest_log = run_cases(assignment.cases_path, submission, assignment.rubric(config))
    staff = run.notes + (["using the development secret: hidden seeds are predictable"] if is_default else [])
    staff.append("start-up: " + ("overlapped with the sandbox (memory to spare)" if overlap else
                                 "one step at a time (the container's memory is tight)"))
    staff += [f"GRADER ERROR in test {case.number}: needs review (traceback below)" for case in cases
              if case.grader_error]
    staff.append(f"worker: {run.mode} sandbox, exit {run.returncode}, {run.wall_seconds:.1f} s, peak memory "
                 f"{run.peak_memory_mb} MB"
                 + (f", phases {run.reply.get('seconds')}" if run.reply else ""))
    if run.reply is not None:  # written by the measurement process before any student code existed
        staff.append("measurement policy layers: " + (", ".join(map(str, run.reply.get("layers", []))) or "none"))
    summary, quiet = _summary(notebook, assignment, run, notes)
    staff += quiet
    status = "ok" if run.reply is not None else "timeout" if run.timed_out else "crashed"
    return build_results(cases, summary, time.monotonic() - started, staff_log="\n".join(staff), status=status,
                         detail=run.problem or _staff_detail(protocol.events_of((run.reply or {}).get("events"))),
                         notebook=notebook.path.name)


def build_request(notebook: Notebook, assignment: Assignment, calls: list[Call], probes_source: str | None = None,
                  run_seed: int = 0, reference_cpu: dict[str, float] | None = None) -> dict:
    """What the sandbox is asked to do: the measurements (definitions, probes, calls) and the notebook run."""
    # Without run_all_cells the notebook is not run at all: only its imports and definitions are measured.
    cells = [{"id": c.id, "source": c.source} for c in notebook.cells] if assignment.run_all_cells else []
    definitions = {name: [d.to_json() for d in group] for name, group in notebook.definitions.items()}
    return {
        "cells": cells, "seed": run_seed,
        "measure": {"cells": notebook.definition_cells(assignment.context), "definitions": definitions,
                    "sources": notebook.sources(),
                    "probes": probes_source or assignment.probes_source, "kind": assignment.measured,
                    "policy": assignment.policy.to_json(),
                    "calls": [{**c.to_json(), "reference_cpu_seconds": (reference_cpu or {}).get(c.name)}
                              for c in calls]},
    }


def measure(notebook: Notebook, assignment: Assignment, calls: list[Call], probes_source: str | None = None,
            limits: Limits | None = None, config: GraderConfig | None = None):
    """Run `calls` on the notebook in the sandbox (the same path as grading): a WorkerRun."""
    request = build_request(notebook, assignment, calls, probes_source)
    return run_worker(request, limits or assignment.limits, _protected(assignment), assignment.preload, config)


def _protected(assignment: Assignment) -> list[Path]:
    return [ROOT / p for p in assignment.reference_paths + PROTECTED] + [ASSIGNMENTS]


def _other_assignment(notebook: Notebook, assignment: Assignment) -> list[str]:
    """A sentence when the notebook implements another assignment's names better than this one's."""
    best, count = detect_assignment(notebook)
    if best.name == assignment.name or count <= sum(n in notebook.definitions for n in assignment.graded_names):
        return []
    names = ", ".join(f"`{n}`" for n in best.graded_names if n in notebook.definitions)
    return [f"**This notebook looks like {best.title}** (it defines {names}), but it was graded as "
            f"{assignment.title}. Check that you submitted it to the right assignment."]


def _grade_without_run(assignment: Assignment, message: str, started: float, config: GraderConfig) -> dict:
    """Every case is still listed, each scoring 0 with the reason, so students see what was expected."""
    submission = Submission(None, None, message, {}, None, None)
    cases, _ = run_cases(assignment.cases_path, submission, assignment.rubric(config))
    return build_results(cases, f"**Your submission could not be graded.** {message}", time.monotonic() - started,
                         status="invalid", detail=message)


def _left_out(error: str, assignment: Assignment) -> str:
    """The package the image leaves out on purpose that `error` is about, or ""."""
    for module in assignment.absent_modules:
        if f"No module named '{module}" in error:
            return module
    return ""


def _summary(notebook: Notebook, assignment: Assignment, run, notes: list[str]) -> tuple[str, list[str]]:
    """The student's summary, and staff-only lines: what the student's notebook did not cause or need not fix."""
    lines = [f"Graded `{notebook.path.name}` as **{assignment.title}**."] + notes
    quiet: list[str] = []
    lines += [f"- {error}" for error in notebook.syntax_errors]
    if run.reply is None:
        lines.append(f"**Your notebook could not be run: {run.problem}.** Every check below scores 0.")
        if run.memory_exceeded:
            lines.append("It used more memory than allowed; look for a loop that keeps allocating.")
        return "\n\n".join(lines), quiet
    cells = run.reply.get("cells", [])
    labels = {c.id: c.label for c in notebook.cells}
    failed = [c for c in cells if c.get("status") not in ("ok", "skipped")]
    left_out = sorted({m for c in failed if (m := _left_out(str(c.get("error", "")), assignment))})
    checks = [c for c in failed if str(c.get("error", "")).startswith("AssertionError")]
    errors = [c for c in failed if c not in checks and not _left_out(str(c.get("error", "")), assignment)]
    if assignment.run_all_cells:
        if errors:
            first = errors[0]
            lines.append(f"Your notebook ran top to bottom: {len(cells)} code cells, {len(errors)} with errors. "
                         f"The first was {labels.get(first['id'], first['id'])}: "
                         f"`{first.get('error', first.get('status'))}`.")
            lines += [f"- {labels.get(c['id'], c['id'])}: `{c.get('error', c['status'])}`" for c in errors[1:8]]
        else:
            lines.append(f"Your notebook ran top to bottom without errors ({len(cells)} code cells"
                         + (", not counting the notebook's own checks below)." if checks else ")."))
        if checks:
            lines.append("The notebook's own checks (its `assert` cells; they cost nothing, the grader's checks "
                         "below decide the score) that failed in that run: "
                         + "; ".join(f"{labels.get(c['id'], c['id'])}: `{c.get('error')}`" for c in checks[:6]) + ".")
    else:
        lines.append("Only your notebook's imports, functions and classes were run (no downloads, no training).")
    lines += _event_lines(protocol.events_of(run.reply.get("events")), notebook)
    shown = 0
    for label, error in run.reply.get("definition_errors", []):
        kind, text = _kind(error)
        module = _left_out(text, assignment)
        left_out += [module] if module and module not in left_out else []
        # Top-level statements are reported by the notebook run, above; a refusal of an import is the grader's
        # sandbox at work (the course's own import cells), not the student's error.
        if kind == "top-level" or module or (kind == "import" and text.startswith("Refused")):
            quiet.append(f"measurement: {kind or 'definition'} of {label}: {text}")
        elif shown < 5:
            shown += 1
            lines.append(f"Running the {'imports' if kind == 'import' else 'definitions'} of {label} raised `{text}`.")
    if left_out:
        lines.append(f"Not installed on the grader, on purpose: {', '.join(f'`{m}`' for m in sorted(left_out))}. "
                     "What needs it was skipped; that costs nothing.")
    if run.memory_exceeded:
        lines.append("Your code used more memory than allowed, so the process holding it was stopped; "
                     "look for a loop that keeps allocating.")
    if run.reply.get("output_truncated"):
        lines.append("Some cells printed more than the grader keeps; the extra output was dropped.")
    return "\n\n".join(lines), quiet


def _event_lines(events: list[protocol.Event], notebook: Notebook) -> list[str]:
    """The student's sentences for the run's events, chosen by kind: only the grader's words, and a cell named
    only when it is one of this notebook's. Other kinds are the staff's (_staff_detail) or unknown: not shown."""
    lines = []
    stopped = [e["why"] for e in events if e["kind"] == protocol.NOTEBOOK_RUN_STOPPED]
    if stopped:
        lines.append(f"The notebook run {STOPPED_RUN[stopped[0]]} and was stopped. The checks below do not depend "
                     "on it: they measured your functions and classes on their own.")
    labels = {cell.label for cell in notebook.cells}
    for event in events:
        if event["kind"] == protocol.DEFINITION_STOPPED and event["cell"] in labels:
            lines.append(f"A statement in {event['cell']} stopped the grading process (`os._exit`, say); "
                         "it was left out of the checks.")
        elif event["kind"] == protocol.DEFINITION_SLOW and event["cell"] in labels:
            lines.append(f"The top-level statements of {event['cell']} took more than 30 s of computing (a "
                         "training run, say); they were left out of the checks, which measure your functions and "
                         "classes on their own.")
    return lines


def _staff_detail(events: list[protocol.Event]) -> str:
    """extra_data.detail, for the batch's reports: what went wrong in the run, from the events' kinds."""
    sentences = []
    for event in events:
        if event["kind"] == protocol.MEASUREMENT_FAILED:
            sentences.append(f"the measurement process failed: {event['error']}")
        elif event["kind"] == protocol.MEASUREMENT_EXITED:
            sentences.append(f"the measurement process exited with status {event['status']}")
        elif event["kind"] == protocol.NOTEBOOK_RUN_STOPPED:
            sentences.append(f"the notebook run {STOPPED_RUN[event['why']]}")
    return "; ".join(sentences)


def _kind(error: str) -> tuple[str, str]:
    """("top-level" | "import" | "", the error) from a measurement error's tag (inside/runtime.py's KIND_TAGS)."""
    for kind in ("top-level", "import"):
        if error.startswith(f"[{kind}] "):
            return kind, error[len(kind) + 3:]
    return "", error
