#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu 22.04, its python3, network,
# no GPU). It also runs on Debian 12 / Python 3.11 for CI and local checks:
#     AUTOGRADER_ROOT=/tmp/unzipped bash setup.sh
# The tree is AUTOGRADER_ROOT, else the folder holding this script, else /autograder/source.
# Steps (each logged; the first failure stops everything, names its step and exits non-zero):
#   1. the tree     2. Python >= 3.11 (else python3.11, from apt-get if need be)     3. $root/.venv
#   4. torch, CPU build: the PyTorch CPU index first, then the default index (PyPI / pip.conf find-links)
#   5. the pinned requirements     6. the sandbox user     7. the reference and hidden cases readable by root only
#   8. checks: every assignment imports, the sandbox user can run Python but cannot read the reference
# Options (environment): AUTOGRADER_PYTHON (python3), AUTOGRADER_TORCH_INDEX (the CPU index; empty skips it),
# AUTOGRADER_SANDBOX_USER (ag-sandbox, as autograder/sandbox.py).
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" 2>/dev/null && pwd || true)"
if [ -n "${AUTOGRADER_ROOT:-}" ]; then
    root="$AUTOGRADER_ROOT"
elif [ -n "$here" ] && [ -d "$here/autograder" ]; then
    root="$here"
else
    root=/autograder/source
fi
python="${AUTOGRADER_PYTHON:-python3}"
torch_index="${AUTOGRADER_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
sandbox_user="${AUTOGRADER_SANDBOX_USER:-ag-sandbox}"
venv="$root/.venv"
min_python=3.11  # requirements.txt pins numpy 2.4 and matplotlib 3.11, which have no wheels for 3.10
pip_pin="pip==24.0"  # a venv may bring pip 22, older than some wheels' metadata expects
step_name="start"

log() { printf '[setup %4ss] %s\n' "$SECONDS" "$*"; }
step() { step_name="$1"; log "== step: $1"; }
fail() { printf '[setup] FAILED at step "%s": %s\n' "$step_name" "$*" >&2; exit 1; }
trap 'code=$?; printf "[setup] FAILED at step \"%s\" (exit %s, line %s: %s)\n" "$step_name" "$code" "$LINENO" "$BASH_COMMAND" >&2; exit "$code"' ERR

step "check the autograder tree at $root"
[ -d "$root/autograder" ] || fail "$root/autograder is missing (set AUTOGRADER_ROOT to the unzipped autograder)"
[ -f "$root/requirements.txt" ] || fail "$root/requirements.txt is missing"
torch_pin="$(grep -E '^torch==' "$root/requirements.txt" | head -n 1 | tr -d '[:space:]' || true)"
[ -n "$torch_pin" ] || fail "requirements.txt pins no torch==VERSION"
cd "$root"

apt_install() {
    command -v apt-get >/dev/null || fail "cannot install $* without apt-get"
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}
new_enough() { command -v "$1" >/dev/null && "$1" -c "import sys; sys.exit(sys.version_info < (${min_python/./, }))"; }

step "find Python >= $min_python"
if ! new_enough "$python" 2>/dev/null; then
    # Ubuntu 22.04's python3 is 3.10; its universe repository has python3.11.
    log "$python is missing or older than $min_python; using python$min_python"
    python="python$min_python"
    new_enough "$python" 2>/dev/null || apt_install "python$min_python" "python$min_python-venv"
    new_enough "$python" || fail "no Python >= $min_python (on Ubuntu: apt-get install python$min_python-venv)"
fi
log "$("$python" --version) at $(command -v "$python")"

step "create the virtual environment $venv"
if [ -x "$venv/bin/python" ] && new_enough "$venv/bin/python" && "$venv/bin/python" -c 'import pip' 2>/dev/null; then
    log "reusing the existing $venv"
else
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then  # Debian and Ubuntu ship venv's pip separately, in pythonX.Y-venv
        rm -rf "$venv"
        apt_install "$(basename "$python")-venv"
        "$python" -m venv "$venv"
    fi
