"""The comparison helpers behind every graded case: they find the first differing step, and only it."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks import assert_close, assert_same_steps, first_divergence

rows = st.lists(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=3), min_size=1, max_size=40)


@given(rows)
def test_identical_steps_never_diverge(expected):
    assert first_divergence([list(r) for r in expected], expected, 1e-3, 1e-4) is None


@given(rows, st.data())
def test_the_first_changed_step_is_the_one_reported(expected, data):
    index = data.draw(st.integers(0, len(expected) - 1))
    got = [list(r) for r in expected]
    got[index][data.draw(st.integers(0, 2))] += 1.0 + abs(max(expected[index], key=abs)) * 0.01
    assert first_divergence(got, expected, 1e-3, 1e-4) == index


def test_missing_steps_and_non_numbers_diverge():
    assert first_divergence([[1.0]], [[1.0], [2.0]], 1e-3, 1e-4) == 1
    assert first_divergence([[math.nan]], [[1.0]], 1e-3, 1e-4) == 0
    assert first_divergence([["1.0"]], [[1.0]], 1e-3, 1e-4) == 0


def test_messages_name_the_step_and_both_values():
    with pytest.raises(AssertionError) as error:
        assert_same_steps([[1, 2], [3, 5]], [[1, 2], [3, 4]], "Two steps", lambda r: f"x = {r}")
    assert "step 2 of 2" in str(error.value) and "expected x = [3, 4]" in str(error.value)
    with pytest.raises(AssertionError, match="stopped at step 2 with `ZeroDivisionError`"):
        assert_same_steps([[1, 2]], [[1, 2], [3, 4]], "Two steps", str, error="ZeroDivisionError")
    with pytest.raises(AssertionError, match=r"expected `0.5`, got `\[0.25\]`"):
        assert_close([0.25], 0.5, "a value")
    assert_close([1.0, 2.0], [1.0, 2.00001], "close enough")
