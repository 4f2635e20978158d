"""Kernel seeds, inside the sandbox: children the worker forks before it reads its request, each of which becomes a
notebook kernel when jupyter_client launches one, so that no kernel holds anything of the worker's but imports.

Importing this module routes jupyter_client's kernel launcher through the seeds (`_launch`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

# Imported here, once: the kernels are forked from this process (debugger: debugpy, a tenth of a second).
from ipykernel import debugger, ipkernel, kernelapp  # noqa: F401
from jupyter_client.provisioning import local_provisioner


class KernelSeed:
    """A child forked before anything else happens; it becomes the first kernel when given its command line.

    It stands in for the kernel's subprocess.Popen in jupyter_client's LocalProvisioner (see `_launch`).
    """

    pending: "list[KernelSeed]" = []  # forked at the worker's start: the first kernel, and one replacement

    def __init__(self) -> None:
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
        self.returncode: int | None = None
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
            sys.argv = ["ipykernel_launcher", *launch["argv"], f"--IPKernelApp.parent_handle={os.getppid()}",
                        "--HistoryManager.enabled=False"]
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
        started = time.monotonic()
        while (code := self.poll()) is None:
            if timeout is not None and time.monotonic() - started > timeout:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.01)
        return code

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


local_provisioner.launch_kernel = _launch  # type: ignore[assignment]  # a KernelSeed stands in for its Popen
