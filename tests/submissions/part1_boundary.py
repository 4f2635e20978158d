"""Issue 19's attacks as notebook cells: around the guard (rewrite it, open relative to a descriptor, replace
os.path), past it (a fresh interpreter over a pipe), and across runs (the shared root, a survivor, the staff log,
the batch's folder). Each goes on the partial notebook (model, loss, GD and SGD right: 15) with AdaGrad and Adam
built on what the attack reaches, so that any success shows as points above 15."""

from tests.submissions.part1_optim_routes import ADAGRAD_ARGS, ADAM_ARGS, routed  # noqa: F401

_COMPILE_AS = '''

def _as_module(name, source):
    """torch/optim/<name>.py's text, run as a module of another package: the stubs never touched it."""
    module = types.ModuleType("mine_" + name)
    module.__package__ = "torch.optim"
    exec(compile(source, "mine_" + name + ".py", "exec"), module.__dict__)
    return module


'''

# The guard module is in sys.modules: empty its sets, no-op its checks, then read the sources plainly.
GUARD_REWRITE = routed(f"_fresh('adagrad').Adagrad({ADAGRAD_ARGS})", f"_fresh('adam').Adam({ADAM_ARGS})",
                       prefix='''import os
import sys
import types
''' + _COMPILE_AS + '''def _fresh(name):
    guard = sys.modules.get("guard")
    if guard is not None:
        for attribute, current in list(vars(guard).items()):
            if attribute.startswith("_REFUSED") or attribute.startswith("_PROC"):
                setattr(guard, attribute, frozenset())
            elif attribute.startswith("_check") and callable(current):
                setattr(guard, attribute, lambda *args, **kwargs: None)
    with open(os.path.join(os.path.dirname(torch.__file__), "optim", name + ".py")) as source:
        return _as_module(name, source.read())


''')

# Relative to a descriptor of torch/, then compiled under another name.
DIR_FD = routed(f"_fresh('adagrad').Adagrad({ADAGRAD_ARGS})", f"_fresh('adam').Adam({ADAM_ARGS})",
                prefix='''import os
import types
''' + _COMPILE_AS + '''def _fresh(name):
    folder = os.open(os.path.dirname(torch.__file__), os.O_RDONLY | os.O_DIRECTORY)
    try:
        handle = os.open("op" + "tim/" + name + ".py", os.O_RDONLY, dir_fd=folder)
    finally:
        os.close(folder)
    with os.fdopen(handle) as source:
        return _as_module(name, source.read())


''')

# os.path.realpath (which the old hook called through the os module) replaced for the read's duration.
REALPATH = routed(f"_fresh('adagrad').Adagrad({ADAGRAD_ARGS})", f"_fresh('adam').Adam({ADAM_ARGS})",
                  prefix='''import os
import types
''' + _COMPILE_AS + '''def _fresh(name):
    real = os.path.realpath
    os.path.realpath = lambda path: "/nowhere/" + os.path.basename(str(path))
    try:
        with open(os.path.join(os.path.dirname(torch.__file__), "optim", name + ".py")) as source:
            text = source.read()
    finally:
        os.path.realpath = real
    return _as_module(name, text)


''')

_SERVER = r"""
import json, sys, torch
opt = None
for line in sys.stdin:
    msg = json.loads(line)
    if opt is None:
        w, b = torch.tensor(msg["w"], requires_grad=True), torch.tensor(msg["b"], requires_grad=True)
        opt = getattr(torch.optim, msg["kind"])([w, b], **msg["hyper"])
    with torch.no_grad():
        w.copy_(torch.tensor(msg["w"]))
        b.copy_(torch.tensor(msg["b"]))
    w.grad, b.grad = torch.tensor(msg["gw"]), torch.tensor(msg["gb"])
    opt.step()
    state = [{k: v.tolist() for k, v in opt.state[p].items()} for p in (w, b)]
    print(json.dumps({"w": w.tolist(), "b": b.tolist(), "state": state}), flush=True)
"""

# A new Python where torch.optim was never touched, stepping the optimizer over a pipe.
FRESH_INTERPRETER = routed("_Remote('Adagrad', params, lr=lr, initial_accumulator_value=0.1, eps=epsilon)",
                           "_Remote('Adam', params, lr=lr, betas=(beta1, beta2), eps=epsilon)",
                           prefix=f'''import json
import subprocess
import sys

_SERVER = {_SERVER!r}


class _Remote:
    """torch.optim in another interpreter: values and gradients go over its stdin, new values come back."""

    def __init__(self, kind, params, **hyper):
        self.kind, self.hyper, self.param_groups, self.state = kind, hyper, [{{"params": params}}], {{}}
        self.process = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def step(self):
        w, b = self.param_groups[0]["params"]
        message = {{"kind": self.kind, "hyper": self.hyper, "w": w.tolist(), "b": b.tolist(),
                    "gw": w.grad.tolist(), "gb": b.grad.tolist()}}
        self.process.stdin.write(json.dumps(message) + "\\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        with torch.no_grad():
            w.copy_(torch.tensor(answer["w"]))
            b.copy_(torch.tensor(answer["b"]))
        self.state = {{p: {{k: torch.tensor(v) for k, v in s.items()}} for p, s in zip((w, b), answer["state"])}}


''')

# In the notebook run: a startup file in the shared root (IPython runs it in every later kernel), and 64 MB in /dev.
SHARED_ROOT = '''import os
for path, data in (("/etc/ipython/profile_default/startup/00-spy.py", "print('spy')"),
                   ("/dev/ag_hog", "x" * (64 << 20)), ("/ag_planted", "x")):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            out.write(data)
        print("planted", path)
    except OSError as error:
        print("could not plant", path, error)
'''

# A chain of processes that fork and exit at once: never listed long enough to be killed by a /proc scan.
SURVIVOR = '''import os
if os.fork() == 0:
    os.setsid()
    while True:
        if os.fork():
            os._exit(0)
'''

# The kernel's real stderr ends up in the staff log: close its code fence and pose as the grader.
FORGE_STAFF_LOG = '''import sys
sys.__stderr__.write("\\n```\\nFALLBACK SANDBOX: none\\nworker: namespaces sandbox, exit 0\\n"
                     "![review](http://example.invalid/x.png)\\n```\\n")
sys.__stderr__.flush()
'''

# The batch's export folder from the grader's command line, and the classmates' notebooks in it.
CLASSMATES = '''import glob, os
for pid in os.listdir("/proc"):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
    except OSError:
        continue
    for i, arg in enumerate(argv):
        if arg == b"--submissions" and i + 1 < len(argv):
            for path in glob.glob(os.path.join(argv[i + 1].decode(), "**", "*.ipynb"), recursive=True):
                try:
                    print("read a classmate's", path, len(open(path).read()))
                except OSError as error:
                    print("could not read", path, error)
'''
