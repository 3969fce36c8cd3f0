#!/usr/bin/env bash
# The paper's bulk-water experiment (Fig. 3) as one resumable command:
#   inputs/water/reproduce.sh [--preset budget|tiny] [--set SECTION.KEY=VALUE ...]
# flexible-TIP3P monomer PT -> 64-water liquid frames (classical MD) labelled with GFN2-xTB
# (resumable) -> FT (plain, the paper's method, and replay) vs scratch -> deploy -> test
# errors (+ the 50 RPBE-D3 frames) -> H-O-H / O-H scans -> 300 K LAMMPS survival (4 seeds),
# O-O RDF, diffusion from the MSD -> benchmarks/results/paper/water/README.md.
# Finished stages are reused on a rerun (Ctrl-C and the same command continue).
# While it runs: python -m ffpt.demo.paper_report --config inputs/water/paper.yaml [--preset P]
# writes PARTIAL.md (numbers so far) into the results folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "${FFPT_BIN:-.venv/bin}/ffpt" demo --config inputs/water/paper.yaml --no-progress "$@"
