"""Run one submission's worker in the sandbox and collect its two replies: the measurements and the run's report.

The straight line: a zygote (supervisor/warmstart.py) holding the imports forks a confined run
(inside/zygote.py); the run's measurement process (inside/measure.py) writes the measurements on a pipe that only
it holds, and its worker (inside/worker.py) writes the report of the notebook run on another. Both are JSON;
nothing is unpickled. Whatever happens, the run's processes are killed, its memory is watched while it runs, and
in the fallback — where each run is a fresh uid of its own (supervisor/runusers.py), all of whose processes are
killed with kill(-1) as that uid — what it left on the host (files in the shared temporary folders, IPC objects,
its scratch folder) is removed. What each layer did, or why it could not, is in `WorkerRun.notes` for the staff log.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import cast
from pathlib import Path

from autograder import protocol
from autograder.config import GraderConfig
from autograder.stafftext import quote
from autograder.supervisor import filepolicy, host, processes, runusers
from autograder.supervisor.cgroups import Cgroups
from autograder.supervisor.memory import MemoryReport, MemoryWatch
from autograder.supervisor.warmstart import INSIDE, Zygote, ZygoteError

__all__ = ["Limits", "WorkerRun", "run_worker", "warm_start", "close_warm_starts"]

ROOT = Path(__file__).resolve().parent.parent
REPLY_LIMIT = 32_000_000
WARM_START_SECONDS = 120
SLOTS = 8  # concurrent runs on one machine, each with a user of its own


@dataclass(frozen=True)
class Limits:
    wall_seconds: int = 540  # whole run; Gradescope's default box allows 600 s per submission
    cell_timeout: int = 120  # one notebook cell or one measurement call
    memory_mb: int = 1200  # what the run's processes hold of their own (not the pages shared with the zygote)
    # A measurement call's CPU-time budget: max(cpu_floor_seconds, cpu_factor x the reference's CPU time for the
    # same call, measured by the grader). CPU time does not depend on how busy the machine is; the wall-clock
    # limit (cell_timeout, the run's deadlines) is only a backstop, wide enough for a half-core box.
    cpu_floor_seconds: int = 60
    cpu_factor: float = 50.0
    max_processes: int = 128  # threads count too
    max_file_mb: int = 64  # largest file the student's code may write
    output_kb_per_cell: int = 1000  # printed output kept per cell
    scratch_mb: int = 128  # the run's scratch folder (a tmpfs in the full sandbox)


@dataclass
class WorkerRun:
    reply: protocol.Reply | None
    returncode: int | None = None
    timed_out: bool = False
    memory_exceeded: bool = False
    peak_memory_mb: float | None = None
    memory: MemoryReport | None = None  # how memory was measured, what was stopped and by whom
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    problem: str = ""  # why there is no reply, for the student
    mode: str = ""  # "namespaces" or "fallback"


def run_worker(request: dict, limits: Limits, protected: list[Path], preload: tuple[str, ...] | None = None,
               config: GraderConfig | None = None) -> WorkerRun:
    """Run the worker on `request` under `limits`, with `protected` unreadable to it; always returns.
    `config`: the sandbox user's name and the layers switched off (GraderConfig(): none)."""
    config = config or GraderConfig()
    started, notes = time.monotonic(), list[str]()
    user, slot_lock = _claim_user(notes, config.sandbox_user)
    try:
        return _run(request, limits, protected, preload or (), user, notes, started, config)
    finally:
        if slot_lock is not None:
            os.close(slot_lock)


