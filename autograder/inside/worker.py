"""The worker, inside the sandbox: the measurement first, then the notebook run top to bottom (report only).

Started by the zygote in a confined run (zygote.py), which forks the measurement process (measure.py, `MeasureSeed`)
first; before it reads its request this process forks two kernel seeds, so that none of them holds anything but
imports. The measurement process gets its part of the request and writes its reply on its own descriptor, which this
process closes at once; only when it has exited does the notebook run start, so that nothing the notebook starts can
serve or disturb the measurement. The run's report (cell by cell: ok, error, timeout, died) goes on the report
descriptor. No score rests on it: the notebook's given cells (1c) use torch.optim, legitimately, here.

Request and report: Request and Report in autograder/protocol.py (JSON on the request descriptor, and on the report
descriptor); events are protocol.py's (this folder's) kinds.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from typing import Callable

import nbformat
# Imported here, once: the kernels are forked from this process (debugger: debugpy, a tenth of a second).
from ipykernel import debugger, ipkernel, kernelapp  # noqa: F401
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import local_provisioner
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

import isolate
import measure
import protocol

ERROR_TEXT_LIMIT = 2000


class CappedClient(NotebookClient):
    """Keeps at most `output_limit` bytes of output per cell, so 50 MB of prints cannot exhaust memory."""

    output_limit = 1_000_000
    kept = 0
    truncated = False

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        if self.kept + size > self.output_limit:
            self.truncated = True
            return None
        self.kept += size
        return super().output(outs, msg, display_id, cell_index)


class Kernel:
    """One kernel and the cells run in it; a hung or dead kernel is reported, never raised."""

    def __init__(self, scratch: str, output_limit: int):
        self.notebook = nbformat.v4.new_notebook()
        self.client = CappedClient(
            self.notebook,
            km=AsyncKernelManager(kernel_name="python3", transport="ipc"),  # async: timeouts need a free loop
            resources={"metadata": {"path": scratch}},
            allow_errors=True,
            interrupt_on_timeout=True,  # nbclient's own path: interrupt, then finish the cell as an error
            error_on_timeout={"ename": "CellTimeoutError", "evalue": "timed out", "traceback": []},
            iopub_timeout=4,
        )
        self.client.output_limit = output_limit
        self.client.start_new_kernel(cwd=scratch)
        self.client.start_new_kernel_client()
        self.alive = True

    def run(self, source: str, timeout: float, output_limit: int | None = None) -> dict:
        cell = nbformat.v4.new_code_cell(source)
        self.notebook.cells.append(cell)
        limit = self.client.timeout = max(1, int(timeout))
        self.client.kept = 0
        if output_limit:
            self.client.output_limit = output_limit
        started = time.monotonic()
        try:
            self.client.execute_cell(cell, len(self.notebook.cells) - 1)
        except (CellTimeoutError, DeadKernelError):
            self.alive = False
        finally:
            outputs, cell.outputs = cell.outputs, []  # keep only what the reply needs
        seconds = time.monotonic() - started
        if not self.alive or not self.client.km.has_kernel or not run_sync(self.client.km.is_alive)():
            self.alive = False
            return {"status": "died", "error": "the kernel died (os._exit, a crash, or the memory limit)"}
        if seconds >= limit:
            self._check_responsive()
            return {"status": "timeout", "error": f"did not finish within {limit} s"}
        result = {"status": "ok", "seconds": round(seconds, 3), "outputs": outputs}
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if errors:
            result.update(status="error", error=_error_text(errors[0]))
        return result

    def _check_responsive(self) -> None:
        """After an interrupted cell: a kernel that ignored the interrupt (a bare `except:` around a loop)
        cannot run anything else and must be replaced."""
        self.client.timeout = 5
        probe = nbformat.v4.new_code_cell("pass")
        self.notebook.cells.append(probe)
        started = time.monotonic()
        try:
            self.client.execute_cell(probe, len(self.notebook.cells) - 1)
        except (CellTimeoutError, DeadKernelError):
            self.alive = False
        if time.monotonic() - started >= 5:
            self.alive = False

    def shutdown(self) -> None:
        try:
            self.client.kc.stop_channels()
            run_sync(self.client.km.shutdown_kernel)(now=True)
        except Exception:  # the sandbox kills whatever is left
            pass


def _error_text(error: dict) -> str:
    text = f"{error.get('ename', 'Error')}: {error.get('evalue', '')}"
    return text[:ERROR_TEXT_LIMIT]


def grade(request: dict, measurement: "MeasureSeed") -> dict:
    deadline = time.monotonic() + request["deadline"]
    scratch = os.getcwd()
    reply: dict = {"cells": [], "events": [], "seconds": {}}
    phase = _Phases(reply["seconds"])
    measurement.start(request["measure"])
    if measurement.wait() != 0:
        reply["events"].append(protocol.event(protocol.MEASUREMENT_EXITED, int(measurement.returncode)))
    phase("measurement")
    if not request["cells"]:
        return reply
    kernel = Kernel(scratch, request["output_limit"])
    phase("kernel start")
    try:
        # The same file, the same run: numpy's and Python's generators seeded as torch's is by the notebook.
        seed = int(request.get("seed", 0))
        kernel.run(f"__import__('random').seed({seed})\ntry:\n    __import__('numpy').random.seed({seed % 2**32})\n"
                   f"except ImportError:\n    pass", request["cell_timeout"])
        for cell in request["cells"]:
            if not kernel.alive or time.monotonic() > deadline:
                reply["cells"].append({"id": cell["id"], "status": "skipped"})
                continue
            timeout = min(request["cell_timeout"], deadline - time.monotonic())
            result = kernel.run(cell["source"], timeout)
            result.pop("outputs", None)
            reply["cells"].append({"id": cell["id"], **result})
        phase("cells")
        reply["output_truncated"] = kernel.client.truncated
    finally:
        kernel.shutdown()
        phase("kernel shutdown")
        phase.cpu()
    return reply


class _Phases:
    """Seconds per phase of the worker's run, for the staff log."""

    def __init__(self, into: dict):
        self.into, self.last = into, time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = round(now - self.last, 2)
        self.last = now

    def cpu(self) -> None:
        """CPU seconds of this worker and of its kernels (those it waited for)."""
        for name, who in (("worker CPU", resource.RUSAGE_SELF), ("kernels CPU", resource.RUSAGE_CHILDREN)):
            usage = resource.getrusage(who)
            self.into[name] = round(usage.ru_utime + usage.ru_stime, 2)


