"""The sandbox, for real: what a run's code can see and reach, what stops it, and what it leaves behind.

Each test sends the measurement process a small probe module (a stand-in for an assignment's probes) and, where it
matters, notebook cells for the top-to-bottom run; the probes report what the student's side of the sandbox sees.
Both sandboxes are exercised: bubblewrap's namespaces (the default here) and the fallback that Gradescope's
container may force (AUTOGRADER_DISABLE=bwrap), as root and, for the namespaces, as an ordinary user.

Every defence has its control: the same attack with that defence switched off goes through. Where the request has
a switch (`switched_off`, test-only), it is used; the network namespace is switched off by the fallback (which has
none); a limit by raising it; the whole sandbox by running the same probe in a plain process (`unsandboxed`).
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
from autograder.limits import Limits
from autograder.sandbox import run_worker

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

def allocate(args):
    import time
    block = bytearray(args["mb"] * 2**20)
    block[::4096] = b"1" * len(block[::4096])
    time.sleep(args.get("hold", 3))  # held: without cgroups (not root) only the watchdog's 0.2 s samples see it
    return "allocated"

def hang(args):
    while True:
        pass

def spin(args):
    import time
    end = time.monotonic() + args["seconds"]
    while time.monotonic() < end:
        pass
    return "finished"

def kill(args):
    import errno, signal
    found = {}
    for pid in args["pids"]:
        try:
            os.kill(pid, signal.SIGKILL)
            found[str(pid)] = "killed"
        except OSError as error:
            found[str(pid)] = errno.errorcode.get(error.errno, str(error.errno))
    return found
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


def unsandboxed(entry: str, args: dict, probes: str = PROBES):
    """The control: the same probe in a plain child of this process (this user, this environment), no sandbox."""
    code = ("import json, sys\nscope = {}\nexec(compile(sys.stdin.read(), '<probes>', 'exec'), scope)\n"
            "print(json.dumps(scope[sys.argv[1]](json.loads(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", code, entry, json.dumps(args)], input=probes, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


ALL_LAYERS = ("guard", "landlock", "view", "permissions", "syscalls")  # the measurement process's own layers (switched_off)


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
        # the mechanism: another uid than the reference's owner, and the reference's folder closed to others
        assert seen["uid"] not in (0, os.geteuid(), secret.stat().st_uid)
        assert secret.parent.stat().st_mode & 0o077 == 0


def test_without_the_sandbox_the_same_probes_see_the_secret_the_checkout_and_every_process(monkeypatch):
    """The control of the test above: a plain process, with the same environment, sees all it must not."""
    secret = ROOT / "solution" / "part1.py"
    monkeypatch.setenv("AUTOGRADER_SECRET_HW4_PART1", "never inside")
    seen = unsandboxed("view", {"paths": [str(secret), str(ROOT / ".git"), str(ROOT / "README.md")]})
    assert seen["secret_env"] and all(seen["exists"].values()), seen["exists"]
    assert len(seen["pids"]) > 6 and seen["cwd"] != "/scratch"
    assert unsandboxed("read", {"path": str(secret)}) == secret.read_text()[:50]


def test_torch_optim_and_its_kernels_cannot_run_where_the_graded_code_is_measured(mode):
    run = measure([("optimizer", "optimizer", {}, 30), ("fused", "fused", {}, 30)])
    assert value(run, "optimizer").startswith("RuntimeError: torch.optim is disabled")
    assert value(run, "fused") == "RuntimeError"


def test_with_the_guard_switched_off_torch_optim_and_its_kernels_run(mode):
    """The control: the guard is what stubs them (the kernel's layers only refuse files and system calls)."""
    run = measure([("optimizer", "optimizer", {}, 30), ("fused", "fused", {}, 30)], switched_off=("guard",))
    assert (value(run, "optimizer"), value(run, "fused")) == ("allowed", "allowed")


def _connect(switched_off=()) -> str:
    """What the `connect` probe gets from a listener on the host's loopback, in a run of the current mode."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        run = measure([("connect", "connect", {"port": server.getsockname()[1]}, 30)], switched_off=switched_off)
    return value(run, "connect")


def test_a_listener_on_the_hosts_loopback_is_unreachable():
    assert _connect() != "connected"


def test_the_network_namespace_alone_keeps_the_hosts_loopback_out_of_reach(monkeypatch):
    """With the measurement's own layers off (the guard and the system-call policy refuse sockets first), only the
    network namespace is left; the fallback, which has none, is the control: there the same probe connects."""
    assert _connect(ALL_LAYERS) in ("ConnectionRefusedError", "OSError")
    if os.geteuid() != 0:
        pytest.skip("the fallback's unprivileged user needs root")
    monkeypatch.setenv("AUTOGRADER_DISABLE", "bwrap")
    assert _connect(ALL_LAYERS) == "connected"


def test_nothing_a_run_leaves_in_tmp_or_shm_reaches_the_next(mode):
    first = measure([("leave", "leave", {"tag": "one"}, 30), ("view", "view", {"paths": []}, 30)],
                    cells=["open('/tmp/ag-left-kernel', 'w').write('x')"])
    assert value(first, "leave") == "left"
    within = value(first, "view")  # the control: until the run ends, the next call sees what was left
    assert "ag-left-one" in within["tmp"] and "ag-left-one" in within["shm"], within
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


def test_the_memory_limit_is_what_stops_an_allocation(mode):
    """600 MB, held: stopped under a 400 MB limit; the control, the same allocation under 1200 MB, completes.
    Held for 3 s: without root there are no cgroups, so a burst freed within one of the watchdog's 0.2 s samples
    can pass; under CI's load an allocation returned at once passed this way."""
    stopped = measure([("allocate", "allocate", {"mb": 600}, 60)],
                      limits=Limits(wall_seconds=90, cell_timeout=60, memory_mb=400))
    assert stopped.memory_exceeded and stopped.reply["probes"]["allocate"].get("stopped") == "memory", stopped.notes
    allowed = measure([("allocate", "allocate", {"mb": 600}, 60)],
                      limits=Limits(wall_seconds=90, cell_timeout=60, memory_mb=1200))
    assert value(allowed, "allocate") == "allocated" and not allowed.memory_exceeded, allowed.notes


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
def test_as_root_the_kernel_stops_a_burst_in_the_runs_own_memory_cgroup(mode):
    """600 MB touched and freed at once, under a 400 MB limit: the run's cgroup OOM-kills it, in both modes (the
    full sandbox's run is moved into its cgroups before it may start anything); no watchdog sample is needed."""
    run = measure([("burst", "allocate", {"mb": 600, "hold": 0}, 60)],
                  limits=Limits(wall_seconds=90, cell_timeout=60, memory_mb=400))
    assert run.memory.cgroup_oom_kills >= 1 and run.memory.source == "cgroup", run.notes
    assert run.reply["probes"]["burst"].get("stopped") == "memory", run.reply["probes"]
    assert not any("could not be put in its cgroups" in note for note in run.notes)


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


def test_the_calls_time_limit_is_what_stops_a_long_computation():
    """Six seconds of work: stopped under a 3 s limit; the control, the same work under 30 s, finishes."""
    run = measure([("short", "spin", {"seconds": 6}, 3), ("long", "spin", {"seconds": 6}, 30)])
    short = run.reply["probes"]["short"]
    assert not short["ok"] and short["stopped"] == "time", short
    assert value(run, "long") == "finished"


def _with_a_top_level_run(seconds: float, cells_cpu_seconds: float):
    cells = [{"label": "Cell [1]", "kind": "context", "source": f"import time\nend = time.process_time() + {seconds}\n"
              "while time.process_time() < end:\n    pass\n"},
             {"label": "Cell [2]", "kind": "definition", "source": "def answer(args):\n    return 42\n"}]
    probes = "def call(args):\n    return _autograder.namespace['answer'](args)\n"
    request = {"cells": [], "measure": {"cells": cells, "definitions": {}, "sources": {}, "kind": "optimizers",
                                        "probes": probes, "policy": POLICY,
                                        "cells_cpu_seconds": cells_cpu_seconds,
                                        "calls": [{"name": n, "entry": "call", "args": {}, "timeout": 60, "seed": 0}
                                                  for n in ("first", "second")]}}
    return run_worker(request, LIMITS, [ROOT / "solution"], ("torch",), from_environment())


def test_a_top_level_statement_past_the_cells_cpu_is_left_out_and_not_rerun_for_every_check():
    run = _with_a_top_level_run(seconds=1000, cells_cpu_seconds=2)  # a training run at top level, say
    assert value(run, "first") == value(run, "second") == 42
    assert {"kind": "definition_slow", "cell": "Cell [1]"} in run.reply["events"]
    assert all(run.reply["probes"][n]["cpu_seconds"] < 2 for n in ("first", "second"))  # not run again per check
    control = _with_a_top_level_run(seconds=1, cells_cpu_seconds=30)  # within the CPU: kept, run in every check
    assert value(control, "first") == 42 and not any(e["kind"] == "definition_slow" for e in control.reply["events"])
    assert control.reply["probes"]["first"]["cpu_seconds"] >= 0.9


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


def test_a_run_cannot_signal_a_process_outside_it(mode):
    """A process of the host (as another run's are to this one) is out of sight (namespaces) or another user's
    (fallback), even with the measurement's own layers off (the guard refuses os.kill first). The control: the
    same probe in a plain process kills it."""
    outside = subprocess.Popen(["sleep", "300"])
    try:
        run = measure([("kill", "kill", {"pids": [outside.pid]}, 30)], switched_off=ALL_LAYERS)
        assert value(run, "kill") == {str(outside.pid): "ESRCH" if mode == "namespaces" else "EPERM"}
        assert outside.poll() is None
        assert unsandboxed("kill", {"pids": [outside.pid]}) == {str(outside.pid): "killed"}
        assert outside.wait(timeout=30) == -9
    finally:
        outside.kill()
        outside.wait()


def _trusted_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found += [n for n in names if n.split(".")[0] in ("autograder", "solution", "tests")]
    return found


def test_the_sandbox_package_imports_nothing_from_the_trusted_side():
    assert len(list(INSIDE.glob("*.py"))) > 5
    for path in INSIDE.glob("*.py"):
        assert _trusted_imports(path.read_text()) == [], path
    # the control: an import of the reference, at top level or hidden in a function, is found
    planted = "import os\ndef f():\n    from solution.part1 import Adam\nimport autograder.grade\n"
    assert sorted(_trusted_imports(planted)) == ["autograder.grade", "solution.part1"]


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
    assert (ROOT / "solution").is_dir() and checkout.is_dir()  # the control: outside the sandbox both are there
