"""run_autograder's one error boundary: the staff's bad input is a clear message and exit 2, a refused build
exit 1, and a bug stays a bug (its exception and traceback reach the caller)."""

import pytest

from autograder.staff import batch, cli
from autograder.errors import InputError


def test_bad_input_is_a_message_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "no such folder"
    assert cli.main(["--submissions", str(missing), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 2
    assert f"batch failed: {missing} is not a folder of submissions" in capsys.readouterr().err


def test_an_unknown_assignment_is_bad_input(tmp_path, capsys):
    (tmp_path / "a.ipynb").write_text("{}")
    assert cli.main(["--submissions", str(tmp_path), "--assignment", "hw9", "--out", str(tmp_path / "o")]) == 2
    assert "unknown assignment 'hw9'" in capsys.readouterr().err


def test_a_bug_is_not_reported_as_bad_input(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug in the batch, not the TA's input")

    monkeypatch.setattr(batch, "grade_all", broken)
    with pytest.raises(ValueError, match="a bug in the batch"):
        cli.main(["--submissions", str(tmp_path), "--out", str(tmp_path / "out")])
    monkeypatch.setattr(batch, "grade_all", lambda *a, **k: (_ for _ in ()).throw(InputError("a bad zip")))
    assert cli.main(["--submissions", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
