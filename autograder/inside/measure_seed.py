"""The measurement process's seed, inside the sandbox: forked by the run before anything else (zygote.py), it
confines itself further and runs measure.py on a descriptor that only it holds."""

from __future__ import annotations

import json
import os
from typing import Callable

import isolate
import measure


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
        self.returncode: int | None = None

    def start(self, request: dict) -> None:
        with os.fdopen(self.request, "wb") as stream:
            stream.write(json.dumps(request).encode())

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode
