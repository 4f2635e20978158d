"""Make the forbidden packages (torch.optim) unusable in this process, for good, before any student code runs.

The inner, in-memory layer of the measurement's policy (policy.py installs it after the kernel's layers:
files.py, Landlock, and syscalls.py, seccomp). What is forbidden is the assignment's declaration. Three parts,
installed once, in this order, by `install()`:
  1. every Python function defined under torch/optim/ gets a body that raises (its code object is replaced in
     place, so every reference to it — `torch.optim.Adam`, `optim.Adam`, a class's methods, a saved alias — now
     raises); the original code objects are gone. Every function: those the warm start froze, through the index
     it took as it froze them (freeze_indexed), and all the others, walked with gc;
  2. torch's fused and foreach optimizer kernels (`aten::_fused_*`, `aten::_foreach_*`) get a CPU kernel that
     raises, registered with the dispatcher by a library object kept only in the audit hook's closure, whose
     finalizer is detached: nothing reachable from Python can deregister it;
  3. a PEP 578 audit hook, which cannot be removed, refuses what would undo 1 and 2 or reach past them: reading
     torch/optim's sources (re-importing or re-executing them), gc's object graph (the only way to the library
     above), trace and profile hooks and signal handlers (they would see the audit hook's own frame), ctypes,
     code replacement, audit hooks of the student's own, new processes, signals, connections, and /proc's views
     of processes' memory and descriptors. Everything the hook uses is bound in its closure at install time
     (no module global, no `os.path`, not even a builtin looked up by name), so rewriting this module in
     `sys.modules` changes nothing it does.

Frames stay readable (namedtuple, enum, typing and logging need sys._getframe): what a student finds there is
the measurement's own plumbing, whose reports are plain numbers that the grader checks against the reference on
inputs the student cannot predict. Raw memory writes through ctypes function pointers built from addresses have
no audit event; docs/trust_model.md says why no score depends on that either.
This module imports nothing from the grader; it runs inside the sandbox.
"""

from __future__ import annotations

import gc
import os
import sys
import types
import warnings
from typing import Any

MESSAGE = "{module} is disabled while your {kind} are measured: the handout asks you to write them yourself"
_REFUSED_EVENTS = frozenset({
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
    "sys.addaudithook", "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "pty.spawn",
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
})
_REFUSED_MODULES = frozenset({"_signal", "_ctypes", "_posixsubprocess"})
_PROC_VIEWS = frozenset({"mem", "fd", "environ", "maps", "fdinfo", "map_files", "pagemap", "root", "cwd", "exe"})


SEAL_EVENT = "autograder.sealed"  # a measurement child's set-up is done: from now on ctypes is refused there


class Refused(PermissionError):
    """Raised by the audit hook; the message says what the measurement process does not allow."""


def _source_file(module: types.ModuleType) -> str:
    """A forbidden package's source file; one without any (a namespace package) has no files to forbid."""
    if module.__file__ is None:
        raise ImportError(f"{module.__name__} has no source file to forbid", name=module.__name__)
    return module.__file__


def install(forbidden: tuple[str, ...] = ("torch.optim",), kernels: tuple[str, ...] = (),
            kind: str = "definitions") -> list[str]:
    """Apply the three layers to the packages in `forbidden` (and the torch operators whose names start with one
    of `kernels`). Call once, in the measurement process, before it forks for the first call. Returns the
    folders of the forbidden packages, for the kernel's file policy."""
    folders = forbidden_folders(forbidden)
    # code objects name the file as it was imported (through a linked environment, say) or resolved: both
    imported = [os.path.dirname(_source_file(sys.modules[name])) for name in forbidden]
    message = MESSAGE.format(module=" and ".join(forbidden) or "nothing", kind=kind)
    _replace_code(tuple(f + os.sep for f in {*folders, *imported}), message)
    library = _block_kernels(kernels, message) if kernels else None
    _disable_signal_handlers()
    sys.addaudithook(_make_hook(tuple(folders), tuple(forbidden), os.getpid(), library))
    return folders


def forbidden_folders(forbidden: tuple[str, ...]) -> list[str]:
    """The source folders of the forbidden packages, imported now (with every submodule they import)."""
    import importlib
    folders = []
    for name in forbidden:
        module = importlib.import_module(name)
        folders.append(os.path.realpath(os.path.dirname(_source_file(module))))
    return folders


# The functions the warm start froze, by source file (freeze_indexed), and a marker made just after that freeze:
# while the marker is not frozen, nothing was frozen since, so the index covers every frozen function.
_frozen_functions: dict[str, list[types.FunctionType]] = {}
_made_after_freeze: list[list] = []


def freeze_indexed() -> None:
    """The warm start's gc.freeze(), keeping an index of the functions it freezes, by source file. install() then
    finds the forbidden ones among the frozen objects through it: walking every frozen object instead would take a
    reference to each, which copies every page a run shares with the warm start (100-200 MB with transformers)."""
    gc.unfreeze()
    _frozen_functions.clear()
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType:
            _frozen_functions.setdefault(obj.__code__.co_filename, []).append(obj)
    gc.freeze()
    _made_after_freeze[:] = [[]]  # a list is tracked, so gc.get_objects() lists it until someone freezes again


def _replace_code(prefixes: tuple[str, ...], message: str) -> None:
    stubs: dict[tuple, types.CodeType] = {}
    found = gc.get_objects()  # what is not frozen: frozen objects are invisible to get_objects
    marker = _made_after_freeze[0] if _made_after_freeze else None
    if marker is not None and any(obj is marker for obj in found):  # the frozen objects: the warm start's
        found += [f for name, functions in _frozen_functions.items() if name.startswith(prefixes) for f in functions]
    else:  # frozen by someone else too, or without an index: every frozen object is walked
        gc.unfreeze()
        found = gc.get_objects()
    gc.freeze()
    for obj in found:
        if type(obj) is types.FunctionType and obj.__code__.co_filename.startswith(prefixes):
            obj.__code__ = _stub(obj.__code__, stubs, message)


