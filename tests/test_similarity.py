"""Similar submissions: a renamed, reformatted, reordered copy ranks first; independent solutions do not pair up.

No sandbox: notebooks are read, never run. The independent solutions (tests/submissions/similarity/) were written
separately, each in its own style; the disguised copy is made here from the reference solution.
"""

import io
import json
import re
import tokenize
from pathlib import Path

import pytest

from autograder.assignment import load_assignment
from autograder.notebook import load_notebook
from autograder.staff import similarity
from autograder.staff.class_data import SubmissionRecord
from autograder.staff.similar_section import compare_class, similarity_html
from tests.staff_fixtures import INDEPENDENT, SOLUTION, TEMPLATE, notebook_with, sections

GRADED = load_assignment("hw4_part1").graded_names
RENAMES = {"_squared_error_gradient": "mse_gradient_of", "residual": "errs", "grad_w": "dW", "grad_b": "dB",
           "_one_sample": "draw_one", "G_w": "acc_for_w", "G_b": "acc_for_b", "m_hat": "first_unbiased",
           "v_hat": "second_unbiased", "grads": "gradient_pair", "inputs": "features", "y_true": "target",
           "y_pred": "prediction", "X": "data", "y": "labels", "i": "pick"}


def disguise(code: str) -> str:
    """Every name in RENAMES renamed, comments and docstrings changed, layout rewritten by tokenize."""
    tokens = []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        kind, text = token.type, token.string
        if kind == tokenize.NAME:
            text = RENAMES.get(text, text)
        elif kind == tokenize.COMMENT:
            text = "# " + text[1:].upper()
        elif kind == tokenize.STRING and text.startswith('"""'):
            text = '"""My own notes."""'
        tokens.append((kind, text))
    return tokenize.untokenize(tokens)


def reorder_helper(code: str) -> str:
    """Move the first top-level function after the class that follows it."""
    blocks = re.split(r"\n(?=(?:def|class) )", code)
    if len(blocks) >= 2 and blocks[0].startswith("def "):
        blocks[0], blocks[1] = blocks[1], blocks[0]
    return "\n".join(blocks)


def _cells_of(notebook: Path) -> dict[str, str]:
    """Graded name -> the source of the cell that last defines it (the template's given redefinition aside)."""
    loaded = load_notebook(notebook)
    found = {}
    for name in ("loss", "GD", "SGD", "AdaGrad", "Adam"):
        cell = loaded.last(name).cell
        found["LinearModel" if name == "loss" else name] = cell.source
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("similar")
    files = {"reference": SOLUTION}
    copied = {name: reorder_helper(disguise(source)) for name, source in _cells_of(SOLUTION).items()}
    files["disguised"] = notebook_with(copied, folder / "disguised.ipynb")
    for path in INDEPENDENT:
        files[path.stem] = notebook_with(sections(path.read_text()), folder / f"{path.stem}.ipynb")
    return files


def _documents(corpus: dict[str, Path]) -> list[similarity.Document]:
    return [similarity.notebook_document(key, path, GRADED) for key, path in corpus.items()]


def _template() -> str:
    return similarity.graded_code(load_notebook(TEMPLATE), GRADED)


def test_the_disguise_really_changes_the_text(corpus):
    """The copy shares names and layout with the reference far less than its score says (else the test is weak)."""
    original, copy = (similarity.graded_code(load_notebook(corpus[k]), GRADED) for k in ("reference", "disguised"))
    assert "mse_gradient_of" in copy and "_squared_error_gradient" not in copy and "errs" in copy
    lines = set(original.splitlines())
    assert sum(line in lines for line in copy.splitlines() if line.strip()) < 0.5 * len(copy.splitlines())


def test_the_disguised_copy_ranks_first_and_independent_solutions_stay_below(corpus):
    pairs = similarity.find_similar(_documents(corpus), _template(), threshold=0.01)  # every pair, to see the gap
    by_pair = {frozenset((p.first, p.second)): p for p in pairs}
    assert {pairs[0].first, pairs[0].second} == {"reference", "disguised"}
    assert pairs[0].score > 0.8  # 0.92 to 0.96 over hash seeds (copydetect hashes with hash()); others <= 0.27
    independent = [p for p in pairs if "disguised" not in (p.first, p.second)]
    assert independent  # they do share something (the interface): what is measured is real
    assert all(p.score < similarity.THRESHOLD for p in independent)
    listed = similarity.find_similar(_documents(corpus), _template())
    assert [frozenset((p.first, p.second)) for p in listed] == [frozenset(("reference", "disguised"))]
    assert by_pair[frozenset(("reference", "disguised"))].shared >= similarity.MIN_SHARED


def test_the_templates_given_code_is_not_counted(corpus):
    """Two submissions that leave every stub as given share nothing once the template is boilerplate."""
    stubs = [similarity.Document(name, _template()) for name in ("first", "second")]
    assert similarity.find_similar(stubs, _template(), threshold=0.01) == []
    assert similarity.find_similar(stubs, "", threshold=0.01)  # without the template, they would pair


def test_only_graded_cells_are_compared(tmp_path):
    notebook = json.loads(SOLUTION.read_text())
    notebook["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                              "source": "scratch_result = sum(range(10))\n"})
    path = tmp_path / "extra.ipynb"
    path.write_text(json.dumps(notebook))
    code = similarity.graded_code(load_notebook(path), GRADED)
    assert "scratch_result" not in code and "class Adam" in code and "def _one_sample" in code  # a helper it uses


def test_a_known_public_solution_is_matched_and_known_ones_are_not_paired(corpus, tmp_path):
    known = tmp_path / "known"
    known.mkdir()
    (known / "from_the_web.py").write_text(similarity.graded_code(load_notebook(SOLUTION), GRADED))
    (known / "also_from_the_web.py").write_text(similarity.graded_code(load_notebook(SOLUTION), GRADED))
    records = [SubmissionRecord(key, "ok", "", submission=path) for key, path in corpus.items() if key != "reference"]
    result = compare_class(records, known)
    keys = [frozenset((p.first, p.second)) for p in result.pairs]
    assert frozenset(("disguised", "known: from_the_web.py")) in keys
    assert frozenset(("known: from_the_web.py", "known: also_from_the_web.py")) not in keys
    assert not any("independent" in p.first + p.second for p in result.pairs)
    page = similarity_html(result, {"disguised": "sub-1"})
    assert "unusually similar; review" in page and "<mark>" in page and "plagiar" not in page.lower()


def test_frequent_fingerprints_are_the_problems_idiom(corpus):
    """Code that most of a large class shares is not evidence: the same solution thirty times pairs with nobody."""
    code = similarity.graded_code(load_notebook(SOLUTION), GRADED)
    many = [similarity.Document(f"s{n}", code) for n in range(30)]
    assert similarity.find_similar(many, _template()) == []
    assert similarity.find_similar(many[:5], _template())  # five of them still do


def test_an_unreadable_submission_is_listed_and_an_unreadable_known_solution_refused(corpus, tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    records = [SubmissionRecord("broken", "invalid", "", submission=broken),
               SubmissionRecord("gone", "crashed", "", submission=None),
               SubmissionRecord("reference", "ok", "", submission=corpus["reference"])]
    assert compare_class(records).unread == ["broken", "gone"]
    known = tmp_path / "known"
    known.mkdir()
    (known / "bad.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="bad.ipynb"):
        compare_class(records, known)
