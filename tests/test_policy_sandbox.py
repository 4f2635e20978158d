"""Issue 19's attacks, as a student who has read the grader would write them, in the real sandbox (both modes).

Each defence is shown twice: with the defence the attack fails in the way that only that defence fails it (the
kernel's errno, not the guard's message), and with the defence switched off (a test-only request field that
the grader never sets) the same attack goes through. So a test here fails if the defence stops working.
"""

import os
import re

import pytest

from autograder.supervisor import runusers
from tests.test_sandbox import measure, mode, value  # noqa: F401, F811  (mode: the sandbox fixture)

pytestmark = pytest.mark.integration

# Probe text: an attempt's outcome, "allowed", the kernel's errno name, or "guard" (the guard's refusal has none).
KERNEL_ANSWER = '''
import errno, os

def _try(action):
    try:
        action()
        return "allowed"
    except OSError as error:
        return "guard" if error.errno is None else errno.errorcode.get(error.errno, str(error.errno))
    except Exception as error:
        return type(error).__name__
'''
ATTACKS = KERNEL_ANSWER + '''
import socket, subprocess, sys

def _optim():
    import torch
    return os.path.join(os.path.dirname(torch.__file__), "optim")

def _read_relative():
    folder = os.open(os.path.dirname(_optim()), os.O_RDONLY | os.O_DIRECTORY)
    os.read(os.open("optim/adam.py", os.O_RDONLY, dir_fd=folder), 100)

def escape(args):
    """A fresh interpreter (where torch.optim was never touched), a socket, the sources by two routes."""
    return {"interpreter": _try(lambda: subprocess.run([sys.executable, "-c", "import torch.optim"])),
            "fork": _try(lambda: os.waitpid(os.fork() or os._exit(0), 0)),
            "socket": _try(lambda: socket.socket(socket.AF_INET).close()),
            "source": _try(lambda: open(os.path.join(_optim(), "adam.py")).read()),
            "relative": _try(_read_relative)}

def rewrite_guard(args):
    """Replace everything the guard module holds, then read torch.optim's source and use the optimizer."""
    guard = sys.modules["guard"]
    for name in list(vars(guard)):
        if not name.startswith("__"):
            setattr(guard, name, frozenset())
    os.path.realpath = lambda path: "/nowhere"
    import torch
    p = torch.nn.Parameter(torch.ones(2))
    return {"source": _try(lambda: open(os.path.join(_optim(), "adam.py")).read()),
            "relative": _try(_read_relative), "optimizer": _try(lambda: torch.optim.Adam([p]).step())}

def write(args):
    return {path: _try(lambda: open(path, "w").write("x")) for path in args["paths"]}

def view(args):
    return {"exists": {p: os.path.exists(p) for p in args["paths"]}, "uid": os.getuid()}
'''
KERNEL = {"interpreter": "EPERM", "fork": "EPERM", "socket": "EPERM", "source": "EACCES", "relative": "EACCES"}


def test_the_kernel_stops_every_escape_even_without_the_guard(mode):
    run = measure([("escape", "escape", {}, 60)], probes=ATTACKS, switched_off=("guard",))
    assert value(run, "escape") == KERNEL
    layers = run.reply["layers"]
    assert "seccomp (measurement)" in layers, layers
    assert any(layer.startswith("file policy: Landlock ABI") for layer in layers), layers


def test_with_the_kernel_layers_and_the_guard_switched_off_the_same_escapes_go_through(mode):
    run = measure([("escape", "escape", {}, 60)], probes=ATTACKS,
                  switched_off=("guard", "landlock", "view", "permissions", "syscalls"))
    seen = value(run, "escape")
    assert seen["source"] == seen["relative"] == seen["interpreter"] == seen["fork"] == "allowed", seen
    # the network: in the full sandbox a socket can be made (there is no network to reach); the same in the fallback
    assert seen["socket"] == "allowed", seen


def test_with_everything_on_the_guard_answers_first_and_rewriting_it_gains_nothing(mode):
    run = measure([("escape", "escape", {}, 60), ("rewrite", "rewrite_guard", {}, 60)], probes=ATTACKS)
    assert set(value(run, "escape").values()) == {"guard"}, value(run, "escape")
    rewritten = value(run, "rewrite")
    assert rewritten["source"] in ("guard", "EACCES") and rewritten["relative"] in ("guard", "EACCES"), rewritten
    assert rewritten["optimizer"] == "RuntimeError", rewritten  # the stubs are code objects, not module state


