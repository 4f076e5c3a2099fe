#!/usr/bin/env bash
# Export a checkpoint as the shipped model: ONNX bundle, y tables fitted on
# training photos, models/default.lvcm,
# PyTorch goldens in testdata/default, and fp16 weights for resuming.
#   train/ship.sh train/runs/hp64
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?run directory}
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
/usr/bin/python3 -W ignore train/export.py model --ckpt "$run/ckpt.pt" --out "$bundle" --goldens
/usr/bin/python3 -W ignore train/fit_tables.py "$bundle" --weights "$run/ckpt.pt"
go run ./cmd/lvc model pack "$bundle" -o models/default.lvcm
rm -rf testdata/default && mkdir -p testdata/default
cp "$bundle"/*.pb testdata/default/
go run ./cmd/lvc model info | sed -n 's/^model: //p' | tr -d '\n' > testdata/default/model_id.txt
/usr/bin/python3 -W ignore train/export.py weights --ckpt "$run/ckpt.pt" --out "$run/weights_fp16.pt"
go run ./cmd/lvc model info
