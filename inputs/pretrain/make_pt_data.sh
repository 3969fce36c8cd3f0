#!/usr/bin/env bash
# The three pre-training sets of the FFPT protocol (100,000 rattled frames, sigma 0.2 A).
# Run from the repository root: bash inputs/pretrain/make_pt_data.sh [OUTDIR]
# Takes ~1 min in all on 2 shared cores (most of it writing the compressed aspirin .npz).
set -euo pipefail
out=${1:-runs/pt_data}
mkdir -p "$out"
ffpt pt-data --teacher tip3p-flex --frames 100000 --sigma 0.2 --seed 0 -o "$out/water_tip3p.npz"
ffpt pt-data --teacher qforce-h2 --species all --frames 100000 --sigma 0.2 --seed 0 \
    -o "$out/h2combustion_qforce.npz"
ffpt pt-data --teacher gaff --smiles 'CC(=O)Oc1ccccc1C(=O)O' --frames 100000 --sigma 0.2 \
    --seed 0 -o "$out/aspirin_gaff.npz"
# PES cuts of the teachers (the "holes" views; add --model CKPT to compare models)
ffpt scan --teacher tip3p-flex --teacher qforce-h2 -o "$out/water_scans.png"
ffpt scan --teacher qforce-h2 --species H2 -o "$out/h2_scan.png"
