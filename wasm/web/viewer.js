// Loads lvc.wasm (the Go decoder) and draws decoded .lvc files on a canvas.
// ?src=URL decodes a file from the same server at start-up.
"use strict";

const status = document.getElementById("status");
const canvas = document.getElementById("view");

function say(text, isError) {
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function loadDecoder() {
  const go = new Go();
  const { instance } = await WebAssembly.instantiateStreaming(fetch("lvc.wasm"), go.importObject);
  go.run(instance); // returns only when the Go program exits, which it does not
}

function show(bytes, name) {
  say(`Decoding ${name}…`);
  // Let the status paint before the decoder takes the main thread.
  setTimeout(() => {
    const t0 = performance.now();
    const r = globalThis.lvcDecode(bytes);
    if (r.error) {
      say(`${name}: ${r.error}`, true);
      document.body.dataset.state = "error";
      return;
    }
    canvas.width = r.width;
    canvas.height = r.height;
    canvas.getContext("2d").putImageData(new ImageData(r.rgba, r.width, r.height), 0, 0);
    const bpp = (8 * bytes.length / (r.width * r.height)).toFixed(3);
    say(`${name}: ${r.width}×${r.height}, ${bytes.length} bytes (${bpp} bpp), decoded in ${r.ms} ms ` +
        `(${Math.round(performance.now() - t0)} ms with drawing)`);
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
  say(`Decoder ready (model ${globalThis.lvcModelID.slice(0, 12)}…). Choose a file.`);
  const src = new URLSearchParams(location.search).get("src");
  if (src) {
    const resp = await fetch(src);
    if (!resp.ok) { say(`${src}: HTTP ${resp.status}`, true); return; }
    show(new Uint8Array(await resp.arrayBuffer()), src);
  }
}, 50);
