"""HW4 Part 2 graded spot checks (10 points). Each reads one observation of the student's LoRA code on a small
random-init BERT and compares it with the reference's answer to the same call. The docstring's first line is
what students see; the failure message says what was checked, what was expected, what came back, and a hint."""

from gradescope_utils.autograder_utils.decorators import number, weight

from autograder.assignments.hw4_part2 import feedback
from autograder.checks import fmt


@weight(1)
@number("1.1")
def test_layer_init(submission):
    """MyLoraLayer at initialisation: B exactly 0, A random, shapes (r, in) and (out, r), no biases"""
    got, want = submission.probe("layer_init"), submission.expected("layer_init")
    args = submission.calls["layer_init"].args
    problems = feedback.init_problems(got, want, args)
    if problems:
        raise AssertionError(f"A fresh `MyLoraLayer(nn.Linear({args['in_features']}, {args['out_features']}), "
                             f"r={args['r']}, lora_alpha={args['lora_alpha']}, lora_dropout={args['lora_dropout']})`:"
                             "\n\n" + "\n".join(f"- {p}" for p in problems))


@weight(1.5)
@number("1.2")
def test_scaling(submission):
    """MyLoraLayer output is base_layer(x) + (lora_alpha / r) * B A x (A and B set to known matrices)"""
    got, want = submission.probe("scaling"), submission.expected("scaling")
    for mine, ref in zip(got["cases"], want["cases"]):
        feedback.check_scaling_case(mine, ref)


@weight(1)
@number("1.3")
def test_dropout(submission):
    """Dropout acts on the LoRA input only: eval mode deterministic, the base output never dropped"""
    got = submission.probe("dropout")
    feedback.check_dropout(got, submission.calls["dropout"].args["p"])


def _rank(observation: dict, r: int) -> dict:
    entry = observation["ranks"][str(r)]
    if "error" in entry:
        raise AssertionError(f"`get_lora_model(model, MyLoraConfig({r}, ['query', 'value'], 32, 0.1))` on a small "
                             f"BERT raised `{entry['error']}`.")
    return entry


@weight(1)
@number("2.1")
def test_wraps_query_and_value(submission):
    """get_lora_model wraps exactly the attention query and value projections, once each, and returns the model"""
    got, want = submission.probe("model"), submission.expected("model")
    if got["config_error"]:
        raise AssertionError(f"`MyLoraConfig(16, ['query', 'value'], 32, 0.1)` raised `{got['config_error']}`; it "
                             "should simply keep `r`, `target_modules`, `lora_alpha` and `lora_dropout`.")
    mine, ref = _rank(got, 16), want["ranks"]["16"]
    if mine["returned_none"]:
        raise AssertionError("`get_lora_model` returned `None`; it should return the model (the notebook does "
                             "`model = get_lora_model(load_model(), ...)`).")
    feedback.compare_names(mine["wrapped"], ref["wrapped"], "LoRA layers (modules with `lora_A` and `lora_B`)",
                           feedback.wrapping_hint(mine["wrapped"], ref["wrapped"]))


@weight(1)
@number("2.2")
def test_initial_logits_equal_base(submission):
    """A fresh LoRA model computes exactly the base model's logits"""
    got = submission.probe("model")
    _rank(got, 16)
    if not got["init_exact"]:
        raise AssertionError(
            "Right after `get_lora_model` (r = 16, eval mode), the logits should equal the base model's exactly, "
            f"because B starts at 0. The largest difference was `{fmt(got['init_max_diff'])}`.\n\nHint: initialise "
            "`lora_B.weight` to zeros and leave the base layer's weights untouched.")


@weight(1.5)
@number("2.3")
def test_only_lora_and_classifier_train(submission):
    """Only the LoRA matrices and the classifier are trainable after get_lora_model"""
    got, want = submission.probe("model"), submission.expected("model")
    mine, ref = _rank(got, 16), want["ranks"]["16"]
    feedback.compare_names(mine["trainable"], ref["trainable"], "parameters with `requires_grad=True` (r = 16)",
                           feedback.trainable_hint(mine["trainable"], ref["trainable"]))


@weight(1)
@number("2.4")
def test_parameter_counts(submission):
    """Total and trainable parameter counts for r = 1, 16, 256 equal the reference's"""
    got, want = submission.probe("model"), submission.expected("model")
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


@weight(1)
@number("2.5")
def test_base_unchanged_by_training(submission):
    """After an optimizer step, every pretrained weight is bit-identical"""
    got = submission.probe("step")
    if got["base_changed"]:
        raise AssertionError(
            f"After one Adam step on the trainable parameters of your LoRA model (r = 4), "
            f"{len(got['base_changed'])} of {got['base_total']} pretrained parameters changed, e.g. "
            f"{feedback.listed(got['base_changed'], 4)}. LoRA must leave W0 exactly as it was.\n\n"
            "Hint: freeze (`requires_grad = False`) every parameter of the pretrained model, wrapped layers included.")
    if not got["trained"]:
        raise AssertionError("After one Adam step, none of the LoRA matrices or the classifier changed: nothing "
                             "trains. Hint: `lora_A`, `lora_B` and `classifier` need `requires_grad = True`.")


@weight(1)
@number("3.1")
def test_last_layer_cell(submission):
    """The last-layer cell leaves exactly the classifier trainable"""
    got, want = submission.probe("last_layer"), submission.expected("last_layer")
    cell = submission.calls["last_layer"].args["cell"]
    errors = "".join(f"\n- `{e}`" for e in got["errors"][:3])
    context = f"Your last-layer cell ({cell}) was run on a small BERT (downloads and training skipped)."
    if errors:
        context += " These statements failed:" + errors
    feedback.compare_names(got["trainable"], want["trainable"], "parameters with `requires_grad=True`",
                           "Hint: freeze every parameter of `model`, then unfreeze those of `model.classifier`.",
                           context=context)
