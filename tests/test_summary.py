"""The top summary tells the truth (issue 15): the notebook's own assert cells apart from errors, the sandbox's
refusal of the course's own imports and packages the image leaves out on purpose not shown as the student's errors,
top-level statements' errors in the measurement left to the notebook run's report. In process, no sandbox."""

import ast
import types
from pathlib import Path

from autograder.assignment import load_assignment
from autograder.grade import _summary, build_request
from autograder.assignments.hw4_part1 import runs_in_measurement
from autograder.notebook import load_notebook

CORPUS = Path(__file__).parent / "submissions"
PART1, PART2 = load_assignment("hw4_part1"), load_assignment("hw4_part2")


def run(cells=(), definition_errors=()):
    reply = {"cells": list(cells), "events": [], "definition_errors": [list(e) for e in definition_errors]}
    return types.SimpleNamespace(reply=reply, problem="", memory_exceeded=False)


def test_own_checks_are_not_errors():
    notebook = load_notebook(CORPUS / "hw4_part1" / "course_sgd_numpy_rng.ipynb")
    ids = [c.id for c in notebook.cells]
    cells = [{"id": i, "status": "ok"} for i in ids]
    cells[-2] = {"id": ids[-2], "status": "error", "error": "AssertionError: Wrong implementation of Adam"}
    text, quiet = _summary(notebook, PART1, run(cells), [])
    assert "without errors" in text and "The notebook's own checks" in text and "cost nothing" in text
    assert "with errors" not in text and quiet == []


def test_refused_and_left_out_imports_are_not_the_students_errors():
    notebook = load_notebook(CORPUS / "hw4_part2" / "course_template.ipynb")
    errors = [("code cell 1", "[import] Refused: ctypes is not available while your code is measured"),
              ("code cell 1", "[import] ModuleNotFoundError: No module named 'matplotlib' (raised in code cell 1)"),
              ("code cell 1", "[import] ModuleNotFoundError: No module named 'datasets'"),
              ("code cell 2", "[top-level] NameError: name 'trainer' is not defined"),
              ("code cell 3", "[import] ModuleNotFoundError: No module named 'seaborn'")]
    text, quiet = _summary(notebook, PART2, run(definition_errors=errors), [])
    assert "ctypes" not in text and "matplotlib' " not in text and "trainer" not in text
    assert "Not installed on the grader, on purpose: `datasets`, `matplotlib`" in text
    assert "seaborn" in text  # a package the course never meant to leave out is still the student's to know
    assert len(quiet) == 4 and any("Refused" in line for line in quiet)


def test_the_measurement_runs_the_notebooks_context_but_not_its_given_evaluation():
    notebook = load_notebook(CORPUS / "hw4_part1" / "course_num_examples.ipynb")
    cells = build_request(notebook, PART1, [])["measure"]["cells"]
    context = "\n".join(c["source"] for c in cells if c["kind"] == "context")
    assert "NUM_EXAMPLES = 2000" in context and "device = torch.device" in context
    assert "X_train = torch.randn(2000, 2)" in context and "torch.manual_seed(10605)" in context
    assert "apply_gradient" not in context and "torch.optim.Adam" not in context and "assert" not in context
    assert [c["kind"] for c in cells[:4]] == ["import"] * 4


def test_the_given_cells_are_recognised_by_what_they_do():
    given = ["for step in range(300):\n    optimizer.apply_gradient(grads, model)",
             "optimizer = torch.optim.Adam(model.parameters(), lr=0.1)", "assert abs(gd_mse - 0.9611) < 1e-3",
             "while True:\n    pass", "batch_loss.backward()"]
    kept = ["NUM_EXAMPLES = 2000", "device = torch.device('cpu')", "X_train = torch.randn(2000, 2)",
            "torch.manual_seed(10605)", "model = LinearModel()", "print('optimizer ready')"]
    assert not any(runs_in_measurement(ast.parse(s).body[0]) for s in given)
    assert all(runs_in_measurement(ast.parse(s).body[0]) for s in kept)


def test_part2_runs_only_the_setup_cells_literal_constants():
    from autograder.assignments.hw4_part2 import literal_constant
    kept = ["NUM_LABELS = 5", "LEARNING_RATE = 1e-4", "MODEL_NAME = 'bert-base-uncased'", "A = B = (1, 2)"]
    refused = ["model = AutoModel.from_pretrained(MODEL_NAME)", "trainer.train()", "config.r = 4",
               "data = load_dataset('sst5')", "x += 1"]
    assert all(literal_constant(ast.parse(s).body[0]) for s in kept)
    assert not any(literal_constant(ast.parse(s).body[0]) for s in refused)
