"""The sandbox, for real: what a run's code can see and reach, what stops it, and what it leaves behind.

Each test sends the measurement process a small probe module (a stand-in for an assignment's probes) and, where it
matters, notebook cells for the top-to-bottom run; the probes report what the student's side of the sandbox sees.
Both sandboxes are exercised: bubblewrap's namespaces (the default here) and the fallback that Gradescope's
container may force (AUTOGRADER_DISABLE=bwrap), as root and, for the namespaces, as an ordinary user.
"""

import ast
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autograder.assignment import load_assignment
from autograder.config import from_environment
from autograder.sandbox import Limits, run_worker

ROOT = Path(__file__).resolve().parent.parent
INSIDE = ROOT / "autograder" / "inside"
LIMITS = Limits(wall_seconds=120, cell_timeout=30, memory_mb=600)
pytestmark = pytest.mark.integration  # every test here but the import check runs code in the real sandbox
PROBES = '''
import os, socket

def view(args):
    return {"exists": {p: os.path.exists(p) for p in args["paths"]}, "tmp": sorted(os.listdir("/tmp")),
            "shm": sorted(os.listdir("/dev/shm")), "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
            "uid": os.getuid(), "cwd": os.getcwd(), "home": os.environ.get("HOME"),
            "secret_env": any(k.startswith("AUTOGRADER_SECRET") for k in os.environ)}

def read(args):
    try:
        return open(args["path"]).read()[:50]
    except OSError as error:
        return type(error).__name__

def connect(args):
    try:
        socket.create_connection(("127.0.0.1", args["port"]), timeout=2).close()
        return "connected"
    except Exception as error:
        return type(error).__name__

def leave(args):
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        with open(f"{folder}/ag-left-{args['tag']}", "w") as out:
            out.write("x")
    return "left"

def optimizer(args):
    import torch
    p = torch.nn.Parameter(torch.ones(2))
    try:
        torch.optim.Adam([p], lr=0.1)
        return "allowed"
    except Exception as error:
        return f"{type(error).__name__}: {error}"

def fused(args):
    import torch
    try:
        torch._foreach_add_([torch.ones(2)], [torch.ones(2)])
        return "allowed"
    except Exception as error:
        return type(error).__name__

def hog(args):
    blocks = []
    while True:
        blocks.append(bytearray(50 * 2**20))

def hang(args):
    while True:
        pass
'''


POLICY = load_assignment("hw4_part1").policy.to_json()


def measure(calls, cells=(), probes=PROBES, limits=LIMITS, switched_off=()):
    measure_request = {"cells": [], "definitions": {}, "sources": {}, "probes": probes, "kind": "optimizers",
                       "policy": POLICY, "switched_off": list(switched_off),
                       "calls": [{"name": n, "entry": e, "args": a, "timeout": t, "seed": 0} for n, e, a, t in calls]}
    request = {"cells": [{"id": f"c{i}", "source": s} for i, s in enumerate(cells)], "measure": measure_request}
    return run_worker(request, limits, [ROOT / "solution"], ("torch",), from_environment())  # an entry point


def value(run, name):
    probe = run.reply["probes"][name]
    assert probe["ok"], probe
    return probe["value"]


@pytest.fixture(params=["namespaces", "fallback"])
def mode(request, monkeypatch):
    if request.param == "fallback":
        if os.geteuid() != 0:
            pytest.skip("the fallback's unprivileged user needs root")
        monkeypatch.setenv("AUTOGRADER_DISABLE", "bwrap")
    return request.param


def test_the_run_sees_only_its_own_files_and_processes(mode, monkeypatch):
    secret = ROOT / "solution" / "part1.py"
    monkeypatch.setenv("AUTOGRADER_SECRET_HW4_PART1", "never inside")  # as a TA's shell or a batch holds it
    run = measure([("view", "view", {"paths": [str(secret), str(ROOT / ".git"), str(ROOT / "README.md")]}, 30),
                   ("read", "read", {"path": str(secret)}, 30)])
    assert run.mode == mode
    seen = value(run, "view")
    assert not seen["secret_env"]  # in both modes
    assert seen["uid"] != 0 or mode == "namespaces"
    if mode == "namespaces":  # the checkout is not in the view at all; /proc holds the run's processes only
        assert not any(seen["exists"].values()), seen["exists"]
        assert len(seen["pids"]) <= 6, seen["pids"]  # worker, measurement, its child, two kernel seeds
        from autograder.supervisor.host import python_paths
        environment = {p.parts[2] for p in python_paths() if p.parts[:2] == ("/", "tmp")}  # a venv under /tmp
        assert seen["cwd"] == "/scratch" and set(seen["tmp"]) == environment
        assert not any("FALLBACK" in note for note in run.notes)
    else:  # the same files exist on the host but the sandbox user cannot read them
        assert value(run, "read") == "PermissionError"
        assert any("FALLBACK SANDBOX" in note for note in run.notes)


def test_torch_optim_and_its_kernels_cannot_run_where_the_graded_code_is_measured(mode):
    run = measure([("optimizer", "optimizer", {}, 30), ("fused", "fused", {}, 30)])
    assert value(run, "optimizer").startswith("RuntimeError: torch.optim is disabled")
    assert value(run, "fused") == "RuntimeError"


