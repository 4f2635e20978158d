"""Written 1.1: every closed form of the key against autograd at random points (inactive ReLU units and other
shapes included), the Wengert list against the network, (h)'s numbers, and mutated formulas that must be caught."""

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from solution.answer_key import formulas, numbers, wengert
from solution.answer_key.formulas import QUESTIONS, Factor, IndexForm, Point

PROPERTY = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def points(draw) -> Point:
    """A random network and sample; each hidden unit is made active or inactive by choice (never at q = 0)."""
    d, h1, h2 = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    active = torch.tensor(draw(st.lists(st.booleans(), min_size=h1, max_size=h1)))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    W1, W2 = torch.randn(h1, d, generator=gen, dtype=torch.float64), torch.randn(h2, h1, generator=gen,
                                                                                   dtype=torch.float64)
    x, y, b2 = (torch.randn(n, generator=gen, dtype=torch.float64) for n in (d, h2, h2))
    margin = 0.1 + torch.rand(h1, generator=gen, dtype=torch.float64)
    b1 = -(W1 @ x) + torch.where(active, margin, -margin)  # q = +-margin: the unit's state is the drawn one
    return Point(W1=W1, b1=b1, W2=W2, b2=b2, x=x, y=y)


def agrees_with_autograd(question: str, form, pt: Point) -> bool:
    param = QUESTIONS[question].param
    got, want = form(pt), formulas.autograd_grads(pt)[param]
    return got.shape == want.shape and torch.allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("question", sorted(QUESTIONS))
@pytest.mark.parametrize("form", ["chain", "result", "matrix"])
@PROPERTY
@given(pt=points())
def test_closed_form_equals_autograd(question, form, pt):
    """Each form the key prints (index form with the deltas, deltas summed out, matrix form) is autograd's."""
    assert agrees_with_autograd(question, getattr(QUESTIONS[question], form), pt)


def test_the_key_prints_the_index_forms_the_code_computes():
    # Written by hand from the derivation: what a TA reads in the key for (c).
    c = QUESTIONS["c"]
    assert c.chain.latex() == (r"\sum_k \sum_m \sum_n 2(p_k - y_k)\, W^{(2)}_{km}\, \delta_{mn}\, "
                               r"\mathbb{1}[q_n > 0]\, \delta_{ni}\, x_j")
    assert c.result.latex() == r"\sum_k 2(p_k - y_k)\, W^{(2)}_{ki}\, \mathbb{1}[q_i > 0]\, x_j"
    assert QUESTIONS["a"].result.latex() == r"2(p_k - y_k)\, h_l"


def test_points_include_inactive_units_and_other_shapes():
    seen = {"inactive": False, "shapes": set()}

    @PROPERTY
    @given(pt=points())
    def collect(pt):
        q = formulas.forward(pt)["q"]
        seen["inactive"] |= bool((q < 0).any())
        seen["shapes"].add((pt.W1.shape[1], pt.W1.shape[0], pt.W2.shape[0]))
    collect()
    assert seen["inactive"] and len(seen["shapes"]) > 5


def _mutants():
    mask = formulas.relu_mask
    def no_mask(pt):  # (c) without the ReLU derivative
        f = formulas.forward(pt)
        return torch.outer(pt.W2.T @ (2 * (f["p"] - pt.y)), pt.x)
    def W2_not_transposed(pt):  # W2 where W2^T belongs (only the shape of square W2 lets it run)
        f = formulas.forward(pt)
        return torch.outer((pt.W2 @ (2 * (f["p"] - pt.y))) * mask(f["q"]), pt.x)
    def no_factor_2(pt):
        f = formulas.forward(pt)
        return torch.outer((pt.W2.T @ (f["p"] - pt.y)) * mask(f["q"]), pt.x)
    def h_instead_of_mask(pt):  # h where 1[q > 0] belongs
        f = formulas.forward(pt)
        return torch.outer((pt.W2.T @ (2 * (f["p"] - pt.y))) * f["h"], pt.x)
    chain = QUESTIONS["c"].chain
    # The key's printed index form, edited: the ReLU factor deleted, or W2's indices swapped (W2_{mk}).
    chain_without_relu = IndexForm(chain.output, tuple(f for f in chain.factors if "mathbb" not in f.latex))
    chain_W2_swapped = IndexForm(chain.output, tuple(
        Factor(f.indices[::-1], f.latex, f.value) if "W^{(2)}" in f.latex else f for f in chain.factors))
    named = {f.__name__: f for f in (no_mask, W2_not_transposed, no_factor_2, h_instead_of_mask)}
    named |= {"printed_chain_without_relu": chain_without_relu, "printed_chain_W2_indices_swapped": chain_W2_swapped}
    return [pytest.param(f, id=name) for name, f in named.items()]


