"""The students' self-check (student_template/hw4_part1_selfcheck.py): built from the grader's replay.py as it is,
holding no secret, hidden problem or reference code, runnable with torch alone, and giving on each corpus notebook
the verdict and the named mistake the grader gives (the hand-written expectations of EXPECTED.md and
tests/test_corpus.py, not a recorded run)."""

import ast
import importlib.util
import json
import random
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.notebook import load_notebook
from student_template import build, selfcheck

CORPUS = Path(__file__).parent / "submissions" / "hw4_part1"
PARTS = ("1b", "2a", "2b", "2c", "2d")
NOT_DEFINED, STUB = "is not defined", "NotImplementedError"
# notebook -> {part: what its feedback must say}; every other part passes. The hints are the grader's, as
# tests/test_corpus.py asserts them on its feedback; the failing parts are EXPECTED.md's.
EXPECTED = {
    **{name: {} for name in ("course_correct", "course_sgd_numpy_rng", "course_permutation_sampling",
                             "course_style_variants", "course_autograd_gradients", "course_colab_leftovers",
                             "course_saved_by_jupyter")},
    "adam_no_bias_correction": {"2d": "without bias correction"},
    "adam_eps_inside_sqrt": {"2d": "ε inside the square root"},
    "adam_t_not_incremented": {"2d": "no longer numbers"},
    "adam_t_fixed_at_one": {"2d": "`t` is not counted"},
    "adagrad_accumulator_zero": {"2c": "accumulator starts at 0"},
    "adagrad_eps_inside_sqrt": {"2c": "inside the square root"},
    "adagrad_no_sqrt": {"2c": "square root is missing"},
    "adagrad_b_not_updated": {"2c": "`b` is never updated"},
    "gd_missing_factor_2": {"2a": "factor 2"},
    "loss_sum_reduction": {"1b": "sum of the squared differences"},
    "sgd_full_batch": {"2b": "whole training set"},
    "sgd_two_samples": {"2b": "exactly one sample"},  # no named mistake models two samples: the sampling hint
    "partial_gd_sgd": {"2c": STUB, "2d": STUB},
    "partial_adagrad_stub": {"2c": STUB},
    "fault_missing_adagrad": {"2c": NOT_DEFINED},
    "fault_syntax_error_adam": {"2d": NOT_DEFINED},
    # Optimizers that delegate to torch.optim are refused, as in the grader.
    "attack_wrap_torch_optim": {"2d": "torch.optim is not allowed"},
    "attack_wrap_torch_optim_obfuscated": {"2a": "torch.optim is not allowed", "2b": "torch.optim is not allowed"},
    "attack_optim_direct": {"2c": "torch.optim is not allowed", "2d": "torch.optim is not allowed"},
}
# One of each kind runs always; the whole corpus with the slow tests (about 1-2 s a notebook).
FAST = {"course_sgd_numpy_rng", "adam_no_bias_correction", "adagrad_eps_inside_sqrt", "sgd_full_batch",
        "loss_sum_reduction", "partial_gd_sgd"}