def test_a_listener_on_the_hosts_loopback_is_unreachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        run = measure([("connect", "connect", {"port": server.getsockname()[1]}, 30)])
    assert value(run, "connect") != "connected"


def test_nothing_a_run_leaves_in_tmp_or_shm_reaches_the_next(mode):
    first = measure([("leave", "leave", {"tag": "one"}, 30)], cells=["open('/tmp/ag-left-kernel', 'w').write('x')"])
    assert value(first, "leave") == "left"
    second = measure([("view", "view", {"paths": []}, 30)])
    seen = value(second, "view")
    assert not [n for n in seen["tmp"] + seen["shm"] if n.startswith("ag-left")]
    assert not [n for n in os.listdir("/tmp") + os.listdir("/dev/shm") if n.startswith("ag-left")]


def test_a_memory_hog_is_stopped_by_the_memory_limit_and_costs_only_its_own_check(mode):
    run = measure([("hog", "hog", {}, 60), ("optimizer", "optimizer", {}, 30)],
                  limits=Limits(wall_seconds=90, cell_timeout=60, memory_mb=400))
    assert run.memory_exceeded, run.notes
    assert run.memory.limit_mb == 400 and (run.memory.stopped or run.memory.cgroup_oom_kills), run.notes
    hog = run.reply["probes"]["hog"]  # stopped twice (retried once): by its own limit, so not for review
    assert not hog["ok"] and hog["stopped"] == "memory" and "needs_review" not in hog, (hog, run.memory)
    assert hog["error"].startswith("your code used more memory than allowed (400 MB)")
    assert value(run, "optimizer").startswith("RuntimeError")  # the next check still ran


def test_a_call_that_hangs_times_out_and_the_next_still_runs():
    run = measure([("hang", "hang", {}, 3), ("optimizer", "optimizer", {}, 30)])
    hang = run.reply["probes"]["hang"]  # an uncalibrated call: its wall limit is final, no retry, no review
    assert not hang["ok"] and hang["stopped"] == "time" and hang["error"] == "did not finish within 3 s"
    assert value(run, "optimizer").startswith("RuntimeError")


def test_a_check_the_runs_clock_leaves_no_time_for_is_for_review_not_the_students_fault():
    # The measurement's wall deadline is half the run's (10 s here); two hanging calls use it up, so the third never
    # starts. That is the machine's time, not a limit of the third check: staff review it, nobody is charged.
    run = measure([("hang", "hang", {}, 6), ("hang2", "hang", {}, 6), ("optimizer", "optimizer", {}, 30)],
                  limits=Limits(wall_seconds=20, cell_timeout=10, memory_mb=600))
    assert run.reply["probes"]["hang"]["stopped"] == "time"
    late = run.reply["probes"]["optimizer"]
    assert late["needs_review"] == "box" and late["stopped"] == "deadline" and not late["ok"], late


def test_two_runs_at_once_cannot_see_or_signal_each_other():
    kill_all = "import os, signal\nfor p in os.listdir('/proc'):\n    if p.isdigit() and int(p) != os.getpid():\n" \
               "        try: os.kill(int(p), signal.SIGKILL)\n        except Exception: pass\n"
    results = {}
    victim = threading.Thread(target=lambda: results.update(victim=measure([("hang", "hang", {}, 8),
                                                                           ("view", "view", {"paths": []}, 30)])))
    victim.start()
    results["attacker"] = measure([], cells=["import time; time.sleep(2)", kill_all])
    victim.join()
    assert value(results["victim"], "view")["uid"] is not None


def test_the_sandbox_package_imports_nothing_from_the_trusted_side():
    for path in INSIDE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("autograder", "solution", "tests") for n in names), (path, names)


@pytest.mark.skipif(os.geteuid() != 0, reason="creates an ordinary user to run the grader as")
def test_as_an_ordinary_user_the_full_sandbox_is_used():
    import tempfile
    subprocess.run(["useradd", "--create-home", "ag-test-ta"], capture_output=True)
    tmp_path = Path(tempfile.mkdtemp(prefix="ag-test-ta-"))
    checkout = tmp_path / "checkout"  # the user's own copy: the fallback locks this one away from other users
    checkout.mkdir()
    for part in ("autograder", "solution", "tests"):
        subprocess.run(["cp", "-r", str(ROOT / part), str(checkout / part)], check=True)
    subprocess.run(["chown", "-R", "ag-test-ta", str(tmp_path)], check=True)
    script = tmp_path / "run.py"
    script.write_text(f"import sys, json; sys.path.insert(0, {str(checkout)!r})\n"
                      f"from tests.test_sandbox import measure, value\n"
                      f"run = measure([('view', 'view', {{'paths': [{str(ROOT / 'solution')!r}, {str(checkout)!r}]}}, 30)])\n"
                      f"print(json.dumps({{'mode': run.mode, 'view': value(run, 'view'), 'notes': run.notes}}))\n")
    tmp_path.chmod(0o755)
    script.chmod(0o644)
    done = subprocess.run(["su", "ag-test-ta", "-s", "/bin/sh", "-c", f"{sys.executable} {script}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["mode"] == "namespaces", report["notes"]
    assert not any(report["view"]["exists"].values())
