#!/usr/bin/env bash
# Browser decode speed, measured under Node with the same WASM the page runs:
# the Go half (entropy decoding, fixed-point h_s and checkerboard context) and the synthesis network
# under onnxruntime-web, for testdata/sample.png (768x512) at quality 4.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build wasm >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin/lvc encode testdata/sample.png -o "$tmp/s.lvc" -q 4 2>/dev/null
# The synthesis ONNX as the page gets it: the G_S section of the embedded model.
python3 - "$tmp/g_s.onnx" <<'PY'
import struct, sys
b = open("models/default.lvcm", "rb").read()
i = 8
while i < len(b):
    tag, n = b[i:i + 4], struct.unpack("<I", b[i + 4:i + 8])[0]
    if tag == b"G_S ":
        open(sys.argv[1], "wb").write(b[i + 8:i + 8 + n])
    i += 8 + n
PY
node wasm/bench/latents_go.cjs "$(go env GOROOT)/lib/wasm/wasm_exec.js" wasm/web/lvc.wasm "$tmp/s.lvc"
info=$(bin/lvc model info)
m=$(sed -n 's/^channels: N=[0-9]* M=//p' <<<"$info")
n=$(sed -n 's/^channels: N=\([0-9]*\) M=.*/\1/p' <<<"$info")
kmac=$(sed -n 's/^kMAC\/pixel g_s: //p' <<<"$info")
(cd wasm && node bench/synthesis_ortweb.mjs "$tmp/g_s.onnx" "$m" "$kmac" "$n")
