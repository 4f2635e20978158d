"""One Jupyter kernel of the notebook run, inside the sandbox, and the cells run in it (worker.py's notebook run).

A cell that hangs or kills its kernel is reported (timeout, died), never raised; printed output is capped per cell.
"""

from __future__ import annotations

import json
import time
from queue import Empty

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

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


class ReadyClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as the kernel has answered kernel_info and IOPub is seen to carry
    messages. The library's client then also waits for IOPub to stay silent for 0.2 s: idle time, half of a
    kernel's start in the sandbox (0.45 s), and needless, since nbclient reads only the replies to its own
    requests. (AsyncKernelClient binds `wait_for_ready` to the base class's function: replaced here by name.)"""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (60.0 if timeout is None else timeout)
        while time.monotonic() < deadline:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
                if reply["msg_type"] == "kernel_info_reply":
                    await self.iopub_channel.get_msg(timeout=0.2)  # else IOPub is not connected yet: ask again
                    self._handle_kernel_info_reply(reply)
                    return
            except Empty:
                pass
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
        raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")


class Kernel:
    """One kernel and the cells run in it; a hung or dead kernel is reported, never raised."""

    def __init__(self, scratch: str, output_limit: int):
        self.notebook = nbformat.v4.new_notebook()
        # Kept here too: the client holds its manager and channels as optional (None until a kernel starts).
        self.manager = AsyncKernelManager(kernel_name="python3", transport="ipc")  # async: timeouts need a free loop
        self.manager.client_factory = ReadyClient
        self.client = CappedClient(
            self.notebook,
            km=self.manager,
            resources={"metadata": {"path": scratch}},
            allow_errors=True,
            interrupt_on_timeout=True,  # nbclient's own path: interrupt, then finish the cell as an error
            error_on_timeout={"ename": "CellTimeoutError", "evalue": "timed out", "traceback": []},
            iopub_timeout=4,
        )
        self.client.output_limit = output_limit
        self.client.start_new_kernel(cwd=scratch)
        self.channels = self.client.start_new_kernel_client()
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
        if not self.alive or not self.manager.has_kernel or not run_sync(self.manager.is_alive)():
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
            self.channels.stop_channels()
            process = getattr(self.manager.provisioner, "process", None)  # a KernelSeed, or a Popen
            if process is not None:  # killed and reaped here: jupyter_client polls for its end every 0.1 s
                process.kill()
                process.wait(timeout=5)
            run_sync(self.manager.shutdown_kernel)(now=True)
        except Exception:  # the sandbox kills whatever is left
            pass


def _error_text(error: dict) -> str:
    text = f"{error.get('ename', 'Error')}: {error.get('evalue', '')}"
    return text[:ERROR_TEXT_LIMIT]
