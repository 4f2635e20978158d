"""The written key, 1.1 (a)-(i), as document blocks; every value comes from formulas / wengert / numbers."""

from solution.answer_key.document import Block, Heading, Math, Para, Table
from solution.answer_key.formulas import QUESTIONS, SGD_LATEX
from solution.answer_key.numbers import HANDOUT, h_answers, h_steps
from solution.answer_key.rubric import HANDOUT_POINTS, rubric_blocks
from solution.answer_key.wengert import BACKWARD, WENGERT

__all__ = ["written_blocks", "format_value"]

DEFINITIONS = {"q": r"W^{(1)} x + b^{(1)}", "h": r"\mathrm{ReLU}(q) = \max(0, q)", "p": r"W^{(2)} h + b^{(2)}",
               "L": r"(p - y)^\top (p - y)"}
NAMES = {"W1": "W^{(1)}", "W2": "W^{(2)}", "b1": "b^{(1)}", "b2": "b^{(2)}", "x": "x", "y": "y", "q": "q",
         "h": "h", "p": "p", "L": "L"}


def format_value(value) -> str:
    """Integers with thousands separators, vectors and matrices in brackets: `[[102,732, 359,562], ...]` reads
    badly, so entries are separated by '; ' inside a vector and rows by ' / '."""
    if isinstance(value, int):
        return f"{value:,}"
    if value and isinstance(value[0], list):
        return "[" + " / ".join("; ".join(f"{v:,}" for v in row) for row in value) + "]"
    return "[" + "; ".join(f"{v:,}" for v in value) + "]"


def _partial(of: str, wrt: str) -> str:
    return rf"\frac{{\partial {of}}}{{\partial {wrt}}}"


def _abcd() -> list[Block]:
    steps = {
        "a": rf"Chain rule through $p$: ${_partial('L', 'p_m')} = 2(p_m - y_m)$ and "
             rf"${_partial('p_m', 'W^{(2)}_{kl}')} = \delta_{{mk}} h_l$, so",
        "b": rf"${_partial('p_m', 'b^{(2)}_k')} = \delta_{{mk}}$, so",
        "c": rf"Through $p$, $h$ and $q$: ${_partial('p_k', 'h_m')} = W^{{(2)}}_{{km}}$, "
             rf"${_partial('h_m', 'q_n')} = \delta_{{mn}}\, \mathbb{{1}}[q_n > 0]$ (ReLU's derivative, taken as 0 "
             rf"at $q_n = 0$), ${_partial('q_n', 'W^{(1)}_{ij}')} = \delta_{{ni}}\, x_j$. So",
        "d": rf"The same chain with ${_partial('q_n', 'b^{(1)}_i')} = \delta_{{ni}}$:",
    }
    shapes = {"W2": r"\in \mathbb{R}^{H_2 \times H_1}", "b2": r"\in \mathbb{R}^{H_2}",
              "W1": r"\in \mathbb{R}^{H_1 \times D}", "b1": r"\in \mathbb{R}^{H_1}"}
    blocks: list[Block] = []
    for q, question in QUESTIONS.items():
        entry = f"{question.symbol}_{{{question.entry}}}"
        blocks += [
            Heading(3, f"({q}) $\\partial L / \\partial {question.symbol}$"),
            Para(steps[q]),
            Math(rf"{_partial('L', entry)} = {question.chain.latex()} = {question.result.latex()}"),
            Math(rf"{_partial('L', question.symbol)} = {question.matrix.latex} {shapes[question.param]}"),
        ]
    blocks.append(Para(
        r"Equivalent forms: $\mathrm{diag}(\mathbb{1}[q > 0])$ instead of $\odot$; the transposed (denominator) "
        r"layout, e.g. $x \left( \ldots \right)^\top$ for (c); the indicator as a step function or a case split. "
        r"The formulas above are printed from the code that computes them (`solution/answer_key/formulas.py`: an "
        r"einsum per index form, deltas as identity matrices), checked against autograd in `tests/test_written.py`."))
    return blocks


