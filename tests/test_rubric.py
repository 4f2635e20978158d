"""rubric.yml, the single source of points: validated against autograder/rubric_schema.json, one row per case
and one case per row, checked by the build before anything is graded or zipped."""

import textwrap
import types

import pytest

from autograder.staff import build
from autograder.assignment import assignment_names, load_assignment
from autograder.errors import BuildError, RubricError
from autograder.rubric import Row, case_numbers, check_matches, load_rubric


def rubric_file(tmp_path, text: str):
    path = tmp_path / "rubric.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_rubric_reads_as_rows_with_defaults(tmp_path):
    path = rubric_file(tmp_path, """
        tests:
          - {number: "1.1", weight: 2, visibility: hidden, name: "Forward"}
          - {number: "1.2", weight: 0.5}
        """)
    assert load_rubric(path) == {"1.1": Row(2.0, "hidden", "Forward"), "1.2": Row(0.5, "visible", "")}


@pytest.mark.parametrize("text, message", [
    ('tests:\n  - {number: "1.1", weight: 2, points: 3}\n', "Additional properties are not allowed ('points'"),
    ('tests:\n  - {number: "1.1", weight: 2}\nextra: 1\n', "Additional properties are not allowed ('extra'"),
    ('tests:\n  - {weight: 2}\n', "'number' is a required property"),
    ('tests:\n  - {number: "1.1"}\n', "'weight' is a required property"),
    ('tests:\n  - {number: 1.1, weight: 2}\n', "1.1 is not of type 'string'"),
    ('tests:\n  - {number: "1.1", weight: -1}\n', "-1 is less than the minimum of 0"),
    ('tests:\n  - {number: "1.1", weight: 2, visibility: secret}\n', "'secret' is not one of"),
    ('tests: []\n', "should be non-empty"),
    ('tests:\n  - {number: "1.1", weight: 2}\n  - {number: "1.1", weight: 1}\n', "1.1 appear more than once"),
    ('tests: [unclosed\n', "cannot read the rubric"),
])
def test_an_invalid_rubric_fails_loudly_naming_the_problem(tmp_path, text, message):
    with pytest.raises(RubricError, match="rubric.yml") as raised:
        load_rubric(rubric_file(tmp_path, text))
    assert message in str(raised.value)


def test_a_missing_rubric_fails_loudly(tmp_path):
    with pytest.raises(RubricError, match="cannot read the rubric"):
        load_rubric(tmp_path / "rubric.yml")


def _cases(**functions) -> types.ModuleType:
    module = types.ModuleType("fake_cases")
    for name, number in functions.items():
        def case(submission):
            pass
        if number:
            case.__number__ = number
        setattr(module, name, case)
    return module


def test_cases_and_rows_must_match_one_to_one():
    rubric = {"1.1": Row(1.0), "1.2": Row(1.0)}
    check_matches(rubric, case_numbers(_cases(test_a="1.1", test_b="1.2")), "here")
    with pytest.raises(RubricError, match=r"cases without a rubric row: \['1.3'\]"):
        check_matches(rubric, ["1.1", "1.2", "1.3"], "here")
    with pytest.raises(RubricError, match=r"rubric rows without a case: \['1.2'\]"):
        check_matches(rubric, ["1.1"], "here")
    with pytest.raises(RubricError, match=r"cases numbered twice: \['1.1'\]"):
        check_matches(rubric, ["1.1", "1.1", "1.2"], "here")
    with pytest.raises(RubricError, match="test_b without @number"):
        case_numbers(_cases(test_a="1.1", test_b=""))


@pytest.mark.parametrize("name", assignment_names())
def test_every_assignments_rubric_matches_its_cases(name):
    build.check_rubric(load_assignment(name))


def test_the_build_refuses_a_rubric_that_misses_a_case(tmp_path, monkeypatch):
    assignment = load_assignment("hw4_part1")
    rows = load_rubric(assignment.folder / "rubric.yml")
    monkeypatch.setattr(build, "load_rubric", lambda path: {n: r for n, r in rows.items() if n != "5.6"})
    with pytest.raises(BuildError, match=r"refusing to build hw4_part1: .*cases without a rubric row: \['5.6'\]"):
        build.build("hw4_part1", tmp_path, check=False, log=lambda message: None)
    assert not list(tmp_path.iterdir())  # nothing written
