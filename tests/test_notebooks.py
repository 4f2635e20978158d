"""Templates and solution notebooks come from one master each, have the course notebook's shape, and behave as a
student would expect; the Part 1 corpus has the shape students hand in."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from student_template import build

PART1 = "hw4_part1"
CORPUS = Path(__file__).parent / "submissions" / PART1
# The course notebook's graded cells (HW4_INTERFACE.md): fill-in cell -> its locked test cell and points.
GRADED = {"LR_MSE": ("test_LR_MSE", 5), "GD": ("test_GD", 5), "SGD": ("test_SGD", 5),
          "AdaGrad": ("test_AdaGrad", 10), "Adam": ("test_Adam", 15)}
OPTIMIZERS = ("GD", "SGD", "AdaGrad", "Adam")


def read(directory, name=PART1):
    return json.loads((directory / f"{name}.ipynb").read_text())


def sources(notebook, kind="code") -> dict[str, str]:
    return {cell["metadata"]["id"]: "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == kind}


def test_committed_notebooks_match_their_masters():
    assert build.main(["--check"]) == 0


def test_the_check_notices_drift(tmp_path, monkeypatch):
    stale = tmp_path / "template"
    stale.mkdir()
    (stale / f"{PART1}.ipynb").write_text("{}")
    monkeypatch.setattr(build, "TEMPLATE_DIR", stale)
    assert build.main(["--check"]) == 1


@pytest.mark.parametrize("directory", [build.TEMPLATE_DIR, build.SOLUTION_DIR], ids=["template", "solution"])
def test_part1_has_the_course_notebook_shape(directory):
    notebook = read(directory)
    nbformat.validate(nbformat.from_dict(notebook))
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 0)
    assert all("id" not in cell for cell in notebook["cells"])  # Colab keeps its id in the metadata
    assert all(cell["metadata"]["id"] for cell in notebook["cells"])
    assert {"colab", "kernelspec", "language_info"} <= set(notebook["metadata"])
    graded = {cell["metadata"]["id"]: cell["metadata"]["nbgrader"] for cell in notebook["cells"]
              if "nbgrader" in cell["metadata"]}
    expected = {}
    for fill_in, (test, points) in GRADED.items():
        expected[fill_in] = {"grade_id": fill_in, "solution": True, "grade": False, "locked": False}
        expected[test] = {"grade_id": test, "solution": False, "grade": True, "locked": True, "points": points}
    assert {k: {f: v[f] for f in expected[k]} for k, v in graded.items()} == expected
    assert sum(points for _, points in GRADED.values()) == 40


def test_part1_cells_come_in_the_course_order():
    cells = sources(read(build.TEMPLATE_DIR))
    order = list(cells)
    assert order.index("imports") < order.index("LR_MSE") < order.index("test_LR_MSE") < order.index("torch_adam")
    for name in OPTIMIZERS:  # each optimizer, then its given evaluation, then its locked check
        assert order.index(f"{name}_eval") == order.index(name) + 1 == order.index(f"test_{name}") - 1
        assert f'"Wrong implementation of {name}"' in cells[f"test_{name}"]
        assert "for step in range(300):" in cells[f"{name}_eval"] and "step % 20 == 0" in cells[f"{name}_eval"]
    assert "torch.manual_seed(10605)" in cells["LR_MSE"] and "class LinearModel(nn.Module):" in cells["LR_MSE"]
    assert "import torch.optim as optim" in cells["imports"] and "device = " in cells["imports"]
    assert "torch.optim.Adam(model.parameters(), lr=0.1)" in cells["torch_adam"]
    assert "class LinearModel:" in cells["GD_eval"]  # the plain model is redefined inside GD's evaluation cell
    assert not any("train_with_torch_adam" in text for text in cells.values())


def test_template_stubs_only_the_fill_in_cells_and_the_solution_fills_them():
    template, solution = sources(read(build.TEMPLATE_DIR)), sources(read(build.SOLUTION_DIR))
    assert list(template) == list(solution)
    stubbed = {key for key, text in template.items() if "raise NotImplementedError()" in text}
    assert stubbed == set(GRADED)
    assert all("# YOUR CODE HERE" in template[key] and "<FILL IN>" in template[key] for key in GRADED)
    assert not any("NotImplementedError" in text or "<FILL IN>" in text for text in solution.values())
    assert {key for key in template if template[key] != solution[key]} == set(GRADED)


@pytest.mark.parametrize("header, message", [
    ("# %% id=x grade_id=X", "either `solution` or a test"),
    ("# %% id=x grade_id=X solution points=3", "either `solution` or a test"),
    ("# %% id=x points=3", "has a `grade_id=`"),
    ("# %% id=x colour=red", "unknown attribute 'colour'"),
    ("# %% [markdown] id=x grade_id=X solution", "belong on code cells"),
])
def test_malformed_nbgrader_headers_are_refused(tmp_path, header, message):
    master = tmp_path / "m.py"
    master.write_text(f"# %% notebook shape=course\n{header}\nx = 1\n")
    with pytest.raises(ValueError, match=message):
        build.parse_master(master)


def test_notebook_options_reach_the_colab_metadata(tmp_path):
    master = tmp_path / "m.py"
    master.write_text("# %% notebook shape=course accelerator=GPU gpu=T4\n# %% id=a\nx = 1\n")
    notebook = build.to_notebook(*build.parse_master(master), solution=False)
    assert notebook.metadata["accelerator"] == "GPU" and notebook.metadata["colab"]["gpuType"] == "T4"
    assert notebook.nbformat_minor == 0 and "id" not in notebook.cells[0]


NOT_COURSE_SHAPED = ("fault_not_json", "fault_no_metadata", "course_saved_by_jupyter")  # deliberately


def course_shape_corpus() -> list[Path]:
    """Every corpus notebook except those deliberately of another shape (and the link to the answer key)."""
    found = [p for p in CORPUS.rglob("*.ipynb") if not p.is_symlink()]
    return sorted(p for p in found if p.stem not in NOT_COURSE_SHAPED)


def test_the_corpus_is_in_the_course_notebook_shape():
    paths = course_shape_corpus()
    assert len(paths) > 40
    for path in paths:
        notebook = json.loads(path.read_text())
        assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 0), path.name
        assert all("id" not in cell for cell in notebook["cells"]), path.name
        assert all(cell["metadata"].get("id") for cell in notebook["cells"]), path.name
        nbformat.validate(nbformat.from_dict(notebook))
        if path.stem != "fault_syntax_error_adam":  # an attack or variant that does not parse would test nothing
            for cell in notebook["cells"]:
                if cell["cell_type"] == "code":
                    ast.parse(TransformerManager().transform_cell("".join(cell["source"])), path.name)
    resaved = json.loads((CORPUS / "course_saved_by_jupyter.ipynb").read_text())
    assert resaved["nbformat_minor"] == 5 and all(cell["id"] for cell in resaved["cells"])


def test_the_corpus_is_what_its_generator_writes():
    from tests.submissions import make_corpus
    assert make_corpus.main(["--check"]) == 0
    link = CORPUS / "attack_symlink_solution" / "solution.ipynb"
    assert link.is_symlink() and link.resolve() == (build.SOLUTION_DIR / f"{PART1}.ipynb").resolve()


# What each notebook's code does, by the reference oracle (tests/submissions/corpus_check.py), written by hand.
SAME = dict.fromkeys(("loss",) + OPTIMIZERS, "same")
STUBS = {"AdaGrad": "error: NotImplementedError", "Adam": "error: NotImplementedError"}
BEHAVIOUR = {
    **{name: SAME for name in ("course_correct", "course_sgd_numpy_rng", "course_permutation_sampling",
                               "course_style_variants", "course_autograd_gradients", "course_colab_leftovers",
                               "course_saved_by_jupyter", "course_device_state", "course_num_examples",
                               "course_state_float_tuple", "course_state_scalar_tensors", "course_state_dict",
                               "course_state_one_tensor", "course_state_numpy", "course_b_shape_changes",
                               "course_shared_helper", "course_autograd_everywhere", "course_slow_loops")},
    # One slip in a helper SGD, AdaGrad and Adam share: all three draw two samples.
    "shared_helper_two_samples": {**SAME, "SGD": "differs", "AdaGrad": "differs", "Adam": "differs"},
    "adagrad_init_error": {**SAME, "AdaGrad": "error: NameError"},
    "partial_gd_sgd": {**SAME, **STUBS},
    "partial_adagrad_stub": {**SAME, "AdaGrad": STUBS["AdaGrad"]},
    # One mistake, in one place: name -> what differs.
    **{name: {**SAME, wrong: "differs"} for name, wrong in (
        ("adam_no_bias_correction", "Adam"), ("adam_eps_inside_sqrt", "Adam"), ("adam_t_not_incremented", "Adam"),
        ("adam_t_fixed_at_one", "Adam"),
        ("adagrad_accumulator_zero", "AdaGrad"), ("adagrad_eps_inside_sqrt", "AdaGrad"),
        ("adagrad_no_sqrt", "AdaGrad"), ("adagrad_b_not_updated", "AdaGrad"), ("gd_missing_factor_2", "GD"),
        ("loss_sum_reduction", "loss"), ("sgd_full_batch", "SGD"), ("sgd_two_samples", "SGD"),
        ("adagrad_reads_X_train", "AdaGrad"), ("adagrad_abs_not_square", "AdaGrad"),
        ("adam_state_reset_each_step", "Adam"))},
    # Where torch.optim may run, every route to it is a working optimizer: the attacks are real.
    **{f"attack_optim_{route}": SAME for route in ("direct", "thread", "settrace_none", "file_renamed", "helper_cell",
                                                    "exec_source", "reload", "gc_objects", "functional", "foreach",
                                                    "fused_kernels")},
    "attack_wrap_torch_optim": SAME,
    "attack_wrap_torch_optim_obfuscated": SAME,
    "attack_read_checkout": SAME,  # this process may read the checkout: it finds the reference
}


@pytest.mark.integration  # runs corpus notebooks' code in a fresh process each
def test_each_corpus_notebook_does_what_its_name_says():
    names = sorted(BEHAVIOUR)
    run = subprocess.run([sys.executable, "-m", "tests.submissions.corpus_check", *names], capture_output=True,
                         text=True, cwd=build.ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    coarse = {name: {k: v.split(" at step")[0] for k, v in verdicts.items()} for name, verdicts in found.items()}
    assert coarse == BEHAVIOUR


def execute(path, allow_errors):
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, allow_errors=allow_errors, kernel_name="python3").execute()
    return {build.cell_key(cell): [o for o in cell.outputs if o.output_type == "error"]
            for cell in notebook.cells if cell.cell_type == "code"}


@pytest.mark.integration
def test_solution_notebook_passes_all_its_asserts():
    errors = execute(build.SOLUTION_DIR / f"{PART1}.ipynb", allow_errors=False)
    assert not any(errors.values())


@pytest.mark.integration
def test_template_runs_and_fails_only_where_a_fill_in_is_called():
    errors = execute(build.TEMPLATE_DIR / f"{PART1}.ipynb", allow_errors=True)
    failing = {cell_id: [e.ename for e in errs] for cell_id, errs in errors.items() if errs}
    called = {"test_LR_MSE", "torch_adam"} | {f"{n}_eval" for n in OPTIMIZERS} | {f"test_{n}" for n in OPTIMIZERS}
    assert failing == {cell_id: ["NotImplementedError"] for cell_id in called}
