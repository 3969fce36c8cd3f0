#!/usr/bin/env bash
# The paper's aspirin experiment (Fig. 2) as one resumable command:
#   inputs/aspirin/reproduce.sh [--preset budget|tiny] [--set SECTION.KEY=VALUE ...]
# GAFF-2.11 PT -> CCSD FT (plain-paper at lr 1e-4, plain at 1e-3, replay) vs scratch -> deploy -> test
# errors -> hole scans -> 500 K LAMMPS survival (8 seeds) -> training-set size study
# (250/500/950) -> benchmarks/results/paper/aspirin/README.md. Finished stages are reused on a
# rerun (Ctrl-C and the same command continue); needs ${FFPT_SHARED_DATA}/aspirin_ccsd.
# While it runs: python -m ffpt.demo.paper_report --config inputs/aspirin/paper.yaml [--preset P]
# writes PARTIAL.md (numbers so far) into the results folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "${FFPT_BIN:-.venv/bin}/ffpt" demo --config inputs/aspirin/paper.yaml --no-progress "$@"
