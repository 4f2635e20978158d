"""Templates and solution notebooks come from one master each, and behave as a student would expect."""

import nbclient
import nbformat
import pytest

from student_template import build

PART1 = "hw4_part1"


def test_committed_notebooks_match_their_masters():
    assert build.main(["--check"]) == 0


def test_the_check_notices_drift(tmp_path, monkeypatch):
    stale = tmp_path / "template"
    stale.mkdir()
    (stale / f"{PART1}.ipynb").write_text("{}")
    monkeypatch.setattr(build, "TEMPLATE_DIR", stale)
    monkeypatch.setattr(build, "SOURCES", build.SOURCES)
    assert build.main(["--check"]) == 1


def test_template_and_solution_share_cell_ids():
    template = nbformat.read(build.TEMPLATE_DIR / f"{PART1}.ipynb", as_version=4)
    solution = nbformat.read(build.SOLUTION_DIR / f"{PART1}.ipynb", as_version=4)
    assert [c.id for c in template.cells] == [c.id for c in solution.cells]
    code = {name: "".join(c.source for c in nb.cells if c.cell_type == "code")
            for name, nb in (("template", template), ("solution", solution))}
    assert "raise NotImplementedError" in code["template"]
    assert "raise NotImplementedError" not in code["solution"]


def execute(path, allow_errors):
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, allow_errors=allow_errors, kernel_name="python3").execute()
    return {cell.id: [o for o in cell.outputs if o.output_type == "error"]
            for cell in notebook.cells if cell.cell_type == "code"}


@pytest.mark.slow
def test_solution_notebook_passes_all_its_asserts():
    errors = execute(build.SOLUTION_DIR / f"{PART1}.ipynb", allow_errors=False)
    assert not any(errors.values())


@pytest.mark.slow
def test_template_runs_and_fails_only_at_the_fill_in_points():
    errors = execute(build.TEMPLATE_DIR / f"{PART1}.ipynb", allow_errors=True)
    failing = {cell_id: [e.ename for e in errs] for cell_id, errs in errors.items() if errs}
    assert failing == {cell_id: ["NotImplementedError"] for cell_id in
                       ("check-1b", "check-1c", "check-2a", "check-2b", "check-2c", "check-2d")}
