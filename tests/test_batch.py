"""Batch grading: layouts, Gradescope's metadata, statuses, isolation of failures, reruns, the CSV reports."""

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import batch, cli
from autograder.assignment import load_assignment
from autograder.grade import _summary, grade
from autograder.notebook import load_notebook
from autograder.results import build_results, failure_results
from autograder.sandbox import WorkerRun, _parse_reply
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


def test_metadata_gives_each_submission_its_submitters(tmp_path):
    path = tmp_path / "submission_metadata.yml"
    ruby_tagged = "submission_104:\n  :submitters:\n  - :name: Tagged\n    :score: !ruby/object:BigDecimal 18:0.4E2\n"
    path.write_text(METADATA + ruby_tagged)
    found = batch.read_metadata(path)
    S = batch.Submitter
    assert found == {"submission_101": (S("Ada Lovelace", "ada@example.edu", "1815"),),
                     "submission_102": (S("O'Brien, Pat", "pat@example.edu", "2001"),
                                        S("Chris 'CJ' Jones", "cj@example.edu")),
                     "submission_103": (), "submission_104": (S("Tagged"),)}


def test_metadata_parser_agrees_with_yaml(tmp_path):
    yaml = pytest.importorskip("yaml")
    (tmp_path / "m.yml").write_text(METADATA)
    oracle = {key: tuple(batch.Submitter(p.get(":name", ""), p.get(":email", ""), p.get(":sid", ""))
                         for p in value[":submitters"]) for key, value in yaml.safe_load(METADATA).items()}
    assert batch.read_metadata(tmp_path / "m.yml") == oracle


def test_discover_reads_both_layouts(tmp_path):
    plain = tmp_path / "plain"
    for name in ("zoe.ipynb", "a.ipynb", "a/work.ipynb", ".hidden.ipynb", "notes.txt", "__pycache__/x.ipynb"):
        (plain / name).parent.mkdir(parents=True, exist_ok=True)
        (plain / name).write_text("{}")
    assert [(e.key, e.path.name) for e in batch.discover(plain)] == [("a", "a"), ("a.ipynb", "a.ipynb"),
                                                                     ("zoe", "zoe.ipynb")]
    export = tmp_path / "export"
    (export / "submission_101").mkdir(parents=True)
    (export / "submission_999").mkdir()
    (export / "submission_metadata.yml").write_text(METADATA)
    entries = {e.key: e for e in batch.discover(export)}
    assert sorted(entries) == ["submission_101", "submission_102", "submission_103", "submission_999"]
    assert entries["submission_101"].submitters[0].email == "ada@example.edu"
    assert not entries["submission_102"].path.exists()  # listed, not exported: graded as an empty submission
    assert entries["submission_999"].submitters == ()
    with pytest.raises(ValueError, match="no submissions"):
        batch.discover((tmp_path / "empty").mkdir() or tmp_path / "empty")


def _without_reply(**run) -> dict:
    """results.json as grade.py writes it when the sandbox gave no reply, built with the engine's own wording."""
    worker = WorkerRun(None, **run)
    worker.problem = _parse_reply(b"", worker)[1]
    summary = _summary(load_notebook(SOLUTION), load_assignment("hw4_part1"), worker, [])
    return build_results([], summary, 1.0)


def test_status_comes_from_the_engine_results(tmp_path):
    assert batch.status_of(_without_reply(timed_out=True), 0) == (
        "timeout", "the notebook did not finish within the time limit")
    assert batch.status_of(_without_reply(memory_exceeded=True), 0) == ("crashed", "the notebook ran out of memory")
    assert batch.status_of(_without_reply(returncode=-9), 0)[0] == "crashed"
    restarted = WorkerRun({"cells": [], "events": ["kernel_restarted"]})
    ok = build_results([], _summary(load_notebook(SOLUTION), load_assignment("hw4_part1"), restarted, []), 1.0)
    assert batch.status_of(ok, 0) == ("ok", "kernel restarted")
    assert batch.status_of(failure_results("oops", "trace", 1.0), 0)[0] == "crashed"
    (tmp_path / "bad.ipynb").write_text("not json")
    invalid = grade(tmp_path / "bad.ipynb", tmp_path / "r.json", "hw4_part1", log=lambda message: None)
    assert batch.status_of(invalid, 0)[0] == "invalid" and "not JSON" in batch.status_of(invalid, 0)[1]
    assert batch.status_of(None, 1) == ("crashed", "the grader exited with status 1 and left no valid results.json")
    assert batch.status_of(None, None, timed_out=True)[0] == "timeout"
    assert batch.status_of({"score": 3, "tests": [], "extra_data": {"status": "invalid", "detail": "x"}}, 0) == (
        "invalid", "x")


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

for line in sys.stdin:  # autograder.batch_worker's protocol
    job = json.loads(line)
    submission, results, name = Path(job["submission"]), Path(job["results"]), Path(job["submission"]).stem
    with open(results.parent.parent / "calls.log", "a") as calls:
        calls.write(name + "\\n")
    for key, value in (("user", os.environ["AUTOGRADER_SANDBOX_USER"]), ("pid", os.getpid()),
                       ("assignment", job["assignment"]), ("others", " ".join(other_graders_users()))):
        (results.parent / key).write_text(str(value))
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
        results.write_text(json.dumps({"score": score, "output": f"Graded `{submission.name}` as X.", "tests": tests}))
    with open(job["log"], "a") as log:
        log.write(f"graded {name}\\n")
    print(json.dumps({"done": True}), flush=True)
"""


@pytest.fixture
def fake(tmp_path) -> list[str]:
    """argv of a fake grader that speaks the batch protocol: crashes, hangs or writes garbage by file name."""
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
    monkeypatch.setattr(batch, "RECYCLE_AFTER", 3)
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
import autograder.batch_worker as worker

def grade(submission, results, assignment=None, log=print):
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


@pytest.mark.slow
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
    grades = {row["submission"]: row for row in _csv(out / "grades.csv")}
    assert grades["submission_101"]["name"] == "Ada Lovelace" and grades["submission_101"]["1.3"] == "2"
    assert grades["submission_101"]["file"] == "submission_101/hw4_part1.ipynb"
    assert grades["submission_102"]["email"] == "pat@example.edu; cj@example.edu"
    assert "Nothing was submitted" in grades["submission_102"]["detail"]
    assert "not a valid notebook" in grades["submission_103"]["detail"]
    summary = {row["number"]: row for row in _csv(out / "summary.csv")}
    assert len(summary) == 24 and summary["2.15"]["full_marks"] == "1" and summary["2.15"]["graded"] == "3"
    for key in ("submission_101", "submission_102", "submission_103"):
        assert json.loads((out / key / "results.json").read_text())["tests"]


@pytest.mark.slow
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
    start = batch._Runner._start
    monkeypatch.setattr(batch._Runner, "_start", lambda self, *args: starts.append(args) or start(self, *args))
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
