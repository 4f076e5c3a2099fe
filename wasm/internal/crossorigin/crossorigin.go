// Package crossorigin serves the browser viewer cross-origin isolated, which
// onnxruntime-web needs to run the synthesis on more than one thread: for
// make serve and for the viewer's tests.
package crossorigin

import "net/http"

// Isolate adds the cross-origin isolation headers to every response of h.
// The workers that run onnxruntime-web's threads need them on their own
// scripts too, so every response carries them, not only the page's.
func Isolate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		h.ServeHTTP(w, r)
	})
}
