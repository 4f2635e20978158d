"""Reading submissions: lenient about form, strict about what counts as a notebook, graded code found by name."""

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.errors import SubmissionError
from autograder.grade import choose_notebook
from autograder.notebook import find_notebooks, load_notebook
from student_template import build

SOLUTION = build.SOLUTION_DIR / "hw4_part1.ipynb"
TEMPLATE = build.TEMPLATE_DIR / "hw4_part1.ipynb"
CORPUS = Path(__file__).parent / "submissions" / "hw4_part1"
GRADED = ("LinearModel", "loss", "GD", "SGD", "AdaGrad", "Adam")


def notebook_file(tmp_path, *sources, name="nb.ipynb"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_definitions_are_found_by_name_and_the_last_one_wins(tmp_path):
    path = notebook_file(tmp_path, "%matplotlib inline\nimport torch\nfrom torch import nn",
                         "class LinearModel(nn.Module):\n    pass", "class LinearModel:\n    x = 1",
                         "@staticmethod\ndef loss(a, b):\n    return 1", "def loss(a, b):\n    return 2")
    notebook = load_notebook(path)
    assert notebook.last("LinearModel", lambda d: any("Module" in b for b in d.bases)).cell.index == 1
    assert notebook.last("LinearModel").source == "class LinearModel:\n    x = 1"
    assert notebook.last("loss").source == "def loss(a, b):\n    return 2"
    assert len(notebook.definitions["loss"]) == 2 and notebook.definitions["loss"][0].line == 1
    assert notebook.syntax_errors == []


def test_syntax_errors_name_the_cell_and_line(tmp_path):
    notebook = load_notebook(notebook_file(tmp_path, "x = 1", "def f(:\n    pass", "def g():\n    return 1"))
    [message] = notebook.syntax_errors
    assert re.search(r"\b2\b", message) and "line 1" in message and "invalid syntax" in message
    assert "g" in notebook.definitions and "f" not in notebook.definitions


def test_definitions_only_hoists_imports_above_out_of_order_cells(tmp_path):
    notebook = load_notebook(notebook_file(tmp_path, "class A(nn.Module):\n    pass\nprint('top-level work')",
                                           "from torch import nn\ny = 3"))
    cells = notebook.definition_cells()
    assert cells[0]["source"] == "from torch import nn"
    assert cells[1]["source"] == "class A(nn.Module):\n    pass"


def test_a_notebook_without_metadata_or_ids_still_loads(tmp_path):
    path = tmp_path / "bare.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["def f():\n", "    return 1"]},
                                          {"cell_type": "markdown", "source": "# hi"}]}))
    notebook = load_notebook(path)
    assert [c.id for c in notebook.cells] == ["cell-1"] and "f" in notebook.definitions


@pytest.mark.parametrize("content, message", [
    ("not json at all", "not JSON"),
    ('{"nbformat": 4}', "not a Jupyter notebook"),
    ('[1, 2]', "not a Jupyter notebook"),
])
def test_files_that_are_not_notebooks_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "hw.ipynb"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=message):
        load_notebook(path)


def test_duplicated_cell_ids_are_made_unique(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1", id="same"), nbformat.v4.new_code_cell("b = 2", id="same")]
    path = tmp_path / "dup.ipynb"
    path.write_text(json.dumps(nb))
    assert [c.id for c in load_notebook(path).cells] == ["same", "same-2"]


def test_finding_notebooks_in_folders(tmp_path):
    with pytest.raises(SubmissionError, match="No Jupyter notebook"):
        find_notebooks(tmp_path)
    (tmp_path / "sub" / ".ipynb_checkpoints").mkdir(parents=True)
    shutil.copy(TEMPLATE, tmp_path / "sub" / ".ipynb_checkpoints" / "hw4_part1-checkpoint.ipynb")
    shutil.copy(SOLUTION, tmp_path / "sub" / "hw4_part1 (2).ipynb")
    assert [p.name for p in find_notebooks(tmp_path)] == ["hw4_part1 (2).ipynb"]


def test_with_several_notebooks_the_implemented_one_is_graded_and_named(tmp_path):
    shutil.copy(SOLUTION, tmp_path / "hw4_part1 (2).ipynb")
    shutil.copy(TEMPLATE, tmp_path / "hw4_part1.ipynb")  # newer, but only stubs
    (tmp_path / "broken.ipynb").write_text("{")
    notebook, notes = choose_notebook(tmp_path, None)
    assert notebook.path.name == "hw4_part1 (2).ipynb"
    assert "graded `hw4_part1 (2).ipynb`" in notes[0] and "`hw4_part1.ipynb`" in notes[0]


@pytest.mark.parametrize("name", ["course_correct", "course_colab_leftovers", "course_style_variants",
                                  "course_saved_by_jupyter"])
def test_course_shaped_notebooks_are_read_in_full(name):
    """nbformat 4.0 without cell ids, `!pip` and `%matplotlib` lines, outputs, Colab metadata: every graded name
    is found, both LinearModels (the nn.Module of (1b) and the plain one of GD's evaluation cell), and nothing
    is a syntax error."""
    notebook = load_notebook(CORPUS / f"{name}.ipynb")
    assert notebook.syntax_errors == []
    assert set(GRADED) <= set(notebook.definitions)
    models = notebook.definitions["LinearModel"]
    assert len(models) == 2 and models[0].cell.index < models[1].cell.index
    assert notebook.last("LinearModel", lambda d: any("Module" in b for b in d.bases)) is models[0]
    assert len({cell.id for cell in notebook.cells}) == len(notebook.cells)  # every cell told apart


def test_the_template_defines_every_graded_name_as_a_stub():
    notebook = load_notebook(TEMPLATE)
    assert set(GRADED) <= set(notebook.definitions)
    assert "train_with_torch_adam" not in notebook.definitions  # (1c) is given code in the course notebook


def test_a_copy_pasted_cell_with_the_same_colab_id_still_counts_twice(tmp_path):
    notebook = load_notebook(CORPUS / "fault_duplicated_check_cell.ipynb")
    reference = load_notebook(SOLUTION)
    assert len(notebook.cells) == len(reference.cells) + 1
    assert len({cell.id for cell in notebook.cells}) == len(notebook.cells)
