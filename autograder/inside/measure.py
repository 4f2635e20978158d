"""The measurement process: every graded call in a fresh child holding only the notebook's imports and definitions.

Forked by the worker before any student code exists, it never runs student code itself. It installs the
assignment's policy once (policy.py: preloads, Landlock, seccomp, the guard), then for each call forks a child
that closes every descriptor but its own result pipe, installs its own stricter seccomp filter, seeds Python's,
numpy's and torch's generators from the call, executes the definitions (runtime.py), runs the probe and writes
plain JSON back. A child that overruns its time
is killed; a definition that kills its process is found by a first child that reports after each cell, and is
left out of the others. The reply is written once, at the end, on a descriptor only this process holds (the
children close theirs before anything else), and then the process exits.

Request and reply: MeasureRequest and Measurements in autograder/protocol.py (JSON on the request descriptor the
worker passes, and on the reply descriptor); events are protocol.py's (this folder's) kinds.

Limits: each call's child has a CPU-time budget (RLIMIT_CPU, `cpu_seconds`: the grader sets it from the
reference's own cost), which does not depend on how busy the machine is; its wall-clock `timeout` is only a
generous backstop for a child that sleeps or waits. A child stopped by the box rather than by its own budget
(killed from outside: the OOM killer or the grader's watchdog; the wall backstop) is run once more; stopped that
way again, its result says `needs_review: "box"` with the pids killed, and the grader decides whose fault it was.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time

import policy
import protocol
import runtime

RESULT_LIMIT = 8_000_000
CPU_GRACE = 5  # seconds between the soft CPU limit (SIGXCPU) and the hard one (SIGKILL)
WAITING_SHARE = 0.02  # a child past its wall backstop that used less CPU than this share of it was waiting
FRAME = b"\x00autograder-frame:"
# The CPU the imports, definitions and context statements may use, all together, in one check of the cells: a few
# seconds for any notebook in the course's shape; a slow top-level statement (a student's own training run) past
# it is left out, so that it is not re-run for every measurement. CPU, not wall time: a busy machine changes nothing.
CELLS_CPU_SECONDS = 30
CONFINE_FAILED = 71  # a child's exit status when its system-call filter could not be installed (the grader's fault)


def main(request_fd: int, reply_fd: int) -> None:
    with os.fdopen(request_fd, "rb") as stream:
        raw = stream.read()
    if not raw:
        os._exit(0)  # not needed after all
    request = json.loads(raw)
    os.set_inheritable(reply_fd, False)
    reply: dict = {"probes": {}, "definition_errors": [], "events": [], "layers": []}
    try:
        reply["layers"] = policy.confine_measurement(request.get("policy", {}), request.get("kind", "definitions"),
                                                     tuple(request.get("switched_off", ())))
        deadline = time.monotonic() + request["deadline"]
        cells = _surviving_cells(request, reply, deadline)
        for call in request["calls"]:
            left = deadline - time.monotonic()
            if left <= 1:
                reply["probes"][call["name"]] = {  # the run's wall clock, not a limit of the call: not theirs
                    "ok": False, "needs_review": "box", "stopped": "deadline",
                    "error": "this check was not run: the grading ran out of time before it (the machine was slow), "
                             "not because of a limit on your code; your course staff will review it"}
                continue
            reply["probes"][call["name"]] = _run_call(request, cells, call, min(call["timeout"], left))
    except Exception as error:  # a bug here must still leave a reply: the calls not measured say so
        reply["events"].append(protocol.event(protocol.MEASUREMENT_FAILED, repr(error)))
    data = json.dumps(reply, allow_nan=True).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(reply_fd, view):]
    os._exit(0)


def _surviving_cells(request: dict, reply: dict, deadline: float) -> list[dict]:
    """The definition cells minus any that kills its process (os._exit in a class body, say) or is running when
    they have used up their CPU together (a training run at top level)."""
    cells = list(request["cells"])
    budget = request.get("cells_cpu_seconds", CELLS_CPU_SECONDS)  # the grader's own tests set a shorter one
    for _ in range(len(cells) + 1):
        outcome = _in_child(lambda write: _check_cells(cells, request, write), max(1.0, deadline - time.monotonic()),
                            budget)
        done = _progress(outcome["output"], len(cells))
        if len(done) == len(cells):
            reply["definition_errors"] = [[cells[i]["label"], text] for i, text in enumerate(done) if text]
            return cells
        culprit = cells.pop(len(done))
        if outcome["stopped"] == "cpu":
            reply["events"].append(protocol.event(protocol.DEFINITION_SLOW, culprit["label"]))
        else:
            reply["events"].append(protocol.event(protocol.DEFINITION_STOPPED, culprit["label"]))
    return cells


def _progress(output: str, count: int) -> list[str]:
    """The errors of the cells the check child got through, in order. Student code shares that child, so anything
    but the expected `[index, text]` lines is ignored (and a line it forges only misplaces its own cells)."""
    done: list[str] = []
    for line in output.splitlines():
        try:
            index, text = json.loads(line)
        except (ValueError, TypeError):
            continue
        if index == len(done) and isinstance(text, str) and len(done) < count:
            done.append(text)
    return done


def _check_cells(cells: list[dict], request: dict, write) -> None:
    checker = runtime.Runtime([], request["definitions"], request["sources"])
    for index, cell in enumerate(cells):
        write(json.dumps([index, checker.run(cell)]).encode() + b"\n")


def _run_call(request: dict, cells: list[dict], call: dict, timeout: float) -> dict:
    def body(write) -> None:
        _seed(call.get("seed", 0))
        measured = runtime.Runtime(cells, request["definitions"], request["sources"])
        write(runtime.encode(measured.call(request["probes"], call["entry"], call["args"])))

    budget = call.get("cpu_seconds")
    outcome = _in_child(body, timeout, budget)
    if outcome["stopped"] == "wall" and call.get("wall_is_limit"):  # uncalibrated: the wall clock is the limit
        return {"ok": False, "stopped": "time", "cpu_seconds": outcome["cpu_seconds"],
                "error": f"did not finish within {timeout:.0f} s"}
    if _stopped_by_box(outcome):  # not the student's own limit: once more before anyone is blamed
        first = outcome
        outcome = _in_child(body, timeout, budget)
        if _stopped_by_box(outcome):
            return {"ok": False, "needs_review": "box", "stopped": outcome["stopped"],
                    "pids": [first["pid"], outcome["pid"]], "cpu_seconds": outcome["cpu_seconds"],
                    "error": "this check was stopped twice by the grading machine (out of memory or time while it "
                             "was overloaded), not by a limit on your code; your course staff will review it"}
    result = _result_of(outcome, budget)
    result["cpu_seconds"] = outcome["cpu_seconds"]
    return result


def _stopped_by_box(outcome: dict) -> bool:
    return outcome["stopped"] in ("killed", "wall")


def _result_of(outcome: dict, budget: float | None) -> dict:
    if outcome["stopped"] == "waited":
        return {"ok": False, "stopped": "waited",
                "error": f"did not finish within {outcome['wall_limit']:.0f} s (it was waiting, not computing: a "
                         f"sleep, input() or a lock?)"}
    if outcome["stopped"] == "cpu":
        return {"ok": False, "stopped": "cpu",
                "error": f"your code used more than the {budget:.0f} s of CPU time this check allows (many times "
                         f"what a correct implementation needs here); look for a loop that does not end"}
    try:
        result = json.loads(outcome["output"]) if outcome["output"] else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or "ok" not in result:
        if outcome["status"] == CONFINE_FAILED:
            return {"ok": False, "needs_review": "grader",
                    "error": "the grader could not confine this check (not your code); your course staff will review it"}
        why = f"exit status {outcome['status']}" if outcome["status"] else "no result"
        return {"ok": False, "error": f"your code stopped the grading process ({why})"}
    return result
def _seed(seed: int) -> None:
    """The same file always draws the same numbers, whichever generator it uses."""
    import random
    random.seed(seed)
    for name in ("numpy", "torch"):
        module = sys.modules.get(name)
        if name == "numpy" and module is not None:
            module.random.seed(seed % 2**32)
        elif module is not None:
            module.manual_seed(seed)


def _in_child(body, timeout: float, cpu_seconds: float | None = None) -> dict:
    """Run body(write) in a forked child under a CPU budget; collect what it wrote within `timeout` seconds.
    "stopped": None, "cpu" (its own budget), "killed" (SIGKILL from outside), "wall" (the backstop, while
    computing: a starved box) or "waited" (the backstop, while sleeping or blocked: the student's code).

    Student code shares the child and its pipe, so what body writes is framed with a nonce drawn for this child,
    and only the frames are read back: bytes written around them (a flood of fake results) are ignored."""
    read_end, write_end = os.pipe()
    nonce = os.urandom(8).hex().encode()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _become_child(write_end)
            if cpu_seconds:
                _limit_cpu(cpu_seconds)
            try:
                policy.confine_child()
            except BaseException:
                os._exit(CONFINE_FAILED)
            write = os.write

            def send(data: bytes) -> None:
                view = memoryview(FRAME + nonce + b"%012d" % len(data) + data)
                while view:
                    view = view[write(write_end, view):]

            body(send)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, size, timed_out = [], 0, False
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([read_end], [], [], left)[0]:
            timed_out = True
            break
        chunk = os.read(read_end, 1 << 16)
        if not chunk:
            break
        size += len(chunk)
        if size <= RESULT_LIMIT:
            chunks.append(chunk)
    os.close(read_end)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    output = _frames(b"".join(chunks), nonce) if size <= RESULT_LIMIT else b""
    code, used = os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
    over_budget = cpu_seconds is not None and used >= int(cpu_seconds + 0.999)
    stopped = ("waited" if used < WAITING_SHARE * timeout else "wall") if timed_out \
        else "cpu" if code == -signal.SIGXCPU or code == -9 and over_budget else "killed" if code == -9 else None
    return {"output": output.decode("utf-8", "replace"), "timed_out": timed_out, "status": code, "pid": pid,
            "stopped": stopped, "cpu_seconds": round(used, 2), "wall_limit": timeout}


def _limit_cpu(seconds: float) -> None:
    """RLIMIT_CPU for this child (its CPU clock starts at 0 at fork), within the run's own hard limit."""
    _, ceiling = resource.getrlimit(resource.RLIMIT_CPU)
    soft = max(1, int(seconds + 0.999))
    hard = soft + CPU_GRACE
    if ceiling != resource.RLIM_INFINITY:
        hard = min(hard, ceiling)
        soft = min(soft, max(1, hard - CPU_GRACE))
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _frames(raw: bytes, nonce: bytes) -> bytes:
    """The payloads of the well-formed frames carrying this child's nonce, in order."""
    marker, found, start = FRAME + nonce, [], 0
    while (at := raw.find(marker, start)) >= 0:
        head = at + len(marker)
        try:
            length = int(raw[head:head + 12])
        except ValueError:
            start = head
            continue
        payload = raw[head + 12:head + 12 + length]
        if len(payload) == length:
            found.append(payload)
        start = head + 12 + len(payload)
    return b"".join(found)


def _become_child(keep: int) -> None:
    """Before any student code: only the result pipe stays open; output goes nowhere."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
