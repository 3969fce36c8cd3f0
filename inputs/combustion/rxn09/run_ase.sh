#!/usr/bin/env bash
# ASE route of the same metadynamics (same plumed.dat, same settings as in.metad):
#   ./run_ase.sh model.pt            # checkpoint or ffpt-deploy artifact
#   ./run_ase.sh --calc qforce-h2    # built-in teacher force field (quick test, non-reactive)
# Outputs in runs/ase: COLVAR, HILLS, trajectory.traj, md.log, plumed.log; then ffpt fes.
set -euo pipefail
cd "$(dirname "$0")"
[ -f geometry.xyz ] || python ../build_geometry.py "$(basename "$PWD" | sed 's/rxn//')" -o .
ffpt metad "$@" -g geometry.xyz -p plumed.dat -o runs/ase \
    --steps "${STEPS:-250000}" --temperature 300 --friction 0.2 --timestep 0.2 \
    --traj-every 1000 --log-every 1000 --seed "${SEED:-4928459}"
ffpt fes runs/ase/HILLS --slices 5
