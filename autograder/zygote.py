"""Warm start: a process that imports the worker's heavy modules once, then forks a sandboxed worker per request.

Starting a worker from scratch costs seconds of imports (Jupyter's client, ipykernel, and whatever the assignment
preloads, e.g. torch) in the worker and again in its kernel. The zygote pays them once; each worker it forks, and
the kernel that worker forks in turn (worker.py's KernelSeed), starts with them done.

Two sides in this file:
  * `Zygote`, in the grader: starts the zygote process and asks it for workers, one at a time.
  * `main()`, the zygote process itself (`python -I zygote.py FD SPEC`): trusted, the grader's user (root on
    Gradescope). It imports only public modules, never the grader, the reference or the hidden cases, so a
    child holds nothing a student may not see. Each child closes every descriptor but its own, then confines
    itself (confine.py: cgroup, network namespace, rlimits, user) before worker.py runs.

Messages are JSON on a SOCK_SEQPACKET socket pair; a worker's stdin, reply pipe and log travel as descriptors.
Grader -> zygote: {"cwd", "env", "plan"} with fds [stdin, reply, log]. Zygote -> grader: {"ready": true} once,
then {"pid"} or {"error"} per request, and {"exit": pid, "code": returncode} when that worker ends.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGE_LIMIT = 1 << 20


class ZygoteError(RuntimeError):
    pass


class ZygoteSilent(ZygoteError):
    """No message within the timeout; the zygote is still running."""


class Zygote:
    """The grader's handle on one zygote process. One worker at a time; the zygote exits when its socket
    closes, that is with the grader."""

    def __init__(self, preload: tuple[str, ...], env: dict[str, str]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-I", os.path.join(HERE, "zygote.py"), str(theirs.fileno()), json.dumps(list(preload))],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        theirs.close()
        self.lock = threading.Lock()
        self._ready: bool | None = None

    def log_tail(self, size: int = 1500) -> str:
        if self.log.closed:
            return self._last_log
        self.log.seek(max(0, self.log.seek(0, 2) - size))
        return self.log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None and self._ready is not False

    def wait_ready(self, timeout: float) -> bool:
        """Block until the zygote has imported everything; False if it failed or took longer than `timeout`."""
        if self._ready is None:
            try:
                self._ready = self._receive(timeout).get("ready") is True
            except ZygoteError:
                self._ready = False
            if not self._ready:
                self.close()
        return self._ready

    def spawn(self, fds: list[int], cwd: str, env: dict[str, str], plan: dict) -> "ForkedWorker":
        self.lock.acquire()
        try:
            socket.send_fds(self.sock, [json.dumps({"cwd": cwd, "env": env, "plan": plan}).encode()], fds)
            reply = self._receive(30)
        except (OSError, ZygoteError) as error:
            self.lock.release()
            self.close()
            raise ZygoteError(f"the warm start failed: {error}") from None
        if "pid" not in reply:
            self.lock.release()
            raise ZygoteError(f"the warm start refused: {reply.get('error')}")
        return ForkedWorker(self, reply["pid"])

    def _receive(self, timeout: float) -> dict:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(MESSAGE_LIMIT)
        except socket.timeout:
            raise ZygoteSilent(f"no answer from the zygote in {timeout:.0f} s") from None
        except OSError as error:
            raise ZygoteError(f"the zygote's socket failed ({error})") from None
        if not data:
            raise ZygoteError(f"the zygote exited (status {self.process.poll()})")
        return json.loads(data)

    def close(self) -> None:
        self._ready = False
        self.sock.close()  # the zygote exits on EOF
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.log.closed:
            self._last_log = self.log_tail()
            self.log.close()


class ForkedWorker:
    """What run_worker needs of a subprocess.Popen, for a worker that is the zygote's child, not ours."""

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid, self.returncode = zygote, pid, None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            try:
                message = self.zygote._receive(left)
            except ZygoteSilent:
                continue  # the loop raises TimeoutExpired
            except ZygoteError:
                self.returncode = -signal.SIGKILL  # the zygote died; run_worker kills what is left of the worker
                self.zygote.lock.release()
                return self.returncode
            if message.get("exit") == self.pid:
                self.returncode = message["code"]
                self.zygote.lock.release()
                return self.returncode


# ---- the zygote process ------------------------------------------------------------------------------------

def _load(name: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child(job: dict, fds: list[int], worker, confine) -> None:
    """In the forked child: become the sandboxed worker."""
    stdin, reply, log = fds
    os.dup2(stdin, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, reply)  # everything else the zygote holds: its socket, other children's pidfds
    os.closerange(reply + 1, 65536)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    confine.confine(job["plan"])
    worker.main(reply)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    worker, confine = _load("worker"), _load("confine")
    import importlib
    for module in json.loads(sys.argv[2]):
        importlib.import_module(module)
    # Everything imported so far is permanent: the children's garbage collections skip it, and so do not
    # copy the pages it lives on (the use gc.freeze is made for).
    import gc
    gc.freeze()
    sock.send(json.dumps({"ready": True}).encode())
    children: dict[int, int] = {}  # pidfd -> pid
    while True:
        readable, _, _ = select.select([sock, *children], [], [])
        for pidfd in [fd for fd in readable if fd in children]:
            pid = children.pop(pidfd)
            os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        if sock not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(sock, MESSAGE_LIMIT, 8)
        if not message:
            return  # the grader closed its end or exited
        try:
            job = json.loads(message)
            if len(fds) != 3:
                raise ValueError(f"expected 3 descriptors, got {len(fds)}")
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                code = 70
                try:
                    _child(job, fds, worker, confine)
                    code = 0
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
