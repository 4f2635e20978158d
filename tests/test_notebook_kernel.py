"""The notebook run's kernel (inside/notebook_kernel.py) outside any sandbox: its client is ready once the kernel has
answered kernel_info and IOPub has carried a message, without jupyter_client's further 0.2 s wait for IOPub to
fall silent, and a real kernel started that way runs cells and shuts down."""

import asyncio
import sys
from pathlib import Path
from queue import Empty

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "autograder" / "inside"))
import notebook_kernel  # noqa: E402


class FakeChannel:
    """Hands out `messages` in turn (an Exception is raised); records each get_msg's timeout and each send."""

    def __init__(self, messages):
        self.messages, self.timeouts, self.sent = list(messages), [], []

    async def get_msg(self, timeout=None):
        self.timeouts.append(timeout)
        if not self.messages:
            raise AssertionError("read once more than the handshake needs")
        message = self.messages.pop(0)
        if isinstance(message, Exception):
            raise message
        return message

    def send(self, message):
        self.sent.append(message)


REPLY = {"msg_type": "kernel_info_reply", "content": {"protocol_version": "5.3"}, "parent_header": {}}
STATUS = {"msg_type": "status", "content": {"execution_state": "idle"}}


def ready_client(shell: FakeChannel, iopub: FakeChannel) -> notebook_kernel.ReadyClient:
    client = notebook_kernel.ReadyClient()
    client._shell_channel, client._iopub_channel = shell, iopub
    return client


def test_ready_after_one_iopub_message_without_waiting_for_silence():
    shell, iopub = FakeChannel([REPLY]), FakeChannel([STATUS])  # a second IOPub read would fail the fake
    asyncio.run(ready_client(shell, iopub).wait_for_ready(timeout=5))
    assert len(shell.sent) == 1 and iopub.timeouts == [0.2]


def test_asks_again_while_iopub_is_not_connected():
    """The kernel's first status messages can be lost before IOPub's subscription is up: kernel_info again."""
    shell, iopub = FakeChannel([REPLY, REPLY]), FakeChannel([Empty(), STATUS])
    asyncio.run(ready_client(shell, iopub).wait_for_ready(timeout=5))
    assert len(shell.sent) == 2 and iopub.timeouts == [0.2, 0.2]


def test_the_librarys_client_would_wait_for_iopub_to_fall_silent():
    """The control: jupyter_client's own handshake reads IOPub until it stays empty for 0.2 s."""
    from jupyter_client.asynchronous import AsyncKernelClient
    shell, iopub = FakeChannel([REPLY]), FakeChannel([STATUS, STATUS, Empty()])
    client = AsyncKernelClient()
    client._shell_channel, client._iopub_channel = shell, iopub
    asyncio.run(client.wait_for_ready(timeout=5))
    assert iopub.timeouts == [0.2, 0.2, 0.2] and not iopub.messages


@pytest.mark.integration
def test_a_kernel_started_with_the_ready_client_runs_cells_and_stops(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as the worker does: IPC's socket paths are relative to it
    kernel = notebook_kernel.Kernel(str(tmp_path), output_limit=10_000)
    try:
        assert type(kernel.channels) is notebook_kernel.ReadyClient
        assert kernel.run("x = 6 * 7\nprint(x)", timeout=30)["outputs"][0]["text"] == "42\n"
        assert kernel.run("raise ValueError('no')", timeout=30)["error"] == "ValueError: no"
        process = kernel.manager.provisioner.process
    finally:
        kernel.shutdown()
    assert process.poll() is not None  # reaped: not left for jupyter_client's polling
