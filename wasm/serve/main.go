// Command serve serves the browser viewer (wasm/web) on 127.0.0.1 for
// trying it locally (make serve), cross-origin isolated so that
// onnxruntime-web runs on every core.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"

	"github.com/lvc-codec/lvc/wasm/internal/crossorigin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dir := flag.String("dir", "wasm/web", "directory to serve (relative to the working directory: make serve runs from the repository root)")
	flag.Parse()
	fmt.Printf("open http://%s/ (or ?src=FILE.lvc for a file in %s)\n", *addr, *dir)
	log.Fatal(http.ListenAndServe(*addr, crossorigin.Isolate(http.FileServer(http.Dir(*dir)))))
}
