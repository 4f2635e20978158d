"""The Gradescope zip: what it holds, that it refuses a bad reference, and that it grades once unzipped."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import build, cli
from autograder.assignment import Assignment
from tests.test_corpus import EXPECTED_FAILURES

ROOT = Path(__file__).resolve().parent.parent
PART1 = "hw4_part1"
CORPUS = ROOT / "tests/submissions" / PART1
RUBRIC = ROOT / "tests/golden" / f"{PART1}_rubric.json"
WRONG = ("adam_no_bias_correction", "sgd_full_batch")  # 33/40 each; expected failures from tests/test_corpus.py


@pytest.fixture(scope="module")
def checked_zip(tmp_path_factory) -> Path:
    """Built as a TA builds it: the reference and the template graded first."""
    return build.build(PART1, tmp_path_factory.mktemp("dist"), log=lambda message: None)


def test_the_zip_holds_the_entry_points_engine_assignment_and_reference_only(checked_zip):
    assert checked_zip.name == f"{PART1}_autograder.zip"
    with zipfile.ZipFile(checked_zip) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 & 0o777 for info in archive.infolist()}
        requirements = archive.read("requirements.txt").decode()
    for required in ("setup.sh", "run_autograder", "requirements.txt", "autograder/grade.py", "autograder/worker.py",
                     "autograder/sandbox.py", "autograder/results_schema.json", "autograder/cases.ini",
                     "autograder/kernel_prelude.py", f"autograder/assignments/{PART1}/cases.py",
                     f"autograder/assignments/{PART1}/probes.py", f"autograder/assignments/{PART1}/secret",
                     "solution/__init__.py", "solution/part1.py"):
        assert required in names
    forbidden = [n for n in names if re.search(r"(^|/)(tests|student_template|notebooks|\.venv|__pycache__|\.git)/"
                                               r"|\.(pyc|ipynb)$|^(benchmarks|dist|out|runs)/", n)]
    assert forbidden == []
    assert {n.split("/")[2] for n in names if n.startswith("autograder/assignments/")} == {PART1}
    # Part 1's cases need part1 (and what solution/__init__ imports), not the fine-tuning runner.
    assert not any(n.startswith(("solution/finetune/", "solution/written")) for n in names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert requirements == (ROOT / "requirements.txt").read_text()


def test_each_build_ships_a_fresh_secret_and_leaves_the_repository_alone(checked_zip, tmp_path):
    repo_secret = ROOT / "autograder/assignments" / PART1 / "secret"
    before = repo_secret.read_bytes() if repo_secret.exists() else None
    again = build.build(PART1, tmp_path, check=False, log=lambda message: None)
    secrets = [zipfile.ZipFile(z).read(f"autograder/assignments/{PART1}/secret").decode().strip()
               for z in (checked_zip, again)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in secrets)
    assert secrets[0] != secrets[1]
    assert (repo_secret.read_bytes() if repo_secret.exists() else None) == before


def fake_grade(scores: dict[str, float]):
    """grade() stand-in: the reference and the template score as given (per 2-point test)."""
    def grade(path, results_path, assignment_name=None, log=print, limits=None):
        score = scores["reference" if "solution" in path.parts else "template"]
        tests = [{"name": f"case {i}", "number": f"1.{i}", "score": min(2.0, max(0.0, score - 2 * i)),
                  "max_score": 2.0, "status": "passed", "output": "why"} for i in range(20)]
        return {"score": score, "output": "summary", "tests": tests}
    return grade


@pytest.mark.parametrize("scores, culprit", [({"reference": 38, "template": 0}, "reference"),
                                             ({"reference": 40, "template": 2}, "template")])
def test_the_build_refuses_a_reference_below_full_marks_or_a_template_above_zero(monkeypatch, tmp_path, scores,
                                                                                culprit):
    monkeypatch.setattr(build, "grade", fake_grade(scores))
    with pytest.raises(build.BuildError, match=f"the {culprit} notebook .* scores {scores[culprit]:g}/40"):
        build.build(PART1, tmp_path, log=lambda message: None)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(build, "grade", fake_grade({"reference": 40, "template": 0}))
    assert build.build(PART1, tmp_path, log=lambda message: None).is_file()


def test_the_cli_reports_a_refused_build(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(build, "grade", fake_grade({"reference": 12, "template": 0}))
    assert cli.main(["build", "--assignment", PART1, "-o", str(tmp_path)]) == 1
    assert "build failed: refusing to build hw4_part1" in capsys.readouterr().err
    assert cli.main(["build", "--assignment", "no_such_assignment", "-o", str(tmp_path)]) == 1
    assert "unknown assignment 'no_such_assignment'" in capsys.readouterr().err


def test_requirements_must_all_be_pinned(tmp_path):
    loose = tmp_path / "requirements.txt"
    loose.write_text("# comment\ntorch==2.13.0\nnumpy>=2  # not pinned\n\npytest==9.2.0\n")
    with pytest.raises(build.BuildError, match=r"not pinned: \['numpy>=2'\]"):
        build.pinned_requirements(loose)
    loose.write_text("torch==2.13.0+cpu\nnbformat==5.11.1\n")
    assert build.pinned_requirements(loose) == loose.read_text()


def test_reference_modules_follow_imports_transitively_and_skip_the_rest(monkeypatch, tmp_path):
    files = {
        "autograder/assignments/demo/__init__.py": "",
        "autograder/assignments/demo/reference.py": "import torch\nfrom refpkg.sub import thing\n",
        "refpkg/__init__.py": "",
        "refpkg/sub/__init__.py": "from .helper import thing\nfrom . import other\n",
        "refpkg/sub/helper.py": "from ..base import BASE\nthing = BASE\n",
        "refpkg/sub/other.py": "",
        "refpkg/base.py": "BASE = 1\n",
        "refpkg/unused.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(build, "ROOT", tmp_path)
    monkeypatch.setattr(build, "ASSIGNMENTS", tmp_path / "autograder/assignments")
    demo = Assignment("demo", "demo", (), lambda notebook, seeds: [], reference_paths=("refpkg",))
    found = {p.relative_to(tmp_path).as_posix() for p in build.reference_modules(demo)}
    assert found == {"refpkg/__init__.py", "refpkg/sub/__init__.py", "refpkg/sub/helper.py", "refpkg/sub/other.py",
                     "refpkg/base.py"}
    (tmp_path / "autograder/assignments/demo/reference.py").write_text("import refpkg.missing\n")
    with pytest.raises(build.BuildError, match="imports `refpkg.missing`"):
        build.reference_modules(demo)


def unzip_as_gradescope(archive: Path, root: Path) -> Path:
    """source/ holds the zip, as on Gradescope; its venv is this one (setup.sh is tested in test_setup_sh.py)."""
    source = root / "source"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(source)
    for name in ("setup.sh", "run_autograder"):  # extractall drops permission bits
        (source / name).chmod(0o755)
    (source / ".venv").symlink_to(Path(sys.prefix))
    return source


@pytest.mark.slow
def test_the_unzipped_autograder_grades_like_the_golden_results(checked_zip, tmp_path):
    """Gradescope's way: run_autograder with no arguments, on an /autograder-shaped tree (AUTOGRADER_HOME)."""
    source = unzip_as_gradescope(checked_zip, tmp_path)
    rubric = {t["number"]: t["max_score"] for t in json.loads(RUBRIC.read_text())["tests"]}
    expected = {"solution": (ROOT / "solution/notebooks" / f"{PART1}.ipynb", set()),
                "template": (ROOT / "student_template" / f"{PART1}.ipynb", set(rubric))}
    expected |= {name: (CORPUS / f"{name}.ipynb", EXPECTED_FAILURES[name]) for name in WRONG}
    env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_SECRET"}
    runs = {}
    for name, (notebook, _) in expected.items():
        home = tmp_path / name  # an /autograder of its own: submission/ and results/
        (home / "submission").mkdir(parents=True)
        (home / "results").mkdir()
        shutil.copy(notebook, home / "submission" / f"{PART1}.ipynb")
        runs[name] = subprocess.Popen([str(source / "run_autograder")], env={**env, "AUTOGRADER_HOME": str(home)},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, (_, failing) in expected.items():
        output, _ = runs[name].communicate(timeout=600)
        assert runs[name].returncode == 0, output
        results = json.loads((tmp_path / name / "results" / "results.json").read_text())
        assert {t["number"] for t in results["tests"] if t["status"] == "failed"} == failing, name
        assert results["score"] == sum(rubric.values()) - sum(rubric[n] for n in failing), name
        staff = "".join(t["output"] for t in results["tests"] if t.get("visibility") == "hidden")
        assert "development secret" not in staff  # the zip's own secret seeded the hidden inputs
    engine = subprocess.run([str(source / ".venv/bin/python"), "-c", "import autograder; print(autograder.__file__)"],
                            cwd=source, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(engine) == source / "autograder/__init__.py"  # run_autograder runs from its own tree
