"""The Gradescope zip: what it holds, that it refuses a bad reference, and that it grades once unzipped."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.staff import build, bundle, cli
from autograder.assignment import DEV_SECRET, Assignment, load_assignment, secret_variable
from autograder.config import GraderConfig, from_environment

ROOT = Path(__file__).resolve().parent.parent
PART1 = "hw4_part1"
CORPUS = ROOT / "tests/submissions" / PART1
RUBRIC = ROOT / "tests/golden" / f"{PART1}_rubric.json"
WRONG = ("adam_no_bias_correction", "sgd_full_batch")  # expected failures from tests/test_corpus.py


@pytest.fixture(scope="module")
def checked_zip(tmp_path_factory) -> Path:
    """Built as a TA builds it: the reference and the template graded first."""
    return build.build(PART1, tmp_path_factory.mktemp("dist"), log=lambda message: None)


@pytest.fixture
def no_secret(monkeypatch):
    """No secret set anywhere (as on a fresh clone), and no rubric override."""
    for variable in (secret_variable(PART1), "AUTOGRADER_SECRET", "AUTOGRADER_RUBRIC"):
        monkeypatch.delenv(variable, raising=False)
    if (ROOT / "autograder/assignments" / PART1 / "secret").exists():
        pytest.skip("this checkout has a secret file for hw4_part1")


def _unchecked(out: Path, name: str = PART1, **kwargs) -> Path:
    """Built as the staff's CLI builds it: with the environment's configuration."""
    return build.build(name, out, check=False, log=lambda message: None, config=from_environment(), **kwargs)


def _secret(archive: Path, name: str = PART1) -> str:
    return zipfile.ZipFile(archive).read(f"autograder/assignments/{name}/secret").decode().strip()


def test_the_zip_holds_the_entry_points_engine_assignment_and_reference_only(tmp_path):
    built = _unchecked(tmp_path)
    assert built.name == f"{PART1}_autograder.zip"
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 & 0o777 for info in archive.infolist()}
        requirements = archive.read("requirements.txt").decode()
    for required in ("setup.sh", "run_autograder", "requirements.txt", "autograder/grade.py",
                     "autograder/sandbox.py", "autograder/results_schema.json", "autograder/cases.ini",
                     f"autograder/assignments/{PART1}/cases.py",
                     f"autograder/assignments/{PART1}/probes.py", f"autograder/assignments/{PART1}/secret",
                     "solution/__init__.py", "solution/part1.py"):
        assert required in names
    # the engine's subpackages ship too (the sandbox's own code may live in one), the staff's tools do not
    assert {n for n in names if n.count("/") == 2 and n.startswith("autograder/") and n.endswith(".py")
            and not n.startswith("autograder/assignments/")} == {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "autograder").glob("*/*.py")
        if p.parent.name not in ("assignments", "staff")}
    assert not [n for n in names if n.startswith("autograder/staff/")]
    assert "autograder/cli.py" in names and "autograder/__main__.py" in names  # `python -m autograder` grades
    forbidden = [n for n in names if re.search(r"(^|/)(tests|student_template|notebooks|\.venv|__pycache__|\.git)/"
                                               r"|\.(pyc|ipynb)$|^(benchmarks|dist|out|runs)/", n)]
    assert forbidden == []
    assert {n.split("/")[2] for n in names if n.startswith("autograder/assignments/")} == {PART1}
    # Part 1's cases need part1 (and what solution/__init__ imports), not the fine-tuning runner.
    assert not any(n.startswith(("solution/finetune/", "solution/written")) for n in names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert modes[f"autograder/assignments/{PART1}/secret"] == 0o600
    assert requirements == build.shipped_requirements(load_assignment(PART1))  # its pins: tests/test_image.py


def test_without_a_kept_secret_each_build_ships_a_fresh_one_and_leaves_the_repository_alone(tmp_path, no_secret):
    repo_secret = ROOT / "autograder/assignments" / PART1 / "secret"
    logged = []
    first = build.build(PART1, tmp_path / "a", check=False, log=logged.append)
    secrets = [_secret(first), _secret(_unchecked(tmp_path / "b"))]
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in secrets)
    assert secrets[0] != secrets[1]
    assert any("secret: fresh: keep this zip" in line for line in logged)
    assert not repo_secret.exists()


def test_secret_from_keeps_the_uploaded_zips_secret(tmp_path, no_secret, monkeypatch):
    old = _unchecked(tmp_path / "old")
    monkeypatch.setenv(secret_variable(PART1), "set here, but the zip's wins")
    logged = []
    new = build.build(PART1, tmp_path / "new", check=False, log=logged.append, secret_from=old,
                      config=from_environment())
    assert _secret(new) == _secret(old) and f"secret: kept from {old}" in logged
    assert _secret(_unchecked(tmp_path / "old", secret_from=old)) == _secret(new)  # rebuilt in place, kept


def test_the_assignments_own_secret_variable_comes_before_the_shared_one(tmp_path, no_secret, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SECRET", "shared by every part")
    logged = []
    built = build.build(PART1, tmp_path / "a", check=False, log=logged.append, config=from_environment())
    assert _secret(built) == "shared by every part"
    assert "secret: from $AUTOGRADER_SECRET" in logged
    monkeypatch.setenv(secret_variable(PART1), "part 1's own")
    assert secret_variable(PART1) == "AUTOGRADER_SECRET_HW4_PART1"
    assert _secret(_unchecked(tmp_path / "b")) == "part 1's own"
    assert load_assignment(PART1).secret(from_environment()) == ("part 1's own", False)  # what grading reads


def test_secret_from_refuses_a_zip_of_another_assignment_or_without_a_secret(tmp_path, no_secret):
    other = _unchecked(tmp_path / "part2", "hw4_part2")
    with pytest.raises(build.BuildError, match="is the zip of hw4_part2, not of hw4_part1"):
        _unchecked(tmp_path / "out", secret_from=other)
    stripped = tmp_path / "stripped.zip"
    with zipfile.ZipFile(_unchecked(tmp_path / "part1")) as source, zipfile.ZipFile(stripped, "w") as target:
        for name in source.namelist():
            if not name.endswith("/secret"):
                target.writestr(name, source.read(name))
    with pytest.raises(build.BuildError, match="holds no secret for hw4_part1"):
        _unchecked(tmp_path / "out", secret_from=stripped)
    (tmp_path / "notes.txt").write_text("not a zip")
    with pytest.raises(build.BuildError, match="cannot keep the secret: cannot read the zip"):
        _unchecked(tmp_path / "out", secret_from=tmp_path / "notes.txt")
    assert not (tmp_path / "out").exists()


def test_the_development_secret_is_never_shipped(tmp_path, no_secret, monkeypatch):
    monkeypatch.setenv(secret_variable(PART1), DEV_SECRET)
    with pytest.raises(build.BuildError, match="development secret"):
        _unchecked(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_zip_is_written_0600(tmp_path, no_secret):
    stale = tmp_path / f"{PART1}_autograder.zip.partial"  # left by an interrupted build
    stale.write_text("")
    stale.chmod(0o644)
    umask = os.umask(0)
    try:
        built = _unchecked(tmp_path)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(built.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [built.name]
    assert zipfile.ZipFile(built).testzip() is None


def test_the_build_grades_with_the_secret_and_rubric_it_ships(monkeypatch, tmp_path, no_secret):
    """The gate passes grade() a configuration of its own; it never writes os.environ for grade() to read."""
    seen, sandboxes = [], []
    graded = fake_grade({"reference": 40, "template": 0})
    assignment = load_assignment(PART1)

    def grade(path, *args, config, **kwargs):
        seen.append((assignment.secret(config)[0], assignment.rubric_path(config), dict(os.environ)))
        sandboxes.append((path.parent.name, config.disabled))
        return graded(path, *args, **kwargs)
    monkeypatch.setattr(build, "grade", grade)
    staff = GraderConfig(rubric=tmp_path / "a rubric that does not ship.yml", disabled=frozenset({"cgroups"}))
    environ = dict(os.environ)
    built = build.build(PART1, tmp_path / "dist", log=lambda message: None, config=staff)
    # Both notebooks in both sandboxes, the shipped secret, the folder's rubric, the environment untouched.
    assert seen == [(_secret(built), assignment.folder / "rubric.yml", environ)] * 4
    assert sandboxes == [("notebooks", {"cgroups"}), ("student_template", {"cgroups"}),  # full sandbox, then fallback
                         ("notebooks", {"cgroups", "bwrap"}), ("student_template", {"cgroups", "bwrap"})]
    assert dict(os.environ) == environ


def test_the_cli_keeps_a_secret(monkeypatch, tmp_path, no_secret, capsys):
    monkeypatch.setattr(build, "grade", fake_grade({"reference": 40, "template": 0}))
    old = _unchecked(tmp_path / "old")
    assert cli.main(["build", "--assignment", PART1, "-o", str(tmp_path / "new"), "--secret-from", str(old)]) == 0
    assert _secret(tmp_path / "new" / old.name) == _secret(old)
    assert f"secret: kept from {old}" in capsys.readouterr().out
    assert cli.main(["build", "--assignment", PART1, "-o", str(tmp_path / "x"), "--secret-from", "missing.zip"]) == 1
    assert "build failed: cannot keep the secret" in capsys.readouterr().err


def fake_grade(scores: dict[str, float]):
    """grade() stand-in: the reference and the template score as given (per 2-point test)."""
    def grade(path, results_path, assignment_name=None, log=print, limits=None, config=None):
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
    monkeypatch.setattr(bundle, "ROOT", tmp_path)
    monkeypatch.setattr(bundle, "ASSIGNMENTS", tmp_path / "autograder/assignments")
    demo = Assignment("demo", "demo", (), lambda notebook, seeds: [], reference_paths=("refpkg",))
    found = {p.relative_to(tmp_path).as_posix() for p in bundle.reference_modules(demo)}
    assert found == {"refpkg/__init__.py", "refpkg/sub/__init__.py", "refpkg/sub/helper.py", "refpkg/sub/other.py",
                     "refpkg/base.py"}
    (tmp_path / "autograder/assignments/demo/reference.py").write_text("import refpkg.missing\n")
    with pytest.raises(build.BuildError, match="imports `refpkg.missing`"):
        bundle.reference_modules(demo)


def unzip_as_gradescope(archive: Path, root: Path) -> Path:
    """source/ holds the zip, as on Gradescope; its venv is this one (setup.sh is tested in test_setup_sh.py)."""
    source = root / "source"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(source)
    for name in ("setup.sh", "run_autograder"):  # extractall drops permission bits
        (source / name).chmod(0o755)
    (source / ".venv").symlink_to(Path(sys.prefix))
    return source


@pytest.mark.integration
def test_the_unzipped_autograder_grades_like_the_golden_results(checked_zip, tmp_path):
    """Gradescope's way: run_autograder with no arguments, on an /autograder-shaped tree (AUTOGRADER_HOME)."""
    source = unzip_as_gradescope(checked_zip, tmp_path)
    rubric = {t["number"]: t["max_score"] for t in json.loads(RUBRIC.read_text())["tests"]}
    expected = {"solution": (ROOT / "solution/notebooks" / f"{PART1}.ipynb", (set(), set())),
                "template": (ROOT / "student_template" / f"{PART1}.ipynb", (set(rubric), set(rubric)))}
    from tests.test_corpus import EXPECTED_FAILURES  # here: the unit tests above need no corpus
    expected |= {name: (CORPUS / f"{name}.ipynb", EXPECTED_FAILURES[name]) for name in WRONG}
    # as on Gradescope: no secret or rubric from the environment, only the zip's own
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_SECRET", "AUTOGRADER_RUBRIC"))}
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
        failed = {t["number"] for t in results["tests"] if t["status"] == "failed"}
        must, may = failing
        assert must <= failed <= may, (name, failed, results["output"], [t["output"] for t in results["tests"]][:2],
                                        [t["output"] for t in results["tests"] if t["name"].startswith("Grader log")])
        assert results["score"] == sum(rubric.values()) - sum(rubric[n] for n in failed), name
        staff = "".join(t["output"] for t in results["tests"] if t.get("visibility") == "hidden")
        assert "development secret" not in staff  # the zip's own secret seeded the hidden inputs
    engine = subprocess.run([str(source / ".venv/bin/python"), "-c", "import autograder; print(autograder.__file__)"],
                            cwd=source, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(engine) == source / "autograder/__init__.py"  # run_autograder runs from its own tree
