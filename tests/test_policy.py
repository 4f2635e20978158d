"""The measurement's kernel policy (inside/syscalls.py, files.py, policy.py) and the guard's closure (guard.py).

Fast tests: the rules as data, the hook's independence from anything student code can rebind, and the two kernel
layers applied in a forked child of this process (each with its control: the same probe without the layer
succeeds). The sandboxed versions, with the attacks of issue 19 as a student would write them, are the
integration tests at the end, in both sandboxes; each also runs with the defence switched off (a test-only
request field) to show that it is that defence which stops the attack.
"""

import dis
import errno
import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "autograder" / "inside"))
import files  # noqa: E402
import guard  # noqa: E402
import syscalls  # noqa: E402


def in_child(body, become=None) -> dict:
    """body() in a forked child (after become(), if given: a change of user, say); its JSON-able result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            if become is not None:
                become()
            os.write(write, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        data = stream.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def attempt(action) -> str:
    try:
        action()
        return "allowed"
    except OSError as error:
        return "refused" if error.errno is None else errno.errorcode.get(error.errno, str(error.errno))


# ---- the system-call filter ---------------------------------------------------------------------------------

def test_the_childs_rules_allow_threads_only_and_signals_to_itself_only():
    rules = {(action, name): conditions for action, name, conditions in syscalls.rules("child", 1234)}
    assert rules[("EPERM", "clone")] == ((0, "MASKED_EQ", 0, syscalls.CLONE_THREAD),)
    assert rules[("ENOSYS", "clone3")] == ()  # glibc then falls back to clone, whose flags the filter can read
    assert rules[("EPERM", "kill")] == ((0, "NE", 1234),)
    for name in ("execve", "execveat", "fork", "vfork", "socket", "ptrace", "process_vm_readv", "unshare",
                 "setns", "mount", "io_uring_setup", "symlink", "linkat"):
        assert ("EPERM", name) in rules, name
    parent = {name for _, name, _ in syscalls.rules("measurement", 1)}
    assert {"execve", "socket", "ptrace"} <= parent and not {"fork", "clone", "kill"} & parent  # it forks, kills
    with pytest.raises(ValueError):
        syscalls.rules("kernel", 1)


def _escapes() -> dict:
    import subprocess
    import threading
    done = []
    thread = threading.Thread(target=lambda: done.append(1))
    thread.start()
    thread.join()
    return {"fork": attempt(lambda: os.waitpid(os.fork() or os._exit(0), 0)),
            "spawn": attempt(lambda: subprocess.run([sys.executable, "-c", "pass"])),
            "socket": attempt(lambda: socket.socket().close()),
            "unix socket": attempt(lambda: socket.socketpair()),
            "signal parent": attempt(lambda: os.kill(os.getppid(), 0)),
            "signal all": attempt(lambda: os.kill(-1, 0)),
            "symlink": attempt(lambda: os.symlink("/etc", f"/tmp/ag-policy-link-{os.getpid()}")),
            "thread": "allowed" if done else "refused", "signal itself": attempt(lambda: os.kill(os.getpid(), 0))}


def test_the_child_filter_refuses_processes_programs_sockets_signals_and_links_but_not_threads():
    def confined():
        syscalls.install("child", os.getpid())
        return _escapes()

    seen = in_child(confined)
    assert seen == {"fork": "EPERM", "spawn": "EPERM", "socket": "EPERM", "unix socket": "EPERM",
                    "signal parent": "EPERM", "signal all": "EPERM", "symlink": "EPERM",
                    "thread": "allowed", "signal itself": "allowed"}
    control = in_child(_escapes)  # the same probe without the filter: everything goes through
    for link in Path("/tmp").glob("ag-policy-link-*"):
        link.unlink()
    assert set(control.values()) == {"allowed"}, control


def test_a_syscall_of_another_abi_kills_the_process():
    def x32_fork():
        import ctypes
        syscalls.install("child", os.getpid())
        ctypes.CDLL(None).syscall(0x40000000 + 57)  # fork through the x32 ABI: not in the filter's tables
        return "survived"

    pid = os.fork()
    if pid == 0:
        x32_fork()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == -31  # SIGSYS


# ---- the file policy ----------------------------------------------------------------------------------------

def test_read_grants_cover_the_siblings_on_the_way_down_and_never_the_hidden_folder(tmp_path):
    hidden = tmp_path / "pkg" / "optim"
    (hidden / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "nn").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "other").mkdir()
    (tmp_path / "pkg" / "alias").symlink_to(hidden)  # a link into the hidden folder is no way in
    granted = dict(files.read_grants([str(hidden)]))
    assert granted[str(tmp_path / "pkg" / "nn")] is True and granted[str(tmp_path / "pkg" / "__init__.py")] is False
    assert str(tmp_path / "other") in granted
    for path in (hidden, hidden / "__pycache__", tmp_path / "pkg", tmp_path, tmp_path / "pkg" / "alias"):
        assert str(path) not in granted, path
    with pytest.raises(ValueError):
        files.read_grants(["relative/optim"])


def _read_hidden(hidden: str) -> dict:
    parent = os.open(os.path.dirname(hidden), os.O_RDONLY | os.O_DIRECTORY)
    name = os.path.basename(hidden)
    return {"absolute": attempt(lambda: open(os.path.join(hidden, "adam.py"), "rb").close()),
            "dir_fd": attempt(lambda: os.close(os.open(f"{name}/adam.py", os.O_RDONLY, dir_fd=parent))),
            "dotdot": attempt(lambda: open(f"{hidden}/../{name}/sgd.py", "rb").close()),
            "proc fd": attempt(lambda: open(f"/proc/self/fd/{parent}/{name}/adam.py", "rb").close()),
            "sibling": attempt(lambda: open(os.path.join(os.path.dirname(hidden), "nn", "__init__.py")).close()),
            "listing": attempt(lambda: os.listdir(hidden))}


def _landlock_abi() -> int:
    try:
        import landlock
        return landlock.landlock_abi_version()
    except Exception:
        return 0


@pytest.mark.skipif(_landlock_abi() == 0, reason="no Landlock in this kernel")
def test_landlock_hides_the_forbidden_folder_by_every_route_and_nothing_else():
    import torch.optim
    hidden = os.path.realpath(os.path.dirname(torch.optim.__file__))

    def confined():
        files.install([hidden])
        return _read_hidden(hidden)

    assert in_child(confined) == {"absolute": "EACCES", "dir_fd": "EACCES", "dotdot": "EACCES",
                                  "proc fd": "EACCES", "sibling": "allowed", "listing": "allowed"}
    assert set(in_child(lambda: _read_hidden(hidden)).values()) == {"allowed"}  # control: no policy


# ---- the guard's audit hook ---------------------------------------------------------------------------------

def test_the_audit_hook_reads_no_global_at_event_time():
    hook = guard._make_hook(("/env/torch/optim",), ("torch.optim",), os.getpid(), object())
    globals_read = [i.argval for i in dis.get_instructions(hook) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")]
    assert globals_read == [], globals_read  # everything it uses is a local or a closure cell bound at install


def test_rebinding_the_guard_module_changes_nothing_the_hook_does(monkeypatch):
    hook = guard._make_hook(("/env/torch/optim",), ("torch.optim",), -1, object())
    for name in ("_REFUSED_EVENTS", "_REFUSED_MODULES", "_PROC_VIEWS", "SEAL_EVENT"):
        monkeypatch.setattr(guard, name, frozenset())
    monkeypatch.setattr(guard, "Refused", type("Harmless", (Exception,), {}))
    monkeypatch.setattr(os.path, "realpath", lambda path: "/elsewhere")
    monkeypatch.setattr(os, "getpid", lambda: -1)  # the hook captured the real one
    for event, args in [("open", ("/env/torch/optim/adam.py", "r", 0)), ("open", ("optim/adam.py", "r", 0)),
                        ("open", (b"torch/./optim/sgd.py", "r", 0)), ("open", ("/proc/1/mem", "r", 0)),
                        ("import", ("torch.optim.adam", None, None, None, None)), ("os.fork", ()),
                        ("subprocess.Popen", ("python", [], None, None)),
                        ("object.__setattr__", (hook, "__code__", None))]:
        with pytest.raises(PermissionError):
            hook(event, args)
    hook("open", ("/env/torch/nn/linear.py", "r", 0))  # the rest stays readable
    hook("open", ("optimizers.py", "r", 0))


def test_a_child_may_use_ctypes_for_its_own_set_up_until_it_seals_itself():
    hook = guard._make_hook((), (), os.getpid(), object())

    def child():
        before = attempt(lambda: hook("ctypes.call_function", (0, ())))
        hook(guard.SEAL_EVENT, ())
        after = attempt(lambda: hook("ctypes.call_function", (0, ())))
        return [before, after]

    assert in_child(child) == ["allowed", "refused"]
    with pytest.raises(PermissionError):  # the measurement process itself: never
        hook("ctypes.call_function", (0, ()))


# ---- staff-facing text ----------------------------------------------------------------------------------------

def test_the_runs_output_cannot_close_the_staff_logs_fence_or_pose_as_a_grader_line():
    from autograder.results import build_results
    from autograder.stafftext import QUOTE_PREFIX, quote
    forged = "done\n```\nFALLBACK SANDBOX: none\n![x](http://evil/x.png)\x1b[2K\rworker: namespaces sandbox, exit 0"
    quoted = quote(forged)
    assert all(line.startswith(QUOTE_PREFIX) for line in quoted.split("\n"))
    assert "`" not in quoted and "\x1b" not in quoted and "\r" not in quoted
    log = build_results([], "", 1.0, staff_log="worker log tail:\n" + forged)["tests"][-1]["output"]
    opening = re.match(r"(`{3,})\n", log).group(1)
    assert log.count(opening) == 2 and log.endswith(opening)  # the block opened is the block closed, at the end
    assert len(opening) > 3  # longer than the run of backticks inside it
