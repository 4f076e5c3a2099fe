// Decodes an .lvc file with lvc.wasm under Node, the way the viewer does:
//   node node_decode.cjs WASM_EXEC_JS LVC_WASM IN.lvc OUT.rgba
// Prints "width height ms" and writes the RGBA pixels.
"use strict";
const fs = require("fs");
const [wasmExec, wasmFile, input, output] = process.argv.slice(2);
globalThis.require = require;
globalThis.fs = fs;
require(wasmExec);

const go = new Go();
WebAssembly.instantiate(fs.readFileSync(wasmFile), go.importObject).then(({ instance }) => {
  go.run(instance);
  const r = globalThis.lvcDecode(new Uint8Array(fs.readFileSync(input)));
  if (r.error) {
    console.error(r.error);
    process.exit(1);
  }
  fs.writeFileSync(output, Buffer.from(r.rgba.buffer));
  console.log(`${r.width} ${r.height} ${r.ms}`);
  process.exit(0);
});
