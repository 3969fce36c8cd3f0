#!/usr/bin/env bash
# The heavy part of a paper experiment on a GPU machine: PT data and the paper-size PT model
# (128 features, 3 interactions; training.device auto -> CUDA), then a tarball of the run
# folder to copy back. On the CPU machine, unpack it in the repository root and rerun
# inputs/<system>/reproduce.sh: the finished PT stages are reused (same config, same hashes)
# and the CPU does the fine-tuning, LAMMPS and analysis stages (docs/paper_experiments.md).
#   bash scripts/gpu_pretrain.sh aspirin|water|combustion [--set train.pt.max_epochs=N ...]
# The trainer's default device (auto) picks CUDA, and the stage hashes do not depend on the
# device, so the CPU rerun reuses the GPU's PT model. The PT budget is in epochs (the config's
# train.pt.max_epochs, or --set): a window of a few minutes fits a few epochs of 100,000
# frames. Give reproduce.sh the same --set options, or the PT stage continues from last.pt up
# to the config's epochs. Output: $OUT/pretrain-<system>.tar.gz (OUT defaults to runs/).
set -euo pipefail
cd "$(dirname "$0")/.."
system=${1:?usage: scripts/gpu_pretrain.sh aspirin|water|combustion [--set KEY=VALUE ...]}
shift
config=inputs/$system/paper.yaml
[ -f "$config" ] || { echo "gpu_pretrain: no $config (systems: aspirin, water, combustion)" >&2; exit 2; }
out=${OUT:-runs}
mkdir -p "$out"
py=${PYTHON:-.venv/bin/python}
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
run_dir=$("$py" -c "from ffpt.demo.config import load_demo_config as l; print(l('$config')['run_dir'])")
{ nvidia-smi || true; } >"$out/pretrain-$system-nvidia-smi.txt" 2>&1
start=$(date +%s)
"$py" -m ffpt.cli demo --config "$config" --no-progress --until train_pt "$@" 2>&1 \
    | tee "$out/pretrain-$system.log"
echo "wall $(( $(date +%s) - start )) s" | tee -a "$out/pretrain-$system.log"
tar -czf "$out/pretrain-$system.tar.gz" --exclude='*/stability' --exclude='*/size_*' \
    "$run_dir/.stages" "$run_dir/data" "$run_dir/train/pt" "$run_dir/.ffpt-demo"
echo "gpu_pretrain: $out/pretrain-$system.tar.gz (unpack in the repository root, then rerun" \
     "inputs/$system/reproduce.sh)"