def test_rewriting_the_guard_with_the_kernels_file_policy_off_is_still_stopped_by_the_hooks_closure(mode):
    run = measure([("rewrite", "rewrite_guard", {}, 60)], probes=ATTACKS, switched_off=("landlock", "view", "permissions"))
    assert value(run, "rewrite")["source"] == value(run, "rewrite")["relative"] == "guard"


def test_the_full_sandboxs_shared_root_is_read_only_and_nothing_reaches_the_next_run():
    planted = ["/etc/ipython/profile_default/startup/00-spy.py", "/etc/ag-planted", "/dev/ag-hog", "/ag-planted"]
    cell = ("import os\nfor p in %r:\n    try:\n        os.makedirs(os.path.dirname(p), exist_ok=True)\n"
            "        open(p, 'w').write('print(1)')\n    except OSError as e:\n        print(p, e.errno)\n") % planted
    first = measure([("write", "write", {"paths": planted[1:]}, 30)], cells=[cell], probes=ATTACKS)
    if first.mode != "namespaces":
        pytest.skip("bubblewrap is not available here")
    assert set(value(first, "write").values()) == {"EROFS"}, value(first, "write")  # the mechanism: read-only
    second = measure([("view", "view", {"paths": planted}, 30)], probes=ATTACKS)
    assert not any(value(second, "view")["exists"].values())


