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

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from autograder.config import GraderConfig
from autograder.limits import Limits, budgeted
from autograder.stafftext import quote
from autograder.supervisor import filepolicy, host, processes, runusers
from autograder.supervisor.cgroups import Cgroups
from autograder.supervisor.memory import MemoryWatch
from autograder.supervisor.replies import WorkerRun, parse_replies, read_capped
from autograder.supervisor.runplan import run_plan, scrubbed_env
from autograder.supervisor.slots import claim_user
from autograder.supervisor.warmstart import INSIDE, Zygote, ZygoteError
from autograder.supervisor.zygotes import warm_start

__all__ = ["run_worker"]

ROOT = Path(__file__).resolve().parent.parent
WARM_START_SECONDS = 300  # wall clock, no student code yet: a cold, busy box may take minutes


def run_worker(request: dict, limits: Limits, protected: list[Path], preload: tuple[str, ...] | None = None,
               config: GraderConfig | None = None) -> WorkerRun:
    """Run the worker on `request` under `limits`, with `protected` unreadable to it; always returns.
    `config`: the sandbox user's name and the layers switched off (GraderConfig(): none)."""
    config = config or GraderConfig()
    started, notes = time.monotonic(), list[str]()
    user, slot_lock = claim_user(notes, config.sandbox_user)
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
            return WorkerRun(None, notes=notes + [quote(zygote.log_tail())], review="grader",
                             problem="the grader's sandbox could not start (not your code); your course staff will "
                                     "review it")
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
    elif user:  # the full sandbox, as root: the kernel bounds the run's memory and processes, not only the watchdog
        groups = Cgroups.create(limits, run.notes, config.disabled)
    request = {**request, "deadline": limits.wall_seconds - 15, "cell_timeout": limits.cell_timeout,
               "output_limit": limits.output_kb_per_cell * 1000}
    switched_off = {*request["measure"].get("switched_off", []), *({"landlock"} & config.disabled)}
    request["measure"] = {**request["measure"], "deadline": limits.wall_seconds * 0.5,
                          "calls": [budgeted(call, limits) for call in request["measure"]["calls"]],
                          "switched_off": sorted(switched_off)}
    plan = run_plan(limits, zygote.mode, scratch, groups, user)
    plan.update(filepolicy.plan(zygote.mode, user is not None, request["measure"], config.disabled, run.notes))
    env = scrubbed_env(plan["scratch"])
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
        run.problem = "the grader's sandbox could not start (not your code); your course staff will review it"
        run.review = "grader"
        run.notes.append(f"the sandbox could not start: {error}")
        return run
    for name in ("request",):
        os.close(pipes[name][0])
    for name in ("report", "measurements"):
        os.close(pipes[name][1])
    readers = [threading.Thread(target=read_capped, args=(pipes[n][0], replies[n]), daemon=True) for n in replies]
    for reader in readers:
        reader.start()
    if zygote.mode == "namespaces" and groups.paths:
        groups = _into_cgroups(groups, zygote, worker, run.notes)
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
    run.reply, run.problem = parse_replies(replies, run)
    return run


def _into_cgroups(groups: Cgroups, zygote: Zygote, worker, notes: list[str]) -> Cgroups:
    """The full sandbox's run, into its cgroups while it waits for its request (inside/zygote.py): everything it
    starts is then in them. Where it cannot be moved, the watchdog alone bounds its memory, as without cgroups."""
    pid = processes.host_pid(zygote.host_pid(), worker.pid)
    if pid is not None and groups.add(pid):
        return groups
    notes.append("the run could not be put in its cgroups: memory is bounded by the grader's watchdog only")
    groups.remove()
    return Cgroups({})


def _forget(worker) -> None:
    """A run past its time: its zygote cannot account for it any more; replace the zygote."""
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.zygote.close()


def _finder(zygote: Zygote, user):
    """How to list the run's processes on the host."""
    if zygote.mode == "fallback" and user is not None:
        return lambda: processes.processes_of(user.pw_uid)
    return lambda: processes.descendants(zygote.host_pid())
