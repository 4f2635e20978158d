"""HW4 Part 1 probes: the measurements the cases compare, written once for both sides.

The grader imports this module and calls `measure_*` with the reference's classes; the worker sends this
file's text to the student's kernel, where the `probe_*` entry points call the same `measure_*` functions
with the student's definitions (located by `_autograder.load`, see kernel_prelude.py). Inputs arrive as
JSON; results leave as JSON-ready lists and numbers.
"""

import os

import torch


def _flat(value) -> list:
    """w (1, 2) and b () as one flat list of floats, whatever shapes the student used."""
    if isinstance(value, (tuple, list)):
        return [x for part in value for x in _flat(part)]
    return torch.as_tensor(value, dtype=torch.float32).detach().reshape(-1).tolist()


def _state(optimizer) -> dict:
    state = {}
    for name in ("accumulator", "m", "v", "t"):
        if hasattr(optimizer, name):
            try:
                state[name] = _flat(getattr(optimizer, name))
            except Exception as error:  # state the probe cannot read is reported, not fatal
                state[name] = f"unreadable: {type(error).__name__}"
    return state


def measure_forward(Model, args: dict) -> dict:
    model = Model()
    public = model(torch.tensor([[1.0, 2.0]]))
    batch = model(torch.tensor(args["X"]))
    return {"public": _flat(public), "batch": _flat(batch), "batch_shape": list(batch.shape)}


def measure_loss(loss, args: dict) -> dict:
    public = loss(torch.tensor([[25.0]]), torch.tensor([3.0]))  # the notebook's (1, 1) vs (1,) broadcast
    hidden = loss(torch.tensor(args["y_true"]), torch.tensor(args["y_pred"]))
    return {"public": _flat(public), "hidden": _flat(hidden), "hidden_shape": list(torch.as_tensor(hidden).shape)}


def measure_builtin_adam(Model, train, args: dict) -> dict:
    model = Model()
    losses = train(model, torch.tensor(args["X"]), torch.tensor(args["y"]), epochs=args["epochs"],
                   batch_size=args["batch_size"], lr=args["lr"])
    return {"losses": _flat(list(losses)), "params": _flat((model.w, model.b))}


def measure_optimizer(Optimizer, Model, args: dict, describe=repr) -> dict:
    """Run `steps` steps from a fresh model on the given data, seeding the global RNG first.

    Returns the parameters after every step, the first gradient, the optimizer's state before the first and
    after the last step, and one draw from the RNG afterwards (it shows whether sampling kept in step).
    """
    X, y = torch.tensor(args["X"]), torch.tensor(args["y"])
    torch.manual_seed(args["seed"])
    result = {"trajectory": [], "first_gradient": None, "error": None}
    try:
        optimizer = Optimizer(**args["kwargs"])
        model = Model()
        result["state_before"] = _state(optimizer)
        for step in range(args["steps"]):
            result["failed_at"] = step + 1
            grads = optimizer.calculate_gradient(X, y, model)
            if step == 0:
                result["first_gradient"] = _flat(grads)
            optimizer.apply_gradient(grads, model)
            result["trajectory"].append(_flat((model.w, model.b)))
        result.pop("failed_at")
        result["state_after"] = _state(optimizer)
        result["next_draw"] = int(torch.randint(0, 2**30, (1,)))
    except (Exception, SystemExit) as error:  # SystemExit too: a student's exit() must not stop the probe
        result["error"] = describe(error)
    return result


def measure_public_protocol(classes: dict, Model, steps: int = 300) -> dict:
    """The notebook's own checks: seed 10605, then GD, SGD, AdaGrad(0.1), Adam(0.1) on one RNG stream.

    Each optimizer starts from the stream position the notebook reaches when every earlier one-sample
    optimizer drew exactly `steps` indices, so a fault in SGD does not also fail AdaGrad and Adam.
    """
    finals = {}
    one_sample_before = 0
    for name, kwargs in (("GD", {}), ("SGD", {}), ("AdaGrad", {"lr": 0.1}), ("Adam", {"lr": 0.1})):
        torch.manual_seed(10605)
        X = torch.randn(2000, 2)
        noise = torch.randn(2000, 1)
        y = X @ torch.tensor([[4.0], [3.0]]) + 2 + noise
        for _ in range(one_sample_before * steps):
            torch.randint(0, len(X), (1,))
        try:
            optimizer, model = classes[name](**kwargs), Model()
            for _ in range(steps):
                optimizer.apply_gradient(optimizer.calculate_gradient(X, y, model), model)
            finals[name] = {"params": _flat((model.w, model.b))}
        except (Exception, SystemExit) as error:
            finals[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
        one_sample_before += name != "GD"
    return finals


# Kernel entry points: only called inside the student's kernel, where `_autograder` exists.

def probe_forward(args):
    return measure_forward(_autograder.load("LinearModel", base="Module"), args)


def probe_loss(args):
    return measure_loss(_autograder.load("loss"), args)


def probe_builtin_adam(args):
    return measure_builtin_adam(_autograder.load("LinearModel", base="Module"),
                                _autograder.load("train_with_torch_adam"), args)


def probe_optimizer(args):
    Optimizer = _autograder.load(args["class"])
    Model = _autograder.load("LinearModel", not_base="Module")
    optim_folder = os.path.dirname(torch.optim.__file__) + os.sep
    with _autograder.CallWatch([optim_folder]) as watch:
        result = measure_optimizer(Optimizer, Model, args, describe=_autograder.describe)
    result["torch_optim_calls"] = watch.hits
    result["monitor_removed"] = watch.tampered
    return result


def probe_public_protocol(args):
    Model = _autograder.load("LinearModel", not_base="Module")
    classes = {}
    for name in ("GD", "SGD", "AdaGrad", "Adam"):
        try:
            classes[name] = _autograder.load(name)
        except Exception as error:
            classes[name] = _raiser(error)
    return measure_public_protocol(classes, Model, args["steps"])


def _raiser(error):
    def missing(*args, **kwargs):
        raise error
    return missing