def _run(request, limits, protected, preload, user, notes, started, config: GraderConfig) -> WorkerRun:
    if user:
        host.let_user_run_python(INSIDE, notes)
        for path in protected:  # only the owner (root) may enter: the reference and the hidden cases
            if path.is_dir():
                path.chmod(path.stat().st_mode & ~0o077)
    zygote = warm_start(preload, user, config=config)
    if not zygote.wait_ready(WARM_START_SECONDS):
        notes.append(f"the warm start did not become ready; its log:\n{quote(zygote.log_tail())}")
        refusal = "" if zygote.mode == "fallback" else "the sandbox's warm start failed inside bubblewrap"
        zygote = warm_start(preload, user, refusal=refusal, config=config)
        if not zygote.wait_ready(WARM_START_SECONDS):
            return WorkerRun(None, notes=notes + [quote(zygote.log_tail())], problem="the sandbox could not start")
    run = WorkerRun(None, notes=notes + zygote.notes, mode=zygote.mode)
    groups, scratch = Cgroups({}), None
    if zygote.mode == "fallback":
        if user:  # a uid no earlier run had and no later run will: a survivor of this run reaches nothing
            user = runusers.fresh_user()
            run.notes.append(f"fallback: the run's processes run as the fresh uid {user.pw_uid}")
            host.lock_down(ROOT, [*(p for p in host.python_paths() if ROOT in p.parents), INSIDE], run.notes)
            groups = Cgroups.create(limits, run.notes, config.disabled)
        else:
            run.notes.append("not root and no bubblewrap: student code runs as the current user (dry runs only)")
        scratch = Path(tempfile.mkdtemp(prefix="autograder-run-"))
        if user:
            os.chown(scratch, user.pw_uid, user.pw_gid)
    request = {**request, "deadline": limits.wall_seconds - 15, "cell_timeout": limits.cell_timeout,
               "output_limit": limits.output_kb_per_cell * 1000}
    switched_off = {*request["measure"].get("switched_off", []), *({"landlock"} & config.disabled)}
    request["measure"] = {**request["measure"], "deadline": limits.wall_seconds * 0.5,
                          "calls": [_budgeted(call, limits) for call in request["measure"]["calls"]],
                          "switched_off": sorted(switched_off)}
    plan = _plan(limits, zygote.mode, scratch, groups, user)
    plan.update(filepolicy.plan(zygote.mode, user is not None, request["measure"], config.disabled, run.notes))
    env = _scrubbed_env(plan["scratch"])
    log = tempfile.TemporaryFile()
    pipes = {name: os.pipe() for name in ("request", "report", "measurements")}
    replies: dict[str, list[bytes]] = {"report": [], "measurements": []}
    try:
        worker = zygote.spawn([pipes["request"][0], pipes["report"][1], pipes["measurements"][1], log.fileno()],
                              env, plan)
    except ZygoteError as error:
        for read, write in pipes.values():
            os.close(read)
            os.close(write)
        run.problem = f"the sandbox could not start: {error}"
        return run
    for name in ("request",):
        os.close(pipes[name][0])
    for name in ("report", "measurements"):
        os.close(pipes[name][1])
    readers = [threading.Thread(target=_read_capped, args=(pipes[n][0], replies[n]), daemon=True) for n in replies]
    for reader in readers:
        reader.start()
    find = _finder(zygote, user)
    watch = MemoryWatch(find, limits.memory_mb, zygote.host_pid()).start()
    try:
        with os.fdopen(pipes["request"][1], "wb") as stream:
            stream.write(json.dumps(request).encode())
    except BrokenPipeError:
        pass
    try:
        run.returncode = worker.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        run.timed_out = True
    finally:
        if zygote.mode == "fallback" and user:  # kill(-1) as that uid: a fork chain cannot slip between scans
            try:
                runusers.kill_everything_of(user.pw_uid)
            except RuntimeError as error:
                run.notes.append(f"cleanup: {error}")
        processes.kill_all(find)
        if groups.paths:
            processes.kill_all(lambda: sorted(groups.pids()))
        worker.wait(timeout=10) if not run.timed_out else _forget(worker)
        for reader in readers:
            reader.join(timeout=5)
        oom_kills, peak = groups.memory_report()
        run.memory = watch.stop(peak, oom_kills)
        run.memory_exceeded = run.memory.exceeded
        run.peak_memory_mb = run.memory.peak_mb
        run.notes.append(run.memory.describe())
        groups.remove()
        if zygote.mode == "fallback":
            left = host.remove_leftovers(user.pw_uid) if user else []
            if left:
                run.notes.append(f"removed what the run left: {', '.join(left[:10])}")
            if scratch is not None:
                host.remove_tree(scratch)
        log.seek(max(0, log.seek(0, 2) - 4000))
        run.notes.append("worker log tail (the run's own output, quoted):\n"
                         + quote(log.read().decode(errors="replace")))
        log.close()
    run.wall_seconds = time.monotonic() - started
    run.reply, run.problem = _parse(replies, run)
    return run


def _budgeted(call: dict, limits: Limits) -> dict:
    """The call's CPU budget (calibrated by the reference's own CPU time where the grader measured it) and its
    wall-clock backstop, then twice the budget: room for a CPU-bound child on half a core on a busy machine."""
    reference, timeout = call.get("reference_cpu_seconds"), call.get("timeout", 60)
    if reference is None:  # no calibration (tests, the GPU harness): the call's own wall limit bounds its CPU too
        return {**call, "cpu_seconds": max(limits.cpu_floor_seconds, timeout), "timeout": timeout,
                "wall_is_limit": True}
    budget = round(max(limits.cpu_floor_seconds, limits.cpu_factor * reference), 1)
    return {**call, "cpu_seconds": budget, "timeout": max(timeout, 2 * budget)}


def _forget(worker) -> None:
    """A run past its time: its zygote cannot account for it any more; replace the zygote."""
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.zygote.close()


def _plan(limits: Limits, mode: str, scratch: Path | None, groups: Cgroups, user) -> dict:
    rlimits = {"RLIMIT_CPU": limits.wall_seconds * 2, "RLIMIT_FSIZE": limits.max_file_mb * 2**20, "RLIMIT_CORE": 0}
    if user is not None and "pids" not in groups.paths:  # a slot user of its own: its count is the run's (a
        rlimits["RLIMIT_NPROC"] = limits.max_processes  # TA's own user also runs their desktop: no limit there)
    if mode == "namespaces":
        return {"scratch": "/scratch", "scratch_mb": limits.scratch_mb, "rlimits": rlimits,
                "keep": [str(p) for p in host.python_paths()]}  # bound at the same paths in the view
    return {"scratch": str(scratch), "rlimits": rlimits,
            "cgroup_procs": [str(path / "cgroup.procs") for path in groups.paths.values()],
            "uid": user.pw_uid if user else None, "gid": user.pw_gid if user else None}