def _e_f_g() -> list[Block]:
    W1, W2 = NAMES["W1"], NAMES["W2"]
    steps = tuple((str(n), f"${NAMES[s.output]}$", f"${s.function}(" + ", ".join(NAMES[i] for i in s.inputs) + ")$",
                   f"${DEFINITIONS[s.output]}$") for n, s in enumerate(WENGERT, 1))
    backward = tuple((f"${bw.step}$, input ${NAMES[bw.wrt]}$", f"${bw.formula}$", bw.equals) for bw in BACKWARD)
    return [
        Heading(3, f"(e) SGD update of ${W1}$ on $(x^*, y^*)$"),
        Para(rf"Forward pass at the sample: $q^* = {W1} x^* + b^{{(1)}}$, $h^* = \mathrm{{ReLU}}(q^*)$, "
             rf"$p^* = {W2} h^* + b^{{(2)}}$; then, with learning rate $\eta$,"),
        Math(SGD_LATEX + ","),
        Para(rf"i.e. ${W1}_{{ij}} \leftarrow {W1}_{{ij}} - \eta \sum_k 2(p^*_k - y^*_k)\, {W2}_{{ki}}\, "
             rf"\mathbb{{1}}[q^*_i > 0]\, x^*_j$, all parameters updated from the same forward pass."),
        Heading(3, "(f) Wengert list"),
        Table(("step", "output", "function", "definition"), steps),
        Para("Steps 1 and 3 are the 3-input affine function $f(W, u, b) = W u + b$. Executed, the list equals "
             "the network (`solution/answer_key/wengert.py`, tested on random shapes)."),
        Heading(3, "(g) Backward functions computed directly"),
        Para(r"Writing $\bar v = \partial L / \partial v$, reverse mode needs each step's backward function for "
             r"every input on a path to a parameter, given the bar of the step's output; run from step 4 to step 1:"),
        Table(("backward function", "computes", "equals"), backward),
        Para("Not needed: the backward functions for $x$ and $y$ (data, not parameters). Each row is code in "
             "`wengert.BACKWARD`; the test asserts the rows tied to (a)-(d) equal those closed forms and autograd."),
    ]


def _h_i() -> list[Block]:
    answers = h_answers()
    point = ", ".join(f"${NAMES[k]}$ = {format_value(v)}" for k, v in HANDOUT.items())
    rows = tuple((f"${sym}$", f"${how}$" if how else "", format_value(value)) for sym, how, value in h_steps())
    return [
        Heading(3, r"(h) $\partial L / \partial W^{(1)}_{1,1}$ and $\partial L / \partial b^{(1)}_2$"),
        Para(f"At {point} (vectors as [a; b], matrix rows separated by /):"),
        Table(("quantity", "computed as", "value"), rows, align="llr"),
        Para(f"**Answers:** $\\partial L / \\partial W^{{(1)}}_{{1,1}}$ = **{answers['dL/dW1[1,1]']:,}** and "
             f"$\\partial L / \\partial b^{{(1)}}_2$ = **{answers['dL/db1[2]']:,}** (with $L$ = {answers['L']:,}); "
             "the Wengert list, the closed forms and autograd agree (`python -m solution.written`)."),
        Heading(3, "(i) Why reverse mode"),
        Para("**Model answer.** $L$ is one scalar and the parameters are many. Reverse mode runs the Wengert list "
             "forward once, keeping the intermediates, then the backward functions once in reverse, and yields "
             "$\\partial L / \\partial \\theta$ for every parameter at the cost of a small constant times one "
             "forward pass. Forward mode propagates one input direction per pass, so it needs one pass per "
             "parameter entry (here $H_1 D + H_1 + H_2 H_1 + H_2$ passes). The price of reverse mode is memory: "
             "the forward intermediates ($q$, $h$, $p$) are stored until the backward pass uses them."),
        Para("**A full-credit answer must mention:** one backward pass gives all parameter gradients (cost about "
             "that of a forward pass), against one forward-mode pass per parameter."),
    ]


def written_blocks(rubric: dict) -> list[Block]:
    net = ", ".join(f"${NAMES[o]} = {d}$" for o, d in DEFINITIONS.items())
    blocks: list[Block] = [
        Heading(2, "Written 1.1: backpropagation through a two-layer ReLU network "
                f"({sum(HANDOUT_POINTS['written'].values())} points)"),
        Para(f"Network: {net}, with $W^{{(1)}} \\in \\mathbb{{R}}^{{H_1 \\times D}}$, "
             "$W^{(2)} \\in \\mathbb{R}^{H_2 \\times H_1}$. $\\delta_{ij}$ is 1 if $i = j$ and 0 otherwise; "
             "$\\mathbb{1}[q_i > 0]$ is 1 if $q_i > 0$ and 0 otherwise. Gradients have the shape of their "
             "parameter (numerator layout); the transposed layout is accepted throughout."),
    ]
    by_question: dict[str, list[Block]] = {}
    current = None
    for block in _abcd() + _e_f_g() + _h_i():
        if isinstance(block, Heading) and block.level == 3:
            current = block.text[1]
        by_question.setdefault(current, []).append(block)
    for q in sorted(by_question):
        blocks += by_question[q] + rubric_blocks(rubric, "written", q)
    return blocks