@pytest.mark.parametrize("mutant", _mutants())
def test_a_mutated_formula_fails_the_property_test(mutant):
    """The property test is not vacuous: each wrong (c), in code or as the key prints it, is caught."""
    @settings(PROPERTY, phases=[Phase.generate])
    @given(pt=points())
    def property_test(pt):
        try:
            ok = agrees_with_autograd("c", mutant, pt)
        except RuntimeError:  # a shape error on non-square W2 is a failure too
            ok = False
        assert ok
    with pytest.raises(AssertionError):
        property_test()


@PROPERTY
@given(pt=points())
def test_wengert_list_executed_equals_the_network(pt):
    values, net = wengert.execute(pt), formulas.forward(pt)
    for name in ("q", "h", "p", "L"):
        assert torch.equal(values[name], net[name])


@PROPERTY
@given(pt=points())
def test_each_backward_function_equals_its_symbolic_result(pt):
    grads = wengert.backward(wengert.execute(pt))
    auto = formulas.autograd_grads(pt)
    for question, q in QUESTIONS.items():
        param = q.param
        bw = next(b for b in wengert.BACKWARD if b.wrt == param)
        assert bw.equals == f"({question})"
        assert torch.allclose(grads[param], q.matrix(pt), rtol=1e-12, atol=1e-12)
        assert torch.allclose(grads[param], auto[param], rtol=1e-10, atol=1e-10)


def test_wengert_list_shape_matches_the_question():
    assert [s.output for s in wengert.WENGERT] == ["q", "h", "p", "L"]
    assert [len(s.inputs) for s in wengert.WENGERT] == [3, 1, 3, 2]  # steps 1 and 3 take 3 inputs


@PROPERTY
@given(pt=points(), lr=st.floats(1e-4, 1.0))
def test_sgd_update_is_one_step_of_gradient_descent_on_autograd(pt, lr):
    want = pt.W1 - lr * formulas.autograd_grads(pt)["W1"]
    assert torch.allclose(formulas.sgd_update_W1(pt, lr), want, rtol=1e-10, atol=1e-10)


def test_h_reads_the_handout_answers():
    # The handout's answer (HW4_INTERFACE.md), computed here by hand: q = [66, 53], p - y = [943, 1214, 933],
    # W2^T 2(p - y) = [51,366, 57,768], times x_1 = 2.
    assert numbers.h_answers() == {"L": 3_233_534, "dL/dW1[1,1]": 102_732, "dL/db1[2]": 57_768}
    steps = {symbol: value for symbol, _, value in numbers.h_steps()}
    assert steps["q"] == [66, 53] and steps["p - y"] == [943, 1214, 933]


def test_h_catches_a_dropped_relu_where_a_unit_is_inactive():
    """At the handout's point both units are active, so a dropped ReLU gives the same numbers there; the property
    test above is what catches it. Made inactive, unit 2's gradient must vanish."""
    pt = numbers.handout_point()
    pt = Point(W1=pt.W1, b1=torch.tensor([4.0, -100.0], dtype=torch.float64), W2=pt.W2, b2=pt.b2, x=pt.x, y=pt.y)
    assert QUESTIONS["d"].matrix(pt)[1] == 0 == formulas.autograd_grads(pt)["b1"][1]


def test_legacy_entry_point_still_prints_h(capsys):
    from solution import written
    written.main()
    out = capsys.readouterr().out
    assert "102,732" in out and "57,768" in out and "3,233,534" in out
