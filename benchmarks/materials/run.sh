#!/usr/bin/env bash
# Materials example (issue 15): Si/Ge data labelled with GFN2-xTB, EAM teacher fitted to it,
# two-step perturbation PT data, EAM-PT -> FT vs scratch (test MAE, LAMMPS MD at high T),
# Si -> Ge transfer (--map-elements Ge=Si) vs Ge scratch at 3 sizes.
#   benchmarks/materials/run.sh [--stages data,eam,pt-data,train,md,collect]
# Resumable: every stage skips finished outputs under runs/materials/ (git-ignored); budgets
# are optimiser steps, so a rerun at another machine load gives the same models.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
start=$(date +%s)
.venv/bin/python benchmarks/materials/pipeline.py --stages data,eam,pt-data,train,md "$@"
.venv/bin/python benchmarks/materials/collect.py --wall-s $(( $(date +%s) - start ))
