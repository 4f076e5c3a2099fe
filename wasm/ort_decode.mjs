// Decodes an .lvc image or video both ways the viewer can (web/viewer.js):
// all in Go, and Go latents + synthesis under onnxruntime-web with the
// model's scaler inputs fed by name, then prints the largest difference in
// 8-bit levels between the two over every frame:
//   node ort_decode.mjs WASM_EXEC_JS LVC_WASM IN.lvc
import fs from "fs";
import { createRequire } from "module";
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

const [wasmExec, wasmFile, input] = process.argv.slice(2);
const require = createRequire(import.meta.url);
globalThis.require = require;
globalThis.fs = fs;
require(wasmExec);
const go = new Go();
const { instance } = await WebAssembly.instantiate(fs.readFileSync(wasmFile), go.importObject);
go.run(instance);
const bytes = new Uint8Array(fs.readFileSync(input));
const ref = globalThis.lvcOpen(bytes, false);
const lat = globalThis.lvcOpen(bytes, true);
if (ref.error || lat.error) throw new Error(ref.error || lat.error);
ort.env.wasm.numThreads = 1;
const s = await ort.InferenceSession.create(globalThis.lvcSynthesisONNX(), { executionProviders: ["wasm"] });
const to8 = (v) => Math.min(255, Math.max(0, Math.floor(v * 255 + 0.5)));
let worst = 0, frames = 0, scalers = 0;
for (;;) {
  const want = globalThis.lvcNext(ref.handle);
  const r = globalThis.lvcNext(lat.handle);
  if (want.error || r.error) throw new Error(want.error || r.error);
  if (want.done !== r.done) throw new Error("the two decodes disagree on the number of frames");
  if (r.done) break;
  frames++;
  scalers = r.scalers.length;
  const feeds = { x: new ort.Tensor("float32", r.input, r.shape) };
  r.scalers.forEach((v, i) => { feeds["s" + i] = new ort.Tensor("float32", v, [1, v.length, 1, 1]); });
  const y = (await s.run(feeds))[s.outputNames[0]];
  const [, , ph, pw] = y.dims;
  for (let yy = 0; yy < r.height; yy++) {
    for (let x = 0; x < r.width; x++) {
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(to8(y.data[c * ph * pw + yy * pw + x]) - want.rgba[4 * (yy * r.width + x) + c]);
        worst = Math.max(worst, d);
      }
    }
  }
}
console.log(`${ref.width}x${ref.height}, ${frames} frames, ${scalers} scaler inputs: max difference ${worst} levels`);
process.exit(0);
