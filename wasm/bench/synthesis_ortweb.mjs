// Times the synthesis ONNX under onnxruntime-web (WASM, SIMD, one thread) in Node:
//   node wasm/bench/synthesis_ortweb.mjs g_s.onnx M KMAC_PER_PIXEL N   (from `lvc model info`)
// A model with per-quality scalers gets them all 1 (inputs s0, s1, ..., each at its declared width).
import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import fs from "fs";
ort.env.wasm.numThreads = 1;
const s = await ort.InferenceSession.create(fs.readFileSync(process.argv[2]), { executionProviders: ["wasm"] });
const m = Number(process.argv[3]);
const flop = 2 * Number(process.argv[4]) * 1e3 * 768 * 512;
const x = new ort.Tensor("float32", new Float32Array(m * 32 * 48).map((_, i) => (i % 11) - 5), [1, m, 32, 48]);
const n = Number(process.argv[5]);
const feeds = { x };
// Each scaler is as wide as its layer (a widened stage's is wider than N): the model declares it.
const widths = Object.fromEntries((s.inputMetadata ?? []).map((d) => [d.name, d.shape?.[1]]));
for (const name of s.inputNames.filter((k) => k !== "x")) {
  const w = Number.isInteger(widths[name]) ? widths[name] : n;
  feeds[name] = new ort.Tensor("float32", new Float32Array(w).fill(1), [1, w, 1, 1]);
}
await s.run(feeds);
const t = [];
for (let i = 0; i < 3; i++) { const t0 = performance.now(); await s.run(feeds); t.push(performance.now() - t0); }
t.sort((a, b) => a - b);
console.log(`onnxruntime-web (wasm, SIMD, 1 thread) g_s 768x512: median ${t[1].toFixed(0)} ms, ${(flop / (t[1] / 1e3) / 1e9).toFixed(1)} GFLOP/s`);
