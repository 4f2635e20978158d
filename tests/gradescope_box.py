"""Gradescope's container, simulated faithfully enough for tests, CI and benchmarks. Root only.

What a grading sees inside, as on Gradescope (a Docker container with the default profile):
- namespaces refused by a seccomp filter, as Docker's default profile refuses them (EPERM for unshare, setns,
  mount, umount2, pivot_root, clone with a CLONE_NEW* flag, keyctl, bpf, perf_event_open...; ENOSYS for clone3,
  so that glibc falls back to clone, whose flags a filter can read) — not merely a missing capability;
- Docker's default capability bounding set (no CAP_SYS_ADMIN, no CAP_SYS_PTRACE), the grader running as root;
- a PID namespace of its own: an init (pid 1) that reaps orphans and runs the command, a /proc that shows the
  container's processes only, and every process of the container killed when its command exits;
- a network namespace of its own with only loopback, up (Jupyter's kernels talk over 127.0.0.1): the host's
  loopback is out of reach (Docker's bridge to the outside is left out: nothing may download);
- one memory cgroup (768 MiB, swap included) and half a core (cfs quota) around everything, the grader too;
  the cgroup mounts read-only, with the container's own cgroup at /sys/fs/cgroup/{memory,cpu,cpuacct} as
  Docker's cgroup namespace shows it;
- the image's files (the environment, the standard library, the kit) out of the page cache at the start;
- a fresh overlay of the kit per submission (in a private mount namespace, set up before the filter), so what
  one grading writes or chmods never reaches the next (and of any other folder of the image named in `fresh`);
  a /run of its own (the sandbox's slot locks live there).

Library: `Box().run(argv)` -> BoxRun (returncode, output, peak memory, CPU seconds, wall seconds, OOM kills).
CLI: `python tests/gradescope_box.py [--memory-mb 768] [--cpus 0.5] -- python -m autograder --submission ...`
The entry stage (gradescope_box_enter.py) makes the namespaces as root and forks the container's init, which joins
the box's cgroups, confines itself (capabilities, filter) and forks the command; the entry stage, like Docker's
runtime, stays outside the cgroups and exits as the command did.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTER = Path(__file__).resolve().with_name("gradescope_box_enter.py")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "cpuacct")
# Docker's default capability set (moby's oci/caps/defaults.go); everything else leaves the bounding set.
DOCKER_CAPS = ("chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid", "setuid", "setfcap",
               "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write")
CAP_NUMBERS = {"chown": 0, "dac_override": 1, "fowner": 3, "fsetid": 4, "kill": 5, "setgid": 6, "setuid": 7,
               "setpcap": 8, "net_bind_service": 10, "net_raw": 13, "sys_chroot": 18, "mknod": 27,
               "audit_write": 29, "setfcap": 31}
# What Docker's default seccomp profile refuses to a container without CAP_SYS_ADMIN (and always).
REFUSED_SYSCALLS = ("unshare", "setns", "mount", "umount2", "pivot_root", "keyctl", "add_key", "request_key",
                    "bpf", "perf_event_open", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
                    "mount_setattr", "kexec_load", "kexec_file_load", "init_module", "finit_module",
                    "delete_module", "swapon", "swapoff", "reboot", "syslog", "acct", "settimeofday",
                    "clock_settime", "open_by_handle_at", "name_to_handle_at", "quotactl", "userfaultfd",
                    "lookup_dcookie", "iopl", "ioperm", "sethostname", "setdomainname", "vhangup")
CLONE_NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
                         "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                         "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
SAMPLE_SECONDS = 0.1
# What a box's own test may leave out (its control: the attack that the mechanism stops gets through).
SWITCHES = ("filter", "capabilities", "read_only_cgroups", "overlay", "pid_namespace", "network_namespace")

__all__ = ["Box", "BoxRun", "evict_page_cache", "resident_fraction", "DOCKER_CAPS", "REFUSED_SYSCALLS"]


@dataclass
class BoxRun:
    returncode: int
    stdout: str
    stderr: str
    wall_seconds: float
    cpu_seconds: float
    peak_mb: float  # memory.max_usage_in_bytes: anonymous memory and page cache, as the limit counts them
    peak_anonymous_mb: float  # the largest total_rss + total_swap seen (sampled every 0.1 s)
    oom_kills: int
    evicted_files: int = 0
    survivors: int = 0  # processes still in the container when its command had exited (before the box killed them)
    notes: list[str] = field(default_factory=list)

    def figures(self) -> str:
        return (f"peak {self.peak_mb:.0f} MB (anonymous {self.peak_anonymous_mb:.0f} MB), CPU {self.cpu_seconds:.1f} s, "
                f"wall {self.wall_seconds:.1f} s, OOM kills {self.oom_kills}")


class Box:
    """One container per `run`: fresh cgroups, a cold page cache and a fresh overlay of `kit` each time."""

    def __init__(self, memory_mb: int = 768, cpus: float = 0.5, kit: Path = ROOT, evict: bool = True,
                 image_paths: tuple[Path, ...] | None = None, fresh: tuple[Path, ...] = (),
                 switched_off: tuple[str, ...] = ()):
        """`fresh`: more of the image's folders to give a fresh overlay per run, as the kit has (a grading that
        changes the environment's files, the fallback's file permissions, changes a copy, as in a container).
        `switched_off` (the box's own tests only: a control shows that a mechanism is what stops an attack):
        any of SWITCHES, left out of the container."""
        if os.geteuid() != 0:
            raise PermissionError("the Gradescope box needs root (cgroups, mounts)")
        if memory_mb <= 0 or cpus <= 0:
            raise ValueError(f"memory_mb and cpus must be positive, got {memory_mb} and {cpus}")
        if set(switched_off) - set(SWITCHES):
            raise ValueError(f"unknown switches {sorted(set(switched_off) - set(SWITCHES))}; known: {SWITCHES}")
        self.switched_off = tuple(switched_off)
        self.memory_mb, self.cpus, self.kit, self.evict = memory_mb, cpus, Path(kit).resolve(), evict
        self.image_paths = image_paths if image_paths is not None else image_files_roots(self.kit)
        self.fresh = tuple(Path(path).resolve() for path in fresh)

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 1200,
            cwd: Path | None = None) -> BoxRun:
        groups = self._cgroups()
        scratch = Path(tempfile.mkdtemp(prefix="gradescope-box-"))
        env, lock = _own_sandbox_user(dict(os.environ if env is None else env))
        try:
            evicted = sum(evict_page_cache(p) for p in self.image_paths) if self.evict else 0
            spec = {"cgroups": {k: str(v) for k, v in groups.items()}, "kit": str(self.kit),
                    "upper": str(scratch / "upper"), "work": str(scratch / "work"),
                    "switched_off": list(self.switched_off),
                    "fresh": [{"lower": str(path), "upper": str(scratch / f"fresh{i}" / "upper"),
                               "work": str(scratch / f"fresh{i}" / "work")} for i, path in enumerate(self.fresh)]}
            command = [sys.executable, str(ENTER), json.dumps(spec), "--", *argv]
            stop, peak_anonymous = threading.Event(), [0.0]
            sampler = threading.Thread(target=_sample_anonymous, args=(groups["memory"], stop, peak_anonymous),
                                       daemon=True)
            started = time.monotonic()
            sampler.start()
            try:
                done = subprocess.run(command, env=env, cwd=cwd or self.kit, capture_output=True, text=True,
                                      timeout=timeout)
            finally:
                stop.set()
                sampler.join()
            wall = time.monotonic() - started
            memory = groups["memory"]
            survivors = len(_read(memory / "cgroup.procs").split())
            return BoxRun(done.returncode, done.stdout, done.stderr, round(wall, 1),
                          round(int(_read(groups["cpuacct"] / "cpuacct.usage")) / 1e9, 1),
                          round(int(_read(memory / "memory.max_usage_in_bytes")) / 2**20, 1),
                          round(peak_anonymous[0], 1), _oom_kills(memory), evicted, survivors)
        finally:
            _kill_and_remove(groups)
            subprocess.run(["rm", "-rf", "--one-file-system", str(scratch)], check=False)
            if lock is not None:
                os.close(lock)

    def _cgroups(self) -> dict[str, Path]:
        name, groups = f"gradescope-box-{uuid.uuid4().hex[:10]}", {}
        try:
            for controller in CONTROLLERS:
                path = CGROUP_ROOT / controller / _own_cgroup(controller).lstrip("/") / name
                path.mkdir()
                groups[controller] = path
            limit = str(self.memory_mb * 2**20)
            (groups["memory"] / "memory.limit_in_bytes").write_text(limit)
            swap = groups["memory"] / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(limit)  # memory and swap together: no escape into swap
            (groups["cpu"] / "cpu.cfs_period_us").write_text("100000")
            (groups["cpu"] / "cpu.cfs_quota_us").write_text(str(int(self.cpus * 100000)))
        except OSError:
            _kill_and_remove(groups)
            raise
        return groups


def _own_sandbox_user(env: dict[str, str]) -> tuple[dict[str, str], int | None]:
    """Each box's graders get sandbox users of their own (agbox<N>...), held by a lock on the host: containers on
    one host share the kernel's uids, and a run must not count, watch or kill another box's (or the host's)
    processes. Gradescope's own uid collisions between containers are the sandbox's to avoid, not the box's."""
    if "AUTOGRADER_SANDBOX_USER" in env:
        return env, None
    import fcntl
    folder = Path("/run/gradescope-box")
    folder.mkdir(mode=0o700, exist_ok=True)
    for number in range(64):
        fd = os.open(folder / f"agbox{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return {**env, "AUTOGRADER_SANDBOX_USER": f"agbox{number}"}, fd
    raise RuntimeError("64 boxes are running on this host")


def image_files_roots(kit: Path) -> tuple[Path, ...]:
    """What Gradescope's image holds and a fresh container has not read yet: the environment (its real folder,
    not a link to it), the standard library, the kit."""
    import sysconfig
    roots = {Path(sys.prefix).resolve(), Path(sysconfig.get_paths()["stdlib"]).resolve(), kit.resolve()}
    return tuple(sorted(roots))


def evict_page_cache(root: Path) -> int:
    """posix_fadvise(DONTNEED) on every regular file under root; returns how many. Pages that another process
    still maps stay (the kernel keeps them), as they would in a container's image shared with nothing."""
    count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            except OSError:
                pass
            finally:
                os.close(fd)
    return count


def resident_fraction(path: Path) -> float:
    """Share of the file's pages in the page cache (mincore on a read-only mapping; nothing is read)."""
    import mmap
    size = path.stat().st_size
    if size == 0:
        return 0.0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype, libc.mmap.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                              ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    with open(path, "rb") as stream:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, stream.fileno(), 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap of {path} failed")
        try:
            vector = ctypes.create_string_buffer(pages)
            if libc.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), f"mincore of {path} failed")
            return sum(byte & 1 for byte in vector.raw) / pages
        finally:
            libc.munmap(address, size)


def _own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return "/"


def _read(path: Path) -> str:
    return path.read_text().strip()


def _memory_stat(memory: Path) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in _read(memory / "memory.stat").splitlines())}


