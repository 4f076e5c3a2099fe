// Loads lvc.wasm (the Go decoder) and draws decoded .lvc files on a canvas:
// images, and videos played frame by frame at their frame rate (or as fast
// as they decode), with non-square pixels shown stretched.
//
// Two engines: "ort" lets Go decode the bitstream to the synthesis input and
// runs the synthesis network with onnxruntime-web (WASM SIMD); "go" runs
// everything in Go's portable kernels. ort is used when ort/ort.min.js is
// served (make wasm installs ort/ort.wasm.min.js, the WASM-only build).
//   ?src=URL      decode a file from the same server at start-up
//   ?engine=go    force the Go engine
//   ?compare=1    decode with both and report the largest pixel difference
// The page's state is in <body data-state> (decoded, playing, ended, error)
// and data-frames, for tests that drive it headless.
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

// rgbaFromSynthesis turns the synthesis network's planar output, padded to
// a multiple of 64, into the frame's RGBA pixels as the Go decoder would.
function rgbaFromSynthesis(y, info) {
  const [, , ph, pw] = y.dims;
  const d = y.data;
  const plane = ph * pw;
  const rgba = new Uint8ClampedArray(info.width * info.height * 4);
  for (let yy = 0; yy < info.height; yy++) {
    for (let x = 0; x < info.width; x++) {
      const i = yy * pw + x;
      const o = 4 * (yy * info.width + x);
      let R = d[i], G = d[plane + i], B = d[2 * plane + i];
      if (info.gray) R = G = B = 0.299 * R + 0.587 * G + 0.114 * B;
      rgba[o] = to8(R);
      rgba[o + 1] = to8(G);
      rgba[o + 2] = to8(B);
      rgba[o + 3] = 255;
    }
  }
  return rgba;
}

// nextFrame decodes the stream's next frame to RGBA: {rgba, ms, pts, ...},
// {done: true} after the last, or {error}.
async function nextFrame(st) {
  const t0 = performance.now();
  const r = globalThis.lvcNext(st.handle);
  if (r.error || r.done || !st.ort) return r;
  const s = await synthesisSession();
  const feeds = { x: new ort.Tensor("float32", r.input, r.shape) };
  r.scalers.forEach((v, i) => { feeds["s" + i] = new ort.Tensor("float32", v, [1, v.length, 1, 1]); });
  const out = await s.run(feeds);
  r.rgba = rgbaFromSynthesis(out[s.outputNames[0]], st.info);
  r.ms = Math.round(performance.now() - t0);
  return r;
}

// open starts decoding a file: the header, and for ?compare=1 a second,
// all-Go stream to check the fast path's pixels against.
function open(bytes, name) {
  const useOrt = Boolean(globalThis.ort) && params.get("engine") !== "go";
  const info = globalThis.lvcOpen(bytes, useOrt);
  if (info.error) return { error: info.error };
  const st = { bytes, name, info, handle: info.handle, ort: useOrt, frames: 0, decodeMs: 0, worst: 0 };
  st.engine = useOrt ? "onnxruntime-web" : "Go (portable kernels)";
  if (useOrt && params.get("compare") === "1") {
    const ref = globalThis.lvcOpen(bytes, false);
    if (ref.error) return { error: ref.error };
    st.compareHandle = ref.handle;
  }
  return st;
}

// sizeCanvas gives the canvas the file's size and shows non-square pixels
// (the header's pixel aspect) stretched, as a video player would.
function sizeCanvas(info) {
  canvas.width = info.width;
  canvas.height = info.height;
  let shownWidth = info.width;
  if (info.aspectNum > 0 && info.aspectDen > 0) shownWidth = Math.round(info.width * info.aspectNum / info.aspectDen);
  canvas.style.width = shownWidth === info.width ? "" : `${shownWidth}px`;
  canvas.style.aspectRatio = `${shownWidth} / ${info.height}`;
}

function aspectText(info) {
  return info.aspectNum > 0 && info.aspectNum !== info.aspectDen ? `, pixel aspect ${info.aspectNum}:${info.aspectDen}` : "";
}

let playing = null; // the stream on screen
const playButton = document.getElementById("play");

function fail(st, text) {
  say(`${st.name}: ${text}`, true);
  document.body.dataset.state = "error";
  playButton.hidden = true;
  stop(st);
}

