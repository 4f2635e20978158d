"""The supervisor side of the sandbox: start worker.py under limits, collect its JSON reply, kill what is left.

Layers, each used where the OS allows and reported in `WorkerRun.notes` where it does not:
  * an unprivileged user (when the grader runs as root; created on first use);
  * a cgroup (v1 memory + pids) around the whole tree, which is also how every process is found and killed,
    a student's detached background processes included;
  * rlimits on CPU time, file size, core dumps, and processes / address space where there is no cgroup;
  * a private network namespace (no interface but a down loopback: no network at all);
  * a scratch working directory, a scrubbed environment, OMP_NUM_THREADS=1, and a wall-clock timeout.
The reply crosses back on a pipe only the worker holds, as JSON; nothing is unpickled.

A worker is forked from a warm start (zygote.py) when the caller names modules to preload, else started with
exec; either way the same confinement plan (confine.py) is applied to it before any of its code runs.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from autograder.confine import CLONE_NEWNET, confine
from autograder.zygote import ForkedWorker, Zygote, ZygoteError

__all__ = ["Limits", "WorkerRun", "run_worker", "warm_start", "SANDBOX_USER"]

WORKER = Path(__file__).with_name("worker.py")
SANDBOX_USER = os.environ.get("AUTOGRADER_SANDBOX_USER", "ag-sandbox")
CGROUP_ROOT = Path("/sys/fs/cgroup")
REPLY_LIMIT = 32_000_000
TORCH_ADDRESS_SPACE_MB = 1400  # what a kernel that imported torch maps without touching (VmSize, measured)
WARM_START_SECONDS = 120  # longer than importing torch on a loaded box; past it, workers start cold


@dataclass(frozen=True)
class Limits:
    wall_seconds: int = 540  # whole worker run; Gradescope's default box allows 600 s per submission
    cell_timeout: int = 120  # one notebook cell or one probe
    memory_mb: int = 1200  # whole process tree (cgroup), or per process address space without one
    max_processes: int = 128  # threads count too
    max_file_mb: int = 64  # largest file the student's code may write
    output_kb_per_cell: int = 1000  # printed output kept per cell


@dataclass
class WorkerRun:
    reply: dict | None
    returncode: int | None = None
    timed_out: bool = False
    memory_exceeded: bool = False
    peak_memory_mb: float | None = None
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    problem: str = ""  # why there is no reply, for the student


def run_worker(request: dict, limits: Limits, protected: list[Path],
               preload: tuple[str, ...] | None = None) -> WorkerRun:
    """Run the worker on `request` under `limits`, with `protected` unreadable to it; always returns.

    With `preload` (module names, () for none), the worker is forked from a warm start that imported them.
    """
    started = time.monotonic()
    notes: list[str] = []
    user = _sandbox_user(notes)
    if user:
        _make_private(protected)
        _let_user_run_python(notes)
    scratch = Path(tempfile.mkdtemp(prefix="autograder-"))
    groups = _Cgroups.create(limits, notes)
    plan = _confinement(limits, groups, user, _can_unshare_network(notes))
    if user:
        os.chown(scratch, user.pw_uid, user.pw_gid)
    log = tempfile.TemporaryFile()  # unnamed and root-owned: the worker gets only the file descriptor
    reply_read, reply_write = os.pipe()
    request_read, request_write = os.pipe()
    request = {**request, "deadline": limits.wall_seconds - 15, "cell_timeout": limits.cell_timeout,
               "output_limit": limits.output_kb_per_cell * 1000}
    process = None
    try:
        process = _start(plan, scratch, log, request_read, reply_write, preload, notes)
    except OSError as error:
        return WorkerRun(None, notes=notes, problem=f"the sandbox could not start: {error}")
    finally:
        os.close(reply_write)
        os.close(request_read)
        if process is None:  # also when interrupted while waiting for the warm start
            for fd in (reply_read, request_write):
                os.close(fd)
            log.close()
            groups.remove()
            shutil.rmtree(scratch, ignore_errors=True)
    reply_chunks: list[bytes] = []
    reader = threading.Thread(target=_read_capped, args=(reply_read, reply_chunks), daemon=True)
    reader.start()
    run = WorkerRun(None, notes=notes)
    try:
        with os.fdopen(request_write, "wb") as stream:
            stream.write(json.dumps(request).encode())
    except BrokenPipeError:
        pass
    try:
        run.returncode = process.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        run.timed_out = True
    finally:
        _kill_tree(process, groups, user)
        reader.join(timeout=5)
        run.memory_exceeded, run.peak_memory_mb = groups.memory_report()
        groups.remove()
        log.seek(max(0, log.seek(0, 2) - 4000))
        notes.append("worker log tail:\n" + log.read().decode(errors="replace"))
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
    run.wall_seconds = time.monotonic() - started
    run.reply, run.problem = _parse_reply(b"".join(reply_chunks), run)
    return run


def _start(plan: dict, scratch: Path, log, request_read: int, reply_write: int, preload: tuple[str, ...] | None,
           notes: list[str]):
    """The confined worker: forked by the warm start when there is one, else exec'ed. Popen-like."""
    env = _scrubbed_env(scratch)
    zygote = warm_start(preload) if preload is not None and "zygote" not in _disabled() else None
    if zygote is not None and zygote.wait_ready(WARM_START_SECONDS):
        try:
            return zygote.spawn([request_read, reply_write, log.fileno()], str(scratch), env,
                                {**plan, "relative_address_space": True})
        except ZygoteError as error:
            notes.append(f"{error}; starting the worker cold")
    elif zygote is not None:
        notes.append(f"the warm start did not become ready; starting the worker cold. Its log:\n{zygote.log_tail()}")
    return subprocess.Popen([sys.executable, "-I", str(WORKER), str(reply_write)], stdin=request_read,
                            stdout=log, stderr=subprocess.STDOUT, cwd=scratch, env=env, pass_fds=(reply_write,),
                            preexec_fn=lambda: confine(plan))