def _sample_anonymous(memory: Path, stop: threading.Event, peak: list[float]) -> None:
    while True:
        try:
            stat = _memory_stat(memory)
            peak[0] = max(peak[0], (stat["total_rss"] + stat.get("total_swap", 0)) / 2**20)
        except (OSError, KeyError, ValueError):
            pass
        if stop.wait(SAMPLE_SECONDS):
            return


def _oom_kills(memory: Path) -> int:
    for line in _read(memory / "memory.oom_control").splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def _kill_and_remove(groups: dict[str, Path]) -> None:
    """Whatever the grading left running dies with its container."""
    for _ in range(100):
        pids = {int(p) for path in groups.values() for p in _read(path / "cgroup.procs").split()} \
            if all(path.exists() for path in groups.values()) else set()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    for path in groups.values():
        for _ in range(50):
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Run a command as Gradescope's container would (root only).")
    parser.add_argument("--memory-mb", type=int, default=768)
    parser.add_argument("--cpus", type=float, default=0.5)
    parser.add_argument("--warm", action="store_true", help="leave the page cache as it is")
    parser.add_argument("command", nargs="+")
    options = parser.parse_args(args)
    run = Box(options.memory_mb, options.cpus, evict=not options.warm).run(options.command)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    print(f"[gradescope box] exit {run.returncode}; {run.figures()}; {run.evicted_files} files evicted",
          file=sys.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
