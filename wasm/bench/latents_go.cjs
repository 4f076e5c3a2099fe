// Times the Go/wasm half of the browser decode (bitstream to synthesis input):
//   node wasm/bench/latents_go.cjs WASM_EXEC_JS lvc.wasm IN.lvc
const fs = require("fs");
globalThis.require = require; globalThis.fs = fs;
require(process.argv[2]);
const go = new Go();
WebAssembly.instantiate(fs.readFileSync(process.argv[3]), go.importObject).then(({ instance }) => {
  go.run(instance);
  const bytes = new Uint8Array(fs.readFileSync(process.argv[4]));
  const t = [];
  for (let i = 0; i < 3; i++) { const t0 = performance.now(); const s = globalThis.lvcOpen(bytes, true); if (s.error) throw s.error; const r = globalThis.lvcNext(s.handle); if (r.error) throw r.error; globalThis.lvcClose(s.handle); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  console.log(`Go wasm latents (entropy decoding, fixed-point h_s and context) 768x512: median ${t[1].toFixed(0)} ms`);
  process.exit(0);
});
