#!/usr/bin/env bash
# Measure a run's checkpoint on Kodak from real files, without shipping it:
# export, fit the y tables, pack, then train/rd.py for lvc alone with the anchors' curves merged
# in from train/rd_out, so it prints BD-rates against JPEG, WebP and AVIF.
#   train/eval_run.sh train/runs/hp64e [OUT] [JOBS]
# Compare two runs with train/compare_runs.py OUT_A/curves.json OUT_B/curves.json.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?run directory}
out=${2:-/tmp/lvc-eval/$(basename "$run")}
jobs=${3:-2}
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$out"
/usr/bin/python3 -W ignore train/export.py model --ckpt "$run/ckpt.pt" --out "$bundle"
/usr/bin/python3 -W ignore train/fit_tables.py "$bundle" --weights "$run/ckpt.pt"
go build -o "$bundle/lvc" ./cmd/lvc
"$bundle/lvc" model pack "$bundle" -o "$out/model.lvcm"
cp "$bundle/params.json" "$out/"
cp train/rd_out/curves.json "$out/curves.json"
/usr/bin/python3 -W ignore train/rd.py --lvc "$bundle/lvc" --lvc-model "$out/model.lvcm" \
    --codecs lvc --merge --jobs "$jobs" --timing-reps 1 --out "$out"
