"""The sandbox, for real: who the student's code runs as, what it can reach, and what stops it.

One worker run answers several probes, each a small piece of code run in the student's kernel.
"""

import os
import pwd
from pathlib import Path

import pytest

from autograder.sandbox import SANDBOX_USER, Limits, run_worker

ROOT = Path(__file__).resolve().parent.parent
PRELUDE = (ROOT / "autograder" / "kernel_prelude.py").read_text()
PROBES = '''
import os, socket, resource

def whoami(_):
    return {"uid": os.getuid(), "cwd": os.getcwd(), "omp": os.environ.get("OMP_NUM_THREADS"),
            "secret_env": "AUTOGRADER_SECRET" in os.environ, "home": os.environ.get("HOME")}

def read(path):
    try:
        return open(path).read()[:100]
    except OSError as error:
        return type(error).__name__

def connect(_):
    try:
        socket.create_connection(("1.1.1.1", 443), timeout=2)
        return "connected"
    except OSError as error:
        return type(error).__name__

def big_file(_):
    try:
        with open("big.bin", "wb") as f:
            f.write(b"x" * (40 * 2**20))
        return "written"
    except OSError as error:
        return type(error).__name__

def limits(_):
    return {"fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0], "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0]}

def descriptors(_):
    """What this kernel and its parent (the worker) hold open, e.g. "pipe:[1234]"."""
    found = {}
    for pid in ("self", str(os.getppid())):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                found[f"{pid}:{fd}"] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError as error:
            found[f"{pid}:unreadable"] = type(error).__name__
    return found

def modules(_):
    import sys
    return sorted(sys.modules)
'''
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox's user, cgroup and netns need root")


def call(name, entry, arg, timeout=20):
    return {"name": name, "code": f"_autograder.call({entry}, {arg!r})", "timeout": timeout}


def request(calls, cells=()):
    return {"cells": [{"id": f"c{i}", "source": s} for i, s in enumerate(cells)], "definition_cells": [],
            "prelude": PRELUDE, "probes": PROBES, "calls": calls}


COLD, WARM = None, ("json",)  # run_worker's `preload`: exec'ed worker, or forked from a warm start


@needs_root
@pytest.mark.parametrize("preload", [COLD, WARM], ids=["cold", "warm"])
def test_student_code_runs_unprivileged_offline_and_blind_to_the_reference(monkeypatch, preload):
    monkeypatch.setenv("AUTOGRADER_SECRET", "do not leak")
    run = run_worker(request([
        call("whoami", "whoami", None),
        call("reference", "read", str(ROOT / "solution" / "part1.py")),
        call("cases", "read", str(ROOT / "autograder" / "assignments" / "hw4_part1" / "cases.py")),
        call("network", "connect", None),
        call("big_file", "big_file", None),
        call("limits", "limits", None),
        call("modules", "modules", None),
    ]), Limits(wall_seconds=60, max_file_mb=16), [ROOT / "solution", ROOT / "autograder" / "assignments"], preload)
    assert not any("starting the worker cold" in note for note in run.notes)
    probes = {name: value["value"] for name, value in run.reply["probes"].items()}
    assert not [m for m in probes["modules"] if m.split(".")[0] in ("solution", "autograder", "pytest")]
    assert probes["whoami"]["uid"] == pwd.getpwnam(SANDBOX_USER).pw_uid != 0
    assert probes["whoami"]["cwd"].startswith("/tmp/autograder-") and probes["whoami"]["cwd"] == probes["whoami"]["home"]
    assert probes["whoami"]["omp"] == "1" and probes["whoami"]["secret_env"] is False
    assert probes["reference"] == "PermissionError" and probes["cases"] == "PermissionError"
    assert probes["network"] in ("OSError", "ConnectionRefusedError", "TimeoutError") or "Error" in probes["network"]
    assert probes["network"] != "connected"
    assert probes["limits"]["fsize"] == 16 * 2**20
    assert probes["big_file"] != "written"  # 40 MB > the 16 MB file limit: SIGXFSZ or EFBIG
    assert (ROOT / "solution" / "part1.py").read_text()  # and the grader itself still reads it


