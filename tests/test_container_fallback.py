"""Gradescope's container, simulated by tests/gradescope_box.py: a Docker-like seccomp filter refusing namespaces,
Docker's default capabilities (no CAP_SYS_ADMIN, no CAP_SYS_PTRACE), 768 MiB and half a core around everything
(the grader too), the image's files out of the page cache, a fresh overlay of the kit per grading, a PID namespace
and a network namespace (only loopback) of its own.

First the box itself (each mechanism asserted from inside it, and each with its control: the same probe in a
box with that mechanism switched off, Box's test-only `switched_off`, or its limit raised, gets through), then
gradings in it: the fallback sandbox must grade both parts right there, measure memory without ptrace, and say in
the staff log that it fell back.
"""

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
sys.path.insert(0, str(ROOT / "tests"))
from gradescope_box import DOCKER_CAPS, CAP_NUMBERS, Box, resident_fraction  # noqa: E402

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="the Gradescope box needs root (cgroups, mounts)")]

CLONE_NEWNS, CLONE_NEWUSER, SIGCHLD = 0x00020000, 0x10000000, 17
CAP_SYS_PTRACE, CAP_SYS_ADMIN = 19, 21


def inside(code: str, box: Box | None = None):
    """Run Python code in a fresh box; its last stdout line is JSON."""
    run = (box or Box(evict=False)).run([sys.executable, "-c", textwrap.dedent(code)])
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1]), run


NAMESPACES = f"""
        import ctypes, json, os
        libc = ctypes.CDLL(None, use_errno=True)
        def errno_of(result):
            return ctypes.get_errno() if result == -1 else result
        out = {{"unshare_user": errno_of(libc.unshare({CLONE_NEWUSER})),
                "unshare_mount": errno_of(libc.unshare({CLONE_NEWNS})),
                "mount": errno_of(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)),
                "clone3": errno_of(libc.syscall(435, None, 0)),
                "seccomp": [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0]}}
        pid = libc.syscall(56, {CLONE_NEWUSER | SIGCHLD}, None, None, None, None)  # clone: refused, or a child
        if pid == 0:
            os._exit(0)
        out["clone_newuser"] = errno_of(pid) if pid == -1 else "allowed"
        child = os.fork()  # a plain fork (clone without namespace flags) still works
        if child == 0:
            os._exit(7)
        out["fork"] = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        print(json.dumps(out))
    """


def test_namespaces_are_refused_by_the_filter_not_only_by_capabilities():
    # unshare(CLONE_NEWUSER) needs no capability: only a seccomp filter refuses it to root without CAP_SYS_ADMIN.
    seen, _ = inside(NAMESPACES)
    import errno
    assert seen["unshare_user"] == errno.EPERM and seen["unshare_mount"] == errno.EPERM
    assert seen["mount"] == errno.EPERM and seen["clone_newuser"] == errno.EPERM
    assert seen["clone3"] == errno.ENOSYS  # as Docker: glibc falls back to clone, whose flags the filter reads
    assert seen["seccomp"] == "2" and seen["fork"] == 7


def test_with_the_filter_switched_off_the_capabilities_alone_let_a_user_namespace_be_made():
    seen, _ = inside(NAMESPACES, Box(evict=False, switched_off=("filter",)))
    import errno
    assert seen["unshare_user"] == 0, seen  # (then unmapped in it, this uid may not nest another: clone's EPERM)
    assert seen["clone3"] != errno.ENOSYS, seen  # the kernel's own answer to clone3(NULL, 0), not the filter's


CAPABILITIES = """
        import json, os
        caps = {l.split(":")[0]: int(l.split()[1], 16) for l in open("/proc/self/status") if l.startswith("Cap")}
        print(json.dumps({"uid": os.getuid(), **caps}))
    """


