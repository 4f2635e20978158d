"""AdaGrad and Adam cells that step through torch's own optimizers by routes a monitor in the student's process
could miss (issue 10). Each is a working optimizer where torch.optim runs: run unblocked, it reproduces the
reference's trajectory (tests/test_notebooks.py checks that), so an attack that earns its points has slipped
through. Each reaches torch's implementation already in `__init__`, so where that implementation cannot run the
class cannot even be built and earns nothing on any of its tests."""

# One skeleton per optimizer: {make} builds the torch optimizer over two leaf tensors, {step} runs its step.
_ADAGRAD = '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        params = [torch.zeros(1, 2, requires_grad=True), torch.zeros((), requires_grad=True)]
        self.opt = {make}
        self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))

    def calculate_gradient(self, X, y, model):
        self.opt.param_groups[0]["params"]
        i = torch.randint(0, len(X), (1,))
        residual = X[i] @ model.w.T + model.b - y[i]
        return 2 * residual @ X[i], 2 * residual.mean()

    def apply_gradient(self, grads, model):
        w, b = self.opt.param_groups[0]["params"]
        with torch.no_grad():
            w.copy_(model.w)
            b.copy_(model.b)
        w.grad, b.grad = grads[0].clone(), grads[1].clone().reshape(())
        {step}
        self.accumulator = tuple(self.opt.state[p]["sum"].clone() for p in (w, b))
        model.w, model.b = w.detach().clone(), b.detach().clone()
'''
_ADAM = '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        params = [torch.zeros(1, 2, requires_grad=True), torch.zeros((), requires_grad=True)]
        self.opt = {make}
        self.m = (torch.zeros(1, 2), torch.tensor(0.0))
        self.v = (torch.zeros(1, 2), torch.tensor(0.0))
        self.t = 0

    def calculate_gradient(self, X, y, model):
        self.opt.param_groups[0]["params"]
        i = torch.randint(0, len(X), (1,))
        residual = X[i] @ model.w.T + model.b - y[i]
        return 2 * residual @ X[i], 2 * residual.mean()

    def apply_gradient(self, grads, model):
        w, b = self.opt.param_groups[0]["params"]
        with torch.no_grad():
            w.copy_(model.w)
            b.copy_(model.b)
        w.grad, b.grad = grads[0].clone(), grads[1].clone().reshape(())
        {step}
        self.t += 1
        self.m = tuple(self.opt.state[p]["exp_avg"].clone() for p in (w, b))
        self.v = tuple(self.opt.state[p]["exp_avg_sq"].clone() for p in (w, b))
        model.w, model.b = w.detach().clone(), b.detach().clone()
'''
ADAGRAD_ARGS = "params, lr=lr, initial_accumulator_value=0.1, eps=epsilon"
ADAM_ARGS = "params, lr=lr, betas=(beta1, beta2), eps=epsilon"


def routed(make_adagrad: str, make_adam: str, step: str = "self.opt.step()", prefix: str = "") -> dict[str, str]:
    """AdaGrad and Adam cell sources built on torch optimizers made by the given expressions."""
    return {"AdaGrad": prefix + _ADAGRAD.format(make=make_adagrad, step=step),
            "Adam": prefix + _ADAM.format(make=make_adam, step=step)}


DIRECT = routed(f"torch.optim.Adagrad({ADAGRAD_ARGS})", f"torch.optim.Adam({ADAM_ARGS})")

THREAD = routed(f"_in_thread(lambda: torch.optim.Adagrad({ADAGRAD_ARGS}))",
                f"_in_thread(lambda: torch.optim.Adam({ADAM_ARGS}))", step="_in_thread(self.opt.step)",
                prefix='''import threading


def _in_thread(work):
    """Run `work` in a thread of its own, where a tracer set on the main thread does not follow."""
    box = []
    worker = threading.Thread(target=lambda: box.append(work()))
    worker.start()
    worker.join()
    return box[0]


''')

UNTRACED = routed(f"_untraced(lambda: torch.optim.Adagrad({ADAGRAD_ARGS}))",
                  f"_untraced(lambda: torch.optim.Adam({ADAM_ARGS}))", step="_untraced(self.opt.step)",
                  prefix='''import sys


def _untraced(work):
    """Switch off whatever trace function watches this thread, run `work`, then put it back."""
    tracer = sys.gettrace()
    sys.settrace(None)
    try:
        return work()
    finally:
        sys.settrace(tracer)


''')

