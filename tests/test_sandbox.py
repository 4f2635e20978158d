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
'''
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox's user, cgroup and netns need root")


def call(name, entry, arg, timeout=20):
    return {"name": name, "code": f"_autograder.call({entry}, {arg!r})", "timeout": timeout}


def request(calls, cells=()):
    return {"cells": [{"id": f"c{i}", "source": s} for i, s in enumerate(cells)], "definition_cells": [],
            "prelude": PRELUDE, "probes": PROBES, "calls": calls}


@needs_root
def test_student_code_runs_unprivileged_offline_and_blind_to_the_reference(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SECRET", "do not leak")
    run = run_worker(request([
        call("whoami", "whoami", None),
        call("reference", "read", str(ROOT / "solution" / "part1.py")),
        call("cases", "read", str(ROOT / "autograder" / "assignments" / "hw4_part1" / "cases.py")),
        call("network", "connect", None),
        call("big_file", "big_file", None),
        call("limits", "limits", None),
    ]), Limits(wall_seconds=60, max_file_mb=16), [ROOT / "solution", ROOT / "autograder" / "assignments"])
    probes = {name: value["value"] for name, value in run.reply["probes"].items()}
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
