"""Make torch.optim unusable in this process, for good, before any student code runs (the measurement process).

Three layers, installed once, in this order, by `install()`:
  1. every Python function defined under torch/optim/ gets a body that raises (its code object is replaced in
     place, so every reference to it — `torch.optim.Adam`, `optim.Adam`, a class's methods, a saved alias — now
     raises); the original code objects are gone;
  2. torch's fused and foreach optimizer kernels (`aten::_fused_*`, `aten::_foreach_*`) get a CPU kernel that
     raises, registered with the dispatcher by a library object kept only in the audit hook's closure, whose
     finalizer is detached: nothing reachable from Python can deregister it;
  3. a PEP 578 audit hook, which cannot be removed, refuses what would undo 1 and 2 or reach past them: reading
     torch/optim's sources (re-importing or re-executing them), gc's object graph (the only way to the library
     above), trace and profile hooks and signal handlers (they would see the audit hook's own frame), ctypes,
     code replacement, audit hooks of the student's own, new processes, signals, connections, and /proc's views
     of processes' memory and descriptors. The hook never calls anything a student could have replaced.

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

MESSAGE = "torch.optim is disabled while your {kind} are measured: the handout asks you to write them yourself"
_KERNEL_PREFIXES = ("aten::_fused_", "aten::_foreach_")
_REFUSED_EVENTS = {
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
    "sys.addaudithook", "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "pty.spawn",
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
}
_REFUSED_IMPORTS = {"_signal", "_ctypes", "_posixsubprocess", "torch.optim"}


class Refused(PermissionError):
    """Raised by the audit hook; the message says what the measurement process does not allow."""


def install(kind: str = "optimizers") -> None:
    """Apply the three layers. Call once, in the measurement process, before it forks for the first call."""
    import torch
    import torch.optim  # noqa: F401  (and, through it, every submodule it imports)
    optim_dir = os.path.realpath(os.path.dirname(torch.optim.__file__)) + os.sep
    _replace_code(optim_dir, kind)
    library = _block_kernels(torch, kind)
    _disable_signal_handlers()
    owner = os.getpid()
    sys.addaudithook(_make_hook(optim_dir, owner, library))


def _replace_code(optim_dir: str, kind: str) -> None:
    stubs: dict[tuple, types.CodeType] = {}
    gc.unfreeze()  # the warm start froze what it imported: frozen objects are invisible to get_objects
    found = gc.get_objects()
    gc.freeze()
    for obj in found:
        if type(obj) is types.FunctionType and obj.__code__.co_filename.startswith(optim_dir):
            obj.__code__ = _stub(obj.__code__, stubs, kind)


def _stub(code: types.CodeType, cache: dict, kind: str) -> types.CodeType:
    """A code object that raises, with the same free variables (a function's closure must still fit) and name."""
    names = code.co_freevars
    if names not in cache:
        body = "".join(f"    {n} = None\n" for n in names)
        uses = f"        {', '.join(names)}\n" if names else ""
        message = MESSAGE.format(kind=kind)
        source = (f"def _outer():\n{body}    def _disabled(*args, **kwargs):\n{uses}"
                  f"        raise RuntimeError({message!r})\n    return _disabled\n")
        namespace: dict = {}
        exec(compile(source, "<torch.optim is disabled>", "exec"), namespace)
        cache[names] = namespace["_outer"]().__code__
    renamed = {"co_name": code.co_name}
    if hasattr(code, "co_qualname"):
        renamed["co_qualname"] = code.co_qualname
    return cache[names].replace(**renamed)


def _block_kernels(torch, kind: str):
    """Register a raising CPU kernel for every fused and foreach operator; return the library that holds them."""
    library = torch.library.Library("aten", "IMPL", "CPU")
    names = [n for n in torch._C._dispatch_get_all_op_names() if n.startswith(_KERNEL_PREFIXES)]

    def refuse(name):
        def kernel(*args, **kwargs):
            raise RuntimeError(f"{MESSAGE.format(kind=kind)} (`torch.{name.split('::')[1].split('.')[0]}` was called)")
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
    for finalizer in list(weakref.finalize._registry):
        info = weakref.finalize._registry.get(finalizer)
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


def _make_hook(optim_dir: str, owner: int, library):
    def hook(event: str, args: tuple) -> None:
        if library is None:  # never true: keeps the kernels' library alive, and out of reach, in this closure
            return
        if type(event) is not str:
            return
        if event == "open":
            _check_open(args[0], optim_dir)
        elif event == "import":
            name = args[0] if type(args[0]) is str else ""
            if name in _REFUSED_IMPORTS or name.startswith("torch.optim."):
                raise Refused("importing that module again is not allowed while your code is measured")
        elif event == "object.__setattr__":
            if len(args) > 1 and type(args[1]) is str and args[1] in ("__code__", "__globals__", "__closure__"):
                raise Refused("replacing a function's code is not available while your code is measured")
        elif event.startswith("ctypes."):
            raise Refused("ctypes is not available while your code is measured")
        elif event in _REFUSED_EVENTS:
            if event in ("os.fork", "os.kill") and os.getpid() == owner:
                return  # the measurement process itself forks each call and stops what overruns
            raise Refused(f"`{event}` is not available while your code is measured")
    return hook


def _check_open(path, optim_dir: str) -> None:
    """`path` is already a str, bytes or a descriptor here (open converts before it audits)."""
    if type(path) is bytes:
        path = os.fsdecode(path)
    if type(path) is not str:
        return
    text = path
    if text.startswith("/proc/") and text.rstrip("/").rsplit("/", 2)[-1] in ("mem", "fd", "environ", "maps") \
            or "/fd/" in text and text.startswith("/proc/"):
        raise Refused("other processes' memory and descriptors are not readable while your code is measured")
    full = os.path.realpath(text if os.path.isabs(text) else os.path.join(os.getcwd(), text))
    if full.startswith(optim_dir) or full + os.sep == optim_dir:
        raise Refused("torch.optim's source files are not readable while your code is measured")