def _stub(code: types.CodeType, cache: dict, message: str) -> types.CodeType:
    """A code object that raises, with the same free variables (a function's closure must still fit) and name."""
    names = code.co_freevars
    if names not in cache:
        body = "".join(f"    {n} = None\n" for n in names)
        uses = f"        {', '.join(names)}\n" if names else ""
        source = (f"def _outer():\n{body}    def _disabled(*args, **kwargs):\n{uses}"
                  f"        raise RuntimeError({message!r})\n    return _disabled\n")
        namespace: dict = {}
        exec(compile(source, "<torch.optim is disabled>", "exec"), namespace)
        cache[names] = namespace["_outer"]().__code__
    renamed = {"co_name": code.co_name}
    if hasattr(code, "co_qualname"):
        renamed["co_qualname"] = code.co_qualname
    return cache[names].replace(**renamed)


def _block_kernels(prefixes: tuple[str, ...], message: str):
    """Register a raising CPU kernel for every operator whose name starts with one of `prefixes`; return the
    library that holds them."""
    import torch
    library = torch.library.Library("aten", "IMPL", "CPU")
    names = [n for n in torch._C._dispatch_get_all_op_names() if n.startswith(tuple(prefixes))]

    def refuse(name):
        def kernel(*args, **kwargs):
            raise RuntimeError(f"{message} (`torch.{name.split('::')[1].split('.')[0]}` was called)")
        return kernel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            try:
                library.impl(name.split("::", 1)[1], refuse(name), "CPU")
            except RuntimeError:  # an operator without a CPU kernel to replace
                pass
    _detach_finalizer(library)
    return library


def _detach_finalizer(library) -> None:
    """torch deregisters a library's kernels when a weakref.finalize runs; a student could run it. Detach it."""
    import weakref
    registry = weakref.finalize._registry  # type: ignore[attr-defined]  # private: the live finalizers (no stub)
    for finalizer in list(registry):
        info = registry.get(finalizer)
        if info is not None and info.weakref() is library:
            finalizer.detach()


def _disable_signal_handlers() -> None:
    """A Python signal handler receives the interrupted frame, a way around the frame rules below."""
    import signal
    import _signal

    def refused(*args, **kwargs):
        raise Refused("signal handlers are not available while your code is measured")

    for module in (signal, _signal):
        for name in ("signal", "set_wakeup_fd", "setitimer", "alarm", "pthread_sigmask"):
            if hasattr(module, name):
                setattr(module, name, refused)


def _make_hook(folders: tuple[str, ...], forbidden: tuple[str, ...], owner: int, library):
    """The audit hook. Everything it uses is bound here, at install time, into its closure: builtin functions
    and immutable values that no student code can reach or rebind (no module globals, no attribute of a module
    looked up at event time, no os.path). Paths are checked as text only; the kernel's file policy (files.py)
    is what makes the files unreadable, by any route; this is the inner layer."""
    getpid, fsdecode = os.getpid, os.fsdecode
    str_, bytes_, type_, len_, Refused_ = str, bytes, type, len, Refused  # builtins can be rebound: not these
    refused_events, proc_views = _REFUSED_EVENTS, _PROC_VIEWS
    refused_modules = _REFUSED_MODULES | frozenset(forbidden)
    submodules = tuple(name + "." for name in forbidden)
    # a path naming one of the forbidden folders by its own name, in any position (relative to a descriptor,
    # through ".." or a link made earlier): refused without asking the file system
    hidden_names = frozenset(f.rsplit("/", 1)[-1] for f in folders)
    sealed = set()  # pids of children whose set-up is over; only this closure holds it
    seal_event = SEAL_EVENT

    def hook(event, args) -> None:
        if library is None and not folders:  # keeps the kernels' library alive, and out of reach, in this closure
            return
        if type_(event) is not str_:
            return
        if event == "open":
            path: Any = args[0] if args else None  # type_ checks it below: mypy cannot narrow through an alias
            if type_(path) is bytes_:
                path = fsdecode(path)
            if type_(path) is not str_:
                return
            parts = path.split("/")
            if hidden_names.intersection(parts):
                raise Refused_("those source files are not readable while your code is measured")
            if len_(parts) > 2 and parts[1] == "proc" and proc_views.intersection(parts):
                raise Refused_("processes' memory and descriptors are not readable while your code is measured")
        elif event == "import":
            name = args[0] if args and type_(args[0]) is str_ else ""
            if name in refused_modules or name.startswith(submodules):
                raise Refused_("importing that module again is not allowed while your code is measured")
        elif event == "object.__setattr__":
            if len_(args) > 1 and type_(args[1]) is str_ and args[1] in ("__code__", "__globals__", "__closure__"):
                raise Refused_("replacing a function's code is not available while your code is measured")
        elif event == seal_event:
            sealed.add(getpid())
        elif event.startswith("ctypes."):
            pid = getpid()
            if pid != owner and pid not in sealed:
                return  # a child's own set-up (its system-call filter), before any student code exists there
            raise Refused_(f"ctypes is not available while your code is measured (`{event}`)")
        elif event in refused_events:
            if (event == "os.fork" or event == "os.kill") and getpid() == owner:
                return  # the measurement process itself forks each call and stops what overruns
            raise Refused_(f"`{event}` is not available while your code is measured")
    return hook
