"""HW4 Part 2 graded spot checks (10 points; rubric.yml, the only source of points, weighs each). Each reads one
observation of the student's LoRA code on a small random-init BERT, or the config cell as written, and compares it
with the reference's answer to the same call. The docstring's first line is what students see; the failure
message says what was checked, what was expected, what came back, and the likely mistake."""

from gradescope_utils.autograder_utils.decorators import number

from autograder.assignments.hw4_part2 import feedback
from autograder.assignments.hw4_part2.cells import other_assignment
from autograder.assignments.hw4_part2.config_cell import COURSE_CONFIG, read_config
from autograder.checks import NotRun, fmt


def _observe(submission, name: str):
    """The observation, unless the notebook is another assignment's (then say which, in every check)."""
    note = other_assignment(submission.notebook)
    if note:
        raise NotRun(note)
    try:
        return submission.probe(name)
    except NotRun as error:
        raise type(error)(str(error) + feedback.likely_cause(str(error))) from None  # NeedsReview stays one


@number("1.1")
def test_layer_init(submission):
    """MyLoraLayer at initialisation: B exactly 0, A random, shapes (r, in) and (out, r), no biases"""
    got, want = _observe(submission, "layer_init"), submission.expected("layer_init")
    args = submission.calls["layer_init"].args
    problems = feedback.init_problems(got, want, args)
    if problems:
        raise AssertionError(f"A fresh `MyLoraLayer(nn.Linear({args['in_features']}, {args['out_features']}), "
                             f"r={args['r']}, lora_alpha={args['lora_alpha']}, lora_dropout={args['lora_dropout']})`:"
                             "\n\n" + "\n".join(f"- {p}" for p in problems))


@number("1.2")
def test_scaling(submission):
    """MyLoraLayer output is base_layer(x) + (lora_alpha / r) * B A x (A and B set to known matrices)"""
    got, want = _observe(submission, "scaling"), submission.expected("scaling")
    for mine, ref in zip(got["cases"], want["cases"]):
        feedback.check_scaling_case(mine, ref)


@number("1.3")
def test_dropout(submission):
    """Dropout acts on the LoRA input only: eval mode deterministic, the base output never dropped"""
    feedback.check_dropout(_observe(submission, "dropout"), submission.calls["dropout"].args["p"])


def _rank(observation: dict, r: int) -> dict:
    entry = observation["ranks"][str(r)]
    if "error" in entry:
        raise AssertionError(f"`get_lora_model(model, MyLoraConfig({r}, ['query', 'value'], 32, 0.1))` on a small "
                             f"BERT raised `{entry['error']}`." + feedback.likely_cause(entry["error"]))
    return entry


@number("2.1")
def test_wraps_query_and_value(submission):
    """get_lora_model wraps exactly the attention query and value projections, once each, and returns the model"""
    got, want = _observe(submission, "model"), submission.expected("model")
    mine, ref = _rank(got, 16), want["ranks"]["16"]
    if mine["returned_none"]:
        raise AssertionError("`get_lora_model` returned `None`; it should return the model (the config cell does "
                             "`model = get_lora_model(model, lora_config)`).")
    feedback.compare_names(mine["wrapped"], ref["wrapped"], "LoRA layers (modules with `lora_A` and `lora_B`)",
                           feedback.wrapping_hint(mine["wrapped"], ref["wrapped"]))


@number("2.2")
def test_initial_logits_equal_base(submission):
    """A fresh LoRA model, built with your config cell's settings, computes exactly the base model's logits"""
    got = _observe(submission, "model")
    own = submission.calls["model"].args["student"]
    setting = (f"Right after `get_lora_model` with your configuration (r = {own['r']}, lora_alpha = "
               f"{own['lora_alpha']}, target_modules = {own['target_modules']}; eval mode)")
    if "init_error" in got:
        raise AssertionError(f"{setting}, building or running the model raised `{got['init_error']}`."
                             + feedback.likely_cause(got["init_error"]))
    if not got["init_exact"]:
        raise AssertionError(
            f"{setting}, the logits should equal the base model's exactly, because B starts at 0. The largest "
            f"difference was `{fmt(got['init_max_diff'])}`.\n\nHint: initialise `lora_B.weight` to zeros and leave "
            "the base layer's weights untouched.")


