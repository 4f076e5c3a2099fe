// Command serve serves the browser viewer (wasm/web) on 127.0.0.1 for
// trying it locally (make serve). Its pages are cross-origin isolated,
// which onnxruntime-web needs to run the synthesis on more than one thread.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dir := flag.String("dir", "wasm/web", "directory to serve")
	flag.Parse()
	fmt.Printf("open http://%s/ (or ?src=FILE.lvc for a file in %s)\n", *addr, *dir)
	log.Fatal(http.ListenAndServe(*addr, isolated(http.FileServer(http.Dir(*dir)))))
}

// isolated makes every response cross-origin isolated. The workers that run
// onnxruntime-web's threads need the headers on their own scripts too, so
// every response carries them, not only the page's.
func isolated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		h.ServeHTTP(w, r)
	})
}
