"""Warm start, inside the sandbox: import the heavy modules once, then fork one confined run per request.

Started by the grader (autograder/supervisor/warmstart.py) as `python -I zygote.py FD MODE PRELOAD`: MODE "namespaces"
inside bubblewrap's sandbox (the usual case, root or not), or "fallback" outside any namespace where the kernel refuses
them (it then runs as the grader's user and confines each run with confine.py). It imports only public modules and this
folder's files, never the grader, the reference or the hidden cases, so a run holds nothing a student may not see. Each
run is a child that closes every descriptor but its own, enters its own namespaces (isolate.py) or is confined
(confine.py), forks the measurement process (measure_seed.py) while it still may narrow that process's view and user
further than its own (a read-only cover over the forbidden folders; no group that may read them), then drops its own
privileges and becomes the worker (worker.py).

Messages are JSON on a SOCK_SEQPACKET socket pair; a run's request, report, measurement and log descriptors travel
with the request. Grader -> zygote: {"env", "plan"} with fds [request, report, measurements, log]. Zygote ->
grader: {"ready": true} once, then {"pid"} or {"error"} per request, and {"exit": pid, "code"} when that run ends.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import select
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `python -I` leaves this folder off the path
import confine  # noqa: E402
import guard  # noqa: E402
import isolate  # noqa: E402
import worker  # noqa: E402
from measure_seed import MeasureSeed  # noqa: E402

MESSAGE_LIMIT = 1 << 20


def _run(job: dict, fds: list[int], mode: str) -> int:
    """In the forked child: become one confined run of the worker; returns its exit code."""
    request, report, measurements, log = fds
    # Nothing happens before the request arrives: the full sandbox's grader first moves this process into the run's
    # cgroups (it cannot see them from here), so that every process the run starts is born in them.
    select.select([request], [], [])
    os.dup2(request, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in (request, log):
        os.close(fd)
    keep = sorted((report, measurements))
    os.closerange(3, keep[0])  # the zygote's socket and anything else it holds
    os.closerange(keep[0] + 1, keep[1])
    os.closerange(keep[1] + 1, 65536)
    plan = job["plan"]
    os.environ.clear()
    os.environ.update(job["env"])
    if mode == "namespaces":
        confine.first_to_go()
        child = isolate.enter(plan["scratch"], plan["scratch_mb"], plan.get("keep", []))
        if child:
            for fd in keep:
                os.close(fd)
            _, status = os.waitpid(child, 0)
            return os.waitstatus_to_exitcode(status)
        os.chdir(plan["scratch"])
        isolate.not_dumpable()  # the whole run: no /proc/PID/root or fd of its processes around the hidden view

        def confine_run() -> None:
            isolate.drop_privileges()
            for name, value in plan["rlimits"].items():
                resource.setrlimit(getattr(resource, name), (value, value))

        def confine_measurement() -> None:
            _hide(plan.get("hide", []))
            confine_run()

        measurement = MeasureSeed(measurements, confine_measurement)
        confine_run()
    else:
        os.chdir(plan["scratch"])
        confine.confine(plan)
        measurement = MeasureSeed(measurements, lambda: confine.become(plan, plan.get("measure_groups", [])))
        confine.become(plan, plan.get("groups", []))
        isolate.not_dumpable()  # (changing the user did it too, unless the host's suid_dumpable says otherwise)
    worker.main(report, measurement)
    return 0


def _hide(folders: list[str]) -> None:
    """The measurement process's read-only view; where the kernel refuses it, the measurement process reports the
    layer missing (policy.py checks what is in force, it does not take it on trust)."""
    if folders:
        try:
            isolate.hide(folders)
        except OSError as error:
            print(f"the measurement's read-only view was not made: {error}", file=sys.stderr)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    mode = sys.argv[2]
    for module in json.loads(sys.argv[3]):
        importlib.import_module(module)
    # What is imported now stays: the children's collections skip it and do not copy its pages, and the
    # measurement's guard finds the functions it must disable through the index instead of walking it all.
    guard.freeze_indexed()
    sock.send(json.dumps({"ready": True}).encode())
    children: dict[int, int] = {}  # pidfd -> pid
    while True:
        watched: list[socket.socket | int] = [sock, *children]
        readable, _, _ = select.select(watched, [], [])
        for pidfd in [fd for fd in readable if fd in children]:
            pid = children.pop(pidfd)
            os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        if sock not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(sock, MESSAGE_LIMIT, 8)
        if not message:  # the grader closed its end or exited; it waits for this exit, and tearing down an
            sys.stdout.flush()  # interpreter that holds torch would cost it a few tenths of a second for nothing
            sys.stderr.flush()
            os._exit(0)
        try:
            job = json.loads(message)
            if len(fds) != 4:
                raise ValueError(f"expected 4 descriptors, got {len(fds)}")
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                code = 70
                try:
                    code = _run(job, fds, mode)
                except BaseException:
                    import traceback
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            children[os.pidfd_open(pid)] = pid
            sock.send(json.dumps({"pid": pid}).encode())
        except Exception as error:  # a bad request costs that request, not the zygote
            sock.send(json.dumps({"error": repr(error)}).encode())
        finally:
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    main()
