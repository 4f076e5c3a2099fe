//go:build !js

package main

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/lvc-codec/lvc/codec"
	"github.com/lvc-codec/lvc/models"
)

// TestWasmDecoderMatchesNative builds the browser decoder, decodes a Kodak
// image with it under Node, and compares with the native decoder. Latents
// are bit-exact by design; pixels may differ by rounding between the
// portable (wasm) and SIMD (amd64) float kernels.
func TestWasmDecoderMatchesNative(t *testing.T) {
	node, dir, wasmFile := buildWasm(t)
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../testdata/sample.png")
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := image.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A crop keeps the single-threaded wasm run short.
	crop := src.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 256, 192))
	var lvc bytes.Buffer
	if err := codec.EncodeImage(&lvc, m, crop, codec.Options{Quality: 4}); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "x.lvc"), filepath.Join(dir, "x.rgba")
	os.WriteFile(in, lvc.Bytes(), 0o644)
	run := exec.Command(node, "node_decode.cjs", filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"), wasmFile, in, out)
	msg, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, msg)
	}
	var w, h, ms int
	if _, err := fmt.Sscan(string(msg), &w, &h, &ms); err != nil || w != 256 || h != 192 {
		t.Fatalf("node printed %q", msg)
	}
	t.Logf("wasm decode of %dx%d: %d ms", w, h, ms)
	got, _ := os.ReadFile(out)
	native, err := codec.DecodeImage(bytes.NewReader(lvc.Bytes()), m)
	if err != nil {
		t.Fatal(err)
	}
	want := native.(*image.RGBA).Pix
	if len(got) != len(want) {
		t.Fatalf("wasm gave %d bytes, native %d", len(got), len(want))
	}
	worst := 0
	for i := range want {
		worst = max(worst, abs(int(got[i])-int(want[i])))
	}
	if worst > 2 {
		t.Errorf("wasm and native pixels differ by up to %d", worst)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestViewerOrtPathMatchesGo decodes like the viewer's fast path: Go/wasm
// latents, then the synthesis under onnxruntime-web with the model's scaler
// inputs, at a fractional quality; the pixels must match the all-Go decode
// within one level.
func TestViewerOrtPathMatchesGo(t *testing.T) {
	if _, err := os.Stat("node_modules/onnxruntime-web"); err != nil {
		t.Skip("onnxruntime-web not installed (make wasm)")
	}
	node, dir, wasmFile := buildWasm(t)
	m, err := codec.LoadModel(models.Default)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 96, 64))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*7 + i/384*13)
	}
	var lvc bytes.Buffer
	if err := codec.EncodeImage(&lvc, m, img, codec.Options{Quality: 2.5}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "x.lvc")
	os.WriteFile(in, lvc.Bytes(), 0o644)
	msg, err := exec.Command(node, "ort_decode.mjs", filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"), wasmFile, in).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, msg)
	}
	var size string
	var scalers, worst int
	if _, err := fmt.Sscanf(string(msg), "%s %d scaler inputs: max difference %d levels", &size, &scalers, &worst); err != nil {
		t.Fatalf("node printed %q: %v", msg, err)
	}
	t.Logf("%s", msg)
	if worst > 1 {
		t.Errorf("onnxruntime-web path differs from Go by %d levels", worst)
	}
}

// buildWasm builds the browser decoder into a temporary directory; it skips
// the test without Node.
func buildWasm(t *testing.T) (node, dir, wasmFile string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir = t.TempDir()
	wasmFile = filepath.Join(dir, "lvc.wasm")
	build := exec.Command("go", "build", "-o", wasmFile, ".")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the wasm decoder: %v\n%s", err, out)
	}
	return node, dir, wasmFile
}
