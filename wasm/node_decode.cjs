// Decodes an .lvc image or video with lvc.wasm under Node, the way the
// viewer's Go engine does:
//   node node_decode.cjs WASM_EXEC_JS LVC_WASM IN.lvc OUT.rgba
// Prints "width height frames ms aspectNum:aspectDen" (ms summed over the
// frames) and writes every frame's RGBA pixels, one after another.
"use strict";
const fs = require("fs");
const [wasmExec, wasmFile, input, output] = process.argv.slice(2);
globalThis.require = require;
globalThis.fs = fs;
require(wasmExec);

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

const go = new Go();
WebAssembly.instantiate(fs.readFileSync(wasmFile), go.importObject).then(({ instance }) => {
  go.run(instance);
  const s = globalThis.lvcOpen(new Uint8Array(fs.readFileSync(input)), false);
  if (s.error) fail(s.error);
  const frames = [];
  let ms = 0;
  for (;;) {
    const f = globalThis.lvcNext(s.handle);
    if (f.error) fail(f.error);
    if (f.done) break;
    frames.push(Buffer.from(f.rgba.buffer));
    ms += f.ms;
  }
  fs.writeFileSync(output, Buffer.concat(frames));
  console.log(`${s.width} ${s.height} ${frames.length} ${ms} ${s.aspectNum}:${s.aspectDen}`);
  process.exit(0);
});
