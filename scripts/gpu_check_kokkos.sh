#!/usr/bin/env bash
# GPU window for pair_style ffpt/kk (issue 12; ~15 min of one H200 in all): builds the KOKKOS
# CUDA LAMMPS with ffpt patched in (scripts/build_lammps_kokkos.sh, all cores, ~10 min cold),
# then benchmarks/kokkos_check.py: ffpt/kk vs pair_style ffpt (float64, 1,536 atoms) and
# ms/step, ns/day, us/atom/step of both on 1,536- and 24,576-atom water (float32, paper size).
# Results in $OUT (else benchmarks/results): kokkos_check.md/.json, build_kokkos_cuda.log,
# gpu_check_kokkos.log, nvidia-smi.txt.
#   bash scripts/gpu_check_kokkos.sh --dry-run    # prerequisites and the plan; builds nothing
#   bash scripts/gpu_check_kokkos.sh
# Needs there: nvcc (CUDA toolkit), PYTHON with a CUDA torch and ffpt's dependencies, cmake, and
# the LAMMPS source tarball (FFPT_LAMMPS_KOKKOS_TARBALL; the device machine does not see
# ../shared, so copy it under build/ and carry it). Kokkos arch: FFPT_KOKKOS_ARCH (AMPERE80 by
# default: Kokkos 3.4 of the vendored LAMMPS 2022 predates HOPPER90, sm_80 code runs on H200 via
# PTX JIT; with a current LAMMPS/Kokkos 4 tarball use HOPPER90). Kokkos 3.4 may not compile with
# CUDA >= 12: then use a current LAMMPS source tarball (the ffpt code has the current-API path).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
log="$out/gpu_check_kokkos.log"
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
arch="${FFPT_KOKKOS_ARCH:-AMPERE80}"
tarball="${FFPT_LAMMPS_KOKKOS_TARBALL:-../shared/vendor/lammps-20220106-kokkos-min.tar.gz}"
[ -f "$tarball" ] || tarball=$(ls build/vendor/lammps-*.tar.gz 2>/dev/null | head -1)
export FFPT_LAMMPS_KOKKOS_TARBALL="$tarball" PYTHON="$py"
export FFPT_KOKKOS_CACHE="${FFPT_KOKKOS_CACHE:-$HOME/.cache/ffpt/lammps-kokkos-cuda}"
export FFPT_BUILD_JOBS="${FFPT_BUILD_JOBS:-$(nproc)}"
# nvcc_wrapper of the unpacked tree (build_lammps_kokkos.sh unpacks into $FFPT_KOKKOS_CACHE/work)
export FFPT_KOKKOS_CMAKE_FLAGS="-DKokkos_ENABLE_CUDA=on -DKokkos_ARCH_${arch}=on \
-DKokkos_ENABLE_CUDA_LAMBDA=on -DCMAKE_CXX_COMPILER=$FFPT_KOKKOS_CACHE/work/lammps/lib/kokkos/bin/nvcc_wrapper"

{ nvidia-smi || echo "nvidia-smi not found"; } >"$out/nvidia-smi.txt" 2>&1
missing=()
command -v nvcc >/dev/null || missing+=("nvcc (CUDA toolkit)")
"$py" -c "import torch, ase, scipy; assert torch.cuda.is_available()" 2>/dev/null \
    || missing+=("$py with a CUDA torch (+ ase, scipy)")
[ -n "$tarball" ] && [ -f "$tarball" ] || missing+=("LAMMPS tarball (FFPT_LAMMPS_KOKKOS_TARBALL)")
{
    echo "gpu_check_kokkos: python $py, tarball ${tarball:-none}, Kokkos_ARCH_$arch, $FFPT_BUILD_JOBS jobs"
    echo "plan: 1. bash scripts/build_lammps_kokkos.sh (cmake flags: $FFPT_KOKKOS_CMAKE_FLAGS)"
    echo "      2. $py benchmarks/kokkos_check.py --lmp LMP --kokkos '-k on g 1' --out $out"
    [ ${#missing[@]} -eq 0 ] || printf 'missing: %s\n' "${missing[@]}"
} | tee "$log"
if [ $dry -eq 1 ]; then exit 0; fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "gpu_check_kokkos: prerequisites missing (above); nothing run" | tee -a "$log" >&2
    exit 2
fi
start=$(date +%s)
lmp=$(timeout 660 bash scripts/build_lammps_kokkos.sh 2>"$out/build_kokkos_cuda.log" | tail -1)
echo "build: $(( $(date +%s) - start )) s -> ${lmp:-FAILED}" | tee -a "$log"
if [ -z "$lmp" ] || [ ! -x "$lmp" ]; then
    tail -30 "$out/build_kokkos_cuda.log" | tee -a "$log"
    exit 1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 300 "$py" benchmarks/kokkos_check.py --lmp "$lmp" --kokkos "-k on g 1" --out "$out" \
    2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
