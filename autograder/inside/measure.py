"""The measurement process: every graded call in a fresh child holding only the notebook's imports and definitions.

Forked by the worker before any student code exists, it never runs student code itself. It installs the
assignment's policy once (policy.py: preloads, Landlock, seccomp, the guard), then for each call forks a child
that closes every descriptor but its own result pipe, installs its own stricter seccomp filter, seeds Python's, numpy's and torch's generators from the call,
executes the definitions (runtime.py), runs the probe and writes plain JSON back. A child that overruns its time
is killed; a definition that kills its process is found by a first child that reports after each cell, and is
left out of the others. The reply is written once, at the end, on a descriptor only this process holds (the
children close theirs before anything else), and then the process exits.

Request (JSON on stdin): {"cells": [{"label", "source"}], "definitions": {name: [{"bases", "label", "source"}]},
  "sources": {label: cell source}, "probes": str, "calls": [{"name", "entry", "args", "timeout", "seed"}],
  "deadline": s, "kind": str,
  "policy": {"libraries", "imports", "forbidden", "kernels"} (the assignment's MeasurementPolicy),
  "switched_off": [layer] (tests only: show that a layer is what stops an attack)}
Reply: {"probes": {name: {"ok", "value" | "error"}}, "definition_errors": [[label, text]], "events": [str],
        "layers": [the policy layers in force, or "missing: ..."]}
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

import policy
import runtime

RESULT_LIMIT = 8_000_000
FRAME = b"\x00autograder-frame:"
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
                reply["probes"][call["name"]] = {"ok": False, "error": "not run: the time limit was reached"}
                continue
            reply["probes"][call["name"]] = _run_call(request, cells, call, min(call["timeout"], left))
    except Exception as error:  # a bug here must still leave a reply: the calls not measured say so
        reply["events"].append(f"the measurement process failed: {error!r}")
    data = json.dumps(reply, allow_nan=True).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(reply_fd, view):]
    os._exit(0)


def _surviving_cells(request: dict, reply: dict, deadline: float) -> list[dict]:
    """The definition cells minus any that kills its process (os._exit in a class body, say)."""
    cells = list(request["cells"])
    for _ in range(len(cells) + 1):
        outcome = _in_child(lambda write: _check_cells(cells, request, write), max(1.0, deadline - time.monotonic()))
        done = _progress(outcome["output"], len(cells))
        if len(done) == len(cells):
            reply["definition_errors"] = [[cells[i]["label"], text] for i, text in enumerate(done) if text]
            return cells
        fatal = cells.pop(len(done))
        reply["events"].append(f"definition stopped its process: {fatal['label']}")
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

    outcome = _in_child(body, timeout)
    if outcome["timed_out"]:
        return {"ok": False, "error": f"did not finish within {timeout:.0f} s"}
    try:
        result = json.loads(outcome["output"]) if outcome["output"] else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or "ok" not in result:
        if outcome["status"] == -9:  # SIGKILL: the sandbox's memory watchdog, or the kernel's OOM killer
            return {"ok": False, "error": "your code was stopped: it used more memory than allowed"}
        if outcome["status"] == CONFINE_FAILED:
            return {"ok": False, "error": "the grader could not confine this check (not your code)",
                    "grader_problem": True}
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


def _in_child(body, timeout: float) -> dict:
    """Run body(write) in a forked child; collect what it wrote within `timeout` seconds.

    Student code shares the child and its pipe, so what body writes is framed with a nonce drawn for this child,
    and only the frames are read back: bytes written around them (a flood of fake results) are ignored."""
    read_end, write_end = os.pipe()
    nonce = os.urandom(8).hex().encode()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _become_child(write_end)
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
    _, status = os.waitpid(pid, 0)
    output = _frames(b"".join(chunks), nonce) if size <= RESULT_LIMIT else b""
    return {"output": output.decode("utf-8", "replace"), "timed_out": timed_out,
            "status": os.waitstatus_to_exitcode(status)}


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