def test_root_inside_has_dockers_capabilities_only():
    seen, _ = inside(CAPABILITIES)
    docker = sum(1 << CAP_NUMBERS[name] for name in DOCKER_CAPS)
    assert seen["uid"] == 0
    assert seen["CapBnd"] == docker and seen["CapEff"] == docker
    assert not seen["CapBnd"] & (1 << CAP_SYS_PTRACE) and not seen["CapBnd"] & (1 << CAP_SYS_ADMIN)


def test_with_the_capabilities_switched_off_root_inside_keeps_sys_admin_and_ptrace():
    seen, _ = inside(CAPABILITIES, Box(evict=False, switched_off=("capabilities",)))
    assert seen["CapBnd"] & (1 << CAP_SYS_PTRACE) and seen["CapBnd"] & (1 << CAP_SYS_ADMIN), seen


CGROUPS = """
        import json, os
        memory, cpu = "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu"
        try:
            os.mkdir(memory + "/run")
            os.rmdir(memory + "/run")
            made = "yes"
        except OSError as error:
            made = error.errno
        print(json.dumps({"limit": int(open(memory + "/memory.limit_in_bytes").read()),
                          "quota": int(open(cpu + "/cpu.cfs_quota_us").read()),
                          "period": int(open(cpu + "/cpu.cfs_period_us").read()),
                          "mine": str(os.getpid()) in open(memory + "/cgroup.procs").read().split(), "mkdir": made}))
    """
HOG = "x = bytearray(900 * 2**20); x[::4096] = b'1' * len(x[::4096])"


def test_one_read_only_cgroup_of_768_mib_and_half_a_core_holds_everything():
    seen, _ = inside(CGROUPS)
    import errno
    assert seen["limit"] == 768 * 2**20 and seen["mine"]
    assert (seen["quota"], seen["period"]) == (50000, 100000)
    assert seen["mkdir"] == errno.EROFS  # the grader cannot make cgroups of its own there
    hog = Box(evict=False).run([sys.executable, "-c", HOG])
    assert hog.returncode == -9 and hog.oom_kills >= 1  # the limit is in force


def test_with_the_cgroups_writable_and_the_limit_raised_the_same_probes_get_through():
    seen, _ = inside(CGROUPS, Box(evict=False, switched_off=("read_only_cgroups",)))
    assert seen["mkdir"] == "yes"
    hog = Box(evict=False, memory_mb=1536).run([sys.executable, "-c", HOG])
    assert hog.returncode == 0 and hog.oom_kills == 0, hog.stderr[-2000:]


def test_the_image_files_leave_the_page_cache_before_each_run(tmp_path):
    image = tmp_path / "image"
    image.mkdir()
    blob = image / "libbig.so"
    with open(blob, "wb") as stream:
        stream.write(os.urandom(4 * 2**20))
        stream.flush()
        os.fsync(stream.fileno())  # clean pages: the image's files are never dirty
    blob.read_bytes()
    assert resident_fraction(blob) > 0.9  # written and read: cached
    kept = Box(image_paths=(image,), evict=False).run(["true"])  # the control: without the eviction it stays cached
    assert kept.returncode == 0 and kept.evicted_files == 0 and resident_fraction(blob) > 0.9
    run = Box(image_paths=(image,)).run(["true"])
    assert run.returncode == 0 and run.evicted_files == 1
    assert resident_fraction(blob) == 0.0
    roots = Box().image_paths  # by default: the environment's real folder, the standard library, the kit
    assert Path(sys.prefix).resolve() in roots and ROOT in roots


def test_each_run_gets_a_fresh_overlay_of_the_kit():
    marker = ROOT / "autograder" / ".written-in-the-box"
    write = f"open({str(marker)!r}, 'w').write('x'); import json; print(json.dumps(True))"
    seen, _ = inside(write)
    assert seen and not marker.exists()  # written in the overlay, not the kit
    again, _ = inside(f"import json, os; print(json.dumps(os.path.exists({str(marker)!r})))")
    assert again is False


