"""The file policy's routes besides Landlock, for kernels without it (issue 19): torch/optim unreadable to the
measurement process by any route, while the notebook run (the course's given (1c) cell) still uses torch.optim.

- the fallback (no namespaces, the grader root, a fresh uid per run): file permissions. The folders become
  readable by their owner and the group `ag-forbidden` only; the notebook run has the group, the measurement
  process none (supervisor/filepolicy.py, inside/confine.py);
- the full sandbox (bubblewrap): a read-only view, an empty mode-0 tmpfs over the folders in the measurement
  process's own mount namespace (inside/isolate.hide).

Each defence is shown with the attack refused by the kernel (EACCES: the guard, which answers first, is switched
off) and, as a control, the same attack going through with that defence switched off. The permission route
changes the environment's files, so here it only ever runs where they are a private copy: in the Gradescope box
(tests/gradescope_box.py) with a fresh overlay of torch/optim, or on a scratch tree.
"""

import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "autograder" / "inside"))
sys.path.insert(0, str(ROOT / "tests"))
import files  # noqa: E402
import isolate  # noqa: E402
from test_policy import attempt, in_child  # noqa: E402
from test_policy_sandbox import KERNEL_ANSWER  # noqa: E402

from autograder.supervisor import filepolicy, runusers  # noqa: E402

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="users, groups and mounts need root")

# Reads of torch/optim/adam.py (and its cache) by every route a student who read the grader would try.
ROUTES = KERNEL_ANSWER + '''
import sys

def _torch():
    import torch
    return os.path.dirname(torch.__file__)

def _read(path, dir_fd=None):
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    try:
        os.read(fd, 10)
    finally:
        os.close(fd)

def _relative():
    os.chdir(_torch())
    _read("optim/adam.py")

def routes(args):
    torch = _torch()
    folder = os.open(torch, os.O_RDONLY | os.O_DIRECTORY)
    cache = os.path.join(torch, "optim", "__pycache__", f"adam.{sys.implementation.cache_tag}.pyc")
    found = {"absolute": _try(lambda: _read(os.path.join(torch, "optim", "adam.py"))),
             "dir_fd": _try(lambda: _read("optim/adam.py", dir_fd=folder)),
             "proc_fd": _try(lambda: _read(f"/proc/self/fd/{folder}/optim/adam.py")),
             "dotdot": _try(lambda: _read(os.path.join(torch, "nn", "..", "optim", "sgd.py"))),
             "realpath": _try(lambda: _read(os.path.realpath(os.path.join(torch, "optim", "adam.py")))),
             "cache": _try(lambda: _read(cache)),
             "relative": _try(_relative)}
    if args.get("pid_root"):  # another process of the run: its root, as /proc shows it
        found["proc_root"] = _try(lambda: _read(f"/proc/1/root{torch}/optim/adam.py"))
    return found
'''
# The notebook run: the course's given (1c) cell uses torch.optim; a fresh interpreter reads its sources.
NOTEBOOK = [
    "import torch\nmodel = torch.nn.Linear(2, 1)\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "model(torch.ones(4, 2)).pow(2).mean().backward()\noptimizer.step()",
    "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import torch.optim, inspect; "
    "inspect.getsource(torch.optim.Adam)'], check=True)",
]


def cell_statuses(reply: dict) -> list[str]:
    return [cell["status"] for cell in reply["cells"]]


# ---- the permission route on a scratch tree (fast, real kernel) -----------------------------------------------

def _scratch_package() -> Path:
    """pkg/optim/{adam.py, __pycache__/adam.pyc} and pkg/nn, under a folder any user may traverse."""
    top = Path(tempfile.mkdtemp(prefix="ag-file-routes-"))
    top.chmod(0o755)
    optim = top / "pkg" / "optim"
    (optim / "__pycache__").mkdir(parents=True)
    (top / "pkg" / "nn").mkdir()
    (optim / "adam.py").write_text("SECRET = 1\n")
    (optim / "__pycache__" / "adam.pyc").write_bytes(b"cache")
    for path in (top / "pkg", optim, optim / "__pycache__", top / "pkg" / "nn"):
        path.chmod(0o755)
    for path in (optim / "adam.py", optim / "__pycache__" / "adam.pyc"):
        path.chmod(0o644)
    return top


