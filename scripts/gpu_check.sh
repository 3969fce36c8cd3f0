#!/usr/bin/env bash
# One GPU-window check (< 8 minutes; docs/gpu.md): training frames/s and model-call/MD speed of
# ffpt on CUDA. Results go to $OUT (when set, e.g. on the lent device machine) or
# benchmarks/results/: gpu_check.md, gpu_check.json, nvidia-smi.txt, gpu_check.log.
#   bash scripts/gpu_check.sh            # PYTHON=... to choose the interpreter,
#                                        # FFPT_GPU_BUDGET_S=400 the time budget
# On the lent device machine: source scripts/gpu_env.sh install && bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
{ nvidia-smi || echo "nvidia-smi not found"; } >"$out/nvidia-smi.txt" 2>&1
if ! "$py" -c "import torch, e3nn, ase, scipy, yaml" 2>"$out/gpu_check.log"; then
    echo "gpu_check: $py lacks torch/e3nn/ase/scipy/yaml (see $out/gpu_check.log); install ffpt's" \
         "dependencies with a CUDA torch first" | tee -a "$out/gpu_check.log" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
budget="${FFPT_GPU_BUDGET_S:-400}"
timeout $((budget + 60)) "$py" benchmarks/gpu_check.py --budget-s "$budget" --out "$out" ${FFPT_GPU_ONLY:+--only "$FFPT_GPU_ONLY"} 2>&1 | tee -a "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
