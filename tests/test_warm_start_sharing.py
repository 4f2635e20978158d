"""What the runs share with the warm start stays shared: the guard finds the functions it disables among the warm
start's frozen objects through the index the warm start took (guard.freeze_indexed), instead of walking them all,
which would copy every shared page into the measurement process; and it still disables every one of them.

Each case runs in a fresh interpreter (the guard's audit hook cannot be removed), which plays the warm start
(imports torch, freezes) and forks the measurement process (installs the guard), as inside/zygote.py does.
"""

import json
import subprocess
import sys
from pathlib import Path

INSIDE = Path(__file__).resolve().parent.parent / "autograder" / "inside"

SCRIPT = r"""
import gc, json, os, sys
sys.path.insert(0, sys.argv[1])
import torch, torch.optim
import guard
mode = sys.argv[2]
optim_folder = os.path.dirname(torch.optim.__file__)

def made_in(folder, name):  # a function whose code says it was defined under `folder`, as torch.optim's are
    namespace = {}
    exec(compile(f"def {name}():\n    return 'ran'\n", os.path.join(folder, "made_later.py"), "exec"), namespace)
    return namespace[name]

def private_dirty_mb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) / 1024

guard.freeze_indexed()  # the warm start
after_warm_start = made_in(optim_folder, "after_warm_start")  # made by a run, never frozen by the warm start
late = None
if mode in ("frozen_again", "frozen_again_index_trusted"):  # someone else freezes more after the warm start
    late = made_in(optim_folder, "late")
    gc.freeze()
    if mode == "frozen_again_index_trusted":  # the control: the guard believes the index covers every frozen object
        guard._made_after_freeze[:] = [[]]
elif mode == "not_indexed":  # the control: a warm start that froze without the index
    guard._made_after_freeze.clear()
read, write = os.pipe()
pid = os.fork()
if pid == 0:  # the measurement process
    before = private_dirty_mb()
    guard.install(("torch.optim",), (), "optimizers")
    copied = private_dirty_mb() - before

    def outcome(function):
        try:
            return function()
        except RuntimeError as error:
            return "disabled" if "disabled while your optimizers are measured" in str(error) else repr(error)

    parameter = torch.zeros(2, requires_grad=True)
    result = {"copied_mb": copied, "adam": outcome(lambda: torch.optim.Adam([parameter]).step()),
              "after_warm_start": outcome(after_warm_start),
              "late": outcome(late) if late else None,
              "elsewhere": outcome(made_in(os.path.dirname(json.__file__), "elsewhere")),
              "json": outcome(lambda: json.dumps({"a": 1}))}
    os.write(write, json.dumps(result).encode())
    os._exit(0)
os.close(write)
print(os.read(read, 1 << 16).decode())
os.waitpid(pid, 0)
"""


def measured(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(INSIDE), mode], capture_output=True, text=True,
                          timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_guard_disables_the_warm_starts_functions_through_its_index_and_copies_little():
    indexed, walked = measured("indexed"), measured("not_indexed")
    for result in (indexed, walked):
        assert result["adam"] == result["after_warm_start"] == "disabled"
        assert result["elsewhere"] == "ran" and result["json"] == '{"a": 1}'
    # The control: walking every frozen object takes a reference to each, copying the pages shared with the warm
    # start (torch's alone: tens of MB); through the index, only what the guard changes is copied.
    assert walked["copied_mb"] > 20 and indexed["copied_mb"] < walked["copied_mb"] / 3


def test_objects_frozen_after_the_warm_start_are_walked_because_the_index_does_not_cover_them():
    assert measured("frozen_again")["late"] == "disabled"
    # The control: an index trusted although more was frozen since would miss that function.
    assert measured("frozen_again_index_trusted")["late"] == "ran"
