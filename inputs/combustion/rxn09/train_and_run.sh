#!/usr/bin/env bash
# FFPT-FT for hydrogen-combustion reaction 9 (HO2 <-> H + O2), end to end:
#   PT data (qforce-h2) -> filter outliers -> pre-train -> fine-tune on 09_{irc,aimd,nm}
#   + scratch baseline -> evaluate on the held-out test split -> deploy -> LAMMPS
#   well-tempered metadynamics (in.metad, plumed.dat of this folder) -> ffpt fes.
# Usage (from anywhere; runs in the repo root, outputs under runs/rxn09, git-ignored):
#   inputs/combustion/rxn09/train_and_run.sh [stage ...]
#   stages: ptdata pretrain train evaluate deploy metad fes analyze  (default: all, in order)
#   STEPS=250000 (metad steps per model, 50 ps as in in.metad), MODELS="ft scratch" (deploy/metad/fes), FFPT_SHARED_DATA=/path/to/shared/data
# Needs the reference data h2combustion/09_*.npz (read in place, never copied).
# Results of the committed run: benchmarks/results/rxn09_metad/README.md
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
cd "$REPO"
BIN="${BIN:-$REPO/.venv/bin}"
PY="$BIN/python"
OUT=runs/rxn09
STEPS="${STEPS:-250000}"
MODELS="${MODELS:-ft scratch}"   # models for deploy / metad / fes
DAMP="${DAMP:-}"   # Langevin damping time (ps) other than the paper's 5 ps -> metad_<m>_damp<DAMP>
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$OUT"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(ptdata pretrain train evaluate deploy metad fes analyze)
has() { local s; for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

if has ptdata; then
  # 40k frames, sigma 0.2 A, species relevant to rxn 9 (HO2 weighted x4, its fragments x2)
  "$BIN/ffpt" pt-data --teacher qforce-h2 \
      --species HO2:4,O2:2,OH:2,H2:1,H2O:1,H2O2:1,H:1,O:1 \
      --frames 40000 --sigma 0.2 --seed 0 -o "$OUT/pt_raw.npz"
  # Drop the rattled frames with extreme labels (compressed O-O / O-H: up to ~1.2e3 eV and
  # ~7e3 eV/A) that would dominate the MSE loss of a small model trained for minutes.
  # Kept: max |force component| <= 200 eV/A and E <= 50 eV (98.3 % of the frames); the
  # remaining frames still cover a steep repulsive wall (200 eV/A, far above 300 K needs).
  "$PY" - "$OUT/pt_raw.npz" "$OUT/pt_filtered.npz" <<'PYEOF'
import sys
import numpy as np
from ffpt.data import FrameSet
fs = FrameSet.load(sys.argv[1])
fmax = np.array([np.abs(fs.forces[fs.frame_slice(i)]).max() for i in range(fs.n_frames)])
keep = np.flatnonzero((fmax <= 200.0) & (fs.energy <= 50.0))
sub = fs.subset(keep)
sub.save(sys.argv[2])
print(f"kept {len(keep)}/{fs.n_frames} frames ({len(keep) / fs.n_frames:.1%}); "
      f"E max {sub.energy.max():.1f} eV, |F| max {np.abs(sub.forces).max():.1f} eV/A")
PYEOF
fi

if has pretrain; then
  "$BIN/ffpt" train "$HERE/pt_rxn09.yaml" -o "$OUT/pt"
fi

if has train; then
  # FT and the scratch baseline: same data, split, size and epochs; run side by side
  "$BIN/ffpt" train "$HERE/ft_rxn09.yaml" -o "$OUT/ft" > "$OUT/ft.out" 2>&1 &
  pid_ft=$!
  "$BIN/ffpt" train "$HERE/scratch_rxn09.yaml" -o "$OUT/scratch" > "$OUT/scratch.out" 2>&1 &
  pid_sc=$!
  wait "$pid_ft"; wait "$pid_sc"
fi

if has evaluate; then
  for m in ft scratch; do cat "$OUT/$m/metrics.json"; echo; done
fi

if has deploy; then
  for m in $MODELS; do
    "$BIN/ffpt-deploy" "$OUT/$m/best.pt" -o "$OUT/$m.ffpt.pt" --dtype float32
  done
fi

if has metad; then
  for m in $MODELS; do
    d="$OUT/metad_$m${DAMP:+_damp$DAMP}"
    mkdir -p "$d"
    cp "$HERE/plumed.dat" "$d/"
    # the shipped input, with thermo every 500 steps (0.1 ps) for the temperature record
    # (and, with DAMP, another Langevin damping time)
    sed -e 's/^thermo 5000/thermo 500/' \
        -e "s/langevin 300.0 300.0 5.0/langevin 300.0 300.0 ${DAMP:-5.0}/" \
        "$HERE/in.metad" > "$d/in.metad"
    "$PY" "$REPO/inputs/combustion/build_geometry.py" 09 -o "$d"
    ( cd "$d" && rm -f HILLS COLVAR && "$BIN/lmp" -in in.metad \
        -var model "$REPO/$OUT/$m.ffpt.pt" -var steps "$STEPS" -log log.lammps \
        > lmp.out 2>&1 ) &
  done
  wait
fi

if has fes; then
  for m in $MODELS; do
    d="$OUT/metad_$m${DAMP:+_damp$DAMP}"
    ( cd "$d" && "$BIN/ffpt" fes HILLS --slices 5 -o fes )
  done
fi

if has analyze; then
  # MAEs, learning curves, PES cuts, MD stability/speed, FES profiles -> benchmarks/results
  "$PY" "$HERE/train_and_run.py" --runs "$OUT" --out benchmarks/results/rxn09_metad
fi
