"""The worker, inside the sandbox: the measurement first, then the notebook run top to bottom (report only).

Started by the zygote in a confined run (zygote.py), which forks the measurement process (measure.py, started by
measure_seed.py) first; before it reads its request this process forks two kernel seeds (kernel_seeds.py), so that none
of them holds anything but imports. The measurement process gets its part of the request and writes its reply on its own
descriptor, which this process closes at once; only when it has exited does the notebook run start, so that nothing the
notebook starts can serve or disturb the measurement. The run's report (cell by cell, each run in the kernel of
notebook_kernel.py: ok, error, timeout, died) goes on the report descriptor. No score rests on it: the notebook's given
cells (1c) use torch.optim, legitimately, here.

Request and report: Request and Report in autograder/protocol.py (JSON on the request descriptor, and on the report
descriptor); events are protocol.py's (this folder's) kinds.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import protocol
from kernel_seeds import KernelSeed
from measure_seed import MeasureSeed
from notebook_kernel import Kernel


def grade(request: dict, measurement: MeasureSeed) -> dict:
    deadline = time.monotonic() + request["deadline"]
    scratch = os.getcwd()
    reply: dict = {"cells": [], "events": [], "seconds": {}}
    phase = _Phases(reply["seconds"])
    measurement.start(request["measure"])
    if (status := measurement.wait()) != 0:
        reply["events"].append(protocol.event(protocol.MEASUREMENT_EXITED, status))
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