def _as_fresh_user(groups: list[int], body) -> dict:
    """body() in a forked child that became a fresh uid with exactly `groups`; its JSON-able result."""
    uid = runusers.fresh_user().pw_uid

    def become() -> None:
        os.setgroups(groups)
        os.setgid(uid)
        os.setuid(uid)
    return in_child(body, become)


def _reads(top: Path) -> dict:
    pkg, optim = top / "pkg", top / "pkg" / "optim"

    def read(path, dir_fd=None):
        os.close(os.open(path, os.O_RDONLY, dir_fd=dir_fd))

    folder = os.open(pkg, os.O_RDONLY | os.O_DIRECTORY)
    return {"absolute": attempt(lambda: read(optim / "adam.py")),
            "dir_fd": attempt(lambda: read("optim/adam.py", dir_fd=folder)),
            "proc_fd": attempt(lambda: read(f"/proc/self/fd/{folder}/optim/adam.py")),
            "dotdot": attempt(lambda: read(pkg / "nn" / ".." / "optim" / "adam.py")),
            "cache": attempt(lambda: read(optim / "__pycache__" / "adam.pyc")),
            "chmod back": attempt(lambda: os.chmod(optim, 0o755)),
            "sibling": attempt(lambda: os.listdir(pkg / "nn")),
            "layer": files.permissions_layer([str(optim)])[0]}


@ROOT_ONLY
def test_the_permission_route_refuses_every_path_to_a_user_without_the_group_and_only_to_it():
    top = _scratch_package()
    optim = top / "pkg" / "optim"
    try:
        before = _as_fresh_user([], lambda: _reads(top))  # control: nothing set up, the same user reads it all
        assert {k: v for k, v in before.items() if k not in ("chmod back", "layer")} == dict.fromkeys(
            ("absolute", "dir_fd", "proc_fd", "dotdot", "cache", "sibling"), "allowed"), before
        notes: list[str] = []
        gid = filepolicy.hide_by_permissions([str(optim)], notes)
        assert notes and gid == filepolicy.readers_gid()
        for path in (optim, optim / "__pycache__"):
            info = path.stat()
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, gid, 0o750), path
        for path in (optim / "adam.py", optim / "__pycache__" / "adam.pyc"):
            info = path.stat()
            assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (gid, 0o640), path
        denied = "EACCES"
        without = _as_fresh_user([], lambda: _reads(top))
        assert without == {"absolute": denied, "dir_fd": denied, "proc_fd": denied, "dotdot": denied,
                           "cache": denied, "chmod back": "EPERM", "sibling": "allowed",
                           "layer": f"file policy: permissions (group {filepolicy.GROUP})"}, without
        member = _as_fresh_user([gid], lambda: _reads(top))  # the notebook run's groups: it reads them all
        assert {k: member[k] for k in ("absolute", "dir_fd", "proc_fd", "dotdot", "cache")} == dict.fromkeys(
            ("absolute", "dir_fd", "proc_fd", "dotdot", "cache"), "allowed"), member
        assert member["layer"] == ""  # and the measurement process would not claim the route
        again: list[str] = []
        filepolicy.hide_by_permissions([str(optim)], again)
        assert again == []  # idempotent: nothing left to change
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


@ROOT_ONLY
def test_the_permission_route_is_refused_for_files_of_a_runs_own_uid():
    top = _scratch_package()
    optim = top / "pkg" / "optim"
    try:
        os.chown(optim / "adam.py", runusers.FIRST_UID + 7, -1)
        with pytest.raises(PermissionError, match="runs' own users"):
            filepolicy.hide_by_permissions([str(optim)], [])
        assert stat.S_IMODE(optim.stat().st_mode) == 0o755  # nothing changed
        notes: list[str] = []
        plan = filepolicy.plan("fallback", True, {"policy": {"forbidden": []}}, frozenset({"landlock"}), notes)
        assert plan == {} and notes == []  # no forbidden package: nothing to do
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def test_the_forbidden_folders_are_the_packages_real_folders_found_without_importing_them():
    code = ("import json, sys; from autograder.supervisor import filepolicy; "
            "print(json.dumps([filepolicy.forbidden_folders(['torch.optim', 'torch.nothing', 'no_such_package']), "
            "'torch' in sys.modules]))")
    found, imported = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                                text=True, check=True).stdout)
    import torch.optim
    assert found == [os.path.realpath(os.path.dirname(torch.optim.__file__))]
    assert not imported  # the grader keeps torch out of its own memory


