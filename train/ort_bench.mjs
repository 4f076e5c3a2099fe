// Times one ONNX graph with onnxruntime-node (CPU execution provider).
//
//   node train/ort_bench.mjs --model g_s.onnx --shape 1,96,32,48 --threads 2 --iters 10 --warmup 2
//   [--opt disabled|basic|extended|all] [--spin 0|1] [--dump out.f32] [--scaler-shape 1,64,1,1[;1,96,1,1...]]
//
// Prints one JSON line: {"threads":..,"times_ms":[...],"median_ms":..,"version":..}.
// The input is the same pattern as nn/bench_test.go's BenchmarkGraphFile
// (x[i] = i%11 - 5), so every runtime sees the same tensor; further inputs
// (a model's per-quality scalers) get ones of --scaler-shape: one shape for all, or
// one per input separated by ";".
// Used by train/bench_synthesis.py; install with
//   cd train && ONNXRUNTIME_NODE_INSTALL=skip npm ci
// (the CPU build is inside the npm package; the postinstall step only
// fetches optional CUDA binaries from outside the npm registry).
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");

function arg(name, def) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 ? process.argv[i + 1] : def;
}

const model = arg("model");
if (!model) {
  console.error("usage: node ort_bench.mjs --model FILE --shape 1,96,32,48 [--threads N] [--iters N] [--warmup N]");
  process.exit(2);
}
const shape = arg("shape", "1,96,32,48").split(",").map(Number);
const threads = Number(arg("threads", "1"));
const iters = Number(arg("iters", "10"));
const warmup = Number(arg("warmup", "2"));
const opt = arg("opt", "all"); // graph optimization level: disabled|basic|extended|all
const dump = arg("dump"); // write the output tensor here as raw float32
const spin = arg("spin", "1"); // 0: intra-op threads sleep instead of spinning (helps on a busy machine)
// One shape for every scaler input, or one per input separated by ";" (s0;s1;...).
const scalerShapes = arg("scaler-shape", "1").split(";").map((s) => s.split(",").map(Number));

const t0 = performance.now();
const session = await ort.InferenceSession.create(model, {
  executionProviders: ["cpu"],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: opt,
  extra: { session: { intra_op: { allow_spinning: spin } } },
});
const loadMs = performance.now() - t0;

const n = shape.reduce((a, b) => a * b, 1);
const data = new Float32Array(n);
for (let i = 0; i < n; i++) data[i] = (i % 11) - 5;
const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, shape) };
session.inputNames.slice(1).forEach((name, i) => {
  const shape = scalerShapes.length > 1 ? scalerShapes[i] : scalerShapes[0];
  feeds[name] = new ort.Tensor("float32", new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape);
});

let outShape = null;
let checksum = 0;
for (let i = 0; i < warmup; i++) {
  const r = await session.run(feeds);
  const y = r[session.outputNames[0]];
  outShape = y.dims;
  checksum = 0;
  for (let j = 0; j < y.data.length; j += 997) checksum += y.data[j];
  if (dump && i === 0) writeFileSync(dump, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
}
const times = [];
for (let i = 0; i < iters; i++) {
  const t = performance.now();
  await session.run(feeds);
  times.push(performance.now() - t);
}
const sorted = [...times].sort((a, b) => a - b);
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]
  : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
console.log(JSON.stringify({
  threads, iters, warmup, opt, spin, load_ms: loadMs, times_ms: times, median_ms: median,
  out_shape: outShape, checksum, version: ort.env.versions?.node ?? null,
  rss_mb: process.memoryUsage().rss / 1e6,
}));
await session.release?.();