@needs_root
def test_a_probe_that_hangs_times_out_and_the_next_one_still_runs():
    run = run_worker(request([call("hang", "lambda _: __import__('time').sleep(60)", None, timeout=3),
                              call("after", "whoami", None)]), Limits(wall_seconds=60), [])
    assert run.reply["probes"]["hang"]["error"] == "timeout: did not finish within 3 s"
    assert run.reply["probes"]["after"]["ok"]


@needs_root
def test_a_worker_that_dies_yields_a_reason_not_a_crash():
    run = run_worker({**request([]), "prelude": None}, Limits(wall_seconds=30), [])  # the worker cannot start
    assert run.reply is None and "stopped without a result" in run.problem


@needs_root
def test_the_whole_run_is_bounded_by_the_wall_clock():
    freeze_worker = "lambda _: __import__('os').kill(__import__('os').getppid(), 19)"  # SIGSTOP the worker
    run = run_worker(request([call("freeze", freeze_worker, None)]), Limits(wall_seconds=20), [])
    assert run.timed_out and run.reply is None and run.wall_seconds < 20 + 15
    assert "time limit" in run.problem


@needs_root
@pytest.mark.parametrize("preload", [COLD, WARM], ids=["cold", "warm"])
def test_the_kernel_holds_none_of_the_graders_pipes(monkeypatch, preload):
    """Else student code could write its own reply, or read the request's hidden inputs before its probes."""
    import autograder.sandbox as sandbox
    created = []

    def recording_pipe():
        ends = real_pipe()
        created.extend(f"pipe:[{os.fstat(fd).st_ino}]" for fd in ends[:1])
        return ends

    real_pipe = os.pipe
    monkeypatch.setattr(sandbox.os, "pipe", recording_pipe)
    run = run_worker(request([call("descriptors", "descriptors", None)]), Limits(wall_seconds=60), [], preload)
    held = run.reply["probes"]["descriptors"]["value"]
    kernel = {fd: target for fd, target in held.items() if fd.startswith("self:")}
    worker = {fd: target for fd, target in held.items() if not fd.startswith("self:")}
    assert len(created) >= 2 and kernel and worker
    assert not set(created) & set(kernel.values())  # neither the request nor the reply pipe
    if preload is COLD:
        assert set(created) & set(worker.values())  # the worker does hold the reply pipe: the check can see them
    else:  # forked by root, then setuid: not dumpable, so student code cannot even inspect (or ptrace) it
        assert list(worker.values()) == ["PermissionError"]


def test_a_warm_start_that_cannot_start_falls_back_to_a_cold_worker():
    run = run_worker(request([call("whoami", "whoami", None)]), Limits(wall_seconds=60), [],
                     preload=("no_such_module_anywhere",))
    assert run.reply["probes"]["whoami"]["ok"]
    assert any("starting the worker cold" in note for note in run.notes)


def test_a_warm_start_kernel_starts_with_the_preloaded_modules():
    run = run_worker(request([call("modules", "modules", None)]), Limits(wall_seconds=60), [], ("colorsys",))
    assert "colorsys" in run.reply["probes"]["modules"]["value"]
    cold = run_worker(request([call("modules", "modules", None)]), Limits(wall_seconds=60), [], COLD)
    assert "colorsys" not in cold.reply["probes"]["modules"]["value"]  # so the check above can fail


@needs_root
@pytest.mark.parametrize("preload", [COLD, WARM], ids=["cold", "warm"])
def test_without_cgroups_an_address_space_limit_stops_a_memory_hog(monkeypatch, preload):
    """Gradescope's containers may refuse cgroups: RLIMIT_AS is the fallback, counted from what the
    process already maps when it is forked from the warm start."""
    monkeypatch.setenv("AUTOGRADER_DISABLE", "cgroups")
    hog = "lambda _: [bytearray(2**30) for _ in range(64)] and 'all 64 GB allocated'"
    run = run_worker(request([call("hog", hog, None), call("after", "whoami", None)]),
                     Limits(wall_seconds=60, memory_mb=300), [], preload)
    assert "MemoryError" in run.reply["probes"]["hog"]["error"]
    assert run.reply["probes"]["after"]["ok"]  # the kernel survived its refused allocation
    assert any("falling back to rlimits" in note for note in run.notes)