def load_bundle(text: str, name: str = "hw4_part1_selfcheck_under_test") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(text, name, "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def bundle():
    spec = importlib.util.spec_from_file_location("hw4_part1_selfcheck", selfcheck.TARGET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def definitions(path: Path) -> dict:
    """The notebook's imports and definitions, run as the grader reads them (a missing package costs its names)."""
    namespace = {"__name__": "__main__"}
    for cell in load_notebook(path).definition_cells():
        try:
            exec(compile(cell["source"], cell["label"], "exec"), namespace)
        except ImportError:
            pass
    return namespace


def test_the_committed_bundle_is_built_from_replay_py_as_it_is_now(bundle):
    text = selfcheck.TARGET.read_text()
    assert text == selfcheck.render()
    assert selfcheck.REPLAY.read_text() in text  # verbatim
    assert bundle.RULE_SOURCE == selfcheck.REPLAY.read_text()
    from autograder.assignments.hw4_part1 import replay
    assert bundle.rule.MISTAKES == replay.MISTAKES and bundle.rule.DEFAULTS == replay.DEFAULTS


def test_a_change_to_replay_py_reaches_the_bundle_and_the_check_notices_it(monkeypatch, tmp_path):
    original = selfcheck.REPLAY.read_text()
    old = "the factor 2 of the squared error's gradient is missing"
    changed = original.replace(old, "CHANGED HINT")
    assert changed != original
    module = load_bundle(selfcheck.render(replay_text=changed))
    assert module.rule.MISTAKES["half_gradient"][1] == "CHANGED HINT"
    edited = tmp_path / "replay.py"
    edited.write_text(changed)
    monkeypatch.setattr(selfcheck, "REPLAY", edited)
    assert build.main(["--check"]) == 1  # the committed bundle is now stale


def test_the_run_settings_are_the_graders(bundle):
    from autograder.assignments import hw4_part1 as grader
    for name in grader.OPTIMIZERS:
        notebook, other = bundle.RUNS[name]
        assert (notebook["kwargs"], notebook["steps"], notebook["draws"]) == \
            (grader.HANDOUT_KWARGS[name], grader.HANDOUT_STEPS, grader.PUBLIC_DRAWS[name])
        assert (other["kwargs"], other["steps"]) == (grader.CUSTOM_KWARGS[name], grader.CUSTOM_STEPS)


def test_the_bundle_holds_no_secret_hidden_problem_or_reference_code(bundle):
    text = selfcheck.TARGET.read_text()
    trees = [ast.parse(text), ast.parse(bundle.RULE_SOURCE)]
    imported = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "collections", "contextlib", "dataclasses", "io", "math", "numpy", "random", "sys",
                        "types", "torch"}  # what Colab has
    classes = {node.name for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    assert classes == {"Replay", "_Problem", "_Model"}  # no optimizer a student could call in place of theirs
    lowered = text.lower()
    for word in ("secret", "hmac", "seeds(", "def problem(", "make_data", "import solution", "from solution",
                 "autograder.", "near_start=true"):
        assert word not in lowered, word


def test_the_template_cell_without_the_file_says_how_to_get_it(tmp_path):
    cells = build.code_cells(build.TEMPLATE_DIR / "hw4_part1.ipynb")
    checks = {key: source for key, source in cells.items() if key.startswith("selfcheck_")}
    assert len(checks) == 5
    run = subprocess.run([sys.executable, "-I", "-c", "\n".join(checks.values())], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Self-check skipped: put hw4_part1_selfcheck.py") == 5


def test_each_template_cell_checks_its_own_part(monkeypatch, capsys):
    cells = build.code_cells(build.TEMPLATE_DIR / "hw4_part1.ipynb")
    order = list(cells)
    monkeypatch.syspath_prepend(str(selfcheck.TARGET.parent))
    namespace = definitions(CORPUS / "gd_missing_factor_2.ipynb")
    try:
        for fill_in, part in zip(("LR_MSE", "GD", "SGD", "AdaGrad", "Adam"), PARTS):
            assert order.index(f"selfcheck_{fill_in}") == order.index(f"test_{fill_in}") + 1
            exec(cells[f"selfcheck_{fill_in}"], namespace)  # the notebook's globals: the caller's, found by check
            out = capsys.readouterr().out
            assert out.startswith(f"({part})"), out
            assert ("factor 2" in out) == (part == "2a"), out
    finally:
        sys.modules.pop("hw4_part1_selfcheck", None)


@pytest.mark.parametrize("name", [name if name in FAST else pytest.param(name, marks=pytest.mark.slow)
                                  for name in EXPECTED])
def test_on_the_corpus_it_says_what_the_grader_says(bundle, name, capsys):
    path = CORPUS / f"{name}.ipynb"
    namespace = definitions(path)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    optimizer_init = torch.optim.Optimizer.__init__  # refused while the student's classes run, then restored
    for part in PARTS:
        ok = bundle.check(part, namespace)
        out = capsys.readouterr().out
        want = EXPECTED[name].get(part)
        assert ok == (want is None), (part, out)
        if want is None:
            assert "✗" not in out, (part, out)
        else:
            assert want in out and "✗" in out, (part, out)
    # The notebook's own checks assume its generators' streams continue undisturbed.
    assert torch.equal(states[0], torch.get_rng_state()) and random.getstate() == states[2]
    assert (states[1] == np.random.get_state()[1]).all()
    assert torch.optim.Optimizer.__init__ is optimizer_init


def test_a_correct_run_that_draws_with_numpy_passes_where_the_notebooks_assert_fails(bundle, capsys):
    """The point of the self-check: the course's assert expects torch.randint's stream; any uniform draw is right."""
    namespace = definitions(CORPUS / "course_sgd_numpy_rng.ipynb")
    recorded = json.loads((CORPUS / "course_sgd_numpy_rng.ipynb").read_text())
    errors = [o for c in recorded["cells"] if c["metadata"].get("id") == "test_AdaGrad" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert errors  # the notebook's own assert failed for this correct AdaGrad
    assert bundle.check("2c", namespace)
    assert "✓ AdaGrad(lr=0.1), the notebook's 300 steps" in capsys.readouterr().out


@pytest.mark.slow
def test_it_runs_with_only_torch_and_the_standard_library(tmp_path):
    """A fresh interpreter (-I), a sys.path of the bundle's folder, the standard library and site-packages only:
    nothing of the kit is importable. The notebook's globals are found without being passed."""
    (tmp_path / "hw4_part1_selfcheck.py").write_text(selfcheck.TARGET.read_text())
    sources = [cell["source"] for cell in load_notebook(CORPUS / "adagrad_eps_inside_sqrt.ipynb").definition_cells()]
    paths = [str(tmp_path), sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"],
             str(Path(torch.__file__).parents[1])]
    script = "\n".join([
        f"import sys; sys.path[:] = {paths!r} + [p for p in sys.path if 'lib-dynload' in p or p.endswith('.zip')]",
        *sources,
        "from hw4_part1_selfcheck import check",
        "ok = check('2c')",
        "kit = sorted(m for m in sys.modules if m.split('.')[0] in ('autograder', 'solution', 'student_template'))",
        "print('RESULT', ok, kit)",
    ])
    run = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "RESULT False []" in run.stdout and "ε inside the square root" in run.stdout, run.stdout


@pytest.mark.slow
def test_in_a_jupyter_kernel_the_solution_passes_every_self_check_and_every_assert_after_it(tmp_path):
    """The solution notebook run top to bottom in a real kernel with the file beside it: each self-check cell
    passes, and the course's asserts after them still pass (their expected values need torch's stream as the
    earlier cells left it, so this fails if a self-check disturbs it)."""
    import nbclient
    import nbformat
    (tmp_path / "hw4_part1_selfcheck.py").write_text(selfcheck.TARGET.read_text())
    notebook = nbformat.read(build.SOLUTION_DIR / "hw4_part1.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = {build.cell_key(cell): "".join(o.get("text", "") for o in cell.outputs)
               for cell in notebook.cells if cell.cell_type == "code"}
    checks = {key: text for key, text in printed.items() if key.startswith("selfcheck_")}
    assert len(checks) == 5
    for key, text in checks.items():
        assert "✓" in text and "✗" not in text and "skipped" not in text, (key, text)
