#!/usr/bin/env bash
# The paper's hydrogen-combustion experiment (Fig. 4) as one resumable command:
#   inputs/combustion/reproduce.sh [--preset budget|tiny] [--set SECTION.KEY=VALUE ...]
# qforce-h2 PT (8 species) -> FT data: random 10 % of the 19 channels -> FT (plain, the paper's
# method, and replay) vs scratch -> deploy -> test errors (all, and per reaction) -> HO2 rigid
# cuts -> reaction-9 IRC -> 300 K survival -> WT-MetaD of reactions 9 and 1 in LAMMPS at 300 K
# (T checked from the log; products; FES + convergence) -> benchmarks/results/paper/combustion/.
# Finished stages (and finished MetaD runs) are reused on a rerun; needs ${FFPT_SHARED_DATA}.
# While it runs: python -m ffpt.demo.paper_report --config inputs/combustion/paper.yaml [--preset P]
# writes PARTIAL.md (numbers so far) into the results folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "${FFPT_BIN:-.venv/bin}/ffpt" demo --config inputs/combustion/paper.yaml --no-progress "$@"