fi
pip=("$venv/bin/python" -m pip)
if ! "$venv/bin/python" -c 'import pip, sys; sys.exit(int(pip.__version__.split(".")[0]) < 23)'; then
    log "upgrading pip to $pip_pin"
    "${pip[@]}" install -q "$pip_pin" || log "WARNING: could not upgrade pip; continuing with $("${pip[@]}" --version)"
fi

step "install $torch_pin (CPU build)"
if [ -n "$torch_index" ] && "${pip[@]}" install --retries 2 --timeout 30 --index-url "$torch_index" "$torch_pin"; then
    log "installed with --index-url $torch_index (plus any find-links or extra indexes in pip's configuration)"
else
    [ -z "$torch_index" ] || log "the PyTorch CPU index $torch_index failed; falling back to the default index"
    "${pip[@]}" install "$torch_pin"
    log "installed from the default index (on PyPI for Linux this is a CUDA build unless find-links offers +cpu)"
fi
read -r torch_version cuda < <("$venv/bin/python" -c 'import torch; print(torch.__version__, torch.version.cuda or "")')
log "torch $torch_version (CUDA: ${cuda:-none})"
[ -z "$cuda" ] || log "WARNING: this torch includes CUDA; it works on CPU but makes the image gigabytes larger"

step "install the pinned requirements"
"${pip[@]}" install -r "$root/requirements.txt"

step "create the sandbox user $sandbox_user"
[ "$(id -u)" -eq 0 ] || fail "must run as root (Gradescope does) to create $sandbox_user and protect the reference"
if id -u "$sandbox_user" >/dev/null 2>&1; then
    log "$sandbox_user exists (uid $(id -u "$sandbox_user"))"
else
    useradd --system --no-create-home --shell /usr/sbin/nologin "$sandbox_user"
fi

step "make the reference and hidden cases readable by root only"
for private in solution autograder/assignments tests; do
    if [ -e "$root/$private" ]; then
        chown -R root:root "$root/$private"
        chmod -R go-rwx "$root/$private"
        log "root only: $root/$private"
    fi
done
[ -d "$root/solution" ] || log "WARNING: no solution/ folder; the cases have no reference to import"
# The sandbox user needs to pass through (not list) the folders above the engine and the interpreter, as
# autograder/sandbox.py grants at run time; a tree unzipped under a private folder would otherwise fail the checks.
for path in "$root/autograder" $("$venv/bin/python" -c 'import sys, sysconfig; from os.path import realpath
print(realpath(sys.executable), realpath(sysconfig.get_paths()["stdlib"]), realpath(sysconfig.get_paths()["purelib"]))'); do
    dir="$(cd "$(dirname "$path")" && pwd -P)"
    until [ "$dir" = / ]; do chmod o+x "$dir"; dir="$(dirname "$dir")"; done
done

step "check the installation"
"$venv/bin/python" - <<'EOF'
import importlib
from jupyter_client.kernelspec import KernelSpecManager
from autograder.assignment import assignment_names, load_assignment
KernelSpecManager().get_kernel_spec("python3")
names = assignment_names()
if not names:
    raise SystemExit("no assignment folder under autograder/assignments")
for name in names:
    load_assignment(name)
    importlib.import_module(f"autograder.assignments.{name}.cases")
    importlib.import_module(f"autograder.assignments.{name}.reference")
    print(f"[setup] assignment {name}: cases and reference import")
EOF
sandbox_python=(runuser -u "$sandbox_user" -- env HOME=/tmp "$venv/bin/python" -I)
"${sandbox_python[@]}" -c 'import nbclient, ipykernel, torch' \
    || fail "$sandbox_user cannot import the grader's packages from $venv (make it world-readable: chmod -R a+rX)"
for private in solution autograder/assignments; do
    if [ -e "$root/$private" ] && "${sandbox_python[@]}" -c "import os, sys; os.listdir(sys.argv[1])" "$root/$private" 2>/dev/null; then
        fail "$sandbox_user can read $root/$private"
    fi
done
log "done: $sandbox_user runs Python and cannot read the reference; run_autograder is ready"