def _finder(zygote: Zygote, user):
    """How to list the run's processes on the host."""
    if zygote.mode == "fallback" and user is not None:
        return lambda: processes.processes_of(user.pw_uid)
    return lambda: processes.descendants(zygote.host_pid())


def _parse(replies: dict[str, list[bytes]], run: WorkerRun) -> tuple[protocol.Reply | None, str]:
    """The reply (protocol.Reply): the measurements decide; the notebook run (after them) only adds its report. A
    run that ran out of time or memory in the notebook, once the measurement process had answered, keeps its
    measurements. Only well-formed events of known kinds are kept (protocol.events_of)."""
    decoded = {}
    for name, chunks in replies.items():
        raw = b"".join(chunks)
        try:
            decoded[name] = json.loads(raw) if raw and len(raw) < REPLY_LIMIT else None
        except ValueError:
            decoded[name] = None
    measured, report = decoded["measurements"], decoded["report"]
    if not isinstance(measured, dict):
        if run.timed_out:
            return None, "the notebook did not finish within the time limit"
        if run.memory_exceeded:
            return None, "the notebook ran out of memory"
        return None, f"the grading process stopped without a result (exit status {run.returncode})"
    events = protocol.events_of(measured.get("events"))
    if not isinstance(report, dict):
        why = "memory" if run.memory_exceeded else "time" if run.timed_out else "stopped"
        stopped = cast(protocol.Event, protocol.event(protocol.NOTEBOOK_RUN_STOPPED, why))
        report, events = {"cells": []}, events + [stopped]
    reply = cast(protocol.Reply, {**report, "probes": _whose_fault(measured.get("probes", {}), run.memory),
             "definition_errors": measured.get("definition_errors", []), "layers": measured.get("layers", []),
             "events": protocol.events_of(report.get("events")) + events})
    return reply, ""


def _whose_fault(probes: dict, memory: MemoryReport | None) -> dict:
    """A call stopped twice from outside asks for review (the box's fault) unless this run's own limit stopped it:
    a process the watchdog killed, or an OOM kill in the run's own cgroup (which holds only the run)."""
    for result in probes.values():
        if not isinstance(result, dict) or result.get("needs_review") != "box" or memory is None:
            continue
        if memory.cgroup_oom_kills or set(result.get("pids", [])) & {*memory.stopped, *memory.stopped_inside}:
            result.pop("needs_review")
            result["stopped"] = "memory"
            result["error"] = f"your code used more memory than allowed ({memory.limit_mb} MB) and was stopped, twice"
    return probes


def _read_capped(fd: int, chunks: list[bytes]) -> None:
    size = 0
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            if size < REPLY_LIMIT:
                chunks.append(chunk)
            size += len(chunk)


def _scrubbed_env(scratch: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg",
        "JUPYTER_RUNTIME_DIR": f"{scratch}/.jupyter", "IPYTHONDIR": f"{scratch}/.ipython",
        "MPLCONFIGDIR": f"{scratch}/.matplotlib", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # see the machine notes: old OpenBLAS needs them
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _claim_user(notes: list[str], base: str):
    """(user, lock): as root, the first of this machine's slot users (`base`, `base`-run1, ...) that no other run
    holds (flock)."""
    if os.geteuid() != 0:
        return None, None
    global _last_slot
    folder = Path("/run/autograder")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = [base] + [f"{base}-run{slot}" for slot in range(1, SLOTS)]
    for name in sorted(names, key=lambda n: n != _last_slot):  # this process's last one first: its warm start
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _last_slot = name
        return host.sandbox_user(name, notes), fd
    raise RuntimeError(f"all {SLOTS} sandbox users are busy")


_last_slot = ""


_zygotes: dict[tuple, Zygote] = {}


@atexit.register
def close_warm_starts() -> None:
    """Stop every zygote: a grader that grades one submission frees their memory before its cases run."""
    for zygote in _zygotes.values():
        zygote.close()
    _zygotes.clear()


def warm_start(preload: tuple[str, ...], user=None, refusal: str = "", config: GraderConfig | None = None) -> Zygote:
    """The zygote for `preload` and this run's user, started now if none is alive; returns at once.
    `refusal` forces the fallback sandbox, saying why; `config` names the user and the layers switched off."""
    config = config or GraderConfig()
    if user is None and os.geteuid() == 0:
        user = host.sandbox_user(config.sandbox_user, [])
    key = (preload, user.pw_uid if user else None, config.disabled, refusal)
    zygote = _zygotes.get(key)
    if zygote is None or not zygote.alive() or "zygote" in config.disabled:
        if zygote is not None:
            zygote.close()
        if user is not None:  # before bubblewrap is tried: it must reach the environment as that user
            host.let_user_run_python(INSIDE, [])
        zygote = _zygotes[key] = Zygote(preload, _scrubbed_env("/tmp"), user.pw_uid if user else None, refusal,
                                        config.disabled)
    return zygote