def _run_uid(run) -> int:
    found = [re.search(r"fresh uid (\d+)", note) for note in run.notes]
    return int(next(m.group(1) for m in found if m))


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback's users need root")
def test_in_the_fallback_a_survivor_of_one_run_is_gone_and_the_next_run_is_another_user(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DISABLE", "bwrap")
    chain = ("import os, socket\nopen('/dev/shm/ag-left', 'w').write('x')\n"
             "s = socket.socket(socket.AF_UNIX); s.bind('/tmp/ag-left.sock')\n"
             "if os.fork() == 0:\n    os.setsid()\n    while True:\n        if os.fork():\n            os._exit(0)\n")
    first = measure([("view", "view", {"paths": []}, 30)], cells=[chain, "import time; time.sleep(1)"],
                    probes=ATTACKS)
    assert first.mode == "fallback"
    uid = _run_uid(first)
    assert value(first, "view")["uid"] == uid >= runusers.FIRST_UID
    assert runusers._live_processes(uid) == []  # the fork chain did not outlive its run
    left = [e.path for d in ("/tmp", "/var/tmp", "/dev/shm") for e in os.scandir(d) if e.stat().st_uid == uid]
    assert left == []
    second = measure([("view", "view", {"paths": ["/dev/shm/ag-left", "/tmp/ag-left.sock"]}, 30)], probes=ATTACKS)
    assert _run_uid(second) != uid and value(second, "view")["uid"] == _run_uid(second)
    assert not any(value(second, "view")["exists"].values())


@pytest.mark.skipif(os.geteuid() != 0, reason="the command line is hidden when the grader runs as root")
def test_a_batchs_folder_is_not_on_the_graders_command_line_and_the_folder_is_closed_to_others(tmp_path):
    import shutil
    import subprocess
    import sys
    import time
    from pathlib import Path

    from autograder.staff.batch_records import close_to_others
    root = Path(__file__).resolve().parent.parent
    folder = tmp_path / "ag-classmates-notebooks"
    folder.mkdir(mode=0o755)
    shutil.copy(root / "solution/notebooks/hw4_part1.ipynb", folder / "a.ipynb")
    os.mkfifo(folder / "up.zip")  # the grader blocks reading it: a moment to look at its command line
    process = subprocess.Popen([sys.executable, "-m", "autograder", "--submissions", str(folder), "--zip",
                                str(folder / "up.zip")], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, seen = time.monotonic() + 120, ""
        while time.monotonic() < deadline and "run_module" not in seen and process.poll() is None:
            time.sleep(0.2)
            try:
                seen = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().replace("\0", " ")
            except OSError:
                break
        assert process.poll() is None, process.stdout.read().decode()[-2000:]
        assert "run_module" in seen and folder.name not in seen, seen  # re-executed, the folder gone
        assert os.stat(f"/proc/{process.pid}/environ").st_mode & 0o077 == 0  # where it went: owner-only
    finally:
        try:  # unblock the grader; it may close the pipe before this write lands (it cannot seek a pipe)
            with open(folder / "up.zip", "w") as unblock:
                unblock.write("not a zip")
        except BrokenPipeError:
            pass
        process.wait(timeout=60)
    close_to_others(folder)
    assert folder.stat().st_mode & 0o007 == 0


LIBRARY_PROBE = '''
def mapped(args):
    """Which of the policy's libraries this measurement child has mapped, and whether ctypes is refused here."""
    with open("/proc/self/smaps") as maps:
        text = maps.read()
    found = {path: path in text for path in args["paths"]}
    try:
        import ctypes
        ctypes.CDLL(args["paths"][0])
        refused = False
    except Exception:
        refused = True
    return {"mapped": found, "ctypes_refused": refused}
'''


def test_a_library_in_the_policy_is_loaded_before_the_guard_and_mapped_in_each_child(mode, monkeypatch):
    """The GPU harness's path on a CPU: a stand-in library (libform) in the policy's `libraries`, as CUDA's driver
    is there; it is loaded by the measurement process before the guard, and every child has it mapped, where
    ctypes itself is refused (the probe could never load it there)."""
    import ctypes.util
    from tests import test_sandbox
    found = ctypes.util.find_library("form")  # ncurses' forms: nothing the grader or torch maps by itself
    if found is None:
        pytest.skip("no stand-in library (libform) on this system")
    library = next((os.path.realpath(os.path.join(folder, found)) for folder in
                    ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")
                    if os.path.exists(os.path.join(folder, found))), found)
    policy = {**test_sandbox.POLICY, "libraries": [library]}
    monkeypatch.setattr(test_sandbox, "POLICY", policy)
    run = measure([("mapped", "mapped", {"paths": [library]}, 30), ("again", "mapped", {"paths": [library]}, 30)],
                  probes=LIBRARY_PROBE)
    layers = run.reply["layers"]
    assert layers[0] == f"preloaded {os.path.basename(library)}" and layers[-1].startswith("guard"), layers
    for name in ("mapped", "again"):
        assert value(run, name) == {"mapped": {library: True}, "ctypes_refused": True}
    monkeypatch.setattr(test_sandbox, "POLICY", {**policy, "libraries": []})  # control: not in the policy
    assert value(measure([("mapped", "mapped", {"paths": [library]}, 30)], probes=LIBRARY_PROBE), "mapped") == \
        {"mapped": {library: False}, "ctypes_refused": True}


@pytest.mark.skipif(os.geteuid() != 0, reason="creates an ordinary user to run the grader as")
@pytest.mark.parametrize("disable", ["", "bwrap"])
def test_as_an_ordinary_user_the_kernel_layers_hold_in_both_sandboxes(disable):
    """No root and (with bwrap disabled) no namespaces: seccomp and Landlock need neither."""
    import json
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    tmp_path = Path(tempfile.mkdtemp(prefix="ag-test-ta-"))  # pytest's own folder is root's alone
    root = Path(__file__).resolve().parent.parent
    subprocess.run(["useradd", "--create-home", "ag-test-ta"], capture_output=True)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for part in ("autograder", "solution", "tests"):
        subprocess.run(["cp", "-r", str(root / part), str(checkout / part)], check=True)
    (checkout / "run.py").write_text(
        f"import sys, json; sys.path.insert(0, {str(checkout)!r})\n"
        "from tests.test_sandbox import measure, value\nfrom tests.test_policy_sandbox import ATTACKS\n"
        "run = measure([('escape', 'escape', {}, 60)], probes=ATTACKS, switched_off=('guard',))\n"
        "print(json.dumps({'mode': run.mode, 'escape': value(run, 'escape'), 'uid': __import__('os').getuid()}))\n")
    subprocess.run(["chown", "-R", "ag-test-ta", str(tmp_path)], check=True)
    tmp_path.chmod(0o755)
    try:
        done = subprocess.run(["su", "ag-test-ta", "-s", "/bin/sh", "-c",
                               f"AUTOGRADER_DISABLE={disable} {sys.executable} {checkout / 'run.py'}"],
                              capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["uid"] != 0 and report["mode"] == ("fallback" if disable else "namespaces"), report
    assert report["escape"] == KERNEL