def test_the_plan_covers_the_folders_in_the_full_sandbox_and_leaves_the_files_alone_where_landlock_works():
    optim = filepolicy.forbidden_folders(["torch.optim"])
    measure = {"policy": {"forbidden": ["torch.optim"]}, "switched_off": []}
    assert filepolicy.plan("namespaces", True, measure, frozenset(), []) == {"hide": optim}
    assert filepolicy.plan("namespaces", True, {**measure, "switched_off": ["view"]}, frozenset(), []) == {"hide": []}
    if filepolicy.landlock_refusal():
        pytest.skip("no Landlock here: the fallback's plan would set up the permissions")
    def owner_and_modes():
        return [(i.st_uid, i.st_gid, i.st_mode) for i in map(os.lstat, filepolicy._tree(optim[0]))]

    before, notes = owner_and_modes(), []
    plan = filepolicy.plan("fallback", os.geteuid() == 0, measure, frozenset(), notes)
    assert notes == [] and owner_and_modes() == before  # Landlock is the file policy: nothing changed here
    assert plan.get("measure_groups", []) == []  # the measurement process never gets the readers' group


# ---- the read-only view, on a scratch tree (fast, real kernel) -------------------------------------------------

@ROOT_ONLY
def test_the_view_covers_the_folder_at_every_path_the_mounts_give_it():
    top = _scratch_package()
    optim = str(top / "pkg" / "optim")
    alias = top / "alias"
    alias.mkdir()

    def covered() -> dict:
        libc = isolate._libc
        isolate._check(libc.unshare(isolate.CLONE_NEWNS), "unshare")
        isolate._mount("none", "/", "", isolate.MS_REC | isolate.MS_PRIVATE)
        isolate._mount(str(top / "pkg"), str(alias), "", isolate.MS_BIND)  # a second way to pkg/optim
        paths = isolate.aliases(optim)
        before = {"view": files.view_layer([optim])[1] != "",
                  "alias": attempt(lambda: open(alias / "optim" / "adam.py").close())}
        isolate.hide([optim])
        isolate.drop_privileges()  # as the measurement process: no capability left
        return {"paths": paths, "before": before, "layer": files.view_layer([optim])[0],
                "direct": attempt(lambda: open(os.path.join(optim, "adam.py")).close()),
                "alias": attempt(lambda: open(alias / "optim" / "adam.py").close()),
                "unmount": attempt(lambda: isolate._check(libc.umount2(optim.encode(), 2), "umount")),
                "sibling": attempt(lambda: os.listdir(top / "pkg" / "nn"))}

    try:
        seen = in_child(covered)
        assert seen["paths"] == [optim, str(alias / "optim")]
        assert seen["before"] == {"view": True, "alias": "allowed"}  # control: not covered before hide()
        assert seen == {**seen, "layer": "file policy: read-only view", "direct": "EACCES",
                        "alias": "EACCES", "unmount": "EPERM", "sibling": "allowed"}
        assert open(os.path.join(optim, "adam.py")).read() == "SECRET = 1\n"  # the rest of the host: untouched
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def test_mountinfo_escapes_are_read_back():
    assert isolate._unescape(r"/a\040b\134c") == "/a b\\c"


# ---- in the real sandbox ------------------------------------------------------------------------------------