@number("2.3")
def test_only_lora_and_classifier_train(submission):
    """Only the LoRA matrices and the classifier are trainable after get_lora_model"""
    got, want = _observe(submission, "model"), submission.expected("model")
    mine, ref = _rank(got, 16), want["ranks"]["16"]
    feedback.compare_names(mine["trainable"], ref["trainable"], "parameters with `requires_grad=True` (r = 16)",
                           feedback.trainable_hint(mine["trainable"], ref["trainable"]))


@number("2.4")
def test_parameter_counts(submission):
    """Total and trainable parameter counts for r = 1, 16, 256 equal the reference's"""
    got, want = _observe(submission, "model"), submission.expected("model")
    rows, wrong = [], False
    for r in submission.calls["model"].args["ranks"]:
        ref = want["ranks"][str(r)]["counts"]
        mine = got["ranks"][str(r)]
        shown = f"`{mine['error'][:120]}`" if "error" in mine else f"{mine['counts'][1]:,} / {mine['counts'][0]:,}"
        wrong |= "error" in mine or mine["counts"] != ref
        rows.append(f"| {r} | {ref[1]:,} / {ref[0]:,} | {shown} |")
    if wrong:
        raise AssertionError("Trainable / total parameters after `get_lora_model` on a small BERT:\n\n"
                             "| r | expected | yours |\n|---|---|---|\n" + "\n".join(rows) + "\n\n"
                             "Hint: each wrapped layer adds r x (in + out) trainable weights (A and B have no bias), "
                             "the classifier stays trainable, everything else is frozen.")


@number("2.5")
def test_base_unchanged_by_training(submission):
    """After a training step, every pretrained weight is bit-identical"""
    got = _observe(submission, "step")
    if got["base_changed"]:
        raise AssertionError(
            f"After one gradient step on the trainable parameters of your LoRA model (r = 4), "
            f"{len(got['base_changed'])} of {got['base_total']} pretrained parameters changed, e.g. "
            f"{feedback.listed(got['base_changed'], 4)}. LoRA must leave W0 exactly as it was.\n\n"
            "Hint: freeze (`requires_grad = False`) every parameter of the pretrained model, wrapped layers included.")
    if not got["trained"]:
        raise AssertionError("After one gradient step, none of the LoRA matrices or the classifier changed: nothing "
                             "trains. Hint: `lora_A`, `lora_B` and `classifier` need `requires_grad = True`.")


@number("3.1")
def test_config_targets(submission):
    """The config cell's target_modules select the attention query and value projections"""
    note = other_assignment(submission.notebook)
    if submission.notebook is None or note:
        raise NotRun(note or submission.problem or "your notebook could not be read")
    reading = read_config(submission.notebook)
    settings, cell = reading.settings, reading.cell
    if settings is None or cell is None:  # read settings always come with their cell
        course = COURSE_CONFIG
        raise AssertionError(f"{reading.problem}\n\nThe other checks use the course's configuration instead "
                             f"(r = {course.r}, target_modules = {list(course.target_modules)}, lora_alpha = "
                             f"{course.lora_alpha}, lora_dropout = {course.lora_dropout}).")
    feedback.check_targets(settings, cell.label)


@number("3.2")
def test_last_layer_cell(submission):
    """The last-layer cell leaves exactly the classifier trainable"""
    got, want = _observe(submission, "last_layer"), submission.expected("last_layer")
    cell = submission.calls["last_layer"].args["cell"]
    errors = "".join(f"\n- `{e}`" for e in got["errors"][:3])
    context = f"Your last-layer cell ({cell}) was run on a small BERT (downloads and training skipped)."
    if errors:
        context += " These statements failed:" + errors
    feedback.compare_names(got["trainable"], want["trainable"], "parameters with `requires_grad=True`",
                           feedback.last_layer_hint(got["trainable"], want["trainable"]), context=context)