FILE_RENAMED = {name: '''class _Elsewhere:
    # In a class body, so it runs wherever the definitions run: a monitor that finds torch.optim's folder
    # from these attributes watches a folder nothing runs from.
    for _module in [torch.optim] + [m for n, m in sorted(sys.modules.items()) if n.startswith("torch.optim.")]:
        if getattr(_module, "__file__", None):
            _module.__file__ = "/nonexistent/" + _module.__name__.replace(".", "/") + ".py"


''' + source for name, source in DIRECT.items()}
FILE_RENAMED = {name: "import sys\n\n\n" + source for name, source in FILE_RENAMED.items()}

HELPER_CELL = '''def _library(kind, params, **hyper):
    """A torch optimizer, looked up by name: the classes below never spell out torch.optim themselves."""
    return getattr(vars(torch)["op" + "tim"], kind)(params, **hyper)
'''
HELPER = routed("_library('Adagrad', params, lr=lr, initial_accumulator_value=0.1, eps=epsilon)",
                "_library('Adam', params, lr=lr, betas=(beta1, beta2), eps=epsilon)")

EXEC_SOURCE = routed(f"_fresh('adagrad').Adagrad({ADAGRAD_ARGS})", f"_fresh('adam').Adam({ADAM_ARGS})",
                     prefix='''import os
import types


def _fresh(name):
    """torch/optim/<name>.py compiled again under another file name, as a module of its own."""
    path = os.path.join(os.path.dirname(torch.__file__), "optim", name + ".py")
    module = types.ModuleType("torch.optim._mine_" + name)
    module.__package__ = "torch.optim"
    with open(path) as source:
        exec(compile(source.read(), "my_" + name + ".py", "exec"), module.__dict__)
    return module


''')

RELOAD = routed(f"_reloaded('adagrad').Adagrad({ADAGRAD_ARGS})", f"_reloaded('adam').Adam({ADAM_ARGS})",
                prefix='''import importlib


def _reloaded(name):
    """torch.optim.<name> imported afresh, in case the one in sys.modules was tampered with."""
    return importlib.reload(importlib.import_module("torch.optim." + name))


''')

GC_OBJECTS = routed(f"_original('Adagrad')({ADAGRAD_ARGS})", f"_original('Adam')({ADAM_ARGS})",
                    prefix='''import gc


def _original(name):
    """The optimizer class torch defined, found among all live objects even if its name was rebound."""
    for candidate in gc.get_objects():
        if isinstance(candidate, type) and candidate.__name__ == name and \\
                getattr(candidate, "__module__", "").startswith("torch.optim"):
            return candidate
    raise LookupError(name)


''')

# Torch's kernels and functional API without an optimizer object. A warm-up call in `__init__` needs them at once.
_GRADIENT = '''    def calculate_gradient(self, X, y, model):
        i = torch.randint(0, len(X), (1,))
        residual = X[i] @ model.w.T + model.b - y[i]
        return 2 * residual @ X[i], 2 * residual.mean()
'''
FUSED = {
    "SGD": '''class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr
        self._fused([torch.zeros(1)], [torch.zeros(1)], 0.0)

    def _fused(self, params, grads, lr):
        torch._fused_sgd_(params, grads, [], weight_decay=0.0, momentum=0.0, lr=lr, dampening=0.0,
                          nesterov=False, maximize=False, is_first_step=True)

''' + _GRADIENT + '''
    def apply_gradient(self, grads, model):
        params = [model.w.clone(), model.b.clone()]
        self._fused(params, [g.clone() for g in grads], self.lr)
        model.w, model.b = params
''',
    "AdaGrad": '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))
        self.steps = [torch.tensor(0.0), torch.tensor(0.0)]
        self._fused([torch.zeros(1)], [torch.zeros(1)], [torch.ones(1)], [torch.tensor(1.0)], 0.0)

    def _fused(self, params, grads, sums, steps, lr):
        torch._fused_adagrad_(params, grads, sums, steps, lr=lr, lr_decay=0.0, weight_decay=0.0,
                              eps=self.epsilon, maximize=False)

''' + _GRADIENT + '''
    def apply_gradient(self, grads, model):
        params = [model.w.clone(), model.b.clone()]
        sums = [a.clone() for a in self.accumulator]
        for step in self.steps:
            step += 1
        self._fused(params, [g.clone() for g in grads], sums, self.steps, self.lr)
        self.accumulator = tuple(sums)
        model.w, model.b = params
''',
    "Adam": '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m = (torch.zeros(1, 2), torch.tensor(0.0))
        self.v = (torch.zeros(1, 2), torch.tensor(0.0))
        self.t = 0
        self._fused([torch.zeros(1)], [torch.zeros(1)], [torch.zeros(1)], [torch.zeros(1)], [torch.tensor(1.0)], 0.0)

    def _fused(self, params, grads, m, v, steps, lr):
        torch._fused_adam_(params, grads, m, v, [], steps, lr=lr, beta1=self.beta1, beta2=self.beta2,
                           weight_decay=0.0, eps=self.epsilon, amsgrad=False, maximize=False)

''' + _GRADIENT + '''
    def apply_gradient(self, grads, model):
        self.t += 1
        params = [model.w.clone(), model.b.clone()]
        m, v = [x.clone() for x in self.m], [x.clone() for x in self.v]
        self._fused(params, [g.clone() for g in grads], m, v, [torch.tensor(float(self.t))] * 2, self.lr)
        self.m, self.v = tuple(m), tuple(v)
        model.w, model.b = params
''',
}

