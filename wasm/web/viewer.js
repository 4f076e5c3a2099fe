// Loads lvc.wasm (the Go decoder) and draws decoded .lvc files on a canvas:
// images, and videos played frame by frame at their frame rate (or as fast
// as they decode), with non-square pixels shown stretched.
//
// Two engines: "ort" lets Go decode the bitstream to the synthesis input and
// runs the synthesis network with onnxruntime-web (WASM SIMD); "go" runs
// everything in Go's portable kernels. ort is used when ort/ort.wasm.min.js
// is served (make wasm installs it, the WASM-only build).
//   ?src=URL      decode a file from the same server at start-up
//   ?engine=go    force the Go engine
//   ?compare=1    with the ort engine, decode with Go too and report the
//                 largest pixel difference
//   ?report=URL   POST the page's final state as JSON to URL (for tests):
//                 the data-* below, the status line, the canvas's CSS
//                 aspect ratio, the ms from the first frame shown to the
//                 last, the mean decoding ms per frame and the synthesis's
//                 threads
//   ?pause=F,D,MS (for tests) press Pause D ms after frame F is shown, and
//                 Play again MS ms later
// The page's state is in <body data-state>: decoded (an image, or a video's
// first frame), playing, ended (a video's last frame was shown) or error;
// data-frames counts the frames shown.
"use strict";

const status = document.getElementById("status");
const canvas = document.getElementById("view");
const playButton = document.getElementById("play");
const params = new URLSearchParams(location.search);
const [pauseFrame, pauseDelay, pauseMs] = (params.get("pause") || "").split(",").map(Number);

