#!/usr/bin/env bash
# Fine-tuning strategies against scratch (issue: FFPT-FT that keeps what pre-training taught).
#   benchmarks/ft_strategies/run.sh [water] [rxn09] [--preset tiny]
# Each system is one resumable `ffpt demo --config benchmarks/ft_strategies/<system>.yaml`
# chain (run folders under runs/ft_strategies/, git-ignored; budgets in epochs, so a rerun on
# any load gives the same models); collect.py then writes benchmarks/results/ft_strategies/.
set -euo pipefail
cd "$(dirname "$0")/../.."
systems=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --preset) extra+=(--preset "$2"); shift 2 ;;
        *) systems+=("$1"); shift ;;
    esac
done
[ ${#systems[@]} -eq 0 ] && systems=(water rxn09)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for s in "${systems[@]}"; do
    start=$(date +%s)
    .venv/bin/ffpt demo --config "benchmarks/ft_strategies/$s.yaml" "${extra[@]}" --no-progress
    echo "$s: $(( $(date +%s) - start )) s wall"
done
if [ ${#extra[@]} -eq 0 ]; then
    .venv/bin/python benchmarks/ft_strategies/collect.py "${systems[@]}"
fi