class KernelSeed:
    """A child forked before anything else happens; it becomes the first kernel when given its command line.

    It stands in for the kernel's subprocess.Popen in jupyter_client's LocalProvisioner (see `_launch`).
    """

    pending: "list[KernelSeed]" = []  # forked at the worker's start: the first kernel, and one replacement

    def __init__(self):
        trigger_read, self.trigger = os.pipe()
        ready_read, ready_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.trigger)
            os.close(ready_read)
            # Its own session, as jupyter_client's launcher gives a kernel: interrupts go to its process group.
            # Before the worker goes on, which reads the group id once it has "launched" the kernel.
            os.setsid()
            os.close(ready_write)
            self._become_kernel(trigger_read)
        os.close(trigger_read)
        os.close(ready_write)
        os.read(ready_read, 1)  # EOF once the seed has its session
        os.close(ready_read)
        self.returncode = None
        self.stdin = self.stdout = self.stderr = None

    @staticmethod
    def _become_kernel(trigger: int) -> None:
        code = 1
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)  # the worker's stdin carries the request: not the kernel's to read
            os.closerange(3, trigger)  # the reply pipe among them
            os.closerange(trigger + 1, 65536)
            with os.fdopen(trigger, "rb") as stream:
                launch = stream.read()
            if not launch:
                os._exit(0)  # not needed after all
            launch = json.loads(launch)
            os.environ.clear()
            os.environ.update(launch["env"])
            # Exit with the worker. (Its default was read from the environment when ipykernel was imported.)
            sys.argv = ["ipykernel_launcher", *launch["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
            kernelapp.launch_new_instance()
            code = 0
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def start(self, argv: list[str], env: dict[str, str]) -> "KernelSeed":
        with os.fdopen(self.trigger, "wb") as stream:
            stream.write(json.dumps({"argv": argv, "env": env}).encode())
        return self

    def discard(self) -> None:
        os.close(self.trigger)  # EOF: an unused seed exits
        try:
            self.wait(timeout=2)
        except subprocess.TimeoutExpired:  # stopped by a student's signal, say
            self.kill()
            self.wait()

    # The subprocess.Popen interface jupyter_client uses:
    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


_launch_kernel = local_provisioner.launch_kernel


def _launch(cmd: list[str], **kwargs):
    """jupyter_client's kernel launcher, taking a seed for each ipykernel it starts while seeds last."""
    while KernelSeed.pending and "ipykernel_launcher" in cmd:
        seed = KernelSeed.pending.pop(0)
        if seed.poll() is None:  # a runaway kernel's memory may have cost a waiting seed its life
            return seed.start(cmd[cmd.index("ipykernel_launcher") + 1:], dict(kwargs.get("env") or os.environ))
    return _launch_kernel(cmd, **kwargs)


local_provisioner.launch_kernel = _launch


class MeasureSeed:
    """The measurement process, forked first, before the run drops its privileges (zygote.py): `confine` then
    gives it its own, narrower view and user (isolate.hide, confine.become) before anything else. It holds the
    measurement descriptor; this process lets go of it."""

    def __init__(self, measurements: int, confine: Callable[[], None]):
        request_read, self.request = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 70
            try:
                os.closerange(3, min(request_read, measurements))
                for fd in range(min(request_read, measurements) + 1, 1024):
                    if fd not in (request_read, measurements):
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                confine()
                isolate.not_dumpable()
                measure.main(request_read, measurements)
                code = 0
            finally:
                os._exit(code)
        os.close(request_read)
        os.close(measurements)
        self.returncode = None

    def start(self, request: dict) -> None:
        with os.fdopen(self.request, "wb") as stream:
            stream.write(json.dumps(request).encode())

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def main(report_fd: int, measurement: MeasureSeed) -> None:
    """Called in a confined run by the zygote (zygote.py), which has forked the measurement process first of all
    (nothing but imports had happened yet)."""
    KernelSeed.pending = [KernelSeed(), KernelSeed()]
    request = json.load(sys.stdin)
    try:
        reply = grade(request, measurement)
    finally:
        for seed in KernelSeed.pending:
            seed.discard()
    with os.fdopen(report_fd, "w") as out:
        json.dump(reply, out, default=str)
