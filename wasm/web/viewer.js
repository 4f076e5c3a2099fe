// Loads lvc.wasm (the Go decoder) and draws decoded .lvc files on a canvas.
//
// Two engines: "ort" lets Go decode the bitstream to the synthesis input and
// runs the synthesis network with onnxruntime-web (WASM SIMD); "go" runs
// everything in Go's portable kernels. ort is used when ort/ort.min.js is
// served (make wasm installs ort/ort.wasm.min.js, the WASM-only build).
//   ?src=URL      decode a file from the same server at start-up
//   ?engine=go    force the Go engine
//   ?compare=1    decode with both and report the largest pixel difference
"use strict";

const status = document.getElementById("status");
const canvas = document.getElementById("view");
const params = new URLSearchParams(location.search);

function say(text, isError) {
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function loadDecoder() {
  const go = new Go();
  const { instance } = await WebAssembly.instantiateStreaming(fetch("lvc.wasm"), go.importObject);
  go.run(instance); // returns only when the Go program exits, which it does not
}

let session = null;

async function synthesisSession() {
  if (!session) {
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    // Threads need a cross-origin isolated page; otherwise one thread, SIMD.
    ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? navigator.hardwareConcurrency : 1;
    session = await ort.InferenceSession.create(globalThis.lvcSynthesisONNX(), { executionProviders: ["wasm"] });
  }
  return session;
}

// to8 maps [0,1] to a byte as the Go decoder does: floor(v*255 + 0.5), clamped.
function to8(v) {
  return Math.min(255, Math.max(0, Math.floor(v * 255 + 0.5)));
}

async function decodeWithOrt(bytes) {
  const t0 = performance.now();
  const r = globalThis.lvcDecodeLatents(bytes);
  if (r.error) return r;
  const s = await synthesisSession();
  const feeds = { x: new ort.Tensor("float32", r.input, r.shape) };
  r.scalers.forEach((v, i) => { feeds["s" + i] = new ort.Tensor("float32", v, [1, v.length, 1, 1]); });
  const out = await s.run(feeds);
  const y = out[s.outputNames[0]];
  const [, , ph, pw] = y.dims;
  const d = y.data;
  const plane = ph * pw;
  const rgba = new Uint8ClampedArray(r.width * r.height * 4);
  for (let yy = 0; yy < r.height; yy++) {
    for (let x = 0; x < r.width; x++) {
      const i = yy * pw + x;
      const o = 4 * (yy * r.width + x);
      let R = d[i], G = d[plane + i], B = d[2 * plane + i];
      if (r.gray) R = G = B = 0.299 * R + 0.587 * G + 0.114 * B;
      rgba[o] = to8(R);
      rgba[o + 1] = to8(G);
      rgba[o + 2] = to8(B);
      rgba[o + 3] = 255;
    }
  }
  return { width: r.width, height: r.height, rgba, ms: Math.round(performance.now() - t0), engine: "onnxruntime-web" };
}

function decodeWithGo(bytes) {
  const r = globalThis.lvcDecode(bytes);
  if (!r.error) r.engine = "Go (portable kernels)";
  return r;
}

async function decode(bytes) {
  const useOrt = globalThis.ort && params.get("engine") !== "go";
  return useOrt ? decodeWithOrt(bytes) : decodeWithGo(bytes);
}

function show(bytes, name) {
  say(`Decoding ${name}…`);
  // Let the status paint before the decoder takes the main thread.
  setTimeout(async () => {
    let r;
    try {
      r = await decode(bytes);
    } catch (e) {
      r = { error: String(e) };
    }
    if (r.error) {
      say(`${name}: ${r.error}`, true);
      document.body.dataset.state = "error";
      return;
    }
    canvas.width = r.width;
    canvas.height = r.height;
    canvas.getContext("2d").putImageData(new ImageData(r.rgba, r.width, r.height), 0, 0);
    const bpp = (8 * bytes.length / (r.width * r.height)).toFixed(3);
    let text = `${name}: ${r.width}×${r.height}, ${bytes.length} bytes (${bpp} bpp), decoded in ${r.ms} ms with ${r.engine}`;
    if (params.get("compare") === "1" && globalThis.ort) {
      const g = decodeWithGo(bytes);
      let worst = 0;
      for (let i = 0; i < g.rgba.length; i++) worst = Math.max(worst, Math.abs(g.rgba[i] - r.rgba[i]));
      text += `; Go engine ${g.ms} ms, largest pixel difference ${worst}`;
      document.body.dataset.maxdiff = worst;
    }
    say(text);
    document.body.dataset.state = "decoded";
  }, 20);
}

async function showFile(file) {
  show(new Uint8Array(await file.arrayBuffer()), file.name);
}

const drop = document.getElementById("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) showFile(e.dataTransfer.files[0]);
});
document.getElementById("file").addEventListener("change", (e) => {
  if (e.target.files.length) showFile(e.target.files[0]);
});

loadDecoder().catch((e) => say(`Cannot load the decoder: ${e}`, true));
const waitReady = setInterval(async () => {
  if (!globalThis.lvcDecode) return;
  clearInterval(waitReady);
  const engine = globalThis.ort && params.get("engine") !== "go" ? "onnxruntime-web" : "Go";
  say(`Decoder ready (model ${globalThis.lvcModelID.slice(0, 12)}…, synthesis with ${engine}). Choose a file.`);
  const src = params.get("src");
  if (src) {
    const resp = await fetch(src);
    if (!resp.ok) { say(`${src}: HTTP ${resp.status}`, true); return; }
    show(new Uint8Array(await resp.arrayBuffer()), src);
  }
}, 50);