_zygotes: dict[tuple[str, ...], Zygote] = {}


@atexit.register
def _close_warm_starts() -> None:
    for zygote in _zygotes.values():
        zygote.close()


def warm_start(preload: tuple[str, ...]) -> Zygote:
    """The warm start for `preload`, started now if there is none alive; returns at once (it imports meanwhile).

    Call it early, so that its imports overlap the grader's own work. It lives as long as this process.
    """
    zygote = _zygotes.get(preload)
    if zygote is None or not zygote.alive():
        zygote = _zygotes[preload] = Zygote(preload, _scrubbed_env(Path(tempfile.gettempdir())))
    return zygote


def _confinement(limits: Limits, groups: "_Cgroups", user, isolate_network: bool) -> dict:
    """The plan confine.py applies to the worker: plain data, as it crosses to the warm start."""
    rlimits = {"RLIMIT_CPU": limits.wall_seconds * 2, "RLIMIT_FSIZE": limits.max_file_mb * 2**20, "RLIMIT_CORE": 0}
    if "pids" not in groups.paths and user is not None:
        rlimits["RLIMIT_NPROC"] = limits.max_processes
    return {
        "cgroup_procs": [str(path / "cgroup.procs") for path in groups.paths.values()],
        "unshare_network": isolate_network,
        "rlimits": rlimits,
        "address_space_mb": None if "memory" in groups.paths else limits.memory_mb + TORCH_ADDRESS_SPACE_MB,
        "relative_address_space": False,
        "uid": user.pw_uid if user else None,
        "gid": user.pw_gid if user else None,
    }


def _parse_reply(raw: bytes, run: WorkerRun) -> tuple[dict | None, str]:
    if run.timed_out:
        return None, "the notebook did not finish within the time limit"
    if not raw:
        if run.memory_exceeded:
            return None, "the notebook ran out of memory"
        return None, f"the grading process stopped without a result (exit status {run.returncode})"
    if len(raw) >= REPLY_LIMIT:
        return None, "the grading process produced too much data"
    try:
        reply = json.loads(raw)
    except json.JSONDecodeError:
        return None, "the grading process produced an unreadable result"
    return (reply, "") if isinstance(reply, dict) else (None, "the grading process produced an unreadable result")


def _read_capped(fd: int, chunks: list[bytes]) -> None:
    size = 0
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            if size < REPLY_LIMIT:
                chunks.append(chunk)
            size += len(chunk)


def _scrubbed_env(scratch: Path) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch), "TMPDIR": str(scratch), "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg",
        "JUPYTER_RUNTIME_DIR": str(scratch / ".jupyter"), "IPYTHONDIR": str(scratch / ".ipython"),
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel imports debugpy, which warns about frozen modules
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # see the machine notes: old OpenBLAS needs them
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _sandbox_user(notes: list[str]) -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        notes.append("not running as root: student code runs as the current user, and the reference is "
                      "readable to it (local dry runs only; Gradescope runs as root)")
        return None
    try:
        return pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        pass
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SANDBOX_USER],
        capture_output=True, text=True)
    if created.returncode != 0:
        notes.append(f"could not create user {SANDBOX_USER} ({created.stderr.strip()}): running as nobody")
        return pwd.getpwnam("nobody")
    notes.append(f"created the sandbox user {SANDBOX_USER}")
    return pwd.getpwnam(SANDBOX_USER)