function say(text, isError) {
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function loadDecoder() {
  const go = new Go();
  const { instance } = await WebAssembly.instantiateStreaming(fetch("lvc.wasm"), go.importObject);
  go.run(instance); // returns only when the Go program exits, which it does not
}

let session = null; // a promise, so that two files dropped at once share one

// Threads need a cross-origin isolated page (make serve's); otherwise one
// thread, SIMD.
const ortThreads = globalThis.crossOriginIsolated ? navigator.hardwareConcurrency : 1;

function synthesisSession() {
  if (!session) {
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    ort.env.wasm.numThreads = ortThreads;
    // A failed creation is not kept: the next file tries again.
    session = ort.InferenceSession.create(globalThis.lvcSynthesisONNX(), { executionProviders: ["wasm"] })
      .catch((e) => { session = null; throw e; });
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
// ms is the frame's decoding time, for both engines alike; the synthesis
// session's creation, once per page, does not count.
async function nextFrame(st) {
  const s = st.ort ? await synthesisSession() : null;
  const t0 = performance.now();
  const r = globalThis.lvcNext(st.handle);
  r.ms = performance.now() - t0;
  if (r.error || r.done || !s) return r;
  const feeds = { x: new ort.Tensor("float32", r.input, r.shape) };
  r.scalers.forEach((v, i) => { feeds["s" + i] = new ort.Tensor("float32", v, [1, v.length, 1, 1]); });
  const out = await s.run(feeds);
  r.rgba = rgbaFromSynthesis(out[s.outputNames[0]], st.info);
  r.ms = performance.now() - t0;
  return r;
}

// open starts decoding a file: the header, and for ?compare=1 a second,
// all-Go stream to check the fast path's pixels against.
function open(bytes, name) {
  const useOrt = Boolean(globalThis.ort) && params.get("engine") !== "go";
  const st = { bytes, name, ort: useOrt, frames: 0, decodeMs: 0, worst: 0 };
  st.engine = useOrt ? `onnxruntime-web (${ortThreads} thread${ortThreads > 1 ? "s" : ""})` : "Go (portable kernels)";
  const info = globalThis.lvcOpen(bytes, useOrt);
  if (info.error) return Object.assign(st, { error: info.error });
  st.info = info;
  st.handle = info.handle;
  if (useOrt && params.get("compare") === "1") {
    const ref = globalThis.lvcOpen(bytes, false);
    if (ref.error) return Object.assign(st, { error: ref.error });
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

function compareText(st) {
  return st.compareHandle ? `; largest pixel difference from the Go engine ${st.worst}` : "";
}

function seconds(st, pts) {
  return pts * st.info.timebaseNum / st.info.timebaseDen;
}

let playing = null; // the stream on screen

// report sends the final state to ?report=URL, for tests.
function report() {
  const url = params.get("report");
  if (!url) return;
  const st = playing || {};
  const state = { ...document.body.dataset, status: status.textContent, aspectRatio: canvas.style.aspectRatio,
    playedMs: st.frames ? String(Math.round(st.lastShown - st.firstShown)) : "",
    msPerFrame: st.frames ? (st.decodeMs / st.frames).toFixed(1) : "", threads: String(st.ort ? ortThreads : 1) };
  fetch(url, { method: "POST", body: JSON.stringify(state) });
}

// showError ends the page's work on an error.
function showError(text) {
  say(text, true);
  document.body.dataset.state = "error";
  playButton.hidden = true;
  report();
}

function fail(st, text) {
  stop(st);
  showError(`${st.name}: ${text}`);
}

function stop(st) {
  clearTimeout(st.timer);
  if (st.handle) globalThis.lvcClose(st.handle);
  if (st.compareHandle) globalThis.lvcClose(st.compareHandle);
  st.stopped = true;
}

// step decodes the next frame, then schedules it; it runs again once that
// frame is on screen.
async function step(st) {
  let r;
  try {
    r = await nextFrame(st);
  } catch (e) {
    r = { error: String(e) };
  }
  if (st !== playing || st.stopped) return;
  if (r.error) return fail(st, st.frames ? `after ${st.frames} frames: ${r.error}` : r.error);
  if (st.compareHandle) {
    const g = globalThis.lvcNext(st.compareHandle);
    if (g.error) return fail(st, `Go engine: ${g.error}`);
    if (Boolean(g.done) !== Boolean(r.done)) return fail(st, "the Go engine decodes another number of frames");
    for (let i = 0; !r.done && i < g.rgba.length; i++) st.worst = Math.max(st.worst, Math.abs(g.rgba[i] - r.rgba[i]));
    document.body.dataset.maxdiff = st.worst;
  }
  if (r.done) return finish(st);
  st.pending = r;
  if (!st.paused) schedule(st);
}

// schedule shows the pending frame at its presentation time. A frame that
// is late (slow decoding, a throttled background tab) moves the
// clock, so that the frames after it keep their spacing instead of
// rushing to catch up.
function schedule(st) {
  clearTimeout(st.timer);
  // The first frame shows at once, and sets the clock (present).
  const due = st.frames ? st.clock + 1000 * seconds(st, st.pending.pts) : performance.now();
  const late = performance.now() - due;
  if (st.frames && late > 0) st.clock += late;
  st.timer = setTimeout(() => {
    const r = st.pending;
    if (st.paused || st.stopped || !r) return;
    st.pending = null;
    try {
      present(st, r);
    } catch (e) {
      return fail(st, String(e));
    }
    step(st);
  }, Math.max(0, -late));
}

function present(st, r) {
  st.frames++;
  st.decodeMs += r.ms;
  st.lastPTS = r.pts;
  st.lastShown = performance.now();
  canvas.getContext("2d").putImageData(new ImageData(r.rgba, st.info.width, st.info.height), 0, 0);
  const info = st.info;
  if (st.frames === 1) {
    st.firstShown = performance.now();
    st.clock = st.firstShown - 1000 * seconds(st, r.pts);
    // A video's bits per pixel are its first frame's; an image's, the file's.
    const bits = 8 * (info.frames === 1 ? st.bytes.length : r.bytes);
    const bpp = (bits / (info.width * info.height)).toFixed(3);
    st.first = `${st.name}: ${info.width}×${info.height}${aspectText(info)}, ${st.bytes.length} bytes`;
    say(`${st.first} (${bpp} bpp), decoded in ${Math.round(r.ms)} ms with ${st.engine}` + compareText(st));
    document.body.dataset.state = "decoded";
  } else {
    const of = info.frames ? `/${info.frames}` : "";
    say(`${st.first}, frame ${st.frames}${of} (${r.intra ? "intra" : "inter"}, quality ${r.quality.toFixed(2)}, ` +
      `${r.bytes} bytes) decoded in ${Math.round(r.ms)} ms with ${st.engine}` + compareText(st));
    document.body.dataset.state = "playing";
    playButton.hidden = false;
  }
  document.body.dataset.frames = st.frames;
  if (st.frames === pauseFrame) {
    setTimeout(() => {
      playButton.click();
      setTimeout(() => playButton.click(), pauseMs);
    }, pauseDelay);
  }
}

function finish(st) {
  stop(st);
  if (st.frames > 1) {
    const info = st.info;
    const duration = seconds(st, st.lastPTS + 1);
    const kbps = (8 * st.bytes.length / duration / 1000).toFixed(0);
    const fps = info.timebaseDen / info.timebaseNum;
    say(`${st.first} (${kbps} kbit/s), ${st.frames} frames at ${fps.toFixed(2)} fps; ` +
      `decoding averaged ${(st.decodeMs / st.frames).toFixed(0)} ms a frame with ${st.engine}` + compareText(st));
    document.body.dataset.state = "ended";
    playButton.textContent = "Play again";
  }
  report();
}

playButton.addEventListener("click", () => {
  const st = playing;
  if (!st) return;
  if (st.stopped) return show(st.bytes, st.name);
  st.paused = !st.paused;
  playButton.textContent = st.paused ? "Play" : "Pause";
  if (st.paused) {
    clearTimeout(st.timer);
    st.pausedAt = performance.now();
    return;
  }
  // The pause delays every frame after it by its length.
  if (st.frames) st.clock += performance.now() - st.pausedAt;
  if (st.pending) schedule(st); // else a decode is under way, and step schedules its frame
});

function show(bytes, name) {
  if (playing) stop(playing);
  playButton.hidden = true;
  playButton.textContent = "Pause";
  for (const key of ["state", "frames", "maxdiff"]) delete document.body.dataset[key];
  say(`Decoding ${name}…`);
  const st = open(bytes, name);
  playing = st;
  if (st.error) return fail(st, st.error);
  sizeCanvas(st.info);
  // Let the status paint before the decoder takes the main thread.
  st.timer = setTimeout(() => step(st), 20);
}

async function showFile(file) {
  try {
    show(new Uint8Array(await file.arrayBuffer()), file.name);
  } catch (e) {
    showError(`${file.name}: ${e}`);
  }
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

loadDecoder().catch((e) => showError(`Cannot load the decoder: ${e}`));
const waitReady = setInterval(async () => {
  if (!globalThis.lvcOpen) return;
  clearInterval(waitReady);
  const engine = globalThis.ort && params.get("engine") !== "go" ? "onnxruntime-web" : "Go";
  say(`Decoder ready (model ${globalThis.lvcModelID.slice(0, 12)}…, synthesis with ${engine}). Choose a file.`);
  const src = params.get("src");
  if (!src) return;
  try {
    const resp = await fetch(src);
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    show(new Uint8Array(await resp.arrayBuffer()), src);
  } catch (e) {
    showError(`${src}: ${e.message || e}`);
  }
}, 50);
