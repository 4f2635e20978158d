"""The comparison helper behind the graded cases: what counts as close, and a message that says what differed."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autograder.checks import assert_close, fmt

numbers = st.floats(-1e3, 1e3, allow_nan=False)


@given(st.lists(numbers, min_size=1, max_size=20))
def test_a_value_is_close_to_itself(values):
    assert_close(list(values), values, "values")
    assert_close(values[0], values[0], "one value")


@pytest.mark.parametrize("got", [math.nan, math.inf, "1.0", True, None, [1.0], [1.0, 2.0, 3.0]])
def test_non_numbers_and_wrong_shapes_are_never_close(got):
    expected = 1.0 if not isinstance(got, list) else [1.0, 2.0]
    with pytest.raises(AssertionError):
        assert_close(got, expected, "x")


def test_the_tolerance_is_relative_plus_absolute():
    assert_close(1.0 + 0.9e-4 + 1e-5, 1.0, "x")  # within rtol·|b| + atol
    with pytest.raises(AssertionError):
        assert_close(1.0 + 1.2e-4 + 1e-5, 1.0, "x")


def test_the_message_names_the_check_both_values_rounded_and_the_hint():
    with pytest.raises(AssertionError) as raised:
        assert_close([1.0, 2.123456], [1.0, 2.0], "The weights", hint="Likely mistake: a missing factor 2.")
    assert str(raised.value) == ("The weights: expected `[1, 2]`, got `[1, 2.123]`.\n\n"
                                 "Likely mistake: a missing factor 2.")
    assert fmt(math.nan) == "nan" and fmt(0.000123456) == "0.0001235"