function stop(st) {
  clearTimeout(st.timer);
  globalThis.lvcClose(st.handle);
  if (st.compareHandle) globalThis.lvcClose(st.compareHandle);
  st.stopped = true;
}

// step decodes the next frame and shows it at its presentation time, or at
// once when decoding runs slower than the file; then it decodes the next.
async function step(st) {
  let r;
  try {
    r = await nextFrame(st);
  } catch (e) {
    r = { error: String(e) };
  }
  if (st !== playing || st.stopped) return;
  if (r.error) return fail(st, st.frames ? `after ${st.frames} frames: ${r.error}` : r.error);
  if (r.done) return finish(st);
  if (st.compareHandle) {
    const g = globalThis.lvcNext(st.compareHandle);
    if (g.error || g.done) return fail(st, `Go engine: ${g.error || "fewer frames"}`);
    for (let i = 0; i < g.rgba.length; i++) st.worst = Math.max(st.worst, Math.abs(g.rgba[i] - r.rgba[i]));
    document.body.dataset.maxdiff = st.worst;
  }
  if (st.frames === 0) st.clock = performance.now() - 1000 * presentationTime(st, r);
  st.pending = r;
  schedule(st);
}

function presentationTime(st, r) {
  return r.pts * st.info.timebaseNum / st.info.timebaseDen;
}

function schedule(st) {
  const due = st.clock + 1000 * presentationTime(st, st.pending);
  st.timer = setTimeout(() => {
    if (st.paused || st.stopped) return;
    present(st, st.pending);
    st.pending = null;
    step(st);
  }, Math.max(0, due - performance.now()));
}

function present(st, r) {
  st.frames++;
  st.decodeMs += r.ms;
  canvas.getContext("2d").putImageData(new ImageData(r.rgba, st.info.width, st.info.height), 0, 0);
  const info = st.info;
  if (st.frames === 1) {
    const bpp = (8 * st.bytes.length / (info.width * info.height)).toFixed(3);
    st.first = `${st.name}: ${info.width}×${info.height}${aspectText(info)}, ${st.bytes.length} bytes`;
    say(`${st.first} (${bpp} bpp), decoded in ${r.ms} ms with ${st.engine}` + compareText(st));
    document.body.dataset.state = "decoded";
  } else {
    const of = info.frames ? `/${info.frames}` : "";
    say(`${st.first}, frame ${st.frames}${of} (${r.intra ? "intra" : "inter"}, quality ${r.quality.toFixed(2)}, ` +
      `${r.bytes} bytes) decoded in ${r.ms} ms with ${st.engine}` + compareText(st));
    document.body.dataset.state = "playing";
    playButton.hidden = false;
  }
  document.body.dataset.frames = st.frames;
}

function compareText(st) {
  return st.compareHandle ? `; largest pixel difference from the Go engine ${st.worst}` : "";
}

function finish(st) {
  stop(st);
  if (st.frames > 1) {
    const info = st.info;
    const fps = info.timebaseDen / info.timebaseNum;
    const seconds = st.frames / fps;
    const kbps = (8 * st.bytes.length / seconds / 1000).toFixed(0);
    say(`${st.first} (${kbps} kbit/s), ${st.frames} frames at ${fps.toFixed(2)} fps; ` +
      `decoding averaged ${(st.decodeMs / st.frames).toFixed(0)} ms a frame with ${st.engine}` + compareText(st));
    document.body.dataset.state = "ended";
    playButton.textContent = "Play again";
  }
}

playButton.addEventListener("click", () => {
  const st = playing;
  if (!st) return;
  if (st.stopped) return show(st.bytes, st.name);
  st.paused = !st.paused;
  playButton.textContent = st.paused ? "Play" : "Pause";
  if (st.paused) {
    clearTimeout(st.timer);
  } else if (st.pending) {
    // Resume with the decoded frame due now.
    st.clock = performance.now() - 1000 * presentationTime(st, st.pending);
    schedule(st);
  }
});

function show(bytes, name) {
  if (playing) stop(playing);
  playButton.hidden = true;
  playButton.textContent = "Pause";
  say(`Decoding ${name}…`);
  const st = open(bytes, name);
  playing = st;
  st.name = name;
  if (st.error) return fail(st, st.error);
  sizeCanvas(st.info);
  // Let the status paint before the decoder takes the main thread.
  st.timer = setTimeout(() => step(st), 20);
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
  if (!globalThis.lvcOpen) return;
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
