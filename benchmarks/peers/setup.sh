#!/usr/bin/env bash
# Peer models for benchmarks/peers/compare.py, each in its own venv next to this script:
#   .venv-newtonnet  original NewtonNet (PyPI `newtonnet`)
#   .venv-mace       MACE (PyPI `mace-torch`)
# torch==2.13.0 (CPU) is installed first; the peer is then installed with PIP_CONSTRAINT
# pinning torch, so no CUDA wheel is pulled. Never part of the project's own set-up.
#   bash benchmarks/peers/setup.sh [newtonnet|mace ...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
constraints="$here/constraints.txt"
printf 'torch==2.13.0\n' >"$constraints"
# newtonnet 2.0.1 requires torch_scatter and torch_cluster, source-only builds against torch
# (no wheels for 2.13); its model code needs only torch_geometric.utils.scatter (pure torch),
# so it is installed with --no-deps plus its pure-Python requirements.
declare -A spec=([newtonnet]="torch_geometric numpy<2 scipy ase pyyaml tqdm" [mace]="mace-torch ase")
declare -A nodeps=([newtonnet]="newtonnet==2.0.1" [mace]="")
peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(newtonnet mace)
for name in "${peers[@]}"; do
    [ -n "${spec[$name]:-}" ] || { echo "unknown peer '$name'; choose newtonnet or mace" >&2; exit 2; }
    venv="$here/.venv-$name"
    if [ -f "$venv/.ok" ]; then echo "== $name: $venv ready"; continue; fi
    echo "== $name: creating $venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0
    # shellcheck disable=SC2086
    PIP_CONSTRAINT="$constraints" "$venv/bin/python" -m pip install -q \
        --disable-pip-version-check ${spec[$name]}
    if [ -n "${nodeps[$name]}" ]; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps ${nodeps[$name]}
    fi
    "$venv/bin/python" - "$name" <<'PY'
import importlib.metadata as md, sys, torch
name = sys.argv[1]
assert torch.__version__.split("+")[0] == "2.13.0", f"pip replaced torch: {torch.__version__}"
pkg = {"newtonnet": "newtonnet", "mace": "mace-torch"}[name]
print(f"== {name}: {pkg} {md.version(pkg)}, torch {torch.__version__}")
PY
    "$venv/bin/python" -m pip freeze >"$venv/.ok"
done