def _make_private(paths: list[Path]) -> None:
    """Only the owner (root) may enter these folders: the reference and the hidden cases."""
    for path in paths:
        if path.is_dir():
            path.chmod(path.stat().st_mode & ~0o077)


def _disabled() -> set[str]:
    """Layers to leave out as a container would refuse them, e.g. "cgroups,netns,zygote": tests exercise fallbacks."""
    return set(filter(None, os.environ.get("AUTOGRADER_DISABLE", "").split(",")))


def _let_user_run_python(notes: list[str]) -> None:
    """The sandbox user must reach the interpreter, its libraries and worker.py (a venv under /root, say)."""
    import sysconfig
    needed = {Path(sys.executable).resolve(), Path(sysconfig.get_paths()["stdlib"]).resolve(),
              Path(sysconfig.get_paths()["purelib"]).resolve(), WORKER.resolve()}
    for path in needed:
        for folder in path.parents:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                folder.chmod(mode | 0o001)  # traverse only: the sandbox can't list or read the folder
                notes.append(f"granted the sandbox user traverse permission on {folder}")


def _can_unshare_network(notes: list[str]) -> bool:
    if "netns" in _disabled():
        notes.append("no network isolation: disabled (AUTOGRADER_DISABLE)")
        return False
    if os.geteuid() != 0:
        notes.append("no network isolation: unshare needs root")
        return False
    if not _unshare_works():
        notes.append("no network isolation: this container refuses unshare(CLONE_NEWNET)")
        return False
    return True


@functools.cache
def _unshare_works() -> bool:
    """Tried once per process, in a throwaway child."""
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(CLONE_NEWNET) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return status == 0


class _Cgroups:
    """A memory and a pids cgroup (v1) around the worker's tree; inert where cgroups are unavailable."""

    def __init__(self, paths: dict[str, Path]):
        self.paths = paths

    @classmethod
    def create(cls, limits: Limits, notes: list[str]) -> "_Cgroups":
        paths = {}
        if "cgroups" in _disabled():
            notes.append("cgroups disabled (AUTOGRADER_DISABLE): falling back to rlimits")
            return cls({})
        name = f"autograder-{uuid.uuid4().hex[:12]}"
        for controller in ("memory", "pids"):
            path = CGROUP_ROOT / controller / name
            try:
                path.mkdir()
                paths[controller] = path
            except OSError:
                pass
        groups = cls(paths)
        try:
            if "memory" in paths:
                (paths["memory"] / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 2**20))
                swap = paths["memory"] / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(limits.memory_mb * 2**20))
            if "pids" in paths:
                (paths["pids"] / "pids.max").write_text(str(limits.max_processes))
        except OSError as error:
            notes.append(f"cgroup limits could not be set ({error}); using rlimits")
            groups.remove()
            groups = cls({})
        for controller in ("memory", "pids"):
            if controller not in groups.paths and paths:
                notes.append(f"no {controller} cgroup: falling back to rlimits for {controller}")
        if not paths:
            notes.append("no cgroups (not root, or refused by the container): rlimits on address space and "
                         "processes instead; a student's detached processes are found by user id")
        return groups

    def pids(self) -> set[int]:
        found = set()
        for path in self.paths.values():
            try:
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def memory_report(self) -> tuple[bool, float | None]:
        path = self.paths.get("memory")
        if not path:
            return False, None
        try:
            failures = int((path / "memory.failcnt").read_text())
            peak = int((path / "memory.max_usage_in_bytes").read_text()) / 2**20
            oom_kills = [line for line in (path / "memory.oom_control").read_text().split("\n")
                         if line.startswith("oom_kill ")]
            killed = bool(oom_kills) and int(oom_kills[0].split()[1]) > 0
            return killed or failures > 0 and peak > 0.9 * int(
                (path / "memory.limit_in_bytes").read_text()) / 2**20, round(peak, 1)
        except (OSError, ValueError):
            return False, None

    def remove(self) -> None:
        for path in self.paths.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def _kill_tree(process: subprocess.Popen, groups: _Cgroups, user) -> None:
    """Kill the worker, its kernel and anything they started, detached or not."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(100):  # a fork bomb may still be forking: repeat until the cgroup is empty
        remaining = groups.pids()
        if not remaining:
            break
        for pid in remaining:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    if not groups.paths and user is not None:
        _kill_user_processes(user.pw_uid)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        if isinstance(process, ForkedWorker):
            process.zygote.close()  # it cannot account for its child: replace it


def _kill_user_processes(uid: int) -> None:
    """Without cgroups, the sandbox user's processes are found through /proc."""
    for _ in range(20):
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _owner(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None