FOREACH = {
    "AdaGrad": '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = tuple(torch._foreach_add([torch.zeros(1, 2), torch.zeros(())], 0.1))

''' + _GRADIENT + '''
    def apply_gradient(self, grads, model):
        grads = list(grads)
        accumulator = list(self.accumulator)
        torch._foreach_addcmul_(accumulator, grads, grads)
        denominators = torch._foreach_add(torch._foreach_sqrt(accumulator), self.epsilon)
        params = [model.w.clone(), model.b.clone()]
        torch._foreach_addcdiv_(params, grads, denominators, value=-self.lr)
        self.accumulator = tuple(accumulator)
        model.w, model.b = params
''',
    "Adam": '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m = tuple(torch._foreach_mul([torch.zeros(1, 2), torch.zeros(())], 0.0))
        self.v = tuple(torch._foreach_mul([torch.zeros(1, 2), torch.zeros(())], 0.0))
        self.t = 0

''' + _GRADIENT + '''
    def apply_gradient(self, grads, model):
        self.t += 1
        grads, m, v = list(grads), list(self.m), list(self.v)
        torch._foreach_mul_(m, self.beta1)
        torch._foreach_add_(m, grads, alpha=1 - self.beta1)
        torch._foreach_mul_(v, self.beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - self.beta2)
        m_hat = torch._foreach_div(m, 1 - self.beta1 ** self.t)
        v_hat = torch._foreach_div(v, 1 - self.beta2 ** self.t)
        denominators = torch._foreach_add(torch._foreach_sqrt(v_hat), self.epsilon)
        params = [model.w.clone(), model.b.clone()]
        torch._foreach_addcdiv_(params, m_hat, denominators, value=-self.lr)
        self.m, self.v = tuple(m), tuple(v)
        model.w, model.b = params
''',
}

FUNCTIONAL = {  # torch's functional implementations count the steps themselves
    "AdaGrad": FOREACH["AdaGrad"].replace('''        self.accumulator = tuple(torch._foreach_add([torch.zeros(1, 2), torch.zeros(())], 0.1))
''', '''        self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))
        self.functional = importlib.import_module("torch.optim._functional")
        self.steps = [torch.tensor(0.0), torch.tensor(0.0)]
''').split("    def apply_gradient")[0] + '''    def apply_gradient(self, grads, model):
        params = [model.w.clone(), model.b.clone()]
        sums = [a.clone() for a in self.accumulator]
        self.functional.adagrad(params, [g.clone() for g in grads], sums, self.steps, lr=self.lr,
                                weight_decay=0.0, lr_decay=0.0, eps=self.epsilon, maximize=False)
        self.accumulator = tuple(sums)
        model.w, model.b = params
''',
    "Adam": '''import importlib


class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.functional = importlib.import_module("torch.optim._functional")
        self.m = (torch.zeros(1, 2), torch.tensor(0.0))
        self.v = (torch.zeros(1, 2), torch.tensor(0.0))
        self.t = 0
        self.steps = [torch.tensor(0.0), torch.tensor(0.0)]

''' + _GRADIENT + '''
    def apply_gradient(self, grads, model):
        self.t += 1
        params = [model.w.clone(), model.b.clone()]
        m, v = [x.clone() for x in self.m], [x.clone() for x in self.v]
        self.functional.adam(params, [g.clone() for g in grads], m, v, [], self.steps, amsgrad=False,
                             beta1=self.beta1, beta2=self.beta2, lr=self.lr, weight_decay=0.0,
                             eps=self.epsilon, maximize=False)
        self.m, self.v = tuple(m), tuple(v)
        model.w, model.b = params
''',
}
FUNCTIONAL["AdaGrad"] = "import importlib\n\n\n" + FUNCTIONAL["AdaGrad"]