@pytest.mark.integration
def test_the_full_sandbox_hides_torch_optim_from_the_measurement_by_its_view_and_not_from_the_notebook_run():
    from test_sandbox import measure, value
    run = measure([("routes", "routes", {"pid_root": True}, 60)], cells=NOTEBOOK, probes=ROUTES,
                  switched_off=("guard", "landlock"))
    if run.mode != "namespaces":
        pytest.skip("bubblewrap is not available here")
    assert set(value(run, "routes").values()) == {"EACCES"}, value(run, "routes")
    layers = run.reply["layers"]
    assert "file policy: read-only view" in layers and not any("Landlock ABI" in layer for layer in layers), layers
    assert cell_statuses(run.reply) == ["ok", "ok"], run.reply["cells"]  # the notebook run's view is whole
    control = measure([("routes", "routes", {}, 60)], probes=ROUTES, switched_off=("guard", "landlock", "view"))
    assert set(value(control, "routes").values()) == {"allowed"}, value(control, "routes")
    assert any(layer.startswith("missing: file policy") for layer in control.reply["layers"]), control.reply


BOX_SCRIPT = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
from test_sandbox import measure
from test_file_routes import NOTEBOOK, ROUTES
out = {{}}
for name, off in (("hidden", ("guard",)), ("control", ("guard", "permissions"))):
    run = measure([("routes", "routes", {{}}, 60)], cells=NOTEBOOK if name == "hidden" else (), probes=ROUTES,
                  switched_off=off)
    out[name] = {{"mode": run.mode, "reply": run.reply, "notes": run.notes}}
print(json.dumps(out))
"""


@pytest.mark.integration
@pytest.mark.box
@ROOT_ONLY
def test_in_the_fallback_without_landlock_the_permissions_hide_torch_optim_from_the_measurement_only():
    """In the Gradescope box (namespaces refused), Landlock switched off by the grader's config, torch/optim a
    fresh overlay: the permission route is the file policy."""
    from gradescope_box import Box
    optim = filepolicy.forbidden_folders(["torch.optim"])[0]
    env = {**os.environ, "AUTOGRADER_DISABLE": "bwrap,landlock"}
    run = Box(memory_mb=4096, cpus=2, evict=False, fresh=(Path(optim),)).run(
        [sys.executable, "-c", textwrap.dedent(BOX_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests")))],
        env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    hidden, control = seen["hidden"], seen["control"]
    assert hidden["mode"] == control["mode"] == "fallback"
    routes = hidden["reply"]["probes"]["routes"]
    assert routes["ok"] and set(routes["value"].values()) == {"EACCES"}, routes
    assert f"file policy: permissions (group {filepolicy.GROUP})" in hidden["reply"]["layers"], hidden["reply"]
    assert not any("Landlock ABI" in layer for layer in hidden["reply"]["layers"])
    assert cell_statuses(hidden["reply"]) == ["ok", "ok"], hidden["reply"]["cells"]  # the group: (1c) runs
    routes = control["reply"]["probes"]["routes"]  # the same files, the measurement process given the group
    assert routes["ok"] and set(routes["value"].values()) == {"allowed"}, routes
    assert any(layer.startswith("missing: file policy") for layer in control["reply"]["layers"])
    info = os.stat(optim)  # outside the box: the environment as it was
    assert info.st_gid != filepolicy.readers_gid() and info.st_mode & 0o005 == 0o005


@pytest.mark.integration
@pytest.mark.box
@ROOT_ONLY
def test_the_box_grades_the_solution_full_with_the_permission_route_as_the_file_policy(tmp_path):
    from gradescope_box import Box
    optim = filepolicy.forbidden_folders(["torch.optim"])[0]
    env = {**os.environ, "AUTOGRADER_SECRET": "container test", "AUTOGRADER_DISABLE": "landlock"}
    out = tmp_path / "results.json"
    run = Box(fresh=(Path(optim),)).run(
        [sys.executable, "-m", "autograder", "--submission", str(ROOT / "solution" / "notebooks" / "hw4_part1.ipynb"),
         "--results", str(out), "--assignment", "hw4_part1"], env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["score"] == 40, results["output"]
    log = next(t["output"] for t in results["tests"] if t["name"].startswith("Grader log"))
    assert "FALLBACK SANDBOX" in log
    assert f"file policy: permissions (group {filepolicy.GROUP})" in log and "Landlock ABI" not in log, log[-3000:]