def test_with_the_overlay_switched_off_a_write_in_the_box_lands_in_the_kit():
    marker = ROOT / "autograder" / ".written-in-the-box"
    try:
        seen, _ = inside(f"open({str(marker)!r}, 'w').write('x'); import json; print(json.dumps(True))",
                         Box(evict=False, switched_off=("overlay",)))
        assert seen and marker.exists()
    finally:
        marker.unlink(missing_ok=True)


PROCESSES = """
        import json, os
        def command(pid):
            try:
                return open(f"/proc/{{pid}}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
            except OSError:
                return None
        def status(pid, key):
            return [line.split()[1] for line in open(f"/proc/{{pid}}/status") if line.startswith(key + ":")][0]
        pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
        print(json.dumps({{"me": os.getpid(), "pids": pids, "commands": {{p: command(p) for p in pids}},
                          "host": command({host}), "init_seccomp": status(1, "Seccomp"),
                          "init_bounding": int(status(1, "CapBnd"), 16)}}))
    """


@contextlib.contextmanager
def host_process():
    """A process of the host's that the box must not see (`sleep 300`)."""
    process = subprocess.Popen(["sleep", "300"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_the_container_has_a_pid_namespace_of_its_own_whose_proc_shows_its_processes_only():
    with host_process() as host:
        seen, _ = inside(PROCESSES.format(host=host.pid))
    assert host.pid not in seen["pids"] and seen["host"] is None
    assert set(seen["pids"]) == {1, seen["me"]}, seen["commands"]  # the container's init and the probe, no more
    assert "gradescope_box_enter.py" in seen["commands"]["1"]
    # The init, too, is confined as Docker confines every process of the container.
    assert seen["init_seccomp"] == "2" and seen["init_bounding"] == sum(1 << CAP_NUMBERS[n] for n in DOCKER_CAPS)


def test_with_the_pid_namespace_switched_off_the_container_sees_the_hosts_processes():
    with host_process() as host:
        seen, _ = inside(PROCESSES.format(host=host.pid), Box(evict=False, switched_off=("pid_namespace",)))
    assert host.pid in seen["pids"] and seen["host"].split() == ["sleep", "300"], seen["host"]


LEFTOVER = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # detached, its output elsewhere: it outlives the command unless something kills it
                quiet = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(quiet, fd)
                time.sleep(120)
            os._exit(0)
        os.wait()
    """


def test_what_the_command_leaves_running_dies_with_the_container():
    run = Box(evict=False).run([sys.executable, "-c", textwrap.dedent(LEFTOVER)])
    assert run.returncode == 0 and run.survivors == 0, run.stderr[-2000:]


def test_with_the_pid_namespace_switched_off_what_the_command_leaves_running_outlives_it():
    run = Box(evict=False, switched_off=("pid_namespace",)).run([sys.executable, "-c", textwrap.dedent(LEFTOVER)])
    assert run.returncode == 0 and run.survivors == 1, run.stderr[-2000:]  # (the box's cleanup kills it after)


NETWORK = """
        import json, socket
        def connect(address):
            try:
                socket.create_connection(address, timeout=5).close()
                return "connected"
            except OSError as error:
                return errno.errorcode.get(error.errno, str(error))
        import errno
        own = socket.create_server(("127.0.0.1", 0))  # what a Jupyter kernel does in the box
        print(json.dumps({{"host": connect(("127.0.0.1", {port})), "own": connect(own.getsockname()),
                          "interfaces": [name for _, name in socket.if_nameindex()]}}))
    """


@contextlib.contextmanager
def host_listener():
    """A listener on the host's loopback: (its port, whether a connection reached it)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)

    def reached() -> bool:
        try:
            server.accept()[0].close()  # a completed handshake waits in the backlog, whoever closed it since
            return True
        except BlockingIOError:
            return False

    try:
        yield server.getsockname()[1], reached
    finally:
        server.close()


def test_the_container_has_a_network_namespace_of_its_own_with_loopback_up():
    with host_listener() as (port, reached):
        seen, _ = inside(NETWORK.format(port=port))
        assert not reached()
    assert seen["host"] == "ECONNREFUSED"  # its own loopback, up, where nothing listens on that port
    assert seen["own"] == "connected" and seen["interfaces"] == ["lo"]


def test_with_the_network_namespace_switched_off_the_hosts_loopback_listener_is_reached():
    with host_listener() as (port, reached):
        seen, _ = inside(NETWORK.format(port=port), Box(evict=False, switched_off=("network_namespace",)))
        assert reached()
    assert seen["host"] == "connected" and seen["own"] == "connected"


# ---- gradings in the box (slow: minutes each on half a core) ----

def grade_in_box(notebook: Path, assignment: str, out: Path):
    env = {**os.environ, "AUTOGRADER_SECRET": "container test"}
    env.pop("AUTOGRADER_DISABLE", None)  # bubblewrap is tried, and refused by the box's filter
    run = Box().run([sys.executable, "-m", "autograder", "--submission", str(notebook), "--results", str(out),
                     "--assignment", assignment], env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run


def staff_log(results: dict) -> str:
    return next(t["output"] for t in results["tests"] if t["name"].startswith("Grader log"))


def failed(results: dict) -> set[str]:
    return {t["number"] for t in results["tests"] if t["status"] == "failed" and t["max_score"] > 0}


@pytest.mark.box
@pytest.mark.parametrize("assignment, solution_total", [("hw4_part1", 40), ("hw4_part2", 10)])
def test_the_fallback_grades_the_solution_full_and_the_template_zero(tmp_path, assignment, solution_total):
    solution, run = grade_in_box(ROOT / "solution" / "notebooks" / f"{assignment}.ipynb", assignment,
                                 tmp_path / "solution.json")
    assert solution["score"] == solution_total, solution["output"]
    assert run.oom_kills == 0
    log = staff_log(solution)
    assert "FALLBACK SANDBOX" in log and "bubblewrap refused" in log and "no cgroups" in log
    assert "start-up: one step at a time" in log  # 768 MiB: no torch in the grader beside the sandbox
    # The watchdog measured the run without ptrace (it read 0 MB forever with smaps_rollup). What the run holds
    # beyond the zygote's pages is small: 12-13 MB since the hidden problems travel as bytes, not JSON numbers.
    peak = float(re.search(r"memory: peak ([\d.]+) MB \(statm\)", log).group(1))
    assert peak > 5
    assert solution["extra_data"]["needs_review"] == []
    template, _ = grade_in_box(ROOT / "student_template" / f"{assignment}.ipynb", assignment,
                               tmp_path / "template.json")
    assert template["score"] == 0


@pytest.mark.box
def test_the_fallback_takes_points_only_where_the_mistake_is(tmp_path):
    results, _ = grade_in_box(SUBMISSIONS / "hw4_part1" / "adam_no_bias_correction.ipynb", "hw4_part1",
                              tmp_path / "wrong.json")
    assert {"5.3", "5.4", "5.5"} <= failed(results) <= {f"5.{i}" for i in range(1, 7)}


@pytest.mark.box
def test_the_fallback_stops_a_memory_hog_by_its_memory_before_the_container_does(tmp_path):
    results, _ = grade_in_box(SUBMISSIONS / "hw4_part1" / "attack_memory_hog.ipynb", "hw4_part1",
                              tmp_path / "hog.json")
    assert failed(results) == {f"{g}.{i}" for g, n in ((4, 6), (5, 6)) for i in range(1, n + 1)}
    log = staff_log(results)
    assert "FALLBACK SANDBOX" in log, log[-3000:]
    # The watchdog (every 0.2 s) usually stops the hog first; on a loaded host the container's OOM killer can win the
    # race, and the staff log must then say so. Either way the grade below is the same, and nothing goes to review.
    assert "watchdog stopped" in log or "CONTAINER's OOM killer stopped" in log, log[-3000:]
    assert results["extra_data"]["needs_review"] == []  # the student's own hog: their memory, not the box's
